/**
 * The read-path benchmark: what an agent waits for, over the same customer ids, through every
 * way in — the raw Cypher floor, gRPC and REST through one api process — in one run.
 *
 *   npm run bench:context -- [--workloads uniform,payment,mixed] [--targets floor,grpc,rest[,transport]]
 *                            [--clients 1,4,16] [--seconds 15] [--warmup 3] [--sample 20000]
 *                            [--zipf 1.1] [--seed 7] [--batch 50] [--write-rate 5]
 *                            [--grpc 127.0.0.1:50051 --rest http://127.0.0.1:8080]
 *                            [--ghz-out <dir>] [--ghz <path to ghz>] [--cpu-prof]
 *
 * Targets: `floor` runs what the api runs on a cache miss (graph/context.ts readCustomerSnapshot,
 * for context and checkout alike) through neo4j-driver, a session per read like the api's; `grpc`
 * calls GetCustomerContext and GetCheckoutOptions; `rest` GETs /context and /checkout-options;
 * `transport` (not by default) adds gRPC Health/Check and REST /healthz over the uniform workload:
 * the hop with no read behind it.
 *
 * Workloads:
 *   uniform  one context read per call, random customers (any status), each read once per pass;
 *   payment  customers drawn from a Zipf distribution (exponent --zipf) over a sample of active
 *            customers with an active payment method, ranked in a seeded random order; per payment a
 *            context read by "Cerebrum", one by "Chimera" and a checkout-options read for the
 *            customer's device, the three at once. Each read's latency is recorded on its own, and the
 *            payment's (all three answered) too;
 *   mixed    the payment workload, and each payment's outcome (succeeded 85 %, declined 10 %,
 *            refunded 5 %) recorded through the interaction ingestion: buffered per client and sent
 *            in batches of --batch (REST POST /api/v1/interactions for `rest` and `floor`, gRPC
 *            RecordInteractions for `grpc`), so LTV and last_used move with every payment; beside
 *            it one background writer, --write-rate writes a second on Zipf-drawn customers of the
 *            same sample: 80 % device trust updates (PUT /devices/{id}/trust-score or
 *            UpdateDeviceTrustScore), 20 % card status changes (a customer's second active card
 *            marked inactive, POST /payment-methods/{id}/inactivate or MarkPaymentMethodInactive).
 *            Recoveries made by the worker are NOT included: they would need a worker process on a
 *            task queue of its own, the gateway simulator and workflow timers that outlast a pass.
 *
 * For each workload and client count the run takes a block of --sample ids no earlier pass has
 * read, and every target reads that same block: a pass of --warmup seconds over a separate warm-up
 * block (unmeasured: connections, JIT), then `cold`, --seconds over the block — for the api targets
 * on a fresh api process (the bench restarts its own api before each api target), so nothing of
 * the block has been read by it — then `warm`, the same ids again (uniform: the ids the cold pass
 * read; payment and mixed: the same seeded Zipf draws). A uniform cold pass that reads the whole
 * block stops early: beyond it nothing would be cold. Cold means the api's cold; Neo4j's page
 * cache is not emptied. Against a running api (--grpc and --rest) nothing can be restarted, so
 * REST reads a block of its own instead.
 *
 * Reported per target × workload × clients × phase: p50/p95/p99, throughput and errors; gRPC and
 * REST against the floor (p50 and p99 ratios); the api's RSS (process_resident_memory_bytes on its
 * /metrics) after each warm pass; and a read cache's hit rate over each pass, from
 * persona_read_cache_hits_total / persona_read_cache_misses_total when the api has those counters
 * ("—" otherwise: there is no read cache yet). The figures go as JSON to bench/results/.
 *
 * ghz as an independent client: --ghz-out <dir> writes the ids as a ghz --data-file, a token and
 * the ghz commands for each client count; when a ghz binary is on PATH (or --ghz <path>), the run
 * also runs it for GetCustomerContext at each client count right after its own uniform gRPC warm
 * pass, over the same ids, and reports its p50/p95/p99 and requests/s beside the bench's.
 * `--cpu-prof` (own api only) loads scripts/cpu-profile.ts into the api and profiles exactly each
 * ghz run, then prints the packages and functions with the most self time (scripts/cpuSummary.ts);
 * the profiles stay in bench/results/ for DevTools.
 *
 * The mixed workload WRITES to the graph it runs against (LTV, segment, last_used, events, one
 * Interaction node per payment, device trust scores, and cards marked inactive). A benchmark
 * graph only.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import neo4j, { type Driver } from 'neo4j-driver';
import { LOADER_OPTIONS, PROTO_FILE, SERVICE_NAME } from '../api/grpc/server';
import { loadConfig, repoRoot, type Config } from '../config/env';
import { createDriver } from '../graph';
import { graphFromConfig } from '../runtime/graph';
import { readCustomerSnapshot } from '../graph/context';
import type { ProtoGrpcType } from '../proto/generated/persona';
import { startApiProcess, stopProcess, type ApiProcess } from '../test/support/processes';
import {
  benchToken,
  contextGhzArgs,
  f0,
  f2,
  findOnPath,
  hitRate,
  missesByReason,
  runGhz,
  scrapeMetrics,
  summarise,
  tally,
  type GhzResult,
  type Latencies,
} from './benchKit';
import { mulberry32, shuffle, Zipf } from './random';
import { selfTimes } from './cpuSummary';

const { values } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'uniform,payment,mixed' },
    targets: { type: 'string', default: 'floor,grpc,rest' },
    clients: { type: 'string', default: '1,4,16' },
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    sample: { type: 'string', default: '20000' },
    zipf: { type: 'string', default: '1.1' },
    seed: { type: 'string', default: '7' },
    batch: { type: 'string', default: '50' },
    'write-rate': { type: 'string', default: '5' },
    grpc: { type: 'string' },
    rest: { type: 'string' },
    'ghz-out': { type: 'string' },
    ghz: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
  },
});
/** Profile the api (its own) during each ghz run and print where the time went (scripts/cpuSummary.ts). */
const cpuProf = values['cpu-prof'];

function usage(problem: string): never {
  console.error(`bench: ${problem}`);
  process.exit(2);
}
const list = (s: string | undefined): string[] =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

const WORKLOADS = ['uniform', 'payment', 'mixed'] as const;
type Workload = (typeof WORKLOADS)[number];
const TARGETS = ['floor', 'grpc', 'rest', 'transport'] as const;
type TargetName = (typeof TARGETS)[number];

