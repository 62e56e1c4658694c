/**
 * Devices a customer logs in from. A device is one node per fingerprint, shared by every
 * customer seen on it (a family tablet); each customer's LOGGED_IN_FROM edge counts logins and
 * holds what that customer's logins showed (IP address, user agent): facts of one customer,
 * never on the node that the others on the device read too.
 *
 * Trust is per customer. What a customer earned on a device (a passed challenge) is on their own
 * edge (`trust_score`, INITIAL_TRUST_SCORE until earned): another account presenting the same
 * fingerprint starts from the beginning. What is known of the device itself — Chimera's
 * device-level signals, a fraud outcome naming it — is on the node (`trust_score`, 1.0 until a
 * signal lowers it) and caps everyone on it. A customer's trust on a device is the lower of the two
 * (TRUST_ON_DEVICE); contexts, checkout, recovery's choice of card and the console read that.
 */
import { randomUUID } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import type { z } from 'zod';
import { toPlain } from './convert';
import { lockCustomerForChangeTx, lockCustomersTx } from './customers';
import { NotFoundError } from './errors';
import { appendDeviceEvent, appendEvent, FRAUD_SIGNAL_REASON } from './events';
import { readCustomerList, writeTx, type Graph } from './graph';
import {
  deviceInput,
  parseInput,
  type CustomerDevice,
  type CustomerStatus,
  type DeviceInput,
  type DeviceTrustReason,
} from './model';

/** The trust a customer has on a device before earning any (their login edge): below the trusted threshold. */
export const INITIAL_TRUST_SCORE = 0.5;
/** A device nothing is known against: it caps no one. */
export const DEVICE_TRUST_CEILING = 1.0;

/**
 * A customer's trust on a device, in Cypher: the lower of what they earned on it (their login edge
 * `l`, INITIAL_TRUST_SCORE when none was recorded) and the device's own (`d`, device-level signals).
 */
export const TRUST_ON_DEVICE = (l: string, d: string): string =>
  `CASE WHEN coalesce(${l}.trust_score, ${INITIAL_TRUST_SCORE}) < ${d}.trust_score ` +
  `THEN coalesce(${l}.trust_score, ${INITIAL_TRUST_SCORE}) ELSE ${d}.trust_score END`;

/**
 * A newly linked device as the customer's context reads it (graph/context.ts SNAPSHOT_CYPHER), for
 * DeviceLinked's cache hint (never its payload): only where the device's state holds until the commit (created in this
 * transaction, or locked by it), so that a read cache can add it to the customer in place.
 */
export const LINKED_DEVICE = (l: string, d: string): string =>
  `{seq: coalesce(${d}.event_seq, 0), fingerprint: ${d}.fingerprint, ceiling: ${d}.trust_score, ` +
  `earned: coalesce(${l}.trust_score, ${INITIAL_TRUST_SCORE})}`;

/**
 * DeviceLinked's cache hint (graph/events.ts NewEvent.cache) from a LINKED_DEVICE value: `{device}`,
 * or nothing when the query gave none.
 */
export function linkedDevice(value: unknown): { cache?: { device: Record<string, unknown> } } {
  if (value === null || value === undefined) return {};
  const v = toPlain(value) as Record<string, unknown>;
  return { cache: { device: { seq: v.seq, fingerprint: v.fingerprint, ceiling: v.ceiling, earned: v.earned } } };
}

const DEVICE_FIELDS = '.id, .fingerprint, .created_at, .updated_at';
/** The device as one customer sees it: the shared node, and that customer's own login edge `r`. */
const CUSTOMER_DEVICE = `d {${DEVICE_FIELDS}, trust_score: ${TRUST_ON_DEVICE('r', 'd')}, login_count: r.login_count,
  first_login: r.first_login, last_login: r.last_login,
  last_seen_ip: r.last_seen_ip, last_seen_user_agent: r.last_seen_user_agent, disowned_at: r.disowned_at}`;

/**
 * The customer disowns the device: a mark on their own login edge, nothing deleted (the edge, the
 * USED_ON edges of their cards, the device and its trust stay for fraud checks, shared-device
 * signals and ops). Matched from the customer (locked first by the caller; the index hint keeps the
 * planner from seeking the device and expanding its edges instead, test/integration/console-me.test.ts
 * checks the plan), the device filtered among the customer's few edges: never an expansion of a
 * device that 100,000 customers share, and no lock on the device. A mark already there is kept (the
 * first time it was set): idempotent.
 */
