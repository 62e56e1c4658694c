/**
 * Devices a customer logs in from. A device is one node per fingerprint, shared by every
 * customer seen on it (a family tablet); each customer's LOGGED_IN_FROM edge counts logins and
 * holds what that customer's logins showed (IP address, user agent): facts of one customer,
 * never on the node that the others on the device read too.
 */
import { randomUUID } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { z } from 'zod';
import { toPlain } from './convert';
import { lockCustomerForChangeTx, lockCustomersTx } from './customers';
import { NotFoundError } from './errors';
import { appendDeviceEvent, appendEvent, FRAUD_SIGNAL_REASON } from './events';
import { lockNode, readCustomerList, writeTx, type Graph } from './graph';
import { deviceInput, parseInput, type CustomerDevice, type CustomerStatus, type DeviceInput } from './model';

/** Trust a device starts with before any fraud signal: below the trusted threshold. */
export const INITIAL_TRUST_SCORE = 0.5;

const DEVICE_FIELDS = '.id, .fingerprint, .trust_score, .created_at, .updated_at';
/** The device as one customer sees it: the shared node, and that customer's own login edge `r`. */
const CUSTOMER_DEVICE = `d {${DEVICE_FIELDS}, login_count: r.login_count,
  first_login: r.first_login, last_login: r.last_login,
  last_seen_ip: r.last_seen_ip, last_seen_user_agent: r.last_seen_user_agent}`;

