import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProfileRules } from './interactionModel';
import {
  ltvReason,
  ProfileChanges,
  vipBasisWords,
  vipChange,
  type PaymentsEffect,
  type VipInputs,
} from './profileChanges';

const rules = (vipBasis: ProfileRules['vipBasis'], vipLtvMinor = 100_000) => ({ vipBasis, vipLtvMinor });

/** The VIP rule as the design states it, written apart from graph/context.ts. */
function vipBySpec(v: VipInputs, r: ReturnType<typeof rules>): boolean {
  if (v.segment === 'VIP') return true;
  const measured = v.ltv >= r.vipLtvMinor;
  const predicted = v.predicted !== null && v.predicted >= r.vipLtvMinor;
  return r.vipBasis === 'measured' ? measured : r.vipBasis === 'predicted' ? predicted : measured || predicted;
}

const effect = (over: Partial<PaymentsEffect> = {}): PaymentsEffect => ({
  succeeded: 1,
  refunded: 0,
  ltvFrom: 1000,
  ltvTo: 1000,
  segmentFrom: 'Subscriber',
  segmentTo: 'Subscriber',
  succeededPayments: '4',
  predicted: null,
  used: [],
  ...over,
});

const basis = fc.constantFrom<ProfileRules['vipBasis']>('measured', 'predicted', 'either');
const vipInputs: fc.Arbitrary<VipInputs> = fc.record({
  segment: fc.constantFrom('New', 'Subscriber', 'VIP'),
  ltv: fc.integer({ min: 0, max: 200_000 }),
  predicted: fc.option(fc.integer({ min: 0, max: 200_000 })),
});

describe('ltvReason', () => {
  it('counts the payments that moved LTV, in words', () => {
    expect(ltvReason(1, 0)).toBe('1 succeeded payment recorded');
    expect(ltvReason(2, 1)).toBe('2 succeeded payments and 1 refund or chargeback recorded');
    expect(ltvReason(0, 3)).toBe('3 refunds or chargeback recorded');
  });
});

describe('vipChange', () => {
  it('names the lifetime value the rule reads', () => {
    expect(vipBasisWords('measured')).toBe('lifetime value');
    expect(vipBasisWords('predicted')).toBe('predicted lifetime value');
    expect(vipBasisWords('either')).toBe('lifetime value or predicted lifetime value');
  });

  it('moves exactly when the VIP rule answers differently before and after, and says which way', () => {
    fc.assert(
      fc.property(vipInputs, vipInputs, basis, fc.integer({ min: 1, max: 200_000 }), (before, after, b, threshold) => {
        const r = rules(b, threshold);
        const from = vipBySpec(before, r);
        const to = vipBySpec(after, r);
        const moved = vipChange(before, after, r);
        if (from === to) expect(moved).toBeNull();
        else
          expect(moved).toEqual({
            from,
            to,
            why: `${vipBasisWords(b)} ${to ? 'reached' : 'fell below'} the VIP threshold`,
          });
      }),
    );
  });
});

