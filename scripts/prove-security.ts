/**
 * Takes out each defence of docs/security.md once and shows that its test then fails:
 *   npm run prove:security                  every mutation (test/mutations/), one after another
 *   npm run prove:security -- --only <id>   one (or several: --only a,b)
 *   npm run prove:security -- --section <name>   those of one manifest (access, graph, …: index.ts)
 *   npm run prove:security -- --write       writes docs/security-proof.md from the results kept (with
 *                                           --only or --section: after running those)
 *   npm run prove:security -- --missing     lists the table's lines no mutation proves yet
 * Each edit is made in a scratch copy of the working tree (the repository is never touched), the
 * named test runs there (`vitest run --project <unit|workflows|integration>`; integration tests
 * use the local stack, which must be up: `npm run stack:up`), and the result is kept, keyed by the
 * mutation's content, in test-results/security-proof.json. A mutation is
 *   caught    the test failed (its first error is shown);
 *   SURVIVED  the test passed with the defence gone: the line of the table is not proven;
 *   BROKEN    no test ran (the edit does not compile, a title matches nothing, setup failed).
 * Exits 1 when any mutation run survived or broke.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../config/env';
import { MUTATIONS, SECTIONS } from '../test/mutations/index';
import type { Mutation } from '../test/mutations/mutation';
import { readThreatTable, threatCell } from '../test/mutations/table';

type Outcome = 'caught' | 'SURVIVED' | 'BROKEN';
interface Result {
  id: string;
  key: string;
  outcome: Outcome;
  evidence: string;
  seconds: number;
  at: string;
}

const RESULTS = path.join(repoRoot, 'test-results', 'security-proof.json');
const SCRATCH = path.join(tmpdir(), `persona-prove-security-${process.pid}`);
/** Runs from several shells take turns: the integration tests share one stack. */
const LOCK = path.join(tmpdir(), 'persona-prove-security.lock');
const SKIP = new Set(['node_modules', '.git', '.stack', 'test-results', 'coverage', 'dist', '.hypothesis']);
/** A run longer than this is stopped and counted as broken. */
const RUN_LIMIT_MS = 15 * 60_000;

/** Colour codes vitest may still print. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

const keyOf = (m: Mutation): string =>
  createHash('sha256')
    .update(JSON.stringify([m.file, m.find, m.replace, m.also ?? [], m.test, m.title ?? '']))
    .digest('hex')
    .slice(0, 16);

const projectOf = (test: string): string =>
  test.startsWith('test/integration/') ? 'integration' : test.startsWith('test/workflows/') ? 'workflows' : 'unit';

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function freshScratch(): void {
  rmSync(SCRATCH, { recursive: true, force: true });
  cpSync(repoRoot, SCRATCH, {
    recursive: true,
    filter: (src) => !SKIP.has(path.basename(src)) || path.dirname(src) !== repoRoot,
  });
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(SCRATCH, 'node_modules'));
}

/** The first lines that say why the run failed: an assertion, an error, a timeout. */
function evidenceOf(output: string): string {
  const lines = output.split('\n').map((l) => l.trim());
  const start = lines.findIndex((l) => /^(FAIL|×|❯.*\.test\.ts)/.test(l) && /\.test\.ts/.test(l));
  const found = lines
    .slice(Math.max(start, 0))
    .find((l) => /(AssertionError|Error:|expected |Test timed out|toBe|toEqual|toThrow)/.test(l));
  return (found ?? lines.find((l) => /failed/.test(l)) ?? '').slice(0, 300);
}

function run(m: Mutation): Result {
  const started = Date.now();
  const base = { id: m.id, key: keyOf(m), at: new Date().toISOString() };
  freshScratch();
  for (const edit of [m, ...(m.also ?? [])]) {
    const target = path.join(SCRATCH, edit.file);
    const source = existsSync(target) ? readFileSync(target, 'utf8') : '';
    const count = source.split(edit.find).length - 1;
    if (count !== 1) {
      const evidence = `the text to edit occurs ${count} times in ${edit.file}`;
      return { ...base, outcome: 'BROKEN', evidence, seconds: 0 };
    }
    writeFileSync(
      target,
      source.replace(edit.find, () => edit.replace),
    );
  }
  const project = projectOf(m.test);
  // Only the integration tests share a stack; the others run beside them.
  const args = [
    project === 'integration' ? LOCK : `${SCRATCH}.lock`,
    'npx',
    'vitest',
    'run',
    '--project',
    project,
    m.test,
  ];
  if (m.title) args.push('-t', escapeRegExp(m.title.split('…')[0]?.trim() ?? ''));
  const r = spawnSync('flock', args, {
    cwd: SCRATCH,
    encoding: 'utf8',
    timeout: RUN_LIMIT_MS,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, PERSONA_STACK_DIR: path.join(repoRoot, '.stack'), NO_COLOR: '1' },
  });
  const output = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.replace(ANSI, '');
  const seconds = Math.round((Date.now() - started) / 1000);
  const failed = Number(/Tests\s+(\d+) failed/.exec(output)?.[1] ?? 0);
  const passed = Number(/Tests\s+(?:\d+ failed \| )?(\d+) passed/.exec(output)?.[1] ?? 0);
  if (r.status !== 0 && failed > 0) return { ...base, outcome: 'caught', evidence: evidenceOf(output), seconds };
  if (r.status === 0 && passed > 0) return { ...base, outcome: 'SURVIVED', evidence: `${passed} passed`, seconds };
  const why = r.error ? String(r.error) : evidenceOf(output) || output.trim().split('\n').slice(-3).join(' ');
  return { ...base, outcome: 'BROKEN', evidence: why.slice(0, 300), seconds };
}

