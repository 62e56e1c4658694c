/**
 * Two records compared field by field: each comparison gives one level of agreement (or none,
 * when either record lacks the field), from the strongest to `different`. Pure; the records are
 * prepared once (normalised, parsed) so that a sign-up scored against 200 candidates parses
 * nothing twice.
 *
 * Several values per field (emails, phones, addresses, devices, cards): the best agreement of any
 * pair of them. `different` needs values on both sides and no agreement at any level; only then
 * is it evidence against.
 */
import { sameGivenName } from './nicknames';
import { parseAddress } from './address';
import { lineOf, normaliseEmail, normaliseName, normalisePhone, parseBirthDate } from './normalise';
import type { ParsedAddress } from './address';
import type { PhoneLine } from './normalise';
import type { PartialDate, ResolutionRecord } from './record';
import { damerauLevenshtein, jaroWinkler } from './strings';

/** Every comparison and its levels, strongest first; the last is always `different`. */
export const COMPARISONS = {
  given_name: ['exact', 'nickname', 'close', 'initial', 'different'],
  family_name: ['exact', 'close', 'different'],
  birth_date: ['exact', 'partial', 'swap', 'typo', 'near', 'different'],
  email: ['exact_verified', 'exact', 'local_close', 'different'],
  phone: ['exact_verified', 'exact', 'typo', 'different_verified', 'different'],
  address: ['exact', 'close', 'street', 'postcode', 'different'],
  device: ['exact', 'network', 'different'],
  card: ['fingerprint', 'details', 'different'],
} as const;

export type Comparison = keyof typeof COMPARISONS;
export type Level<C extends Comparison = Comparison> = (typeof COMPARISONS)[C][number];
export const COMPARISON_NAMES = Object.keys(COMPARISONS) as Comparison[];

/** Names this close (Jaro–Winkler) are the same name typed differently. */
export const NAME_CLOSE = 0.9;
/** Email local parts this close are worth a look (never proof). */
export const LOCAL_CLOSE = 0.92;

export interface PreparedEmail {
  canonical: string;
  local: string;
  verified: boolean;
}
export interface PreparedPhone {
  e164: string;
  verified: boolean;
}
export interface PreparedDevice {
  fingerprint: string;
  /** The /24 (IPv4) or /48 (IPv6) of its last address. */
  network: string | null;
}
export interface PreparedCard {
  fingerprint: string | null;
  /** Brand, last four and expiry: weak, many cards share them. */
  details: string | null;
}

/** A record normalised and parsed for comparison. */
export interface PreparedRecord {
  id: string;
  given: string | null;
  family: string | null;
  birth: PartialDate | null;
  emails: PreparedEmail[];
  phones: PreparedPhone[];
  addresses: ParsedAddress[];
  devices: PreparedDevice[];
  cards: PreparedCard[];
}

function networkOf(ip: string | null): string | null {
  if (!ip) return null;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  if (ip.includes(':')) {
    const groups = ip.toLowerCase().split(':').filter(Boolean).slice(0, 3);
    return groups.length === 3 ? `${groups.join(':')}::/48` : null;
  }
  return null;
}

const unique = <T>(items: T[], key: (t: T) => string): T[] => {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item);
  return [...seen.values()];
};