const workloads = list(values.workloads) as Workload[];
const targetNames = list(values.targets) as TargetName[];
const clientCounts = list(values.clients).map(Number);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const sampleSize = Number(values.sample);
const zipfS = Number(values.zipf);
const seed = Number(values.seed);
const batchSize = Number(values.batch);
const writeRate = Number(values['write-rate']);

if (workloads.length === 0 || workloads.some((w) => !WORKLOADS.includes(w)))
  usage(`--workloads is a comma-separated list of ${WORKLOADS.join(', ')}`);
if (targetNames.length === 0 || targetNames.some((t) => !TARGETS.includes(t)))
  usage(`--targets is a comma-separated list of ${TARGETS.join(', ')}`);
if (clientCounts.length === 0 || clientCounts.some((n) => !Number.isInteger(n) || n < 1))
  usage('--clients must be a comma-separated list of positive integers, e.g. 1,4,16');
if (!(seconds > 0) || !(warmup >= 0)) usage('--seconds must be positive and --warmup not negative');
if (!Number.isInteger(sampleSize) || sampleSize < 10) usage('--sample must be an integer of at least 10');
if (!(zipfS > 0)) usage('--zipf must be positive');
if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 500) usage('--batch must be 1–500');
if (!(writeRate >= 0)) usage('--write-rate must be writes a second, 0 for none');
if (Boolean(values.grpc) !== Boolean(values.rest)) usage('--grpc and --rest go together');
if (values.ghz && !existsSync(values.ghz)) usage(`--ghz ${values.ghz}: no such file`);
const external = Boolean(values.grpc);
const readTargets = targetNames.filter((t): t is 'floor' | 'grpc' | 'rest' => t !== 'transport');

// ---- statistics --------------------------------------------------------------------------

const message = (err: unknown): string =>
  err instanceof Error ? (err.message.split('\n')[0]?.slice(0, 160) ?? err.name) : String(err);

// ---- the customers -------------------------------------------------------------------------

interface Customer {
  id: string;
  /** The card its payments use (the default first), for payment-shaped work. */
  paymentMethodId: string | null;
  /** Another active card, which the mixed run's background writer may mark inactive. */
  spareMethodId: string | null;
  /** One of its devices: checkout runs on it, and the background writer sets its trust. */
  deviceId: string | null;
}

/** One unmeasured warm-up block per pool, and a measured block per workload × client count (× REST, external api). */
function blockKey(workload: Workload | 'warmup', clientsIndex: number, target: string): string {
  return `${workload}:${String(clientsIndex)}${external && target === 'rest' ? ':rest' : ''}`;
}

async function sample(
  driver: Driver,
  database: string,
): Promise<{ total: number; blocks: Map<string, Customer[]>; short: string[] }> {
  const total = Number(
    (await driver.executeQuery('MATCH (c:Customer) RETURN count(c) AS n', {}, { database })).records[0]?.get('n'),
  );
  const apiBlocks = external && readTargets.includes('rest') ? 2 : 1;
  const want = new Map<string, number>();
  const warmBlock = Math.min(sampleSize, 5000);
  if (workloads.includes('uniform')) want.set('warmup:uniform', warmBlock);
  if (workloads.some((w) => w !== 'uniform')) want.set('warmup:payment', warmBlock);
  for (const w of workloads)
    for (let i = 0; i < clientCounts.length; i++) {
      want.set(blockKey(w, i, ''), sampleSize);
      if (apiBlocks === 2) want.set(blockKey(w, i, 'rest'), sampleSize);
    }
  const sum = (uniform: boolean): number =>
    [...want.entries()].filter(([k]) => k.includes('uniform') === uniform).reduce((s, [, n]) => s + n, 0);
  // About four in five seeded customers are active with an active card (a graph some runs wrote to, fewer).
  const needed = (sum(true) + sum(false) / 0.6) * 1.1;
  const p = Math.min(1, (needed * 1.15) / Math.max(1, total));
  const res = await driver.executeQuery(
    `MATCH (c:Customer) WHERE rand() < $p
     CALL (c) {
       OPTIONAL MATCH (c)-[r:HAS_PAYMENT_METHOD]->(m:PaymentMethod {status: 'active'})
       WITH m ORDER BY coalesce(r.is_default, false) DESC, m.id
       RETURN collect(m.id)[0..2] AS methods
     }
     CALL (c) { OPTIONAL MATCH (c)-[:LOGGED_IN_FROM]->(d:Device) RETURN d.id AS deviceId ORDER BY d.id LIMIT 1 }
     RETURN c.id AS id, c.status AS status, methods, deviceId LIMIT $n`,
    { p, n: neo4j.int(Math.ceil(needed)) },
    { database, routing: neo4j.routing.READ },
  );
  // Cypher's rand() and row order are not seeded: sort by id, then shuffle with the seed.
  const rows = res.records
    .map((r) => {
      const methods = r.get('methods') as string[];
      return {
        payable: r.get('status') === 'active' && methods.length > 0,
        c: {
          id: r.get('id') as string,
          paymentMethodId: methods[0] ?? null,
          spareMethodId: methods[1] ?? null,
          deviceId: r.get('deviceId') as string | null,
        },
      };
    })
    .sort((a, b) => (a.c.id < b.c.id ? -1 : 1));
  shuffle(rows, mulberry32(seed));
  const payable = rows.filter((r) => r.payable).map((r) => r.c);
  const blocks = new Map<string, Customer[]>();
  const short: string[] = [];
  const used = new Set<string>();
  // Payment-shaped blocks first (they need payable customers), then uniform ones from what is left.
  const order = [...want.keys()].sort((a, b) => Number(a.includes('uniform')) - Number(b.includes('uniform')));
  let cursor = 0;
  for (const key of order) {
    const n = want.get(key) as number;
    const pool = key.includes('uniform') ? rows.map((r) => r.c) : payable;
    const block: Customer[] = [];
    if (pool === payable) {
      while (block.length < n && cursor < payable.length) {
        const c = payable[cursor++] as Customer;
        if (!used.has(c.id)) block.push(c);
      }
    } else {
      for (const c of pool) {
        if (block.length >= n) break;
        if (!used.has(c.id)) block.push(c);
      }
    }
    for (const c of block) used.add(c.id);
    if (block.length < n) short.push(`${key}: ${String(block.length)} of ${String(n)}`);
    blocks.set(key, block);
  }
  return { total, blocks, short };
}

// ---- the api --------------------------------------------------------------------------------

