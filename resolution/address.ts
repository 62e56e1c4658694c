/**
 * Addresses split for comparison: the house number kept apart from the street, the flat apart
 * from both, street words shortened as graph/addresses.ts shortens them (and more), the postcode
 * lower-cased without spaces or dashes, as in its match key. Pure, no I/O.
 */
import { fold, normaliseName } from './normalise';
import type { RecordAddress } from './record';

/** An address as it is compared: where on which street, in which postcode. */
export interface ParsedAddress {
  /** The house number (`10`, `10a`, `10-12`), null when the address has none. */
  number: string | null;
  /** The flat, apartment, unit or suite in the building (`3`, `4b`; a floor alone as `fl 2`). */
  unit: string | null;
  /** The street, normalised: lower-case, words shortened (`downing st`). */
  street: string;
  /** Lower-case, no spaces or dashes (`sw1a2aa`). */
  postcode: string | null;
  /** The city (or locality, from street2, when there is no city), normalised as a name. */
  city: string | null;
  /** ISO 3166-1 alpha-2, upper-case. */
  country: string;
  /** `country|postcode|number|street`: equal for one place however it was typed. */
  key: string;
}

/**
 * Street words written in full or short, matched as the short form: graph/addresses.ts's
 * STREET_WORDS, and more (Australian and British street types, directions, German `straße`).
 */
export const STREET_WORDS: Readonly<Record<string, string>> = {
  street: 'st',
  str: 'st',
  strasse: 'st',
  avenue: 'ave',
  av: 'ave',
  road: 'rd',
  boulevard: 'blvd',
  drive: 'dr',
  lane: 'ln',
  place: 'pl',
  court: 'ct',
  crt: 'ct',
  square: 'sq',
  apartment: 'apt',
  suite: 'ste',
  floor: 'fl',
  circuit: 'cct',
  crescent: 'cres',
  parade: 'pde',
  terrace: 'tce',
  highway: 'hwy',
  close: 'cl',
  grove: 'gr',
  parkway: 'pkwy',
  esplanade: 'esp',
  circle: 'cir',
  centre: 'ctr',
  center: 'ctr',
  gardens: 'gdns',
  heights: 'hts',
  mount: 'mt',
  saint: 'st',
  north: 'n',
  south: 's',
  east: 'e',
  west: 'w',
  northeast: 'ne',
  northwest: 'nw',
  southeast: 'se',
  southwest: 'sw',
};

/** Words that name a flat in a building, followed by its number. */
const UNIT_WORDS = new Set(['flat', 'flt', 'apartment', 'apt', 'appt', 'unit', 'suite', 'ste', 'room', 'rm', 'shop']);
const FLOOR_WORDS = new Set(['level', 'lvl', 'floor', 'fl', 'flr']);
/** Words that say a number follows (`No. 10`). */
const NUMBER_WORDS = new Set(['no', 'nr', 'number']);

const UNIT_ID = /^(?:[a-z]?\d+[a-z]?|[a-z])$/;
const HOUSE_NUMBER = /^\d+[a-z]?(?:-\d+[a-z]?)?$/;
const SLASHED = /^([a-z]?\d+[a-z]?)\/(\d+[a-z]?(?:-\d+[a-z]?)?)$/;
const ORDINAL = /^(\d+)(?:st|nd|rd|th)$/;

/** One address line read: its house number, unit and floor (when it says them), and its other words as written. */
interface Line {
  number: string | null;
  unit: string | null;
  floor: string | null;
  words: string[];
}

function shortWord(word: string): string {
  const short = STREET_WORDS[word];
  if (short !== undefined) return short;
  // German compounds: `Hauptstraße` and `Hauptstr.` are `hauptstr`.
  return /^\p{L}{2,}str(?:asse)?$/u.test(word) ? word.replace(/asse$/, '') : word;
}

