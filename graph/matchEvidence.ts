/**
 * A customer's possible matches with their evidence, from one read transaction: the candidates and
 * what links them in one statement (put in words by graph/matchParts.ts), then both records, weighed
 * by the match model (graph/customerRecords.ts `scoreAgainstTx`): each candidate's probability of
 * being the customer's person, with the model's parts in words.
 *
 * Candidates: the customers this customer's PossibleMatchFound facts name, the customers whose
 * PossibleMatchFound facts name this one (the Fact node keeps the customer it names, `about`,
 * indexed with the type and time: graph/facts.ts), and the customers who share a
 * device, a card (the processor's card fingerprint) or an address (its normalised key,
 * graph/addresses.ts) with it. Only customers `active` or `suspended` (never an erased or merged
 * record).
 *
 * Bounded: each of the customer's devices is read up to the shared-device limit + 1 customers (a
 * device of 100,000 costs what one of six does: it is no signal, and its customers are no
 * candidates), each card and address up to SHARED_FACT_LIMIT + 1, and the newest 500
 * PossibleMatchFound events each way.
 *
 * Identifiers are never linked to two customers (the first holder keeps one; graph/onboarding.ts),
 * so what two customers' identifiers share is known only from the PossibleMatchFound event the
 * onboarding wrote: its signals, and (since it was added) on which side each identifier was
 * verified. For an older event, the side it names as the holder says what it can: an identifier
 * of that type verified there, and the match unverified, means verified on one record only.
 */
import neo4j from 'neo4j-driver';
import { toPlain } from './convert';
import { COMPARISON_NAMES } from '../resolution/compare';
import type { MatchPart } from '../resolution/model';
import { scoreAgainstTx } from './customerRecords';
import { readTx, type Graph } from './graph';
import type { IdentifierType } from './model';
import {
  evidenceParts,
  rankMatches,
  SHARED_FACT_LIMIT,
  strongerVerification,
  type AddressSide,
  type CardSide,
  type EvidencePart,
  type LinkRefusal,
  type MatchEvidence,
  type PartSignal,
  type Verification,
} from './matchParts';

/** PossibleMatchFound facts read each way, newest first. */
const EVENTS_EACH_WAY = 500;

const CARD = 'p {.id, .brand, .last_four, .expiry_month, .expiry_year, .card_fingerprint, .card_network}';
const ADDRESS = 'a {.id, .type, .city, .country, .match_key}';

