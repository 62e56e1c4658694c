/**
 * The console's reads of the identity graph (api/console): finding a customer by an exact key, and
 * the identity graph around one customer for the customer page.
 *
 * Every lookup is an index seek on a constrained or indexed key (a customer's id, a digital
 * identifier's (type, value), a device's fingerprint, a card's processor fingerprint), never a scan.
 * The customer graph is one statement in one read transaction: the customer's cards, devices,
 * addresses and identifiers (each list bounded), which of its cards were used on which of its
 * devices, and — one hop further — how many other customers share each device or card: a count,
 * never who they are. A device's count is its degree (`COUNT { (d)<-[:LOGGED_IN_FROM]-() }`, read
 * from the node's relationship counts), so a device shared by 100,000 customers costs what a
 * customer's own phone does; a card's is counted up to a cap. A device or address the customer
 * removed on their own page is listed and counted still, with `disowned_at` (the link is kept).
 */
import neo4j from 'neo4j-driver';
import { toPlain } from './convert';
import { TRUST_ON_DEVICE } from './devices';
import { NotFoundError } from './errors';
import { readTx, type Graph } from './graph';
import type { IdentifierType, PaymentMethodStatus, PaymentMethodType } from './model';

/** A customer found by a search: enough to list it and lead to its page. */
export interface CustomerHit {
  id: string;
  /** `active`, `suspended`, `erased`, or `merged` (a merge's tombstone, see `merged_into`). */
  status: string;
  segment: string | null;
  merged_into: string | null;
}

export interface ConsoleCard {
  id: string;
  type: PaymentMethodType;
  status: PaymentMethodStatus;
  brand: string | null;
  last_four: string | null;
  expiry_month: number | null;
  expiry_year: number | null;
  is_default: boolean;
  /** Other customers with a card of the same processor fingerprint, counted up to the cap. */
  shared_with: number;
}

export interface ConsoleDevice {
  id: string;
  /** Only ever shown masked. */
  fingerprint: string;
  trust_score: number;
  last_login: string | null;
  /** Other customers who log in from it (the device's degree less this customer). */
  shared_with: number;
  /**
   * When the customer said it is not theirs (graph/devices.ts removeDeviceFromCustomer): the link is
   * kept for fraud checks, trust and ops, marked. Null while it is theirs.
   */
  disowned_at: string | null;
}

export interface ConsoleAddress {
  id: string;
  type: string;
  city: string | null;
  country: string | null;
  is_default: boolean;
  /** When the customer said it is not theirs (graph/addresses.ts): the link is kept, marked. Null otherwise. */
  disowned_at: string | null;
}

export interface ConsoleIdentifier {
  id: string;
  type: IdentifierType;
  /** Only ever shown masked. */
  value: string;
  is_verified: boolean;
}

/** The identity graph around one customer, as the customer page draws it. */
export interface CustomerGraph {
  customer_id: string;
  cards: ConsoleCard[];
  devices: ConsoleDevice[];
  addresses: ConsoleAddress[];
  identifiers: ConsoleIdentifier[];
  /** [card id, device id]: the customer's card was used on the customer's device. */
  used_on: [string, string][];
  /** How many of each the customer has (the lists stop at the cap). */
  totals: { cards: number; devices: number; addresses: number; identifiers: number };
  /** The most a list holds. */
  cap: number;
  /** Where counting a card's other holders stops (a count of this means "at least"). */
  share_cap: number;
}

const HIT = 'c {.id, .status, .segment, .merged_into}';

