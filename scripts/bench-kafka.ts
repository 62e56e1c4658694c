/**
 * Publishing the change feed to Kafka, on whatever graph the local Neo4j holds (measured on the
 * seeded million-customer graph) and the stack's broker:
 *
 *   npm run bench:kafka -- [--events 200000] [--page 1000] [--writes 200] [--rate 20] [--routing 20000]
 *                          [--partitions 1,2,4] [--routing-only]
 *
 * 1. Throughput: the publisher's activity (`publishEvents`, as the worker runs it, without
 *    Temporal around it) publishes the first `--events` events of the log to a fresh topic of 12
 *    partitions, `--page` events per produce request; beside it, in the same run, the baseline:
 *    reading the same pages from the graph without producing (after a warm-up pass, before and
 *    after the publish, so all meet the same page cache). Prints events/s of each and what producing adds per page.
 * 2. Latency: `--writes` new customers written at `--rate` per second while the publisher runs
 *    (caught up, polling every 200 ms, the feed's lag PERSONA_EVENTS_FEED_LAG_MS) and a consumer
 *    reads the topic; prints commit-to-consumer p50/p95/p99, and the same less the feed's lag.
 * 3. Consuming: `--routing` routing outcomes (succeeded payments of customers drawn from a Zipf
 *    distribution, s 1.1, over 20,000 sampled active customers, keyed by customer id) waiting on a
 *    fresh topic are handled by the api's consumer (`startAgentConsumer`, in this process: one writer
 *    per partition), once for each count in `--partitions` (1,2,4 by default), in that order and
 *    then the reverse (each count's figure is the mean of its two runs, so neither gains from a page
 *    cache the other warmed); beside it, the baseline: as many payments recorded by the same
 *    service REST calls (`recordInteractions`, the write lanes) in batches of 500, with no Kafka,
 *    before and after. Prints interactions/s of each (from a standing start, and from the first
 *    commit: the group's join left out), each partition's share and the transactions' size. It
 *    WRITES to the graph (LTV, last_used, one Interaction node per item): a benchmark graph only.
 *    `--routing-only` skips parts 1 and 2.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Consumer, MessagesStreamFallbackModes, MessagesStreamModes, stringDeserializers } from '@platformatic/kafka';
import { createKafkaPublisherActivities } from '../activities/kafkaPublisher';
import { apiDepsFromConfig } from '../api/deps';
import { startAgentConsumer } from '../api/kafkaConsumer';
import { MAX_INTERACTIONS } from '../api/requests';
import { recordInteractions } from '../api/services/interactions';
import { createKafkaProducer, ensureTopics, KAFKA_HEADERS, partitionOf, type KafkaProducer } from '../clients/kafka';
import { loadConfig, type Config } from '../config/env';
import { createCustomer, createDriver, type Graph } from '../graph';
import { readTx } from '../graph/graph';
import { encodeCursor, readFeedEntries } from '../graph/feed';
import { adoptRelayState } from '../graph/relay';
import { graphFromConfig, publisherEventKeys } from '../runtime/graph';
import { createLogger } from '../runtime/logger';
import { RequestContext } from '../runtime/requestContext';
import { connectTemporal } from '../temporal/connection';
import { mulberry32, Zipf } from './random';
import { kafkaCheckpointId } from '../temporal/kafkaPublisher';
import { localKafkaBrokers } from '../stack/install';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    page: { type: 'string', default: '1000' },
    writes: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20' },
    routing: { type: 'string', default: '20000' },
    partitions: { type: 'string', default: '1,2,4' },
    'routing-only': { type: 'boolean', default: false },
  },
});
const total = Number(values.events);
const page = Number(values.page);
const writes = Number(values.writes);
const rate = Number(values.rate);

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
const log = (line: string): void => console.log(`[bench-kafka] ${line}`);

async function main(): Promise<void> {
  const config = loadConfig();
  const brokers = config.kafkaBrokers.length > 0 ? config.kafkaBrokers : localKafkaBrokers(config);
  const driver = createDriver(config);
  const graph = graphFromConfig(driver, config);
  const run = randomUUID().slice(0, 8);
  const topic = `bench.${run}.persona.events`;
  const settings = {
    ...config,
    kafkaBrokers: brokers,
    PERSONA_KAFKA_EVENTS_TOPIC: topic,
    PERSONA_KAFKA_EVENTS_PARTITIONS: 12,
  };
  await ensureTopics(settings, [{ name: topic, partitions: 12, retentionMs: 3_600_000 }]);
  const producer = createKafkaProducer(settings, 'persona-bench');
  if (values['routing-only']) {
    await routingThroughput(config, graph, brokers, producer, Number(values.routing));
    await producer.close();
    await driver.close();
    return;
  }
  const publisher = createKafkaPublisherActivities({
    graph,
    kafka: producer,
    publishesTo: (t) => t === topic,
    eventKeys: publisherEventKeys(graph, config),
  });
  const checkpoint = kafkaCheckpointId(topic);
  const lagMs = config.PERSONA_EVENTS_FEED_LAG_MS;

  // Baseline: the same pages read from the graph, nothing produced.
  const readOnly = async (): Promise<number> => {
    const t0 = performance.now();
    let after: string | undefined;
    let n = 0;
    while (n < total) {
      const entries = await readFeedEntries(graph, { after, limit: page, lagMs });
      if (entries.length === 0) break;
      n += entries.length;
      after = entries.at(-1)?.cursor;
    }
    return n / ((performance.now() - t0) / 1000);
  };
  log(`topic ${topic}, ${total} events from the start of the log, ${page} a page, feed lag ${lagMs} ms`);
  // A first pass warms Neo4j's page cache, so the runs compared below meet the same cache.
  log(`warm-up, graph read only: ${(await readOnly()).toFixed(0)} events/s`);
  const readBefore = await readOnly();
  log(`baseline, graph read only: ${readBefore.toFixed(0)} events/s`);

  const t0 = performance.now();
  let published = 0;
  while (published < total) {
    const r = await publisher.publishEvents({
      checkpoint_id: checkpoint,
      topic,
      page_size: page,
      budget_ms: 5_000,
    });
    published += r.published;
    if (r.caught_up) break;
  }
  const publishRate = published / ((performance.now() - t0) / 1000);
  const readAfter = await readOnly();
  log(`publish (read, produce acks=all, checkpoint): ${publishRate.toFixed(0)} events/s (${published} events)`);
  log(`baseline again, graph read only: ${readAfter.toFixed(0)} events/s`);
  const readMean = (readBefore + readAfter) / 2;
  const perPage = (rate: number): number => (page / rate) * 1000;
  log(
    `per page of ${page}: read ${perPage(readMean).toFixed(1)} ms, publish ${perPage(publishRate).toFixed(1)} ms ` +
      `(produce + checkpoint ${(perPage(publishRate) - perPage(readMean)).toFixed(1)} ms)`,
  );

  // Latency: the publisher caught up at the end of the log, a consumer reading the topic's end.
  const session = driver.session({ database: config.NEO4J_DATABASE });
  const now = (await session.run('RETURN toString(datetime.realtime()) AS now')).records[0]?.get('now') as string;
  await session.close();
  // A checkpoint of its own at the log's end (the throughput run's stays where it stopped).
  const latest = `${checkpoint}:latency`;
  await adoptRelayState(graph, latest, {
    cursor: encodeCursor({ t: now, s: -1, id: '' }),
    delivered: 0,
    parked: [],
  });
  const consumer = new Consumer({
    clientId: 'persona-bench-reader',
    groupId: `bench-${run}`,
    bootstrapBrokers: brokers,
    deserializers: stringDeserializers,
  });
  const stream = await consumer.consume({
    topics: [topic],
    autocommit: false,
    mode: MessagesStreamModes.LATEST,
    fallbackMode: MessagesStreamFallbackModes.LATEST,
    maxWaitTime: 100,
  });
  const committedAt = new Map<string, number>();
  const latencies: number[] = [];
  let seen = 0;
  stream.on('data', (m: { headers: Map<string, string>; value: string }) => {
    const id = m.headers.get(KAFKA_HEADERS.eventId);
    const event = JSON.parse(m.value) as { type: string; customer_id: string; occurred_at: string };
    seen++;
    if (event.type !== 'CustomerCreated' || !id) return;
    const at = committedAt.get(event.customer_id);
    if (at !== undefined && !committedAt.has(id)) {
      committedAt.set(id, 0);
      latencies.push(Date.now() - at);
    }
  });
  let publishing = true;
  const publishing$ = (async () => {
    while (publishing) {
      const r = await publisher.publishEvents({
        checkpoint_id: latest,
        topic,
        page_size: page,
        budget_ms: 1000,
      });
      if (r.caught_up) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  log(`latency: ${writes} customers written at ${rate}/s while the publisher runs`);
  for (let i = 0; i < writes; i++) {
    const started = Date.now();
    const c = await createCustomer(graph, { segment: 'BenchKafka' });
    committedAt.set(c.id, Date.now());
    const wait = 1000 / rate - (Date.now() - started);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const deadline = Date.now() + lagMs + 60_000;
  while (latencies.length < writes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  publishing = false;
  await publishing$;
  log(`messages read during the latency run: ${seen}`);
  const sorted = [...latencies].sort((a, b) => a - b);
  log(
    `commit to consumer (${sorted.length}/${writes}): p50 ${pct(sorted, 50)} ms, p95 ${pct(sorted, 95)} ms, ` +
      `p99 ${pct(sorted, 99)} ms; less the feed's lag (${lagMs} ms): p50 ${pct(sorted, 50) - lagMs} ms, ` +
      `p99 ${pct(sorted, 99) - lagMs} ms`,
  );
  await stream.close();
  await consumer.close();
  if (Number(values.routing) > 0) await routingThroughput(config, graph, brokers, producer, Number(values.routing));
  await producer.close();
  await driver.close();
}

/** Part 3: routing outcomes through the api's consumer against the ingestion service alone. */
async function routingThroughput(
  config: Config,
  graph: Graph,
  brokers: string[],
  producer: KafkaProducer,
  n: number,
): Promise<void> {
  const res = await readTx(graph, async (tx) =>
    (
      await tx.run(
        `MATCH (c:Customer)
         WHERE c.status = 'active' AND rand() < 0.03
         CALL (c) {
           MATCH (c)-[:HAS_PAYMENT_METHOD]->(m:PaymentMethod {status: 'active'})
           RETURN m.id AS method LIMIT 1
         }
         RETURN c.id AS id, method LIMIT 20000`,
      )
    ).records.map((r) => ({ id: r.get('id') as string, method: r.get('method') as string })),
  );
  const zipf = new Zipf(res.length, 1.1);
  const rand = mulberry32(11);
  const payments = (count: number, tag: string) =>
    Array.from({ length: count }, (_, i) => {
      const c = res[zipf.draw(rand)] as { id: string; method: string };
      return {
        id: `bench-${tag}-${i}`,
        type: 'payment',
        customer_id: c.id,
        occurred_at: new Date().toISOString(),
        payment_method_id: c.method,
        amount: 100 + Math.floor(rand() * 20_000),
        currency: config.PERSONA_REPORTING_CURRENCY,
        outcome: 'succeeded',
      };
    });
  const run = randomUUID().slice(0, 8);
  const requests = new RequestContext();
  const logger = createLogger('bench-kafka', 'warn');
  const { connection, client } = await connectTemporal(config, { requestId: () => requests.requestId });
  const deps = apiDepsFromConfig(config, { logger, readiness: [], graph, client, requests });
  try {
    // Baseline: the ingestion service alone, batches of what the consumer takes at most; before
    // and after the consumer's run (the first pass also warms the page cache for these customers).
    const principal = { subject: 'bench', scopes: new Set(['interactions:write']) };
    const alone = async (pass: string): Promise<number> => {
      const items = payments(n, `direct-${pass}-${run}`);
      const started = performance.now();
      for (let i = 0; i < items.length; i += MAX_INTERACTIONS)
        await recordInteractions(deps, items.slice(i, i + MAX_INTERACTIONS), principal);
      const rate = n / ((performance.now() - started) / 1000);
      log(`routing outcomes, recordInteractions alone (batches of ${MAX_INTERACTIONS}), ${pass}: ${rate.toFixed(0)}/s`);
      return rate;
    };
    await alone('warm-up');
    const before = await alone('before');

    // The same count waiting on a fresh topic of P partitions, then the consumer from a standing start.
    const viaKafka = async (partitions: number, pass: number): Promise<number> => {
      const tag = `${run}-p${partitions}-${pass}`;
      const s = {
        ...config,
        kafkaBrokers: brokers,
        PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: `bench.${tag}.payment-failures`,
        PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: `bench.${tag}.fraud-outcomes`,
        PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: `bench.${tag}.routing-outcomes`,
        PERSONA_KAFKA_DEAD_LETTER_TOPIC: `bench.${tag}.dead-letters`,
        PERSONA_KAFKA_CONSUMER_GROUP: `bench-${tag}`,
      };
      await ensureTopics(s, [
        { name: s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC, partitions: 1, retentionMs: 3_600_000 },
        { name: s.PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC, partitions: 1, retentionMs: 3_600_000 },
        { name: s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, partitions, retentionMs: 3_600_000 },
        { name: s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, partitions: 1, retentionMs: 3_600_000 },
      ]);
      const items = payments(n, `kafka-${tag}`);
      const share = new Array<number>(partitions).fill(0);
      for (const p of items)
        share[partitionOf(p.customer_id, partitions)] = (share[partitionOf(p.customer_id, partitions)] ?? 0) + 1;
      for (let i = 0; i < items.length; i += 1000)
        await producer.send({
          messages: items.slice(i, i + 1000).map((p) => ({
            topic: s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC,
            key: p.customer_id,
            value: JSON.stringify(p),
          })),
        });
      const t0 = performance.now();
      const batches: number[] = [];
      const consumer = await startAgentConsumer({
        settings: s,
        deps,
        producer,
        logger,
        beforeCommit: async (done) => void batches.push(done.length),
      });
      // From the first commit on (the group's join and first fetch left out): the writers' own rate.
      let first: { at: number; handled: number } | undefined;
      while (consumer.handled < n) {
        if (!first && consumer.handled > 0) first = { at: performance.now(), handled: consumer.handled };
        await new Promise((r) => setTimeout(r, 20));
      }
      const end = performance.now();
      const rate = n / ((end - t0) / 1000);
      const steady = first && end > first.at ? (n - first.handled) / ((end - first.at) / 1000) : rate;
      await consumer.close();
      const shares = share.map((k) => `${((k / n) * 100).toFixed(0)} %`).join(' / ');
      log(
        `routing outcomes through the Kafka consumer, ${partitions} partition(s) (shares ${shares}): ` +
          `${rate.toFixed(0)}/s from a standing start, ${steady.toFixed(0)}/s from the first commit; ` +
          `${batches.length} transactions, ${(n / batches.length).toFixed(0)} items each on average`,
      );
      return steady;
    };
    const counts = String(values.partitions).split(',').map(Number);
    const rates = new Map<number, number[]>();
    for (const [pass, order] of [counts, [...counts].reverse()].entries())
      for (const p of order) rates.set(p, [...(rates.get(p) ?? []), await viaKafka(p, pass)]);
    const after = await alone('after');
    const baseline = (before + after) / 2;
    log(`the service alone (REST's path, no Kafka), mean of before and after: ${baseline.toFixed(0)}/s`);
    for (const [p, r] of [...rates].sort(([a], [b]) => a - b)) {
      const mean = r.reduce((x, y) => x + y, 0) / r.length;
      log(
        `${p} partition(s), from the first commit: ${mean.toFixed(0)}/s ` +
          `(runs ${r.map((x) => x.toFixed(0)).join(', ')}), ` +
          `${((mean / baseline) * 100).toFixed(0)} % of the service alone`,
      );
    }
  } finally {
    await deps.invalidations.stop();
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