export const MATCH_EVIDENCE = `
    MATCH (c:Customer {id: $customerId})
    // The customer's devices, each with its customers up to $deviceCap (the limit + 1): DISTINCT
    // and LIMIT stream, so the read stops there however many use it (graph/onboarding.ts).
    CALL (c) {
      OPTIONAL MATCH (c)-[:LOGGED_IN_FROM]->(d:Device)
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

interface CardRow {
  id: string;
  brand: string | null;
  last_four: string | null;
  expiry_month: number | null;
  expiry_year: number | null;
  card_fingerprint: string;
  card_network: string | null;
}
interface AddressRow {
  id: string;
  type: string;
  city: string | null;
  country: string;
  match_key: string;
}
interface IdentifierRow {
  type: IdentifierType;
  is_verified: boolean;
}
interface EventRow {
  customer_id: string;
  matched_customer_id: string;
  occurred_at: string;
  payload: string;
}
interface CandidateRow {
  customer_id: string;
  status: PossibleMatchEvidence['status'];
  devices: string[];
  cards: CardRow[];
  addresses: AddressRow[];
  identifiers: IdentifierRow[];
}
interface EvidenceRow {
  devices: { id: string; fingerprint: string; sharers: string[] }[];
  cardFacts: { fingerprint: string; holders: string[] }[];
  addressFacts: { key: string; holders: string[] }[];
  events: EventRow[];
  candidates: CandidateRow[];
  cards: CardRow[];
  addresses: AddressRow[];
  identifiers: IdentifierRow[];
}

/** A PossibleMatchFound payload as written (`identifiers` only on events since it was added). */
interface MatchPayload {
  signals?: string[];
  onboarding_id?: string;
  identifiers?: { type: IdentifierType; incoming_verified: boolean; on_file_verified: boolean }[];
  link_refused?: LinkRefusal;
  probability?: number;
}

export interface PossibleMatchEvidence {
  customer_id: string;
  /** The other customer's status (an erased or merged record is never a candidate). */
  status: 'active' | 'suspended';
  /** The match model's probability that the two are one person, 0–1. */
  probability: number;
  /** The model's table that gave it (resolution/weights.ts). */
  model_version: string;
  /** The model's parts, the strongest first: each comparison's level, its bits and its reason in words. */
  comparisons: ModelPart[];
  /** The parts that say two people, in words (a different given name or date of birth where both know it). */
  conflicts: string[];
  /** The evidence's signals, once each. */
  signals: PartSignal[];
  /** What links the two, in words: why they were put side by side. */
  parts: EvidencePart[];
  /** When an onboarding last recorded the two as a possible match (either way); null when none did. */
  found_at: string | null;
  /** That onboarding. */
  onboarding_id: string | null;
}

/** The fields the match model compares, as a model part names them. */
export const MODEL_COMPARISONS = COMPARISON_NAMES;

/** A part of the model's score as the api shows it: bits to a tenth. */
export interface ModelPart {
  comparison: MatchPart['comparison'];
  level: string;
  bits: number;
  reason: string;
}

const modelPart = (p: MatchPart): ModelPart => ({
  comparison: p.comparison,
  level: p.level,
  bits: Math.round(p.bits * 10) / 10,
  reason: p.reason,
});

const IDENTIFIER_TYPES: IdentifierType[] = ['email', 'phone_number'];

/** How verified an identifier of `type` two customers share is, from one PossibleMatchFound. */
function verificationOf(
  signal: string,
  type: IdentifierType,
  payload: MatchPayload,
  holderIdentifiers: IdentifierRow[],
): Verification | null {
  if (signal === `verified_${type}`) return 'both';
  if (signal !== `unverified_${type}`) return null;
  const sides = (payload.identifiers ?? []).filter((i) => i.type === type);
  if (sides.length > 0)
    return sides
      .map((i): Verification => {
        const n = Number(i.incoming_verified) + Number(i.on_file_verified);
        return n === 2 ? 'both' : n === 1 ? 'one_side' : 'neither';
      })
      .reduce(strongerVerification);
  // An event from before the sides were recorded: the holder's identifiers of the type as they are.
  const held = holderIdentifiers.filter((i) => i.type === type);
  return held.length > 0 && held.every((i) => i.is_verified) ? 'one_side' : 'unknown';
}

function identifierEvidence(
  events: EventRow[],
  identifiersOf: (customerId: string) => IdentifierRow[],
): Pick<MatchEvidence, 'identifiers' | 'link_refused' | 'similar_person'> & { conflicting: boolean } {
  const best = new Map<IdentifierType, Verification>();
  let conflicting = false;
  let refused: LinkRefusal | null = null;
  let similar: MatchEvidence['similar_person'] = null;
  for (const e of events) {
    const payload = JSON.parse(e.payload) as MatchPayload;
    // The newest finding by the person's keys, with the probability the model gave then.
    if (payload.signals?.includes('similar_person') && !similar) similar = { probability: payload.probability ?? 0 };
    // The newest refusal (events come newest first).
    if (payload.link_refused && !refused)
      refused = { reason: payload.link_refused.reason, conflicts: payload.link_refused.conflicts };
    for (const signal of payload.signals ?? []) {
      if (signal === 'conflicting_verified_identifiers') conflicting = true;
      for (const type of IDENTIFIER_TYPES) {
        const v = verificationOf(signal, type, payload, identifiersOf(e.matched_customer_id));
        if (v) best.set(type, strongerVerification(best.get(type) ?? v, v));
      }
    }
  }
  return {
    identifiers: IDENTIFIER_TYPES.flatMap((type) => {
      const verified = best.get(type);
      return verified ? [{ type, verified }] : [];
    }),
    conflicting,
    link_refused: refused,
    similar_person: similar,
  };
}

const cardSide = (p: CardRow): CardSide => ({
  payment_method_id: p.id,
  brand: p.brand,
  last_four: p.last_four,
  expiry_month: p.expiry_month,
  expiry_year: p.expiry_year,
});
const addressSide = (a: AddressRow): AddressSide => ({
  address_id: a.id,
  type: a.type,
  city: a.city,
  country: a.country,
});

/** What links the customer with one candidate, from the row the read returned. */
function evidenceFor(row: EvidenceRow, customerId: string, o: CandidateRow, events: EventRow[]): MatchEvidence {
  const { identifiers, conflicting, link_refused, similar_person } = identifierEvidence(events, (id) =>
    id === customerId ? row.identifiers : id === o.customer_id ? o.identifiers : [],
  );
  const devices = row.devices
    .filter((d) => o.devices.includes(d.id))
    .map((d) => ({ device_id: d.id, fingerprint: d.fingerprint, shared_by: d.sharers.length }));
  const cards = row.cardFacts.flatMap((k) => {
    const mine = row.cards.find((p) => p.card_fingerprint === k.fingerprint);
    const theirs = o.cards.find((p) => p.card_fingerprint === k.fingerprint);
    if (!mine || !theirs) return [];
    return [
      {
        fingerprint: k.fingerprint,
        network: theirs.card_network ?? mine.card_network,
        this: cardSide(mine),
        other: cardSide(theirs),
        shared_by: k.holders.length,
      },
    ];
  });
  const addresses = row.addressFacts.flatMap((k) => {
    const mine = row.addresses.find((a) => a.match_key === k.key);
    const theirs = o.addresses.find((a) => a.match_key === k.key);
    if (!mine || !theirs) return [];
    return [{ this: addressSide(mine), other: addressSide(theirs), shared_by: k.holders.length }];
  });
  return {
    identifiers,
    conflicting_verified_identifiers: conflicting,
    link_refused,
    similar_person,
    devices,
    cards,
    addresses,
  };
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
  };
}

/**
 * The customer's possible matches with their evidence and the model's probability, ranked (the
 * most likely first, ties by customer id); null when there is no such customer.
 */
export async function listMatchEvidence(g: Graph, customerId: string): Promise<PossibleMatchEvidence[] | null> {
  const read = await readTx(g, async (tx) => {
    const found = (await tx.run(MATCH_EVIDENCE, matchEvidenceParams(g, customerId))).records[0];
    if (!found) return null;
    const row = toPlain(found.toObject()) as unknown as EvidenceRow;
    const evidence = new Map(
      row.candidates.map((o) => {
        const between = row.events
          .filter((e) => (e.customer_id === customerId ? e.matched_customer_id : e.customer_id) === o.customer_id)
          .sort((a, b) => (a.occurred_at < b.occurred_at ? 1 : a.occurred_at > b.occurred_at ? -1 : 0));
        return [o.customer_id, { between, found: evidenceFor(row, customerId, o, between) }];
      }),
    );
    const shared = (id: string) =>
      (evidence.get(id)?.found.identifiers ?? []).map((i) => ({ type: i.type, verifiedOnBoth: i.verified === 'both' }));
    const ids = [...evidence.keys()];
    return { row, evidence, scores: await scoreAgainstTx(tx, customerId, ids, g.policy.defaultPhoneRegion, shared) };
  });
  if (!read) return null;
  const { row, evidence, scores } = read;
  const matches = row.candidates.flatMap((o): PossibleMatchEvidence[] => {
    const score = scores.get(o.customer_id);
    const found = evidence.get(o.customer_id);
    if (!score || !found) return [];
    const { between } = found;
    const parts = evidenceParts(found.found, g.policy.sharedDeviceLimit);
    const newest = between[0];
    return [
      {
        customer_id: o.customer_id,
        status: o.status,
        probability: score.probability,
        model_version: score.version,
        comparisons: score.parts.map(modelPart),
        conflicts: score.conflicts.map((c) => c.reason),
        signals: [...new Set(parts.map((p) => p.signal))],
        parts,
        found_at: newest?.occurred_at ?? null,
        onboarding_id: newest ? ((JSON.parse(newest.payload) as MatchPayload).onboarding_id ?? null) : null,
      },
    ];
  });
  return rankMatches(matches);
}