export const CONSOLE_CYPHER = {
  byId: `
    MATCH (c:Customer {id: $id})
    RETURN ${HIT} AS hit`,
  // The (type, value) uniqueness constraint's index: one seek, then the identifier's one holder.
  byIdentifier: `
    MATCH (:DigitalIdentifier {type: $type, value: $value})<-[:HAS_DIGITAL_IDENTIFIER]-(c:Customer)
    RETURN ${HIT} AS hit
    LIMIT 1`,
  // The fingerprint's constraint index, then the first $limit of its customers and its degree.
  byFingerprint: `
    MATCH (d:Device {fingerprint: $fingerprint})
    CALL (d) {
      OPTIONAL MATCH (d)<-[:LOGGED_IN_FROM]-(c:Customer)
      WITH c LIMIT $limit
      WITH c WHERE c IS NOT NULL
      RETURN collect(${HIT}) AS hits
    }
    RETURN hits, COUNT { (d)<-[:LOGGED_IN_FROM]-() } AS total`,
  customerGraph: `
    MATCH (c:Customer {id: $customerId})
    CALL (c) {
      OPTIONAL MATCH (c)-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
      WITH c, r, p
      ORDER BY coalesce(r.is_default, false) DESC, r.last_used IS NULL, r.last_used DESC, p.created_at DESC
      LIMIT $cap
      WITH c, r, p WHERE p IS NOT NULL
      // The card's other holders: a seek on the processor fingerprint, stopped at $shareCap.
      CALL (c, p) {
        OPTIONAL MATCH (x:Customer)-[:HAS_PAYMENT_METHOD]->(:PaymentMethod {card_fingerprint: p.card_fingerprint})
        WHERE x <> c
        WITH DISTINCT x LIMIT $shareCap
        RETURN count(x) AS others
      }
      RETURN collect(p {.id, .type, .status, .brand, .last_four, .expiry_month, .expiry_year,
                        is_default: coalesce(r.is_default, false), shared_with: others}) AS cards
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[r:LOGGED_IN_FROM]->(d:Device)
      WITH r, d ORDER BY r.last_login DESC LIMIT $cap
      WITH r, d WHERE d IS NOT NULL
      // The device's degree (its relationship counts): no customer on it is read.
      // The customer's trust on it: the lower of what they earned there and the device's own.
      RETURN collect(d {.id, .fingerprint, trust_score: ${TRUST_ON_DEVICE('r', 'd')},
                        last_login: r.last_login, disowned_at: r.disowned_at,
                        shared_with: COUNT { (d)<-[:LOGGED_IN_FROM]-() } - 1}) AS devices
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[s:SHIPPED_TO]->(a:Address)
      WITH s, a ORDER BY a.is_default DESC, a.created_at DESC LIMIT $cap
      WITH s, a WHERE a IS NOT NULL
      RETURN collect(a {.id, .type, .city, .country, is_default: coalesce(a.is_default, false),
                        disowned_at: s.disowned_at}) AS addresses
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:HAS_DIGITAL_IDENTIFIER]->(i:DigitalIdentifier)
      WITH i ORDER BY i.type, i.created_at LIMIT $cap
      WITH i WHERE i IS NOT NULL
      RETURN collect(i {.id, .type, .value, is_verified: coalesce(i.is_verified, false)}) AS identifiers
    }
    WITH c, cards, devices, addresses, identifiers,
         [p IN cards | p.id] AS cardIds, [d IN devices | d.id] AS deviceIds
    RETURN c.id AS customerId, cards, devices, addresses, identifiers,
           [(c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod)-[:USED_ON]->(d:Device)
             WHERE p.id IN cardIds AND d.id IN deviceIds | [p.id, d.id]] AS usedOn,
           COUNT { (c)-[:HAS_PAYMENT_METHOD]->() } AS cardTotal,
           COUNT { (c)-[:LOGGED_IN_FROM]->() } AS deviceTotal,
           COUNT { (c)-[:SHIPPED_TO]->() } AS addressTotal,
           COUNT { (c)-[:HAS_DIGITAL_IDENTIFIER]->() } AS identifierTotal`,
} as const;

const hitOf = (value: unknown): CustomerHit => {
  const h = toPlain(value) as unknown as CustomerHit;
  return { id: h.id, status: h.status, segment: h.segment ?? null, merged_into: h.merged_into ?? null };
};

/** The customer with this id (a merge's tombstone included), or null. */
export async function findCustomerById(g: Graph, id: string): Promise<CustomerHit | null> {
  return readTx(g, async (tx) => {
    const record = (await tx.run(CONSOLE_CYPHER.byId, { id })).records[0];
    return record ? hitOf(record.get('hit')) : null;
  });
}

/** The customer holding this digital identifier (its value normalised already), or null. */
export async function findCustomerByIdentifier(
  g: Graph,
  type: IdentifierType,
  normalisedValue: string,
): Promise<CustomerHit | null> {
  return readTx(g, async (tx) => {
    const record = (await tx.run(CONSOLE_CYPHER.byIdentifier, { type, value: normalisedValue })).records[0];
    return record ? hitOf(record.get('hit')) : null;
  });
}

/**
 * The customers on the device with this fingerprint: the first `limit` of them, and how many there
 * are in all (its degree). Null when no device has the fingerprint.
 */
export async function findCustomersByFingerprint(
  g: Graph,
  fingerprint: string,
  limit: number,
): Promise<{ hits: CustomerHit[]; total: number } | null> {
  return readTx(g, async (tx) => {
    const record = (await tx.run(CONSOLE_CYPHER.byFingerprint, { fingerprint, limit: neo4j.int(limit) })).records[0];
    if (!record) return null;
    return {
      hits: (record.get('hits') as unknown[]).map(hitOf),
      total: toPlain(record.get('total')) as number,
    };
  });
}

/** The identity graph around the customer, in one read; NotFoundError when there is no such customer. */
export async function readCustomerGraph(
  g: Graph,
  customerId: string,
  options: { cap?: number; shareCap?: number } = {},
): Promise<CustomerGraph> {
  const cap = options.cap ?? 100;
  const shareCap = options.shareCap ?? 1000;
  const record = await readTx(
    g,
    async (tx) =>
      (
        await tx.run(CONSOLE_CYPHER.customerGraph, {
          customerId,
          cap: neo4j.int(cap),
          shareCap: neo4j.int(shareCap),
        })
      ).records[0],
  );
  if (!record) throw new NotFoundError('Customer', customerId);
  const plain = (key: string) => toPlain(record.get(key));
  const devices = (plain('devices') as unknown as ConsoleDevice[]).map((d) => ({
    ...d,
    trust_score: Number(d.trust_score ?? 0),
    last_login: d.last_login ?? null,
    shared_with: Math.max(0, d.shared_with),
    disowned_at: d.disowned_at ?? null,
  }));
  return {
    customer_id: record.get('customerId') as string,
    cards: plain('cards') as unknown as ConsoleCard[],
    devices,
    addresses: (plain('addresses') as unknown as ConsoleAddress[]).map((a) => ({
      ...a,
      disowned_at: a.disowned_at ?? null,
    })),
    identifiers: plain('identifiers') as unknown as ConsoleIdentifier[],
    used_on: plain('usedOn') as unknown as [string, string][],
    totals: {
      cards: plain('cardTotal') as number,
      devices: plain('deviceTotal') as number,
      addresses: plain('addressTotal') as number,
      identifiers: plain('identifierTotal') as number,
    },
    cap,
    share_cap: shareCap,
  };
}