interface Api {
  rest: string;
  grpc: string;
  proc?: ApiProcess;
  /** Read (or written to) since it started: the next api target restarts it. */
  used: boolean;
}

async function startApi(): Promise<Api> {
  const proc = await startApiProcess(
    {
      // Room for interaction batches with devices and addresses.
      PERSONA_MAX_BODY_BYTES: String(1024 * 1024),
      // One token per agent sends everything: a limit it would hit measures the limiter.
      PERSONA_RATE_LIMIT_AGENT: '10000000,10000000',
      PERSONA_RATE_LIMIT_OPS: '10000000,10000000',
    },
    cpuProf ? ['--import', './scripts/cpu-profile.ts'] : [],
  );
  return { rest: proc.url, grpc: proc.grpcAddress, proc, used: false };
}

// ---- the targets ------------------------------------------------------------------------------

type Agent = 'cerebrum' | 'chimera';

interface Recorded {
  recorded: number;
  /** Items not recorded, by problem; or the whole batch's failure. */
  problems: string[];
}

interface Target {
  name: 'floor' | 'grpc' | 'rest';
  label: string;
  context(customerId: string, agent: Agent): Promise<void>;
  checkout(customerId: string, deviceId: string | null): Promise<void>;
  record(items: Item[]): Promise<Recorded>;
  trust(deviceId: string, score: number): Promise<void>;
  inactivate(paymentMethodId: string): Promise<void>;
  close(): void;
}

interface Tokens {
  cerebrum: string;
  chimera: string;
  checkout: string;
  interactions: string;
  writer: string;
}

interface Item {
  id: string;
  type: 'payment';
  customer_id: string;
  occurred_at: string;
  payment_method_id: string;
  amount: number;
  currency: string;
  outcome: string;
  decline_code?: string;
  transaction_id: string;
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

function restTarget(api: Api, tokens: Tokens): Target {
  const json = { 'content-type': 'application/json' };
  const expect = async (res: Response, status = 200): Promise<unknown> => {
    const body: unknown = await res.json().catch(() => null);
    if (res.status !== status) {
      const detail = (body as { detail?: string; title?: string } | null) ?? {};
      throw new Error(`HTTP ${String(res.status)}: ${detail.detail ?? detail.title ?? 'no detail'}`);
    }
    return body;
  };
  return {
    name: 'rest',
    label: 'REST',
    async context(customerId, agent) {
      await expect(
        await fetch(`${api.rest}/api/v1/customers/${customerId}/context`, { headers: bearer(tokens[agent]) }),
      );
    },
    async checkout(customerId, deviceId) {
      const q = deviceId ? `?deviceId=${deviceId}` : '';
      await expect(
        await fetch(`${api.rest}/api/v1/customers/${customerId}/checkout-options${q}`, {
          headers: bearer(tokens.checkout),
        }),
      );
    },
    async record(items) {
      const res = await fetch(`${api.rest}/api/v1/interactions`, {
        method: 'POST',
        headers: { ...bearer(tokens.interactions), ...json },
        body: JSON.stringify({ data: items }),
      });
      const body = (await expect(res)) as { data: { result: string; problem?: string }[] };
      return results(body.data);
    },
    async trust(deviceId, score) {
      await expect(
        await fetch(`${api.rest}/api/v1/devices/${deviceId}/trust-score`, {
          method: 'PUT',
          headers: { ...bearer(tokens.writer), ...json },
          body: JSON.stringify({ trust_score: score, reason: 'bench:context background writer' }),
        }),
      );
    },
    async inactivate(paymentMethodId) {
      await expect(
        await fetch(`${api.rest}/api/v1/payment-methods/${paymentMethodId}/inactivate`, {
          method: 'POST',
          headers: { ...bearer(tokens.writer), ...json },
          body: JSON.stringify({ reason: 'bench:context background writer' }),
        }),
      );
    },
    close() {},
  };
}

function results(data: { result: string; problem?: string }[]): Recorded {
  let recorded = 0;
  const problems: string[] = [];
  for (const a of data)
    if (a.result === 'recorded') recorded++;
    else problems.push(a.result === 'duplicate' ? 'duplicate' : `invalid: ${a.problem ?? ''}`);
  return { recorded, problems };
}

const PROTO = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS)) as unknown as ProtoGrpcType;

function grpcTarget(api: Api, tokens: Tokens): Target {
  const client = new PROTO.persona.v1.PersonaAgent(api.grpc, grpc.credentials.createInsecure());
  const md = Object.fromEntries(
    Object.entries(tokens).map(([k, t]) => {
      const m = new grpc.Metadata();
      m.set('authorization', `Bearer ${t}`);
      return [k, m];
    }),
  ) as Record<keyof Tokens, grpc.Metadata>;
  const done =
    <T>(resolve: (v: T) => void, reject: (e: Error) => void) =>
    (err: grpc.ServiceError | null, value?: T): void =>
      err ? reject(new Error(`${grpc.status[err.code]}: ${err.details}`)) : resolve(value as T);
  return {
    name: 'grpc',
    label: 'gRPC',
    context: (customer_id, agent) =>
      new Promise((resolve, reject) =>
        client.GetCustomerContext(
          { customer_id },
          md[agent],
          done(() => resolve(), reject),
        ),
      ),
    checkout: (customer_id, device_id) =>
      new Promise((resolve, reject) =>
        client.GetCheckoutOptions(
          { customer_id, ...(device_id ? { device_id } : {}) },
          md.checkout,
          done(() => resolve(), reject),
        ),
      ),
    record: (items) =>
      new Promise((resolve, reject) =>
        client.RecordInteractions(
          { data: items },
          md.interactions,
          done((res) => resolve(results((res?.data ?? []) as { result: string; problem?: string }[])), reject),
        ),
      ),
    trust: (device_id, trust_score) =>
      new Promise((resolve, reject) =>
        client.UpdateDeviceTrustScore(
          { device_id, trust_score, reason: 'bench:context background writer' },
          md.writer,
          done(() => resolve(), reject),
        ),
      ),
    inactivate: (payment_method_id) =>
      new Promise((resolve, reject) =>
        client.MarkPaymentMethodInactive(
          { payment_method_id, reason: 'bench:context background writer' },
          md.writer,
          done(() => resolve(), reject),
        ),
      ),
    close: () => client.close(),
  };
}

/**
 * The floor: what the api runs on a cache miss (graph/context.ts `readCustomerSnapshot`: two plain
 * reads that agree, each a session of its own), for context and checkout alike — the api serves
 * both from that one snapshot. Its writes go to the api over REST.
 */