describe('ProfileChanges', () => {
  it('says nothing when nothing moved', () => {
    const p = new ProfileChanges();
    p.notePayments('C1', effect(), 'USD');
    p.noteFeedback('C1', { segment: 'New', ltv: 5, predictedFrom: 7, predictedTo: 7 }, 'USD');
    p.noteVip(rules('either'));
    expect(p.events('USD')).toEqual([]);
  });

  it('reports LTV and segment, transient only while nothing the customer is shown moved', () => {
    const p = new ProfileChanges();
    p.notePayments('C2', effect({ ltvFrom: 1000, ltvTo: 3550, succeeded: 2, refunded: 1 }), 'USD');
    p.notePayments(
      'C1',
      effect({ ltvTo: 2000, segmentFrom: 'New', segmentTo: 'Subscriber', succeededPayments: '3' }),
      'USD',
    );
    p.noteVip(rules('measured'));
    expect(p.events('USD')).toEqual([
      {
        type: 'CustomerProfileUpdated',
        customerId: 'C1',
        transient: false,
        payload: {
          changes: {
            ltv_minor: { from: 1000, to: 2000 },
            ltv: { from: 10, to: 20 },
            segment: { from: 'New', to: 'Subscriber' },
          },
          ltv_currency: 'USD',
          reason: '1 succeeded payment recorded; Subscriber after 3 succeeded payments',
        },
      },
      {
        type: 'CustomerProfileUpdated',
        customerId: 'C2',
        transient: true,
        payload: {
          changes: { ltv_minor: { from: 1000, to: 3550 }, ltv: { from: 10, to: 35.5 } },
          ltv_currency: 'USD',
          reason: '2 succeeded payments and 1 refund or chargeback recorded',
        },
      },
    ]);
  });

  it('reports a moved last_used alone, never silent', () => {
    const p = new ProfileChanges();
    p.notePayments('C1', effect({ used: [{ paymentMethodId: 'P1', lastUsed: '2024-05-01T00:00:00Z' }] }), 'USD');
    expect(p.events('USD')).toEqual([
      {
        type: 'CustomerProfileUpdated',
        customerId: 'C1',
        transient: true,
        payload: {
          changes: {},
          payment_methods_used: [{ payment_method_id: 'P1', last_used: '2024-05-01T00:00:00Z' }],
          reason: '1 succeeded payment recorded',
        },
      },
    ]);
  });

  it('reports the Oracle’s prediction apart from the measured LTV', () => {
    const p = new ProfileChanges();
    p.noteFeedback('C1', { segment: 'New', ltv: 5, predictedFrom: null, predictedTo: 123450 }, 'USD');
    expect(p.events('USD')).toEqual([
      {
        type: 'CustomerProfileUpdated',
        customerId: 'C1',
        transient: true,
        payload: {
          changes: {
            predicted_ltv_minor: { from: null, to: 123450 },
            predicted_ltv: { from: null, to: '1234.50' },
          },
          ltv_currency: 'USD',
          reason: 'the Oracle’s LTV feedback',
        },
      },
    ]);
  });

  it('judges VIP by what the rule read before the batch and after it, across payments and feedback', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('C1', 'C2'), fc.boolean(), vipInputs, vipInputs), { minLength: 1 }),
        basis,
        (notes, b) => {
          const r = rules(b);
          const p = new ProfileChanges();
          for (const [id, isPayment, before, after] of notes)
            if (isPayment)
              p.notePayments(
                id,
                effect({
                  ltvFrom: before.ltv,
                  ltvTo: after.ltv,
                  segmentFrom: before.segment,
                  segmentTo: after.segment,
                  predicted: after.predicted,
                }),
                'USD',
              );
            else
              p.noteFeedback(
                id,
                {
                  segment: after.segment,
                  ltv: after.ltv,
                  predictedFrom: before.predicted,
                  predictedTo: after.predicted,
                },
                'USD',
              );
          p.noteVip(r);
          const events = p.events('USD');
          expect(events.map((e) => e.customerId)).toEqual([...new Set(events.map((e) => e.customerId))].sort());
          for (const id of ['C1', 'C2']) {
            const mine = notes.filter(([c]) => c === id);
            const event = events.find((e) => e.customerId === id);
            const changes = (event?.payload as { changes?: Record<string, unknown> } | undefined)?.changes ?? {};
            if (mine.length === 0) {
              expect(event).toBeUndefined();
              continue;
            }
            const [, firstIsPayment, b0, a0] = mine[0] as (typeof mine)[number];
            const first: VipInputs = firstIsPayment
              ? { ...b0, predicted: a0.predicted }
              : { ...a0, predicted: b0.predicted };
            const [, , , last] = mine[mine.length - 1] as (typeof mine)[number];
            const from = vipBySpec(first, r);
            const to = vipBySpec(last, r);
            if (from === to) expect(changes.is_vip).toBeUndefined();
            else expect(changes.is_vip).toEqual({ from, to });
          }
        },
      ),
    );
  });
});
