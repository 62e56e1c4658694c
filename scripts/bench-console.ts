/**
 * The console's customer page benchmark (issue 25, item 7), on the local Neo4j and Temporal:
 *
 *   npm run bench:console -- [--customers 200] [--shared 100000] [--recoveries 40] [--passes 3]
 *                            [--clients 1,4] [--autocannon-seconds 10]
 *
 * 1. Samples --customers active customers of the graph (seed it first: `npm run seed -- --customers
 *    1000000 …`), and puts one of them on a device shared by --shared customers (seeded straight
 *    into the graph, removed again at the end); one of those --shared customers is read too.
 * 2. Starts an api and a worker process of its own (on a task queue of their own), signs in to the
 *    console as ops through the sign-in form, and reports a failed payment for --recoveries of the
 *    customers (REST, a card of theirs): their pages list a real recovery workflow (running in dunning
 *    or recovered), whose state the page queries, and its history. These are reported apart too.
 * 3. For each client count: every customer's page (`GET /console/customers/{id}`) --passes times in
 *    a shuffled order, and, as the baseline in the same run, the same customers' REST profile
 *    (`GET /api/v1/customers/{id}/profile`, one graph read): p50, p95, p99 and max of each, the first
 *    pass (the api's cold) apart, and the shared-device customers' pages apart.
 * 4. autocannon (an independent client) over the same pages for --autocannon-seconds, as a
 *    cross-check of the latency distribution (it reports p97.5, not p95) and the throughput.
 * Every page is checked (200, the identity graph's block present); a failure is counted and printed.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import neo4j from 'neo4j-driver';
import { Client, Connection } from '@temporalio/client';
import autocannon from 'autocannon';
import { loadConfig } from '../config/env';
import { createDriver } from '../graph';
import { removeDeviceCustomers, seedDeviceCustomers } from '../test/support/sharedDevice';
import { signIn } from '../test/support/console';
import { startApiProcess, startWorkerProcess, stopProcess } from '../test/support/processes';
import { benchToken, f0, summarise, type Latencies } from './benchKit';
import { mulberry32 } from './random';
import { temporalTransport } from '../temporal/transport';

const { values } = parseArgs({
  options: {
    customers: { type: 'string', default: '200' },
    shared: { type: 'string', default: '100000' },
    passes: { type: 'string', default: '3' },
    clients: { type: 'string', default: '1,4' },
    'autocannon-seconds': { type: 'string', default: '10' },
    recoveries: { type: 'string', default: '40' },
  },
});
const sampleSize = Number(values.customers);
const sharedCount = Number(values.shared);
const passes = Number(values.passes);
const clientCounts = values.clients.split(',').map(Number);
const autocannonSeconds = Number(values['autocannon-seconds']);
const recoveries = Number(values.recoveries);

const config = loadConfig();
const driver = createDriver(config);
const db = { database: config.NEO4J_DATABASE };
const rand = mulberry32(7);

function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

interface Run {
  all: Latencies;
  firstPass: Latencies;
  shared: Latencies;
  withRecovery: Latencies;
  failures: number;
}

/** Reads every id `passes` times with `clients` callers at once; latencies in ms. */
async function measure(
  ids: string[],
  sharedIds: Set<string>,
  clients: number,
  get: (id: string) => Promise<boolean>,
  recoveryIds: Set<string> = new Set(),
): Promise<Run> {
  const all: number[] = [];
  const first: number[] = [];
  const shared: number[] = [];
  const withRecovery: number[] = [];
  let failures = 0;
  for (let pass = 0; pass < passes; pass++) {
    const queue = shuffled(ids);
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
          const start = performance.now();
          const ok = await get(id);
          const took = performance.now() - start;
          if (!ok) failures++;
          all.push(took);
          if (pass === 0) first.push(took);
          if (sharedIds.has(id)) shared.push(took);
          if (recoveryIds.has(id)) withRecovery.push(took);
        }
      }),
    );
  }
  return {
    all: summarise(all),
    firstPass: summarise(first),
    shared: summarise(shared),
    withRecovery: summarise(withRecovery),
    failures,
  };
}

const row = (name: string, l: Latencies): string =>
  `| ${name.padEnd(44)} | ${f0(l.count).padStart(6)} | ${l.p50.toFixed(1).padStart(7)} | ` +
  `${l.p95.toFixed(1).padStart(7)} | ${l.p99.toFixed(1).padStart(7)} | ${l.max.toFixed(1).padStart(7)} |`;

