/** Addresses a customer ships to or is billed at (SHIPPED_TO edges). */
import { randomUUID } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import type { z } from 'zod';
import { toPlain } from './convert';
import { lockCustomerForChangeTx } from './customers';
import { NotFoundError } from './errors';
import { appendEvent } from './events';
import { readCustomerList, writeTx, type Graph } from './graph';
import {
  addressInput,
  parseInput,
  type Address,
  type AddressInput,
  type CustomerAddress,
  type CustomerStatus,
} from './model';

const ADDRESS =
  'a {.id, .street1, .street2, .city, .state, .zip_code, .country, .type, .is_default, .created_at, .updated_at}';
/** The address as one customer sees it: the node, and the mark on that customer's own edge `r`. */
const CUSTOMER_ADDRESS = `${ADDRESS.slice(0, -1)}, disowned_at: r.disowned_at}`;

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
 * postcode lower-cased without spaces or dashes (`SW1A 2AA` = `sw1a2aa`; a US ZIP+4 as its ZIP, as
 * resolution/address.ts `postcodeOf` reads it), the country; city and state are left out (the
 * postcode says as much, spelled one way). Every writer of an Address sets it as `match_key` (indexed).
 */
export function addressMatchKey(a: string): string {
  const code = `replace(replace(toLower(coalesce(${a}.zip_code, '')), ' ', ''), '-', '')`;
  const country = `toUpper(trim(coalesce(${a}.country, '')))`;
  const zip = `CASE WHEN ${country} = 'US' AND ${code} =~ '[0-9]{9}' THEN left(${code}, 5) ELSE ${code} END`;
  return `${streetLine(`${a}.street1`)} + '|' + ${streetLine(`${a}.street2`)} + '|' + ${zip} + '|' + ${country}`;
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
  // The customer disowns the address: a mark on their own edge, the edge and the address kept (match
  // evidence, ops). Matched from the customer (locked first by the caller; the hint keeps the planner
  // from starting at an address many customers ship to), no lock on the address. Idempotent.
  disown: `
    MATCH (c:Customer {id: $customerId})-[r:SHIPPED_TO]->(a:Address)
    USING INDEX c:Customer(id)
    WHERE a.id = $addressId
    WITH r, r.disowned_at IS NULL AS fresh
    SET r.disowned_at = coalesce(r.disowned_at, datetime.transaction())
    RETURN fresh, r.disowned_at AS disownedAt`,
  // Addresses the customer disowned only with $includeDisowned.
  listForCustomer: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[r:SHIPPED_TO]->(a:Address)
    WHERE $includeDisowned OR r.disowned_at IS NULL
    WITH c, r, a ORDER BY a.is_default DESC, a.created_at DESC
    RETURN c.id AS customerId, collect(${CUSTOMER_ADDRESS}) AS addresses`,
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

/**
 * The customer's addresses, the defaults first, then the newest. An address the customer disowned
 * (removeAddressFromCustomer) is left out unless `includeDisowned` (each says when: `disowned_at`).
 */
export async function getAddressesByCustomer(
  g: Graph,
  customerId: string,
  options: { includeDisowned?: boolean } = {},
): Promise<CustomerAddress[]> {
  return readCustomerList<CustomerAddress>(g, CYPHER.listForCustomer, customerId, 'addresses', {
    includeDisowned: options.includeDisowned ?? false,
  });
}

/**
 * The customer says an address is not theirs any more: the address is DISOWNED, never deleted
 * (as a device is, graph/devices.ts removeDeviceFromCustomer). Their SHIPPED_TO edge is marked
 * `disowned_at`, in one transaction under the customer's lock (checked to be in `allowStatuses`,
 * never erased or merged), with AddressRemovedByCustomer `{address_id}`. The edge (with its
 * shipping times) and the address stay: match evidence and ops' pages still see them, other
 * customers who ship there are not touched (its default flag neither). The customer's own page no
 * longer lists it; a later shipment of theirs to it (a reported one, a matched onboarding's) makes
 * it theirs again. Removing an address already disowned changes nothing and appends no event
 * (`recorded: false`). NotFoundError when the address is not one the customer ever had.
 */
export async function removeAddressFromCustomer(
  g: Graph,
  customerId: string,
  addressId: string,
  options: { allowStatuses?: readonly CustomerStatus[] } = {},
): Promise<{ address_id: string; disowned_at: string; recorded: boolean }> {
  return writeTx(g, async (tx) => {
    await lockCustomerForChangeTx(tx, customerId, options.allowStatuses ?? ['active', 'suspended'], 'its addresses');
    const disowned = (await tx.run(CYPHER.disown, { customerId, addressId })).records[0];
    if (!disowned) throw new NotFoundError('Address', addressId);
    const recorded = disowned.get('fresh') as boolean;
    if (recorded) await appendEvent(tx, 'AddressRemovedByCustomer', customerId, { address_id: addressId });
    return { address_id: addressId, disowned_at: toPlain(disowned.get('disownedAt')) as string, recorded };
  });
}
