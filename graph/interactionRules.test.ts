import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Interaction, InteractionOf } from './interactionModel';
import {
  claimKey,
  claimsOf,
  lockRowsOf,
  methodRefusal,
  methodsNamed,
  refusalOf,
  settleClaims,
  statusRefusal,
  survivorLockRows,
  type Indexed,
} from './interactionRules';

const at = '2024-05-01T12:00:00Z';
const pay = (customer_id: string, payment_method_id: string, over: Partial<InteractionOf<'payment'>> = {}) =>
  ({
    type: 'payment',
    id: 'i1',
    customer_id,
    occurred_at: at,
    payment_method_id,
    amount: 100,
    currency: 'USD',
    outcome: 'succeeded',
    ...over,
  }) satisfies Interaction;
const login = (customer_id: string, id = 'i1'): Interaction => ({
  type: 'login',
  id,
  customer_id,
  occurred_at: at,
  device: { fingerprint: 'F1' },
});
const feedback = (predicted_ltv: string): Interaction => ({
  type: 'ltv_feedback',
  id: 'i1',
  customer_id: 'C1',
  occurred_at: at,
  predicted_ltv,
});

const item: fc.Arbitrary<Interaction> = fc
  .record({
    customer: fc.constantFrom('C1', 'C2', 'C3', 'M1'),
    id: fc.constantFrom('i1', 'i2', 'i3'),
    method: fc.constantFrom('P1', 'P2', 'P3'),
    isPayment: fc.boolean(),
  })
  .map(({ customer, id, method, isPayment }) => (isPayment ? pay(customer, method, { id }) : login(customer, id)));

describe('refusalOf', () => {
  it('refuses a payment in a currency other than the reporting currency, whatever else it is', () => {
    fc.assert(
      fc.property(fc.constantFrom('USD', 'EUR', 'GBP', 'usd'), fc.constantFrom('USD', 'EUR'), (currency, reporting) => {
        const r = refusalOf(pay('C1', 'P1', { currency }), reporting);
        if (currency === reporting) expect(r).toBeUndefined();
        else
          expect(r).toMatchObject({
            result: 'invalid',
            field: 'currency',
            problem: expect.stringContaining(reporting),
          });
      }),
    );
  });

  it('refuses a prediction that is not an exact decimal of the reporting currency', () => {
    expect(refusalOf(feedback('1234.50'), 'USD')).toBeUndefined();
    expect(refusalOf(feedback('1234.505'), 'USD')).toMatchObject({
      field: 'predicted_ltv',
      problem: expect.stringMatching(/decimal places.*\(in USD\)$/),
    });
    expect(refusalOf(feedback('-3'), 'USD')).toMatchObject({ field: 'predicted_ltv' });
    expect(refusalOf(feedback('12.5'), 'JPY')).toMatchObject({ field: 'predicted_ltv' });
  });

  it('refuses no login or shipment', () => {
    expect(refusalOf(login('C1'), 'EUR')).toBeUndefined();
  });
});

describe('the lock rows', () => {
  it('name every customer once, in id order, each with the methods its payments name', () => {
    fc.assert(
      fc.property(fc.array(item), (items) => {
        const methods = methodsNamed(items);
        const rows = lockRowsOf(methods);
        expect(rows.map((r) => r.id)).toEqual([...new Set(items.map((i) => i.customer_id))].sort());
        for (const r of rows)
          expect([...r.methods].sort()).toEqual(
            [
              ...new Set(
                items.flatMap((i) => (i.type === 'payment' && i.customer_id === r.id ? [i.payment_method_id] : [])),
              ),
            ].sort(),
          );
      }),
    );
  });

  it('lock each survivor once, in id order, with the methods its tombstones name', () => {
    const methods = methodsNamed([pay('M2', 'P2'), pay('M1', 'P1'), login('M3'), pay('M1', 'P3'), pay('C9', 'P9')]);
    const survivors = new Map([
      ['M2', 'S2'],
      ['M1', 'S1'],
      ['M3', 'S1'],
    ]);
    expect(survivorLockRows(survivors, methods)).toEqual([
      { id: 'S1', methods: ['P1', 'P3'] },
      { id: 'S2', methods: ['P2'] },
    ]);
    expect(survivorLockRows(new Map(), methods)).toEqual([]);
  });
});

