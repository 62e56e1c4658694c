/**
 * Identity values before they reach the graph: normalisation (so two spellings of one email or
 * phone are one identifier) and junk detection (placeholders that many unrelated people type,
 * which must never tie them together). Pure functions, no I/O.
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { InvalidInputError } from './errors';
import type { IdentifierType } from './model';

// The domain's labels exclude the dot, so no input can make the match backtrack quadratically.
const EMAIL = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/;

/**
 * What the api takes as an email: something@domain.tld with no whitespace in it (spaces around it
 * are trimmed), at most 320 characters. Unambiguous (the domain's labels exclude the dot), so it
 * runs in linear time on any input. "Whitespace" is spelled out (every character JavaScript or Python counts as
 * one) so that the pattern means the same in the OpenAPI document, in clients generated from
 * it and here. Everything it accepts, normaliseIdentifier accepts too.
 */
const NOT_SPACE_OR_AT =
  '[^@ \\t\\n\\r\\f\\v\\u001c-\\u001f\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]';
const NOT_SPACE_AT_OR_DOT = NOT_SPACE_OR_AT.replace('[^@', '[^@.');
export const EMAIL_PATTERN = new RegExp(
  `^ *${NOT_SPACE_OR_AT}+@${NOT_SPACE_AT_OR_DOT}+(?:\\.${NOT_SPACE_AT_OR_DOT}+)+ *$`,
);

/**
 * What the api takes as a phone number: international (E.164) form, `+` and 7–15 digits,
 * which may be grouped by single spaces, dots, dashes or brackets: `+14155550123`,
 * `+1 (415) 555-0123`. Everything it accepts, normaliseIdentifier accepts too.
 */
export const PHONE_PATTERN = /^\+[1-9](?:[ .()-]{0,2}[0-9]){6,14}$/;

/** Email trimmed and lower-cased; phone to E.164 (national numbers read in `region`). */
export function normaliseIdentifier(
  type: IdentifierType,
  value: string,
  region: CountryCode = 'US',
  field = 'digital_identifiers.value',
): string {
  const trimmed = value.trim();
  if (type === 'email') {
    const email = trimmed.toLowerCase();
    if (!EMAIL.test(email)) throw new InvalidInputError(field, 'not an email address');
    return email;
  }
  const phone = parsePhoneNumberFromString(trimmed, region);
  if (phone?.isPossible()) return phone.number;
  // A number in international form whose country plan libphonenumber does not know to allow
  // it: kept as its digits, still one identifier however it was spaced.
  if (PHONE_PATTERN.test(trimmed)) return `+${trimmed.replace(/\D/g, '')}`;
  throw new InvalidInputError(field, 'not a phone number (use international format, e.g. +14155550123)');
}

const JUNK_WORDS = new Set([
  '',
  'null',
  'nil',
  'none',
  'na',
  'n/a',
  'undefined',
  'unknown',
  'anonymous',
  'anon',
  'test',
  'testing',
  'tester',
  'noemail',
  'no-email',
  'nomail',
  'noreply',
  'no-reply',
  'donotreply',
  'nobody',
  'user',
  'email',
  'example',
  'asdf',
  'qwerty',
  'x',
  'xx',
  'xxx',
  'abc',
  'fake',
  'dummy',
  'default',
  'guest',
]);
const JUNK_EMAIL_DOMAINS = new Set([
  'test.com',
  'test.test',
  'testing.com',
  'none.com',
  'domain.com',
  'noemail.com',
  'nomail.com',
  'fake.com',
  'invalid',
  'localhost',
]);

/**
 * True for placeholder identifiers (`null`, `anonymous`, `test@test.com`, `noreply@…`,
 * `+10000000000`, `+15555555555`, `1234567890`…) that must never match anyone.
 * Expects the normalised value.
 */
export function isJunkIdentifier(type: IdentifierType, value: string): boolean {
  if (JUNK_WORDS.has(value)) return true;
  if (type === 'email') {
    const [local = '', domain = ''] = value.split('@');
    return JUNK_WORDS.has(local) || JUNK_EMAIL_DOMAINS.has(domain) || /^(.)\1*$/.test(local);
  }
  const digits = value.replace(/\D/g, '');
  const national = parsePhoneNumberFromString(value)?.nationalNumber ?? digits;
  return (
    /^(\d)\1+$/.test(national) || // 0000000000, 5555555555
    '01234567890'.includes(national) || // 1234567, 0123456789
    '98765432109876'.includes(national) ||
    /^0+$/.test(digits.slice(-7)) // …0000000
  );
}

/** True for fingerprints that identify no device: empty, placeholders, all one character. */
export function isJunkFingerprint(fingerprint: string): boolean {
  const fp = fingerprint.trim().toLowerCase();
  return JUNK_WORDS.has(fp) || /^(.)\1*$/.test(fp) || fp.length < 8;
}
