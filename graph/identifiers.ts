/**
 * Digital identifiers (email, phone number): normalised before they are stored or matched, and
 * unique per (type, value) across the whole graph.
 */
import { randomUUID } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { toPlain } from './convert';
import { NotFoundError } from './errors';
import { appendEvent } from './events';
import type { CountryCode } from 'libphonenumber-js';
import { lockNode, readCustomerList, writeTx, type Graph } from './graph';
import { normaliseIdentifier } from './identity';
import {
  digitalIdentifierInput,
  parseInput,
  type DigitalIdentifier,
  type DigitalIdentifierInput,
  type IdentifierType,
} from './model';

const IDENTIFIER_PROJECTION = 'd {.id, .type, .value, .is_verified, .created_at, .updated_at}';

const CYPHER = {
  // CREATE, not MERGE: the (type, value) uniqueness constraint is the arbiter when two
  // writers claim the same identifier at once; the loser's whole transaction rolls back.
  // The customer's lock before the new identifiers' (the lock order, graph/graph.ts).
  attach: `
    MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    UNWIND $identifiers AS ident
    CREATE (d:DigitalIdentifier {
      id: ident.id, type: ident.type, value: ident.value, is_verified: ident.is_verified,
      created_at: datetime.transaction(), updated_at: datetime.transaction()
    })
    CREATE (c)-[:HAS_DIGITAL_IDENTIFIER]->(d)
    RETURN count(d) AS attached`,
  listForCustomer: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[:HAS_DIGITAL_IDENTIFIER]->(d:DigitalIdentifier)
    WITH c, d ORDER BY d.type, d.value
    RETURN c.id AS customerId, collect(${IDENTIFIER_PROJECTION}) AS identifiers`,
} as const;

/** Attaches identifiers to a customer inside the caller's transaction, each with its event. */
export async function attachIdentifiers(
  tx: ManagedTransaction,
  customerId: string,
  identifiers: { id?: string | undefined; type: IdentifierType; value: string; is_verified: boolean }[],
  region: CountryCode,
): Promise<number> {
  if (identifiers.length === 0) return 0;
  const rows = identifiers.map((i, n) => ({
    ...i,
    id: i.id ?? randomUUID(),
    value: normaliseIdentifier(i.type, i.value, region, `digital_identifiers.${n}.value`),
  }));
  const res = await tx.run(CYPHER.attach, { customerId, identifiers: rows });
  const attached = toPlain(res.records[0]?.get('attached')) as number;
  if (attached === 0) throw new NotFoundError('Customer', customerId);
  for (const row of rows) {
    await appendEvent(tx, 'DigitalIdentifierAdded', customerId, {
      digital_identifier_id: row.id,
      type: row.type,
      is_verified: row.is_verified,
    });
  }
  return attached;
}

/** Adds one identifier to an existing customer; a taken identifier is a ConflictError. */
export async function addDigitalIdentifier(g: Graph, customerId: string, input: DigitalIdentifierInput): Promise<void> {
  const ident = parseInput(digitalIdentifierInput, input, 'digital_identifier');
  await writeTx(g, (tx) => attachIdentifiers(tx, customerId, [ident], g.policy.defaultPhoneRegion));
}

export async function getDigitalIdentifiersByCustomer(g: Graph, customerId: string): Promise<DigitalIdentifier[]> {
  return readCustomerList<DigitalIdentifier>(g, CYPHER.listForCustomer, customerId, 'identifiers');
}
