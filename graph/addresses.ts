/** Addresses a customer ships to or is billed at (SHIPPED_TO edges). */
import { randomUUID } from 'node:crypto';
import { toPlain } from './convert';
import { NotFoundError } from './errors';
import { appendEvent } from './events';
import { readCustomerList, writeTx, type Graph } from './graph';
import { addressInput, parseInput, type Address, type AddressInput } from './model';

const ADDRESS = 'a {.id, .street1, .street2, .city, .state, .zip_code, .country, .type, .is_default, .created_at, .updated_at}';

const CYPHER = {
  add: `
    MATCH (c:Customer {id: $customerId})
    SET c.updated_at = datetime.transaction()
    WITH c
    OPTIONAL MATCH (c)-[:SHIPPED_TO]->(other:Address {type: $address.type, is_default: true})
    WITH c, collect(other) AS others
    FOREACH (o IN CASE WHEN $address.is_default THEN others ELSE [] END | SET o.is_default = false)
    CREATE (a:Address)
    SET a = $address, a.created_at = datetime.transaction(), a.updated_at = datetime.transaction()
    CREATE (c)-[:SHIPPED_TO]->(a)
    RETURN ${ADDRESS} AS address`,
  listForCustomer: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[:SHIPPED_TO]->(a:Address)
    WITH c, a ORDER BY a.is_default DESC, a.created_at DESC
    RETURN c.id AS customerId, collect(${ADDRESS}) AS addresses`,
} as const;

/** Adds an address; a new default address replaces the previous default of the same type. */
export async function addAddress(g: Graph, customerId: string, input: AddressInput): Promise<Address> {
  const a = parseInput(addressInput, input, 'address');
  const address = { ...a, id: a.id ?? randomUUID(), street2: a.street2 ?? null, state: a.state ?? null };
  return writeTx(g, async (tx) => {
    const res = await tx.run(CYPHER.add, { customerId, address });
    const record = res.records[0];
    if (!record) throw new NotFoundError('Customer', customerId);
    const saved = toPlain(record.get('address')) as unknown as Address;
    await appendEvent(tx, 'AddressAdded', customerId, {
      address_id: saved.id,
      type: saved.type,
      country: saved.country,
      is_default: saved.is_default,
    });
    return saved;
  });
}

export async function getAddressesByCustomer(g: Graph, customerId: string): Promise<Address[]> {
  return readCustomerList<Address>(g, CYPHER.listForCustomer, customerId, 'addresses');
}
