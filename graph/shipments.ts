/**
 * A batch's shipments (graph/interactions.ts), and a payment's shipping address: an address the
 * customer has is matched (as onboarding matches a returning customer's), a new one added once,
 * with AddressAdded.
 */
import { randomUUID } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { addressMatchKey } from './addresses';
import type { NewEvent } from './events';
import { newAddressRow, shipmentsOf, shipRowsOf } from './interactionRows';
import type { Interaction } from './interactionModel';

const CYPHER = {
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

/** The batch's shipments written, and an AddressAdded for each address added. */
export async function applyShipments(tx: ManagedTransaction, recorded: Interaction[]): Promise<NewEvent[]> {
  const events: NewEvent[] = [];
  const ships = shipmentsOf(recorded);
  if (ships.length === 0) return events;
  const rows = shipRowsOf(ships);
  const known = new Map<string, string>();
  for (const r of (await tx.run(CYPHER.knownAddresses, { rows })).records) {
    const key = r.get('key') as string;
    if (!known.has(key)) known.set(key, r.get('addressId') as string);
  }
  const toKnown = rows.filter((r) => known.has(r.key)).map((r) => ({ ...r, addressId: known.get(r.key) }));
  if (toKnown.length > 0) await tx.run(CYPHER.shipToKnown, { rows: toKnown });
  const toNew = rows.filter((r) => !known.has(r.key)).map((r) => newAddressRow(r, randomUUID()));
  if (toNew.length > 0) {
    await tx.run(CYPHER.shipToNew, { rows: toNew });
    for (const r of toNew)
      events.push({
        type: 'AddressAdded',
        customerId: r.customerId,
        payload: { address_id: r.addressId, type: r.address.type, country: r.address.country, is_default: false },
      });
  }
  return events;
}
