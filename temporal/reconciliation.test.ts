import { describe, expect, it } from 'vitest';
import { parseRecoveryChargeKey } from './reconciliation';

describe("a recovery's charge key", () => {
  it.each([
    ['pay_1:pm-a', { payment_id: 'pay_1', payment_method_id: 'pm-a' }],
    ['pay_1:pm-a:r2', { payment_id: 'pay_1', payment_method_id: 'pm-a' }],
    ['pay_1:pm-a:renewed', { payment_id: 'pay_1', payment_method_id: 'pm-a' }],
    ['pay_1:pm-a:r3:renewed', { payment_id: 'pay_1', payment_method_id: 'pm-a' }],
    ['pay:with:colons:pm-a:r1', { payment_id: 'pay:with:colons', payment_method_id: 'pm-a' }],
  ])('%s names its payment and method', (key, parsed) => expect(parseRecoveryChargeKey(key)).toEqual(parsed));

  it('is not a recovery key without a method', () => expect(parseRecoveryChargeKey('original')).toBeNull());
});
