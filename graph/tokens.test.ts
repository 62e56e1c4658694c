import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../config/keyRing';
import { InvalidInputError } from './errors';
import { freeText, text } from './model';
import { assertIsToken, containsCardNumber, luhnValid, TokenCipher } from './tokens';

describe('TokenCipher', () => {
  const ring = (...ids: string[]) => new KeyRing(ids.map((id) => ({ id, key: randomBytes(32) })));
  const cipher = new TokenCipher(ring('k1'));

  it('round-trips a token, names its key and never stores it in clear', () => {
    const stored = cipher.encrypt('tok_visa_123', 'pm-1');
    expect(stored).toMatch(/^t2\.k1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(TokenCipher.keyIdOf(stored)).toBe('k1');
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
    // Flip a bit of the ciphertext: overwriting a byte with a constant left it
    // unchanged whenever the byte already was that constant (1 run in 256).
    const body = Buffer.from(parts[3] as string, 'base64url');
    body[0] = (body[0] as number) ^ 0x01;
    parts[3] = body.toString('base64url');
    expect(() => cipher.decrypt(parts.join('.'), 'pm-1')).toThrow();
    expect(() => new TokenCipher(ring('k1')).decrypt(stored, 'pm-1')).toThrow();
    expect(() => new TokenCipher(ring('k2')).decrypt(stored, 'pm-1')).toThrow(
      'payment-token key k1 is not in PERSONA_TOKEN_KEYS',
    );
  });

  it("seals under the ring's first key and opens what any key in the ring sealed", () => {
    const old = ring('old');
    const sealedBefore = new TokenCipher(old).encrypt('tok_a', 'pm-1');
    const rotated = new TokenCipher(new KeyRing([{ id: 'new', key: randomBytes(32) }, old.active]));
    expect(rotated.activeKeyId).toBe('new');
    expect(rotated.decrypt(sealedBefore, 'pm-1')).toBe('tok_a');
    expect(TokenCipher.keyIdOf(rotated.encrypt('tok_a', 'pm-1'))).toBe('new');
  });

  it('keeps its keys out of JSON', () => {
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
    '4242 4242-4242.4242',
    '4242\t4242\t4242\t4242',
    'card4242 4242 4242 4242please',
    'num:4242.4242/4242_4242!',
    'pay_4242424242424242',
    '4242:4242:4242:4242',
    'ref-2024-4242-4242-4242-4242',
    '4242  4242\u00a04242 4242',
  ])('spots %s', (text) => expect(containsCardNumber(text)).toBe(true));

  it.each([
    'tok_visa',
    'tok_decline_insufficient_funds_7',
    '4242424242424241',
    '1234',
    'pm_000000000000',
    'the card ending 4242 was stolen on 2026-11-20 at 12:30',
  ])('lets %s through', (text) => expect(containsCardNumber(text)).toBe(false));

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
