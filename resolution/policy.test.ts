import { describe, expect, it } from 'vitest';
import type { MatchPart, MatchScore } from './model';
import { BUSINESS_METRICS } from '../temporal/metrics';
import { decide, LINK_REFUSALS, POLICY, type ScoredCandidate } from './policy';

const conflict: MatchPart = {
  comparison: 'birth_date',
  level: 'different',
  bits: -5,
  reason: 'different dates of birth',
};
const scored = (
  customerId: string,
  probability: number,
  over: Partial<ScoredCandidate> = {},
  conflicts: MatchPart[] = [],
) => ({
  customerId,
  score: {
    probability,
    logOdds: Math.log(probability / (1 - probability)),
    bits: 0,
    parts: conflicts,
    conflicts,
    version: 'test',
  } satisfies MatchScore,
  proof: null,
  recentAutoLinks: 0,
  ...over,
});

describe('the resolution policy', () => {
  it('links on proof with a high probability, and lists the others', () => {
    const d = decide([scored('b', 0.3), scored('a', 0.999, { proof: 'email' }), scored('c', 0.01)]);
    expect(d).toMatchObject({ outcome: 'linked', customerId: 'a' });
    expect(d.possibleMatches.map((c) => c.customerId)).toEqual(['b']);
  });

  it('never links without proof, however likely: it suggests, for review', () => {
    const d = decide([scored('a', 0.9999), scored('b', 0.2)]);
    expect(d).toMatchObject({ outcome: 'created', reason: 'no_proof', review: true });
    expect(d.possibleMatches.map((c) => c.customerId)).toEqual(['a', 'b']);
  });

  it('does not link on proof that conflicts (a different date of birth)', () => {
    const d = decide([scored('a', 0.999, { proof: 'phone' }, [conflict])]);
    expect(d).toMatchObject({ outcome: 'created', reason: 'proof_conflicts', review: true });
  });

  it('does not link when proof points at two customers', () => {
    const d = decide([scored('a', 0.999, { proof: 'email' }), scored('b', 0.999, { proof: 'phone' })]);
    expect(d).toMatchObject({ outcome: 'created', reason: 'proof_on_two_customers' });
    expect(d.possibleMatches).toHaveLength(2);
  });

  it('does not link below the probability the policy asks', () => {
    const d = decide([scored('a', POLICY.autoLinkProbability - 0.001, { proof: 'email' })]);
    expect(d).toMatchObject({ outcome: 'created', reason: 'probability_below_threshold' });
  });

  it('sends the next link to a customer linked too often this month to review', () => {
    const d = decide([scored('a', 0.999, { proof: 'email', recentAutoLinks: POLICY.autoLinksPerMonth })]);
    expect(d).toMatchObject({ outcome: 'created', reason: 'too_many_recent_links', review: true });
  });

  it('lists at most five possible matches, most likely first, above the suggestion threshold', () => {
    const many = Array.from({ length: 9 }, (_, i) => scored(`c${i}`, 0.04 + i * 0.1));
    const d = decide(many);
    expect(d.possibleMatches.map((c) => c.customerId)).toEqual(['c8', 'c7', 'c6', 'c5', 'c4']);
    expect(decide([scored('a', POLICY.suggestProbability / 2)]).possibleMatches).toEqual([]);
  });
});

describe('the refusals ops count', () => {
  it('are every reason a sign-up with proof goes unlinked, each a value of the metric', () => {
    expect([...BUSINESS_METRICS.onboardingLinksRefused.values.reason].sort()).toEqual([...LINK_REFUSALS].sort());
  });
});
