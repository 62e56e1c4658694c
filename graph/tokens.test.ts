import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from './errors';
import { freeText, text } from './model';
import { assertIsToken, containsCardNumber, luhnValid, TokenCipher } from './tokens';

describe('TokenCipher', () => {
  const cipher = new TokenCipher(randomBytes(32));

  it('round-trips a token and never stores it in clear', () => {
    const stored = cipher.encrypt('tok_visa_123', 'pm-1');
    expect(stored).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(stored).not.toContain('tok_visa');
    expect(cipher.decrypt(stored, 'pm-1')).toBe('tok_visa_123');
  });

  it('uses a fresh IV every time', () => {
    expect(cipher.encrypt('tok', 'pm-1')).not.toBe(cipher.encrypt('tok', 'pm-1'));
  });

  it('refuses a ciphertext moved to another payment method, tampered with, or under another key', () => {
    const stored = cipher.encrypt('tok_visa_123', 'pm-1');
    expect(() => cipher.decrypt(stored, 'pm-2')).toThrow();
    const parts = stored.split('.');
    parts[2] = Buffer.from(
      'x' +
        Buffer.from(parts[2] as string, 'base64url')
          .toString('latin1')
          .slice(1),
      'latin1',
    ).toString('base64url');
    expect(() => cipher.decrypt(parts.join('.'), 'pm-1')).toThrow();
    expect(() => new TokenCipher(randomBytes(32)).decrypt(stored, 'pm-1')).toThrow();
  });

  it('insists on a 32-byte key and keeps it out of JSON', () => {
    expect(() => new TokenCipher(randomBytes(16))).toThrow(/32 bytes/);
    expect(JSON.stringify({ cipher })).toBe('{"cipher":"TokenCipher"}');
  });
});

describe('card numbers', () => {
  it('checks Luhn', () => {
    expect(luhnValid('4242424242424242')).toBe(true);
    expect(luhnValid('4242424242424241')).toBe(false);
  });

  it.each([
    '4242424242424242',
    '4242 4242 4242 4242',
    '4242-4242-4242-4242',
    '4242.4242.4242.4242',
    '4242/4242/4242/4242',
    '4242_4242_4242_4242',
    'my card is 4242.4242.4242.4242, thanks',
    'tok_4000056655665556',
    '3782 822463 10005',
  ])('spots %s', (text) => expect(containsCardNumber(text)).toBe(true));

  it.each(['tok_visa', 'tok_decline_insufficient_funds_7', '4242424242424241', '1234', 'pm_000000000000'])(
    'lets %s through',
    (text) => expect(containsCardNumber(text)).toBe(false),
  );

  it('never mistakes a UUID-based token for a card number', () => {
    for (let i = 0; i < 2000; i++) expect(containsCardNumber(`tok_${randomUUID()}`)).toBe(false);
  });

  it('keeps them out of free text: reasons, notes, a customer’s words', () => {
    expect(freeText(500).safeParse('charged twice on 4242.4242.4242.4242').success).toBe(false);
    expect(text(500).safeParse('card 4242 4242 4242 4242 was stolen').success).toBe(false);
    expect(text(500).safeParse('the card ending 4242 was stolen on 2026-11-20').success).toBe(true);
  });

  it('refuses with an error naming the field', () => {
    expect(() => assertIsToken('4242424242424242', 'payment_method.token')).toThrow(InvalidInputError);
    expect(() => assertIsToken('4242424242424242', 'payment_method.token')).toThrow(/^payment_method\.token: /);
  });
});
