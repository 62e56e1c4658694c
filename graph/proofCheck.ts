/**
 * The onboarding's resolution weighed by the policy (resolution/policy.ts) before it is written:
 * the one customer a verified identifier points at (the proof) and every possible match are scored
 * against the sign-up with the match model (resolution/model.ts, the table in resolution/weights.ts).
 * The proof's customer is linked only with no conflict (a different date of birth or given name
 * where both are known), a probability of at least the policy's 0.99 (a verified email alone scores
 * about 0.93: families share one; with the same name or birth date on both sides, over 0.999) and
 * fewer than the policy's auto-links to it in the last 30 days; the possible matches are ranked,
 * most likely first.
 *
 * Read inside the onboarding's transaction, the proof's customer locked: two onboardings racing
 * to link to one customer count each other's links. Values are read here and never leave: the
 * scores are probabilities, the decision names a reason, conflicts are words.
 */
import type { ManagedTransaction } from 'neo4j-driver';
import { compareRecords, prepare } from '../resolution/compare';
import { scoreAgreements, type MatchScore } from '../resolution/model';
import { decide, POLICY, type NoLinkReason } from '../resolution/policy';
import type { ResolutionRecord } from '../resolution/record';
import { MATCH_MODEL } from '../resolution/weights';
import { frequenciesTx, lockedRecordTx, recordsTx, signUpRecord } from './customerRecords';
import { heldKeys, keyCandidatesTx, personKeys } from './matchKeys';
import type { Graph } from './graph';
import type { OnboardingPlan } from './onboardingRequest';
import type { IdentifierObservation, MatchSignal, Resolution } from './resolution';

const CYPHER = {
  recordLink: `
    MATCH (c:Customer {id: $customerId})
    SET c.auto_linked_at = [t IN coalesce(c.auto_linked_at, [])
                            WHERE t > datetime.transaction() - duration('P30D')] + datetime.transaction()`,
} as const;

/** Counts an auto-link to `customerId` (the policy allows a few a month). */
async function recordAutoLinkTx(tx: ManagedTransaction, customerId: string): Promise<void> {
  await tx.run(CYPHER.recordLink, { customerId });
}

/** A link the policy let stand, and the model's probability for it. */
export interface Link {
  probability: number;
  model_version: string;
}

/** A link the proof asked for and the policy refused: why, in words and kinds, never values. */
export interface Refusal {
  customerId: string;
  reason: NoLinkReason;
  /** The parts that conflict, in words ("different dates of birth"). */
  conflicts: string[];
}

/** A possible match with the model's probability that it is the sign-up's person. */
export interface RankedMatch {
  customer_id: string;
  signals: MatchSignal[];
  probability: number;
  model_version: string;
}

/** The resolution as the policy lets it stand: the link or the refusal, the possible matches ranked. */
export interface Weighed {
  resolution: Resolution;
  link: Link | null;
  refusal: Refusal | null;
  /** The resolution's possible matches, the most likely first (ties by customer id). */
  ranked: RankedMatch[];
  /** The sign-up's person and name keys (graph/matchKeys.ts): a customer the onboarding creates holds them. */
  keys: string[];
}

/**
 * The resolution as the policy lets it stand. A match on proof is weighed and kept, counted as an
 * auto-link; or refused, and then the sign-up becomes a new customer and the proof's customer a
 * possible match (signal `link_refused`) for ops to review, with the refusal. Every possible match
 * is scored, and so are the customers the sign-up's person keys name (graph/matchKeys.ts): those
 * the model finds likely (the policy's suggestion threshold, at most its number of suggestions)
 * become possible matches with the signal `similar_person`. `deviceHolders` is how many customers
 * the sign-up's device already has (capped, as the onboarding read it).
 */
