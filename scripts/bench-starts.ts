/**
 * Workflow starts per second with the old per-workflow history keys and the per-customer keys,
 * in one run, on the stack's Neo4j and Temporal:
 *
 *   npm run bench:starts -- [--starts 2000] [--customers 2000] [--concurrency 16] [--rounds 2]
 *
 * Each start is what the api does for a fraud outcome or a recovery: provision the key for
 * (workflow, customer), then start the workflow through a client whose codec encrypts its input
 * (the workflow is the bare one of scripts/bench-workflows.ts with no activity, id
 * `fraud-outcome-bench-…`, so it takes a history key; a worker per set-up runs it to its end).
 *
 *   - old: the key handling before issue 46, kept here as the baseline — a `(:HistoryKey)` node per
 *     workflow, made and linked under the customer's lock before the start (a write), then read
 *     by the client's codec on its first encode (a miss in its cache: every workflow is new).
 *   - new: graph/historyKeys.ts — one read of the customer's status and key, the key unwrapped
 *     from the process's cache. Each customer's key is made once before the timing (the first
 *     start of a customer makes it: one write per customer, ever).
 *
 * Then the key handling alone, old and new: the provision and the encoding of the start's input
 * by the client's codec, without the Temporal call (what the change moved off the start).
 *
 * The customers are the graph's (`npm run seed` loads a large graph; at least `--customers` of
 * them are used, or all there are). Rounds alternate old and new, the first of each pair
 * swapping. The old set-up's key nodes are removed at the end.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCipheriv } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { LRUCache } from 'lru-cache';
import { loadConfig } from '../config/env';
import type { KeyRing } from '../config/keyRing';
import { createDriver, migrate } from '../graph';
import { lockNode, readTx, writeTx, type Graph } from '../graph/graph';
import { graphHistoryKeys, provisionHistoryKey, WorkflowCustomers, type HistoryKeyStore } from '../graph/historyKeys';
import { graphFromConfig } from '../runtime/graph';
import { RequestContext } from '../runtime/requestContext';
import { PersonaPayloadCodec } from '../temporal/payloadCodec';
import { nativeConnectionOptions, temporalTransport } from '../temporal/transport';
import { workerInterceptors } from '../workers/logging';
import { openProcessSinks } from '../workers/openProcesses';
import { f2, summarise } from './benchKit';

const { values } = parseArgs({
  options: {
    starts: { type: 'string', default: '2000' },
    customers: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '2' },
  },
});
const starts = Number(values.starts);
const wantedCustomers = Number(values.customers);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
for (const [name, n] of Object.entries({ starts, customers: wantedCustomers, concurrency, rounds }))
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);

/** The old per-workflow key, as graph/historyKeys.ts made it before issue 46 (ids prefixed for the clean-up). */
const OLD_PREFIX = 'bench-old:';
const OLD = {
  provision: `
    MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    OPTIONAL MATCH (other:Customer)-[:HAS_HISTORY_KEY]->(:HistoryKey {id: $id})
    WHERE other <> c
    WITH c, count(other) > 0 AS taken
    FOREACH (_ IN CASE WHEN c.status = 'erased' OR taken THEN [] ELSE [1] END |
      MERGE (k:HistoryKey {id: $id})
        ON CREATE SET k.wrapped = $wrapped, k.wrapped_by = $wrappedBy, k.created_at = datetime()
      MERGE (c)-[:HAS_HISTORY_KEY]->(k))
    RETURN c.status = 'erased' AS erased, taken`,
  read: 'MATCH (k:HistoryKey {id: $id}) RETURN k.wrapped AS wrapped, k.wrapped_by AS wrappedBy',
};

function oldWrapped(ring: KeyRing, id: string) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', ring.active.key, iv);
  cipher.setAAD(Buffer.from(`history-key:${id}`));
  const sealed = Buffer.concat([iv, cipher.update(randomBytes(32)), cipher.final(), cipher.getAuthTag()]);
  return { wrapped: sealed.toString('base64'), wrappedBy: ring.active.id };
}

/**
 * The old store behind today's codec: the workflow is its own "customer" (so the codec asks for
 * the key `customer:<workflow id>`), and that key is the workflow's node, read from the graph on
 * a cache miss. The unwrap (the same AES-GCM as ever, microseconds) is skipped: the client and
 * the worker share the key material in `material` instead.
 */
