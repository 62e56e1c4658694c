/**
 * The read path other agents call inside a payment's authorisation budget: one snapshot of the
 * customer (readCustomerSnapshot, one parameterised Cypher read until two reads agree), from which
 * the api serves both the customer context and the checkout options (contextFromSnapshot,
 * checkoutFromSnapshot), through its read cache (api/readCache.ts).
 */
import neo4j, { type Record as Neo4jRecord } from 'neo4j-driver';
import { toPlain } from './convert';
import { ltvMinorFromGraph, predictedLtvMinorFromGraph } from './customers';
import { INITIAL_TRUST_SCORE } from './devices';
import { InvalidStateError, NotFoundError } from './errors';
import { isBookmarkUnreachable, readsOnTheLeader, sessionOf, type Graph } from './graph';
import type { WalletEntry } from './model';

export interface ContextPolicy {
  /** A device is trusted at this trust score or above. */
  trustThreshold: number;
  /** A customer is VIP with segment VIP or at least this lifetime value (minor units of the reporting currency). */
  vipLtvMinor: number;
  /** Which lifetime value meets `vipLtvMinor`: the measured one, The Oracle's predicted one, or either. */
  vipBasis: 'measured' | 'predicted' | 'either';
}

/**
 * The VIP rule, the one place it is written: segment VIP (an explicit decision, always kept), or the
 * lifetime value the policy names at or above the threshold. A customer without a prediction is
 * never VIP by prediction.
 */
export function isVip(
  segment: string,
  ltvMinor: number,
  predictedLtvMinor: number | null,
  policy: Pick<ContextPolicy, 'vipLtvMinor' | 'vipBasis'>,
): boolean {
  if (segment === 'VIP') return true;
  const measured = ltvMinor >= policy.vipLtvMinor;
  const predicted = predictedLtvMinor !== null && predictedLtvMinor >= policy.vipLtvMinor;
  if (policy.vipBasis === 'measured') return measured;
  if (policy.vipBasis === 'predicted') return predicted;
  return measured || predicted;
}

export interface CustomerContext {
  customer_id: string;
  status: string;
  segment: string;
  is_vip: boolean;
  /** Minor units of the reporting currency. */
  ltv_minor: number;
  /** The Oracle's predicted lifetime value (minor units), or null when it has predicted none. */
  predicted_ltv_minor: number | null;
  trusted_devices: { device_id: string; fingerprint: string; trust_score: number }[];
  default_payment_method_id: string | null;
  active_payment_methods: string[];
}

/**
 * One read outside a transaction function, so the hot path fails fast (UNAVAILABLE) instead of
 * retrying for seconds when Neo4j is down — an answer that late is no use to an authorisation. It
 * starts only once the server has applied every transaction the `after` bookmarks name (Neo4j
 * waits for it), and returns the read's own bookmarks: every transaction committed by the time
 * the read ended.
 */
async function readAfter(g: Graph, cypher: string, params: Record<string, unknown>, leader: boolean, after?: string[]) {
  const onLeader = leader || readsOnTheLeader();
  // Not the process's own writes: a hot read would wait for this api's latest write of any
  // customer. A read that must reach a write says so with its consistency token (api/consistency.ts).
  const config = sessionOf(g, onLeader ? 'WRITE' : 'READ', after, { ownWrites: false });
  const session = (onLeader ? g.driver : (g.readDriver ?? g.driver)).session(config);
  try {
    const result = await withoutCallerStack(() =>
      session.run(cypher, params, g.limits?.hotReadMs ? { timeout: g.limits.hotReadMs } : {}),
    );
    return { result, bookmarks: session.lastBookmarks() };
  } finally {
    await session.close();
  }
}

/**
 * Starts a query without the caller's stack trace that neo4j-driver captures for every query (to
 * add to an error it may end with): formatting it, with the source maps TypeScript runs under, was
 * about 8 % of the api's CPU on a context read that misses the cache. A hot read's error is
 * answered as 503 or 404 and logged where it is caught, so the frames it loses are this function's.
 * The driver captures the stack synchronously, as the query starts.
 */
