import { describe, expect, it } from 'vitest';
import { checkTable } from '../../resolution/model';
import { MATCH_MODEL } from '../../resolution/weights';
import { generateHouseholds } from './households';
import { evaluate, joinedCalibration, misses, prepareSet, POLICY, wrongAutoLinks } from './offline';

/**
 * The committed table on a household set it was not fitted on (seed 3): the guardrails that must
 * hold whatever the figures' fine print — no wrong auto-link at all, none on the adversarial slice,
 * never more candidates than the caps allow.
 */
describe('the committed match model, offline', () => {
  const set = prepareSet({ ...generateHouseholds({ seed: 3, households: 1500, signUps: 1500 }), name: 'households-3' });
  const figures = evaluate(set, MATCH_MODEL);

  it('is a complete table', () => {
    expect(() => checkTable(MATCH_MODEL)).not.toThrow();
  });

  it('auto-links only the right customer, and none on the adversarial slice', () => {
    expect(figures.autoLinks).toBeGreaterThan(100);
    expect(figures.autoLinkPrecision).toBe(1);
    expect(figures.adversarialSignUps).toBeGreaterThan(50);
    expect(figures.adversarialAutoLinks).toBe(0);
  });

  it('says which sets a table joins two people on, so that the fit does not write it', () => {
    expect(wrongAutoLinks([figures])).toEqual([]);
    const joined = { ...figures, autoLinks: 1045, autoLinkPrecision: 1044 / 1045, adversarialAutoLinks: 1 };
    expect(wrongAutoLinks([figures, joined])).toEqual(['households-3: 1 wrong auto-link, 1 on the adversarial slice']);
  });

  it('lists the right customer in the top 3 for nearly every returning person, and stays calibrated', () => {
    expect(figures.recallAt[3]).toBeGreaterThan(0.98);
    expect(figures.calibrationError).toBeLessThan(0.02);
    expect(figures.candidatesP99).toBeLessThanOrEqual(200);
  });

  it('names every returning person it misses at 3, and why', () => {
    const missed = misses(set, MATCH_MODEL);
    expect(missed.length).toBe(Math.round(figures.returning * (1 - figures.recallAt[3])));
    expect(missed.length).toBeGreaterThan(0);
    for (const m of missed) {
      expect(m.parts.length).toBeGreaterThan(0);
      if (m.kind === 'below_suggestion') expect(m.probability).toBeLessThan(POLICY.suggestProbability);
      if (m.kind === 'outranked') expect(m.probability).toBeGreaterThanOrEqual(POLICY.suggestProbability);
    }
  });

  it('stays calibrated against earlier sign-ups, as the api meets them', () => {
    const joined = joinedCalibration(set, MATCH_MODEL);
    // Sign-ups that return more than once meet their own earlier sign-up: some pairs are one person.
    expect(joined.onePerson).toBeGreaterThan(10);
    expect(joined.pairs).toBeGreaterThan(joined.onePerson);
    expect(joined.error).toBeLessThan(0.02);
  });
});
