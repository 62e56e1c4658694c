/**
 * A batch's newly recorded interactions aggregated into the rows its statements write
 * (graph/interactions.ts): one row per customer, per customer and device, per method and device,
 * per customer and address. Pure: values in, values out; the writers turn counts into Neo4j
 * integers and draw the new ids.
 *
 * Every list comes out in key order (`byKey`), so two batches over the same records write, and
 * lock, in one order whatever order their items came in.
 */
import { toMinorUnits } from '../payments/money';
import type { Interaction, InteractionOf, SeenDevice, ShippingAddress } from './interactionModel';

/** Earliest and latest of RFC 3339 times, as UTC instants (what Neo4j's datetime() reads). */
export function span(times: string[]): { first: string; last: string } {
  const sorted = times.map((t) => Date.parse(t)).sort((a, b) => a - b);
  return {
    first: new Date(sorted[0] as number).toISOString(),
    last: new Date(sorted[sorted.length - 1] as number).toISOString(),
  };
}

/** Items grouped by key, each group in the items' order, the groups in the order first seen. */
export function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** A map's entries in key order. */
export const byKey = <T>(entries: Map<string, T>): [string, T][] =>
  [...entries.entries()].sort(([a], [b]) => (a < b ? -1 : 1));

/** The key an address is matched by (as `knownAddresses` compares). */
export const addressKey = (customerId: string, a: ShippingAddress): string =>
  `${customerId}|${a.street1.toLowerCase()}|${a.zip_code.toLowerCase()}|${a.country}`;

/** The latest of a group by `occurred_at` (the first given of those at the same instant). */
const latestOf = <T>(group: T[], at: (item: T) => string): T | undefined =>
  [...group].sort((a, b) => Date.parse(at(b)) - Date.parse(at(a)))[0];

export interface MethodUse {
  paymentMethodId: string;
  first: string;
  last: string;
}

/**
 * The methods' use, per customer: succeeded payments only (a declined card is not moved up the
 * checkout), one entry per method with the span of its payments.
 */
export function methodUsesOf(payments: InteractionOf<'payment'>[]): Map<string, MethodUse[]> {
  const usesOf = new Map<string, MethodUse[]>();
  for (const [, ps] of byKey(
    groupBy(
      payments.filter((p) => p.outcome === 'succeeded'),
      (p) => `${p.customer_id}|${p.payment_method_id}`,
    ),
  )) {
    const { customer_id, payment_method_id } = ps[0] as (typeof ps)[number];
    const known = usesOf.get(customer_id) ?? [];
    known.push({ paymentMethodId: payment_method_id, ...span(ps.map((p) => p.occurred_at)) });
    usesOf.set(customer_id, known);
  }
  return usesOf;
}

export interface PaymentTotals {
  customerId: string;
  /** Minor units: succeeded payments add, refunds and chargebacks take off, declines nothing. */
  ltvDelta: number;
  succeeded: number;
  /** Refunds and chargebacks. */
  refunded: number;
}

/**
 * LTV and the succeeded-payment count: one row per customer whose LTV moves or who paid (every
 * customer with a method's use has a succeeded payment, so a row).
 */
export function paymentTotalsOf(payments: InteractionOf<'payment'>[]): PaymentTotals[] {
  return byKey(groupBy(payments, (p) => p.customer_id))
    .map(([customerId, ps]) => {
      let ltvDelta = 0;
      let succeeded = 0;
      let refunded = 0;
      for (const p of ps) {
        if (p.outcome === 'succeeded') {
          ltvDelta += p.amount;
          succeeded += 1;
        } else if (p.outcome === 'refunded' || p.outcome === 'charged_back') {
          ltvDelta -= p.amount;
          refunded += 1;
        }
      }
      return { customerId, ltvDelta, succeeded, refunded };
    })
    .filter((r) => r.ltvDelta !== 0 || r.succeeded > 0);
}

/** The Oracle's latest prediction per customer: minor units of `currency`, and when (UTC). */
export function latestFeedbackOf(
  recorded: Interaction[],
  currency: string,
): { customerId: string; value: number; at: string }[] {
  return byKey(
    groupBy(
      recorded.filter((i) => i.type === 'ltv_feedback'),
      (f) => f.customer_id,
    ),
  ).map(([customerId, fs]) => {
    const latest = latestOf(fs, (f) => f.occurred_at);
    return {
      customerId,
      value: toMinorUnits(latest?.predicted_ltv as string, currency),
      at: new Date(Date.parse(latest?.occurred_at as string)).toISOString(),
    };
  });
}

