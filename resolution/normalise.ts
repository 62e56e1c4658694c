/**
 * A record's values made comparable: names folded to plain lower-case letters, birth dates parsed
 * (as far as they are known), emails down to the mailbox that receives them, phone numbers to
 * E.164 (addresses: resolution/address.ts). Pure functions, no I/O.
 *
 * Rules:
 *   - nothing throws: a value that cannot be read is null (a birth date's unreadable part is
 *     null), and the comparison goes on without it;
 *   - an email is what graph/identity.ts takes (something@domain.tld, trimmed, lower-cased); its
 *     canonical form goes further, for matching only: the mailbox the provider delivers to;
 *   - a phone number is what graph/identity.ts makes of it (libphonenumber's E.164).
 */
import { isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { PartialDate } from './record';

/** Letters NFKD leaves whole: what they are written as in plain ASCII. */
const LETTERS: Readonly<Record<string, string>> = {
  ß: 'ss',
  æ: 'ae',
  Æ: 'AE',
  œ: 'oe',
  Œ: 'OE',
  ø: 'o',
  Ø: 'O',
  đ: 'd',
  Đ: 'D',
  ð: 'd',
  Ð: 'D',
  ł: 'l',
  Ł: 'L',
  þ: 'th',
  Þ: 'TH',
  ı: 'i',
  ħ: 'h',
  Ħ: 'H',
};
const UNFOLDED = new RegExp(`[${Object.keys(LETTERS).join('')}]`, 'g');

/** Lower-case, accents taken off (NFKD), the letters NFKD keeps spelled out (`ß` → `ss`). */
export function fold(value: string): string {
  return value
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(UNFOLDED, (c) => LETTERS[c] ?? c)
    .toLowerCase();
}

/**
 * A name as it is compared: accents off, lower-case, hyphens and whitespace one space, every other
 * mark dropped (`O'Brien` → `obrien`, `Jean-Luc` → `jean luc`, `Zoë` → `zoe`). Null for nothing.
 */
export function normaliseName(value: string | null): string | null {
  if (value === null) return null;
  const name = fold(value)
    .replace(/[\s\p{Pd}_]+/gu, ' ')
    .replace(/[^\p{L}\p{N} ]/gu, '')
    .replace(/ {2,}/g, ' ')
    .trim();
  return name === '' ? null : name;
}

const DATE_FORMS = [
  /^(\d{4})$/,
  /^(\d{4})[-/.](\d{1,2})$/,
  /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)?$/,
  /^(\d{4})(\d{2})(\d{2})$/,
];

/**
 * A birth date as far as it is known, from `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYYMMDD` (`/` or `.`
 * may stand for `-`; a time after a whole date is ignored). Null when it is none of these, the year
 * is before 1000, or a month or day is out of range (month 13, 31 April, 29 February 2001): a typo
 * there may have moved a digit out of the year too (1949-07-16 typed 1940-97-16), and the api
 * refuses such a date, so resolution never sees one from it.
 */
export function parseBirthDate(value: string | null): PartialDate | null {
  if (value === null) return null;
  const text = value.trim();
  for (const form of DATE_FORMS) {
    const m = form.exec(text);
    if (!m) continue;
    const year = Number(m[1]);
    if (year < 1000) return null;
    const month = m[2] === undefined ? null : Number(m[2]);
    if (month !== null && (month < 1 || month > 12)) return null;
    const day = m[3] === undefined ? null : Number(m[3]);
    if (day !== null && (month === null || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()))
      return null;
    return { year, month, day };
  }
  return null;
}

/**
 * How a provider reads the local part of its addresses. `domains`: exact names, or `name.*` for
 * the name under a country's domain (`hotmail.co.uk`, `live.fr`).
 */
export interface MailboxRule {
  domains: readonly string[];
  /** Dots in the local part are ignored: `j.doe` is `jdoe`. */
  ignoreDots: boolean;
  /** `+` and what follows it in the local part is a tag: `jdoe+shop` is `jdoe`. */
  dropTag: boolean;
  /** The domain every one of them is delivered as, when it is one mailbox under several names. */
  domain: string | null;
}

/**
 * The providers whose addresses reach one mailbox however they are written (as the providers
 * document it). Only these: elsewhere a dot or a `+` may be part of the mailbox's name.
 */
