/**
 * The proof an onboarding would link on, weighed before it links (resolution/policy.ts): the one
 * customer a verified identifier points at is scored against the sign-up with the match model
 * (resolution/model.ts, the table in resolution/weights.ts), and linked only with no conflict (a
 * different date of birth or given name where both are known) and fewer than the policy's
 * auto-links to that customer in the last 30 days (`ONBOARDING_POLICY`: not yet the probability).
 *
 * Read inside the onboarding's transaction, after the customer is locked: two onboardings racing
 * to link to one customer count each other's links. Values are read here and never leave: the
 * score's parts are words, the decision names a reason.
 */
import type { ManagedTransaction } from 'neo4j-driver';
import { compareRecords, prepare, type PreparedRecord } from '../resolution/compare';
import { scoreAgreements, type Frequencies } from '../resolution/model';
import { decide, POLICY, type Decision, type NoLinkReason, type ScoredCandidate } from '../resolution/policy';
import { emptyRecord, type ResolutionRecord } from '../resolution/record';
import { MATCH_MODEL } from '../resolution/weights';
import { addressMatchKey } from './addresses';
import { lockNode, type Graph } from './graph';
import type { OnboardingPlan } from './onboardingRequest';
import type { IdentifierObservation, MatchSignal, Resolution } from './resolution';

/**
 * The policy as onboarding applies it today: every rule but the probability. The model scores a
 * verified email alone at 0.93 (table 2026-11-30.4), below the policy's 0.99, because the labelled
 * households share family emails; applying it would stop linking every returning customer who sends
 * no name or birth date. Until the bench through the api measures that trade, proof links unless a
 * conflict or the monthly limit refuses it, and the probability is recorded with every refusal.
 */
const ONBOARDING_POLICY = Object.freeze({ ...POLICY, autoLinkProbability: 0 });

/** Of each kind of fact (identifiers, addresses, devices, cards), a customer's first this many are weighed. */
const READ_CAP = 50;

/** Holders counted up to this (a kiosk's thousands cost what fifty do): a value beyond is common. */
const HOLDERS_CAP = 51;

const CYPHER = {
  // Locks the customer (changing nothing) before counting, so a concurrent link to it is counted
  // or waits. Reads at most READ_CAP of each kind: a customer with hundreds of devices costs no more.
  lockAndCount: `
    MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    RETURN size([t IN coalesce(c.auto_linked_at, []) WHERE t > datetime.transaction() - duration('P30D')]) AS recent,
           c {.given_name, .family_name, .birth_date} AS person,
           COLLECT { MATCH (c)-[:HAS_DIGITAL_IDENTIFIER]->(d:DigitalIdentifier)
                     RETURN d {.type, .value, .is_verified} LIMIT ${READ_CAP} } AS identifiers,
           COLLECT { MATCH (c)-[s:SHIPPED_TO]->(a:Address) WHERE s.disowned_at IS NULL
                     RETURN a {.street1, .street2, .city, .state, .zip_code, .country} LIMIT ${READ_CAP} } AS addresses,
           COLLECT { MATCH (c)-[r:LOGGED_IN_FROM]->(d:Device) WHERE r.disowned_at IS NULL
                     RETURN {fingerprint: d.fingerprint, ip: r.last_seen_ip} LIMIT ${READ_CAP} } AS devices,
           COLLECT { MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
                     RETURN p {.card_fingerprint, .brand, .last_four, .expiry_month, .expiry_year} LIMIT ${READ_CAP} }
             AS cards`,
  holders: `
    CALL () {
      UNWIND $identifiers AS i
      CALL (i) {
        OPTIONAL MATCH (:DigitalIdentifier {type: i.type, value: i.value})<-[:HAS_DIGITAL_IDENTIFIER]-(c:Customer)
        WITH DISTINCT c LIMIT toInteger($cap)
        RETURN count(c) AS holders
      }
      RETURN collect({type: i.type, value: i.value, holders: holders}) AS identifiers
    }
    CALL () {
      OPTIONAL MATCH (:Address {match_key: ${addressMatchKey('$address')}})<-[s:SHIPPED_TO]-(c:Customer)
      WHERE s.disowned_at IS NULL
      WITH DISTINCT c LIMIT toInteger($cap)
      RETURN count(c) AS address
    }
    CALL () {
      MATCH (c:Customer) RETURN count(c) AS population
    }
    RETURN identifiers, address, population`,
  recordLink: `
    MATCH (c:Customer {id: $customerId})
    SET c.auto_linked_at = [t IN coalesce(c.auto_linked_at, [])
                            WHERE t > datetime.transaction() - duration('P30D')] + datetime.transaction()`,
} as const;