/** A record ready to compare: names folded, the birth date parsed, identifiers canonical. */
export function prepare(r: ResolutionRecord, defaultRegion: string): PreparedRecord {
  const emails: PreparedEmail[] = [];
  for (const e of r.emails) {
    const n = normaliseEmail(e.value);
    if (n) emails.push({ canonical: n.canonical, local: n.canonical.split('@')[0] ?? '', verified: e.verified });
  }
  const phones: PreparedPhone[] = [];
  for (const p of r.phones) {
    const e164 = normalisePhone(p.value, defaultRegion);
    if (e164) phones.push({ e164, verified: p.verified });
  }
  return {
    id: r.id,
    given: normaliseName(r.given_name),
    family: normaliseName(r.family_name),
    birth: parseBirthDate(r.birth_date),
    // A value given twice counts once; verified wins.
    emails: unique(
      [...emails].sort((a, b) => Number(b.verified) - Number(a.verified)),
      (e) => e.canonical,
    ),
    phones: unique(
      [...phones].sort((a, b) => Number(b.verified) - Number(a.verified)),
      (p) => p.e164,
    ),
    addresses: unique(
      r.addresses.map((a) => parseAddress(a)),
      (a) => a.key,
    ),
    devices: unique(
      r.devices.map((d) => ({ fingerprint: d.fingerprint, network: networkOf(d.ip) })),
      (d) => d.fingerprint,
    ),
    cards: r.cards.map((c) => ({
      fingerprint: c.fingerprint,
      details:
        c.brand && c.last_four && c.expiry_month && c.expiry_year
          ? `${c.brand.toLowerCase()}|${c.last_four}|${c.expiry_month}/${c.expiry_year}`
          : null,
    })),
  };
}

/** One comparison's outcome: the level, and the value it agreed on (for frequency adjustment). */
export interface Agreement<C extends Comparison = Comparison> {
  comparison: C;
  level: Level<C>;
  /** The value both hold, when the level is an exact one (a name, an address key, a fingerprint). */
  value: string | null;
  /** The names were compared given against family (a swap). */
  swapped?: boolean;
  /**
   * What line the number both hold is, where libphonenumber can tell: a mobile is a person's own, a
   * landline a home's (North America's numbers may be either, and say neither).
   */
  line?: PhoneLine;
}

const rank = <C extends Comparison>(c: C, level: Level<C>): number =>
  (COMPARISONS[c] as readonly string[]).indexOf(level);

/** The stronger of two agreements of one comparison. */
function stronger<C extends Comparison>(a: Agreement<C> | null, b: Agreement<C>): Agreement<C> {
  return a && rank(a.comparison, a.level) <= rank(b.comparison, b.level) ? a : b;
}

function givenLevel(a: string, b: string): Level<'given_name'> {
  if (a === b) return 'exact';
  if (sameGivenName(a, b)) return 'nickname';
  if (jaroWinkler(a, b) >= NAME_CLOSE) return 'close';
  const initial = (x: string): boolean => x.length === 1;
  if ((initial(a) || initial(b)) && a[0] === b[0]) return 'initial';
  return 'different';
}

function familyLevel(a: string, b: string): Level<'family_name'> {
  if (a === b) return 'exact';
  // A double-barrelled or married name keeps one part: "smith jones" and "smith".
  const parts = (x: string): string[] => x.split(' ');
  if (parts(a).some((p) => parts(b).includes(p))) return 'close';
  return jaroWinkler(a, b) >= NAME_CLOSE ? 'close' : 'different';
}

/** How alike a given and a family name are when read across (a swap): exact, close or different. */
const crossLevel = (a: string, b: string): 'exact' | 'close' | 'different' =>
  a === b ? 'exact' : jaroWinkler(a, b) >= NAME_CLOSE ? 'close' : 'different';

/**
 * Names compared as given, and given against family (a swap, typos allowed); the better reading
 * wins: the swap when neither name agrees exactly as given, one disagrees outright, and both agree
 * across at least closely.
 */
