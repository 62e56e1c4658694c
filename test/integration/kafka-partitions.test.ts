/**
 * Routing outcomes written by one writer per partition (issue 47, part 4), on the stack's brokers
 * with the real Neo4j: each partition's batch is written in one transaction with the partition's
 * offset (graph/ingestOffsets.ts), so a replay after a crash between the graph's commit and Kafka's
 * changes nothing even when the interaction claims are gone, and a refusal whose dead letter the
 * crash may have lost is sent again; one partition's writer never waits for another's customers.
 */
import { randomUUID } from 'node:crypto';
import neo4j from 'neo4j-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConsumer } from '../../api/kafkaConsumer';
import { createKafkaProducer, KAFKA_HEADERS, partitionOf, type KafkaProducer } from '../../clients/kafka';
import { loadSettings } from '../../config/env';
import {
  ingestOffsets,
  MergeInProgressError,
  recordPartitionBatch,
  type PartitionSource,
} from '../../graph/ingestOffsets';
import type { Interaction } from '../../graph/interactions';
import { localKafkaBrokers } from '../../stack/install';
import { startHarness, type Harness } from '../support/api';
import { readTopic, startTestConsumer, topicsForTest as testTopics, type Msg, type TestTopics } from '../support/kafka';
import { customerWithCards } from '../support/recovery';
import { until } from '../support/wait';

const settings = loadSettings();
const brokers = localKafkaBrokers(settings);
const PARTITIONS = 6;
let producer: KafkaProducer;
let h: Harness;
const consumers: AgentConsumer[] = [];

beforeAll(async () => {
  producer = createKafkaProducer({ kafkaBrokers: brokers }, 'persona-test-cerebrum');
  h = await startHarness({ kafka: producer });
});
afterAll(async () => {
  for (const c of consumers) await c.close({ abandon: true }).catch(() => undefined);
  await h?.close();
  await producer?.close();
});

const topicsForTest = () => testTopics(brokers, { events: 1 });

const consume = (settings: TestTopics, beforeCommit?: (m: Msg[]) => Promise<void>) =>
  startTestConsumer({ settings, deps: h.deps, producer, ...(beforeCommit ? { beforeCommit } : {}) }, consumers);

const payment = (customerId: string, method: string, amount: number) => ({
  id: `route-${randomUUID()}`,
  type: 'payment',
  customer_id: customerId,
  occurred_at: new Date().toISOString(),
  payment_method_id: method,
  amount,
  currency: h.graph.policy.reportingCurrency,
  outcome: 'succeeded',
});

/** Sends keyed by customer, as Cerebrum keys them: a customer's outcomes on its partition, in order. */
const send = (topic: string, key: string, value: unknown) =>
  producer.send({ messages: [{ topic, key, value: typeof value === 'string' ? value : JSON.stringify(value) }] });

const ltvOf = async (id: string): Promise<number> => {
  const [row] = await h.graph.query<{ ltv: number }>('MATCH (c:Customer {id: $id}) RETURN c.ltv AS ltv', { id });
  return Number(row?.ltv ?? 0);
};

