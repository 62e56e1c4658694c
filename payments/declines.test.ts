import { describe, expect, it } from 'vitest';
import { DECLINES, declineCodeInToken, declineRule, decideDecline, type DeclineClass } from './declines';

describe('decline classes', () => {
  const expected: Record<DeclineClass, string[]> = {
    fraud_hard: ['stolen_card', 'lost_card', 'pickup_card', 'fraudulent'],
    hard: ['expired_card', 'incorrect_number', 'invalid_account', 'do_not_try_again'],
    soft: ['insufficient_funds', 'do_not_honor', 'generic_decline', 'processing_error', 'try_again_later'],
  };
  for (const [cls, codes] of Object.entries(expected)) {
    it.each(codes)(`%s is ${cls}`, (code) => expect(declineRule(code).class).toBe(cls));
  }

  it('deactivates fraud-hard and hard declines, expired_card as expired, and forbids retrying them', () => {
    expect(declineRule('stolen_card')).toMatchObject({ status: 'compromised', doNotRetry: true });
    expect(declineRule('expired_card')).toMatchObject({ status: 'expired', doNotRetry: true });
    expect(declineRule('do_not_try_again')).toMatchObject({ status: 'inactive', doNotRetry: true });
    for (const rule of Object.values(DECLINES)) if (rule.class === 'soft') expect(rule.doNotRetry).toBe(false);
  });

  it('treats an unknown code as soft', () =>
    expect(declineRule('brand_new_code')).toEqual({ class: 'soft', doNotRetry: false }));

  it('decides a decline as the activities answer it: class, new status, retry, updater', () => {
    expect(decideDecline('expired_card')).toEqual({
      code: 'expired_card',
      class: 'hard',
      status: 'expired',
      do_not_retry: true,
      ask_updater: true,
    });
    expect(decideDecline('stolen_card')).toMatchObject({
      class: 'fraud_hard',
      status: 'compromised',
      ask_updater: false,
    });
    expect(decideDecline('insufficient_funds')).toEqual({
      code: 'insufficient_funds',
      class: 'soft',
      status: null,
      do_not_retry: false,
      ask_updater: false,
    });
  });
});

describe('test tokens', () => {
  it.each([
    ['tok_decline_insufficient_funds_7', 'insufficient_funds'],
    ['tok_decline_do_not_try_again', 'do_not_try_again'],
    ['tok_decline_do_not_honor_2', 'do_not_honor'],
    ['tok_visa_decline_stolen_card', 'stolen_card'],
    ['tok_visa', null],
    ['tok_decline_nonsense', null],
  ])('%s → %s', (token, code) => expect(declineCodeInToken(token)).toBe(code));
});