async function main(): Promise<void> {
  const sample = await driver.executeQuery(
    `MATCH (c:Customer {status: 'active'})-[:LOGGED_IN_FROM]->(:Device)
     WITH DISTINCT c LIMIT 200000
     WITH c ORDER BY rand() LIMIT $n
     RETURN c.id AS id`,
    { n: neo4j.int(sampleSize) },
    db,
  );
  const ids = sample.records.map((r) => r.get('id') as string);
  if (ids.length < sampleSize)
    throw new Error(`only ${ids.length} active customers with a device: seed the graph first (npm run seed)`);
  const total = (await driver.executeQuery('MATCH (c:Customer) RETURN count(c) AS n', {}, db)).records[0]?.get(
    'n',
  ) as unknown;
  const device = await driver.executeQuery(
    'MATCH (:Customer {id: $id})-[:LOGGED_IN_FROM]->(d:Device) RETURN d.id AS id LIMIT 1',
    { id: ids[0] },
    db,
  );
  const deviceId = device.records[0]?.get('id') as string;
  console.log(
    `bench:console: ${ids.length} customers of a ${f0(Number(total))}-customer graph; seeding ` +
      `${f0(sharedCount)} customers onto device ${deviceId} of customer ${ids[0]} …`,
  );
  const started = performance.now();
  const seeded = await seedDeviceCustomers({ driver, database: config.NEO4J_DATABASE }, deviceId, sharedCount);
  console.log(`  seeded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const sharedIds = new Set([ids[0] as string, seeded[0] as string]);
  const readIds = [...ids, seeded[0] as string];

  const taskQueue = `bench-console-${randomUUID()}`;
  const payments: string[] = [];
  const api = await startApiProcess({ PERSONA_RATE_LIMIT_OPS: '10000000,10000000', TEMPORAL_TASK_QUEUE: taskQueue });
  const worker = await startWorkerProcess({ TEMPORAL_TASK_QUEUE: taskQueue });
  try {
    const token = await benchToken(config, 'ops', 'bench-console', '2h');
    // The console's own sign-in form, over HTTP.
    const cookie = await signIn(
      { request: (path, init) => fetch(`${api.url}${path}`, { ...init, redirect: 'manual' }) },
      token,
    );
    // Real recoveries for some customers: a card of theirs declined (the gateway simulator then
    // answers the retries), so their pages list, describe and query a workflow.
    const cards = await driver.executeQuery(
      `UNWIND $ids AS id
       MATCH (c:Customer {id: id})-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {status: 'active'})
       WITH c, collect(p.id)[0] AS card WHERE card IS NOT NULL
       RETURN c.id AS customer, card`,
      { ids: ids.slice(1, 1 + recoveries) },
      db,
    );
    const reporter = await benchToken(config, 'payments:report', 'bench-console', '2h');
    const recoveryIds = new Set<string>();
    for (const r of cards.records) {
      const paymentId = `bench-${randomUUID()}`;
      const res = await fetch(`${api.url}/api/v1/payment-failures`, {
        method: 'POST',
        headers: { authorization: `Bearer ${reporter}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          payment_id: paymentId,
          customer_id: r.get('customer') as string,
          payment_method_id: r.get('card') as string,
          amount: 2599,
          currency: 'EUR',
          decline_code: 'insufficient_funds',
        }),
      });
      if (res.status === 202) {
        recoveryIds.add(r.get('customer') as string);
        payments.push(paymentId);
      } else console.log(`  a failure report answered ${res.status}: ${await res.text()}`);
    }
    console.log(`  ${recoveryIds.size} customers have a recovery workflow`);
    const page = async (id: string) => {
      const res = await fetch(`${api.url}/console/customers/${id}`, { headers: { cookie } });
      const body = await res.text();
      return res.status === 200 && body.includes('id="identity-graph"');
    };
    const profile = async (id: string) => {
      const res = await fetch(`${api.url}/api/v1/customers/${id}/profile`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await res.arrayBuffer();
      return res.status === 200;
    };
    // A warm-up over other customers: connections, JIT, the api's first queries.
    await measure(ids.slice(0, 20), new Set(), 1, page);

    console.log(
      `\n| ${'what (ms)'.padEnd(44)} | ${'reads'.padStart(6)} | ${'p50'.padStart(7)} | ` +
        `${'p95'.padStart(7)} | ${'p99'.padStart(7)} | ${'max'.padStart(7)} |`,
    );
    console.log(`| ${'-'.repeat(44)} | ${'-'.repeat(6)} |${` ${'-'.repeat(7)} |`.repeat(4)}`);
    for (const clients of clientCounts) {
      const base = await measure(readIds, sharedIds, clients, profile);
      const run = await measure(readIds, sharedIds, clients, page, recoveryIds);
      console.log(row(`REST profile (baseline), ${clients} client(s)`, base.all));
      console.log(row(`customer page, ${clients} client(s), all passes`, run.all));
      console.log(row(`customer page, ${clients} client(s), first pass`, run.firstPass));
      console.log(row(`customer page, ${clients} client(s), shared device`, run.shared));
      console.log(row(`customer page, ${clients} client(s), with a recovery`, run.withRecovery));
      if (run.failures + base.failures > 0) console.log(`  FAILURES: ${run.failures} pages, ${base.failures} profiles`);
    }

    // autocannon over both, the baseline first: the same ids in turn, 4 connections each.
    const hammer = async (what: string, path: (id: string) => string, headers: Record<string, string>) => {
      let next = 0;
      const result = await autocannon({
        url: api.url,
        connections: 4,
        duration: autocannonSeconds,
        headers,
        requests: [
          {
            method: 'GET',
            setupRequest: (req) => ({ ...req, path: path(readIds[next++ % readIds.length] as string) }),
          },
        ],
      });
      console.log(
        `autocannon, ${what}, 4 connections, ${autocannonSeconds} s: ${f0(result.requests.average)}/s; ` +
          `p50 ${result.latency.p50} ms, p90 ${result.latency.p90} ms, p97.5 ${result.latency.p97_5} ms, ` +
          `p99 ${result.latency.p99} ms, max ${result.latency.max} ms; ` +
          `non-2xx ${result.non2xx}, errors ${result.errors}`,
      );
    };
    console.log('');
    await hammer('REST profile', (id) => `/api/v1/customers/${id}/profile`, { authorization: `Bearer ${token}` });
    await hammer('customer page', (id) => `/console/customers/${id}`, { cookie });
  } finally {
    // The recoveries would wait in dunning for days on a task queue nobody polls any more.
    const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, ...temporalTransport(config) });
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
    for (const payment of payments)
      await client.workflow
        .getHandle(`payment-recovery-${payment}`)
        .terminate('bench:console is over')
        .catch(() => undefined);
    await connection.close();
    await stopProcess(worker);
    await stopProcess(api);
    await removeDeviceCustomers({ driver, database: config.NEO4J_DATABASE }, deviceId, seeded);
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  // Closed whatever happened, or the process waits on the driver's pool.
  .finally(() => driver.close());
