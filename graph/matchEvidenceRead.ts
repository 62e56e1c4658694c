/**
 * The one statement that finds a customer's possible matches and what links them
 * (graph/matchEvidence.ts weighs them), with its parameters and the rows it returns.
 *
 * Candidates: the customers this customer's PossibleMatchFound facts name, the customers whose
 * PossibleMatchFound facts name this one (the Fact node keeps the customer it names, `about`,
 * indexed with the type and time: graph/facts.ts), and the customers who share a device, a card
 * (the processor's card fingerprint) or an address (its normalised key, graph/addresses.ts) with it.
 * Only customers `active` or `suspended` (never an erased or merged record).
 *
 * Bounded: the customer's first 50 devices, card fingerprints and addresses; each device read up to
 * the shared-device limit + 1 customers (a device of 100,000 costs what one of six does: it is no
 * signal, and its customers are no candidates), each card and address up to SHARED_FACT_LIMIT + 1,
 * and the newest 500 PossibleMatchFound events each way.
 */
import neo4j from 'neo4j-driver';
import type { Graph } from './graph';
import type { IdentifierType } from './model';
import { SHARED_FACT_LIMIT } from './matchParts';

/** PossibleMatchFound facts read each way, newest first. */
const EVENTS_EACH_WAY = 500;

/** Of the customer's own devices, card fingerprints and addresses, the first this many name candidates. */
const OWN_FACTS = 50;

const CARD = 'p {.id, .brand, .last_four, .expiry_month, .expiry_year, .card_fingerprint, .card_network}';
const ADDRESS = 'a {.id, .type, .city, .country, .match_key}';

export const MATCH_EVIDENCE = `
    MATCH (c:Customer {id: $customerId})
    // The customer's devices, each with its customers up to $deviceCap (the limit + 1): DISTINCT
    // and LIMIT stream, so the read stops there however many use it (graph/onboarding.ts).
    CALL (c) {
      OPTIONAL MATCH (c)-[:LOGGED_IN_FROM]->(d:Device)
      WITH d LIMIT $ownCap
      CALL (d) {
        OPTIONAL MATCH (d)<-[:LOGGED_IN_FROM]-(x:Customer)
        WITH DISTINCT x.id AS xid LIMIT $deviceCap
        RETURN collect(xid) AS sharers
      }
      WITH d, sharers WHERE d IS NOT NULL
      RETURN collect({id: d.id, fingerprint: d.fingerprint, sharers: sharers}) AS devices
    }
    // Its cards' fingerprints and addresses' keys, each with its holders up to $factCap.
    CALL (c) {
      OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
      WITH DISTINCT p.card_fingerprint AS fp WHERE fp IS NOT NULL
      WITH fp LIMIT $ownCap
      CALL (fp) {
        MATCH (:PaymentMethod {card_fingerprint: fp})<-[:HAS_PAYMENT_METHOD]-(x:Customer)
        WITH DISTINCT x.id AS xid LIMIT $factCap
        RETURN collect(xid) AS holders
      }
      RETURN collect({fingerprint: fp, holders: holders}) AS cardFacts
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:SHIPPED_TO]->(a:Address)
      WITH DISTINCT a.match_key AS key WHERE key IS NOT NULL
      WITH key LIMIT $ownCap
      CALL (key) {
        MATCH (:Address {match_key: key})<-[:SHIPPED_TO]-(x:Customer)
        WITH DISTINCT x.id AS xid LIMIT $factCap
        RETURN collect(xid) AS holders
      }
      RETURN collect({key: key, holders: holders}) AS addressFacts
    }
    // Possible matches recorded either way: each an index seek, newest first.
    CALL (c) {
      CALL (c) {
        MATCH (f:Fact {customer_id: c.id, type: 'PossibleMatchFound'})
        WHERE f.at IS NOT NULL AND f.erased IS NULL
        WITH f ORDER BY f.at DESC LIMIT $eventCap
        RETURN f
        UNION
        MATCH (f:Fact {about: c.id, type: 'PossibleMatchFound'})
        WHERE f.at IS NOT NULL AND f.erased IS NULL
        WITH f ORDER BY f.at DESC LIMIT $eventCap
        RETURN f
      }
      RETURN collect(f {.customer_id, matched_customer_id: f.about, occurred_at: f.at, payload: f.result}) AS events
    }
    WITH c, devices, cardFacts, addressFacts, events,
         [e IN events | CASE WHEN e.customer_id = c.id THEN e.matched_customer_id ELSE e.customer_id END] +
         reduce(ids = [], d IN devices |
                ids + CASE WHEN size(d.sharers) <= $sharedDeviceLimit THEN d.sharers ELSE [] END) +
         reduce(ids = [], k IN cardFacts | ids + CASE WHEN size(k.holders) <= $factLimit THEN k.holders ELSE [] END) +
         reduce(ids = [], k IN addressFacts | ids + CASE WHEN size(k.holders) <= $factLimit THEN k.holders ELSE [] END)
         AS named
    CALL (c, named, devices, cardFacts, addressFacts) {
      UNWIND named AS id
      WITH DISTINCT id WHERE id IS NOT NULL AND id <> c.id
      MATCH (o:Customer {id: id}) WHERE o.status IN ['active', 'suspended']
      WITH o, [d IN devices | d.id] AS deviceIds, [k IN cardFacts | k.fingerprint] AS fingerprints,
           [k IN addressFacts | k.key] AS keys
      RETURN collect({
        customer_id: o.id,
        status: o.status,
        devices: [(o)-[:LOGGED_IN_FROM]->(d:Device) WHERE d.id IN deviceIds | d.id],
        cards: [(o)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod) WHERE p.card_fingerprint IN fingerprints | ${CARD}],
        addresses: [(o)-[:SHIPPED_TO]->(a:Address) WHERE a.match_key IN keys | ${ADDRESS}],
        identifiers: [(o)-[:HAS_DIGITAL_IDENTIFIER]->(i:DigitalIdentifier) | i {.type, .is_verified}]
      }) AS candidates
    }
    RETURN devices, cardFacts, addressFacts, events, candidates,
           [(c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod) WHERE p.card_fingerprint IS NOT NULL | ${CARD}] AS cards,
           [(c)-[:SHIPPED_TO]->(a:Address) WHERE a.match_key IS NOT NULL | ${ADDRESS}] AS addresses,
           [(c)-[:HAS_DIGITAL_IDENTIFIER]->(i:DigitalIdentifier) | i {.type, .is_verified}] AS identifiers`;