const CYPHER = {
  // MERGE on the constrained fingerprint: concurrent logins from one new device make one node.
  // Only a new device's properties are set: a login writes the customer's own edge, never the
  // shared node, so logins of many customers on one device do not queue on its lock (and no
  // customer's IP or user agent lands where the others read). `updated_at` on a device is when
  // the device itself (its trust) last changed. A device still carrying a device-level last-seen
  // (written by a version from before the login edge held it) loses it here, once.
  link: `
    MATCH (c:Customer {id: $customerId})
    MERGE (d:Device {fingerprint: $fingerprint})
    ON CREATE SET d.id = $deviceId, d.trust_score = $trustScore, d.created_at = datetime.transaction(),
                  d.updated_at = datetime.transaction()
    FOREACH (_ IN CASE WHEN d.last_seen_ip IS NOT NULL OR d.last_seen_user_agent IS NOT NULL THEN [1] ELSE [] END |
      REMOVE d.last_seen_ip, d.last_seen_user_agent)
    MERGE (c)-[r:LOGGED_IN_FROM]->(d)
    ON CREATE SET r.login_count = 0, r.first_login = datetime.transaction()
    SET r.login_count = r.login_count + 1, r.last_login = datetime.transaction(),
        r.last_seen_ip = coalesce($ip, r.last_seen_ip),
        r.last_seen_user_agent = coalesce($userAgent, r.last_seen_user_agent)
    RETURN ${CUSTOMER_DEVICE} AS device, d.id = $deviceId AS newDevice`,
  // Bumping updated_at first takes the device's lock, so `from` is read under it. Only the
  // device is touched: however many customers use it, none of them is read or locked here.
  // A step ($delta) moves the score within [0, 1] from where it is under the lock.
  setTrust: `
    MATCH (d:Device {id: $deviceId})
    SET d.updated_at = datetime.transaction()
    WITH d, d.trust_score AS from
    SET d.trust_score = coalesce($score, round(CASE WHEN from + $delta > 1.0 THEN 1.0
                                                    WHEN from + $delta < 0.0 THEN 0.0
                                                    ELSE from + $delta END, 3))
    RETURN from, d.trust_score AS to`,
  // Only this customer's edges go: its login edge (with what its logins showed), and the uses of
  // its own payment methods on the device. The device is locked before anything is deleted, so no
  // other writer links it in between.
  unlink: `
    MATCH (c:Customer {id: $customerId})-[r:LOGGED_IN_FROM]->(d:Device {id: $deviceId})
    ${lockNode('d')}
    DELETE r
    WITH c, d
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(:PaymentMethod)-[u:USED_ON]->(d)
    WITH d, collect(u) AS uses
    FOREACH (x IN uses | DELETE x)
    RETURN d.id AS id, size(uses) AS uses`,
  // A device nothing links any more — no other customer's login, no payment method used on it,
  // no merge's record of a login — is deleted (its fingerprint with it); any edge keeps it.
  deleteIfUnlinked: `
    MATCH (d:Device {id: $deviceId})
    WHERE NOT EXISTS { (d)--() }
    DELETE d
    RETURN count(d) AS deleted`,
  listForCustomer: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[r:LOGGED_IN_FROM]->(d:Device)
    WITH c, r, d ORDER BY r.last_login DESC
    RETURN c.id AS customerId, collect(${CUSTOMER_DEVICE}) AS devices`,
} as const;

/**
 * Records a login of the customer from a device inside the caller's transaction: creates the
 * device on first sight (with the given or initial trust score), records on the customer's own
 * login edge what this login showed (IP, user agent), counts the login, emits DeviceLinked. An
 * existing device is never written here (neither its trust score nor anything else).
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
    ip: d.ip ?? null,
    userAgent: d.user_agent ?? null,
  });
  const record = res.records[0];
  if (!record) throw new NotFoundError('Customer', customerId);
  const device = toPlain(record.get('device')) as unknown as CustomerDevice;
  await appendEvent(tx, 'DeviceLinked', customerId, {
    device_id: device.id,
    new_device: record.get('newDevice') as boolean,
    login_count: device.login_count,
  });
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
 * Every customer on the device reads the event, so it says nothing of the customer whose action
 * caused it: a change made for a fraud outcome (`extra.fraud_outcome_id`) says only
 * "fraud signal" — the outcome, its id and its reason stay in that customer's own
 * FraudOutcomeApplied/FraudOutcomeReversed event. Other callers' `reason` (a device-level call
 * such as PUT /devices/{id}/trust-score) is kept as given.
 */
export async function setDeviceTrustTx(
  tx: ManagedTransaction,
  deviceId: string,
  change: { score: number } | { delta: number },
  options: { reason?: string | undefined; extra?: Record<string, unknown> } = {},
): Promise<{ from: number; to: number }> {
  const params = 'score' in change ? { score: change.score, delta: null } : { score: null, delta: change.delta };
  const record = (await tx.run(CYPHER.setTrust, { deviceId, ...params })).records[0];
  if (!record) throw new NotFoundError('Device', deviceId);
  const from = record.get('from') as number;
  const to = record.get('to') as number;
  if (from !== to) {
    const forFraud = options.extra?.fraud_outcome_id !== undefined;
    await appendDeviceEvent(tx, 'DeviceTrustScoreUpdated', deviceId, {
      device_id: deviceId,
      from,
      to,
      reason: forFraud ? FRAUD_SIGNAL_REASON : (options.reason ?? null),
    });
  }
  return { from, to };
}

/**
 * Sets a device's trust score (0.0–1.0), with one device-level DeviceTrustScoreUpdated event
 * carrying the old and new score and the reason (shown to every customer on the device).
 * Setting the same score emits nothing.
 */
export async function updateDeviceTrustScore(
  g: Graph,
  deviceId: string,
  score: number,
  options: { reason?: string | undefined } = {},
): Promise<{ device_id: string; trust_score: number; previous_trust_score: number }> {
  const to = parseInput(z.number().min(0).max(1), score, 'trust_score');
  return writeTx(g, async (tx) => {
    const { from } = await setDeviceTrustTx(tx, deviceId, { score: to }, options);
    return { device_id: deviceId, trust_score: to, previous_trust_score: from };
  });
}

/** The customer's devices with login counts, most recent login first. */
export async function getDevicesByCustomer(g: Graph, customerId: string): Promise<CustomerDevice[]> {
  return readCustomerList<CustomerDevice>(g, CYPHER.listForCustomer, customerId, 'devices');
}

/**
 * The customer says a device is not theirs any more: their login edge to it goes, and the uses of
 * their own payment methods on it (a card of theirs is no longer preferred for having been used on
 * a device they disown), in one transaction under the customer's lock (checked to be in
 * `allowStatuses`, never erased or merged), with DeviceRemovedByCustomer `{device_id,
 * payment_method_uses_removed, device_deleted}`. Never another customer's edge: a device other
 * customers use stays as it is for them; a device nothing links any more is deleted (its
 * fingerprint with it). NotFoundError when the device is not one the customer logged in from.
 */
export async function removeDeviceFromCustomer(
  g: Graph,
  customerId: string,
  deviceId: string,
  options: { allowStatuses?: readonly CustomerStatus[] } = {},
): Promise<{ device_id: string; payment_method_uses_removed: number; device_deleted: boolean }> {
  return writeTx(g, async (tx) => {
    await lockCustomerForChangeTx(tx, customerId, options.allowStatuses ?? ['active', 'suspended'], 'its devices');
    const unlinked = (await tx.run(CYPHER.unlink, { customerId, deviceId })).records[0];
    if (!unlinked) throw new NotFoundError('Device', deviceId);
    const deleted = (await tx.run(CYPHER.deleteIfUnlinked, { deviceId })).records[0];
    const result = {
      device_id: deviceId,
      payment_method_uses_removed: toPlain(unlinked.get('uses')) as number,
      device_deleted: toPlain(deleted?.get('deleted')) === 1,
    };
    await appendEvent(tx, 'DeviceRemovedByCustomer', customerId, result);
    return result;
  });
}
