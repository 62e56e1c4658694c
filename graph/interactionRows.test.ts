import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressKey,
  byKey,
  fingerprintsOf,
  groupBy,
  latestFeedbackOf,
  loginRowsOf,
  methodUsesOf,
  newAddressRow,
  paymentTotalsOf,
  shipmentsOf,
  shipRowsOf,
  sightingsOf,
  span,
  usedOnRowsOf,
} from './interactionRows';
import { PAYMENT_OUTCOMES, type Interaction, type InteractionOf, type ShippingAddress } from './interactionModel';

/** An instant as RFC 3339 with a UTC offset of `offsetMinutes` (the same instant, written locally). */
function rfc3339(ms: number, offsetMinutes: number): string {
  if (offsetMinutes === 0) return new Date(ms).toISOString();
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, -1);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

const instant = fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) });
const time = fc.tuple(instant, fc.constantFrom(0, 0, 120, -300, 330)).map(([ms, offset]) => rfc3339(ms, offset));
const customer = fc.constantFrom('C1', 'C2', 'C10', 'c3');
const device = fc.record(
  {
    fingerprint: fc.constantFrom('F1', 'F2', 'F3'),
    ip: fc.constantFrom('10.0.0.1', '10.0.0.2'),
    user_agent: fc.string(),
  },
  { requiredKeys: ['fingerprint'] },
);
const address: fc.Arbitrary<ShippingAddress> = fc.record(
  {
    street1: fc.constantFrom('1 Main St', '1 MAIN st', '2 Elm'),
    street2: fc.constantFrom('Apt 1', 'Apt 2'),
    city: fc.constantFrom('Springfield', 'Shelbyville'),
    state: fc.constantFrom('IL', 'NY'),
    zip_code: fc.constantFrom('ab1 2cd', 'AB1 2CD', '10001'),
    country: fc.constantFrom('US', 'GB'),
    type: fc.constantFrom('shipping', 'billing'),
  },
  { requiredKeys: ['street1', 'city', 'zip_code', 'country', 'type'] },
);
const common = { id: fc.constantFrom('i1', 'i2', 'i3'), customer_id: customer, occurred_at: time };
const payment: fc.Arbitrary<InteractionOf<'payment'>> = fc.record(
  {
    ...common,
    type: fc.constant('payment' as const),
    payment_method_id: fc.constantFrom('P1', 'P2', 'P3'),
    amount: fc.integer({ min: 0, max: 1_000_000 }),
    currency: fc.constant('USD'),
    outcome: fc.constantFrom(...PAYMENT_OUTCOMES),
    device,
    shipping_address: address,
  },
  { requiredKeys: ['id', 'customer_id', 'occurred_at', 'type', 'payment_method_id', 'amount', 'currency', 'outcome'] },
);
const login = fc.record({ ...common, type: fc.constant('login' as const), device });
const shipment = fc.record({ ...common, type: fc.constant('shipment' as const), address });
const feedback = fc.record({
  ...common,
  type: fc.constant('ltv_feedback' as const),
  predicted_ltv: fc.integer({ min: 0, max: 10_000_000 }).map((m) => `${Math.floor(m / 100)}.${m % 100}`),
});
const interaction: fc.Arbitrary<Interaction> = fc.oneof(payment, login, shipment, feedback);

const iso = (t: string) => new Date(Date.parse(t)).toISOString();
const ascending = (xs: string[]) => xs.every((x, k) => k === 0 || (xs[k - 1] as string) < x);

describe('span', () => {
  it('reads offsets as the UTC instants they name', () => {
    expect(span(['2024-01-01T02:00:00+02:00', '2023-12-31T23:30:00Z'])).toEqual({
      first: '2023-12-31T23:30:00.000Z',
      last: '2024-01-01T00:00:00.000Z',
    });
  });

  it('is the earliest and latest instant, whatever the order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(instant, fc.constantFrom(0, 60, -90)), { minLength: 1 }), (xs) => {
        const ms = xs.map(([t]) => t);
        const times = xs.map(([t, o]) => rfc3339(t, o));
        const expected = {
          first: new Date(Math.min(...ms)).toISOString(),
          last: new Date(Math.max(...ms)).toISOString(),
        };
        expect(span(times)).toEqual(expected);
        expect(span([...times].reverse())).toEqual(expected);
      }),
    );
  });
});

describe('groupBy and byKey', () => {
  it('partitions the items by key, each group in the items’ order, the groups as first seen', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'ab'), fc.nat())), (items) => {
        const groups = groupBy(items, ([k]) => k);
        expect([...groups.keys()]).toEqual([...new Set(items.map(([k]) => k))]);
        for (const [k, group] of groups) expect(group).toEqual(items.filter(([key]) => key === k));
      }),
    );
  });

  it('answers the entries in key order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string()), (keys) => {
        const entries = byKey(new Map(keys.map((k, i) => [k, i])));
        expect(entries.map(([k]) => k)).toEqual([...keys].sort());
        for (const [k, v] of entries) expect(keys[v]).toBe(k);
      }),
    );
  });
});

