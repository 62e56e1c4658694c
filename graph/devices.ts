/**
 * Devices a customer logs in from. A device is one node per fingerprint, shared by every
 * customer seen on it (a family tablet); each customer's LOGGED_IN_FROM edge counts logins.
 */
import { randomUUID } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { z } from 'zod';
import { toPlain } from './convert';
import { lockCustomersTx } from './customers';
import { NotFoundError } from './errors';
import { appendEvent } from './events';
import { readCustomerList, writeTx, type Graph } from './graph';
import { deviceInput, parseInput, type CustomerDevice, type DeviceInput } from './model';

/** Trust a device starts with before any fraud signal: below the trusted threshold. */
export const INITIAL_TRUST_SCORE = 0.5;

const DEVICE_FIELDS = '.id, .fingerprint, .trust_score, .last_seen_ip, .last_seen_user_agent, .created_at, .updated_at';
const CUSTOMER_DEVICE = `d {${DEVICE_FIELDS}, login_count: r.login_count,
  first_login: r.first_login, last_login: r.last_login}`;

const CYPHER = {
  // MERGE on the constrained fingerprint: concurrent logins from one new device make one node.
  link: `
    MATCH (c:Customer {id: $customerId})
    MERGE (d:Device {fingerprint: $fingerprint})
    ON CREATE SET d.id = $deviceId, d.trust_score = $trustScore, d.created_at = datetime.transaction()
    SET d.updated_at = datetime.transaction(),
        d.last_seen_ip = coalesce($ip, d.last_seen_ip),
        d.last_seen_user_agent = coalesce($userAgent, d.last_seen_user_agent)
    MERGE (c)-[r:LOGGED_IN_FROM]->(d)
    ON CREATE SET r.login_count = 0, r.first_login = datetime.transaction()
    SET r.login_count = r.login_count + 1, r.last_login = datetime.transaction()
    RETURN ${CUSTOMER_DEVICE} AS device, d.id = $deviceId AS newDevice`,
  // Bumping updated_at first takes the device's lock, so `from` is read under it. One event per
  // customer seen on the device: each customer's history shows the change.
  // A step ($delta) moves the score within [0, 1] from where it is under the lock.
  setTrust: `
    MATCH (d:Device {id: $deviceId})
    SET d.updated_at = datetime.transaction()
    WITH d, d.trust_score AS from
    SET d.trust_score = coalesce($score, round(CASE WHEN from + $delta > 1.0 THEN 1.0
                                                    WHEN from + $delta < 0.0 THEN 0.0
                                                    ELSE from + $delta END, 3))
    WITH d, from
    OPTIONAL MATCH (c:Customer)-[:LOGGED_IN_FROM]->(d)
    RETURN from, d.trust_score AS to, collect(c.id) AS customerIds`,
  listForCustomer: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[r:LOGGED_IN_FROM]->(d:Device)
    WITH c, r, d ORDER BY r.last_login DESC
    RETURN c.id AS customerId, collect(${CUSTOMER_DEVICE}) AS devices`,
} as const;

/**
 * Records a login of the customer from a device inside the caller's transaction: creates the
 * device on first sight (with the given or initial trust score), updates what was last seen,
 * counts the login, emits DeviceLinked. An existing device's trust score is never changed here.
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
 * caller's transaction, with a DeviceTrustScoreUpdated event (`{device_id, from, to, reason,
 * ...extra}`) for each customer seen on the device when it changed.
 */
export async function setDeviceTrustTx(
  tx: ManagedTransaction,
  deviceId: string,
  change: { score: number } | { delta: number },
  options: { reason?: string | undefined; extra?: Record<string, unknown> } = {},
): Promise<{ from: number; to: number; customerIds: string[] }> {
  const params = 'score' in change ? { score: change.score, delta: null } : { score: null, delta: change.delta };
  const record = (await tx.run(CYPHER.setTrust, { deviceId, ...params })).records[0];
  if (!record) throw new NotFoundError('Device', deviceId);
  const from = record.get('from') as number;
  const to = record.get('to') as number;
  const customerIds = record.get('customerIds') as string[];
  if (from !== to) {
    for (const customerId of customerIds) {
      await appendEvent(tx, 'DeviceTrustScoreUpdated', customerId, {
        device_id: deviceId,
        from,
        to,
        reason: options.reason ?? null,
        ...options.extra,
      });
    }
  }
  return { from, to, customerIds };
}

/**
 * Sets a device's trust score (0.0–1.0), with a DeviceTrustScoreUpdated event for each customer
 * seen on the device carrying the old and new score and the reason. Setting the same score
 * emits nothing.
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