export async function weighProofTx(
  tx: ManagedTransaction,
  g: Graph,
  plan: OnboardingPlan,
  resolved: Resolution,
  observations: IdentifierObservation[],
  deviceHolders: number,
): Promise<Weighed> {
  const region = g.policy.defaultPhoneRegion;
  const signUp = prepare(signUpRecord(plan), region);
  const { frequencies, population } = await frequenciesTx(tx, plan, signUp, deviceHolders, region);
  const scoreOf = (record: ResolutionRecord): MatchScore =>
    scoreAgreements(compareRecords(signUp, prepare(record, region)), MATCH_MODEL, frequencies, population);

  // Everything but the proof's customer is read and scored first, unlocked: Neo4j holds a lock to
  // the commit, so the proof's customer is locked as late as the decision allows.
  const matched = resolved.matchedCustomerId;
  const candidates = await keyCandidatesTx(tx, personKeys(signUp));
  const known = new Set([...resolved.possibleMatches.map((m) => m.customer_id), ...(matched ? [matched] : [])]);
  const byKeys = candidates.filter((id) => !known.has(id));
  const others = resolved.possibleMatches.map((m) => m.customer_id).filter((id) => id !== matched);
  const scores = new Map<string, MatchScore>();
  for (const record of await recordsTx(tx, [...others, ...byKeys])) scores.set(record.id, scoreOf(record));
  const proof = await proofTx(tx, resolved, observations, scoreOf);
  if (matched && proof.score) scores.set(matched, proof.score);
  const { resolution } = proof;
  const likelihood = (id: string): number => scores.get(id)?.logOdds ?? -Infinity;
  const similar = byKeys
    .filter((id) => (scores.get(id)?.probability ?? 0) >= POLICY.suggestProbability)
    .sort((x, y) => likelihood(y) - likelihood(x) || x.localeCompare(y))
    .slice(0, POLICY.maxSuggestions)
    .map((customer_id) => ({ customer_id, signals: ['similar_person' as const] }));
  const possibleMatches = [...resolution.possibleMatches, ...similar];
  const ranked = possibleMatches.flatMap((m): RankedMatch[] => {
    const score = scores.get(m.customer_id);
    return score ? [{ ...m, probability: score.probability, model_version: score.version }] : [];
  });
  // By the log-odds: two strong matches both round to a probability of 1.
  ranked.sort(
    (x, y) => likelihood(y.customer_id) - likelihood(x.customer_id) || x.customer_id.localeCompare(y.customer_id),
  );
  return {
    resolution: { ...resolution, possibleMatches },
    link: proof.link,
    refusal: proof.refusal,
    ranked,
    keys: heldKeys(signUp),
  };
}

/** The proof's customer, locked, scored and decided on: linked (and counted), or refused. */
async function proofTx(
  tx: ManagedTransaction,
  resolved: Resolution,
  observations: IdentifierObservation[],
  scoreOf: (record: ResolutionRecord) => MatchScore,
): Promise<{ resolution: Resolution; score: MatchScore | null; link: Link | null; refusal: Refusal | null }> {
  const matched = resolved.matchedCustomerId;
  const onFile = matched ? await lockedRecordTx(tx, matched) : null;
  if (!matched || !onFile) return { resolution: resolved, score: null, link: null, refusal: null };
  const score = scoreOf(onFile.record);
  const by = observations.find((o) => o.incomingVerified && o.onFile?.verified && o.onFile.ownerId === matched);
  const proof = by?.type === 'email' ? ('email' as const) : ('phone' as const);
  const candidate = { customerId: matched, score, proof, recentAutoLinks: onFile.recent };
  const decision = decide([candidate]);
  if (decision.outcome === 'linked') {
    await recordAutoLinkTx(tx, matched);
    return {
      resolution: resolved,
      score,
      link: { probability: score.probability, model_version: score.version },
      refusal: null,
    };
  }
  const refusal = { customerId: matched, reason: decision.reason, conflicts: score.conflicts.map((c) => c.reason) };
  return { resolution: refused(resolved, observations, matched), score, link: null, refusal };
}

/** The resolution with its match refused: a new customer, the proof's customer a possible match. */
function refused(resolution: Resolution, observations: IdentifierObservation[], matched: string): Resolution {
  const signals = new Set<MatchSignal>(['link_refused']);
  for (const o of observations)
    if (o.onFile?.ownerId === matched)
      signals.add(`${o.incomingVerified && o.onFile.verified ? '' : 'un'}verified_${o.type}`);
  const possibleMatches = [...resolution.possibleMatches, { customer_id: matched, signals: [...signals].sort() }];
  return {
    ...resolution,
    outcome: 'created',
    matchedCustomerId: null,
    possibleMatches: possibleMatches.sort((x, y) => x.customer_id.localeCompare(y.customer_id)),
  };
}