/** What the sign-up says, as identity resolution reads a record. */
export function signUpRecord(plan: OnboardingPlan): ResolutionRecord {
  const of = (type: string) =>
    plan.digital_identifiers.filter((i) => i.type === type).map((i) => ({ value: i.value, verified: i.is_verified }));
  const pm = plan.payment_method;
  return emptyRecord('sign-up', {
    given_name: plan.person?.given_name ?? null,
    family_name: plan.person?.family_name ?? null,
    birth_date: plan.person?.birth_date ?? null,
    emails: of('email'),
    phones: of('phone_number'),
    addresses: plan.address
      ? [{ ...plan.address, street2: plan.address.street2 ?? null, state: plan.address.state ?? null }]
      : [],
    devices: plan.device ? [{ fingerprint: plan.device.fingerprint, ip: plan.device.ip ?? null }] : [],
    cards: pm
      ? [
          {
            fingerprint: null,
            brand: pm.brand,
            last_four: pm.last_four,
            expiry_month: pm.expiry_month,
            expiry_year: pm.expiry_year,
          },
        ]
      : [],
  });
}

interface OnFile {
  recent: number;
  record: ResolutionRecord;
}

async function readOnFileTx(tx: ManagedTransaction, customerId: string): Promise<OnFile | null> {
  const row = (await tx.run(CYPHER.lockAndCount, { customerId })).records[0];
  if (!row) return null;
  const person = row.get('person') as { given_name?: string; family_name?: string; birth_date?: string };
  const identifiers = row.get('identifiers') as { type: string; value: string; is_verified: boolean }[];
  const of = (type: string) =>
    identifiers.filter((i) => i.type === type).map((i) => ({ value: i.value, verified: i.is_verified }));
  type Card = {
    card_fingerprint?: string;
    brand?: string;
    last_four?: string;
    expiry_month?: unknown;
    expiry_year?: unknown;
  };
  const number = (x: unknown): number | null => (x === null || x === undefined ? null : Number(x));
  return {
    recent: Number(row.get('recent')),
    record: emptyRecord(customerId, {
      given_name: person.given_name ?? null,
      family_name: person.family_name ?? null,
      birth_date: person.birth_date ?? null,
      emails: of('email'),
      phones: of('phone_number'),
      addresses: row.get('addresses') as ResolutionRecord['addresses'],
      devices: row.get('devices') as ResolutionRecord['devices'],
      cards: (row.get('cards') as Card[]).map((c) => ({
        fingerprint: c.card_fingerprint ?? null,
        brand: c.brand ?? null,
        last_four: c.last_four ?? null,
        expiry_month: number(c.expiry_month),
        expiry_year: number(c.expiry_year),
      })),
    }),
  };
}

/**
 * How common the sign-up's values are among the customers on file, as the model weighs them: the
 * holders of each identifier, of its address and of its device (`deviceHolders`, read by the
 * onboarding), over the population. Names are not counted yet: their levels weigh by the table's u.
 */
async function frequenciesTx(
  tx: ManagedTransaction,
  plan: OnboardingPlan,
  signUp: PreparedRecord,
  deviceHolders: number,
  region: string,
): Promise<{ frequencies: Frequencies; population: number }> {
  const res = await tx.run(CYPHER.holders, {
    identifiers: plan.digital_identifiers.map(({ type, value }) => ({ type, value })),
    address: plan.address ?? {},
    cap: HOLDERS_CAP,
  });
  const row = res.records[0];
  const population = Math.max(1, Number(row?.get('population') ?? 1));
  const counts = new Map<string, number>();
  const held = (row?.get('identifiers') ?? []) as { type: string; value: string; holders: unknown }[];
  for (const h of held) {
    const value = [{ value: h.value, verified: true }];
    const one = prepare(emptyRecord('x', h.type === 'email' ? { emails: value } : { phones: value }), region);
    const key = h.type === 'email' ? `email:${one.emails[0]?.canonical}` : `phone:${one.phones[0]?.e164}`;
    counts.set(key, Math.max(counts.get(key) ?? 0, Number(h.holders)));
  }
  for (const a of signUp.addresses) counts.set(`address:${a.key}`, Number(row?.get('address') ?? 0));
  for (const d of signUp.devices) counts.set(`device:${d.fingerprint}`, deviceHolders);
  const frequencies: Frequencies = (comparison, value) => {
    const n = counts.get(`${comparison}:${value}`);
    return n === undefined ? null : Math.max(1, n) / population;
  };
  return { frequencies, population };
}

