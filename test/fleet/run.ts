/**
 * The fleet test (`npm run test:fleet`): Persona run as a fleet on one machine and broken on
 * purpose (test/fleet/fleet.ts: two workers, two apis behind HAProxy, three Kafka nodes, a Neo4j
 * and a Temporal of its own, the stack's gateway simulator). While the load of test/fleet/load.ts
 * runs, it kills (SIGKILL) and restarts a worker, an api replica and a Kafka node, and restarts
 * Neo4j, each at its own time, which of them drawn from the printed seed. Then it checks and prints
 * (test/fleet/checks.ts): no payment charged twice (the gateway's records); every workflow the
 * fleet accepted finished or waiting where ops see it; each customer's events on Kafka whole and
 * once; every read with a consistency token at or past it; and its figures: what the clients saw
 * during each fault and how long it took to heal, cross-replica staleness, the read cache's hit
 * rate by routing mode. Exits 1 when an invariant does not hold.
 *
 *   npm run test:fleet -- [--seconds 60] [--scale 1] [--seed N]
 *
 * `--scale` multiplies the load's rates and population (CI runs 1; by hand, more).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { signToken } from '../support/api';
import { metricValue, scrape } from '../support/observability';
import { mulberry32 } from '../../scripts/random';
import { chargesPerPayment, eventsOnKafka, settleWorkflows, VISIBLY_WAITING } from './checks';
import { FleetClient, percentile, type Seen } from './client';
import { startFleet, type Fleet } from './fleet';
import { drive, newLedger, populate, type Population } from './load';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    scale: { type: 'string', default: '1' },
    seed: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const scale = Number(values.scale);
const seed = Number(values.seed ?? process.env.PERSONA_FLEET_SEED ?? Math.floor(Math.random() * 2 ** 31));
if (!(seconds >= 30) || !(scale > 0) || !Number.isInteger(seed)) {
  console.error('fleet: --seconds must be at least 30, --scale positive, --seed a whole number');
  process.exit(2);
}
const log = (line: string) => console.log(`[fleet] ${line}`);

interface Fault {
  name: string;
  at: number;
  /** When what was broken runs again. */
  back?: number;
}

/** The faults, one after another at fixed shares of the run, each component drawn from the seed. */
/** What docker-compose.yml (`stop_grace_period`) and the Helm chart give a worker to stop. */
const WORKER_GRACE_MS = 45_000;

async function breakIt(
  fleet: Fleet,
  choice: { worker: number; api: number; node: number },
  t0: number,
  faults: Fault[],
  problems: string[],
): Promise<void> {
  const until = async (share: number) => {
    const due = t0 + share * seconds * 1000;
    if (due > Date.now()) await sleep(due - Date.now());
  };
  const fault = async (name: string, broken: () => Promise<void>, healed: () => Promise<void>, downMs: number) => {
    const f: Fault = { name, at: Date.now() };
    faults.push(f);
    log(`fault: ${name}`);
    await broken();
    await sleep(downMs);
    await healed();
    f.back = Date.now();
    log(`fault: ${name}: back after ${f.back - f.at} ms`);
  };
  const { worker, api } = choice;
  await until(0.1);
  await fault(
    `worker ${worker} killed`,
    () => fleet.killWorker(worker),
    () => fleet.restartWorker(worker),
    2000,
  );
  // The other worker as a rolling deploy replaces it, recoveries in flight: it drains what it runs
  // (within the grace docker-compose.yml and the chart give it) and another takes its place.
  const other = 1 - worker;
  await until(0.2);
  await fault(
    `worker ${other} restarted (SIGTERM, as a rolling deploy)`,
    async () => {
      const stopped = await fleet.stopWorker(other, WORKER_GRACE_MS);
      log(`worker ${other} ${stopped.onItsOwn ? 'stopped' : 'was killed, not stopped,'} after ${stopped.ms} ms`);
      if (!stopped.onItsOwn) problems.push(`worker ${other} did not stop within ${WORKER_GRACE_MS} ms of SIGTERM`);
    },
    () => fleet.restartWorker(other),
    0,
  );
  await until(0.3);
  await fault(
    `api ${api} killed`,
    () => fleet.killApi(api),
    () => fleet.restartApi(api),
    2000,
  );
  const node = fleet.kafka.nodes[choice.node];
  await until(0.5);
  if (node)
    await fault(
      `Kafka node ${node.id} killed`,
      async () => node.kill(),
      () => node.start(),
      5000,
    );
  await until(0.7);
  await fault(
    'Neo4j restarted',
    async () => {
      await fleet.neo4j.stop();
    },
    () => fleet.neo4j.start(),
    0,
  );
}

