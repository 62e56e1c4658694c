/**
 * A customer's possible matches with their evidence, from one read transaction: the candidates and
 * what links them in one statement (put in words by graph/matchParts.ts), then both records, weighed
 * by the match model (graph/customerRecords.ts `scoreAgainstTx`): each candidate's probability of
 * being the customer's person, with the model's parts in words.
 *
 * The candidates and the statement that finds them: graph/matchEvidenceRead.ts. At most
 * MATCHES_LISTED are scored and listed.
 *
 * Identifiers are never linked to two customers (the first holder keeps one; graph/onboarding.ts),
 * so what two customers' identifiers share is known only from the PossibleMatchFound event the
 * onboarding wrote: its signals, and (since it was added) on which side each identifier was
 * verified. For an older event, the side it names as the holder says what it can: an identifier
 * of that type verified there, and the match unverified, means verified on one record only.
 */
import { toPlain } from './convert';
import { COMPARISON_NAMES } from '../resolution/compare';
import type { MatchPart } from '../resolution/model';
import { scoreAgainstTx } from './customerRecords';
import { readTx, type Graph } from './graph';
import {
  MATCH_EVIDENCE,
  matchEvidenceParams,
  type AddressRow,
  type CandidateRow,
  type CardRow,
  type EventRow,
  type EvidenceRow,
  type IdentifierRow,
} from './matchEvidenceRead';
import type { IdentifierType } from './model';
import {
  evidenceParts,
  rankMatches,
  strongerVerification,
  type AddressSide,
  type CardSide,
  type EvidencePart,
  type LinkRefusal,
  type MatchEvidence,
  type PartSignal,
  type Verification,
} from './matchParts';

/**
 * At most this many candidates are scored and listed: those with the most evidence first (an
 * identifier both gave, then the most devices, cards and addresses shared, then the newest
 * onboarding that named them). A customer whose email hundreds of sign-ups claimed costs what 200
 * candidates do.
 */
export const MATCHES_LISTED = 200;

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

/** The candidates, the most evidence first (MATCHES_LISTED), ties by customer id. */
function mostEvidence(evidence: Map<string, { between: EventRow[]; found: MatchEvidence }>): string[] {
  const weight = ({ found: f }: { found: MatchEvidence }): number[] => [
    f.identifiers.length,
    f.devices.length + f.cards.length + f.addresses.length,
  ];
  const newest = (e: { between: EventRow[] }): string => e.between[0]?.occurred_at ?? '';
  return [...evidence.entries()]
    .sort(([x, a], [y, b]) => {
      const [wa, wb] = [weight(a), weight(b)];
      return (
        (wb[0] as number) - (wa[0] as number) ||
        (wb[1] as number) - (wa[1] as number) ||
        newest(b).localeCompare(newest(a)) ||
        x.localeCompare(y)
      );
    })
    .map(([id]) => id);
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
    for (const id of mostEvidence(evidence).slice(MATCHES_LISTED)) evidence.delete(id);
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
  return rankMatches(matches, (m) => scores.get(m.customer_id)?.logOdds ?? -Infinity);
}
