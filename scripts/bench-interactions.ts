/**
 * The write-path benchmark (issue 18): interactions recorded per second over REST
 * `POST /api/v1/interactions`, and what that load does to the context read beside it.
 *
 *   npm run bench:interactions -- [--customers 20000] [--seconds 20] [--warmup 3] [--senders 1,4]
 *                                 [--readers 2] [--batch 100] [--zipf 1.1] [--seed 7] [--rate 2000] [--cpu-prof]
 *                                 [--api http://127.0.0.1:8080 --grpc 127.0.0.1:50051] [--ghz <path>] [--split]
 *                                 [--read-rate 0] [--reader-nice=N]
 *
 * It samples `--customers` random active customers that have an active payment method (one
 * read), ranks them in a seeded random order, and draws each item's customer from a Zipf
 * distribution over that rank (exponent `--zipf`), so a few customers get a large share. Then:
 *   A. reads alone: `--readers` gRPC GetCustomerContext clients over Zipf-drawn customers;
 *   B. writes: for each count in `--senders`, that many REST senders each posting batches of
 *      `--batch` items as fast as answers come (payments 87 % — succeeded 85 %, declined 10 %,
 *      refunded 5 %, 30 % with a device from a pool of fresh fingerprints —, logins 10 % from a
 *      few devices per customer, shipments 3 % to one address per customer);
 *   C. reads under writes: A's readers and the largest sender count at once, as fast as they can;
 *   D. reads under paced writes: the same senders sending batches on a schedule, `--rate`
 *      interactions a second together (0: no phase D) — the load the read target is set for. Open
 *      loop: a batch goes when it is due, answered or not the ones before it (up to 4 in flight per
 *      sender), and its latency counts from when it was due; the run says how many went late.
 * With ghz (on PATH, or `--ghz <path>`) as an independent client, A and D each run once more with
 * ghz making the reads (`--readers` connections, over Zipf-drawn customers), right after the
 * bench's own: A' alone (after one unmeasured pass over the same customers), D' beside the same
 * paced writes. The read target is judged on ghz's. `--read-rate` paces ghz's reads (reads a second
 * over its connections, the same in A' and D'), so that the writes, not the readers' own load, are
 * what differs; 0 reads as fast as answers come.
 * Each phase runs `--warmup` seconds unmeasured, then `--seconds` measured. It prints the figures
 * beside the targets (≥ 2,000 interactions/s with 4 senders; read p99 under 2,000/s ≤ 1.5 × alone)
 * and writes them as JSON to bench/results/.
 *
 * It WRITES to the graph it runs against: LTV, segment, last_used, devices, logins, addresses,
 * events and one Interaction node per item, all on real customers. A benchmark graph only.
 *
 * It starts its own api process (a separate process, as in production) and the event sequencer a
 * worker runs, in a process of its own (scripts/benchSequencer.ts: its read cache hears of the
 * writes from a topic of this run; no worker may run meanwhile), with a body limit and
 * rate limits the batches cannot hit, unless `--api` (REST base) and `--grpc` point at a running
 * one, whose own limits then apply; the rest of its configuration comes from the environment
 * (a batch that outlives PERSONA_REQUEST_DEADLINE_MS is answered 503 and counted as failed).
 * `--split` starts a second api process for the reads, as a read replica beside the one taking the
 * writes (both hear of the writes from the topic); the read cache's figures are the reader's. That
 * api and ghz then run in sessions of their own, as a replica and its clients on hosts of their own
 * would not share the CPU thread by thread with the load generator (on Linux the scheduler shares
 * it between sessions' autogroups); `--reader-nice=N` (with `=`: N may be negative) also sets their
 * autogroups' nice (below 0 needs the right to raise priority), to see how much of the read's tail
 * is the CPU it waits for (docs/performance.md).
 * `--cpu-prof` (own api only) loads scripts/cpu-profile.ts into it, profiles exactly phase B's
 * measured window at the largest sender count (those figures then carry the profiler's small
 * overhead) and prints the functions and packages with the most self time (with `--split`, the
 * reading api's over D' too); the profile stays in
 * bench/results/ for DevTools.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_FILE, SERVICE_NAME } from '../api/grpc/server';
import { loadConfig, repoRoot } from '../config/env';
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
  moved,
  runGhz,
  scrapeMetrics,
  setAutogroupNice,
  summarise,
  tally,
  type GhzResult,
  type Latencies,
} from './benchKit';
import { driveWrites, ItemMaker, sampleCustomers, type Answer, type Sampled, type WriteStats } from './benchItems';
import { startBenchSequencer, type BenchSequencer } from './benchSequencer';
import { selfTimes, type ProfileSummary } from './cpuSummary';
import { mulberry32, Zipf } from './random';

const { values } = parseArgs({
  options: {
    customers: { type: 'string', default: '20000' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    senders: { type: 'string', default: '1,4' },
    readers: { type: 'string', default: '2' },
    batch: { type: 'string', default: '100' },
    zipf: { type: 'string', default: '1.1' },
    seed: { type: 'string', default: '7' },
    rate: { type: 'string', default: '2000' },
    'cpu-prof': { type: 'boolean', default: false },
    api: { type: 'string' },
    grpc: { type: 'string' },
    ghz: { type: 'string' },
    split: { type: 'boolean', default: false },
    'read-rate': { type: 'string', default: '0' },
    'reader-nice': { type: 'string' },
  },
});
const sampleSize = Number(values.customers);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const senderCounts = (values.senders ?? '').split(',').map(Number);
const readers = Number(values.readers);
const batchSize = Number(values.batch);
const zipfS = Number(values.zipf);
const seed = Number(values.seed);
const cpuProf = values['cpu-prof'] === true;
/** Phase D's paced write load, interactions per second over all senders (0: no phase D). */
const rate = Number(values.rate);
const maxSenders = Math.max(...senderCounts);
/** ghz's reads a second over its connections (0: as fast as answers come). */
const readRate = Number(values['read-rate']);
/** With `--split`: the nice of the reading api's and ghz's sessions (Linux autogroups). */
const readerNice = values['reader-nice'] === undefined ? undefined : Number(values['reader-nice']);

