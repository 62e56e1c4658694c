/**
 * How long another process's write takes to reach an api's read cache, and what keeping the caches
 * current costs the Neo4j leader as api replicas are added (issue 48). This script is the other
 * process and runs the event sequencer as a worker would; it starts 1, 2 and 3 api processes in
 * each mode:
 *   - topic: the sequencer sends the invalidations to a topic of this run on the stack's Kafka, and
 *     every api reads it (the production shape);
 *   - poll: no Kafka, every api polls the numbered log itself (the baseline: per-replica polling).
 * For each, first an idle window: Neo4j's own CPU time (from /proc, the leader's whole load) while
 * nothing is written, per second. Then rounds: each warms a customer in one api's cache (round
 * robin over the replicas), commits a change through the graph functions (a segment change,
 * applied in place, or a suspension, which drops the entry), and reads that api every millisecond
 * until it answers it. Staleness is from the commit returning here to the first answer that shows it.
 *
 *   npm run bench:staleness -- [--rounds 100] [--replicas 1,2,3] [--modes topic,poll] [--idle-ms 5000]
 *
 * Needs the local stack (`npm run stack:up`) with no worker running (its sequencer would share the
 * numbering). It creates its own customers and leaves them; it never touches the seeded ones.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/env';
import {
  addPaymentMethod,
  createCustomer,
  createDriver,
  createGraph,
  setCustomerStatusTx,
  updateCustomer,
  writeTx,
} from '../graph';
import { stackPaths } from '../stack/install';
import { cardInput } from '../test/support/graph';
import { metricValue, scrape } from '../test/support/observability';
import { startApiProcess, stopProcess, type ApiProcess } from '../test/support/processes';
import { benchToken, f0, f2, summarise } from './benchKit';
import { startBenchSequencer } from './benchSequencer';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '100' },
    replicas: { type: 'string', default: '1,2,3' },
    modes: { type: 'string', default: 'topic,poll' },
    'idle-ms': { type: 'string', default: '5000' },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
const replicaCounts = values.replicas.split(',').map(Number);
const modes = values.modes.split(',') as ('topic' | 'poll')[];
const idleMs = Number(values['idle-ms']);

const config = loadConfig();
const driver = createDriver(config);
const graph = createGraph(driver, config.NEO4J_DATABASE, config.tokenKeys);
const run = randomUUID().slice(0, 8);
const log = (line: string): void => console.log(`[bench-staleness] ${line}`);

/** Neo4j's process CPU time so far, in ms (user + system, from /proc). */
function neo4jCpuMs(): number {
  const pid = readFileSync(path.join(stackPaths(config.PERSONA_STACK_DIR).pids, 'neo4j.pid'), 'utf8').trim();
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // utime and stime are the 14th and 15th fields of the whole line: 12th and 13th after "pid (comm) ".
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

interface Row {
  mode: string;
  replicas: number;
  idleCpuMsPerS: number;
  staleness: number[];
  hitRate: number;
}

async function measure(mode: 'topic' | 'poll', replicas: number, token: string): Promise<Row> {
  const sequencer = await startBenchSequencer(mode, `${run}.${mode}.${String(replicas)}`);
  const env: Record<string, string> = { PERSONA_RATE_LIMIT_AGENT: '10000000,10000000', ...sequencer.env };
  const apis: ApiProcess[] = [];
  try {
    for (let i = 0; i < replicas; i++) apis.push(await startApiProcess(env));
    // Every api current (its tail placed) before anything is measured.
    for (const api of apis)
      for (let t = 0; metricValue(await scrape(api.url), 'persona_read_cache_tail_age_seconds') > 1; t++) {
        if (t > 300) throw new Error('an api never became current');
        await sleep(100);
      }
    const cpuBefore = neo4jCpuMs();
    const idleStarted = performance.now();
    await sleep(idleMs);
    const idleCpuMsPerS = ((neo4jCpuMs() - cpuBefore) / (performance.now() - idleStarted)) * 1000;

    const read = async (api: ApiProcess, id: string) => {
      const res = await fetch(`${api.url}/api/v1/customers/${id}/context`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return (await res.json()) as { status: string; segment: string };
    };
    const metric = async (name: string) => {
      let sum = 0;
      for (const api of apis) sum += metricValue(await scrape(api.url), name);
      return sum;
    };
    const hitsBefore = await metric('persona_read_cache_hits_total');
    const missesBefore = await metric('persona_read_cache_misses_total');
    const staleness: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const api = apis[i % apis.length] as ApiProcess;
      const id = randomUUID();
      await createCustomer(graph, { id, segment: 'Subscriber' });
      await addPaymentMethod(graph, id, cardInput());
      // Warm: the first fill may be overtaken by the tail bringing the creation itself.
      for (let k = 0; k < 3; k++) await read(api, id);
      await sleep(100);
      let shows: (a: { status: string; segment: string }) => boolean;
      if (i % 2 === 0) {
        await updateCustomer(graph, id, { segment: `Bench${i}` });
        shows = (a) => a.segment === `Bench${i}`;
      } else {
        await writeTx(graph, (tx) =>
          setCustomerStatusTx(tx, id, 'suspended', 'CustomerSuspended', { reason: 'staleness benchmark' }),
        );
        shows = (a) => a.status === 'suspended';
      }
      const committed = performance.now();
      for (;;) {
        if (shows(await read(api, id))) break;
        if (performance.now() - committed > 10_000) throw new Error(`round ${i}: not seen within 10 s`);
        await sleep(1);
      }
      staleness.push(performance.now() - committed);
    }
    const hits = (await metric('persona_read_cache_hits_total')) - hitsBefore;
    const misses = (await metric('persona_read_cache_misses_total')) - missesBefore;
    return { mode, replicas, idleCpuMsPerS, staleness, hitRate: (100 * hits) / Math.max(1, hits + misses) };
  } finally {
    await Promise.all(apis.map((a) => stopProcess(a)));
    await sequencer.stop();
  }
}

async function main(): Promise<void> {
  const token = await benchToken(config, 'context:read', 'bench-staleness', '1h');
  const rows: Row[] = [];
  try {
    for (const mode of modes)
      for (const n of replicaCounts) {
        log(`${mode}, ${n} api replica(s): ${idleMs} ms idle, then ${rounds} writes`);
        rows.push(await measure(mode, n, token));
      }
  } finally {
    await driver.close();
  }
  console.log(`\nCross-process staleness (ms from the commit returning to the first answer showing it) and`);
  console.log(`Neo4j's CPU while idle (ms of CPU a second: the leader's load from keeping the caches current)\n`);
  console.log('| mode | replicas | Neo4j CPU idle, ms/s | n | p50 | p95 | p99 | max | hit rate |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const l = summarise(r.staleness);
    console.log(
      `| ${r.mode} | ${r.replicas} | ${f0(r.idleCpuMsPerS)} | ${l.count} | ${f2(l.p50)} | ${f2(l.p95)} | ` +
        `${f2(l.p99)} | ${f2(l.max)} | ${r.hitRate.toFixed(1)} % |`,
    );
  }
  for (const mode of modes) {
    const mine = rows.filter((r) => r.mode === mode);
    const worst = Math.max(...mine.map((r) => summarise(r.staleness).p99));
    const [first, last] = [mine[0], mine.at(-1)];
    console.log(
      `verdict (${mode}): staleness p99 at most ${f2(worst)} ms (target ≤ 200); Neo4j idle CPU ` +
        `${f0(first?.idleCpuMsPerS)} → ${f0(last?.idleCpuMsPerS)} ms/s ` +
        `from ${first?.replicas} to ${last?.replicas} replicas`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
