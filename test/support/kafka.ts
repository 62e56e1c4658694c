/** Reading a Kafka topic in a test, as a consumer outside Persona would. */
import { randomUUID } from 'node:crypto';
import {
  Admin,
  Consumer,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  stringDeserializers,
  type Message,
} from '@platformatic/kafka';
import { startAgentConsumer, type AgentConsumer } from '../../api/kafkaConsumer';
import type { ApiDeps } from '../../api/deps';
import { createLogger } from '../../runtime/logger';
import { until } from './wait';
import {
  ensureTopics,
  isKafkaError,
  kafkaConnection,
  personaTopics,
  type KafkaConnectionSettings,
  type KafkaProducer,
  type KafkaSettings,
} from '../../clients/kafka';

export type Msg = Message<string, string, string, string>;

/** Reads `topic` from its start into `into` (a group of its own, nothing committed), until stopped. */
export async function readTopic(
  s: KafkaConnectionSettings,
  topic: string,
  into: Msg[],
): Promise<{ stop(): Promise<void> }> {
  const consumer = new Consumer({
    clientId: 'persona-test-reader',
    groupId: `reader-${randomUUID()}`,
    ...kafkaConnection(s),
    deserializers: stringDeserializers,
  });
  const stream = await consumer.consume({
    topics: [topic],
    autocommit: false,
    mode: MessagesStreamModes.EARLIEST,
    fallbackMode: MessagesStreamFallbackModes.EARLIEST,
    maxWaitTime: 300,
  });
  stream.on('data', (m: Msg) => into.push(m));
  return {
    async stop() {
      await stream.close();
      await consumer.close();
    },
  };
}

/**
 * Every message on every topic of the cluster (Kafka's own `__` topics aside), from each
 * partition's start to where it ended when this was called: what a reader of the whole broker sees.
 */
export async function readEveryTopic(s: KafkaConnectionSettings): Promise<Msg[]> {
  const admin = new Admin({ clientId: 'persona-test-reader', ...kafkaConnection(s) });
  const pending = new Map<string, bigint>();
  let topics: string[];
  try {
    topics = (await admin.listTopics()).filter((t) => !t.startsWith('__'));
    const { topics: meta } = await admin.metadata({ topics, forceUpdate: true });
    const at = (timestamp: bigint) =>
      topics.map((name) => ({
        name,
        partitions: Array.from({ length: meta.get(name)?.partitionsCount ?? 0 }, (_, partitionIndex) => ({
          partitionIndex,
          timestamp,
        })),
      }));
    // -2: each partition's first offset still kept; -1: the offset its next message will take.
    const [first, next] = await Promise.all([
      admin.listOffsets({ topics: at(-2n) }),
      admin.listOffsets({ topics: at(-1n) }),
    ]);
    for (const t of next)
      for (const p of t.partitions) {
        const start = first
          .find((f) => f.name === t.name)
          ?.partitions.find((f) => f.partitionIndex === p.partitionIndex);
        if (p.offset > (start?.offset ?? 0n)) pending.set(`${t.name}/${p.partitionIndex}`, p.offset - 1n);
      }
  } finally {
    await admin.close().catch(() => undefined);
  }
  const into: Msg[] = [];
  if (pending.size === 0) return into;
  const consumer = new Consumer({
    clientId: 'persona-test-reader',
    groupId: `reader-${randomUUID()}`,
    ...kafkaConnection(s),
    deserializers: stringDeserializers,
  });
  try {
    const stream = await consumer.consume({
      topics: topics.filter((t) => [...pending.keys()].some((k) => k.startsWith(`${t}/`))),
      autocommit: false,
      mode: MessagesStreamModes.EARLIEST,
      fallbackMode: MessagesStreamFallbackModes.EARLIEST,
      maxWaitTime: 300,
    });
    stream.on('data', (m: Msg) => {
      into.push(m);
      const key = `${m.topic}/${m.partition}`;
      if (m.offset >= (pending.get(key) ?? -1n)) pending.delete(key);
    });
    await until(async () => pending.size === 0, 60_000);
    await stream.close();
  } finally {
    await consumer.close().catch(() => undefined);
  }
  return into;
}

export type TestTopics = KafkaSettings & { PERSONA_KAFKA_CONSUMER_GROUP: string };

/** Persona's topics and a consumer group of one test, made on `brokers`: nothing another test wrote is on them. */
export async function topicsForTest(brokers: string[], partitions: { events?: number } = {}): Promise<TestTopics> {
  const run = randomUUID().slice(0, 8);
  const s = {
    kafkaBrokers: brokers,
    PERSONA_KAFKA_EVENTS_TOPIC: `test.${run}.persona.events`,
    PERSONA_KAFKA_EVENTS_PARTITIONS: partitions.events ?? 3,
    PERSONA_KAFKA_EVENTS_RETENTION_MS: 3_600_000,
    // Replicated as in production where the stack runs three brokers (CI does).
    PERSONA_KAFKA_REPLICATION: Math.min(3, brokers.length),
    PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: `test.${run}.payment-failures`,
    PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: `test.${run}.fraud-outcomes`,
    PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: `test.${run}.routing-outcomes`,
    PERSONA_KAFKA_DEAD_LETTER_TOPIC: `test.${run}.dead-letters`,
    PERSONA_KAFKA_INVALIDATIONS_TOPIC: `test.${run}.persona.invalidations`,
    PERSONA_KAFKA_CONSUMER_GROUP: `test-${run}`,
  };
  made.push(s);
  await ensureTopics(s);
  return s;
}

/** The topics `topicsForTest` made since they were last deleted. */
const made: TestTopics[] = [];

/**
 * Deletes the topics this test file made with `topicsForTest` (test/setup/topics.ts, after each
 * file): every test makes topics of its own, and a stack run again and again would otherwise keep
 * them all, thousands of partitions per node, until its brokers run out of heap.
 */
export async function deleteTestTopics(): Promise<void> {
  for (const s of made.splice(0)) {
    const admin = new Admin({ clientId: 'persona-test-topics', ...kafkaConnection(s), timeout: 10_000 });
    try {
      await Promise.all(
        personaTopics(s).map(({ name: topic }) =>
          admin.deleteTopics({ topics: [topic] }).catch((err: unknown) => {
            // Never made (the test stopped first), or its brokers are gone (a private cluster stopped).
            if (!isKafkaError(err, 'UNKNOWN_TOPIC_OR_PARTITION'))
              console.warn(`[topics] ${topic} was left on ${s.kafkaBrokers.join(',')}: ${String(err)}`);
          }),
        ),
      );
    } finally {
      await admin.close();
    }
  }
}

/**
 * The api's consumer of the agents' topics on a test's topics, quiet, retrying within a second
 * (the first retry after 50 ms) and hearing of a rebalance within 300 ms;
 * pushed on `started` (a test's afterAll abandons what is left there).
 */
export async function startTestConsumer(
  options: { settings: TestTopics; deps: ApiDeps; producer: KafkaProducer; beforeCommit?: (m: Msg[]) => Promise<void> },
  started: AgentConsumer[],
): Promise<AgentConsumer> {
  const c = await startAgentConsumer({
    ...options,
    logger: createLogger('test-kafka-consumer', 'silent'),
    maxBackoffMs: 1000,
    firstBackoffMs: 50,
    // Each member's join or leave is heard by the others at their next heartbeat.
    heartbeatIntervalMs: 300,
  });
  started.push(c);
  return c;
}