/** What the clients saw from each fault until the next: failed answers, and the last one's time. */
function duringFaults(seen: Seen[], faults: Fault[], end: number) {
  return faults.map((f, i) => {
    const to = faults[i + 1]?.at ?? end;
    const window = seen.filter((s) => s.at >= f.at && s.at < to && s.route !== 'direct');
    const failed = window.filter((s) => s.status === 0 || s.status >= 500);
    const lastFailed = failed.reduce((t, s) => Math.max(t, s.at), f.at);
    const byStatus = new Map<string, number>();
    for (const s of failed) {
      const key = `${s.status === 0 ? 'no answer' : s.status} ${s.kind} (${(s.why ?? '').slice(0, 90)})`;
      byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
    }
    return {
      fault: f.name,
      requests: window.length,
      failed: failed.length,
      statuses:
        [...byStatus]
          .sort((a, b) => b[1] - a[1])
          .map(([s, n]) => `${n}× ${s}`)
          .join('; ') || '-',
      healedMs: failed.length === 0 ? 0 : lastFailed - f.at,
      downMs: (f.back ?? f.at) - f.at,
    };
  });
}

/**
 * What each api's read cache did over the run (its counters since it last started): why reads
 * missed, how many it answered stale while Neo4j was away, how often its tail forgot everything.
 */
async function readCacheStates(fleet: Fleet): Promise<string[]> {
  const lines: string[] = [];
  for (const [i, api] of fleet.apis.entries()) {
    const samples = await scrape(api.url).catch(() => null);
    if (!samples) {
      lines.push(`api ${i}: no /metrics`);
      continue;
    }
    const misses = samples
      .filter((x) => x.name === 'persona_read_cache_misses_total' && x.value > 0)
      .map((x) => `${x.value} ${x.labels.reason}`)
      .join(', ');
    lines.push(
      `api ${i}: ${metricValue(samples, 'persona_read_cache_hits_total')} hits, misses (${misses || 'none'}), ` +
        `${metricValue(samples, 'persona_read_cache_stale_answers_total')} answered stale, ` +
        `${metricValue(samples, 'persona_read_cache_resets_total')} resets`,
    );
  }
  return lines;
}

/** The read cache's hit rate in each routing mode, over customers whose context nobody read yet. */
async function hitRates(fleet: Fleet, client: FleetClient, pop: Population) {
  const rates: Record<string, string> = {};
  const counts = async () => {
    let hits = 0;
    let reads = 0;
    for (const api of fleet.apis) {
      const samples = await scrape(api.url);
      const h = metricValue(samples, 'persona_read_cache_hits_total');
      hits += h;
      reads += h + metricValue(samples, 'persona_read_cache_misses_total');
    }
    return { hits, reads };
  };
  const half = Math.floor(pop.debtors.length / 2);
  for (const [mode, base, customers] of [
    ['by customer', fleet.byCustomer, pop.debtors.slice(0, half)],
    ['round robin', fleet.roundRobin, pop.debtors.slice(half)],
  ] as const) {
    const before = await counts();
    // A payment is three reads back to back (routing's context, fraud's, the checkout), as
    // test/integration/replica-routing.test.ts has them; each customer pays three times.
    for (let round = 0; round < 3; round++)
      for (const d of customers)
        for (const what of ['context', 'context', 'checkout-options'])
          await client.once('hit-rate read', mode, base, 'GET', `/api/v1/customers/${d.id}/${what}`, {
            customerId: d.id,
          });
    const after = await counts();
    rates[mode] = `${(((after.hits - before.hits) / Math.max(1, after.reads - before.reads)) * 100).toFixed(1)} %`;
  }
  return rates;
}