describe('addressKey', () => {
  const a: ShippingAddress = { street1: '1 Main St', city: 'X', zip_code: 'Ab1', country: 'GB', type: 'shipping' };

  it('matches street and zip in any case, the country and the customer exactly', () => {
    expect(addressKey('C1', { ...a, street1: '1 MAIN st', zip_code: 'AB1', city: 'Y' })).toBe(addressKey('C1', a));
    expect(addressKey('C1', { ...a, country: 'gb' })).not.toBe(addressKey('C1', a));
    expect(addressKey('C2', a)).not.toBe(addressKey('C1', a));
    expect(addressKey('C1', { ...a, street1: '2 Main St' })).not.toBe(addressKey('C1', a));
  });
});

describe('paymentTotalsOf', () => {
  it('sums succeeded payments less refunds and chargebacks per customer, in id order, declines ignored', () => {
    fc.assert(
      fc.property(fc.array(payment), (ps) => {
        const rows = paymentTotalsOf(ps);
        expect(ascending(rows.map((r) => r.customerId))).toBe(true);
        for (const c of new Set(ps.map((p) => p.customer_id))) {
          const mine = ps.filter((p) => p.customer_id === c);
          const amount = (o: string[]) =>
            mine.filter((p) => o.includes(p.outcome)).reduce((sum, p) => sum + p.amount, 0);
          const succeeded = mine.filter((p) => p.outcome === 'succeeded').length;
          const ltvDelta = amount(['succeeded']) - amount(['refunded', 'charged_back']);
          const row = rows.find((r) => r.customerId === c);
          if (ltvDelta === 0 && succeeded === 0) expect(row).toBeUndefined();
          else
            expect(row).toEqual({
              customerId: c,
              ltvDelta,
              succeeded,
              refunded: mine.filter((p) => p.outcome === 'refunded' || p.outcome === 'charged_back').length,
            });
        }
        expect(paymentTotalsOf([...ps].reverse())).toEqual(rows);
      }),
    );
  });

  it('keeps a customer who paid nothing net (a zero-amount payment counts as one)', () => {
    const p = (outcome: InteractionOf<'payment'>['outcome'], amount: number): InteractionOf<'payment'> => ({
      type: 'payment',
      id: 'i',
      customer_id: 'C1',
      occurred_at: '2024-01-01T00:00:00Z',
      payment_method_id: 'P1',
      amount,
      currency: 'USD',
      outcome,
    });
    expect(paymentTotalsOf([p('succeeded', 0)])).toEqual([
      { customerId: 'C1', ltvDelta: 0, succeeded: 1, refunded: 0 },
    ]);
    expect(paymentTotalsOf([p('declined', 500)])).toEqual([]);
    expect(paymentTotalsOf([p('charged_back', 500)])).toEqual([
      { customerId: 'C1', ltvDelta: -500, succeeded: 0, refunded: 1 },
    ]);
  });
});

describe('methodUsesOf', () => {
  it('is each method’s span of succeeded payments, per customer, the methods in order', () => {
    fc.assert(
      fc.property(fc.array(payment), (ps) => {
        const uses = methodUsesOf(ps);
        const succeeded = ps.filter((p) => p.outcome === 'succeeded');
        expect([...uses.keys()].sort()).toEqual([...new Set(succeeded.map((p) => p.customer_id))].sort());
        for (const [c, list] of uses) {
          const mine = succeeded.filter((p) => p.customer_id === c);
          expect(list.map((u) => u.paymentMethodId)).toEqual([...new Set(mine.map((p) => p.payment_method_id))].sort());
          for (const u of list) {
            const ms = mine
              .filter((p) => p.payment_method_id === u.paymentMethodId)
              .map((p) => Date.parse(p.occurred_at));
            expect(u.first).toBe(new Date(Math.min(...ms)).toISOString());
            expect(u.last).toBe(new Date(Math.max(...ms)).toISOString());
          }
        }
      }),
    );
  });
});

describe('latestFeedbackOf', () => {
  it('takes each customer’s latest prediction by occurred_at (the first given of a tie), in minor units', () => {
    fc.assert(
      fc.property(fc.array(interaction), (items) => {
        const rows = latestFeedbackOf(items, 'USD');
        const fs = items.filter((i) => i.type === 'ltv_feedback');
        expect(rows.map((r) => r.customerId)).toEqual([...new Set(fs.map((f) => f.customer_id))].sort());
        for (const r of rows) {
          const mine = fs.filter((f) => f.customer_id === r.customerId);
          const latest = Math.max(...mine.map((f) => Date.parse(f.occurred_at)));
          const first = mine.find((f) => Date.parse(f.occurred_at) === latest) as (typeof mine)[number];
          const [whole, fraction] = first.predicted_ltv.split('.') as [string, string];
          expect(r).toEqual({
            customerId: r.customerId,
            value: Number(whole) * 100 + Number(fraction.padEnd(2, '0')),
            at: new Date(latest).toISOString(),
          });
        }
      }),
    );
  });
});