/** What the proof came to: the policy's decision, with the proof customer's score. */
export interface ProofCheck {
  decision: Decision;
  candidate: ScoredCandidate;
}

/**
 * The proof's customer (the one customer verified identifiers of the sign-up point at, and the
 * kind of identifier) weighed by the policy. Locks the customer; `deviceHolders` is how many
 * customers the sign-up's device already has (capped, as the onboarding read it).
 */
export async function checkProofTx(
  tx: ManagedTransaction,
  g: Graph,
  plan: OnboardingPlan,
  proof: { customerId: string; type: 'email' | 'phone' },
  deviceHolders: number,
): Promise<ProofCheck | null> {
  const region = g.policy.defaultPhoneRegion;
  const signUp = prepare(signUpRecord(plan), region);
  // Counted before the customer is locked: the lock is held for the decision only.
  const { frequencies, population } = await frequenciesTx(tx, plan, signUp, deviceHolders, region);
  const onFile = await readOnFileTx(tx, proof.customerId);
  if (!onFile) return null;
  const agreements = compareRecords(signUp, prepare(onFile.record, region));
  const score = scoreAgreements(agreements, MATCH_MODEL, frequencies, population);
  const candidate = { customerId: proof.customerId, score, proof: proof.type, recentAutoLinks: onFile.recent };
  return { decision: decide([candidate], ONBOARDING_POLICY), candidate };
}

/** Counts an auto-link to `customerId` (the policy allows a few a month). */
export async function recordAutoLinkTx(tx: ManagedTransaction, customerId: string): Promise<void> {
  await tx.run(CYPHER.recordLink, { customerId });
}

/** A link the policy let stand: the model's probability for it, so what a threshold would refuse can be counted. */
export interface Link {
  probability: number;
  model_version: string;
}

/** A link the proof asked for and the policy refused: why, in words and kinds, never values. */
export interface Refusal {
  customerId: string;
  reason: NoLinkReason;
  probability: number;
  /** The parts that conflict, in words ("different dates of birth"). */
  conflicts: string[];
  model_version: string;
}

/** The resolution as the policy lets it stand, and the link or the refusal it came to. */
export interface Weighed {
  resolution: Resolution;
  link: Link | null;
  refusal: Refusal | null;
}

/**
 * The resolution as the policy lets it stand: a match on proof is weighed (checkProofTx) and kept,
 * counted as an auto-link; or refused, and then the sign-up becomes a new customer and the proof's
 * customer a possible match (signal `link_refused`) for ops to review, with the refusal.
 */
export async function weighProofTx(
  tx: ManagedTransaction,
  g: Graph,
  plan: OnboardingPlan,
  resolution: Resolution,
  observations: IdentifierObservation[],
  deviceHolders: number,
): Promise<Weighed> {
  const matched = resolution.matchedCustomerId;
  if (!matched) return { resolution, link: null, refusal: null };
  const by = observations.find((o) => o.incomingVerified && o.onFile?.verified && o.onFile.ownerId === matched);
  const proof = { customerId: matched, type: by?.type === 'email' ? ('email' as const) : ('phone' as const) };
  const check = await checkProofTx(tx, g, plan, proof, deviceHolders);
  if (!check) return { resolution, link: null, refusal: null };
  const { score } = check.candidate;
  if (check.decision.outcome === 'linked') {
    await recordAutoLinkTx(tx, matched);
    return { resolution, link: { probability: score.probability, model_version: score.version }, refusal: null };
  }
  const signals = new Set<MatchSignal>(['link_refused']);
  for (const o of observations)
    if (o.onFile?.ownerId === matched)
      signals.add(`${o.incomingVerified && o.onFile.verified ? '' : 'un'}verified_${o.type}`);
  const possibleMatches = [...resolution.possibleMatches, { customer_id: matched, signals: [...signals].sort() }];
  return {
    resolution: {
      ...resolution,
      outcome: 'created',
      matchedCustomerId: null,
      possibleMatches: possibleMatches.sort((x, y) => x.customer_id.localeCompare(y.customer_id)),
    },
    link: null,
    refusal: {
      customerId: matched,
      reason: check.decision.reason,
      probability: score.probability,
      conflicts: score.conflicts.map((c) => c.reason),
      model_version: score.version,
    },
  };
}