/** Results are re-read before each write: another shell may have added its own. */
function loadResults(): Record<string, Result> {
  return existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, Result>) : {};
}

function missing(): string[] {
  const proven = new Set(MUTATIONS.map((m) => m.threat));
  return readThreatTable()
    .map(threatCell)
    .filter((cell) => ![...proven].some((t) => cell.startsWith(t)));
}

const cellText = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
/** A path of this machine's temporary folder, as a report shows it: `<tmp>/…`. */
const TMP_PATH = new RegExp(`${escapeRegExp(tmpdir())}/[^\\s'"]*`, 'g');

/**
 * The outcome and first error each mutation has in the report as committed, by the rest of its row:
 * a run recorded there stands (results are kept on the machine that ran them only) until the
 * mutation's row changes or it is run again.
 */
function reportedOutcomes(): Map<string, [outcome: string, evidence: string]> {
  const file = path.join(repoRoot, 'docs', 'security-proof.md');
  const rows = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
  const byRow = new Map<string, [string, string]>();
  for (const row of rows.filter((r) => r.startsWith('| `'))) {
    const cells = row.slice(2, -2).split(' | ');
    if (cells.length === 6) byRow.set(cells.slice(0, 4).join(' | '), [cells[4] as string, cells[5] as string]);
  }
  return byRow;
}

function writeReport(results: Record<string, Result>): void {
  const current = (m: Mutation): Result | undefined => {
    const r = results[m.id];
    return r && r.key === keyOf(m) ? r : undefined;
  };
  const reported = reportedOutcomes();
  const outcomes = new Map<string, Outcome | undefined>();
  const rows = MUTATIONS.map((m) => {
    const r = current(m);
    const cells = [`\`${m.id}\``, cellText(m.threat), `${cellText(m.removes)} (\`${m.file}\`)`, `\`${m.test}\``];
    const before = r ? undefined : reported.get(cells.join(' | '));
    const outcome = r ? `${r.outcome} (${r.at.slice(0, 10)}, ${r.seconds} s)` : (before?.[0] ?? 'not run');
    outcomes.set(m.id, r?.outcome ?? (before ? (before[0].split(' ')[0] as Outcome) : undefined));
    const evidence = r ? cellText(r.evidence.replace(TMP_PATH, '<tmp>/…')) : (before?.[1] ?? '');
    return `| ${[...cells, outcome, evidence].join(' | ')} |`;
  });
  const count = (o: Outcome | undefined) => MUTATIONS.filter((m) => outcomes.get(m.id) === o).length;
  const lines = readThreatTable().length;
  const text = [
    '# The threat table, proven by taking each defence out',
    '',
    'Each line of docs/security.md has at least one mutation (test/mutations/): an exact edit that',
    'takes its defence out. `npm run prove:security` makes each edit in a scratch copy of the',
    'repository and runs the test the line names; the test must fail. This file is written by',
    '`npm run prove:security -- --write` from the results of the runs (a row keeps its outcome until',
    'its mutation changes or runs again); a mutation edited since its run shows as "not run". Each',
    'outcome carries the date of its run and how long it took.',
    '',
    `${MUTATIONS.length} mutations for the ${lines} lines of the table: ${count('caught')} caught, ` +
      `${count('SURVIVED')} survived, ${count('BROKEN')} broke, ${count(undefined)} not run.`,
    '',
    '| mutation | line of the table | what is taken out | test | outcome | first error |',
    '| -------- | ----------------- | ----------------- | ---- | ------- | ----------- |',
    ...rows,
    '',
  ].join('\n');
  writeFileSync(path.join(repoRoot, 'docs', 'security-proof.md'), text);
}

function main(args: string[]): number {
  if (args.includes('--missing')) {
    const left = missing();
    for (const cell of left) console.log(`- ${cell.slice(0, 110)}`);
    console.log(`[prove] ${left.length} lines of the threat table have no mutation`);
    return 0;
  }
  if (args.includes('--write') && !args.includes('--only') && !args.includes('--section')) {
    writeReport(loadResults());
    return 0;
  }
  const only = args[args.indexOf('--only') + 1]?.split(',');
  const section = args.includes('--section') ? args[args.indexOf('--section') + 1] : undefined;
  const chosen = MUTATIONS.filter(
    (m) => (!args.includes('--only') || only?.includes(m.id)) && (!section || (SECTIONS[section] ?? []).includes(m)),
  );
  let bad = 0;
  console.log(`[prove] ${chosen.length} mutations; scratch copy in ${SCRATCH}`);
  chosen.forEach((m, i) => {
    const r = run(m);
    mkdirSync(path.dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, JSON.stringify({ ...loadResults(), [m.id]: r }, null, 2));
    if (r.outcome !== 'caught') bad += 1;
    console.log(`[prove] ${i + 1}/${chosen.length} ${r.outcome.padEnd(8)} ${m.id} (${r.seconds} s): ${r.evidence}`);
  });
  rmSync(SCRATCH, { recursive: true, force: true });
  rmSync(`${SCRATCH}.lock`, { force: true });
  if (args.includes('--write')) writeReport(loadResults());
  console.log(`[prove] ${chosen.length - bad} caught, ${bad} survived or broke`);
  return bad > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
