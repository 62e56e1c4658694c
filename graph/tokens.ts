/**
 * Payment tokens at rest: AES-256-GCM with a random 96-bit IV per token and the payment
 * method's id as additional authenticated data, so a ciphertext copied onto another payment
 * method does not decrypt. Stored as `v1.<iv>.<ciphertext>.<tag>` (base64url parts).
 *
 * A full card number (PAN) is never accepted where a gateway token belongs.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { InvalidInputError } from './errors';

const VERSION = 'v1';

export class TokenCipher {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('the payment-token key must be 32 bytes');
    this.#key = Buffer.from(key);
  }

  encrypt(token: string, paymentMethodId: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(paymentMethodId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
    return [VERSION, iv, ciphertext, cipher.getAuthTag()]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  decrypt(stored: string, paymentMethodId: string): string {
    const [version, iv, ciphertext, tag] = stored.split('.');
    if (version !== VERSION || !iv || !ciphertext || !tag) throw new Error('unrecognised encrypted token format');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(paymentMethodId, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** Keeps the key out of logs and inspection. */
  toJSON(): string {
    return 'TokenCipher';
  }
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
 * digit run), or 4-4-4-(1–7) / 4-6-5 digit groups separated by one space, dash, dot, slash or
 * underscore, the same throughout (not glued to other letters or digits, so a UUID's hex groups
 * never qualify).
 */
const CARD_NUMBER_SHAPES = [
  /(?<!\d)\d{13,19}(?!\d)/g,
  /(?<![\dA-Za-z])\d{4}([ ./_-])\d{4}\1\d{4}\1\d{1,7}(?![\dA-Za-z])/g,
  /(?<![\dA-Za-z])\d{4}([ ./_-])\d{6}\1\d{5}(?![\dA-Za-z])/g,
];

/** True when the text contains something shaped like a full card number that passes Luhn. */
export function containsCardNumber(text: string): boolean {
  return CARD_NUMBER_SHAPES.some((shape) =>
    [...text.matchAll(shape)].some((m) => luhnValid(m[0].replace(/[ ./_-]/g, ''))),
  );
}

/** Refuses a full card number where a gateway token belongs. */
export function assertIsToken(token: string, field: string): void {
  if (containsCardNumber(token)) {
    throw new InvalidInputError(field, 'looks like a full card number; send the payment gateway token instead');
  }
}