function withoutCallerStack<T>(start: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return start();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export interface CheckoutOptions {
  status: string;
  data: WalletEntry[];
  trusted_device: boolean;
}

/**
 * Everything both agent reads are computed from: one customer's state as one read saw it, with
 * the customer's event sequence read first (so the data is at least as new as `seq`, and an event
 * numbered above it may or may not be reflected yet). Policy (the trust threshold, VIP, the
 * expiry month) is applied when an answer is served, so a kept snapshot stays right when the
 * month turns or the configuration differs.
 */
export interface CustomerSnapshot {
  /** The customer the data is of: the survivor when the id asked for is a merge's tombstone. */
  customer_id: string;
  /**
   * Set (to the survivor, `customer_id`) when the id asked for is the tombstone of a merge
   * (graph/identityMerge.ts): the read followed it. Absent otherwise.
   */
  merged_into?: string;
  /** The customer's event sequence when the read began (0 before its first event). */
  seq: number;
  /**
   * Only on a read that followed a merge: the tombstone's own event sequence (its writes all came
   * before the merge), which a consistency token of the merged id is checked against. Never kept.
   */
  merged_seq?: number;
  /**
   * Only on a read made for a caller's device token: that device's own event sequence, whether
   * the customer uses the device or not (0 when there is no such device). Never kept.
   */
  token_device?: { device_id: string; seq: number };
  /**
   * Set when no two reads agreed (writes on the customer kept being applied): the last read, which
   * may hold part of a write. Answered, never kept.
   */
  unconfirmed?: true;
  status: string;
  segment: string;
  ltvMinor: number;
  predictedLtvMinor: number | null;
  /**
   * Every device the customer logged in from and has not disowned, trusted or not, with the
   * device's own sequence: `trust_score` is the customer's trust on it, the lower of what they
   * earned there (`earned`, their login edge) and the device's own (`ceiling`, graph/devices.ts).
   */
  devices: SnapshotDevice[];
  /** The active payment methods, in no particular order. */
  methods: WalletEntry[];
}

/**
 * The snapshot is read without locks, as a plain read transaction (on a cluster, any member that
 * has caught up may answer it): no read ever waits for a writer that holds the customer.
 *
 * Neo4j reads at read committed, and a transaction's changes reach the store one by one while it
 * is applied, so a read that runs while a write on the same customer is being applied can see part
 * of it. A confirming read after the snapshot's bookmarks (`readCustomerSnapshot`) catches a
 * write whose number had not landed when the snapshot read it. A write whose number landed first
 * and the rest after the read is not caught: that answer is the caller's once, but the read cache
 * (api/readCache.ts) never keeps it as current: it trusts a snapshot at its sequence only when the
 * event of that number had reached the cache before the read began (its transaction was applied
 * whole by then), and otherwise keeps it one below, so the writer's event, when it comes, is
 * applied to it or drops it.
 *
 * The id asked for may be the tombstone of a merge (graph/identityMerge.ts: status `merged`,
 * `merged_into`): the same read then follows it — no second round trip, and for any other id only
 * an index seek that finds nothing. The tombstone is read again last (`askedStatus`,
 * `askedInto`): when it no longer leads where the read went (a merge or unmerge committed in
 * between), the read is made again (`readCustomerSnapshot`).
 */
export interface SnapshotDevice {
  device_id: string;
  fingerprint: string;
  trust_score: number;
  earned: number;
  ceiling: number;
  seq: number;
}

/** A customer's trust on a device: the lower of what they earned there and the device's own. */
export function trustOnDevice(earned: number, ceiling: number): number {
  return Math.min(earned, ceiling);
}

const WALLET_ENTRY = `p {.id, .type, .status, .brand, .last_four, .expiry_month, .expiry_year, .created_at, .updated_at,
  is_default: coalesce(r.is_default, false), first_used: r.first_used, last_used: r.last_used}`;

export const SNAPSHOT_CYPHER = `
  MATCH (asked:Customer {id: $customerId})
  OPTIONAL MATCH (survivor:Customer {id: asked.merged_into}) WHERE asked.status = 'merged'
  WITH coalesce(survivor, asked) AS c
  WITH c, coalesce(c.event_seq, 0) AS seq
  WITH seq, c, c.id AS customer_id, c.status AS status, c.segment AS segment, c.ltv AS ltv,
    c.predicted_ltv AS predicted,
    [(c)-[l:LOGGED_IN_FROM]->(d:Device) WHERE l.disowned_at IS NULL
       | [coalesce(d.event_seq, 0), d.id, d.fingerprint, d.trust_score,
          coalesce(l.trust_score, $initialTrust)]] AS devices,
    [(c)-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod) WHERE p.status = 'active' | ${WALLET_ENTRY}] AS methods
  // Read last, through a variable of its own. The token's device (a caller's consistency token of
  // a device trust write): its own sequence, whether the customer uses it or not.
  MATCH (now:Customer {id: $customerId})
  OPTIONAL MATCH (td:Device {id: $tokenDeviceId})
  RETURN seq, customer_id, status, segment, ltv, predicted, devices, methods,
    now.status AS askedStatus, now.merged_into AS askedInto, coalesce(now.event_seq, 0) AS askedSeq,
    coalesce(td.event_seq, 0) AS tokenDeviceSeq`;

/**
 * One customer's snapshot (see SNAPSHOT_CYPHER): what the read cache fills from. `leader`: on a
 * cluster, read from the leader (a caller whose consistency token no follower may have reached
 * yet). No read takes a lock.
 *
 * Every snapshot is read twice: the second read starts after the first one's bookmarks, so Neo4j
 * begins it only once every transaction committed before the first read ended has been applied.
 * A write that was being applied while the first read ran is whole by the second, which then
 * differs from the first; a write that tears the second read committed after the first ended, so
 * it is in the first not at all, and the two differ again. Two reads that agree are therefore
 * whole, and the first is answered. When they differ, the second is checked the same way against a
 * third; after CONCURRENT_WRITE_ATTEMPTS the last read is answered marked `unconfirmed` (the cache
 * does not keep it).
 */
export async function readCustomerSnapshot(
  g: Graph,
  customerId: string,
  options: { leader?: boolean; tokenDeviceId?: string } = {},
): Promise<CustomerSnapshot> {
  const leader = options.leader === true;
  const params = { customerId, initialTrust: INITIAL_TRUST_SCORE, tokenDeviceId: options.tokenDeviceId ?? null };
  let previous: string | undefined;
  let after: string[] | undefined;
  // A member behind the leader may not have the customer yet, or may not reach the bookmarks the
  // read waits for (graph/bookmarks.ts): the leader is asked then.
  const onLeaderInstead = () =>
    !leader && !readsOnTheLeader() ? readCustomerSnapshot(g, customerId, { ...options, leader: true }) : undefined;
  for (let attempt = 1; ; attempt++) {
    let read: Awaited<ReturnType<typeof readAfter>>;
    try {
      read = await readAfter(g, SNAPSHOT_CYPHER, params, leader, after);
    } catch (err) {
      const instead = isBookmarkUnreachable(err) ? onLeaderInstead() : undefined;
      if (instead) return instead;
      throw err;
    }
    after = read.bookmarks;
    const r = read.result.records[0];
    if (!r) {
      // Only the leader's "not found" is believed.
      const instead = onLeaderInstead();
      if (instead) return instead;
      throw new NotFoundError('Customer', customerId);
    }
    // Undefined when the id led elsewhere by the end of the read (a merge or unmerge meanwhile).
    const snap = snapshotRead(g, r, customerId, options.tokenDeviceId);
    const text = snap === undefined ? undefined : JSON.stringify(snap);
    if (snap !== undefined && text === previous) return snap;
    if (attempt >= CONCURRENT_WRITE_ATTEMPTS) {
      if (snap === undefined)
        throw new InvalidStateError(`customer ${customerId} is being merged or unmerged: try again`);
      return { ...snap, unconfirmed: true };
    }
    previous = text;
  }
}

/**
 * The snapshot a record holds, or undefined when the id asked for no longer led where the read
 * went by its end (itself, or the survivor of its merge).
 */
function snapshotRead(
  g: Graph,
  r: Neo4jRecord,
  customerId: string,
  tokenDeviceId: string | undefined,
): CustomerSnapshot | undefined {
  const survivor = r.get('customer_id') as string;
  const askedStatus = r.get('askedStatus') as string;
  const settled =
    survivor === customerId
      ? askedStatus !== 'merged'
      : askedStatus === 'merged' && r.get('askedInto') === survivor && r.get('status') !== 'merged';
  if (!settled) return undefined;
  const snap = snapshotOf(g, r, survivor === customerId ? undefined : survivor);
  if (snap.merged_into !== undefined) snap.merged_seq = toNumber(r.get('askedSeq'));
  if (tokenDeviceId !== undefined)
    snap.token_device = { device_id: tokenDeviceId, seq: toNumber(r.get('tokenDeviceSeq')) };
  return snap;
}

/**
 * How many reads a snapshot takes at most when writes on the customer (or a merge or unmerge of
 * the id) keep being applied while it is read: two that agree end it sooner.
 */
const CONCURRENT_WRITE_ATTEMPTS = 4;

function snapshotOf(g: Graph, r: Neo4jRecord, mergedInto: string | undefined): CustomerSnapshot {
  // Each device's sequence before its trust score, as the customer's before its data.
  const devices = r.get('devices') as [unknown, string, string, number, number][];
  return {
    customer_id: r.get('customer_id') as string,
    ...(mergedInto === undefined ? {} : { merged_into: mergedInto }),
    seq: toNumber(r.get('seq')),
    status: r.get('status') as string,
    segment: r.get('segment') as string,
    ltvMinor: ltvMinorFromGraph(r.get('ltv'), g.policy.reportingCurrency),
    predictedLtvMinor: predictedLtvMinorFromGraph(r.get('predicted'), g.policy.reportingCurrency),
    devices: devices.map(([seq, device_id, fingerprint, ceiling, earned]) => ({
      device_id,
      fingerprint,
      trust_score: trustOnDevice(earned, ceiling),
      earned,
      ceiling,
      seq: toNumber(seq),
    })),
    methods: toPlain(r.get('methods')) as unknown as WalletEntry[],
  };
}

function toNumber(value: unknown): number {
  return neo4j.isInt(value) ? (value as { toNumber(): number }).toNumber() : Number(value ?? 0);
}

/** The customer context of a snapshot, under the policy in force now. */
export function contextFromSnapshot(snap: CustomerSnapshot, policy: ContextPolicy): CustomerContext {
  const defaultMethod = snap.methods.find((m) => m.is_default);
  return {
    customer_id: snap.customer_id,
    status: snap.status,
    segment: snap.segment,
    is_vip: isVip(snap.segment, snap.ltvMinor, snap.predictedLtvMinor, policy),
    ltv_minor: snap.ltvMinor,
    predicted_ltv_minor: snap.predictedLtvMinor,
    trusted_devices: snap.devices
      .filter((d) => d.trust_score >= policy.trustThreshold)
      .map(({ device_id, fingerprint, trust_score }) => ({ device_id, fingerprint, trust_score }))
      .sort((a, b) => b.trust_score - a.trust_score),
    default_payment_method_id: defaultMethod?.id ?? null,
    active_payment_methods: snap.methods.map((m) => m.id),
  };
}

/** The month count a card's expiry is compared with (a card is valid through its expiry month). */
export function monthOf(now: Date): number {
  return now.getUTCFullYear() * 12 + now.getUTCMonth() + 1;
}

const usedAt = (m: WalletEntry): number => (m.last_used === null ? -Infinity : Date.parse(m.last_used));

/**
 * The checkout options of a snapshot: active, unexpired methods (a card is valid through the end
 * of its expiry month), the default first, then the most recently used, then the newest; none for
 * a customer who is not active. `trusted_device` says whether `deviceId` is one of the customer's
 * devices at or above the trust threshold (a device they disowned is not in the snapshot).
 */
export function checkoutFromSnapshot(
  snap: CustomerSnapshot,
  deviceId: string | null,
  policy: Pick<ContextPolicy, 'trustThreshold'>,
  now = new Date(),
): CheckoutOptions {
  const month = monthOf(now);
  const data =
    snap.status !== 'active'
      ? []
      : snap.methods
          .filter(
            (m) => m.expiry_year == null || (m.expiry_month != null && m.expiry_year * 12 + m.expiry_month >= month),
          )
          .sort(
            (a, b) =>
              Number(b.is_default) - Number(a.is_default) ||
              usedAt(b) - usedAt(a) ||
              Date.parse(b.created_at) - Date.parse(a.created_at),
          );
  const device = deviceId === null ? undefined : snap.devices.find((d) => d.device_id === deviceId);
  return {
    status: snap.status,
    data,
    trusted_device: device !== undefined && device.trust_score >= policy.trustThreshold,
  };
}