describe('routing outcomes, one writer per partition', () => {
  it(
    'writes each partition with its offset: a replay after every Kafka commit was lost changes nothing, ' +
      'claims gone, and re-sends the refusals',
    async () => {
      const s = await topicsForTest();
      const topic = s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC;
      const customers = await Promise.all(
        [0, 1, 2, 3, 4].map(() => customerWithCards(h.graph, [`tok_visa_${randomUUID()}`])),
      );
      const expected = new Map<string, number>();
      let sent = 0;
      for (const [k, { customerId, cards }] of customers.entries())
        for (let i = 0; i < 3; i++) {
          const amount = 100 * (k + 1) + i;
          await send(topic, customerId, payment(customerId, cards[0] as string, amount));
          expected.set(customerId, (expected.get(customerId) ?? 0) + amount);
          sent++;
        }
      // Two that can never be recorded: a customer Persona does not know, and not JSON.
      const stranger = randomUUID();
      await send(topic, stranger, payment(stranger, randomUUID(), 999));
      await send(topic, stranger, '{"not json');
      sent += 2;

      const dead: Msg[] = [];
      const reader = await readTopic({ kafkaBrokers: brokers }, s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, dead);
      try {
        // Every Kafka commit of the first consumer is lost (the graph's went through): then it dies.
        let reachedCommit = 0;
        const first = await consume(s, async (done) => {
          reachedCommit += done.length;
          throw new Error('test: the commit to Kafka is lost');
        });
        await until(async () => reachedCommit >= sent, 60_000);
        await first.close({ abandon: true });
        for (const { customerId } of customers) expect(await ltvOf(customerId)).toBe(expected.get(customerId));
        await until(async () => dead.length >= 2);
        const firstRefusals = dead.map((m) => m.headers.get(KAFKA_HEADERS.deadLetterSource)).sort();

        // The claims' window has passed for these ids: only the partitions' offsets know they were written.
        await h.graph.query('MATCH (i:Interaction) WHERE i.customer_id IN $ids DETACH DELETE i', {
          ids: customers.map((c) => c.customerId),
        });
        const second = await consume(s);
        await until(async () => second.handled >= sent, 60_000);
        for (const { customerId } of customers) expect(await ltvOf(customerId)).toBe(expected.get(customerId));
        // The offsets in the graph are each partition's last message.
        const counts = new Map<number, number>();
        const add = (key: string, n: number) =>
          counts.set(partitionOf(key, PARTITIONS), (counts.get(partitionOf(key, PARTITIONS)) ?? 0) + n);
        for (const { customerId } of customers) add(customerId, 3);
        add(stranger, 2);
        const offsets = await h.graph.query<{ partition: number; offset: number }>(
          'MATCH (o:IngestOffset {topic: $topic}) RETURN o.partition AS partition, o.offset AS offset',
          { topic },
        );
        expect(new Map(offsets.map((o) => [Number(o.partition), Number(o.offset)]))).toEqual(
          new Map([...counts].map(([p, n]) => [p, n - 1])),
        );
        // Each refusal was sent again by the replay (its first send may have been lost with the commit).
        await until(async () => dead.length >= 2 * firstRefusals.length);
        const all = dead.map((m) => m.headers.get(KAFKA_HEADERS.deadLetterSource)).sort();
        expect(all).toEqual([...firstRefusals, ...firstRefusals].sort());
        expect(dead.map((m) => m.headers.get(KAFKA_HEADERS.deadLetterReason)).sort()).toEqual(
          ['customer_id: no such customer', 'the message is not JSON'].flatMap((r) => [r, r]).sort(),
        );
        await second.close();
      } finally {
        await reader.stop();
      }
    },
  );

  it('lets a partition’s writer go on while another partition’s customer is locked', async () => {
    const s = await topicsForTest();
    const topic = s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC;
    const a = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    let b = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    while (partitionOf(b.customerId, PARTITIONS) === partitionOf(a.customerId, PARTITIONS))
      b = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    // Another writer holds A's lock (a long transaction on A) while both customers' payments arrive.
    const session = h.graph.driver.session({ database: h.graph.database, defaultAccessMode: neo4j.session.WRITE });
    const holder = session.beginTransaction();
    try {
      await holder.run('MATCH (c:Customer {id: $id}) SET c._lock = true REMOVE c._lock', { id: a.customerId });
      await send(topic, a.customerId, payment(a.customerId, a.cards[0] as string, 700));
      await send(topic, b.customerId, payment(b.customerId, b.cards[0] as string, 300));
      const c = await consume(s);
      await until(async () => (await ltvOf(b.customerId)) === 300, 30_000);
      expect(await ltvOf(a.customerId)).toBe(0);
      await holder.rollback();
      await until(async () => (await ltvOf(a.customerId)) === 700, 30_000);
      await until(async () => c.handled >= 2);
      await c.close();
    } finally {
      if (holder.isOpen()) await holder.rollback();
      await session.close();
    }
  });
});