function compareNames(a: PreparedRecord, b: PreparedRecord): [Agreement<'given_name'>, Agreement<'family_name'>] {
  const direct = {
    given: a.given && b.given ? givenLevel(a.given, b.given) : null,
    family: a.family && b.family ? familyLevel(a.family, b.family) : null,
  };
  let cross: { given: 'exact' | 'close'; family: 'exact' | 'close' } | null = null;
  if (a.given && a.family && b.given && b.family && direct.given !== 'exact' && direct.family !== 'exact') {
    const given = crossLevel(a.given, b.family);
    const family = crossLevel(a.family, b.given);
    const outright = direct.given === 'different' || direct.family === 'different';
    if (outright && given !== 'different' && family !== 'different') cross = { given, family };
  }
  const swapped = cross !== null;
  const givenLevelRead = cross?.given ?? direct.given ?? 'different';
  const familyLevelRead = cross?.family ?? direct.family ?? 'different';
  const given: Agreement<'given_name'> = {
    comparison: 'given_name',
    level: givenLevelRead,
    value: givenLevelRead === 'exact' ? a.given : null,
    swapped,
  };
  const family: Agreement<'family_name'> = {
    comparison: 'family_name',
    level: familyLevelRead,
    value: familyLevelRead === 'exact' ? a.family : null,
    swapped,
  };
  return [given, family];
}

const pad = (n: number): string => String(n).padStart(2, '0');

function compareBirth(a: PartialDate, b: PartialDate): Level<'birth_date'> | null {
  if (a.year === null || b.year === null) return null;
  const full = (d: PartialDate): d is { year: number; month: number; day: number } =>
    d.month !== null && d.day !== null;
  if (full(a) && full(b)) {
    if (a.year === b.year && a.month === b.month && a.day === b.day) return 'exact';
    if (a.year === b.year && a.month === b.day && a.day === b.month) return 'swap';
    const text = (d: typeof a): string => `${d.year}${pad(d.month)}${pad(d.day)}`;
    if (damerauLevenshtein(text(a), text(b)) <= 1) return 'typo';
    // Two of the three parts agree: one of them mistyped (a day off, a wrong month, a wrong year).
    const agree = Number(a.year === b.year) + Number(a.month === b.month) + Number(a.day === b.day);
    return agree === 2 ? 'near' : 'different';
  }
  // One of them partial: what both know agrees, or not.
  if (a.year !== b.year) return Math.abs(a.year - b.year) <= 1 ? 'typo' : 'different';
  if (a.month !== null && b.month !== null && a.month !== b.month) return 'different';
  return 'partial';
}

function compareEmails(a: PreparedEmail[], b: PreparedEmail[]): Agreement<'email'> | null {
  if (a.length === 0 || b.length === 0) return null;
  let best: Agreement<'email'> | null = null;
  for (const x of a) {
    for (const y of b) {
      if (x.canonical === y.canonical) {
        const level = x.verified && y.verified ? 'exact_verified' : 'exact';
        best = stronger(best, { comparison: 'email', level, value: x.canonical });
      } else if (Math.min(x.local.length, y.local.length) >= 4 && jaroWinkler(x.local, y.local) >= LOCAL_CLOSE) {
        best = stronger(best, { comparison: 'email', level: 'local_close', value: null });
      }
    }
  }
  return best ?? { comparison: 'email', level: 'different', value: null };
}

const LINE_RANK = { mobile: 0, unknown: 1, landline: 2 } as const;
const lineKey = (a: Agreement<'phone'>): keyof typeof LINE_RANK => a.line ?? 'unknown';

function comparePhones(a: PreparedPhone[], b: PreparedPhone[]): Agreement<'phone'> | null {
  if (a.length === 0 || b.length === 0) return null;
  let best: Agreement<'phone'> | null = null;
  for (const x of a) {
    for (const y of b) {
      if (x.e164 === y.e164) {
        const level = x.verified && y.verified ? 'exact_verified' : 'exact';
        const found: Agreement<'phone'> = { comparison: 'phone', level, value: x.e164, ...lineOf(x.e164) };
        // Of two numbers both hold alike, the one that says more of the person: a mobile, then a number of either kind.
        const tie: boolean =
          best !== null && best.level === level && LINE_RANK[lineKey(found)] < LINE_RANK[lineKey(best)];
        best = tie ? found : stronger(best, found);
      } else if (x.e164.length === y.e164.length && damerauLevenshtein(x.e164, y.e164) === 1) {
        // One digit off a number of the same line: a mistyped mobile is still the person's, a landline the home's.
        const line = lineOf(x.e164).line;
        const same = line !== undefined && line === lineOf(y.e164).line ? { line } : {};
        best = stronger(best, { comparison: 'phone', level: 'typo', value: null, ...same });
      }
    }
  }
  if (best) return best;
  // Each holds a verified number and they differ: evidence against (people change numbers, so not much).
  const verified = a.some((x) => x.verified) && b.some((y) => y.verified);
  return { comparison: 'phone', level: verified ? 'different_verified' : 'different', value: null };
}