function floorTarget(driver: Driver, config: Config, api: Api, tokens: Tokens): Target {
  const graph = graphFromConfig(driver, config);
  const writes = restTarget(api, tokens);
  return {
    ...writes,
    name: 'floor',
    label: 'floor',
    context: async (customerId) => void (await readCustomerSnapshot(graph, customerId)),
    checkout: async (customerId) => void (await readCustomerSnapshot(graph, customerId)),
  };
}

// ---- one pass -------------------------------------------------------------------------------------

const READS = ['cerebrum', 'chimera', 'checkout'] as const;
type ReadKind = 'context' | (typeof READS)[number] | 'payment';

interface WriteStats {
  batches: number;
  recorded: number;
  notRecorded: number;
  perSecond: number;
  batchMs: Latencies;
  errors: Record<string, number>;
}

interface BackgroundStats {
  trust: number;
  cards: number;
  errors: Record<string, number>;
  ms: Latencies;
}

interface Pass {
  workload: Workload | 'transport';
  clients: number;
  target: string;
  phase: 'cold' | 'warm';
  seconds: number;
  /** Uniform: distinct ids read; payment and mixed: payments made. */
  ids: number;
  /** A uniform cold pass that read its whole block stopped there. */
  exhausted: boolean;
  reads: Partial<Record<ReadKind, Latencies & { perSecond: number }>>;
  errors: Record<string, number>;
  errorCount: number;
  writes?: WriteStats;
  background?: BackgroundStats;
  cacheHitRate: number | null;
  /** The api's read-cache misses during the pass, by reason (null without the counter). */
  cacheMisses: Record<string, number> | null;
  rssBytes: number | null;
}

interface PassPlan {
  workload: Workload;
  clients: number;
  block: Customer[];
  /** Uniform warm: the ids the cold pass read, again. */
  replay?: number;
  /** Seeds the per-client Zipf draws: the same plan seed, the same draws. */
  drawSeed: number;
  durationS: number;
  /** Uniform cold: stop when the block is read. */
  stopAtEnd: boolean;
}

interface PassOutcome {
  elapsed: number;
  ids: number;
  exhausted: boolean;
  reads: Partial<Record<ReadKind, number[]>>;
  errors: Map<string, number>;
  errorCount: number;
  writes?: WriteStats;
  background?: BackgroundStats;
}

let itemCounter = 0;
const runId = `bench-ctx-${Date.now().toString(36)}`;

async function runPass(target: Target, plan: PassPlan, currency: string, spent: Set<string>): Promise<PassOutcome> {
  const { block, clients } = plan;
  const reads: Partial<Record<ReadKind, number[]>> = {};
  const push = (kind: ReadKind, ms: number): void => void (reads[kind] ??= []).push(ms);
  const errors = new Map<string, number>();
  let errorCount = 0;
  const fail = (kind: string, err: unknown): void => {
    errorCount++;
    tally(errors, `${kind}: ${message(err)}`);
  };
  const deadline = performance.now() + plan.durationS * 1000;
  const zipf = plan.workload === 'uniform' ? null : new Zipf(block.length, zipfS);
  let cursor = 0;
  let exhausted = false;
  const limit = plan.replay ?? block.length;

  // Mixed: outcomes buffered per client, batches sent beside the payments (two in flight per client at most).
  const batchMs: number[] = [];
  const writeErrors = new Map<string, number>();
  let batches = 0;
  let recorded = 0;
  let notRecorded = 0;
  const send = async (items: Item[]): Promise<void> => {
    const t0 = performance.now();
    try {
      const r = await target.record(items);
      batchMs.push(performance.now() - t0);
      batches++;
      recorded += r.recorded;
      notRecorded += r.problems.length;
      for (const p of r.problems) tally(writeErrors, p);
    } catch (err) {
      notRecorded += items.length;
      tally(writeErrors, `batch: ${message(err)}`);
    }
  };

  const client = async (k: number): Promise<void> => {
    const rand = mulberry32(plan.drawSeed * 1000 + k);
    const buffer: Item[] = [];
    const inFlight = new Set<Promise<void>>();
    while (performance.now() < deadline) {
      if (!zipf) {
        if (cursor >= limit) {
          if (plan.stopAtEnd) {
            exhausted = true;
            break;
          }
          cursor = 0;
        }
        const c = block[cursor++] as Customer;
        const t0 = performance.now();
        try {
          await target.context(c.id, k % 2 === 0 ? 'cerebrum' : 'chimera');
          push('context', performance.now() - t0);
        } catch (err) {
          fail('context', err);
        }
        continue;
      }
      const c = block[zipf.draw(rand)] as Customer;
      const t0 = performance.now();
      let failed = false;
      const timed = async (kind: (typeof READS)[number], call: () => Promise<void>): Promise<void> => {
        const s = performance.now();
        try {
          await call();
          push(kind, performance.now() - s);
        } catch (err) {
          failed = true;
          fail(kind, err);
        }
      };
      await Promise.all([
        timed('cerebrum', () => target.context(c.id, 'cerebrum')),
        timed('chimera', () => target.context(c.id, 'chimera')),
        timed('checkout', () => target.checkout(c.id, c.deviceId)),
      ]);
      if (!failed) push('payment', performance.now() - t0);
      if (plan.workload !== 'mixed' || !c.paymentMethodId) continue;
      const o = rand();
      const outcome = o < 0.85 ? 'succeeded' : o < 0.95 ? 'declined' : 'refunded';
      const id = `${runId}-${String(itemCounter++)}`;
      buffer.push({
        id,
        type: 'payment',
        customer_id: c.id,
        occurred_at: new Date().toISOString(),
        payment_method_id: c.paymentMethodId,
        amount: 100 + Math.floor(rand() * 49_900),
        currency,
        outcome,
        ...(outcome === 'declined' ? { decline_code: 'insufficient_funds' } : {}),
        transaction_id: `tx-${id}`,
      });
      if (buffer.length >= batchSize) {
        while (inFlight.size >= 2) await Promise.race(inFlight);
        const sent: Promise<void> = send(buffer.splice(0)).finally(() => inFlight.delete(sent));
        inFlight.add(sent);
      }
    }
    if (buffer.length > 0) inFlight.add(send(buffer.splice(0)));
    await Promise.all(inFlight);
  };

  // Mixed: one background writer on Zipf-drawn customers of the same block.
  let stopWriter = false;
  const bgMs: number[] = [];
  const bgErrors = new Map<string, number>();
  let trust = 0;
  let cards = 0;
  const writer = async (): Promise<void> => {
    if (plan.workload !== 'mixed' || writeRate <= 0 || !zipf) return;
    const rand = mulberry32(plan.drawSeed * 1000 + 999);
    const interval = 1000 / writeRate;
    const begin = performance.now();
    for (let k = 0; !stopWriter && performance.now() < deadline; k++) {
      const wait = begin + k * interval - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (stopWriter || performance.now() >= deadline) break;
      const c = block[zipf.draw(rand)] as Customer;
      const card = c.spareMethodId && !spent.has(c.spareMethodId) ? c.spareMethodId : null;
      const t0 = performance.now();
      try {
        if ((rand() < 0.8 || !card) && c.deviceId) {
          await target.trust(c.deviceId, Math.round(rand() * 100) / 100);
          trust++;
        } else if (card) {
          spent.add(card);
          await target.inactivate(card);
          cards++;
        } else continue;
        bgMs.push(performance.now() - t0);
      } catch (err) {
        tally(bgErrors, message(err));
      }
    }
  };

  const started = performance.now();
  const writing = writer();
  await Promise.all(Array.from({ length: clients }, (_, k) => client(k)));
  stopWriter = true;
  await writing;
  const elapsed = (performance.now() - started) / 1000;
  return {
    elapsed,
    ids: zipf ? (reads.payment?.length ?? 0) : Math.min(cursor, limit),
    exhausted,
    reads,
    errors,
    errorCount,
    ...(plan.workload === 'mixed'
      ? {
          writes: {
            batches,
            recorded,
            notRecorded,
            perSecond: recorded / elapsed,
            batchMs: summarise(batchMs),
            errors: Object.fromEntries(writeErrors),
          },
          background: { trust, cards, errors: Object.fromEntries(bgErrors), ms: summarise(bgMs) },
        }
      : {}),
  };
}

