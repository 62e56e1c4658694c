import { describe, expect, it } from 'vitest';
import { paymentFailureSchema, paymentIdField } from './requests';

describe('a payment id', () => {
  it('is never a card number: kept in the ledger, the gateway’s records and the logs', () => {
    const refused = paymentIdField.safeParse('pay_4242424242424242');
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toMatch(/looks like a full card number/);
    expect(paymentIdField.safeParse('pay_2026-11-26_000123').success).toBe(true);
    expect(paymentIdField.safeParse('4242:4242:4242:4242').success).toBe(false);
    // A long numeric id of another system is no card number, even when it passes Luhn.
    const snowflakes = ['1866312435889258509', '1866312435889258517', '1866312435889258525']; // each passes Luhn
    for (const id of snowflakes) expect(paymentIdField.safeParse(id).success, id).toBe(true);
    const failure = paymentFailureSchema.safeParse({
      payment_id: '4242.4242.4242.4242',
      customer_id: '6f1c2a7e-3f47-4f53-9f5d-1f0c2b8f4a11',
      payment_method_id: '0b6f7e55-2d4e-4a3f-8a43-9d1c0c7e2b19',
      amount: 1999,
      currency: 'EUR',
      decline_code: 'insufficient_funds',
    });
    expect(failure.error?.issues.map((i) => i.path.join('.'))).toEqual(['payment_id']);
  });
});

describe('a payment failure’s `replaces`', () => {
  const failure = {
    payment_id: 'pay_2026-11-29_000124',
    customer_id: '6f1c2a7e-3f47-4f53-9f5d-1f0c2b8f4a11',
    payment_method_id: '0b6f7e55-2d4e-4a3f-8a43-9d1c0c7e2b19',
    amount: 1999,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  };

  it('is optional, and a payment id like any other: never a card number', () => {
    expect(paymentFailureSchema.safeParse(failure).success).toBe(true);
    expect(paymentFailureSchema.parse({ ...failure, replaces: 'pay_2026-11-26_000123' }).replaces).toBe(
      'pay_2026-11-26_000123',
    );
    const refused = paymentFailureSchema.safeParse({ ...failure, replaces: 'pay_4242424242424242' });
    expect(refused.error?.issues.map((i) => i.path.join('.'))).toEqual(['replaces']);
  });
});