function compareAddresses(a: ParsedAddress[], b: ParsedAddress[]): Agreement<'address'> | null {
  if (a.length === 0 || b.length === 0) return null;
  let best: Agreement<'address'> | null = null;
  // `different` needs a pair that could be told apart: both postcodes known, or two countries.
  let comparable = false;
  for (const x of a) {
    for (const y of b) {
      if (x.key === y.key) {
        best = stronger(best, { comparison: 'address', level: 'exact', value: x.key });
        continue;
      }
      if (x.country !== y.country) {
        comparable = true;
        continue;
      }
      const street = x.street === y.street || jaroWinkler(x.street, y.street) >= NAME_CLOSE;
      if (!x.postcode || !y.postcode) {
        // A postcode missing on one side: the same number on the same street is close, else unknown.
        if (street && x.number !== null && x.number === y.number)
          best = stronger(best, { comparison: 'address', level: 'close', value: null });
        continue;
      }
      comparable = true;
      if (x.postcode !== y.postcode) continue;
      const level: Level<'address'> =
        street && x.number !== null && x.number === y.number ? 'close' : street ? 'street' : 'postcode';
      best = stronger(best, { comparison: 'address', level, value: null });
    }
  }
  return best ?? (comparable ? { comparison: 'address', level: 'different', value: null } : null);
}

function compareDevices(a: PreparedDevice[], b: PreparedDevice[]): Agreement<'device'> | null {
  if (a.length === 0 || b.length === 0) return null;
  let best: Agreement<'device'> | null = null;
  for (const x of a) {
    for (const y of b) {
      if (x.fingerprint === y.fingerprint) return { comparison: 'device', level: 'exact', value: x.fingerprint };
      if (x.network && x.network === y.network) best = { comparison: 'device', level: 'network', value: null };
    }
  }
  return best ?? { comparison: 'device', level: 'different', value: null };
}

function compareCards(a: PreparedCard[], b: PreparedCard[]): Agreement<'card'> | null {
  if (a.length === 0 || b.length === 0) return null;
  let best: Agreement<'card'> | null = null;
  for (const x of a) {
    for (const y of b) {
      if (x.fingerprint && x.fingerprint === y.fingerprint) {
        return { comparison: 'card', level: 'fingerprint', value: x.fingerprint };
      }
      if (x.details && x.details === y.details) best = { comparison: 'card', level: 'details', value: null };
    }
  }
  return best ?? { comparison: 'card', level: 'different', value: null };
}

/** Every comparison of two prepared records that both have the field for. */
export function compareRecords(a: PreparedRecord, b: PreparedRecord): Agreement[] {
  const [given, family] = compareNames(a, b);
  const birth = a.birth && b.birth ? compareBirth(a.birth, b.birth) : null;
  const all: (Agreement | null)[] = [
    a.given && b.given ? given : null,
    a.family && b.family ? family : null,
    birth ? { comparison: 'birth_date', level: birth, value: null } : null,
    compareEmails(a.emails, b.emails),
    comparePhones(a.phones, b.phones),
    compareAddresses(a.addresses, b.addresses),
    compareDevices(a.devices, b.devices),
    compareCards(a.cards, b.cards),
  ];
  return all.filter((x): x is Agreement => x !== null);
}
