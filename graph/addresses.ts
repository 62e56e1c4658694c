/** Addresses a customer ships to or is billed at (SHIPPED_TO edges). */
import { randomUUID } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import type { z } from 'zod';
import { toPlain } from './convert';
import { lockCustomerForChangeTx } from './customers';
import { NotFoundError } from './errors';
import { appendEvent } from './events';
import { lockNode, readCustomerList, writeTx, type Graph } from './graph';
import { addressInput, parseInput, type Address, type AddressInput, type CustomerStatus } from './model';

const ADDRESS =
  'a {.id, .street1, .street2, .city, .state, .zip_code, .country, .type, .is_default, .created_at, .updated_at}';

/** Words an address is written with in full or short: matched as the short form. */
const STREET_WORDS: Record<string, string> = {
  street: 'st',
  avenue: 'ave',
  road: 'rd',
  boulevard: 'blvd',
  drive: 'dr',
  lane: 'ln',
  place: 'pl',
  court: 'ct',
  square: 'sq',
  apartment: 'apt',
  suite: 'ste',
  floor: 'fl',
};

/** Cypher: a street line lower-cased, `. , # - /` and tabs made spaces, runs of spaces one, words shortened. */
function streetLine(value: string): string {
  let text = `toLower(trim(coalesce(${value}, '')))`;
  for (const c of ['.', ',', '#', '-', '/', '\\t']) text = `replace(${text}, '${c}', ' ')`;
  const words = Object.entries(STREET_WORDS)
    .map(([long, short]) => `WHEN '${long}' THEN '${short}'`)
    .join(' ');
  return (
    `reduce(mkLine = '', mkWord IN [mkWord IN split(${text}, ' ') WHERE mkWord <> '' | ` +
    `CASE mkWord ${words} ELSE mkWord END] | CASE WHEN mkLine = '' THEN mkWord ELSE mkLine + ' ' + mkWord END)`
  );
}

/**
 * Cypher: the key two addresses match by when they are the same place however they were typed
 * (graph/matchEvidence.ts): street lines normalised (`10 Downing Street.` = `10 downing st`), the
 * postcode lower-cased without spaces or dashes (`SW1A 2AA` = `sw1a2aa`), the country; city and
 * state are left out (the postcode says as much, spelled one way). Every writer of an Address sets
 * it as `match_key` (indexed), and a data migration set it on the addresses written before.
 */
export function addressMatchKey(a: string): string {
  const zip = `replace(replace(toLower(coalesce(${a}.zip_code, '')), ' ', ''), '-', '')`;
  return (
    `${streetLine(`${a}.street1`)} + '|' + ${streetLine(`${a}.street2`)} + '|' + ${zip} + '|' + ` +
    `toUpper(trim(coalesce(${a}.country, '')))`
  );
}

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
    SET a.match_key = ${addressMatchKey('a')}
    CREATE (c)-[s:SHIPPED_TO]->(a)
    SET s.first_shipped = CASE WHEN $used THEN datetime.transaction() END,
        s.last_shipped = CASE WHEN $used THEN datetime.transaction() END
    RETURN ${ADDRESS} AS address`,
  // Only this customer's edge goes; the address is locked first, so no other writer links it in between.
  unlink: `
    MATCH (:Customer {id: $customerId})-[r:SHIPPED_TO]->(a:Address {id: $addressId})
    ${lockNode('a')}
    DELETE r
    RETURN a.id AS id`,
  // An address nothing links any more (no other customer ships to it, no merge's record) is deleted.
  deleteIfUnlinked: `
    MATCH (a:Address {id: $addressId})
    WHERE NOT EXISTS { (a)--() }
    DELETE a
    RETURN count(a) AS deleted`,
  listForCustomer: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[:SHIPPED_TO]->(a:Address)
    WITH c, a ORDER BY a.is_default DESC, a.created_at DESC
    RETURN c.id AS customerId, collect(${ADDRESS}) AS addresses`,
} as const;

/** Inserts an address inside the caller's transaction, with AddressAdded. `used` stamps shipping times. */
export async function insertAddress(
  tx: ManagedTransaction,
  customerId: string,
  a: z.output<typeof addressInput>,
  options: { used?: boolean } = {},
): Promise<Address> {
  const address = { ...a, id: a.id ?? randomUUID(), street2: a.street2 ?? null, state: a.state ?? null };
  const res = await tx.run(CYPHER.add, { customerId, address, used: options.used ?? false });
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
}

/** Adds an address; a new default address replaces the previous default of the same type. */
export async function addAddress(g: Graph, customerId: string, input: AddressInput): Promise<Address> {
  const a = parseInput(addressInput, input, 'address');
  return writeTx(g, (tx) => insertAddress(tx, customerId, a));
}

export async function getAddressesByCustomer(g: Graph, customerId: string): Promise<Address[]> {
  return readCustomerList<Address>(g, CYPHER.listForCustomer, customerId, 'addresses');
}

/**
 * The customer says an address is not theirs any more: their edge to it goes, in one transaction
 * under the customer's lock (checked to be in `allowStatuses`, never erased or merged), with
 * AddressRemovedByCustomer `{address_id, address_deleted}`. Never another customer's edge: an
 * address others ship to stays theirs (its default flag too); one nothing links any more is
 * deleted. NotFoundError when the address is not one of the customer's.
 */
export async function removeAddressFromCustomer(
  g: Graph,
  customerId: string,
  addressId: string,
  options: { allowStatuses?: readonly CustomerStatus[] } = {},
): Promise<{ address_id: string; address_deleted: boolean }> {
  return writeTx(g, async (tx) => {
    await lockCustomerForChangeTx(tx, customerId, options.allowStatuses ?? ['active', 'suspended'], 'its addresses');
    const unlinked = (await tx.run(CYPHER.unlink, { customerId, addressId })).records[0];
    if (!unlinked) throw new NotFoundError('Address', addressId);
    const deleted = (await tx.run(CYPHER.deleteIfUnlinked, { addressId })).records[0];
    const result = { address_id: addressId, address_deleted: toPlain(deleted?.get('deleted')) === 1 };
    await appendEvent(tx, 'AddressRemovedByCustomer', customerId, result);
    return result;
  });
}