function usage(problem: string): never {
  console.error(`bench: ${problem}`);
  process.exit(2);
}
if (!(sampleSize >= 1)) usage('--customers must be a positive number');
if (!(seconds > 0) || !(warmup >= 0)) usage('--seconds must be positive and --warmup not negative');
if (senderCounts.length === 0 || senderCounts.some((n) => !Number.isInteger(n) || n < 1))
  usage('--senders must be a comma-separated list of positive integers, e.g. 1,4');
if (!Number.isInteger(readers) || readers < 1) usage('--readers must be a positive integer');
if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 500) usage('--batch must be 1–500');
if (!(zipfS > 0)) usage('--zipf must be positive');
if (!(rate >= 0)) usage('--rate must be a number of interactions a second, 0 for no phase D');
if (Boolean(values.api) !== Boolean(values.grpc)) usage('--api and --grpc go together');
if (values.ghz && !existsSync(values.ghz)) usage(`--ghz ${values.ghz}: no such file`);
if (!Number.isInteger(readRate) || readRate < 0) usage('--read-rate must be a whole number of reads a second');
if (readRate > 0 && !values.ghz && !findOnPath('ghz')) usage('--read-rate paces ghz: install it or pass --ghz');
if (values.split && values.api) usage('--split starts two api processes: leave out --api/--grpc');
if (readerNice !== undefined && !(Number.isInteger(readerNice) && readerNice >= -20 && readerNice <= 19))
  usage('--reader-nice must be a whole number from -20 to 19');
if (readerNice !== undefined && !values.split) usage("--reader-nice sets the priority of --split's reading api");
if (cpuProf && values.api) usage('--cpu-prof profiles the api this benchmark starts: leave out --api/--grpc');

// ---- statistics --------------------------------------------------------------------------

interface ReadStats extends Latencies {
  readers: number;
  perSecond: number;
  errors: Record<string, number>;
}

/** What the api's read cache did during a read phase, from its /metrics before and after. */
interface CacheDuring {
  hit_rate: number | null;
  misses: Record<string, number> | null;
  applied: number | null;
  dropped: number | null;
}

// ---- what the senders send ----------------------------------------------------------------

// ---- the drivers ---------------------------------------------------------------------------

type Read = (customerId: string) => Promise<void>;

async function driveReads(
  read: Read,
  customers: Sampled[],
  zipf: Zipf,
  laneSeed: number,
  durationS: number,
): Promise<ReadStats> {
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const deadline = performance.now() + durationS * 1000;
  const loop = async (reader: number): Promise<void> => {
    const rand = mulberry32(laneSeed * 1000 + reader);
    while (performance.now() < deadline) {
      const id = (customers[zipf.draw(rand)] as Sampled).id;
      const t0 = performance.now();
      try {
        await read(id);
        latencies.push(performance.now() - t0);
      } catch (err) {
        tally(errors, err instanceof Error ? err.message : String(err));
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: readers }, (_, i) => loop(i)));
  const elapsed = (performance.now() - started) / 1000;
  return {
    readers,
    ...summarise(latencies),
    perSecond: latencies.length / elapsed,
    errors: Object.fromEntries(errors),
  };
}