export const MAILBOX_RULES: readonly MailboxRule[] = [
  // Gmail ignores dots in the name and takes `+tag`; googlemail.com is the same accounts
  // (the name Gmail had in the UK and Germany).
  { domains: ['gmail.com', 'googlemail.com'], ignoreDots: true, dropTag: true, domain: 'gmail.com' },
  // Microsoft's consumer mail (Outlook.com): `+tag` is delivered to the mailbox; dots are part of the name.
  {
    domains: ['outlook.com', 'outlook.*', 'hotmail.*', 'live.*', 'msn.com'],
    ignoreDots: false,
    dropTag: true,
    domain: null,
  },
  // iCloud Mail: `+tag` is delivered to the mailbox. me.com and mac.com are its older domains, but
  // only accounts as old as they are have them (a newer one is icloud.com alone): the domain is kept.
  { domains: ['icloud.com', 'me.com', 'mac.com'], ignoreDots: false, dropTag: true, domain: null },
  // Fastmail and Proton: `+tag` is delivered to the mailbox (plus addressing).
  { domains: ['fastmail.com', 'fastmail.fm'], ignoreDots: false, dropTag: true, domain: null },
  {
    domains: ['protonmail.com', 'protonmail.ch', 'proton.me', 'pm.me'],
    ignoreDots: false,
    dropTag: true,
    domain: null,
  },
  // Not Yahoo: its disposable addresses are `name-keyword`, and `+` is no tag there (an address
  // with `+` is another mailbox or none), so a Yahoo address is kept as it is.
];

/** What may follow `name.` in a `name.*` rule: a country's domain (`fr`, `co.uk`, `com.au`) or `com`. */
const COUNTRY_DOMAIN = /^(?:[a-z]{2,3}|(?:co|com|net|org)\.[a-z]{2})$/;

function mailboxRule(domain: string): MailboxRule | null {
  for (const rule of MAILBOX_RULES) {
    for (const d of rule.domains) {
      if (d === domain) return rule;
      if (d.endsWith('.*') && domain.startsWith(d.slice(0, -1)) && COUNTRY_DOMAIN.test(domain.slice(d.length - 1))) {
        return rule;
      }
    }
  }
  return null;
}

// As graph/identity.ts: the domain's labels exclude the dot, so the match cannot backtrack quadratically.
const EMAIL = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/;

/** An email address: as given (trimmed, lower-cased), its two parts, and the mailbox it reaches. */
export interface NormalisedEmail {
  address: string;
  /** The local part and domain of `address`. */
  local: string;
  domain: string;
  /** The mailbox the provider delivers `address` to (MAILBOX_RULES); `address` elsewhere. */
  canonical: string;
}

/**
 * The email trimmed and lower-cased (null unless it is something@domain.tld, as graph/identity.ts
 * takes it), and the mailbox it reaches: `J.Doe+shop@googlemail.com` is `jdoe@gmail.com`.
 */
export function normaliseEmail(value: string): NormalisedEmail | null {
  const address = value.trim().toLowerCase();
  if (!EMAIL.test(address)) return null;
  const at = address.indexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  const rule = mailboxRule(domain);
  if (!rule) return { address, local, domain, canonical: address };
  let mailbox = local;
  if (rule.dropTag) {
    const plus = mailbox.indexOf('+');
    if (plus > 0) mailbox = mailbox.slice(0, plus);
  }
  if (rule.ignoreDots) mailbox = mailbox.replaceAll('.', '');
  // A name of nothing but what the rules drop stays as it was.
  if (mailbox === '') mailbox = local;
  return { address, local, domain, canonical: `${mailbox}@${rule.domain ?? domain}` };
}

/**
 * The phone number in E.164, read as graph/identity.ts reads it (libphonenumber, the number in
 * international form or national to `defaultRegion`), or null when it is not a possible number
 * (or the region is not one libphonenumber knows).
 */
export function normalisePhone(value: string, defaultRegion: string): string | null {
  const region = defaultRegion.trim().toUpperCase();
  if (!isSupportedCountry(region)) return null;
  const phone = parsePhoneNumberFromString(value.trim(), region);
  if (phone?.isPossible()) return phone.number;
  // International form of a plan libphonenumber does not know to allow it: its digits, as graph/identity.ts keeps it.
  return INTERNATIONAL.test(value.trim()) ? `+${value.replace(/\D/g, '')}` : null;
}

/** graph/identity.ts's PHONE_PATTERN: `+`, a country code, 7–15 digits with light punctuation. */
const INTERNATIONAL = /^\+[1-9](?:[ .()-]{0,2}[0-9]){6,14}$/;

export type PhoneLine = 'mobile' | 'landline';

/**
 * The line an E.164 number is, as libphonenumber's metadata says, or nothing: a plan where a mobile
 * and a fixed line look alike (North America's "fixed line or mobile") says neither.
 */
export function lineOf(e164: string): { line?: PhoneLine } {
  const type = parsePhoneNumberFromString(e164)?.getType();
  return type === 'MOBILE' ? { line: 'mobile' } : type === 'FIXED_LINE' ? { line: 'landline' } : {};
}