function toPass(
  o: PassOutcome,
  base: { workload: Pass['workload']; clients: number; target: string; phase: Pass['phase'] },
): Pass {
  const reads: Pass['reads'] = {};
  for (const [kind, samples] of Object.entries(o.reads) as [ReadKind, number[]][])
    reads[kind] = { ...summarise(samples), perSecond: samples.length / o.elapsed };
  return {
    ...base,
    seconds: o.elapsed,
    ids: o.ids,
    exhausted: o.exhausted,
    reads,
    errors: Object.fromEntries(o.errors),
    errorCount: o.errorCount,
    ...(o.writes ? { writes: o.writes } : {}),
    ...(o.background ? { background: o.background } : {}),
    cacheHitRate: null,
    cacheMisses: null,
    rssBytes: null,
  };
}

// ---- transport only (the old default's last two rows) ----------------------------------------

function healthClient(address: string): { check(): Promise<void>; close(): void } {
  const healthProto = protoLoader.loadSync(
    path.join(
      path.dirname(createRequire(import.meta.url).resolve('grpc-health-check/package.json')),
      'proto/health/v1/health.proto',
    ),
    { keepCase: true, enums: String },
  );
  const Health = (
    grpc.loadPackageDefinition(healthProto) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    }
  ).grpc.health.v1.Health;
  const c = new Health(address, grpc.credentials.createInsecure()) as unknown as {
    Check(req: object, cb: (err: Error | null) => void): void;
    close(): void;
  };
  return {
    check: () => new Promise((resolve, reject) => c.Check({ service: '' }, (err) => (err ? reject(err) : resolve()))),
    close: () => c.close(),
  };
}

async function transportPass(call: () => Promise<void>, clients: number, durationS: number): Promise<PassOutcome> {
  const samples: number[] = [];
  const errors = new Map<string, number>();
  let errorCount = 0;
  const deadline = performance.now() + durationS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await call();
          samples.push(performance.now() - t0);
        } catch (err) {
          errorCount++;
          tally(errors, message(err));
        }
      }
    }),
  );
  return {
    elapsed: (performance.now() - started) / 1000,
    ids: 0,
    exhausted: false,
    reads: { context: samples },
    errors,
    errorCount,
  };
}

// ---- the api's CPU profile ----------------------------------------------------------------------------

/** Stops the api's profiler (scripts/cpu-profile.ts), waits for its file, and prints where the time went. */
async function printProfile(pid: number, label: string): Promise<void> {
  const file = path.join(repoRoot, 'bench', 'results', `cpu-${String(pid)}.cpuprofile`);
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 30_000;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no profile from the api at ${file}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const kept = file.replace(/cpu-\d+/, `cpu-${label.replace(/\W+/g, '')}-${String(pid)}`);
  renameSync(file, kept);
  const summary = selfTimes(kept, 15);
  const busy = summary.sampledMs - summary.idleMs;
  console.log(`\nbench: the api's CPU during ${label}: busy ${f0(busy)} of ${f0(summary.sampledMs)} ms (${kept})`);
  for (const p of summary.packages.slice(0, 10))
    console.log(`  ${(p.share * 100).toFixed(1).padStart(5)} %  ${p.name}`);
  for (const p of summary.functions) console.log(`  ${(p.share * 100).toFixed(1).padStart(5)} %  ${p.name}`);
}

// ---- ghz --------------------------------------------------------------------------------------------

const ghzArgs = (dataFile: string, authorization: string, clients: number, address: string): string[] =>
  contextGhzArgs({ call: `${SERVICE_NAME}.GetCustomerContext`, dataFile, authorization, clients, seconds, address });

const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