function oldStore(g: Graph, material: Map<string, Buffer>): HistoryKeyStore {
  const lru = new LRUCache<string, Buffer>({ max: 10_000, ttl: 300_000 });
  return {
    async keyFor(keyId) {
      const cached = lru.get(keyId);
      if (cached) return cached;
      const id = `${OLD_PREFIX}${keyId.slice('customer:'.length)}`;
      const found = await readTx(g, async (tx) => (await tx.run(OLD.read, { id })).records[0]);
      if (!found) return null;
      const key = material.get(keyId) ?? randomBytes(32);
      material.set(keyId, key);
      lru.set(keyId, key);
      return key;
    },
    customerOf: async (workflowId) => workflowId,
    learn: () => true,
  };
}

async function oldProvision(g: Graph, ring: KeyRing, workflowId: string, customerId: string): Promise<void> {
  const id = `${OLD_PREFIX}${workflowId}`;
  await writeTx(g, async (tx) => {
    await tx.run(OLD.provision, { id, customerId, ...oldWrapped(ring, id) });
  });
}

/** Runs `op(0 … n-1)`, `concurrency` at once, each one's milliseconds pushed to `latencies`. */
async function timed(n: number, latencies: number[], op: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t0 = performance.now();
        await op(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = loadConfig();
  const driver = createDriver(config);
  await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  const graph = graphFromConfig(driver, config);
  const ring = config.payloadKeys;
  const [{ total }] = (await readTx(graph, async (tx) =>
    (await tx.run('MATCH (c:Customer) RETURN count(c) AS total')).records.map((r) => ({
      total: Number(r.get('total')),
    })),
  )) as [{ total: number }];
  const customers = await readTx(graph, async (tx) =>
    (
      await tx.run("MATCH (c:Customer) WHERE c.status = 'active' RETURN c.id AS id LIMIT toInteger($n)", {
        n: wantedCustomers,
      })
    ).records.map((r) => r.get('id') as string),
  );
  if (customers.length === 0) throw new Error('no active customer in the graph: run `npm run seed` first');
  console.log(
    `bench:starts — ${starts} starts per set-up, ${concurrency} at once, over ${customers.length} of the ` +
      `graph's ${total.toLocaleString()} customers, ${rounds} round(s) each`,
  );

  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, ...temporalTransport(config) });
  const native = await NativeConnection.connect(nativeConnectionOptions(config));
  const requests = new RequestContext();
  const directory = new WorkflowCustomers();
  const cacheOptions = {
    maxEntries: config.PERSONA_HISTORY_KEY_CACHE_ENTRIES,
    ttlMs: config.PERSONA_HISTORY_KEY_CACHE_TTL_MS,
    onboardingKeyDays: config.PERSONA_HISTORY_RETENTION_DAYS,
  };
  const material = new Map<string, Buffer>();
  const setups = {
    old: {
      codec: new PersonaPayloadCodec(ring, oldStore(graph, material)),
      provision: (workflowId: string, customerId: string) => oldProvision(graph, ring, workflowId, customerId),
    },
    new: {
      codec: new PersonaPayloadCodec(
        ring,
        graphHistoryKeys(graph, ring, { ...cacheOptions, decodes: false, workflowCustomers: directory }),
      ),
      provision: (workflowId: string, customerId: string) =>
        provisionHistoryKey(graph, ring, workflowId, customerId, directory),
    },
  };
  const workflowsPath = fileURLToPath(new URL('./bench-workflows.ts', import.meta.url));
  const run = `${Date.now().toString(36)}`;
  const workers = await Promise.all(
    (['old', 'new'] as const).map(async (name) => {
      const taskQueue = `bench-starts-${name}-${randomUUID()}`;
      const store =
        name === 'old'
          ? oldStore(graph, material)
          : graphHistoryKeys(graph, ring, {
              ...cacheOptions,
              decodes: true,
              workflowCustomers: new WorkflowCustomers(),
            });
      const worker = await Worker.create({
        connection: native,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue,
        workflowsPath,
        interceptors: workerInterceptors(requests),
        // The old design had no open processes; the new one's close is a write (at the end, not the start).
        sinks:
          name === 'new' ? openProcessSinks(graph, () => undefined) : { openProcesses: { closed: { fn: () => {} } } },
        dataConverter: { payloadCodecs: [new PersonaPayloadCodec(ring, store).marking()] },
        activities: { benchNoop: async (i: number) => i },
      });
      return { name, taskQueue, worker };
    }),
  );
  const running = workers.map((w) => w.worker.run());
  const queueOf = Object.fromEntries(workers.map((w) => [w.name, w.taskQueue])) as Record<'old' | 'new', string>;
  const clients = Object.fromEntries(
    (['old', 'new'] as const).map((name) => [
      name,
      new Client({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        dataConverter: { payloadCodecs: [setups[name].codec] },
      }),
    ]),
  ) as Record<'old' | 'new', Client>;

  // Each customer's key made once (its first start ever would): the timing is of the starts after.
  const warm = Date.now();
  for (let i = 0; i < customers.length; i += 64)
    await Promise.all(
      customers
        .slice(i, i + 64)
        .map((c) => provisionHistoryKey(graph, ring, `fraud-outcome-bench-warm-${c}`, c, new WorkflowCustomers())),
    );
  console.log(`customers' keys checked or made before the timing in ${((Date.now() - warm) / 1000).toFixed(1)} s`);

  const results: Record<'old' | 'new', { rates: number[]; latencies: number[] }> = {
    old: { rates: [], latencies: [] },
    new: { rates: [], latencies: [] },
  };
  const perRound = Math.ceil(starts / rounds);
  let seq = 0;
  for (let r = 0; r < rounds; r++) {
    const order: ('old' | 'new')[] = r % 2 === 0 ? ['old', 'new'] : ['new', 'old'];
    for (const name of order) {
      const setup = setups[name];
      const began = Date.now();
      await timed(perRound, results[name].latencies, async (i) => {
        const workflowId = `fraud-outcome-bench-${name}-${run}-${r}-${i}`;
        await setup.provision(workflowId, customers[(seq + i) % customers.length] as string);
        await clients[name].workflow.start('benchBareWorkflow', { taskQueue: queueOf[name], workflowId, args: [0] });
      });
      seq += perRound;
      const rate = perRound / ((Date.now() - began) / 1000);
      results[name].rates.push(rate);
      console.log(
        `round ${r + 1} ${name}: ${perRound} starts in ${((Date.now() - began) / 1000).toFixed(2)} s = ${f2(rate)}/s`,
      );
    }
  }
  console.log('\nset-up  starts/s (per round)         p50 / p95 / p99 per start');
  for (const name of ['old', 'new'] as const) {
    const s = summarise(results[name].latencies);
    const mean = results[name].rates.reduce((a, b) => a + b, 0) / results[name].rates.length;
    console.log(
      `${name.padEnd(6)}  ${f2(mean).padStart(8)} (${results[name].rates.map(f2).join(', ')})`.padEnd(34) +
        `  ${f2(s.p50)} / ${f2(s.p95)} / ${f2(s.p99)} ms`,
    );
  }
  const ratio =
    results.new.rates.reduce((a, b) => a + b, 0) /
    Math.max(
      1e-9,
      results.old.rates.reduce((a, b) => a + b, 0),
    );
  console.log(`new / old: ${f2(ratio)}x`);

  // The key handling alone, the part issue 46 changed: provision, then encode the start's input
  // as the client's codec does (no Temporal call), the same concurrency and customers.
  console.log('\nthe key handling alone (provision + encode the input, no Temporal start):');
  const input = {
    metadata: { encoding: new TextEncoder().encode('json/plain') },
    data: new TextEncoder().encode('[0]'),
  };
  const alone: Record<'old' | 'new', { rate: number; latencies: number[] }> = {
    old: { rate: 0, latencies: [] },
    new: { rate: 0, latencies: [] },
  };
  for (const name of ['new', 'old'] as const) {
    const setup = setups[name];
    const began = Date.now();
    await timed(starts, alone[name].latencies, async (i) => {
      const workflowId = `fraud-outcome-bench-${name}-${run}-keys-${i}`;
      await setup.provision(workflowId, customers[(seq + i) % customers.length] as string);
      await setup.codec.encode([input], { type: 'workflow', namespace: config.TEMPORAL_NAMESPACE, workflowId });
    });
    alone[name].rate = starts / ((Date.now() - began) / 1000);
  }
  for (const name of ['old', 'new'] as const) {
    const s = summarise(alone[name].latencies);
    console.log(
      `${name.padEnd(6)}  ${f2(alone[name].rate).padStart(8)}/s`.padEnd(34) +
        `  ${f2(s.p50)} / ${f2(s.p95)} / ${f2(s.p99)} ms`,
    );
  }
  console.log(`new / old: ${f2(alone.new.rate / Math.max(1e-9, alone.old.rate))}x`);

  // Clean up: the old set-up's per-workflow key nodes (the new one made none).
  let removed = 0;
  for (;;) {
    const n = await writeTx(graph, async (tx) =>
      Number(
        (
          await tx.run(
            'MATCH (k:HistoryKey) WHERE k.id STARTS WITH $prefix ' +
              'WITH k LIMIT 5000 DETACH DELETE k RETURN count(*) AS n',
            { prefix: OLD_PREFIX },
          )
        ).records[0]?.get('n') ?? 0,
      ),
    );
    removed += n;
    if (n === 0) break;
  }
  console.log(`removed the old set-up's ${removed} key nodes`);
  for (const w of workers) w.worker.shutdown();
  await Promise.all(running);
  await connection.close();
  await native.close();
  await driver.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