// ---- the CPU profile's summary ------------------------------------------------------------

// ---- the run ------------------------------------------------------------------------------

async function waitForFile(file: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file)) return true;
    await sleep(100);
  }
  return false;
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (config.PERSONA_REPORTING_CURRENCY !== 'USD')
    usage(`the payments are in USD and PERSONA_REPORTING_CURRENCY is ${config.PERSONA_REPORTING_CURRENCY}`);
  const t0 = performance.now();
  const { total, customers } = await sampleCustomers(config, sampleSize, seed);
  if (customers.length === 0) usage('no active customer with an active payment method: seed the graph first');
  const zipf = new Zipf(customers.length, zipfS);
  console.log(
    `bench: ${total.toLocaleString('en-US')} customers in the graph; ${customers.length.toLocaleString('en-US')} ` +
      `sampled in ${f0(performance.now() - t0)} ms; Zipf s=${String(zipfS)}: the top customer gets ` +
      `${(zipf.shareOfTop(1) * 100).toFixed(1)} % of draws, the top 1 % ` +
      `${(zipf.shareOfTop(Math.ceil(customers.length / 100)) * 100).toFixed(1)} %`,
  );

  const apiLanes = config.PERSONA_INTERACTIONS_WRITE_LANES;
  const apiGroupMax = config.PERSONA_INTERACTIONS_GROUP_MAX_ITEMS;
  let api: ApiProcess | undefined;
  /** With `--split`, a second api process that takes the reads (a read replica); otherwise `api`. */
  let reader: ApiProcess | undefined;
  let sequencer: BenchSequencer | undefined;
  let restBase = values.api;
  let grpcAddress = values.grpc;
  let readerRest = values.api;
  if (!restBase || !grpcAddress) {
    // As a worker would: the api's read cache hears of the writes from the invalidation topic.
    sequencer = await startBenchSequencer('topic', `int-${Date.now().toString(36)}`);
    const env = {
      ...sequencer.env,
      // A batch of 100 is about 25 KB; room for 500-item batches with devices and addresses.
      PERSONA_MAX_BODY_BYTES: String(1024 * 1024),
      // One token per role sends everything: a limit it would hit measures the limiter.
      PERSONA_RATE_LIMIT_AGENT: '10000000,10000000',
      PERSONA_RATE_LIMIT_OPS: '10000000,10000000',
    };
    try {
      api = await startApiProcess(env, cpuProf ? ['--import', './scripts/cpu-profile.ts'] : []);
      reader = values.split
        ? await startApiProcess(env, cpuProf ? ['--import', './scripts/cpu-profile.ts'] : [], { ownSession: true })
        : api;
      if (reader !== api && readerNice !== undefined && reader.child.pid !== undefined) {
        const problem = setAutogroupNice(reader.child.pid, readerNice);
        if (problem) throw new Error(`--reader-nice ${String(readerNice)}: ${problem}`);
      }
      if (reader !== api) {
        // It has a session of its own, so a Ctrl-C at the terminal does not reach it.
        const own = reader;
        for (const signal of ['SIGINT', 'SIGTERM'] as const)
          process.once(signal, () => {
            own.child.kill('SIGTERM');
            process.exit(130);
          });
      }
    } catch (err) {
      if (reader && reader !== api) await stopProcess(reader);
      if (api) await stopProcess(api);
      await sequencer.stop();
      throw err;
    }
    restBase = api.url;
    grpcAddress = reader.grpcAddress;
    readerRest = reader.url;
    // Nothing is measured before every api's cache is current (its tail placed, the sequencer's
    // lease taken): otherwise phase A would measure the start, every read a miss.
    for (const proc of new Set([api, reader])) {
      const deadline = Date.now() + 60_000;
      const age = async () => (await scrapeMetrics(proc.url, config)).get('persona_read_cache_tail_age_seconds') ?? -1;
      let current = await age();
      while (current > 1 && Date.now() < deadline) {
        await sleep(100);
        current = await age();
      }
      if (current > 1) console.warn(`bench: the api at ${proc.url} was still not current after a minute`);
    }
    console.log(
      `bench: the api writes interactions in ${String(apiLanes)} lane(s), groups of up to ${String(apiGroupMax)} ` +
        'items (PERSONA_INTERACTIONS_WRITE_LANES, PERSONA_INTERACTIONS_GROUP_MAX_ITEMS)',
    );
    console.log(
      `bench: started an api process (REST ${restBase}, gRPC ${api.grpcAddress}, pid ${String(api.child.pid)})`,
    );
    if (reader !== api)
      console.log(
        `bench: --split: the reads go to a second api process ` +
          `(gRPC ${grpcAddress}, pid ${String(reader.child.pid)}), ` +
          'which hears of the writes from the invalidation topic as a read replica would',
      );
  }

  const readToken = await benchToken(config, 'context:read', 'bench-interactions-reader', '1h');
  const writeToken = await benchToken(config, 'interactions:write', 'bench-interactions-sender', '1h');
  const proto = grpc.loadPackageDefinition(
    protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS),
  ) as unknown as ProtoGrpcType;
  const grpcClient = new proto.persona.v1.PersonaAgent(grpcAddress, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${readToken}`);
  const read: Read = (customerId) =>
    new Promise<void>((resolve, reject) =>
      grpcClient.GetCustomerContext({ customer_id: customerId }, metadata, (err) => (err ? reject(err) : resolve())),
    );
  const url = `${restBase}/api/v1/interactions`;
  const headers = { authorization: `Bearer ${writeToken}`, 'content-type': 'application/json' };
  const post = async (items: Record<string, unknown>[]): Promise<{ status: number; body: Answer }> => {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ data: items }) });
    return { status: res.status, body: (await res.json()) as Answer };
  };

  // Unique item ids per run: a run prefix, the sender's lane, a counter.
  const runId = `bench-${Date.now().toString(36)}`;
  const poolRand = mulberry32(seed + 1);
  const paymentDevices = Array.from(
    { length: Math.max(1000, Math.floor(customers.length / 2)) },
    () => `fp-${runId}-${Math.floor(poolRand() * 2 ** 48).toString(16)}`,
  );
  const makers = Array.from(
    { length: maxSenders },
    (_, i) => new ItemMaker(runId, `s${String(i)}`, customers, zipf, paymentDevices, seed * 100 + i),
  );
  console.log(
    `bench: items ${runId}-*; ${String(readers)} readers (gRPC GetCustomerContext), senders ` +
      `${senderCounts.join(' then ')} (REST POST /api/v1/interactions, ${String(batchSize)} items a batch); ` +
      `${String(warmup)} s warm-up + ${String(seconds)} s per phase`,
  );

  // ghz: the same mix of customers, drawn once into its data file (it sends them round robin).
  const ghzBin = values.ghz ?? findOnPath('ghz');
  let ghzFile: string | undefined;
  if (ghzBin) {
    const ghzDir = path.join(repoRoot, 'bench', 'results', `ghz-interactions-${runId}`);
    mkdirSync(ghzDir, { recursive: true });
    ghzFile = path.join(ghzDir, 'ids.json');
    const drawRand = mulberry32(seed + 9);
    const ids = Array.from({ length: 20_000 }, () => ({ customer_id: (customers[zipf.draw(drawRand)] as Sampled).id }));
    writeFileSync(ghzFile, JSON.stringify(ids));
  }
  const ghzReads = (bin: string, file: string, duration = seconds): Promise<GhzResult> =>
    runGhz(
      bin,
      contextGhzArgs({
        call: `${SERVICE_NAME}.GetCustomerContext`,
        dataFile: file,
        authorization: `Bearer ${readToken}`,
        clients: readers,
        seconds: duration,
        address: grpcAddress,
        rps: readRate,
      }),
      readers,
      // A replica's clients are not on the machine of the load generator: with --split, ghz shares
      // the CPU as a group of its own, not thread by thread with the senders.
      { ownSession: values.split === true, nice: readerNice },
    );
  let ghz: { alone: GhzResult; paced?: { reads: GhzResult; writes: WriteStats } } | undefined;

  let readsAlone: ReadStats | undefined;
  const writes: WriteStats[] = [];
  let underLoad: { reads: ReadStats; writes: WriteStats } | undefined;
  let underPaced: { reads: ReadStats; writes: WriteStats } | undefined;
  let profile: { file: string; summary: ProfileSummary } | undefined;
  /** With `--split --cpu-prof`: the reading api's profile over D'. */
  let readerProfile: { file: string; summary: ProfileSummary } | undefined;
  const cache: Record<string, CacheDuring> = {};
  const rest = readerRest as string;
  /** Runs a read phase and keeps what the read cache did meanwhile under `phase`. */
  const watched = async <T>(phase: string, run: () => Promise<T>): Promise<T> => {
    const before = await scrapeMetrics(rest, config);
    const out = await run();
    const after = await scrapeMetrics(rest, config);
    cache[phase] = {
      hit_rate: hitRate(before, after),
      misses: missesByReason(before, after),
      applied: moved(before, after, 'persona_read_cache_applied_total'),
      dropped: moved(before, after, 'persona_read_cache_invalidations_total'),
    };
    return out;
  };
  try {
    await driveReads(read, customers, zipf, 1, warmup);
    readsAlone = await watched('A', () => driveReads(read, customers, zipf, 2, seconds));
    console.log(`bench: A reads alone: ${f0(readsAlone.count)} reads, p99 ${f2(readsAlone.p99)} ms`);
    if (ghzBin && ghzFile) {
      // Once through the file unmeasured, as long as a measured pass: A' and D' then read the same
      // customers from a warm cache, so what differs between them is the writes.
      await ghzReads(ghzBin, ghzFile);
      ghz = { alone: await watched("A'", () => ghzReads(ghzBin, ghzFile)) };
      console.log(`bench: A' ghz reads alone: ${f0(ghz.alone.count)} reads, p99 ${f2(ghz.alone.p99)} ms`);
    }

    for (const senders of senderCounts) {
      await driveWrites(post, makers, senders, warmup, batchSize);
      const profiling = cpuProf && api?.child.pid !== undefined && senders === maxSenders && !profile;
      if (profiling) api?.child.kill('SIGUSR2');
      const stats = await driveWrites(post, makers, senders, seconds, batchSize);
      if (profiling && api?.child.pid !== undefined) {
        api.child.kill('SIGUSR2');
        const file = path.join(repoRoot, 'bench', 'results', `cpu-${String(api.child.pid)}.cpuprofile`);
        if (await waitForFile(file, 30_000)) profile = { file, summary: selfTimes(file, 25) };
        else console.error(`bench: the api wrote no CPU profile; its output:\n${api.output()}`);
      }
      writes.push(stats);
      console.log(
        `bench: B ${String(senders)} sender(s): ${f0(stats.recorded)} recorded in ${f0(stats.batches)} batches, ` +
          `${f0(stats.interactionsPerSecond)}/s; ${String(Object.values(stats.errors).reduce((s, n) => s + n, 0))} ` +
          'failed batches',
      );
    }

    await Promise.all([
      driveReads(read, customers, zipf, 3, warmup),
      driveWrites(post, makers, maxSenders, warmup, batchSize),
    ]);
    const [r, w] = await watched('C', () =>
      Promise.all([
        driveReads(read, customers, zipf, 4, seconds),
        driveWrites(post, makers, maxSenders, seconds, batchSize),
      ]),
    );
    underLoad = { reads: r, writes: w };
    console.log(`bench: C reads under ${String(maxSenders)} senders: p99 ${f2(r.p99)} ms`);

    if (rate > 0) {
      await Promise.all([
        driveReads(read, customers, zipf, 5, warmup),
        driveWrites(post, makers, maxSenders, warmup, batchSize, rate),
      ]);
      const [pr, pw] = await watched('D', () =>
        Promise.all([
          driveReads(read, customers, zipf, 6, seconds),
          driveWrites(post, makers, maxSenders, seconds, batchSize, rate),
        ]),
      );
      underPaced = { reads: pr, writes: pw };
      console.log(
        `bench: D reads under ${String(maxSenders)} senders paced at ${f0(rate)}/s ` +
          `(${f0(pw.interactionsPerSecond)}/s recorded): p99 ${f2(pr.p99)} ms`,
      );
      if (ghz && ghzBin && ghzFile) {
        const profiled = cpuProf && reader !== undefined && reader !== api ? reader : undefined;
        profiled?.child.kill('SIGUSR2');
        const [gr, gw] = await watched("D'", () =>
          Promise.all([ghzReads(ghzBin, ghzFile), driveWrites(post, makers, maxSenders, seconds, batchSize, rate)]),
        );
        if (profiled) {
          profiled.child.kill('SIGUSR2');
          const file = path.join(repoRoot, 'bench', 'results', `cpu-${String(profiled.child.pid)}.cpuprofile`);
          if (await waitForFile(file, 30_000)) readerProfile = { file, summary: selfTimes(file, 25) };
          else console.error(`bench: the reading api wrote no CPU profile; its output:\n${profiled.output()}`);
        }
        ghz.paced = { reads: gr, writes: gw };
        console.log(
          `bench: D' ghz reads under the same pace (${f0(gw.interactionsPerSecond)}/s recorded): ` +
            `p99 ${f2(gr.p99)} ms`,
        );
      }
    }
  } finally {
    grpcClient.close();
    for (const proc of new Set([api, reader]))
      if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null))
        console.error(
          `bench: an api process (pid ${String(proc.child.pid)}) exited ` +
            `(${String(proc.child.exitCode ?? proc.child.signalCode)}) during the run; ` +
            `the end of its output:\n${proc.output().slice(-4000)}`,
        );
    if (reader && reader !== api) await stopProcess(reader);
    if (api) await stopProcess(api);
    await sequencer?.stop();
  }
  // What the api logged as errors (the answers say only "The error was logged").
  const apiErrors = new Map<string, number>();
  for (const text of [...new Set([api, reader])]
    .map((p) => p?.output() ?? '')
    .join('\n')
    .split('\n')) {
    let entry: { level?: number; msg?: string; err?: { type?: string; code?: string; message?: string } };
    try {
      entry = JSON.parse(text) as typeof entry;
    } catch {
      continue;
    }
    if ((entry.level ?? 0) >= 50)
      tally(
        apiErrors,
        [entry.msg, entry.err?.type, entry.err?.code, entry.err?.message?.split('\n')[0]?.slice(0, 160)]
          .filter(Boolean)
          .join(': '),
      );
  }

  // ---- the report ----
  const line = (cells: string[], widths: number[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const widths = [34, 7, 7, 14, 9, 9, 9, 9, 8, 8, 8, 7];
  const header = [
    'phase',
    'senders',
    'readers',
    'interactions/s',
    'batches/s',
    'batch p50',
    'batch p95',
    'batch p99',
    'read p50',
    'read p95',
    'read p99',
    'reads/s',
  ];
  const w = (s: WriteStats | undefined): string[] =>
    s
      ? [f0(s.interactionsPerSecond), f2(s.batchesPerSecond), f2(s.batchMs.p50), f2(s.batchMs.p95), f2(s.batchMs.p99)]
      : ['', '', '', '', ''];
  const rd = (s: ReadStats | undefined): string[] =>
    s ? [f2(s.p50), f2(s.p95), f2(s.p99), f0(s.perSecond)] : ['', '', '', ''];
  console.log(`\n${line(header, widths)}`);
  console.log(`|${widths.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : `${'-'.repeat(n + 1)}:`)).join('|')}|`);
  console.log(line(['A  reads alone', '0', String(readers), ...w(undefined), ...rd(readsAlone)], widths));
  for (const s of writes)
    console.log(
      line(
        [
          `B  writes${cpuProf && s.senders === maxSenders ? ' (profiled)' : ''}`,
          String(s.senders),
          '0',
          ...w(s),
          ...rd(undefined),
        ],
        widths,
      ),
    );
  console.log(
    line(
      ['C  reads under writes', String(maxSenders), String(readers), ...w(underLoad?.writes), ...rd(underLoad?.reads)],
      widths,
    ),
  );
  if (underPaced)
    console.log(
      line(
        [
          `D  reads under writes at ${f0(rate)}/s`,
          String(maxSenders),
          String(readers),
          ...w(underPaced.writes),
          ...rd(underPaced.reads),
        ],
        widths,
      ),
    );
  const gd = (g: GhzResult | undefined): string[] =>
    g ? [f2(g.p50), f2(g.p95), f2(g.p99), f0(g.rps)] : ['', '', '', ''];
  if (ghz) {
    console.log(line([`A' reads alone (ghz)`, '0', String(readers), ...w(undefined), ...gd(ghz.alone)], widths));
    if (ghz.paced)
      console.log(
        line(
          [
            `D' under writes at ${f0(rate)}/s (ghz)`,
            String(maxSenders),
            String(readers),
            ...w(ghz.paced.writes),
            ...gd(ghz.paced.reads),
          ],
          widths,
        ),
      );
  }
  console.log('(latencies in ms; a batch is one POST of its items, answered once all are recorded)');
  if (Object.values(cache).some((c) => c.hit_rate !== null)) {
    console.log("\nthe read cache during each read phase (the api's /metrics):");
    for (const [phase, c] of Object.entries(cache))
      console.log(
        `  ${phase.padEnd(3)} hit rate ${c.hit_rate === null ? '—' : `${(c.hit_rate * 100).toFixed(1)} %`}; misses ` +
          `${
            Object.entries(c.misses ?? {})
              .filter(([, n]) => n > 0)
              .map(([why, n]) => `${why} ${f0(n)}`)
              .join(', ') || 'none'
          }; events applied in place ${f0(c.applied ?? NaN)}, entries dropped ${f0(c.dropped ?? NaN)}`,
      );
  }

  const notRecorded = [
    ...writes,
    ...(underLoad ? [underLoad.writes] : []),
    ...(underPaced ? [underPaced.writes] : []),
  ].filter((s) => s.duplicate + s.invalid > 0 || Object.keys(s.errors).length > 0);
  for (const s of notRecorded) {
    const which = s === underLoad?.writes ? 'C' : s === underPaced?.writes ? 'D' : `B ${String(s.senders)}`;
    console.log(`\nnot recorded (${which}): ${String(s.duplicate)} duplicate, ${String(s.invalid)} invalid`);
    for (const [reason, n] of Object.entries(s.invalidReasons)) console.log(`  invalid ${String(n)}× ${reason}`);
    for (const [error, n] of Object.entries(s.errors)) console.log(`  failed batch ${String(n)}× ${error}`);
  }
  for (const [error, n] of [...apiErrors.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10))
    console.log(`api logged ${String(n)}× ${error}`);
  for (const [which, s] of [
    ['A', readsAlone],
    ['C', underLoad?.reads],
    ['D', underPaced?.reads],
  ] as const)
    for (const [error, n] of Object.entries(s?.errors ?? {}))
      console.log(`read error (${which}) ${String(n)}× ${error}`);

  const one = writes.find((s) => s.senders === 1);
  const most = writes.find((s) => s.senders === maxSenders) as WriteStats;
  const ratio = underLoad && readsAlone ? underLoad.reads.p99 / readsAlone.p99 : NaN;
  // The target's load: 2,000 interactions/s sustained (phase D, paced), not the most the senders can push (C).
  const pacedRatio = underPaced && readsAlone ? underPaced.reads.p99 / readsAlone.p99 : NaN;
  // Sustained: 98 % of the rate recorded, and no more than 1 % of the batches sent late.
  const paced = underPaced?.writes.paced;
  const sustained =
    underPaced !== undefined &&
    paced !== undefined &&
    underPaced.writes.interactionsPerSecond >= 0.98 * rate &&
    paced.late <= 0.01 * paced.due;
  // With ghz as the client (what the target names), when it ran.
  const ghzPaced = ghz?.paced;
  const ghzRatio = ghzPaced && ghz ? ghzPaced.reads.p99 / ghz.alone.p99 : NaN;
  const ghzSustained =
    ghzPaced !== undefined &&
    ghzPaced.writes.interactionsPerSecond >= 0.98 * rate &&
    ghzPaced.writes.paced !== undefined &&
    ghzPaced.writes.paced.late <= 0.01 * ghzPaced.writes.paced.due;
  const verdicts = {
    writes_ge_2000_per_s: most.interactionsPerSecond >= 2000,
    read_p99_under_2000_per_s_le_1_5x:
      maxSenders === 4 && rate >= 2000 && (ghzPaced ? ghzSustained && ghzRatio <= 1.5 : sustained && pacedRatio <= 1.5),
    read_p99_at_saturation_le_1_5x: ratio <= 1.5,
  };
  console.log(
    `\ntargets: ≥ 2,000 interactions/s with ${String(maxSenders)} senders: ` +
      `${verdicts.writes_ge_2000_per_s ? 'met' : 'NOT met'} (${f0(most.interactionsPerSecond)}/s in B; ` +
      `${f0(underLoad?.writes.interactionsPerSecond ?? NaN)}/s in C beside the reads)` +
      `${maxSenders === 4 ? '' : ' [the target is for 4 senders]'}\n` +
      `         read p99 under ${f0(rate)} interactions/s ≤ 1.5 × alone: ` +
      `${verdicts.read_p99_under_2000_per_s_le_1_5x ? 'met' : 'NOT met'} ` +
      `(D: ${f2(underPaced?.reads.p99 ?? NaN)} / ${f2(readsAlone?.p99 ?? NaN)} ms = ${f2(pacedRatio)}×, ` +
      `${f0(underPaced?.writes.interactionsPerSecond ?? NaN)}/s recorded, ${String(paced?.late ?? 0)} of ` +
      `${String(paced?.due ?? 0)} batches sent late${sustained ? '' : ': the pace was NOT sustained'})` +
      `${rate >= 2000 ? '' : ' [the target is for 2,000/s]'}\n` +
      (ghzPaced && ghz
        ? `         with ghz as the client (judged on these): ` +
          `D' ${f2(ghzPaced.reads.p99)} / A' ${f2(ghz.alone.p99)} ms ` +
          `= ${f2(ghzRatio)}×, ${f0(ghzPaced.writes.interactionsPerSecond)}/s recorded` +
          `${ghzSustained ? '' : ': the pace was NOT sustained'}\n`
        : '') +
      `         at saturation (C, the senders as fast as they can): ` +
      `${f2(underLoad?.reads.p99 ?? NaN)} / ${f2(readsAlone?.p99 ?? NaN)} ms = ${f2(ratio)}×`,
  );
  if (one && most !== one)
    console.log(
      `scaling: 1 → ${String(maxSenders)} senders: ${f0(one.interactionsPerSecond)} → ` +
        `${f0(most.interactionsPerSecond)} interactions/s = ` +
        `${f2(most.interactionsPerSecond / one.interactionsPerSecond)}× ` +
        `(batch p50 ${f2(one.batchMs.p50)} → ${f2(most.batchMs.p50)} ms)`,
    );

  for (const [title, prof] of [
    [`the api, B at ${String(maxSenders)} senders`, profile],
    [`the reading api (--split), D'`, readerProfile],
  ] as const) {
    if (!prof) continue;
    const { summary } = prof;
    const busy = summary.sampledMs - summary.idleMs;
    console.log(
      `\nCPU profile of ${title}: ${path.relative(repoRoot, prof.file)}\n` +
        `${f0(summary.sampledMs)} ms sampled, ${f0(busy)} ms busy ` +
        `(${f2((busy / Math.max(1, summary.sampledMs)) * 100)} % of the window, on its main thread); ` +
        'shares below are of the busy time\n' +
        'self time by package:',
    );
    for (const p of summary.packages.slice(0, 12))
      console.log(`  ${(p.share * 100).toFixed(1).padStart(5)} %  ${f0(p.ms).padStart(7)} ms  ${p.name}`);
    console.log('self time by function:');
    for (const p of summary.functions)
      console.log(`  ${(p.share * 100).toFixed(1).padStart(5)} %  ${f0(p.ms).padStart(7)} ms  ${p.name}`);
  }

  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `interactions-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        node: process.version,
        graph_customers: total,
        sampled_customers: customers.length,
        zipf_s: zipfS,
        seed,
        batch: batchSize,
        seconds,
        warmup,
        transport: { writes: 'REST POST /api/v1/interactions', reads: 'gRPC GetCustomerContext' },
        run_id: runId,
        reads_alone: readsAlone,
        writes,
        reads_under_writes: underLoad,
        ghz: ghz ?? null,
        ghz_read_rate: readRate,
        read_p99_ratio: ratio,
        paced_rate: rate,
        reads_under_paced_writes: underPaced,
        read_cache: cache,
        read_p99_ratio_paced: pacedRatio,
        // Another api's (--api) own configuration is not known here.
        api: api
          ? {
              write_lanes: apiLanes,
              group_max_items: apiGroupMax,
              split: reader !== api,
              reader_nice: readerNice ?? null,
            }
          : null,
        api_errors: Object.fromEntries(apiErrors),
        verdicts,
        ...(readerProfile
          ? {
              reader_cpu_profile: {
                file: path.relative(repoRoot, readerProfile.file),
                sampled_ms: readerProfile.summary.sampledMs,
                idle_ms: readerProfile.summary.idleMs,
                packages: readerProfile.summary.packages,
                functions: readerProfile.summary.functions,
              },
            }
          : {}),
        ...(profile
          ? {
              cpu_profile: {
                file: path.relative(repoRoot, profile.file),
                sampled_ms: profile.summary.sampledMs,
                idle_ms: profile.summary.idleMs,
                packages: profile.summary.packages,
                functions: profile.summary.functions,
              },
            }
          : {}),
      },
      null,
      2,
    ),
  );
  console.log(`\nbench: figures written to ${path.relative(repoRoot, file)}`);
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
