/**
 * Interactions the agents report (payments, logins, shipments), recorded exactly once: a whole
 * batch in ONE write transaction, a few UNWIND statements whatever its size.
 *
 * The order inside the transaction keeps the lock order (graph/graph.ts): the batch's customers
 * are locked first, in id order; then each item's id is claimed (an `Interaction` node per
 * customer and sender's id, under a uniqueness constraint: a redelivered item, or the same item
 * in a batch running concurrently, finds the claim and is a `duplicate`); then the claimed items
 * are aggregated per customer (one LTV change, one login count per device, …) and applied.
 * Two batches for one customer queue on its lock, so their sums add up exactly.
 *
 * What is refused per item, writing nothing for it: an unknown or erased customer, a payment
 * method that is not the customer's, a currency other than the reporting currency (no exchange
 * rates are configured).
 *
 * Events: what changed state, coalesced per customer and batch — a device newly linked
 * (DeviceLinked), a payment method first used on a device (PaymentMethodUsedOnDevice), an
 * address newly added (AddressAdded), and one CustomerProfileUpdated for LTV, segment, VIP and
 * the payment methods' `last_used` (`payment_methods_used`, written even when nothing else
 * changed). A payment itself is not copied into the log.
 */
import { randomUUID } from 'node:crypto';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { decimalProblem, fromMinorUnits, toMinorUnits } from '../payments/money';
import { isVip, type ContextPolicy } from './context';
import { ltvFields, ltvMinorFromGraph, predictedLtvMinorFromGraph } from './customers';
import { DEVICE_TRUST_CEILING, INITIAL_TRUST_SCORE, LINKED_DEVICE, linkedDevice } from './devices';
import { addressMatchKey } from './addresses';
import { toPlain } from './convert';
import { appendEvents, type NewEvent } from './events';
import { isTransient } from './eventSchemas';
import { lockNode, writeTx, type Graph } from './graph';

export const PAYMENT_OUTCOMES = ['succeeded', 'declined', 'refunded', 'charged_back'] as const;
export type PaymentOutcome = (typeof PAYMENT_OUTCOMES)[number];

export interface SeenDevice {
  fingerprint: string;
  ip?: string | undefined;
  user_agent?: string | undefined;
}

export interface ShippingAddress {
  street1: string;
  street2?: string | undefined;
  city: string;
  state?: string | undefined;
  zip_code: string;
  country: string;
  type: string;
}

interface Common {
  /** The sender's id: the same id for the same customer again is a no-op. */
  id: string;
  customer_id: string;
  /** RFC 3339. */
  occurred_at: string;
}

export type Interaction =
  | (Common & {
      type: 'payment';
      payment_method_id: string;
      /** Minor units of `currency`. */
      amount: number;
      currency: string;
      outcome: PaymentOutcome;
      decline_code?: string | undefined;
      transaction_id?: string | undefined;
      device?: SeenDevice | undefined;
      shipping_address?: ShippingAddress | undefined;
    })
  | (Common & { type: 'login'; device: SeenDevice })
  | (Common & { type: 'shipment'; address: ShippingAddress })
  /** The Oracle's predicted LTV: an exact decimal in the reporting currency, kept apart from `ltv`. */
  | (Common & { type: 'ltv_feedback'; predicted_ltv: string });

export type InteractionResult =
  /** `merged_into`: the item named a merged customer and was recorded on its survivor (graph/merge.ts). */
  | { result: 'recorded'; merged_into?: string }
  | { result: 'duplicate' }
  /**
   * `field` is the item's own field (`currency`, `customer_id`, …); `retry`: refused only for now
   * (its customer is being merged), the same item sent again is recorded.
   */
  | { result: 'invalid'; field: string; problem: string; retry?: true };

export interface ProfileRules extends Pick<ContextPolicy, 'vipLtvMinor' | 'vipBasis'> {
  /** A customer in segment `New` becomes `Subscriber` after this many succeeded payments. */
  subscriberAfterPayments: number;
}

