import { describe, expect, it } from 'vitest';
import { parseInteraction } from './interactions';

const base = {
  id: 'pay-1',
  customer_id: '6f1c2a52-8a3e-4b8e-9a47-0c3e8f1d2b11',
  occurred_at: '2026-11-23T10:00:00+01:00',
};
const payment = {
  ...base,
  type: 'payment',
  payment_method_id: '0b0d7c36-5d0e-4d55-8f2a-6f4d8e9b1a22',
  amount: 1250,
  currency: 'USD',
  outcome: 'succeeded',
};

describe('one interaction, parsed on its own', () => {
  it('names the wrong field under its index in the batch', () => {
    expect(parseInteraction({ ...payment, amount: 12.5 }, 3)).toMatchObject({ ok: false, field: 'data[3].amount' });
    expect(parseInteraction({ ...payment, outcome: 'maybe' }, 0)).toMatchObject({
      ok: false,
      field: 'data[0].outcome',
    });
    expect(parseInteraction({ ...base, type: 'refund' }, 1)).toMatchObject({ ok: false, field: 'data[1].type' });
    expect(parseInteraction({ ...base, type: 'login' }, 2)).toMatchObject({ ok: false, field: 'data[2].device' });
    expect(parseInteraction({ ...payment, surprise: 1 }, 4)).toMatchObject({
      ok: false,
      field: 'data[4].surprise',
      problem: 'unknown field',
    });
    expect(parseInteraction('not an object', 5)).toMatchObject({ ok: false, field: 'data[5]' });
  });

  it('refuses a time that is not a real RFC 3339 instant', () => {
    expect(parseInteraction({ ...payment, occurred_at: '2026-11-23 10:00' }, 0)).toMatchObject({
      ok: false,
      field: 'data[0].occurred_at',
    });
    expect(parseInteraction({ ...payment, occurred_at: '2026-11-23T10:00:00' }, 0)).toMatchObject({ ok: false });
  });

  it('takes each type with its own fields, text trimmed and the address type defaulted', () => {
    expect(parseInteraction(payment, 0)).toMatchObject({ ok: true, item: { amount: 1250, outcome: 'succeeded' } });
    expect(parseInteraction({ ...base, type: 'login', device: { fingerprint: ' fp-1 ', ip: '10.0.0.1' } }, 0)).toEqual({
      ok: true,
      item: { ...base, type: 'login', device: { fingerprint: 'fp-1', ip: '10.0.0.1' } },
    });
    const address = { street1: '1 Main St ', city: 'Springfield', zip_code: '12345', country: 'US' };
    expect(parseInteraction({ ...base, type: 'shipment', address }, 0)).toMatchObject({
      ok: true,
      item: { address: { street1: '1 Main St', type: 'shipping' } },
    });
  });
});
