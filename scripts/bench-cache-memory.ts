/**
 * The api's memory with its read cache full at the configured bound: starts one api process (the
 * defaults, or what the environment sets), reads the context of `--customers` distinct customers
 * of the graph over REST (`--clients` at once), and prints, every 10,000 reads and at the end, the
 * cache's entries and estimated bytes and the process's RSS and V8 heap, from its /metrics.
 *
 *   npm run bench:cache-memory -- [--customers 120000] [--clients 16]
 *
 * Needs the local stack with a seeded graph; reads only.
 */
import { parseArgs } from 'node:util';
import neo4j from 'neo4j-driver';
import { loadConfig } from '../config/env';
import { createDriver } from '../graph';
import { metricValue, scrape } from '../test/support/observability';
import { startApiProcess, stopProcess } from '../test/support/processes';
import { benchToken } from './benchKit';

const { values } = parseArgs({
  options: { customers: { type: 'string', default: '120000' }, clients: { type: 'string', default: '16' } },
});
const customers = Number(values.customers);
const clients = Number(values.clients);
if (!Number.isInteger(customers) || customers < 1) throw new Error('--customers must be a positive integer');
if (!Number.isInteger(clients) || clients < 1) throw new Error('--clients must be a positive integer');

const config = loadConfig();

async function main(): Promise<void> {
  const driver = createDriver(config);
  const ids = (
    await driver.executeQuery(
      'MATCH (c:Customer) RETURN c.id AS id LIMIT $n',
      { n: neo4j.int(customers) },
      {
        database: config.NEO4J_DATABASE,
      },
    )
  ).records.map((r) => r.get('id') as string);
  await driver.close();
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
