/**
 * The read cache's memory, two ways:
 *
 * 1. **What an entry costs.** In this process, a cache at the api's settings is filled with
 *    `--entries` real snapshots read from the graph; the heap after a full collection, less the
 *    heap before, over the entries, beside the cache's own estimate (`sizeOf` in
 *    api/readCache.ts), which must not be below it.
 * 2. **The api with its cache full.** One api process (the defaults, or what the environment sets,
 *    with the heap limit every api runs with) reads the context of `--customers` distinct
 *    customers over REST (`--clients` at once), and prints, every 10,000 reads and at the end, the
 *    cache's entries and estimated bytes and the process's RSS and V8 heap, from its /metrics.
 *
 *   npm run bench:cache-memory -- [--entries 20000] [--customers 60000] [--clients 16]
 *
 * Needs the local stack with a seeded graph; reads only.
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import neo4j from 'neo4j-driver';
import { ReadCache } from '../api/readCache';
import { readCustomerSnapshot } from '../graph/context';
import { loadConfig } from '../config/env';
import { createDriver, createGraph } from '../graph';
import { createLogger } from '../runtime/logger';
import { metricValue, scrape } from '../test/support/observability';
import { startApiProcess, stopProcess } from '../test/support/processes';
import { benchToken } from './benchKit';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '20000' },
    customers: { type: 'string', default: '60000' },
    clients: { type: 'string', default: '16' },
  },
});
const entries = Number(values.entries);
const customers = Number(values.customers);
const clients = Number(values.clients);
if (!Number.isInteger(entries) || entries < 100) throw new Error('--entries must be an integer of at least 100');
if (!Number.isInteger(customers) || customers < 1) throw new Error('--customers must be a positive integer');
if (!Number.isInteger(clients) || clients < 1) throw new Error('--clients must be a positive integer');

const config = loadConfig();

/** Part 1: fills a cache in this process with real snapshots and weighs the heap. */
async function entryCost(driver: ReturnType<typeof createDriver>, ids: string[]): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heapUsed = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const graph = createGraph(driver, config.NEO4J_DATABASE, config.tokenKeys);
  const cache = new ReadCache(
    graph,
    {
      enabled: true,
      maxEntries: ids.length,
      maxBytes: Number.MAX_SAFE_INTEGER,
      ttlMs: 3_600_000,
      freshMs: 3_600_000,
      breakerFailures: 5,
      breakerHalfOpenMs: 1000,
      staleMaxMs: 0,
    },
    createLogger('bench-cache-memory', 'warn'),
    config.PERSONA_READ_DEADLINE_MS,
  );
  cache.polled(Date.now() - 1000);
  let devices = 0;
  let methods = 0;
  let next = 0;
  const read = async () => {
    while (next < ids.length) {
      const { snapshot } = await cache.read(ids[next++] as string, 5000);
      devices += snapshot.devices.length;
      methods += snapshot.methods.length;
    }
  };
  await readCustomerSnapshot(graph, ids[0] as string); // the driver's connections and the code paths, first
  const before = heapUsed();
  await Promise.all(Array.from({ length: clients }, read));
  const measured = (heapUsed() - before) / cache.size;
  const estimated = cache.bytes / cache.size;
  console.log(
    `entry cost: ${cache.size.toLocaleString('en')} customers (${(devices / ids.length).toFixed(2)} devices, ` +
      `${(methods / ids.length).toFixed(2)} active methods each on average): measured ${measured.toFixed(0)} bytes ` +
      `an entry, estimated ${estimated.toFixed(0)} (${((estimated / measured) * 100).toFixed(0)} % of measured)\n`,
  );
}

async function main(): Promise<void> {
  const driver = createDriver(config);
  const ids = (
    await driver.executeQuery(
      'MATCH (c:Customer) RETURN c.id AS id LIMIT $n',
      { n: neo4j.int(customers + entries) },
      {
        database: config.NEO4J_DATABASE,
      },
    )
  ).records.map((r) => r.get('id') as string);
  try {
    await entryCost(driver, ids.splice(customers));
  } finally {
    await driver.close();
  }
  const api = await startApiProcess({ PERSONA_RATE_LIMIT_AGENT: '10000000,10000000' });
  const token = await benchToken(config, 'context:read', 'bench-cache-memory', '1h');
  const figures = async () => {
    const samples = await scrape(api.url);
    const metric = (name: string) => metricValue(samples, name);
    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    return (
      `entries ${metric('persona_read_cache_entries').toLocaleString('en')}, ` +
      `cache ${mb(metric('persona_read_cache_bytes'))} MB (estimated), ` +
      `RSS ${mb(metric('process_resident_memory_bytes'))} MB, ` +
      `V8 heap ${mb(metric('nodejs_heap_size_used_bytes'))} MB`
    );
  };
  try {
    console.log(`api started: ${await figures()}`);
    let next = 0;
    let done = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < ids.length) {
          const id = ids[next++] as string;
          const res = await fetch(`${api.url}/api/v1/customers/${id}/context`, {
            headers: { authorization: `Bearer ${token}` },
          });
          await res.arrayBuffer();
          if (++done % 10_000 === 0) console.log(`${done.toLocaleString('en')} read: ${await figures()}`);
        }
      }),
    );
    console.log(
      `\n${done.toLocaleString('en')} customers read in ${((Date.now() - started) / 1000).toFixed(0)} s; ` +
        `${await figures()}`,
    );
  } finally {
    await stopProcess(api);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