const CYPHER = {
  // The write locks, in id order (graph.ts lockNode), and what the rules need, read under them:
  // the status, and which of the payment methods the batch names are the customer's own.
  lock: `
    UNWIND $rows AS row
    MATCH (c:Customer {id: row.id})
    ${lockNode('c')}
    WITH c, row
    RETURN c.id AS id, c.status AS status, c.merged_into AS mergedInto,
           [(c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod) WHERE p.id IN row.methods | p.id] AS owned`,
  // MERGE under the uniqueness constraint: of two transactions claiming one id, the second waits
  // for the first and then finds its node. The claim token tells a node this statement created.
  claim: `
    UNWIND $rows AS row
    MERGE (i:Interaction {id: row.key})
    ON CREATE SET i.customer_id = row.customerId, i.type = row.type, i.recorded_at = datetime.transaction(),
                  i.claim = $claim
    WITH row, i, i.claim = $claim AS created
    REMOVE i.claim
    RETURN row.key AS key, created`,
  // LTV, segment, and the methods' first and last use (succeeded payments only): one row per customer.
  profile: `
    UNWIND $rows AS row
    MATCH (c:Customer {id: row.customerId})
    WITH c, row, c.ltv AS ltvBefore, c.segment AS segmentBefore
    SET c.ltv = coalesce(c.ltv, 0) + row.ltvDelta,
        c.succeeded_payments = coalesce(c.succeeded_payments, 0) + row.succeeded,
        c.updated_at = datetime.transaction()
    WITH c, row, ltvBefore, segmentBefore
    SET c.segment = CASE WHEN c.segment = 'New' AND c.succeeded_payments >= $subscriberAfter
                         THEN 'Subscriber' ELSE c.segment END
    WITH c, row, ltvBefore, segmentBefore
    // The methods whose last_used moved, with its value after the SET (the event says where to).
    CALL (c, row) {
      UNWIND row.uses AS u
      MATCH (c)-[r:HAS_PAYMENT_METHOD]->(:PaymentMethod {id: u.paymentMethodId})
      WITH u, r, r.last_used AS lastBefore
      SET r.last_used = CASE WHEN r.last_used IS NULL OR r.last_used < datetime(u.last)
                             THEN datetime(u.last) ELSE r.last_used END,
          r.first_used = CASE WHEN r.first_used IS NULL OR r.first_used > datetime(u.first)
                              THEN datetime(u.first) ELSE r.first_used END
      RETURN collect(CASE WHEN lastBefore IS NULL OR lastBefore <> r.last_used
                          THEN {paymentMethodId: u.paymentMethodId, lastUsed: r.last_used} END) AS used
    }
    RETURN c.id AS id, ltvBefore, c.ltv AS ltvAfter, segmentBefore, c.segment AS segmentAfter,
           c.succeeded_payments AS succeededPayments, c.predicted_ltv AS predicted, used`,
  // The latest prediction by occurred_at wins, whatever order the feedback arrives in.
  feedback: `
    UNWIND $rows AS f
    MATCH (c:Customer {id: f.customerId})
    WITH c, f, c.predicted_ltv AS before
    FOREACH (_ IN CASE WHEN c.predicted_ltv_at IS NULL OR c.predicted_ltv_at <= datetime(f.at) THEN [1] ELSE [] END |
      SET c.predicted_ltv = f.value, c.predicted_ltv_at = datetime(f.at))
    RETURN c.id AS id, before, c.predicted_ltv AS after, c.ltv AS ltv, c.segment AS segment`,
  // A device never seen is created as onboarding creates one (graph/devices.ts). One that exists is
  // only read: it is locked below only if this batch gives it a new edge.
  devices: `
    UNWIND $rows AS row
    MERGE (d:Device {fingerprint: row.fingerprint})
    ON CREATE SET d.id = row.deviceId, d.trust_score = $trustScore, d.created_at = datetime.transaction(),
                  d.updated_at = datetime.transaction()
    WITH d, row
    RETURN row.fingerprint AS fingerprint, d.id AS id, d.id = row.deviceId AS created`,
  // The devices this batch gives a new edge (a first login of a customer, a card's first use on
  // it): creating an edge locks its device, so they are write-locked first, in id order (a
  // constant set and removed: graph.ts lockNode), and the statements after take no device lock of
  // their own — two transactions over different customers meeting on the same devices queue, never
  // deadlock. A device that gets no new edge (a repeat login, a card used there before) is never
  // locked: updating an edge's properties locks the edge alone, so customers logging in again from
  // a shared device (a family tablet, a shop's terminal) do not wait on each other.
  newEdgeDevices: `
    CALL () {
      UNWIND $logins AS l
      MATCH (c:Customer {id: l.customerId}), (d:Device {id: l.deviceId})
      WHERE NOT EXISTS { (c)-[:LOGGED_IN_FROM]->(d) }
      RETURN d.id AS id
      UNION
      UNWIND $used AS u
      MATCH (p:PaymentMethod {id: u.paymentMethodId}), (d:Device {id: u.deviceId})
      WHERE NOT EXISTS { (p)-[:USED_ON]->(d) }
      RETURN d.id AS id
    }
    RETURN collect(id) AS ids`,
  lockDevices: `
    UNWIND $ids AS id
    MATCH (d:Device {id: id})
    ${lockNode('d')}
    RETURN count(d) AS locked`,
  // first/last are the min/max of what is there and what came, so items in any order keep them
  // right; what the latest login showed (IP, user agent) is kept on the customer's own edge. A
  // login after the customer disowned the device (graph/devices.ts removeDeviceFromCustomer) makes
  // it theirs again, as a new link (`linked`: DeviceLinked); one from before it (reported late) not.
  logins: `
    UNWIND $rows AS l
    MATCH (c:Customer {id: l.customerId}), (d:Device {id: l.deviceId})
    MERGE (c)-[r:LOGGED_IN_FROM]->(d)
    ON CREATE SET r.login_count = 0, r.claim = $claim, r.trust_score = $initialTrust
    WITH l, r, d, coalesce(r.claim = $claim, false) AS created
    WITH l, r, d, created, created OR coalesce(datetime(l.last) > r.disowned_at, false) AS linked
    REMOVE r.claim
    SET r.disowned_at = CASE WHEN linked THEN null ELSE r.disowned_at END
    SET r.last_seen_ip = CASE WHEN r.last_login IS NULL OR r.last_login <= datetime(l.last)
                              THEN coalesce(l.ip, r.last_seen_ip) ELSE r.last_seen_ip END,
        r.last_seen_user_agent = CASE WHEN r.last_login IS NULL OR r.last_login <= datetime(l.last)
                                      THEN coalesce(l.userAgent, r.last_seen_user_agent) ELSE r.last_seen_user_agent END
    SET r.login_count = coalesce(r.login_count, 0) + l.count,
        r.first_login = CASE WHEN r.first_login IS NULL OR r.first_login > datetime(l.first)
                             THEN datetime(l.first) ELSE r.first_login END,
        r.last_login = CASE WHEN r.last_login IS NULL OR r.last_login < datetime(l.last)
                            THEN datetime(l.last) ELSE r.last_login END
    // A new edge's device is locked (newEdgeDevices, lockDevices): its state holds until the commit.
    RETURN l.customerId AS customerId, l.deviceId AS deviceId, linked, r.login_count AS loginCount,
      CASE WHEN created THEN ${LINKED_DEVICE('r', 'd')} END AS device`,
  usedOn: `
    UNWIND $rows AS u
    MATCH (p:PaymentMethod {id: u.paymentMethodId}), (d:Device {id: u.deviceId})
    MERGE (p)-[e:USED_ON]->(d)
    ON CREATE SET e.claim = $claim
    WITH u, e, e.claim = $claim AS created
    REMOVE e.claim
    SET e.use_count = coalesce(e.use_count, 0) + u.count,
        e.first_use = CASE WHEN e.first_use IS NULL OR e.first_use > datetime(u.first)
                           THEN datetime(u.first) ELSE e.first_use END,
        e.last_use = CASE WHEN e.last_use IS NULL OR e.last_use < datetime(u.last)
                          THEN datetime(u.last) ELSE e.last_use END
    RETURN u.customerId AS customerId, u.paymentMethodId AS paymentMethodId, u.deviceId AS deviceId, created`,
  // Matched as onboarding matches a returning customer's address: street and zip in any case, country.
  knownAddresses: `
    UNWIND $rows AS s
    MATCH (:Customer {id: s.customerId})-[:SHIPPED_TO]->(a:Address)
    WHERE toLower(a.street1) = toLower(s.address.street1) AND toLower(a.zip_code) = toLower(s.address.zip_code)
      AND a.country = s.address.country
    RETURN s.key AS key, a.id AS addressId
    ORDER BY a.created_at`,
  // A shipment after the customer disowned the address (graph/addresses.ts) makes it theirs again.
  shipToKnown: `
    UNWIND $rows AS s
    MATCH (:Customer {id: s.customerId})-[r:SHIPPED_TO]->(:Address {id: s.addressId})
    SET r.disowned_at = CASE WHEN datetime(s.last) > r.disowned_at THEN null ELSE r.disowned_at END
    SET r.first_shipped = CASE WHEN r.first_shipped IS NULL OR r.first_shipped > datetime(s.first)
                               THEN datetime(s.first) ELSE r.first_shipped END,
        r.last_shipped = CASE WHEN r.last_shipped IS NULL OR r.last_shipped < datetime(s.last)
                              THEN datetime(s.last) ELSE r.last_shipped END`,
  shipToNew: `
    UNWIND $rows AS s
    MATCH (c:Customer {id: s.customerId})
    CREATE (a:Address)
    SET a = s.address, a.id = s.addressId, a.is_default = false,
        a.created_at = datetime.transaction(), a.updated_at = datetime.transaction()
    SET a.match_key = ${addressMatchKey('a')}
    CREATE (c)-[r:SHIPPED_TO]->(a)
    SET r.first_shipped = datetime(s.first), r.last_shipped = datetime(s.last)`,
} as const;