async function main(): Promise<number> {
  log(`seed ${seed} (replay: PERSONA_FLEET_SEED=${seed} npm run test:fleet -- --seconds ${seconds} --scale ${scale})`);
  // The faults' choices from a generator of their own, drawn before the load: the seed replays them
  // whatever the load's timing (the load's own draws depend on how many requests ran).
  const faultRand = mulberry32(seed);
  const choice = {
    worker: Math.floor(faultRand() * 2),
    api: Math.floor(faultRand() * 2),
    node: Math.floor(faultRand() * 3),
  };
  const rand = mulberry32(seed + 1);
  const fleet = await startFleet(log);
  const problems: string[] = [];
  let closeClient = () => {};
  try {
    const n = (x: number) => Math.max(1, Math.round(x * scale));
    const pop = await populate(fleet.graph, { payers: n(40), debtors: n(60), flagged: n(20) });
    const token = await signToken(fleet.config.jwtSecret, 'ops', 'fleet-test', '2h');
    const client = new FleetClient(token);
    closeClient = () => client.close();
    const ledger = newLedger();
    const rates = { interactions: n(10), reads: n(20), recoveries: n(1.5), onboardings: n(1), fraud: n(0.5) };
    log(
      `load for ${seconds} s: ${JSON.stringify(rates)} a second; ${pop.payers.length} payers, ` +
        `${pop.debtors.length} debtors, ${pop.flagged.length} flagged`,
    );
    const t0 = Date.now();
    const faults: Fault[] = [];
    let over = false;
    const load = drive(fleet, client, pop, ledger, rates, rand, () => over);
    try {
      // A fault that fails (a process not started again) fails the run at once, with the fleet stopped.
      await Promise.all([sleep(seconds * 1000), breakIt(fleet, choice, t0, faults, problems)]);
    } finally {
      over = true;
      await load;
    }
    const end = Date.now();
    log(`load over after ${Math.round((end - t0) / 1000)} s: ${client.seen.length} requests`);

    const outcomes = await settleWorkflows(fleet, client, ledger, 180_000);
    const money = await chargesPerPayment(fleet, pop, ledger);
    const kafka = await eventsOnKafka(
      fleet,
      [
        ...pop.payers.map((p) => p.id),
        ...pop.debtors.map((d) => d.id),
        ...pop.flagged,
        ...new Set(outcomes.flatMap((o) => (o.customerId ? [o.customerId] : []))),
      ],
      120_000,
    );
    const caches = await readCacheStates(fleet);
    const hits = await hitRates(fleet, client, pop);

    const tally = new Map<string, number>();
    for (const o of outcomes) {
      const key = `${o.kind} ${o.status}${o.state ? ` (${o.state})` : ''}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    log(`workflows: ${[...tally].map(([k, v]) => `${v} ${k}`).join(', ')}`);
    log(
      `money: ${money.payments} payments recovering, ${money.charges} charge attempts at the gateway, ` +
        `${money.charged} charged (${money.chargedInDoubt} of them reported but never answered 202), ` +
        `${money.twice.length} charged twice`,
    );
    log(
      `kafka: ${kafka.customers} customers, ${kafka.events} events in order (${kafka.messages} messages, ` +
        `${kafka.resent} sent again), ${kafka.problems.length} problems`,
    );
    log(
      `read-your-writes: ${ledger.ryw.ok} reads at or past their token, ${ledger.ryw.unavailable} answered ` +
        `unavailable, ${ledger.ryw.behind.length} behind it`,
    );
    const st = ledger.staleness;
    log(
      `cross-replica staleness: ${st.length} samples, p50 ${percentile(st, 0.5).toFixed(1)} ms, ` +
        `p99 ${percentile(st, 0.99).toFixed(1)} ms, max ${percentile(st, 1).toFixed(1)} ms`,
    );
    log(
      `read cache hit rate, 3 payments of 3 reads a customer: ${Object.entries(hits)
        .map(([m, r]) => `${m} ${r}`)
        .join(', ')}`,
    );
    log('read caches over the run (since each api last started):');
    for (const line of caches) log(`  ${line}`);
    log('during each fault (clients through the balancer):');
    for (const f of duringFaults(client.seen, faults, end))
      log(
        `  ${f.fault}: down ${f.downMs} ms; ${f.failed} of ${f.requests} requests failed (${f.statuses}); ` +
          `healed ${f.healedMs} ms after it began`,
      );
    const downs = new Map<string, number>();
    for (const m of fleet.balancerLog().matchAll(/Server (\S+) is DOWN, reason: ([^,]+)/g)) {
      const key = `${m[1]} (${m[2]})`;
      downs.set(key, (downs.get(key) ?? 0) + 1);
    }
    log(`the balancer took a server out ${[...downs.values()].reduce((a, b) => a + b, 0)} times: ${tallied(downs)}`);
    log(`shed by the clients (their pool full): ${tallied(ledger.shed)}`);
    const refused = new Map<string, number>();
    for (const r of ledger.refused)
      refused.set(`${r.kind} HTTP ${r.status}`, (refused.get(`${r.kind} HTTP ${r.status}`) ?? 0) + 1);
    if (refused.size > 0) log(`never accepted after retries: ${tallied(refused)}`);
    for (const r of ledger.refused.filter((x) => x.status !== 503 && x.status !== 0).slice(0, 5))
      log(`  ${r.kind} HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);

    problems.push(...money.twice, ...kafka.problems.slice(0, 20));
    if (kafka.problems.length > 20) problems.push(`… and ${kafka.problems.length - 20} more on Kafka`);
    for (const b of ledger.ryw.behind)
      problems.push(`read behind its token ${b.token}: ltv ${b.ltv}, at least ${b.want}.00 recorded`);
    for (const o of outcomes)
      if (o.status !== 'COMPLETED' && !(o.status === 'RUNNING' && VISIBLY_WAITING.has(o.state ?? '')))
        problems.push(
          `${o.kind} ${o.id}: ${o.status}${o.state ? ` (${o.state})` : ''}, neither finished nor waiting visibly`,
        );
    // A recovery says recovered exactly when the gateway made its one charge.
    for (const w of ledger.workflows.filter((x) => x.kind === 'recovery')) {
      const state = outcomes.find((o) => o.id === w.id)?.state;
      const charged = money.succeeded.get(w.key) ?? 0;
      if ((state === 'recovered') !== (charged === 1))
        problems.push(`payment ${w.key}: recovery ${state ?? 'unknown'}, ${charged} successful charges`);
    }
    problems.push(...money.unknown);
    if (ledger.ryw.ok === 0) problems.push('no read with a consistency token was answered');
    problems.push(...ledger.ryw.refused);
    // A 503 is what an outage or an overload answers, and the clients' retry budget may run out on
    // two saturated cores (a figure above); anything else never accepted is a bug.
    const wrong = ledger.refused.filter((r) => r.status !== 503 && r.status !== 0);
    if (wrong.length > 0) problems.push(`${wrong.length} requests refused with neither an answer nor a 503`);
    // Whatever a client saw, a read as much as a write: a 500 (a gRPC INTERNAL or UNKNOWN) is a bug.
    const errors = client.seen.filter((x) => x.status >= 500 && ![502, 503, 504].includes(x.status));
    for (const e of errors.slice(0, 5)) problems.push(`${e.kind} answered ${e.status}: ${e.why ?? ''}`);
    if (errors.length > 5) problems.push(`… and ${errors.length - 5} more answers of 500`);
    if (faults.length !== 5) problems.push(`${faults.length} of 5 faults happened`);
  } finally {
    for (const [what, procs] of [
      ['api', fleet.apis],
      ['worker', fleet.workers],
    ] as const)
      for (const [i, p] of procs.entries())
        if (p.child.exitCode === null && p.child.signalCode === null) {
          // What a process logged as an error (an answer 500 says only "logged"), for the run's output:
          // each message once, with how often and its first line.
          const seen = new Map<string, { n: number; line: string }>();
          for (const line of p.output().split('\n')) {
            if (!/"level":(50|60)/.test(line)) continue;
            const msg = /"msg":"((?:[^"\\]|\\.){0,120})/.exec(line)?.[1] ?? line.slice(0, 120);
            const s = seen.get(msg);
            if (s) s.n++;
            else seen.set(msg, { n: 1, line });
          }
          for (const [msg, { n, line }] of seen)
            console.error(`[fleet] ${what} ${i} logged ${n}× "${msg}", first: ${line.slice(0, 1500)}`);
        } else {
          problems.push(`${what} ${i} exited (${p.child.exitCode ?? p.child.signalCode}) on its own`);
          const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'persona-fleet-')), `${what}-${i}.log`);
          writeFileSync(file, p.output(), { mode: 0o600, flag: 'wx' });
          console.error(`[fleet] ${what} ${i} exited; what it printed is in ${file}`);
        }
    closeClient();
    await fleet.stop();
  }
  for (const p of problems) console.error(`[fleet] PROBLEM ${p}`);
  log(problems.length === 0 ? `passed (seed ${seed})` : `FAILED: ${problems.length} problems (seed ${seed})`);
  return problems.length === 0 ? 0 : 1;
}

const tallied = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${n}× ${k}`)
    .join(', ') || 'none';

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
