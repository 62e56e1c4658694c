/**
 * Estimating the match model's table (resolution/model.ts) from labelled pairs.
 *
 *   m: from pairs of one person's records, the share of each level among the pairs that both
 *      have the field;
 *   u: from random pairs of two people's records (what two people agree on by chance);
 *   split: for exact levels adjusted by frequency, the share of each level among two people's
 *      pairs that agree exactly (a family email verified by both, or by one);
 *   calibration: a logistic regression of the label on the groups' evidence and their interactions
 *      (model.ts, `INTERACTIONS`) with the prior as an offset, over the candidate pairs blocking
 *      gives (Newton's method; seven parameters).
 *
 * Counts are smoothed with one pseudo-count per level, so that no level is certain or impossible.
 */
import { COMPARISON_NAMES, COMPARISONS, type Agreement, type Comparison } from './compare';
import {
  FEATURE_NAMES,
  GROUP_NAMES,
  INTERACTIONS,
  type Calibration,
  type Feature,
  type LevelWeight,
  type ModelTable,
} from './model';

/** Levels adjusted by the value's frequency (they carry the value they agree on). */
export const FREQUENCY_LEVELS: { [C in Comparison]: readonly (typeof COMPARISONS)[C][number][] } = {
  given_name: ['exact'],
  family_name: ['exact'],
  birth_date: [],
  email: ['exact_verified', 'exact'],
  phone: ['exact_verified', 'exact'],
  address: ['exact'],
  device: ['exact'],
  card: ['fingerprint'],
};

type Counts = Record<Comparison, Map<string, number>>;
const newCounts = (): Counts =>
  Object.fromEntries(COMPARISON_NAMES.map((c) => [c, new Map<string, number>()])) as Counts;

function count(into: Counts, agreements: Agreement[]): void {
  for (const a of agreements) into[a.comparison].set(a.level, (into[a.comparison].get(a.level) ?? 0) + 1);
}

function shares(counts: Map<string, number>, levels: readonly string[]): Map<string, number> {
  const total = levels.reduce((s, l) => s + (counts.get(l) ?? 0), 0) + levels.length;
  return new Map(levels.map((l) => [l, ((counts.get(l) ?? 0) + 1) / total]));
}

/** m, u and split for every level, from one person's pairs, random pairs and two people's exact agreements. */
export function estimateLevels(
  matches: Agreement[][],
  randomPairs: Agreement[][],
  nonMatchExact: Agreement[][],
): ModelTable['levels'] {
  const m = newCounts();
  const u = newCounts();
  const exact = newCounts();
  for (const a of matches) count(m, a);
  for (const a of randomPairs) count(u, a);
  for (const a of nonMatchExact) count(exact, a);
  const levels = {} as Record<Comparison, Record<string, LevelWeight>>;
  for (const c of COMPARISON_NAMES) {
    const all = COMPARISONS[c] as readonly string[];
    const ms = shares(m[c], all);
    const us = shares(u[c], all);
    const tf = FREQUENCY_LEVELS[c] as readonly string[];
    const split = shares(exact[c], tf);
    levels[c] = Object.fromEntries(
      all.map((l) => {
        const w: LevelWeight = { m: ms.get(l) as number, u: us.get(l) as number };
        if (tf.includes(l)) w.split = split.get(l);
        return [l, w];
      }),
    );
  }
  return levels;
}

/** One labelled pair for calibration: its features' bits (model.ts), the prior's log-odds, one person or not. */
export interface CalibrationSample {
  features: Record<Feature, number>;
  prior: number;
  y: 0 | 1;
}

/** Solves the small linear system a·x = b (Gaussian elimination with partial pivoting). */
function solve(a: number[][], b: number[]): number[] | null {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i] as number]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[pivot]![c]!)) pivot = r;
    if (Math.abs(m[pivot]![c]!) < 1e-12) return null;
    [m[c], m[pivot]] = [m[pivot]!, m[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}

/**
 * A logistic regression of one person on the evidence, with the prior as an offset:
 * logit = prior + intercept + Σ weight_f · ln2 · bits_f over the features (each group's bits and each
 * interaction's). Newton's method with step halving, from the uncalibrated model (every group's
 * weight 1, every interaction's 0, intercept 0), with a small ridge pulling each weight back there.
 * An interaction may only lower the score: one fitted above 0 is fixed at 0 and the rest fitted again.
 */
export function fitCalibration(samples: CalibrationSample[]): Calibration {
  const fixed = new Set<Feature>();
  for (;;) {
    const fit = fitWith(samples, fixed);
    const raised = INTERACTIONS.filter((f) => !fixed.has(f) && fit.weights[f] > 0);
    if (raised.length === 0) return fit;
    for (const f of raised) fixed.add(f);
  }
}

/** fitCalibration with the `fixed` features left out (their weight stays 0). */
function fitWith(samples: CalibrationSample[], fixed: Set<Feature>): Calibration {
  const ridge = 1e-2;
  const features = samples.map((s) => [1, ...FEATURE_NAMES.map((f) => (fixed.has(f) ? 0 : s.features[f] * Math.LN2))]);
  const k = FEATURE_NAMES.length + 1;
  const start = [0, ...FEATURE_NAMES.map((f) => ((GROUP_NAMES as readonly string[]).includes(f) ? 1 : 0))];
  const loss = (theta: number[]): number => {
    let l = theta.slice(1).reduce((a, w, j) => a + (ridge / 2) * (w - start[j + 1]!) ** 2, 0);
    samples.forEach((s, i) => {
      const z = s.prior + features[i]!.reduce((a, x, j) => a + x * theta[j]!, 0);
      l += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - s.y * z;
    });
    return l;
  };
  let theta = [...start];
  let current = loss(theta);
  for (let iteration = 0; iteration < 100; iteration++) {
    const g = theta.map((w, j) => (j === 0 ? 0 : ridge * (w - start[j]!)));
    const h = theta.map((_, r) => theta.map((__, c) => (r === c && r > 0 ? ridge : r === c ? 1e-9 : 0)));
    samples.forEach((s, i) => {
      const x = features[i]!;
      const p = 1 / (1 + Math.exp(-(s.prior + x.reduce((a, v, j) => a + v * theta[j]!, 0))));
      const w = p * (1 - p);
      for (let r = 0; r < k; r++) {
        g[r]! += (p - s.y) * x[r]!;
        for (let c = 0; c < k; c++) h[r]![c]! += w * x[r]! * x[c]!;
      }
    });
    const d = solve(h, g);
    if (!d) break;
    let step = 1;
    let next = theta.map((t, j) => t - d[j]!);
    let value = loss(next);
    while (value > current && step > 1e-6) {
      step /= 2;
      next = theta.map((t, j) => t - step * d[j]!);
      value = loss(next);
    }
    if (value > current) break;
    const done = current - value < 1e-10 * Math.max(1, Math.abs(current));
    theta = next;
    current = value;
    if (done) break;
  }
  return {
    intercept: theta[0]!,
    weights: Object.fromEntries(FEATURE_NAMES.map((f, j) => [f, theta[j + 1]!])) as Calibration['weights'],
  };
}
