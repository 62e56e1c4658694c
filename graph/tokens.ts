/**
 * Payment tokens at rest: AES-256-GCM with a random 96-bit IV per token and the payment
 * method's id as additional authenticated data, so a ciphertext copied onto another payment
 * method does not decrypt. Stored as `t2.<key id>.<iv>.<ciphertext>.<tag>` (base64url parts):
 * the key id names the ring key (`PERSONA_TOKEN_KEYS`) that sealed it, so a new key can be put
 * first while the old one still opens what it sealed, and `npm run tokens:rotate` re-seals
 * everything under the new one, online (graph/tokenRotation.ts).
 *
 * A full card number (PAN) is never accepted where a gateway token belongs.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyRing } from '../config/keyRing';
import { InvalidInputError } from './errors';

const VERSION = 't2';

export class TokenCipher {
  readonly #ring: KeyRing;

  constructor(ring: KeyRing) {
    this.#ring = ring;
  }

  /** The id of the key new tokens are sealed under. */
  get activeKeyId(): string {
    return this.#ring.active.id;
  }

  encrypt(token: string, paymentMethodId: string): string {
    const { id, key } = this.#ring.active;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(paymentMethodId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
    return [VERSION, id, ...[iv, ciphertext, cipher.getAuthTag()].map((p) => p.toString('base64url'))].join('.');
  }

  decrypt(stored: string, paymentMethodId: string): string {
    const parts = stored.split('.');
    const [version, keyId, iv, ciphertext, tag] = parts;
    if (version !== VERSION || !keyId || !iv || !ciphertext || !tag || parts.length !== 5) {
      throw new Error('unrecognised encrypted token format');
    }
    const key = this.#ring.get(keyId);
    if (!key) throw new Error(`payment-token key ${keyId} is not in PERSONA_TOKEN_KEYS`);
    return open(key, iv, ciphertext, tag, paymentMethodId);
  }

  /** The id of the key a stored token was sealed under (null for a value that is not a sealed token). */
  static keyIdOf(stored: string): string | null {
    const parts = stored.split('.');
    return parts[0] === VERSION ? (parts[1] ?? null) : null;
  }

  /** Keeps the keys out of logs and inspection. */
  toJSON(): string {
    return 'TokenCipher';
  }
}

function open(key: Buffer, iv: string, ciphertext: string, tag: string, paymentMethodId: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(paymentMethodId, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
}

/** Luhn checksum over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Shapes a full card number takes inside text: 13–19 digits in a row (not part of a longer
 * digit run, whatever letters touch it), or 4-4-4-(1–7) / 4-6-5 digit groups, each gap one dash
 * or one or two of space (any, a no-break one too), colon, dot, slash or underscore, mixed as
 * they come. Groups are not glued to other letters or
 * digits when a dash joins them (so a UUID's hex groups never qualify); groups joined without a
 * dash may touch letters (`card4242 4242 4242 4242x`).
 */
const GAP = '(?:[\\s\\u00a0:./_]{1,2}|-)';
const NO_DASH = '[\\s\\u00a0:./_]{1,2}';
// Inside a lookahead, so that matches overlap: a group that belongs to something before the card
// (`ref-2024-4242-4242-4242-4242`) does not hide the card after it.
const grouped = (gap: string, edge: string) =>
  [`\\d{4}${gap}\\d{4}${gap}\\d{4}${gap}\\d{1,7}`, `\\d{4}${gap}\\d{6}${gap}\\d{5}`].map(
    (body) => new RegExp(`(?<!${edge})(?=(${body})(?!${edge}))`, 'g'),
  );
const CARD_NUMBER_SHAPES = [/(?<!\d)\d{13,19}(?!\d)/g, ...grouped(GAP, '[\\dA-Za-z]'), ...grouped(NO_DASH, '\\d')];

/** True when the text contains something shaped like a full card number that passes Luhn. */
export function containsCardNumber(text: string): boolean {
  return cardNumbersIn(text).length > 0;
}

/** The digits of every card-number shape in the text that passes Luhn. */
function cardNumbersIn(text: string): string[] {
  return CARD_NUMBER_SHAPES.flatMap((shape) =>
    [...text.matchAll(shape)].map((m) => (m[1] ?? m[0]).replace(/\D/g, '')).filter(luhnValid),
  );
}

/**
 * For ids (a payment's): what a card network would issue — 15 or 16 digits under a major
 * network's prefix (Visa, Mastercard, Amex, Discover) — so that a long numeric id of another
 * system (a 19-digit snowflake) is not refused one time in ten for passing Luhn.
 */
export function containsIssuedCardNumber(text: string): boolean {
  return cardNumbersIn(text).some((d) => (d.length === 15 || d.length === 16) && /^(4|5[1-5]|2[2-7]|3[47]|6)/.test(d));
}

/** Refuses a full card number where a gateway token belongs. */
export function assertIsToken(token: string, field: string): void {
  if (containsCardNumber(token)) {
    throw new InvalidInputError(field, 'looks like a full card number; send the payment gateway token instead');
  }
}