describe('devices seen', () => {
  it('are a login’s device and a payment’s, in the items’ order; fingerprints once each, sorted', () => {
    fc.assert(
      fc.property(fc.array(interaction), (items) => {
        const seen = sightingsOf(items);
        expect(seen.map((s) => s.item)).toEqual(
          items.filter((i) => i.type === 'login' || (i.type === 'payment' && i.device)),
        );
        for (const s of seen) expect(s.device).toBe((s.item as { device: unknown }).device);
        expect(fingerprintsOf(seen)).toEqual([...new Set(seen.map((s) => s.device.fingerprint))].sort());
      }),
    );
  });

  it('give one login row per customer and device: the count, the span, what the latest login showed', () => {
    // F1 and F2 are one device (as two fingerprints a device row could not be, but the rows go by id).
    const deviceIdOf = (fp: string) => (fp === 'F3' ? 'D3' : 'D1');
    fc.assert(
      fc.property(fc.array(interaction), (items) => {
        const seen = sightingsOf(items);
        const logins = seen.filter((s) => s.item.type === 'login');
        const rows = loginRowsOf(seen, deviceIdOf);
        expect(rows.reduce((n, r) => n + r.count, 0)).toBe(logins.length);
        const keys = rows.map((r) => `${r.customerId}|${r.deviceId}`);
        expect(ascending(keys)).toBe(true);
        for (const r of rows) {
          const mine = logins.filter(
            (s) => s.item.customer_id === r.customerId && deviceIdOf(s.device.fingerprint) === r.deviceId,
          );
          const ms = mine.map((s) => Date.parse(s.item.occurred_at));
          const latest = mine.find((s) => Date.parse(s.item.occurred_at) === Math.max(...ms));
          expect(r).toEqual({
            customerId: r.customerId,
            deviceId: r.deviceId,
            count: mine.length,
            ip: latest?.device.ip ?? null,
            userAgent: latest?.device.user_agent ?? null,
            first: new Date(Math.min(...ms)).toISOString(),
            last: new Date(Math.max(...ms)).toISOString(),
          });
        }
      }),
    );
  });

  it('give one use row per method and device, for payments of any outcome', () => {
    const deviceIdOf = (fp: string) => `D-${fp}`;
    fc.assert(
      fc.property(fc.array(interaction), (items) => {
        const attempts = sightingsOf(items).filter((s) => s.item.type === 'payment');
        const rows = usedOnRowsOf(sightingsOf(items), deviceIdOf);
        expect(rows.reduce((n, r) => n + r.count, 0)).toBe(attempts.length);
        expect(ascending(rows.map((r) => `${r.paymentMethodId}|${r.deviceId}`))).toBe(true);
        for (const r of rows) {
          const mine = attempts.filter(
            (s) =>
              (s.item as InteractionOf<'payment'>).payment_method_id === r.paymentMethodId &&
              deviceIdOf(s.device.fingerprint) === r.deviceId,
          );
          expect(r.count).toBe(mine.length);
          expect(r.customerId).toBe(mine[0]?.item.customer_id);
          expect(r).toMatchObject(span(mine.map((s) => s.item.occurred_at)));
        }
      }),
    );
  });
});

describe('shipments', () => {
  it('are a shipment’s address and a payment’s shipping address, one row per customer and address as matched', () => {
    fc.assert(
      fc.property(fc.array(interaction), (items) => {
        const ships = shipmentsOf(items);
        expect(ships.map((s) => s.item)).toEqual(
          items.filter((i) => i.type === 'shipment' || (i.type === 'payment' && i.shipping_address)),
        );
        const rows = shipRowsOf(ships);
        expect(rows.map((r) => r.key)).toEqual(
          [...new Set(ships.map((s) => addressKey(s.item.customer_id, s.address)))].sort(),
        );
        for (const r of rows) {
          const mine = ships.filter((s) => addressKey(s.item.customer_id, s.address) === r.key);
          expect(r).toEqual({
            key: r.key,
            customerId: mine[0]?.item.customer_id,
            address: mine[0]?.address,
            ...span(mine.map((s) => s.item.occurred_at)),
          });
          expect(iso(r.first) <= iso(r.last)).toBe(true);
        }
      }),
    );
  });

  it('write a new address with its id and its absent optionals as null, the rest as given', () => {
    fc.assert(
      fc.property(address, fc.uuid(), (a, id) => {
        const row = { key: 'k', customerId: 'C1', address: a, first: 'f', last: 'l' };
        expect(newAddressRow(row, id)).toEqual({
          ...row,
          addressId: id,
          address: { ...a, street2: a.street2 ?? null, state: a.state ?? null },
        });
        expect(row.address).toBe(a);
      }),
    );
  });
});
