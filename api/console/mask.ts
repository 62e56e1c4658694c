/**
 * What a console page shows of an identifier: enough to recognise it, not enough to use it.
 * `alice@acme.io` → `a***@acme.io`; `+14155550142` → `+1 *** *** 0142`; a device fingerprint or a
 * processor card fingerprint → its first 4 and last 4 characters. Every identifier a page renders
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

export function maskIdentifier(type: string, value: string): string {
  return type === 'email' ? maskEmail(value) : type === 'phone' ? maskPhone(value) : maskOpaque(value);
}

/** A fingerprint or other long opaque value: its ends only. */
export function maskOpaque(value: string): string {
  return value.length <= 8 ? '****' : `${value.slice(0, 4)}…${value.slice(-4)}`;
}
