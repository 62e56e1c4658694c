/**
 * A device shared by many customers (a public terminal, a family tablet at scale), for the
 * shared-device test and bench: customers and their LOGGED_IN_FROM edges written straight into
 * the graph in batched UNWINDs, each with a unique id, and removed again afterwards. Only what
 * the reads under test look at is seeded (no events, identifiers or cards).
 */
import { randomUUID } from 'node:crypto';
import type { Driver } from 'neo4j-driver';

const CYPHER = {
  seed: `
    MATCH (d:Device {id: $deviceId})
    UNWIND $ids AS id
    CREATE (c:Customer {id: id, status: 'active', segment: 'New', ltv: 0,
                        created_at: datetime.transaction(), updated_at: datetime.transaction()})
    CREATE (c)-[:LOGGED_IN_FROM {login_count: 1, first_login: datetime.transaction(),
                                 last_login: datetime.transaction()}]->(d)`,
  removeCustomers: `
    UNWIND $ids AS id
    MATCH (c:Customer {id: id})
    DETACH DELETE c`,
  removeDeviceEvents: `
    MATCH (e:Event {device_id: $deviceId})
    DETACH DELETE e`,
} as const;

export interface SeedTarget {
  driver: Driver;
  database: string;
}

/** Links `count` new customers to the device, `batch` per transaction; returns their ids. */
export async function seedDeviceCustomers(
  g: SeedTarget,
  deviceId: string,
  count: number,
  batch = 5_000,
): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  for (let i = 0; i < ids.length; i += batch) {
    await g.driver.executeQuery(CYPHER.seed, { deviceId, ids: ids.slice(i, i + batch) }, { database: g.database });
  }
  return ids;
}

/** Removes what seedDeviceCustomers made, and the device-level events of the device. */
export async function removeDeviceCustomers(
  g: SeedTarget,
  deviceId: string,
  ids: string[],
  batch = 5_000,
): Promise<void> {
  for (let i = 0; i < ids.length; i += batch) {
    await g.driver.executeQuery(CYPHER.removeCustomers, { ids: ids.slice(i, i + batch) }, { database: g.database });
  }
  await g.driver.executeQuery(CYPHER.removeDeviceEvents, { deviceId }, { database: g.database });
}