// ---- the run ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const config = loadConfig();
  const maxClients = Math.max(...clientCounts);
  const driver = createDriver(config, { maxConnectionPoolSize: 3 * maxClients + 4 });
  const database = config.NEO4J_DATABASE;
  const t0 = performance.now();
  const { total, blocks, short } = await sample(driver, database);
  const blockOf = (key: string): Customer[] => blocks.get(key) ?? [];
  const zipfShare = new Zipf(sampleSize, zipfS);
  console.log(
    `bench: ${f0(total)} customers in the graph; ${f0([...blocks.values()].reduce((s, b) => s + b.length, 0))} ` +
      `sampled in ${f0(performance.now() - t0)} ms, in blocks of ${f0(sampleSize)} (one per workload × client ` +
      `count${external ? ', REST its own' : ''}); Zipf s=${String(zipfS)} over a block: the top customer gets ` +
      `${(zipfShare.shareOfTop(1) * 100).toFixed(1)} % of draws, the top 1 % ` +
      `${(zipfShare.shareOfTop(Math.ceil(sampleSize / 100)) * 100).toFixed(1)} %`,
  );
  for (const s of short) console.log(`bench: WARNING: a short block (${s}): the graph has too few customers`);
  console.log(
    `bench: workloads ${workloads.join(', ')}; targets ${targetNames.join(', ')}; ` +
      `clients ${clientCounts.join(', ')}; ` +
      `${String(warmup)} s warm-up + ${String(seconds)} s cold + ${String(seconds)} s warm per target` +
      (workloads.includes('mixed')
        ? `; mixed: batches of ${String(batchSize)}, ${String(writeRate)} background writes/s`
        : ''),
  );

  let api: Api = external ? { rest: values.rest as string, grpc: values.grpc as string, used: true } : await startApi();
  if (api.proc) console.log(`bench: started an api process (REST ${api.rest}, gRPC ${api.grpc})`);
  const restarts = { count: 0, ms: 0 };
  const fresh = async (): Promise<void> => {
    if (external || !api.used) return;
    const s = performance.now();
    if (api.proc) await stopProcess(api.proc);
    api = await startApi();
    restarts.count++;
    restarts.ms += performance.now() - s;
  };

  const tokens: Tokens = {
    cerebrum: await benchToken(config, 'context:read', 'cerebrum', '12h'),
    chimera: await benchToken(config, 'context:read', 'chimera', '12h'),
    checkout: await benchToken(config, 'context:read', 'checkout', '12h'),
    interactions: await benchToken(config, 'interactions:write', 'bench-context-ingestion', '12h'),
    writer: await benchToken(config, 'devices:write fraud:report', 'bench-context-writer', '12h'),
  };

  // ghz: where its files go, and whether it runs.
  const ghzBin = values.ghz ?? findOnPath('ghz');
  const ghzWanted = workloads.includes('uniform') && targetNames.includes('grpc');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const ghzDir =
    values['ghz-out'] !== undefined
      ? path.resolve(values['ghz-out'])
      : ghzBin && ghzWanted
        ? path.join(repoRoot, 'bench', 'results', `ghz-${stamp}`)
        : null;
  const ghzResults: GhzResult[] = [];
  const ghzCommands: string[] = [];
  const ghzNotes: string[] = [];
  if (ghzDir) {
    mkdirSync(ghzDir, { recursive: true });
    writeFileSync(path.join(ghzDir, 'token'), `${tokens.cerebrum}\n`);
    const all = clientCounts.flatMap((_, i) => blockOf(blockKey('uniform', i, 'grpc')));
    const ids = (all.length > 0 ? all : [...blocks.values()].flat()).map((c) => ({ customer_id: c.id }));
    writeFileSync(path.join(ghzDir, 'ids.json'), JSON.stringify(ids));
  }
  if (!ghzBin) ghzNotes.push('no ghz on PATH (--ghz <path>): not run');
  else if (!ghzWanted) ghzNotes.push('ghz runs after the uniform gRPC pass: not run without both');

  const passes: Pass[] = [];
  const currency = config.PERSONA_REPORTING_CURRENCY;
  /** Cards the background writer has marked inactive in this run: never twice. */
  const spent = new Set<string>();
  let passSeed = seed * 7919;
  try {
    for (const workload of workloads) {
      const warmBlock = blockOf(workload === 'uniform' ? 'warmup:uniform' : 'warmup:payment');
      for (const [ci, clients] of clientCounts.entries()) {
        const drawSeed = passSeed++;
        for (const name of readTargets) {
          const block = blockOf(blockKey(workload, ci, name));
          if (block.length === 0 || warmBlock.length === 0) {
            console.log(`bench: ${workload} × ${String(clients)} × ${name}: no customers to read, skipped`);
            continue;
          }
          if (name !== 'floor') await fresh();
          const target =
            name === 'floor'
              ? floorTarget(driver, config, api, tokens)
              : name === 'grpc'
                ? grpcTarget(api, tokens)
                : restTarget(api, tokens);
          api.used ||= name !== 'floor' || workload === 'mixed';
          const label = `${workload} × ${String(clients)} × ${target.label}`;
          try {
            if (warmup > 0)
              await runPass(
                target,
                {
                  workload,
                  clients,
                  block: warmBlock,
                  drawSeed: drawSeed + 500_000,
                  durationS: warmup,
                  stopAtEnd: false,
                },
                currency,
                spent,
              );
            const m0 = await scrapeMetrics(api.rest, config);
            const cold = toPass(
              await runPass(
                target,
                { workload, clients, block, drawSeed, durationS: seconds, stopAtEnd: workload === 'uniform' },
                currency,
                spent,
              ),
              { workload, clients, target: name, phase: 'cold' },
            );
            const m1 = await scrapeMetrics(api.rest, config);
            const warm = toPass(
              await runPass(
                target,
                {
                  workload,
                  clients,
                  block,
                  replay: Math.max(1, cold.ids),
                  drawSeed,
                  durationS: seconds,
                  stopAtEnd: false,
                },
                currency,
                spent,
              ),
              { workload, clients, target: name, phase: 'warm' },
            );
            const m2 = await scrapeMetrics(api.rest, config);
            if (name !== 'floor') {
              cold.cacheHitRate = hitRate(m0, m1);
              warm.cacheHitRate = hitRate(m1, m2);
              cold.cacheMisses = missesByReason(m0, m1);
              warm.cacheMisses = missesByReason(m1, m2);
              warm.rssBytes = m2.get('process_resident_memory_bytes') ?? null;
            }
            passes.push(cold, warm);
            console.log(
              `bench: ${label}: cold ${f0(headline(cold)?.count)} ${workload === 'uniform' ? 'reads' : 'payments'}` +
                `${cold.exhausted ? ` (the whole block, in ${f2(cold.seconds)} s)` : ''}, ` +
                `warm ${f0(headline(warm)?.count)}; ${String(cold.errorCount + warm.errorCount)} errors`,
            );

            // ghz, right after the bench's own uniform gRPC passes, over the same ids.
            if (ghzDir && workload === 'uniform' && name === 'grpc') {
              const file = path.join(ghzDir, `ids-c${String(clients)}.json`);
              writeFileSync(
                file,
                JSON.stringify(block.slice(0, Math.max(1, cold.ids)).map((c) => ({ customer_id: c.id }))),
              );
              const args = ghzArgs(file, `Bearer ${tokens.cerebrum}`, clients, api.grpc);
              ghzCommands.push(
                [
                  'ghz',
                  ...ghzArgs(path.basename(file), 'AUTH', clients, 'ADDRESS')
                    .slice(0, -1)
                    .map((a) =>
                      a.includes('AUTH') ? `"{\\"authorization\\":\\"Bearer $(cat token)\\"}"` : shellQuote(a),
                    ),
                  `"\${PERSONA_GRPC:-${api.grpc}}"`,
                ].join(' '),
              );
              if (ghzBin)
                try {
                  const profiled = cpuProf && api.proc ? api.proc.child.pid : undefined;
                  if (profiled) process.kill(profiled, 'SIGUSR2');
                  const g = await runGhz(ghzBin, args, clients);
                  ghzResults.push(g);
                  console.log(`bench: ghz × ${String(clients)}: ${f0(g.count)} calls, p50 ${f2(g.p50)} ms`);
                  if (profiled) await printProfile(profiled, `ghz × ${String(clients)}`);
                } catch (err) {
                  ghzNotes.push(`ghz × ${String(clients)} failed: ${message(err)}`);
                }
            }
          } finally {
            target.close();
          }
        }

        // Transport only, over the api as it is (uniform only): the old default's last rows.
        if (workload === 'uniform' && targetNames.includes('transport')) {
          const h = healthClient(api.grpc);
          try {
            const rows: [string, () => Promise<void>][] = [
              ['grpc-health', () => h.check()],
              [
                'rest-healthz',
                async () => {
                  const res = await fetch(`${api.rest}/healthz`);
                  await res.json();
                },
              ],
            ];
            for (const [name, call] of rows) {
              if (warmup > 0) await transportPass(call, clients, warmup);
              passes.push(
                toPass(await transportPass(call, clients, seconds), {
                  workload: 'transport',
                  clients,
                  target: name,
                  phase: 'warm',
                }),
              );
            }
          } finally {
            h.close();
          }
        }
      }
    }
  } finally {
    if (api.proc) await stopProcess(api.proc);
    await driver.close();
  }

  if (ghzDir) {
    writeFileSync(
      path.join(ghzDir, 'commands.sh'),
      [
        '#!/bin/sh',
        '# GetCustomerContext with ghz, over the ids bench:context read, at each client count.',
        '# Run from this directory; PERSONA_GRPC=host:port names a running api (the one the bench',
        '# started has stopped). The token is valid for 12 hours (npm run token for a new one).',
        'cd "$(dirname "$0")"',
        ...ghzCommands,
        '',
      ].join('\n'),
    );
    console.log(`bench: ghz files (ids, token, commands.sh) in ${path.relative(process.cwd(), ghzDir) || '.'}`);
  }

  report(passes, ghzResults, ghzNotes, restarts);

  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `context-${stamp}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        node: process.version,
        customers: total,
        sample: sampleSize,
        workloads,
        targets: targetNames,
        clients: clientCounts,
        seconds,
        warmup,
        zipf_s: zipfS,
        seed,
        batch: batchSize,
        write_rate: writeRate,
        api: external ? { rest: values.rest, grpc: values.grpc } : 'started by the bench, fresh before each api target',
        api_restarts: restarts,
        recoveries: 'not included (see the header of scripts/bench-context.ts)',
        cache: passes.some((p) => p.cacheHitRate !== null) ? 'persona_read_cache_* counters' : 'no read cache yet',
        passes,
        ghz: { results: ghzResults, notes: ghzNotes, dir: ghzDir },
        verdicts: verdicts(passes),
      },
      null,
      2,
    ),
  );
  console.log(`bench: figures written to ${path.relative(repoRoot, file)}`);
}

// ---- the report --------------------------------------------------------------------------------------

/** The payment-shaped passes are judged on every read of the payment (Cerebrum's, Chimera's, checkout). */
function headline(p: Pass): (Latencies & { perSecond: number }) | undefined {
  return p.workload === 'uniform' || p.workload === 'transport' ? p.reads.context : p.reads.payment;
}

function verdicts(passes: Pass[]): Record<string, { value: string; met: boolean } | string> {
  const find = (w: Workload, clients: number, target: string, phase: Pass['phase']): Pass | undefined =>
    passes.find((p) => p.workload === w && p.clients === clients && p.target === target && p.phase === phase);
  const reads = (p: Pass | undefined): number => Math.max(...READS.map((k) => p?.reads[k]?.p99 ?? NaN));
  const out: Record<string, { value: string; met: boolean } | string> = {};
  const pay = find('payment', 4, 'grpc', 'warm');
  const payFloor = find('payment', 4, 'floor', 'warm');
  if (pay) {
    out.payment_4_warm_grpc_read_p99_le_2ms = { value: `${f2(reads(pay))} ms`, met: reads(pay) <= 2 };
    if (payFloor) {
      const r = (pay.reads.cerebrum?.p50 ?? NaN) / (payFloor.reads.cerebrum?.p50 ?? NaN);
      out.payment_4_warm_grpc_context_p50_le_0_6x_floor = { value: `${f2(r)}×`, met: r <= 0.6 };
    }
  } else out.payment_4_warm = 'not measured (needs --workloads payment, --clients 4, --targets grpc)';
  const mixed = find('mixed', 4, 'grpc', 'warm');
  if (mixed) out.mixed_4_warm_grpc_read_p99_le_2ms = { value: `${f2(reads(mixed))} ms`, met: reads(mixed) <= 2 };
  for (const clients of clientCounts) {
    const g = find('uniform', clients, 'grpc', 'cold');
    const f = find('uniform', clients, 'floor', 'cold');
    if (g && f) {
      const r = (g.reads.context?.p50 ?? NaN) / (f.reads.context?.p50 ?? NaN);
      out[`uniform_${String(clients)}_cold_grpc_p50_le_1_3x_floor`] = { value: `${f2(r)}×`, met: r <= 1.3 };
    }
  }
  return out;
}

function report(passes: Pass[], ghz: GhzResult[], ghzNotes: string[], restarts: { count: number; ms: number }): void {
  const row = (cells: string[], widths: number[]): string =>
    `| ${cells.map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = (widths: number[]): string =>
    `|${widths.map((n, i) => (i < 3 ? '-'.repeat(n + 2) : `${'-'.repeat(n + 1)}:`)).join('|')}|`;
  const floorOf = (p: Pass): Pass | undefined =>
    passes.find(
      (f) => f.target === 'floor' && f.workload === p.workload && f.clients === p.clients && f.phase === p.phase,
    );
  const ratio = (p: Pass, q: 'p50' | 'p99'): string => {
    const f = floorOf(p);
    if (!f || p.target === 'floor' || p.workload === 'transport') return '';
    return `${f2((headline(p)?.[q] ?? NaN) / (headline(f)?.[q] ?? NaN))}×`;
  };
  const pct = (x: number | null): string => (x === null ? '—' : `${(x * 100).toFixed(1)} %`);
  const mb = (x: number | null): string => (x === null ? '' : f0(x / 2 ** 20));
  const noCache = !passes.some((p) => p.cacheHitRate !== null);

  for (const workload of [...workloads, ...(targetNames.includes('transport') ? ['transport' as const] : [])]) {
    const mine = passes.filter((p) => p.workload === workload);
    if (mine.length === 0) continue;
    const payment = workload === 'payment' || workload === 'mixed';
    const header = [
      'clients',
      'target',
      'phase',
      payment ? 'pay p50' : 'p50',
      payment ? 'pay p95' : 'p95',
      payment ? 'pay p99' : 'p99',
      payment ? 'payments/s' : 'reads/s',
      'errors',
      'p50/floor',
      'p99/floor',
      ...(payment ? ['Cerebrum p50/p99', 'Chimera p50/p99', 'checkout p50/p99'] : []),
      ...(workload === 'mixed' ? ['recorded/s', 'batch p99', 'bg writes'] : []),
      'hit rate',
      'RSS MB',
    ];
    const widths = header.map((h, i) => Math.max(h.length, i === 1 ? 12 : 7));
    const title =
      workload === 'uniform'
        ? 'uniform: one context read per call, random ids'
        : workload === 'payment'
          ? 'payment: per payment a context read by Cerebrum and by Chimera and a checkout read, at once ' +
            '(pay = all three answered)'
          : workload === 'mixed'
            ? 'mixed: payment, with each outcome recorded (batches) and background trust and card writes'
            : 'transport only (no read behind it)';
    console.log(`\n${title}\n${row(header, widths)}\n${rule(widths)}`);
    for (const p of mine) {
      const h = headline(p);
      const both = (k: ReadKind): string => `${f2(p.reads[k]?.p50)} / ${f2(p.reads[k]?.p99)}`;
      console.log(
        row(
          [
            String(p.clients),
            p.target,
            `${p.phase}${p.exhausted ? '*' : ''}`,
            f2(h?.p50),
            f2(h?.p95),
            f2(h?.p99),
            f0(h?.perSecond),
            f0(p.errorCount),
            ratio(p, 'p50'),
            ratio(p, 'p99'),
            ...(payment ? [both('cerebrum'), both('chimera'), both('checkout')] : []),
            ...(p.writes && p.background
              ? [
                  f0(p.writes.perSecond),
                  f2(p.writes.batchMs.p99),
                  `${String(p.background.trust)}+${String(p.background.cards)}`,
                ]
              : workload === 'mixed'
                ? ['', '', '']
                : []),
            p.target === 'floor' || workload === 'transport' ? '' : pct(p.cacheHitRate),
            mb(p.rssBytes),
          ],
          widths,
        ),
      );
    }
  }
  console.log(
    '\n(latencies in ms; cold: the first pass over ids the api has not read (a fresh api process), warm: the same ' +
      'ids again; * the cold pass read its whole block and stopped early; ratios are to the floor of the same ' +
      'workload, clients and phase; RSS after the warm pass; bg writes: device trust + card status changes' +
      `${noCache ? '; hit rate: — (no read cache yet)' : ''}; recoveries by the worker are not included)`,
  );
  const missed = passes.filter((p) => p.phase === 'warm' && p.cacheMisses);
  if (missed.length > 0)
    console.log(
      `(read-cache misses of the warm passes by reason: ${missed
        .map(
          (p) =>
            `${p.workload} × ${String(p.clients)} × ${p.target} ` +
            Object.entries(p.cacheMisses ?? {})
              .filter(([, n]) => n > 0)
              .map(([reason, n]) => `${reason} ${f0(n)}`)
              .join(', '),
        )
        .join('; ')})`,
    );
  if (restarts.count > 0)
    console.log(
      `(the api was restarted ${String(restarts.count)} times for cold passes, ${f2(restarts.ms / 1000)} s in all)`,
    );

  if (ghz.length > 0) {
    console.log('\nghz (an independent client), GetCustomerContext over the uniform ids just read (warm)');
    const header = ['clients', 'client', 'phase', 'p50', 'p95', 'p99', 'reads/s', 'errors'];
    const widths = header.map((h, i) => Math.max(h.length, i === 1 ? 12 : 7));
    console.log(`${row(header, widths)}\n${rule(widths)}`);
    for (const g of ghz) {
      const bench = passes.find(
        (p) => p.workload === 'uniform' && p.target === 'grpc' && p.phase === 'warm' && p.clients === g.clients,
      );
      const errors = Object.values(g.errors).reduce((s, n) => s + n, 0);
      console.log(
        row([String(g.clients), 'ghz', 'warm', f2(g.p50), f2(g.p95), f2(g.p99), f0(g.rps), f0(errors)], widths),
      );
      const b = bench?.reads.context;
      if (b)
        console.log(
          row(
            [
              String(g.clients),
              'bench gRPC',
              'warm',
              f2(b.p50),
              f2(b.p95),
              f2(b.p99),
              f0(b.perSecond),
              f0(bench.errorCount),
            ],
            widths,
          ),
        );
    }
  }
  for (const n of ghzNotes) console.log(`ghz: ${n}`);

  for (const p of passes) {
    const list = [
      ...Object.entries(p.errors),
      ...Object.entries(p.writes?.errors ?? {}).map(([e, n]) => [`ingestion ${e}`, n] as const),
      ...Object.entries(p.background?.errors ?? {}).map(([e, n]) => [`background ${e}`, n] as const),
    ];
    for (const [error, n] of list.slice(0, 5))
      console.log(`errors (${p.workload} × ${String(p.clients)} × ${p.target}, ${p.phase}): ${f0(n)}× ${error}`);
  }

  console.log('\ntargets (issue 19):');
  for (const [name, v] of Object.entries(verdicts(passes)))
    console.log(`  ${name}: ${typeof v === 'string' ? v : `${v.met ? 'met' : 'NOT met'} (${v.value})`}`);
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