function readLine(value: string | null): Line {
  const line: Line = { number: null, unit: null, floor: null, words: [] };
  if (value === null) return line;
  const text = fold(value)
    .replace(/['’`]/g, '')
    .replace(/#\s*(?=[a-z0-9])/g, ' unit ')
    .replace(/(\d)\s*-\s*(\d)/g, '$1-$2')
    .replace(/([a-z0-9])\s*\/\s*(\d)/g, '$1/$2')
    .replace(/[^\p{L}\p{N}/-]+/gu, ' ');
  // A dash or slash is kept only inside a number (`10-12`, `3/10`).
  const tokens = text
    .split(' ')
    .flatMap((t) => (HOUSE_NUMBER.test(t) || SLASHED.test(t) ? [t] : t.split(/[/-]/)))
    .filter((t) => t !== '');
  const rest: string[] = [];
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i] ?? '';
    const next = tokens[i + 1];
    if (UNIT_WORDS.has(token) && next !== undefined && UNIT_ID.test(next) && line.unit === null) {
      line.unit = next;
      i += 1;
    } else if (FLOOR_WORDS.has(token) && next !== undefined && UNIT_ID.test(next) && line.floor === null) {
      line.floor = next;
      i += 1;
    } else if (next !== undefined && FLOOR_WORDS.has(next) && ORDINAL.test(token) && line.floor === null) {
      line.floor = ORDINAL.exec(token)?.[1] ?? null;
      i += 1;
    } else if (!(NUMBER_WORDS.has(token) && next !== undefined && HOUSE_NUMBER.test(next))) {
      rest.push(token);
    }
  }
  const at = rest.findIndex((t) => HOUSE_NUMBER.test(t) || SLASHED.test(t));
  if (at === -1) {
    line.words = rest;
    return line;
  }
  const found = rest[at] ?? '';
  const last = at === rest.length - 1 && at > 0;
  const slashed = SLASHED.exec(found);
  if (slashed) {
    // `3/10 Smith St` (unit 3 at number 10, as Australia writes it); `Długa 10/3` (number 10, flat 3).
    const [, first = '', second = ''] = slashed;
    line.number = last ? first : second;
    line.unit ??= last ? second : first;
  } else {
    line.number = found;
  }
  // `10 Downing Street`; `Downing Street 10` (the continental order); `Harbour House 10 Quay St` (a
  // building's name before the number, dropped).
  let words = last ? rest.slice(0, at) : rest.slice(at + 1);
  // `22 Main St 4`: a number after the street is the flat's.
  const tail = words[words.length - 1];
  if (!last && words.length > 1 && tail !== undefined && HOUSE_NUMBER.test(tail) && line.unit === null) {
    line.unit = tail;
    words = words.slice(0, -1);
  }
  line.words = words;
  return line;
}

/**
 * A postcode as it is compared: lower-cased without spaces or dashes (`SW1A 2AA` = `sw1a2aa`; only
 * the space and the dash, as the graph's Cypher removes them, so that the two keys agree), a US
 * ZIP+4 as its ZIP (`94134-8618` = `94134`: the four name a block of the ZIP, which one customer
 * types and the next leaves out). graph/addresses.ts `addressMatchKey` keys the graph's addresses
 * the same way.
 */
export function postcodeOf(zip: string | null, country: string): string {
  const code = (zip ?? '').toLowerCase().replace(/[ -]/g, '');
  return country === 'US' && /^\d{9}$/.test(code) ? code.slice(0, 5) : code;
}

/**
 * An address split for comparison: the house number apart from the street (`10 Downing Street`,
 * `10A Downing St`, `Downing Street 10`), the flat apart from both (`Flat 3, 10 Downing Street`,
 * `Unit 4 22 Main Rd`, `3/10 Smith St`), street2 read as the flat (`Apt 4B`), as the street when
 * street1 is only a flat or a building's name, or else as the locality.
 */
export function parseAddress(a: RecordAddress): ParsedAddress {
  let main = readLine(a.street1);
  let other = readLine(a.street2);
  if (main.number === null && other.number !== null && other.words.length > 0) [main, other] = [other, main];
  // What is left of the other line: a flat (`Apt 4B`, `4B`), or a locality (`Westminster`).
  const otherUnit = other.unit ?? (other.words.length === 0 ? other.number : null);
  const locality =
    other.unit === null && other.number === null && other.words.length > 0 ? other.words.join(' ') : null;
  const floor = main.floor ?? other.floor;
  const unit = main.unit ?? otherUnit ?? (floor === null ? null : `fl ${floor}`);
  const country = a.country.trim().toUpperCase();
  const postcode = postcodeOf(a.zip_code, country);
  const street = main.words.map(shortWord).join(' ');
  const number = main.number;
  return {
    number,
    unit,
    street,
    postcode: postcode === '' ? null : postcode,
    city: normaliseName(a.city) ?? normaliseName(locality),
    country,
    key: `${country}|${postcode}|${number ?? ''}|${street}`,
  };
}
