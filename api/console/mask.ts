/**
 * What a console page shows of an identifier: enough to recognise it, not enough to use it.
 * `alice@acme.io` → `a***@acme.io`; `+14155550142` → `+1 *** *** 0142`; a device fingerprint or a
 * processor card fingerprint → its last 4 characters (nothing of a short one); a street line → its words' first
 * letters (`** D****** S*`). Every identifier a page renders
 * goes through these; the browser tests check no rendered page holds one unmasked.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  return `${email.slice(0, 1)}***${email.slice(at)}`;
}

export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  const code = parsePhoneNumberFromString(phone)?.countryCallingCode ?? digits.slice(0, 1);
  const last = digits.slice(-4);
  return `+${code} *** *** ${last}`;
}

/** An identifier by its type (`email`, `phone_number` as the graph names it, or `phone`). */
export function maskIdentifier(type: string, value: string): string {
  if (type === 'email') return maskEmail(value);
  return type === 'phone_number' || type === 'phone' ? maskPhone(value) : maskOpaque(value);
}

/**
 * A street line: each word's first letter, the rest starred, every digit starred (a house number
 * says too much): `10 Downing St` → `** D****** S*`.
 */
export function maskStreet(street: string): string {
  return street
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => [...word].map((ch, i) => (i === 0 && !/\d/.test(ch) ? ch : '*')).join(''))
    .join(' ');
}

/** A fingerprint or other opaque value: its last 4 characters when it is long (12 or more), else nothing. */
export function maskOpaque(value: string): string {
  return value.length < 12 ? '****' : `…${value.slice(-4)}`;
}