describe('statusRefusal', () => {
  it('refuses an unknown, an erased or a merging customer, and only those', () => {
    expect(statusRefusal(undefined, 'C1')).toEqual({
      result: 'invalid',
      field: 'customer_id',
      problem: 'no such customer',
    });
    expect(statusRefusal('erased', 'C1')).toMatchObject({
      field: 'customer_id',
      problem: expect.stringContaining('erased'),
    });
    expect(statusRefusal('merged', 'M1')).toEqual({
      result: 'invalid',
      field: 'customer_id',
      problem: 'customer M1 is being merged: send the item again',
      retry: true,
    });
    for (const s of ['active', 'suspended', 'closed']) expect(statusRefusal(s, 'C1')).toBeUndefined();
  });
});

describe('methodRefusal', () => {
  it('refuses a payment whose method its owner does not hold', () => {
    const owned = new Set(['S1|P1', 'C1|P2']);
    expect(methodRefusal(pay('M1', 'P1'), 'S1', owned)).toBeUndefined();
    expect(methodRefusal(pay('C1', 'P1'), 'C1', owned)).toMatchObject({ field: 'payment_method_id' });
    expect(methodRefusal(pay('C1', 'P2'), 'C1', owned)).toBeUndefined();
    expect(methodRefusal(login('C1'), 'C1', new Set())).toBeUndefined();
  });
});

describe('claims', () => {
  const survivors = new Map([['M1', 'S1']]);
  const ownerOf = (i: Interaction) => survivors.get(i.customer_id) ?? i.customer_id;

  it('record the first item of each id the transaction claimed, on its owner; every other is a duplicate', () => {
    fc.assert(
      fc.property(fc.array(item), fc.func(fc.boolean()), fc.func(fc.boolean()), (items, isOpen, isCreated) => {
        const open: Indexed[] = items.map((it, i) => ({ item: it, i })).filter(({ i }) => isOpen(i));
        const { firstOf, rows } = claimsOf(open);
        // One claim per key, by its first open item, in the items' order.
        expect(rows.map((r) => r.key)).toEqual([...new Set(open.map(({ item: it }) => claimKey(it)))]);
        for (const r of rows) {
          const first = open.find(({ item: it }) => claimKey(it) === r.key) as Indexed;
          expect(firstOf.get(r.key)).toBe(first.i);
          expect(r).toEqual({ key: r.key, customerId: first.item.customer_id, type: first.item.type });
        }
        const created = new Set(rows.map((r) => r.key).filter((k) => isCreated(k)));
        const { settled, recorded } = settleClaims(open, firstOf, created, ownerOf);
        expect(settled.map((s) => s.i)).toEqual(open.map(({ i }) => i));
        const won = open.filter(({ item: it, i }) => firstOf.get(claimKey(it)) === i && created.has(claimKey(it)));
        expect(recorded).toEqual(won.map(({ item: it }) => ({ ...it, customer_id: ownerOf(it) })));
        for (const { i, result } of settled) {
          const it = items[i] as Interaction;
          if (!won.some((w) => w.i === i)) expect(result).toEqual({ result: 'duplicate' });
          else if (ownerOf(it) === it.customer_id) expect(result).toEqual({ result: 'recorded' });
          else expect(result).toEqual({ result: 'recorded', merged_into: ownerOf(it) });
        }
      }),
    );
  });

  it('key an item by the customer the sender named, not its survivor', () => {
    expect(claimKey(login('M1', 'x'))).toBe('M1:x');
    const open = [
      { item: login('M1', 'x'), i: 0 },
      { item: login('S1', 'x'), i: 1 },
      { item: login('M1', 'x'), i: 2 },
    ];
    const { firstOf, rows } = claimsOf(open);
    expect(rows.map((r) => r.key)).toEqual(['M1:x', 'S1:x']);
    const { settled, recorded } = settleClaims(open, firstOf, new Set(['M1:x', 'S1:x']), ownerOf);
    expect(settled.map((s) => s.result)).toEqual([
      { result: 'recorded', merged_into: 'S1' },
      { result: 'recorded' },
      { result: 'duplicate' },
    ]);
    expect(recorded.map((r) => r.customer_id)).toEqual(['S1', 'S1']);
    expect(open[0]?.item.customer_id).toBe('M1');
  });
});
