import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../scripts/random';
import type { Agreement } from './compare';
import { estimateLevels, fitCalibration, type CalibrationSample } from './estimate';

const birth = (level: Agreement<'birth_date'>['level']): Agreement => ({
  comparison: 'birth_date',
  level,
  value: null,
});

describe('estimating the table', () => {
  it('takes m from one person’s pairs and u from random pairs, smoothed', () => {
    const matches = [...Array(97).fill([birth('exact')]), ...Array(3).fill([birth('typo')])] as Agreement[][];
    const random = [...Array(5).fill([birth('exact')]), ...Array(995).fill([birth('different')])] as Agreement[][];
    const levels = estimateLevels(matches, random, []);
    expect(levels.birth_date.exact!.m).toBeCloseTo(98 / 106, 6);
    expect(levels.birth_date.typo!.m).toBeCloseTo(4 / 106, 6);
    expect(levels.birth_date.different!.u).toBeCloseTo(996 / 1006, 6);
    expect(levels.birth_date.swap!.m).toBeGreaterThan(0);
  });

  it('splits exact agreements of two people by level', () => {
    const exact = [
      ...Array(8).fill([{ comparison: 'email', level: 'exact', value: 'x' }]),
      ...Array(2).fill([{ comparison: 'email', level: 'exact_verified', value: 'x' }]),
    ] as Agreement[][];
    const levels = estimateLevels([], [], exact);
    expect(levels.email.exact!.split).toBeCloseTo(9 / 12, 6);
    expect(levels.email.exact_verified!.split).toBeCloseTo(3 / 12, 6);
    expect(levels.email.local_close!.split).toBeUndefined();
  });

  it('recovers a logistic calibration from its samples, interactions included', () => {
    const rand = mulberry32(7);
    const samples = Array.from({ length: 20_000 }, (): CalibrationSample => {
      const household = rand() * 20 - 10;
      const conflict = rand() < 0.3;
      const features = {
        household,
        person: rand() * 20 - 10,
        accounts: rand() * 20 - 10,
        household_conflict: conflict ? Math.max(0, household) : 0,
        household_unattested: 0,
        household_both_conflict: 0,
      };
      const z =
        -2 +
        Math.LN2 *
          (0.3 * features.household +
            1.2 * features.person +
            0.8 * features.accounts -
            0.25 * features.household_conflict) -
        1.5;
      return { features, prior: -2, y: rand() < 1 / (1 + Math.exp(-z)) ? 1 : 0 };
    });
    const { weights, intercept } = fitCalibration(samples);
    expect(weights.household).toBeCloseTo(0.3, 1);
    expect(weights.person).toBeCloseTo(1.2, 1);
    expect(weights.accounts).toBeCloseTo(0.8, 1);
    expect(weights.household_conflict).toBeCloseTo(-0.25, 1);
    // A feature never seen is pulled to 0 (an interaction's neutral weight), not to 1.
    expect(weights.household_unattested).toBeCloseTo(0, 6);
    expect(intercept).toBeCloseTo(-1.5, 0);
  });

  it('never lets an interaction raise the score: one that would is fixed at 0', () => {
    const rand = mulberry32(11);
    const samples = Array.from({ length: 10_000 }, (): CalibrationSample => {
      const household = rand() * 20 - 5;
      const unattested = rand() < 0.5 ? Math.max(0, household) : 0;
      const features = {
        household,
        person: rand() * 20 - 10,
        accounts: 0,
        household_conflict: 0,
        household_unattested: unattested,
        household_both_conflict: 0,
      };
      const z = -2 + Math.LN2 * (0.5 * household + features.person + 0.4 * unattested);
      return { features, prior: -2, y: rand() < 1 / (1 + Math.exp(-z)) ? 1 : 0 };
    });
    const { weights } = fitCalibration(samples);
    expect(weights.household_unattested).toBe(0);
    expect(weights.household).toBeGreaterThan(0.5);
  });
});
