/**
 * The seeds' policy, kept exactly: a sign-up resolves to an existing customer only on proof, and
 * everything else is a suggestion that needs both customers' consent to merge.
 *
 * Proof: an identifier the sign-up verified that is verified on exactly one customer's record and
 * matched directly (the sign-up and that customer hold it; never through a third record), with no
 * conflicting evidence (a different given name or date of birth where both are known), a match
 * probability of at least `autoLinkProbability`, and fewer than `autoLinksPerMonth` auto-links to
 * that customer in the last 30 days (more sends the next to review: a squatter or a shared
 * account links many). Two customers with such proof is a conflict: nobody is linked.
 */
import type { MatchScore } from './model';

export interface Policy {
  autoLinkProbability: number;
  suggestProbability: number;
  reviewProbability: number;
  maxSuggestions: number;
  autoLinksPerMonth: number;
}

export const POLICY: Readonly<Policy> = Object.freeze({
  /** An auto-link needs at least this probability as well as proof. */
  autoLinkProbability: 0.99,
  /** A candidate this likely is a possible match. */
  suggestProbability: 0.05,
  /** A possible match this likely (without an auto-link) asks ops to review. */
  reviewProbability: 0.5,
  /** Possible matches listed, most likely first. */
  maxSuggestions: 5,
  /** This many auto-links to one customer in 30 days send the next to review. */
  autoLinksPerMonth: 3,
});

export interface ScoredCandidate {
  customerId: string;
  score: MatchScore;
  /** The sign-up and this customer both verified one identifier of the sign-up, and only this customer holds it. */
  proof: 'email' | 'phone' | null;
  /** Auto-links to this customer in the last 30 days. */
  recentAutoLinks: number;
}

/** Why a sign-up with proof was not linked (ops watch their counts: temporal/metrics.ts). */
export const LINK_REFUSALS = [
  'proof_conflicts',
  'proof_on_two_customers',
  'probability_below_threshold',
  'too_many_recent_links',
] as const;
export type LinkRefusal = (typeof LINK_REFUSALS)[number];

export type NoLinkReason = 'no_proof' | LinkRefusal;

export type Decision =
  | { outcome: 'linked'; customerId: string; score: MatchScore; possibleMatches: ScoredCandidate[] }
  | { outcome: 'created'; reason: NoLinkReason; review: boolean; possibleMatches: ScoredCandidate[] };

/** The most likely first, by the log-odds (two strong candidates both round to a probability of 1). */
const byProbability = (a: ScoredCandidate, b: ScoredCandidate): number =>
  b.score.logOdds - a.score.logOdds || a.customerId.localeCompare(b.customerId);

/** The decision for one sign-up, from its scored candidates. */
export function decide(candidates: ScoredCandidate[], policy: Readonly<Policy> = POLICY): Decision {
  const ranked = [...candidates].sort(byProbability);
  const proven = ranked.filter((c) => c.proof !== null);
  const listed = (except?: string): ScoredCandidate[] =>
    ranked
      .filter((c) => c.customerId !== except && c.score.probability >= policy.suggestProbability)
      .slice(0, policy.maxSuggestions);
  const created = (reason: NoLinkReason): Decision => {
    const possibleMatches = listed();
    const review =
      possibleMatches.some((c) => c.score.probability >= policy.reviewProbability) || reason !== 'no_proof';
    return { outcome: 'created', reason, review, possibleMatches };
  };
  if (proven.length === 0) return created('no_proof');
  if (proven.length > 1) return created('proof_on_two_customers');
  const [only] = proven as [ScoredCandidate];
  if (only.score.conflicts.length > 0) return created('proof_conflicts');
  if (only.score.probability < policy.autoLinkProbability) return created('probability_below_threshold');
  if (only.recentAutoLinks >= policy.autoLinksPerMonth) return created('too_many_recent_links');
  return {
    outcome: 'linked',
    customerId: only.customerId,
    score: only.score,
    possibleMatches: listed(only.customerId),
  };
}