export interface CardRow {
  id: string;
  brand: string | null;
  last_four: string | null;
  expiry_month: number | null;
  expiry_year: number | null;
  card_fingerprint: string;
  card_network: string | null;
}
export interface AddressRow {
  id: string;
  type: string;
  city: string | null;
  country: string;
  match_key: string;
}
export interface IdentifierRow {
  type: IdentifierType;
  is_verified: boolean;
}
export interface EventRow {
  customer_id: string;
  matched_customer_id: string;
  occurred_at: string;
  payload: string;
}
export interface CandidateRow {
  customer_id: string;
  status: 'active' | 'suspended';
  devices: string[];
  cards: CardRow[];
  addresses: AddressRow[];
  identifiers: IdentifierRow[];
}
export interface EvidenceRow {
  devices: { id: string; fingerprint: string; sharers: string[] }[];
  cardFacts: { fingerprint: string; holders: string[] }[];
  addressFacts: { key: string; holders: string[] }[];
  events: EventRow[];
  candidates: CandidateRow[];
  cards: CardRow[];
  addresses: AddressRow[];
  identifiers: IdentifierRow[];
}

/** MATCH_EVIDENCE's parameters for a customer, under the graph's shared-device limit. */
export function matchEvidenceParams(g: Pick<Graph, 'policy'>, customerId: string): Record<string, unknown> {
  const limit = g.policy.sharedDeviceLimit;
  return {
    customerId,
    sharedDeviceLimit: neo4j.int(limit),
    deviceCap: neo4j.int(limit + 1),
    factLimit: neo4j.int(SHARED_FACT_LIMIT),
    factCap: neo4j.int(SHARED_FACT_LIMIT + 1),
    eventCap: neo4j.int(EVENTS_EACH_WAY),
    ownCap: neo4j.int(OWN_FACTS),
  };
}