/** A device an item was seen on: a login's, or the one a payment was attempted on. */
export interface Sighting {
  item: Interaction;
  device: SeenDevice;
}

export const sightingsOf = (recorded: Interaction[]): Sighting[] =>
  recorded.flatMap((i): Sighting[] =>
    i.type === 'login'
      ? [{ item: i, device: i.device }]
      : i.type === 'payment' && i.device
        ? [{ item: i, device: i.device }]
        : [],
  );

/** The fingerprints seen, once each, in order. */
export const fingerprintsOf = (seen: Sighting[]): string[] =>
  [...new Set(seen.map((s) => s.device.fingerprint))].sort();

export interface LoginRow {
  customerId: string | undefined;
  deviceId: string;
  count: number;
  /** What the latest login showed. */
  ip: string | null;
  userAgent: string | null;
  first: string;
  last: string;
}

/** Logins, one row per customer and device (`deviceIdOf` a fingerprint's device). */
export function loginRowsOf(seen: Sighting[], deviceIdOf: (fingerprint: string) => string): LoginRow[] {
  const logins = seen.filter((s) => s.item.type === 'login');
  return byKey(groupBy(logins, (s) => `${s.item.customer_id}|${deviceIdOf(s.device.fingerprint)}`)).map(([, group]) => {
    const latest = latestOf(group, (s) => s.item.occurred_at);
    return {
      customerId: group[0]?.item.customer_id,
      deviceId: deviceIdOf(group[0]?.device.fingerprint as string),
      count: group.length,
      ip: latest?.device.ip ?? null,
      userAgent: latest?.device.user_agent ?? null,
      ...span(group.map((s) => s.item.occurred_at)),
    };
  });
}

export interface UsedOnRow {
  customerId: string;
  paymentMethodId: string;
  deviceId: string;
  count: number;
  first: string;
  last: string;
}

/** Payments attempted on a device (any outcome), one row per method and device. */
export function usedOnRowsOf(seen: Sighting[], deviceIdOf: (fingerprint: string) => string): UsedOnRow[] {
  const attempts = seen.filter((s) => s.item.type === 'payment');
  return byKey(
    groupBy(attempts, (s) => {
      const p = s.item as InteractionOf<'payment'>;
      return `${p.payment_method_id}|${deviceIdOf(s.device.fingerprint)}`;
    }),
  ).map(([, group]) => {
    const p = group[0]?.item as InteractionOf<'payment'>;
    return {
      customerId: p.customer_id,
      paymentMethodId: p.payment_method_id,
      deviceId: deviceIdOf(group[0]?.device.fingerprint as string),
      count: group.length,
      ...span(group.map((s) => s.item.occurred_at)),
    };
  });
}

/** An address an item was shipped to: a shipment's, or a payment's shipping address. */
export interface Shipment {
  item: Interaction;
  address: ShippingAddress;
}

export const shipmentsOf = (recorded: Interaction[]): Shipment[] =>
  recorded.flatMap((i): Shipment[] =>
    i.type === 'shipment'
      ? [{ item: i, address: i.address }]
      : i.type === 'payment' && i.shipping_address
        ? [{ item: i, address: i.shipping_address }]
        : [],
  );

export interface ShipRow {
  /** `addressKey`: the customer and the address as matched. */
  key: string;
  customerId: string;
  /** The first given of those matched alike. */
  address: ShippingAddress;
  first: string;
  last: string;
}

/** Shipments, one row per customer and address as matched (`addressKey`). */
export const shipRowsOf = (ships: Shipment[]): ShipRow[] =>
  byKey(groupBy(ships, (s) => addressKey(s.item.customer_id, s.address))).map(([key, group]) => ({
    key,
    customerId: group[0]?.item.customer_id as string,
    address: group[0]?.address as ShippingAddress,
    ...span(group.map((s) => s.item.occurred_at)),
  }));

/** A row for an address not yet the customer's, as written: its new id, absent optionals null. */
export const newAddressRow = (r: ShipRow, addressId: string) => ({
  ...r,
  addressId,
  address: { ...r.address, street2: r.address.street2 ?? null, state: r.address.state ?? null },
});
