/**
 * Publishing the change feed to Kafka, on whatever graph the local Neo4j holds (measured on the
 * seeded million-customer graph) and the stack's broker:
 *
 *   npm run bench:kafka -- [--events 200000] [--page 1000] [--writes 200] [--rate 20]
 *
 * 1. Throughput: the publisher's activity (`publishEvents`, as the worker runs it, without
 *    Temporal around it) publishes the first `--events` events of the log to a fresh topic of 12
 *    partitions, `--page` events per produce request; beside it, in the same run, the baseline:
 *    reading the same pages from the graph without producing (after a warm-up pass, before and
 *    after the publish, so all meet the same page cache). Prints events/s of each and what producing adds per page.
 * 2. Latency: `--writes` new customers written at `--rate` per second while the publisher runs
 *    (caught up, polling every 200 ms, the feed's lag PERSONA_EVENTS_FEED_LAG_MS) and a consumer
 *    reads the topic; prints commit-to-consumer p50/p95/p99, and the same less the feed's lag.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Consumer, MessagesStreamFallbackModes, MessagesStreamModes, stringDeserializers } from '@platformatic/kafka';
import { createKafkaPublisherActivities } from '../activities/kafkaPublisher';
import { createKafkaProducer, ensureTopics, KAFKA_HEADERS } from '../clients/kafka';
import { loadConfig } from '../config/env';
import { createCustomer, createDriver } from '../graph';
import { encodeCursor, readFeedEntries } from '../graph/feed';
import { adoptRelayState } from '../graph/relay';
import { graphFromConfig } from '../runtime/graph';
import { kafkaCheckpointId } from '../temporal/kafkaPublisher';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    page: { type: 'string', default: '1000' },
    writes: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20' },
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
  const brokers = config.kafkaBrokers.length > 0 ? config.kafkaBrokers : [`127.0.0.1:${config.KAFKA_PORT}`];
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
  const publisher = createKafkaPublisherActivities({ graph, kafka: producer });
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
      lag_ms: lagMs,
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
        lag_ms: lagMs,
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
  await producer.close();
  await driver.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
