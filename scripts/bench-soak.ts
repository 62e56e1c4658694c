/**
 * The bounded graph under a sustained load (issue 47): interactions paced at `--rate` a second over
 * REST for `--minutes`, with what production runs beside it — the Kafka publisher carrying the
 * change feed to a topic (the log of record, its checkpoint a consumer of the feed) and the event
 * prune every `--prune-every` seconds — and the graph's node count by label at the start, every
 * minute and at the end:
 *
 *   npm run bench:soak -- [--rate 2000] [--minutes 10] [--customers 20000] [--senders 4] [--batch 100]
 *                         [--zipf 1.1] [--seed 7] [--prune-every 60] [--safety-minutes 60]
 *                         [--forget-consumers]
 *
 * The prune deletes transient events once every consumer passed them `--safety-minutes` ago
 * (PERSONA_EVENTS_PRUNE_SAFETY_MINUTES by default, 60: a 10-minute run then deletes nothing; pass a
 * few minutes to see the plateau within the run). Every other consumer of the graph's feed (a
 * `RelayCheckpoint`) holds pruning back too: the run names them, and `--forget-consumers` deletes
 * them first (a graph where tests left checkpoints of topics long gone). The sent items are shaped
 * as `bench:interactions` sends them (scripts/benchItems.ts).
 *
 * It WRITES to the graph it runs against (and deletes events from it): a benchmark graph only. It
 * starts its own api process; the publisher and the prune run in this process, as the worker's
 * activities do, and its checkpoint is deleted at the end (it would hold pruning back for good).
 * Figures go to bench/results/ as JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createKafkaPublisherActivities } from '../activities/kafkaPublisher';
import { createKafkaProducer, ensureTopics } from '../clients/kafka';
import { loadConfig, repoRoot } from '../config/env';
import { createDriver } from '../graph';
import { pruneEvents, pruneHorizon, type PruneSettings } from '../graph/eventPrune';
import { encodeCursor } from '../graph/feed';
import { readTx, writeTx } from '../graph/graph';
import { adoptRelayState } from '../graph/relay';
import { graphFromConfig, publisherEventKeys } from '../runtime/graph';
import { localKafkaBrokers } from '../stack/install';
import { kafkaCheckpointId } from '../temporal/kafkaPublisher';
import { startApiProcess, stopProcess } from '../test/support/processes';
import { benchToken, f0, f2 } from './benchKit';
import { driveWrites, ItemMaker, sampleCustomers, type Answer, type WriteStats } from './benchItems';
import { mulberry32, Zipf } from './random';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '2000' },
    minutes: { type: 'string', default: '10' },
    customers: { type: 'string', default: '20000' },
    senders: { type: 'string', default: '4' },
    batch: { type: 'string', default: '100' },
    zipf: { type: 'string', default: '1.1' },
    seed: { type: 'string', default: '7' },
    'prune-every': { type: 'string', default: '60' },
    'safety-minutes': { type: 'string' },
    'forget-consumers': { type: 'boolean', default: false },
  },
});
const rate = Number(values.rate);
const minutes = Number(values.minutes);
const senders = Number(values.senders);
const batchSize = Number(values.batch);
const seed = Number(values.seed);
const pruneEvery = Number(values['prune-every']);
const log = (line: string): void => console.log(`[bench-soak] ${line}`);

/** The labels counted: the customers' graph, and what the graph carries besides it. */
const LABELS = [
  'Customer',
  'PaymentMethod',
  'Device',
  'Address',
  'DigitalIdentifier',
  'Event',
  'Fact',
  'Interaction',
  'HistoryKey',
  'IngestOffset',
  'RelayCheckpoint',
] as const;

interface Counts {
  at: string;
  minute: number;
  total: number;
  byLabel: Record<string, number>;
}

