/** What the customer's own page says, and whose page it is (the page itself: test/integration/console-me.test.ts). */
import { describe, expect, it } from 'vitest';
import { cardWords, durationWords, expiryWords, nextDefault, selfOf, signInTooOld, trustWords } from './meWords';

const card = (id: string, overrides: Record<string, unknown> = {}) => ({
  id,
  type: 'card' as const,
  status: 'active' as const,
  brand: 'visa',
  last_four: '4242',
  expiry_month: 3,
  expiry_year: 2031,
  is_default: false,
  last_used: null,
  ...overrides,
});

describe("the customer's own page", () => {
  it('is only a customer’s own token’s: scope self with a subject', () => {
    expect(selfOf({ subject: 'c-1', scopes: new Set(['self']) })).toBe('c-1');
    expect(selfOf({ subject: null, scopes: new Set(['self']) })).toBeNull();
    expect(selfOf({ subject: 'ops-person', scopes: new Set(['ops']) })).toBeNull();
    expect(selfOf({ subject: 'agent', scopes: new Set(['customers:read']) })).toBeNull();
  });

  it('names a card by brand and last four, and its expiry as MM/YYYY', () => {
    expect(cardWords(card('a'))).toBe('Visa ending 4242');
    expect(cardWords({ type: 'card', brand: null, last_four: null })).toBe('Card');
    expect(cardWords({ type: 'bank_account', brand: null, last_four: '0042' })).toBe('bank account ending 0042');
    expect(expiryWords(card('a'))).toBe('03/2031');
    expect(expiryWords({ expiry_month: null, expiry_year: null })).toBe('—');
  });

  it('predicts the default the graph promotes: the next active card in wallet order', () => {
    const wallet = [
      card('default', { is_default: true }),
      card('expired', { status: 'expired' }),
      card('recent'),
      card('older'),
    ];
    expect(nextDefault(wallet, 'default')?.id).toBe('recent');
    expect(nextDefault([card('default', { is_default: true })], 'default')).toBeNull();
  });

  it('says a device’s trust in words, not by colour', () => {
    expect(trustWords(0.8, 0.7)).toBe('0.80 (trusted)');
    expect(trustWords(0.7, 0.7)).toBe('0.70 (trusted)');
    expect(trustWords(0.5, 0.7)).toBe('0.50 (not trusted)');
  });

  it('asks for a fresh sign-in when auth_time is missing or older than the window', () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0);
    const at = (secondsAgo: number) => ({ subject: 'c', scopes: new Set(['self']), authTime: now / 1000 - secondsAgo });
    expect(signInTooOld(at(60), 300, now)).toBe(false);
    expect(signInTooOld(at(301), 300, now)).toBe(true);
    expect(signInTooOld({ subject: 'c', scopes: new Set(['self']), authTime: null }, 300, now)).toBe(true);
    expect(durationWords(300)).toBe('5 minutes');
    expect(durationWords(60)).toBe('1 minute');
    expect(durationWords(90)).toBe('90 seconds');
  });
});
