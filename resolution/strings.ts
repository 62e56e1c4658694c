/**
 * String similarity for identity resolution: Jaro–Winkler (names, email local parts), the
 * Damerau–Levenshtein distance in its optimal-string-alignment form (typos in dates and phone
 * numbers) and American Soundex (names that sound alike). Pure functions, no I/O.
 *
 * Rules:
 *   - strings are compared as given, by UTF-16 code unit: callers normalise first
 *     (resolution/normalise.ts), so case, accents and spacing are already one way;
 *   - they run on hundreds of pairs per request: no allocation per character, the working rows
 *     are module-level buffers grown when a longer string comes (JavaScript runs one call at a
 *     time, and none of these calls another).
 */

/** Winkler's prefix scale: each common leading character (up to MAX_PREFIX) closes 10% of the gap to 1. */
const PREFIX_SCALE = 0.1;
const MAX_PREFIX = 4;

let flagsA = new Uint8Array(64);
let flagsB = new Uint8Array(64);

function flagBuffers(la: number, lb: number): void {
  if (flagsA.length < la) flagsA = new Uint8Array(la * 2);
  if (flagsB.length < lb) flagsB = new Uint8Array(lb * 2);
  flagsA.fill(0, 0, la);
  flagsB.fill(0, 0, lb);
}

/** The Jaro similarity in [0, 1]: 1 for equal strings (two empty ones included), 0 when either is empty. */
export function jaro(a: string, b: string): number {
  if (a === b) return 1;
  const la = a.length;
  const lb = b.length;
  if (la === 0 || lb === 0) return 0;
  // Characters match when equal and no further apart than half the longer string, less one.
  const window = Math.max(0, Math.floor(Math.max(la, lb) / 2) - 1);
  flagBuffers(la, lb);
  let matches = 0;
  for (let i = 0; i < la; i += 1) {
    const c = a.charCodeAt(i);
    const end = Math.min(lb - 1, i + window);
    for (let j = Math.max(0, i - window); j <= end; j += 1) {
      if (flagsB[j] === 0 && b.charCodeAt(j) === c) {
        flagsA[i] = 1;
        flagsB[j] = 1;
        matches += 1;
        break;
      }
    }
  }
  if (matches === 0) return 0;
  // Half the matched characters that are out of order.
  let k = 0;
  let outOfOrder = 0;
  for (let i = 0; i < la; i += 1) {
    if (flagsA[i] === 0) continue;
    while (flagsB[k] === 0) k += 1;
    if (a.charCodeAt(i) !== b.charCodeAt(k)) outOfOrder += 1;
    k += 1;
  }
  const transpositions = outOfOrder / 2;
  return (matches / la + matches / lb + (matches - transpositions) / matches) / 3;
}

/**
 * The Jaro–Winkler similarity in [0, 1]: Jaro raised for a common prefix, by 0.1 per leading
 * character both share, up to 4 (`martha`/`marhta` 0.961, `dwayne`/`duane` 0.84). The boost is
 * applied whatever the Jaro score (no 0.7 threshold), as the usual definition has it.
 */
export function jaroWinkler(a: string, b: string): number {
  const j = jaro(a, b);
  if (j === 0 || j === 1) return j;
  const limit = Math.min(MAX_PREFIX, a.length, b.length);
  let prefix = 0;
  while (prefix < limit && a.charCodeAt(prefix) === b.charCodeAt(prefix)) prefix += 1;
  return j + prefix * PREFIX_SCALE * (1 - j);
}

let rowBefore = new Int32Array(64);
let rowPrevious = new Int32Array(64);
let rowCurrent = new Int32Array(64);

/**
 * The optimal-string-alignment distance: the fewest insertions, deletions, substitutions and
 * transpositions of two adjacent characters that turn `a` into `b`, no substring edited twice
 * (`ca` → `abc` is 3, not 2 as in unrestricted Damerau–Levenshtein).
 */
export function damerauLevenshtein(a: string, b: string): number {
  if (a === b) return 0;
  // A common prefix and suffix change nothing: compare what lies between.
  let start = 0;
  let endA = a.length;
  let endB = b.length;
  while (start < endA && start < endB && a.charCodeAt(start) === b.charCodeAt(start)) start += 1;
  while (endA > start && endB > start && a.charCodeAt(endA - 1) === b.charCodeAt(endB - 1)) {
    endA -= 1;
    endB -= 1;
  }
  const la = endA - start;
  const lb = endB - start;
  if (la === 0) return lb;
  if (lb === 0) return la;
  if (rowCurrent.length <= lb) {
    rowBefore = new Int32Array((lb + 1) * 2);
    rowPrevious = new Int32Array((lb + 1) * 2);
    rowCurrent = new Int32Array((lb + 1) * 2);
  }
  let before = rowBefore;
  let previous = rowPrevious;
  let current = rowCurrent;
  for (let j = 0; j <= lb; j += 1) previous[j] = j;
  for (let i = 1; i <= la; i += 1) {
    const ca = a.charCodeAt(start + i - 1);
    current[0] = i;
    for (let j = 1; j <= lb; j += 1) {
      const cb = b.charCodeAt(start + j - 1);
      const cost = ca === cb ? 0 : 1;
      // (The rows hold lb + 1 numbers each: the `?? 0` never applies; it is there for the type checker.)
      let d = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && ca === b.charCodeAt(start + j - 2) && a.charCodeAt(start + i - 2) === cb) {
        d = Math.min(d, (before[j - 2] ?? 0) + 1);
      }
      current[j] = d;
    }
    const oldest = before;
    before = previous;
    previous = current;
    current = oldest;
  }
  return previous[lb] ?? 0;
}

/** Soundex digits for A–Z; 0 for the vowels and Y (they separate), -1 for H and W (they do not). */
const SOUNDEX_CODES = [0, 1, 2, 3, 0, 1, 2, -1, 0, 2, 2, 4, 5, 5, 0, 1, 2, 6, 2, 3, 0, 1, -1, 2, 0, 2] as const;

/**
 * American Soundex (the rule of the US census since 1920, as NARA describes it): the first
 * letter, then the digits of the letters after it, padded with zeros or cut to four characters.
 * Letters with one digit side by side count once, the first letter included (`Pfister` P236);
 * H and W between two letters with one digit do not part them (`Ashcraft` A261); vowels and Y do
 * (`Tymczak` T522). Letters outside A–Z (accented ones are folded first) and anything else are
 * skipped; '' when there are no letters.
 */
export function soundex(s: string): string {
  // Only when it has something to fold (names come normalised, ASCII): `Müller` is `Muller`.
  const text = /[\u0080-\uffff]/.test(s) ? s.normalize('NFKD') : s;
  let out = '';
  let last = 0;
  for (let i = 0; i < text.length && out.length < 4; i += 1) {
    let c = text.charCodeAt(i);
    if (c >= 97 && c <= 122) c -= 32;
    if (c < 65 || c > 90) continue;
    const code = SOUNDEX_CODES[c - 65] ?? 0;
    if (out === '') {
      out = String.fromCharCode(c);
      last = code;
      continue;
    }
    if (code === -1) continue;
    if (code !== 0 && code !== last) out += String(code);
    last = code;
  }
  return out === '' ? '' : out.padEnd(4, '0');
}
