/**
 * How long another process's write takes to reach an api's read cache (issue 19's cross-process
 * staleness): one api process (cache on, defaults), and this script as the other process. Each
 * round warms a customer in the api's cache, commits a change through the graph functions (a
 * segment change, applied in place, or a suspension, which drops the entry), then reads the
 * context over REST every millisecond until the api answers it. Staleness is from the moment the
 * write's commit returned here to the first answer that shows it. Prints p50/p95/p99/max per kind
 * and together, and the api's hit rate during the run.
 *
 *   npm run bench:staleness -- [--rounds 200]
 *
 * Needs the local stack (`npm run stack:up`). It creates its own customers (a few hundred) and
 * leaves them; it never touches the seeded ones.
 */
import { randomUUID } from 'node:crypto';
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
import { cardInput } from '../test/support/graph';
import { metricValue, scrape } from '../test/support/observability';
import { startApiProcess, stopProcess } from '../test/support/processes';
import { benchToken, f2, summarise } from './benchKit';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '200' } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');

const config = loadConfig();
const driver = createDriver(config);
const graph = createGraph(driver, config.NEO4J_DATABASE, config.tokenKeys);

async function main(): Promise<void> {
  const api = await startApiProcess({ PERSONA_RATE_LIMIT_AGENT: '10000000,10000000' });
  const token = await benchToken(config, 'context:read', 'bench-staleness', '1h');
  const read = async (id: string) => {
    const res = await fetch(`${api.url}/api/v1/customers/${id}/context`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return (await res.json()) as { status: string; segment: string };
  };
  const metric = async (name: string) => metricValue(await scrape(api.url), name);
  const hitsBefore = await metric('persona_read_cache_hits_total');
  const missesBefore = await metric('persona_read_cache_misses_total');
  const samples: Record<'in place' | 'dropped', number[]> = { 'in place': [], dropped: [] };
  try {
    for (let i = 0; i < rounds; i++) {
      const id = randomUUID();
      await createCustomer(graph, { id, segment: 'Subscriber' });
      await addPaymentMethod(graph, id, cardInput());
      // Warm: the first fill may be overtaken by the tail bringing the creation itself.
      for (let k = 0; k < 3; k++) await read(id);
      await sleep(100);
      const kind = i % 2 === 0 ? 'in place' : 'dropped';
      let shows: (a: { status: string; segment: string }) => boolean;
      if (kind === 'in place') {
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
        const answer = await read(id);
        if (shows(answer)) break;
        if (performance.now() - committed > 10_000) throw new Error(`round ${i}: not seen within 10 s`);
        await sleep(1);
      }
      samples[kind].push(performance.now() - committed);
    }
    const hits = (await metric('persona_read_cache_hits_total')) - hitsBefore;
    const misses = (await metric('persona_read_cache_misses_total')) - missesBefore;
    console.log(`\nCross-process staleness over ${rounds} writes (ms from the commit returning to the first answer)\n`);
    console.log('| change | n | p50 | p95 | p99 | max |');
    console.log('|---|---:|---:|---:|---:|---:|');
    const all = [...samples['in place'], ...samples.dropped];
    for (const [name, s] of [...Object.entries(samples), ['all', all] as const]) {
      const l = summarise(s);
      console.log(`| ${name} | ${l.count} | ${f2(l.p50)} | ${f2(l.p95)} | ${f2(l.p99)} | ${f2(l.max)} |`);
    }
    console.log(`\napi hit rate during the run: ${((100 * hits) / Math.max(1, hits + misses)).toFixed(1)} %`);
    const p99 = summarise(all).p99;
    console.log(`verdict: staleness p99 ${f2(p99)} ms ${p99 <= 200 ? '≤' : '>'} 200 ms target`);
  } finally {
    await stopProcess(api);
    await driver.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