interface Prune {
  at: string;
  horizon: string;
  transient: number;
  history: number;
  ms: number;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const driver = createDriver(config, { maxConnectionPoolSize: 8 });
  const graph = graphFromConfig(driver, config);
  const settings: PruneSettings = {
    safetyMs: Number(values['safety-minutes'] ?? config.PERSONA_EVENTS_PRUNE_SAFETY_MINUTES) * 60_000,
    capMs: config.PERSONA_EVENTS_PRUNE_CAP_HOURS * 3_600_000,
    historyMs: config.PERSONA_EVENTS_HISTORY_DAYS * 86_400_000,
  };
  // Node counts come from the count store: constant time whatever the label's size.
  const count = async (minute: number): Promise<Counts> =>
    readTx(graph, async (tx) => {
      const byLabel: Record<string, number> = {};
      for (const label of LABELS)
        byLabel[label] = Number((await tx.run(`MATCH (n:${label}) RETURN count(n) AS n`)).records[0]?.get('n'));
      const total = Number((await tx.run('MATCH (n) RETURN count(n) AS n')).records[0]?.get('n'));
      return { at: new Date().toISOString(), minute, total, byLabel };
    });

  // The log of record: a publisher from the feed's present to a topic of its own.
  const brokers = config.kafkaBrokers.length > 0 ? config.kafkaBrokers : localKafkaBrokers(config);
  const runId = `soak-${Date.now().toString(36)}`;
  const topic = `bench.${runId}.persona.events`;
  await ensureTopics({ ...config, kafkaBrokers: brokers }, [{ name: topic, partitions: 12, retentionMs: 3_600_000 }]);
  const producer = createKafkaProducer({ kafkaBrokers: brokers }, 'persona-bench-soak');
  const publisher = createKafkaPublisherActivities({
    graph,
    kafka: producer,
    publishesTo: (t) => t === topic,
    eventKeys: publisherEventKeys(graph, config),
  });
  const checkpoint = kafkaCheckpointId(topic);
  const now = await readTx(graph, async (tx) =>
    String((await tx.run('RETURN toString(datetime.realtime()) AS now')).records[0]?.get('now')),
  );
  await adoptRelayState(graph, checkpoint, {
    cursor: encodeCursor({ t: now, s: -1, id: '' }),
    delivered: 0,
    parked: [],
  });

  const others = (await pruneHorizon(graph, settings)).consumers.filter((c) => c.id !== checkpoint && c.holds_back);
  if (others.length > 0 && values['forget-consumers']) {
    await writeTx(graph, (tx) =>
      tx.run('MATCH (c:RelayCheckpoint) WHERE c.id IN $ids DETACH DELETE c', { ids: others.map((c) => c.id) }),
    );
    log(`forgot ${others.length} other consumers of the feed (--forget-consumers)`);
  } else if (others.length > 0)
    log(
      `${others.length} other consumers hold pruning back (${others
        .slice(0, 5)
        .map((c) => `${c.id} at ${c.position ?? 'the start'}`)
        .join(', ')}${others.length > 5 ? ', …' : ''}): pass --forget-consumers on a benchmark graph`,
    );

  const { total, customers } = await sampleCustomers(config, Number(values.customers), seed);
  if (customers.length === 0) throw new Error('no active customer with an active payment method: seed the graph first');
  const zipf = new Zipf(customers.length, Number(values.zipf));
  const poolRand = mulberry32(seed + 1);
  const paymentDevices = Array.from(
    { length: Math.max(1000, Math.floor(customers.length / 2)) },
    () => `fp-${runId}-${Math.floor(poolRand() * 2 ** 48).toString(16)}`,
  );
  const makers = Array.from(
    { length: senders },
    (_, i) => new ItemMaker(runId, `s${String(i)}`, customers, zipf, paymentDevices, seed * 100 + i),
  );