const invalid = (field: string, problem: string): InteractionResult => ({ result: 'invalid', field, problem });

/** Earliest and latest of RFC 3339 times, as UTC instants (what Neo4j's datetime() reads). */
function span(times: string[]): { first: string; last: string } {
  const sorted = times.map((t) => Date.parse(t)).sort((a, b) => a - b);
  return {
    first: new Date(sorted[0] as number).toISOString(),
    last: new Date(sorted[sorted.length - 1] as number).toISOString(),
  };
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

const byKey = <T>(entries: Map<string, T>): [string, T][] =>
  [...entries.entries()].sort(([a], [b]) => (a < b ? -1 : 1));

/** The key an address is matched by (as `knownAddresses` compares). */
const addressKey = (customerId: string, a: ShippingAddress): string =>
  `${customerId}|${a.street1.toLowerCase()}|${a.zip_code.toLowerCase()}|${a.country}`;

/**
 * Records a batch of validated interactions in one transaction and answers each item's result
 * in the order given: `recorded`, `duplicate` (its id was recorded before, for this customer, or
 * earlier in the batch) or `invalid` (nothing of it written).
 */
export async function recordInteractions(
  g: Graph,
  items: Interaction[],
  rules: ProfileRules,
): Promise<InteractionResult[]> {
  return writeTx(g, (tx) => recordInteractionsTx(tx, g, items, rules));
}

/**
 * `recordInteractions` inside a writer's own transaction (a recovery's record). It takes the
 * customers' locks first; a writer that already holds one (and what belongs to that customer)
 * keeps the lock order, the customer first.
 */
export async function recordInteractionsTx(
  tx: ManagedTransaction,
  g: Graph,
  items: Interaction[],
  rules: ProfileRules,
): Promise<InteractionResult[]> {
  const currency = g.policy.reportingCurrency;
  // Recomputed on every attempt: the transaction function may run again after a transient error.
  const results: (InteractionResult | undefined)[] = items.map((item) => {
    if (item.type === 'payment' && item.currency !== currency)
      return invalid(
        'currency',
        `must be ${currency}, the reporting currency: no exchange rate to it is configured, so an amount in ` +
          'another currency cannot be counted exactly',
      );
    const problem = item.type === 'ltv_feedback' ? decimalProblem(item.predicted_ltv, currency) : null;
    return problem ? invalid('predicted_ltv', `${problem} (in ${currency})`) : undefined;
  });
  const open = () => items.map((item, i) => ({ item, i })).filter(({ i }) => results[i] === undefined);

  // 1. The customers' locks, in id order, before anything of theirs; with them, which of the
  //    payment methods the batch names each customer owns.
  const methods = new Map<string, Set<string>>();
  for (const { item } of open()) {
    const named = methods.get(item.customer_id) ?? new Set<string>();
    if (item.type === 'payment') named.add(item.payment_method_id);
    methods.set(item.customer_id, named);
  }
  const lockRows = [...methods.keys()].sort().map((id) => ({ id, methods: [...(methods.get(id) ?? [])] }));
  const status = new Map<string, string>();
  const owned = new Set<string>();
  /** A merged customer (a merge's tombstone, graph/merge.ts) named by the batch → its survivor. */
  const survivorFor = new Map<string, string>();
  const lock = async (rows: { id: string; methods: string[] }[]) => {
    for (const r of (await tx.run(CYPHER.lock, { rows })).records) {
      const id = r.get('id') as string;
      status.set(id, r.get('status') as string);
      const into = r.get('mergedInto') as string | null;
      if (r.get('status') === 'merged' && into) survivorFor.set(id, into);
      for (const m of r.get('owned') as string[]) owned.add(`${id}|${m}`);
    }
  };
  if (lockRows.length > 0) await lock(lockRows);
  // 1b. An item naming a merged customer is recorded on its survivor, which holds its methods and
  //     devices now: never on the tombstone. The survivors are locked after the others (the lock
  //     order bends here; a deadlock with a merge of the same records is retried by the driver),
  //     with the methods their tombstones' items name. Chains are shortened by every merge, so a
  //     survivor that is itself merged means a merge is committing: refused, to be sent again.
  if (survivorFor.size > 0) {
    const named = new Map<string, Set<string>>();
    for (const [tombstone, survivor] of survivorFor)
      named.set(survivor, new Set([...(named.get(survivor) ?? []), ...(methods.get(tombstone) ?? [])]));
    await lock([...named.keys()].sort().map((id) => ({ id, methods: [...(named.get(id) ?? [])] })));
  }
  /** Whose the item is: the customer it names, or that customer's survivor. */
  const ownerOf = (item: Interaction): string => survivorFor.get(item.customer_id) ?? item.customer_id;
  for (const { item, i } of open()) {
    const s = status.get(ownerOf(item));
    if (s === undefined) results[i] = invalid('customer_id', 'no such customer');
    else if (s === 'erased') results[i] = invalid('customer_id', 'the customer was erased: nothing is recorded');
    else if (s === 'merged')
      results[i] = {
        result: 'invalid',
        field: 'customer_id',
        problem: `customer ${item.customer_id} is being merged: send the item again`,
        retry: true,
      };
  }

  // 2. A payment names one of the customer's own methods.
  for (const { item, i } of open())
    if (item.type === 'payment' && !owned.has(`${ownerOf(item)}|${item.payment_method_id}`))
      results[i] = invalid('payment_method_id', 'not a payment method of this customer');

  // 3. Claim the ids: the first of a key in the batch claims it, later ones are duplicates. The key
  //    is the customer the sender named (a merged one's too), so that an item recorded before its
  //    customer was merged is a duplicate when it is sent again after.
  const claim = randomUUID();
  const firstOf = new Map<string, number>();
  const claimRows: { key: string; customerId: string; type: string }[] = [];
  for (const { item, i } of open()) {
    const key = `${item.customer_id}:${item.id}`;
    if (firstOf.has(key)) continue;
    firstOf.set(key, i);
    claimRows.push({ key, customerId: item.customer_id, type: item.type });
  }
  const created = new Set<string>();
  if (claimRows.length > 0)
    for (const r of (await tx.run(CYPHER.claim, { rows: claimRows, claim })).records)
      if (r.get('created') === true) created.add(r.get('key') as string);
  const recorded: Interaction[] = [];
  for (const { item, i } of open()) {
    const key = `${item.customer_id}:${item.id}`;
    if (firstOf.get(key) === i && created.has(key)) {
      const owner = ownerOf(item);
      results[i] = owner === item.customer_id ? { result: 'recorded' } : { result: 'recorded', merged_into: owner };
      recorded.push(owner === item.customer_id ? item : { ...item, customer_id: owner });
    } else results[i] = { result: 'duplicate' };
  }

  await apply(tx, recorded, rules, currency, claim);
  return results as InteractionResult[];
}

/** The effects of the newly recorded items, aggregated per customer, and their events. */
async function apply(
  tx: ManagedTransaction,
  recorded: Interaction[],
  rules: ProfileRules,
  currency: string,
  claim: string,
): Promise<void> {
  if (recorded.length === 0) return;
  const events: NewEvent[] = [];
  /** Per customer, what changed on its profile and why: one CustomerProfileUpdated each. */
  type ProfileChange = {
    changes: Record<string, { from: unknown; to: unknown }>;
    why: string[];
    /** The methods whose last_used a succeeded payment moved, and where to (RFC 3339). */
    used: { payment_method_id: string; last_used: string }[];
  };
  const profile = new Map<string, ProfileChange>();
  const profileOf = (id: string): ProfileChange => {
    const known = profile.get(id);
    if (known) return known;
    const fresh: ProfileChange = { changes: {}, why: [], used: [] };
    profile.set(id, fresh);
    return fresh;
  };
  const payments = recorded.filter((i) => i.type === 'payment');
  /** Per customer, what the VIP rule reads: before the batch (first seen) and after it (last seen). */
  type VipInputs = { segment: string; ltv: number; predicted: number | null };
  const vip = new Map<string, { before: VipInputs; after: VipInputs }>();
  const vipInputs = (id: string, before: VipInputs, after: VipInputs) => {
    const known = vip.get(id);
    vip.set(id, { before: known?.before ?? before, after });
  };

  // The methods' use: succeeded payments only (a declined card is not moved up the checkout).
  const usesOf = new Map<string, { paymentMethodId: string; first: string; last: string }[]>();
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

  // LTV, the succeeded-payment count and the methods' use: one row per customer (every customer with
  // a use has a succeeded payment, so a row).
  const profileRows = byKey(groupBy(payments, (p) => p.customer_id))
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
  if (profileRows.length > 0) {
    const res = await tx.run(CYPHER.profile, {
      rows: profileRows.map((r) => ({
        customerId: r.customerId,
        ltvDelta: neo4j.int(r.ltvDelta),
        succeeded: neo4j.int(r.succeeded),
        uses: usesOf.get(r.customerId) ?? [],
      })),
      subscriberAfter: neo4j.int(rules.subscriberAfterPayments),
    });
    const byCustomer = new Map(profileRows.map((r) => [r.customerId, r]));
    for (const r of res.records) {
      const id = r.get('id') as string;
      const row = byCustomer.get(id);
      if (!row) continue;
      const from = ltvMinorFromGraph(r.get('ltvBefore'), currency);
      const to = ltvMinorFromGraph(r.get('ltvAfter'), currency);
      const segmentFrom = r.get('segmentBefore') as string;
      const segmentTo = r.get('segmentAfter') as string;
      const predicted = predictedLtvMinorFromGraph(r.get('predicted'), currency);
      vipInputs(id, { segment: segmentFrom, ltv: from, predicted }, { segment: segmentTo, ltv: to, predicted });
      const { changes, why, used } = profileOf(id);
      for (const u of toPlain(r.get('used')) as unknown as { paymentMethodId: string; lastUsed: string }[])
        used.push({ payment_method_id: u.paymentMethodId, last_used: u.lastUsed });
      if (from !== to || used.length > 0) {
        if (from !== to) {
          changes.ltv_minor = { from, to };
          changes.ltv = { from: ltvFields(from, currency).ltv, to: ltvFields(to, currency).ltv };
        }
        why.push(
          [
            row.succeeded > 0 ? `${row.succeeded} succeeded payment${row.succeeded === 1 ? '' : 's'}` : '',
            row.refunded > 0 ? `${row.refunded} refund${row.refunded === 1 ? '' : 's'} or chargeback` : '',
          ]
            .filter(Boolean)
            .join(' and ') + ' recorded',
        );
      }
      if (segmentFrom !== segmentTo) {
        changes.segment = { from: segmentFrom, to: segmentTo };
        why.push(`${segmentTo} after ${String(r.get('succeededPayments'))} succeeded payments`);
      }
    }
  }

  // The Oracle's prediction: its own field, never added to the measured LTV.
  const feedbackRows = byKey(
    groupBy(
      recorded.filter((i) => i.type === 'ltv_feedback'),
      (f) => f.customer_id,
    ),
  ).map(([customerId, fs]) => {
    const latest = [...fs].sort((a, b) => Date.parse(b.occurred_at) - Date.parse(a.occurred_at))[0];
    return {
      customerId,
      value: neo4j.int(toMinorUnits(latest?.predicted_ltv as string, currency)),
      at: new Date(Date.parse(latest?.occurred_at as string)).toISOString(),
    };
  });
  if (feedbackRows.length > 0) {
    for (const r of (await tx.run(CYPHER.feedback, { rows: feedbackRows })).records) {
      const id = r.get('id') as string;
      const from = predictedLtvMinorFromGraph(r.get('before'), currency);
      const to = predictedLtvMinorFromGraph(r.get('after'), currency);
      const segment = r.get('segment') as string;
      const ltv = ltvMinorFromGraph(r.get('ltv'), currency);
      vipInputs(id, { segment, ltv, predicted: from }, { segment, ltv, predicted: to });
      if (from === to) continue;
      const { changes, why } = profileOf(id);
      changes.predicted_ltv_minor = { from, to };
      changes.predicted_ltv = {
        from: from === null ? null : fromMinorUnits(from, currency),
        to: to === null ? null : fromMinorUnits(to, currency),
      };
      why.push('the Oracle’s LTV feedback');
    }
  }
  // VIP, from what the rule reads before the batch and after it (one rule: graph/context.ts isVip).
  for (const [id, { before, after }] of vip) {
    const vipFrom = isVip(before.segment, before.ltv, before.predicted, rules);
    const vipTo = isVip(after.segment, after.ltv, after.predicted, rules);
    if (vipFrom === vipTo) continue;
    const { changes, why } = profileOf(id);
    changes.is_vip = { from: vipFrom, to: vipTo };
    const basis =
      rules.vipBasis === 'measured'
        ? 'lifetime value'
        : rules.vipBasis === 'predicted'
          ? 'predicted lifetime value'
          : 'lifetime value or predicted lifetime value';
    why.push(vipTo ? `${basis} reached the VIP threshold` : `${basis} fell below the VIP threshold`);
  }
  // A moved last_used alone is a change too (it orders the checkout): never silent.
  for (const [id, { changes, why, used }] of byKey(profile))
    if (Object.keys(changes).length > 0 || used.length > 0)
      events.push({
        type: 'CustomerProfileUpdated',
        customerId: id,
        transient: isTransient('CustomerProfileUpdated', { changes }),
        payload: {
          changes,
          ...(changes.ltv_minor || changes.predicted_ltv_minor ? { ltv_currency: currency } : {}),
          ...(used.length > 0 ? { payment_methods_used: used } : {}),
          reason: why.join('; '),
        },
      });

  // Devices (logins, and the device a payment was attempted on), created on first sight.
  const seen = recorded.flatMap((i): { item: Interaction; device: SeenDevice }[] =>
    i.type === 'login'
      ? [{ item: i, device: i.device }]
      : i.type === 'payment' && i.device
        ? [{ item: i, device: i.device }]
        : [],
  );
  const deviceIds = new Map<string, { id: string; created: boolean }>();
  const fingerprints = [...new Set(seen.map((s) => s.device.fingerprint))].sort();
  if (fingerprints.length > 0) {
    const res = await tx.run(CYPHER.devices, {
      rows: fingerprints.map((fingerprint) => ({ fingerprint, deviceId: randomUUID() })),
      trustScore: DEVICE_TRUST_CEILING,
    });
    for (const r of res.records)
      deviceIds.set(r.get('fingerprint') as string, {
        id: r.get('id') as string,
        created: r.get('created') as boolean,
      });
  }
  const deviceOf = (fingerprint: string) => deviceIds.get(fingerprint) as { id: string; created: boolean };

  const logins = seen.filter((s) => s.item.type === 'login');
  const loginRows = byKey(groupBy(logins, (s) => `${s.item.customer_id}|${deviceOf(s.device.fingerprint).id}`)).map(
    ([, group]) => {
      const latest = [...group].sort((a, b) => Date.parse(b.item.occurred_at) - Date.parse(a.item.occurred_at))[0];
      return {
        customerId: group[0]?.item.customer_id,
        deviceId: deviceOf(group[0]?.device.fingerprint as string).id,
        count: neo4j.int(group.length),
        ip: latest?.device.ip ?? null,
        userAgent: latest?.device.user_agent ?? null,
        ...span(group.map((s) => s.item.occurred_at)),
      };
    },
  );
  const attempts = seen.filter((s) => s.item.type === 'payment');
  const usedOnRows = byKey(
    groupBy(attempts, (s) => {
      const p = s.item as Extract<Interaction, { type: 'payment' }>;
      return `${p.payment_method_id}|${deviceOf(s.device.fingerprint).id}`;
    }),
  ).map(([, group]) => {
    const p = group[0]?.item as Extract<Interaction, { type: 'payment' }>;
    return {
      customerId: p.customer_id,
      paymentMethodId: p.payment_method_id,
      deviceId: deviceOf(group[0]?.device.fingerprint as string).id,
      count: neo4j.int(group.length),
      ...span(group.map((s) => s.item.occurred_at)),
    };
  });
  // Only the devices that get a new edge are locked (CYPHER.newEdgeDevices), in id order.
  if (loginRows.length > 0 || usedOnRows.length > 0) {
    const found = await tx.run(CYPHER.newEdgeDevices, { logins: loginRows, used: usedOnRows });
    const ids = [...((found.records[0]?.get('ids') as string[] | undefined) ?? [])].sort();
    if (ids.length > 0) await tx.run(CYPHER.lockDevices, { ids });
  }
  if (loginRows.length > 0) {
    const res = await tx.run(CYPHER.logins, { rows: loginRows, claim, initialTrust: INITIAL_TRUST_SCORE });
    for (const r of res.records)
      if (r.get('linked') === true) {
        const deviceId = r.get('deviceId') as string;
        events.push({
          type: 'DeviceLinked',
          customerId: r.get('customerId') as string,
          payload: {
            device_id: deviceId,
            new_device: [...deviceIds.values()].some((d) => d.id === deviceId && d.created),
            login_count: neo4j.integer.toNumber(r.get('loginCount') as number),
          },
          ...linkedDevice(r.get('device')),
        });
      }
  }

  if (usedOnRows.length > 0) {
    const res = await tx.run(CYPHER.usedOn, { rows: usedOnRows, claim });
    for (const r of res.records)
      if (r.get('created') === true) {
        const deviceId = r.get('deviceId') as string;
        events.push({
          type: 'PaymentMethodUsedOnDevice',
          customerId: r.get('customerId') as string,
          payload: {
            payment_method_id: r.get('paymentMethodId') as string,
            device_id: deviceId,
            new_device: [...deviceIds.values()].some((d) => d.id === deviceId && d.created),
          },
        });
      }
  }

  // Shipments (and a payment's shipping address): a known address is matched, a new one added once.
  const ships = recorded.flatMap((i): { item: Interaction; address: ShippingAddress }[] =>
    i.type === 'shipment'
      ? [{ item: i, address: i.address }]
      : i.type === 'payment' && i.shipping_address
        ? [{ item: i, address: i.shipping_address }]
        : [],
  );
  if (ships.length > 0) {
    const groups = byKey(groupBy(ships, (s) => addressKey(s.item.customer_id, s.address)));
    const rows = groups.map(([key, group]) => ({
      key,
      customerId: group[0]?.item.customer_id as string,
      address: group[0]?.address as ShippingAddress,
      ...span(group.map((s) => s.item.occurred_at)),
    }));
    const known = new Map<string, string>();
    for (const r of (await tx.run(CYPHER.knownAddresses, { rows })).records) {
      const key = r.get('key') as string;
      if (!known.has(key)) known.set(key, r.get('addressId') as string);
    }
    const toKnown = rows.filter((r) => known.has(r.key)).map((r) => ({ ...r, addressId: known.get(r.key) }));
    if (toKnown.length > 0) await tx.run(CYPHER.shipToKnown, { rows: toKnown });
    const toNew = rows
      .filter((r) => !known.has(r.key))
      .map((r) => ({
        ...r,
        addressId: randomUUID(),
        address: { ...r.address, street2: r.address.street2 ?? null, state: r.address.state ?? null },
      }));
    if (toNew.length > 0) {
      await tx.run(CYPHER.shipToNew, { rows: toNew });
      for (const r of toNew)
        events.push({
          type: 'AddressAdded',
          customerId: r.customerId,
          payload: { address_id: r.addressId, type: r.address.type, country: r.address.country, is_default: false },
        });
    }
  }

  // Numbered in each customer's sequence under its lock (held since step 1).
  await appendEvents(tx, events);
}

/**
 * One batch of the daily prune (`pruneInteractionClaims`): claims recorded before `$olderThan`,
 * oldest first, straight off the `interaction_recorded_at` range index (a test checks the plan).
 */
export const PRUNE_CLAIMS_BATCH = `
  MATCH (i:Interaction) WHERE i.recorded_at < datetime($olderThan)
  WITH i ORDER BY i.recorded_at LIMIT $batch
  DETACH DELETE i
  RETURN count(i) AS deleted`;

export interface PruneClaimsOptions {
  /** Claims recorded before this instant are deleted. */
  olderThan: Date;
  /** Claims deleted per write transaction. */
  batchSize: number;
  /** Called after each batch with the claims deleted so far (an activity heartbeats here). */
  onBatch?: (deletedSoFar: number) => void;
}

/**
 * Forgets interaction ids recorded before `olderThan`, in batches of `batchSize` (each its own
 * write transaction, so a backlog of any size fits the write-transaction limit and a stop halfway
 * keeps what was deleted). Answers how many were deleted. Past its claim's deletion an id is
 * unknown again: a redelivery of it then records again (the contract past the retention window).
 * Idempotent: running it twice, or two at once, deletes each claim once.
 */
export async function pruneInteractionClaims(g: Graph, options: PruneClaimsOptions): Promise<number> {
  const params = { olderThan: options.olderThan.toISOString(), batch: neo4j.int(options.batchSize) };
  let deleted = 0;
  for (;;) {
    const n = await writeTx(g, async (tx) =>
      neo4j.integer.toNumber((await tx.run(PRUNE_CLAIMS_BATCH, params)).records[0]?.get('deleted') as number),
    );
    deleted += n;
    options.onBatch?.(deleted);
    if (n < options.batchSize) return deleted;
  }
}
