/**
 * A batch's devices (graph/interactions.ts): logins, and the device a payment was attempted on.
 * Devices are created on first sight; the ones this batch gives a new edge are locked, in id order,
 * before any edge is written; then the logins' and the methods' use edges. Events: DeviceLinked,
 * PaymentMethodUsedOnDevice.
 */
import { randomUUID } from 'node:crypto';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { DEVICE_TRUST_CEILING, INITIAL_TRUST_SCORE, LINKED_DEVICE, linkedDevice } from './devices';
import type { NewEvent } from './events';
import { lockNode } from './graph';
import { fingerprintsOf, loginRowsOf, sightingsOf, usedOnRowsOf } from './interactionRows';
import type { Interaction } from './interactionModel';

const CYPHER = {
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
} as const;

/** The devices seen, by fingerprint: each one's id, and whether this batch created it. */
type DeviceIds = Map<string, { id: string; created: boolean }>;

/** Whether the device `deviceId` is one this batch created. */
const isNew = (deviceIds: DeviceIds, deviceId: string): boolean =>
  [...deviceIds.values()].some((d) => d.id === deviceId && d.created);

/** Devices created on first sight: each fingerprint's device. */
async function mergeDevices(tx: ManagedTransaction, fingerprints: string[]): Promise<DeviceIds> {
  const deviceIds: DeviceIds = new Map();
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
  return deviceIds;
}

/**
 * The devices of the batch's logins and payments, their edges and the events of what they
 * changed (DeviceLinked, then PaymentMethodUsedOnDevice). `claim` tells an edge this batch created.
 */
export async function applyDevices(
  tx: ManagedTransaction,
  recorded: Interaction[],
  claim: string,
): Promise<NewEvent[]> {
  const events: NewEvent[] = [];
  const seen = sightingsOf(recorded);
  const deviceIds = await mergeDevices(tx, fingerprintsOf(seen));
  const deviceIdOf = (fingerprint: string) => (deviceIds.get(fingerprint) as { id: string; created: boolean }).id;
  const loginRows = loginRowsOf(seen, deviceIdOf).map((r) => ({ ...r, count: neo4j.int(r.count) }));
  const usedOnRows = usedOnRowsOf(seen, deviceIdOf).map((r) => ({ ...r, count: neo4j.int(r.count) }));
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
            new_device: isNew(deviceIds, deviceId),
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
            new_device: isNew(deviceIds, deviceId),
          },
        });
      }
  }
  return events;
}