  const api = await startApiProcess({
    PERSONA_MAX_BODY_BYTES: String(1024 * 1024),
    PERSONA_RATE_LIMIT_AGENT: '10000000,10000000',
    PERSONA_RATE_LIMIT_OPS: '10000000,10000000',
  });
  const token = await benchToken(config, 'interactions:write', 'bench-soak-sender', '2h');
  const url = `${api.url}/api/v1/interactions`;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const post = async (items: Record<string, unknown>[]): Promise<{ status: number; body: Answer }> => {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ data: items }) });
    return { status: res.status, body: (await res.json()) as Answer };
  };
  log(
    `${total.toLocaleString('en-US')} customers in the graph, ${customers.length} sampled; ` +
      `${f0(rate)} interactions/s ` +
      `for ${minutes} min (${senders} senders, ${batchSize} a batch); prune every ${pruneEvery} s, ` +
      `safety ${settings.safetyMs / 60_000} min; publisher to ${topic}`,
  );

  const counts: Counts[] = [await count(0)];
  const prunes: Prune[] = [];
  let published = 0;
  let running = true;
  const started = Date.now();
  const publishing = (async () => {
    while (running) {
      const r = await publisher.publishEvents({
        checkpoint_id: checkpoint,
        topic,
        page_size: 1000,
        budget_ms: 1000,
      });
      published += r.published;
      if (r.caught_up) await sleep(200);
    }
  })();
  const pruning = (async () => {
    while (running) {
      await sleep(pruneEvery * 1000);
      const t0 = Date.now();
      const at = await pruneHorizon(graph, settings);
      const n = await pruneEvents(graph, at, { batchSize: config.PERSONA_EVENTS_PRUNE_BATCH_SIZE });
      prunes.push({ at: new Date().toISOString(), horizon: at.horizon, ...n, ms: Date.now() - t0 });
      log(
        `prune: horizon ${at.horizon}, ${n.transient} transient and ${n.history} other events in ${Date.now() - t0} ms`,
      );
    }
  })();
  const counting = (async () => {
    for (let m = 1; running; m++) {
      await sleep(Math.max(0, started + m * 60_000 - Date.now()));
      if (!running) break;
      const c = await count(m);
      counts.push(c);
      log(
        `minute ${m}: ${c.total.toLocaleString('en-US')} nodes; ` +
          LABELS.map((l) => `${l} ${c.byLabel[l]}`).join(', '),
      );
    }
  })();

  let writes: WriteStats;
  try {
    writes = await driveWrites(post, makers, senders, minutes * 60, batchSize, rate);
  } finally {
    running = false;
    await Promise.all([publishing, pruning, counting]);
    await stopProcess(api);
    await producer.close();
    // Its checkpoint would hold pruning back for good once this run's publisher is gone.
    await writeTx(graph, (tx) => tx.run('MATCH (c:RelayCheckpoint {id: $id}) DETACH DELETE c', { id: checkpoint }));
  }
  const end = await count(Math.round((Date.now() - started) / 60_000));
  counts.push(end);
  await driver.close();

  const start = counts[0] as Counts;
  const widths = [18, 12, 12, 10, 14];
  const row = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  console.log(`\n${row(['label', 'start', 'end', 'growth', 'per minute'])}`);
  console.log(`|${widths.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : `${'-'.repeat(n + 1)}:`)).join('|')}|`);
  const elapsedMin = (Date.now() - started) / 60_000;
  for (const label of [...LABELS, 'all nodes']) {
    const a = label === 'all nodes' ? start.total : (start.byLabel[label] ?? 0);
    const b = label === 'all nodes' ? end.total : (end.byLabel[label] ?? 0);
    const n = (x: number) => x.toLocaleString('en-US');
    console.log(row([label, n(a), n(b), n(b - a), f0((b - a) / elapsedMin)]));
  }
  const events = counts.map((c) => c.byLabel.Event ?? 0);
  log(
    `${f0(writes.interactionsPerSecond)} interactions/s recorded over ${f2(writes.seconds / 60)} min ` +
      `(${writes.paced?.late ?? 0} of ${writes.paced?.due ?? 0} batches sent late; ` +
      `batch p99 ${f2(writes.batchMs.p99)} ms); ` +
      `${published} events published; ${prunes.reduce((n, p) => n + p.transient + p.history, 0)} pruned in ` +
      `${prunes.length} runs; events in the graph by minute: ${events.join(', ')}`,
  );
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { rate, minutes, senders, batch: batchSize, seed, settings, topic, writes, prunes, counts, published },
      null,
      2,
    ),
  );
  log(`figures written to ${path.relative(repoRoot, file)}`);
}

main().catch((err: unknown) => {
  console.error(`bench-soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
