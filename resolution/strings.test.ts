import { describe, expect, it } from 'vitest';
import { damerauLevenshtein, jaro, jaroWinkler, soundex } from './strings';

/** The optimal-string-alignment distance spelled out with a full matrix, to check the fast one by. */
function osaByMatrix(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

/** Strings of a few letters (so that they share some), from a fixed seed. */
function randomStrings(count: number, maxLength: number): string[] {
  let seed = 42;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  return Array.from({ length: count }, () =>
    Array.from({ length: Math.floor(next() * (maxLength + 1)) }, () => 'abcde'[Math.floor(next() * 5)]).join(''),
  );
}

describe('jaroWinkler', () => {
  it.each([
    ['martha', 'marhta', 0.961],
    ['dwayne', 'duane', 0.84],
    ['dixon', 'dicksonx', 0.813],
    ['jones', 'johnson', 0.832],
    ['crate', 'trace', 0.733],
  ])('%s ~ %s is %d', (a, b, expected) => {
    expect(jaroWinkler(a, b)).toBeCloseTo(expected, 3);
    expect(jaroWinkler(b, a)).toBeCloseTo(expected, 3);
  });

  it('is Jaro raised by the common prefix, up to four characters', () => {
    expect(jaro('martha', 'marhta')).toBeCloseTo(0.944, 3);
    expect(jaro('dwayne', 'duane')).toBeCloseTo(0.822, 3);
    // `abcdefgh` and `abcdefhg` share six leading characters; four count.
    const j = jaro('abcdefgh', 'abcdefhg');
    expect(jaroWinkler('abcdefgh', 'abcdefhg')).toBeCloseTo(j + 0.4 * (1 - j), 10);
  });

  it('is 1 for equal strings and 0 for nothing in common or an empty side', () => {
    expect(jaroWinkler('smith', 'smith')).toBe(1);
    expect(jaroWinkler('', '')).toBe(1);
    expect(jaroWinkler('abc', '')).toBe(0);
    expect(jaroWinkler('', 'abc')).toBe(0);
    expect(jaroWinkler('abc', 'xyz')).toBe(0);
  });

  it('stays in [0, 1] and is symmetric, long strings included', () => {
    const strings = [...randomStrings(40, 12), 'a'.repeat(200), `${'ab'.repeat(100)}c`];
    for (const a of strings) {
      for (const b of strings) {
        const s = jaroWinkler(a, b);
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThanOrEqual(1);
        expect(jaroWinkler(b, a)).toBeCloseTo(s, 12);
      }
    }
  });
});

describe('damerauLevenshtein', () => {
  it.each([
    ['kitten', 'sitting', 3],
    ['abc', 'acb', 1],
    ['ca', 'abc', 3],
    ['19800512', '19805012', 1],
    ['+442079460958', '+442079460985', 1],
    ['', 'abc', 3],
    ['abc', '', 3],
    ['same', 'same', 0],
    ['flaw', 'lawn', 2],
  ])('%s → %s is %d', (a, b, expected) => {
    expect(damerauLevenshtein(a, b)).toBe(expected);
    expect(damerauLevenshtein(b, a)).toBe(expected);
  });

  it('agrees with the full matrix on every pair of many strings (short and long)', () => {
    const strings = [...randomStrings(50, 10), 'abcde'.repeat(30), 'edcba'.repeat(30)];
    for (const a of strings) for (const b of strings) expect(damerauLevenshtein(a, b)).toBe(osaByMatrix(a, b));
  });
});

describe('soundex (American: H and W do not separate letters of one code, vowels and Y do)', () => {
  it.each([
    ['Robert', 'R163'],
    ['Rupert', 'R163'],
    ['Rubin', 'R150'],
    ['Tymczak', 'T522'],
    ['Pfister', 'P236'],
    ['Ashcraft', 'A261'],
    ['Ashcroft', 'A261'],
    ['Honeyman', 'H555'],
    ['Gutierrez', 'G362'],
    ['VanDeusen', 'V532'],
    ['Jackson', 'J250'],
    ['Lee', 'L000'],
    ["O'Hara", 'O600'],
    ['Müller', 'M460'],
    ['robert', 'R163'],
  ])('%s is %s', (name, code) => expect(soundex(name)).toBe(code));

  it("is '' when there are no letters", () => {
    expect(soundex('')).toBe('');
    expect(soundex('123 -')).toBe('');
  });
});
