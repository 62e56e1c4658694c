/**
 * The events topic as the log of record: three KRaft nodes of its own (as `stack:up` runs them
 * with PERSONA_KAFKA_NODES=3), a topic made by Persona's `ensureTopics` with replication 3 (min ISR
 * 2 follows), and Persona's own producer (idempotent, acks from every in-sync replica) under load
 * from eight senders. Drawn from a printed seed, a partition's leader is killed (SIGKILL) while they
 * send; the senders keep on through the election, sending again what got no answer. Then a second
 * node is killed: with one node of three, a write is not acknowledged (it may still surface once
 * the nodes are back: unacknowledged is no promise either way). Both come back, and the topic is
 * read from its start against the senders' own ledger of what Kafka acknowledged:
 *   - every acknowledged message is there (nothing acknowledged is lost with its leader);
 *   - each key's acknowledged messages are in the order they were sent;
 *   - writes went on with two nodes of three (acknowledged after the kill).
 * Replay a run: PERSONA_KAFKA_SEED=<seed> npx vitest run --project integration
 * test/integration/kafka-replicated.test.ts
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, ProduceAcks, Producer, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaProducer, ensureTopics, KAFKA_HEADERS, type KafkaProducer } from '../../clients/kafka';
import { loadSettings } from '../../config/env';
import { mulberry32 } from '../../scripts/random';
import { privateKafkaCluster, type PrivateKafkaCluster } from '../support/privateServices';
import { until } from '../support/wait';
import { readTopic, type Msg } from '../support/kafka';

const SEED = Number(process.env.PERSONA_KAFKA_SEED ?? Math.floor(Math.random() * 2 ** 31));
const rand = mulberry32(SEED);
const SENDERS = 8;
const KEYS_PER_SENDER = 3;
const PARTITIONS = 6;

let cluster: PrivateKafkaCluster;
let producers: KafkaProducer[] = [];

beforeAll(async () => {
  console.log(`[kafka-replicated] seed ${SEED}`);
  cluster = await privateKafkaCluster(3);
  await cluster.start();
});
afterAll(async () => {
  await Promise.all(producers.map((p) => p.close().catch(() => undefined)));
  await cluster?.dispose();
});

function admin(brokers: string[]): Admin {
  return new Admin({ clientId: 'persona-test-replicated', bootstrapBrokers: brokers, timeout: 5_000, retries: 0 });
}

/** The topic's partitions as the live nodes see them: leader, replicas, in-sync replicas. */
async function partitions(topic: string, brokers: string[]) {
  const a = admin(brokers);
  try {
    const metadata = await a.metadata({ topics: [topic], forceUpdate: true });
    return metadata.topics.get(topic)?.partitions ?? [];
  } finally {
    await a.close().catch(() => undefined);
  }
}