describe('a poison message', () => {
  it('is dead-lettered alone: the rest of its batch is recorded and the partition goes on', async () => {
    const s = await topicsForTest();
    const topic = s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC;
    const rich = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const plain = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    // An LTV at the edge of a 64-bit integer: one more payment overflows it in Neo4j, every time.
    await h.graph.query('MATCH (c:Customer {id: $id}) SET c.ltv = $ltv', {
      id: rich.customerId,
      ltv: neo4j.int('9223372036854775000'),
    });
    // One partition (one key), the poison between two good ones.
    await send(topic, plain.customerId, payment(plain.customerId, plain.cards[0] as string, 100));
    await send(topic, plain.customerId, payment(rich.customerId, rich.cards[0] as string, 5000));
    await send(topic, plain.customerId, payment(plain.customerId, plain.cards[0] as string, 200));
    const dead: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: brokers }, s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, dead);
    try {
      const c = await consume(s);
      await until(async () => c.handled >= 3, 90_000);
      expect(await ltvOf(plain.customerId)).toBe(300);
      await until(async () => dead.length >= 1);
      expect(dead.map((m) => [m.headers.get(KAFKA_HEADERS.deadLetterSource)?.split('/').at(-1), m.value])).toEqual([
        ['1', expect.stringContaining(rich.customerId)],
      ]);
      expect(dead[0]?.headers.get(KAFKA_HEADERS.deadLetterReason)).toMatch(/^could not be recorded: /);
      await c.close();
    } finally {
      await reader.stop();
    }
  });
});

describe('a partition’s offset in the graph', () => {
  it('skips what it has written, and keeps a refusal until Kafka is known to have committed past it', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const source: PartitionSource = { topicId: `test-${randomUUID()}`, topic: 'test.direct', partition: 0 };
    const item = (amount: number) => payment(customerId, cards[0] as string, amount) as Interaction;
    const rules = h.deps.interactions;
    const batch = [
      { offset: 0n, item: item(10) },
      { offset: 1n, refused: { field: 'value', reason: 'the message is not JSON' } },
      { offset: 2n, item: { ...item(20), customer_id: randomUUID() } },
    ];
    const first = await recordPartitionBatch(h.graph, source, batch, rules, -1n);
    expect([first.skipped, first.deadLetters.map((d) => d.offset), [...first.recorded.keys()]]).toEqual([
      [],
      ['1', '2'],
      ['0', '2'],
    ]);
    expect(first.deadLetters[1]?.reason).toBe('customer_id: no such customer');
    // Replayed before Kafka's commit: skipped, its refusals answered again.
    const again = await recordPartitionBatch(h.graph, source, batch, rules, -1n);
    expect([again.skipped, again.deadLetters.map((d) => d.offset), again.recorded.size]).toEqual([
      [0n, 1n, 2n],
      ['1', '2'],
      0,
    ]);
    // The next batch, after Kafka committed through 2: the kept refusals are dropped.
    const next = await recordPartitionBatch(h.graph, source, [{ offset: 3n, item: item(5) }], rules, 2n);
    expect([next.skipped, next.deadLetters]).toEqual([[], []]);
    const late = await recordPartitionBatch(h.graph, source, batch, rules, 2n);
    expect([late.skipped.length, late.deadLetters]).toEqual([3, []]);
    expect(await ltvOf(customerId)).toBe(15);
    expect((await ingestOffsets(h.graph, source.topicId)).get(0)).toBe(3n);
  });

  it('writes nothing of a batch naming a customer being merged, and records it once the merge is done', async () => {
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => customerWithCards(h.graph, [`tok_visa_${randomUUID()}`])));
    // A chain a merge shortens as it commits: A into B, B itself being merged into C.
    await h.graph.query(
      `MATCH (x:Customer {id: $a}), (y:Customer {id: $b})
       SET x.status = 'merged', x.merged_into = $b, y.status = 'merged', y.merged_into = $c`,
      { a: a?.customerId, b: b?.customerId, c: c?.customerId },
    );
    const source: PartitionSource = { topicId: `test-${randomUUID()}`, topic: 'test.direct', partition: 0 };
    const item = { ...payment(a?.customerId as string, c?.cards[0] as string, 70) } as Interaction;
    const batch = [{ offset: 0n, item }];
    await expect(recordPartitionBatch(h.graph, source, batch, h.deps.interactions, -1n)).rejects.toBeInstanceOf(
      MergeInProgressError,
    );
    expect((await ingestOffsets(h.graph, source.topicId)).size).toBe(0);
    // The merge commits: A's survivor is C, whose card the payment names.
    await h.graph.query('MATCH (x:Customer {id: $a}) SET x.merged_into = $c', { a: a?.customerId, c: c?.customerId });
    const done = await recordPartitionBatch(h.graph, source, batch, h.deps.interactions, -1n);
    expect(done.recorded.get('0')).toEqual({ result: 'recorded', merged_into: c?.customerId });
    expect(await ltvOf(c?.customerId as string)).toBe(70);
  });
});