export const DISOWN_DEVICE = `
    MATCH (c:Customer {id: $customerId})-[r:LOGGED_IN_FROM]->(d:Device)
    USING INDEX c:Customer(id)
    WHERE d.id = $deviceId
    WITH r, r.disowned_at IS NULL AS fresh
    SET r.disowned_at = coalesce(r.disowned_at, datetime.transaction())
    RETURN fresh, r.disowned_at AS disownedAt`;

const CYPHER = {
  // MERGE on the constrained fingerprint: concurrent logins from one new device make one node.
  // Only a new device's properties are set: a login writes the customer's own edge, never the
  // shared node, so logins of many customers on one device do not queue on its lock (and no
  // customer's IP or user agent lands where the others read). `updated_at` on a device is when
  // the device itself (its trust) last changed. A device still carrying a device-level last-seen
  // (written by a version from before the login edge held it) loses it here, once. A login is the
  // customer using the device: one they had disowned (removeDeviceFromCustomer) is theirs again.
  link: `
    MATCH (c:Customer {id: $customerId})
    MERGE (d:Device {fingerprint: $fingerprint})
    ON CREATE SET d.id = $deviceId, d.trust_score = $ceiling, d.created_at = datetime.transaction(),
                  d.updated_at = datetime.transaction()
    FOREACH (_ IN CASE WHEN d.last_seen_ip IS NOT NULL OR d.last_seen_user_agent IS NOT NULL THEN [1] ELSE [] END |
      REMOVE d.last_seen_ip, d.last_seen_user_agent)
    MERGE (c)-[r:LOGGED_IN_FROM]->(d)
    ON CREATE SET r.login_count = 0, r.first_login = datetime.transaction(), r.trust_score = $trustScore
    SET r.login_count = r.login_count + 1, r.last_login = datetime.transaction(),
        r.last_seen_ip = coalesce($ip, r.last_seen_ip),
        r.last_seen_user_agent = coalesce($userAgent, r.last_seen_user_agent)
    REMOVE r.disowned_at
    // A device made by this transaction: no one else has seen it yet, so its state holds.
    RETURN ${CUSTOMER_DEVICE} AS device, d.id = $deviceId AS newDevice,
      CASE WHEN d.id = $deviceId THEN ${LINKED_DEVICE('r', 'd')} END AS linked`,
  // Bumping updated_at first takes the device's lock, so `from` is read under it. Only the
  // device is touched: however many customers use it, none of them is read or locked here.
  // A step ($delta) moves the score within [0, 1] from where it is under the lock.
  // The device's own trust: what caps every customer on it.
  setTrust: `
    MATCH (d:Device {id: $deviceId})
    SET d.updated_at = datetime.transaction()
    WITH d, d.trust_score AS from
    SET d.trust_score = coalesce($score, round(CASE WHEN from + $delta > 1.0 THEN 1.0
                                                    WHEN from + $delta < 0.0 THEN 0.0
                                                    ELSE from + $delta END, 3))
    // Which fraud outcome set the trust last: an agent may not raise a trust that an outcome ops
    // confirmed on review set (graph/fraud.ts). A score that did not move keeps the outcome named,
    // and so does an agent's change; ops' own change clears it.
    WITH d, from
    SET d.trust_set_by_outcome = CASE
      WHEN d.trust_score = from AND d.trust_set_by_outcome IS NOT NULL THEN d.trust_set_by_outcome
      WHEN $outcomeId IS NOT NULL THEN $outcomeId
      WHEN $byOps THEN null
      ELSE d.trust_set_by_outcome END
    // Ops decided about the device (their own change, or a review they confirmed): from then on only
    // ops raise its trust (graph/fraud.ts).
    SET d.trust_held_by_ops = CASE WHEN $byOps THEN true ELSE d.trust_held_by_ops END
    RETURN from, d.trust_score AS to`,
  // What the customer earned on the device (their own edge), moved by a step within [0, 1]. Run
  // under the customer's lock: the edge is theirs alone, and the device is neither read nor locked.
  earnTrust: `
    MATCH (c:Customer {id: $customerId})-[r:LOGGED_IN_FROM]->(d:Device)
    USING INDEX c:Customer(id)
    WHERE d.id = $deviceId
    WITH r, coalesce(r.trust_score, $initial) AS from
    SET r.trust_score = coalesce($score, round(CASE WHEN from + $delta > 1.0 THEN 1.0
                                                    WHEN from + $delta < 0.0 THEN 0.0 ELSE from + $delta END, 3))
    RETURN from, r.trust_score AS to`,
  disown: DISOWN_DEVICE,
  // Devices the customer disowned only with $includeDisowned.
  listForCustomer: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[r:LOGGED_IN_FROM]->(d:Device)
    WHERE $includeDisowned OR r.disowned_at IS NULL
    WITH c, r, d ORDER BY r.last_login DESC
    RETURN c.id AS customerId, collect(${CUSTOMER_DEVICE}) AS devices`,
} as const;

/**
 * Records a login of the customer from a device inside the caller's transaction: creates the
 * device on first sight (capping no one), starts the customer's trust on it (the given score, or
 * INITIAL_TRUST_SCORE) when they first log in from it, records on the customer's own
 * login edge what this login showed (IP, user agent), counts the login, emits DeviceLinked. An
 * existing device is never written here (neither its trust score nor anything else). A device the
 * customer had disowned (removeDeviceFromCustomer) is theirs again: the login clears `disowned_at`.
 */
export async function linkDeviceTx(
  tx: ManagedTransaction,
  customerId: string,
  d: z.output<typeof deviceInput>,
): Promise<CustomerDevice> {
  const res = await tx.run(CYPHER.link, {
    customerId,
    deviceId: randomUUID(),
    fingerprint: d.fingerprint,
    trustScore: d.trust_score ?? INITIAL_TRUST_SCORE,
    ceiling: DEVICE_TRUST_CEILING,
    ip: d.ip ?? null,
    userAgent: d.user_agent ?? null,
  });
  const record = res.records[0];
  if (!record) throw new NotFoundError('Customer', customerId);
  const device = toPlain(record.get('device')) as unknown as CustomerDevice;
  await appendEvent(
    tx,
    'DeviceLinked',
    customerId,
    {
      device_id: device.id,
      new_device: record.get('newDevice') as boolean,
      login_count: device.login_count,
    },
    linkedDevice(record.get('linked')),
  );
  return device;
}

/** Records a login of the customer from a device (see linkDeviceTx). */
export async function linkDevice(g: Graph, customerId: string, input: DeviceInput): Promise<CustomerDevice> {
  const d = parseInput(deviceInput, input, 'device');
  return writeTx(g, async (tx) => {
    // The customer's lock before the device's (the lock order, graph/graph.ts).
    await lockCustomersTx(tx, [customerId]);
    return linkDeviceTx(tx, customerId, d);
  });
}

/**
 * Sets a device's trust score (`score`) or moves it by a bounded step (`delta`) inside the
 * caller's transaction, with ONE device-level DeviceTrustScoreUpdated event (`{device_id, from,
 * to, reason}`, no customer) when it changed: every customer on the device sees it in its
 * history through the device (graph/events.ts listCustomerEvents, graph/feed.ts), so a change
 * costs the same on a device shared by 100,000 customers as on a customer's own phone, and locks
 * only the device.
 *
 * Every customer on the device reads the event, and it is published in clear (a device's, of no
 * customer, beyond any erasure's reach), so it says nothing of the customer whose action caused it
 * and no caller's words: its `reason` is a code (DEVICE_TRUST_REASONS) — "fraud signal" for a
 * fraud outcome (`extra.fraud_outcome_id`; the outcome, its id and its reason stay in that
 * customer's own FraudOutcomeApplied/FraudOutcomeReversed event), else who set it. A caller's own
 * `reason` (PUT /devices/{id}/trust-score) is not kept.
 */
export async function setDeviceTrustTx(
  tx: ManagedTransaction,
  deviceId: string,
  change: { score: number } | { delta: number },
  options: { reason?: string | undefined; extra?: Record<string, unknown>; byOps?: boolean } = {},
): Promise<{ from: number; to: number }> {
  const params = 'score' in change ? { score: change.score, delta: null } : { score: null, delta: change.delta };
  const outcomeId = options.extra?.fraud_outcome_id;
  const record = (
    await tx.run(CYPHER.setTrust, {
      deviceId,
      ...params,
      outcomeId: typeof outcomeId === 'string' ? outcomeId : null,
      byOps: options.byOps ?? false,
    })
  ).records[0];
  if (!record) throw new NotFoundError('Device', deviceId);
  const from = record.get('from') as number;
  const to = record.get('to') as number;
  if (from !== to) {
    const forFraud = options.extra?.fraud_outcome_id !== undefined;
    const reason: DeviceTrustReason = forFraud ? FRAUD_SIGNAL_REASON : options.byOps ? 'set by ops' : 'set by an agent';
    await appendDeviceEvent(tx, 'DeviceTrustScoreUpdated', deviceId, { device_id: deviceId, from, to, reason });
  }
  return { from, to };
}

/**
 * Sets (`score`) or moves by a bounded step (`delta`) what the customer earned on a device (their
 * own login edge), inside the caller's transaction, which holds the customer's lock: a passed
 * challenge is this customer's, never the fingerprint's, and a suspending outcome zeroes it. One
 * DeviceTrustEarned event on the customer (`{device_id, from, to, reason}`) when it moved.
 * NotFoundError when the customer never logged in from the device.
 */
export async function earnDeviceTrustTx(
  tx: ManagedTransaction,
  customerId: string,
  deviceId: string,
  change: { score: number } | { delta: number },
  options: { reason?: string | undefined; extra?: Record<string, unknown> } = {},
): Promise<{ from: number; to: number }> {
  const params = 'score' in change ? { score: change.score, delta: null } : { score: null, delta: change.delta };
  const record = (await tx.run(CYPHER.earnTrust, { customerId, deviceId, ...params, initial: INITIAL_TRUST_SCORE }))
    .records[0];
  if (!record) throw new NotFoundError('Device', deviceId);
  const from = record.get('from') as number;
  const to = record.get('to') as number;
  if (from !== to) {
    const forFraud = options.extra?.fraud_outcome_id !== undefined;
    await appendEvent(tx, 'DeviceTrustEarned', customerId, {
      device_id: deviceId,
      from,
      to,
      reason: forFraud ? FRAUD_SIGNAL_REASON : (options.reason ?? null),
    });
  }
  return { from, to };
}

/**
 * The customer's devices with login counts, most recent login first. A device the customer disowned
 * (removeDeviceFromCustomer) is left out unless `includeDisowned` (each says when: `disowned_at`).
 */
export async function getDevicesByCustomer(
  g: Graph,
  customerId: string,
  options: { includeDisowned?: boolean } = {},
): Promise<CustomerDevice[]> {
  return readCustomerList<CustomerDevice>(g, CYPHER.listForCustomer, customerId, 'devices', {
    includeDisowned: options.includeDisowned ?? false,
  });
}

/**
 * The customer says a device is not theirs any more: the device is DISOWNED, never deleted. Their
 * login edge to it is marked `disowned_at`, in one transaction under the customer's lock (checked to
 * be in `allowStatuses`, never erased or merged), with DeviceRemovedByCustomer `{device_id}`.
 *
 * Everything else stays — the edge with what their logins showed, the USED_ON edges of their cards
 * to the device, the device with its trust score — because someone holding a taken-over session
 * could otherwise remove the device before the fraud report about it arrives: a fraud outcome
 * naming the device is still accepted and applied (graph/fraud.ts), the device keeps its trust (0
 * after fraud, never a fresh 0.5), and shared-device signals, possible matches and ops' pages and
 * search still see it. What changes is what the customer's own reads show: their page no longer
 * lists it, and their context (graph/context.ts) no longer counts it among their trusted devices.
 * A later login of theirs from it (linkDeviceTx, a reported login) makes it theirs again.
 *
 * The event says nothing of whether others use the device. Removing a device already disowned
 * changes nothing and appends no event (`recorded: false`, `disowned_at` the first time).
 * NotFoundError when the device is not one the customer ever logged in from.
 */
export async function removeDeviceFromCustomer(
  g: Graph,
  customerId: string,
  deviceId: string,
  options: { allowStatuses?: readonly CustomerStatus[] } = {},
): Promise<{ device_id: string; disowned_at: string; recorded: boolean }> {
  return writeTx(g, async (tx) => {
    await lockCustomerForChangeTx(tx, customerId, options.allowStatuses ?? ['active', 'suspended'], 'its devices');
    const disowned = (await tx.run(CYPHER.disown, { customerId, deviceId })).records[0];
    if (!disowned) throw new NotFoundError('Device', deviceId);
    const recorded = disowned.get('fresh') as boolean;
    if (recorded) await appendEvent(tx, 'DeviceRemovedByCustomer', customerId, { device_id: deviceId });
    return { device_id: deviceId, disowned_at: toPlain(disowned.get('disownedAt')) as string, recorded };
  });
}