const t0 = Date.now();
const step = (what: string): void =>
  console.log(`[kafka-replicated] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

describe('a replicated events topic when brokers die', () => {
  it('loses nothing acknowledged when a leader is killed under load; acknowledges nothing on one node', async () => {
    const topic = `test.${randomUUID().slice(0, 8)}.replicated.events`;
    const s = {
      ...loadSettings(),
      kafkaBrokers: cluster.brokers,
      PERSONA_KAFKA_REPLICATION: 3,
      PERSONA_KAFKA_MIN_INSYNC_REPLICAS: undefined,
    };
    expect(await ensureTopics(s, [{ name: topic, partitions: PARTITIONS }])).toEqual([topic]);
    // Replication 3 and min ISR 2, as Persona made it.
    await until(async () => (await partitions(topic, cluster.brokers)).every((p) => p.isr.length === 3), 60_000);
    const a = admin(cluster.brokers);
    try {
      const [described] = await a.describeConfigs({ resources: [{ resourceType: 2, resourceName: topic }] });
      expect(described?.configs.find((c) => c.name === 'min.insync.replicas')?.value).toBe('2');
    } finally {
      await a.close();
    }

    // A producer per sender, each sending one request at a time, as the publisher does.
    producers = Array.from({ length: SENDERS }, (_, i) => createKafkaProducer(s, `persona-test-replicated-${i}`));
    // The ledger: per key, the messages sent in order, and the ids Kafka acknowledged.
    const sent = new Map<string, string[]>();
    const acknowledged = new Set<string>();
    let ackedAfterKill = 0;
    let killed = false;
    let failures = 0;
    let stopping = false;
    const sender = async (index: number): Promise<void> => {
      const keys = Array.from({ length: KEYS_PER_SENDER }, (_, k) => `customer-${index}-${k}`);
      for (let n = 0; !stopping; n++) {
        const key = keys[n % keys.length] as string;
        const id = `${key}:${n}`;
        (sent.get(key) ?? sent.set(key, []).get(key))?.push(id);
        // No answer is no acknowledgement: the same message goes again until Kafka takes it (a
        // publisher's page goes again from its checkpoint), so the log may hold it twice.
        for (;;) {
          try {
            await producers[index]!.send({
              messages: [{ topic, key, value: JSON.stringify({ id }), headers: { [KAFKA_HEADERS.eventId]: id } }],
            });
            acknowledged.add(id);
            if (killed) ackedAfterKill += 1;
            break;
          } catch {
            failures += 1;
            if (stopping) return;
            await sleep(100);
          }
        }
      }
    };
    const senders = Array.from({ length: SENDERS }, (_, i) => sender(i));

    // Under load, kill the leader of a partition drawn from the seed.
    await until(async () => acknowledged.size >= 300, 60_000);
    const before = await partitions(topic, cluster.brokers);
    const chosen = before[Math.floor(rand() * before.length)];
    const victim = cluster.nodes.find((n) => n.id === chosen?.leader);
    expect(victim, 'the chosen partition has a leader').toBeDefined();
    step(
      `${acknowledged.size} acknowledged; killing node ${victim!.id}, leader of partition ${before.indexOf(chosen!)}`,
    );
    victim!.kill();
    killed = true;
    // The partitions it led get new leaders from the in-sync replicas, and writes go on with two nodes of three.
    const live = cluster.nodes.filter((n) => n !== victim);
    const liveBrokers = live.map((n) => n.address);
    await until(
      async () => (await partitions(topic, liveBrokers)).every((p) => p.leader !== victim!.id && p.isr.length === 2),
      120_000,
    );
    const electedAt = ackedAfterKill;
    step(`new leaders elected (${electedAt} acknowledged meanwhile)`);
    await until(async () => ackedAfterKill >= electedAt + 300, 120_000);
    step(`${ackedAfterKill} acknowledged with two nodes`);
    stopping = true;
    await Promise.all(senders);

    // One node of three: a write is refused or unanswered, never acknowledged.
    const second = live[Math.floor(rand() * live.length)] as (typeof live)[number];
    second.kill();
    const lonely = new Producer({
      clientId: 'persona-test-lonely',
      bootstrapBrokers: live.filter((n) => n !== second).map((n) => n.address),
      serializers: stringSerializers,
      // Not idempotent: the refusal is about replicas, not a producer id the lost quorum cannot hand out.
      idempotent: false,
      retries: 0,
      timeout: 5_000,
    });
    const lonelyId = `lonely:${randomUUID()}`;
    try {
      await expect(
        // acks per send: the client's constructor option is not what a send uses.
        lonely.send({
          acks: ProduceAcks.ALL,
          messages: [{ topic, key: 'customer-0-0', value: JSON.stringify({ id: lonelyId }) }],
        }),
      ).rejects.toThrow();
    } finally {
      await lonely.close().catch(() => undefined);
    }

    step(`node ${second.id} killed too: a write was not acknowledged`);
    // Both come back; the topic, read from its start, against the ledger.
    await Promise.all([victim!.start(), second.start()]);
    await until(async () => (await partitions(topic, cluster.brokers)).every((p) => p.isr.length === 3), 120_000);
    step('both back, every partition in sync again');
    const read: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: cluster.brokers }, topic, read);
    try {
      await until(async () => {
        const seen = new Set(read.map((m) => (JSON.parse(m.value) as { id: string }).id));
        return [...acknowledged].every((id) => seen.has(id));
      }, 60_000).catch(() => undefined);
    } finally {
      await reader.stop();
    }

    const ids = read.map((m) => (JSON.parse(m.value) as { id: string }).id);
    const seen = new Set(ids);
    const lost = [...acknowledged].filter((id) => !seen.has(id));
    // Each key's acknowledged messages, in the order they first appear, are in the order sent.
    const outOfOrder: string[] = [];
    for (const [key, order] of sent) {
      const acked = order.filter((id) => acknowledged.has(id));
      const firstSeen = [...new Set(ids.filter((id) => id.startsWith(`${key}:`)))].filter((id) => acknowledged.has(id));
      if (firstSeen.join() !== acked.join()) outOfOrder.push(key);
    }
    console.log(
      `[kafka-replicated] seed ${SEED}: killed node ${victim!.id} (leader of a partition) under load, then node ` +
        `${second.id}; ${acknowledged.size} acknowledged (${ackedAfterKill} with two nodes), ${failures} sends ` +
        `unanswered or refused and sent again, ${ids.length - seen.size} duplicates in the log, ` +
        `${lost.length} lost, ${outOfOrder.length} keys out of order`,
    );
    expect(lost).toEqual([]);
    expect(outOfOrder).toEqual([]);
  }, 300_000);
});
