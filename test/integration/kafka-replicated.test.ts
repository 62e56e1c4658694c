/**
 * The events topic as the log of record: three KRaft nodes of its own (as `stack:up` runs them
 * with PERSONA_KAFKA_NODES=3), a topic made by Persona's `ensureTopics` with replication 3 (min ISR
 * 2 follows), and Persona's own producer (clients/kafka.ts) under load from eight senders, each
 * sending again what got no answer together with its next message (as a publisher's page read
 * again from its checkpoint, longer by then). Drawn from a printed seed, a partition's leader is
 * killed (SIGKILL) while they send. Then:
 *   - the partitions it led get new leaders, and every key is acknowledged again with two nodes;
 *   - a topic that needs three replicas in sync refuses a write (NOT_ENOUGH_REPLICAS): the broker
 *     holds a write to its min ISR rather than acknowledge it short;
 *   - Persona's ensureTopics still makes a topic while someone else's topic has lost its leader;
 *   - the node comes back, and the topic, read from its start against the senders' own ledger of
 *     what Kafka acknowledged, has every acknowledged message, each key's in the order sent.
 * Replay a run: PERSONA_KAFKA_SEED=<seed> npx vitest run --project integration
 * test/integration/kafka-replicated.test.ts
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKafkaProducer,
  ensureTopics,
  isKafkaError,
  KAFKA_HEADERS,
  type KafkaProducer,
} from '../../clients/kafka';
import { loadSettings } from '../../config/env';
import { mulberry32 } from '../../scripts/random';
import { privateKafkaCluster, QUICK_FENCING, type PrivateKafkaCluster } from '../support/privateServices';
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
  // The killed node is fenced, and its partitions get new leaders, 4 s after its last heartbeat, not 9.
  cluster = await privateKafkaCluster(3, { brokerSession: QUICK_FENCING });
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
  it('loses nothing acknowledged when a leader is killed under load, and refuses writes short of min ISR', async () => {
    const topic = `test.${randomUUID().slice(0, 8)}.replicated.events`;
    const s = {
      ...loadSettings(),
      kafkaBrokers: cluster.brokers,
      PERSONA_KAFKA_REPLICATION: 3,
      PERSONA_KAFKA_MIN_INSYNC_REPLICAS: undefined,
    };
    expect(await ensureTopics(s, [{ name: topic, partitions: PARTITIONS }])).toEqual([topic]);
    // A topic that needs all three replicas in sync: with one gone, a write is refused, not taken.
    const strict = `${topic}.strict`;
    await ensureTopics({ ...s, PERSONA_KAFKA_MIN_INSYNC_REPLICAS: 3 }, [{ name: strict, partitions: 1 }]);
    // Someone else's topic without replicas: one partition on each node, so the kill below leaves
    // one of them without a leader.
    const orphan = `${topic}.orphan`;
    await ensureTopics({ ...s, PERSONA_KAFKA_REPLICATION: 1 }, [{ name: orphan, partitions: 3 }]);
    // Replication 3 and min ISR 2, as Persona made it.
    await until(async () => (await partitions(topic, cluster.brokers)).every((p) => p.isr.length === 3), 60_000);
    const a = admin(cluster.brokers);
    try {
      const [described] = await a.describeConfigs({ resources: [{ resourceType: 2, resourceName: topic }] });
      expect(described?.configs.find((c) => c.name === 'min.insync.replicas')?.value).toBe('2');
    } finally {
      await a.close();
    }

    // A producer per sender, as a publisher per worker.
    producers = Array.from({ length: SENDERS }, (_, i) => createKafkaProducer(s, `persona-test-replicated-${i}`));
    // The ledger: per key, the messages sent in order, and the ids Kafka acknowledged.
    const sent = new Map<string, string[]>();
    const acknowledged = new Set<string>();
    let ackedAfterKill = 0;
    let killed = false;
    let elected = false;
    const ackedSinceElection = new Set<string>();
    let failures = 0;
    let stopping = false;
    const sender = async (index: number): Promise<void> => {
      const keys = Array.from({ length: KEYS_PER_SENDER }, (_, k) => `customer-${index}-${k}`);
      // What Kafka has not acknowledged yet. No answer is no acknowledgement: it goes again with the
      // next message, as a publisher's page read again from its checkpoint goes again, longer, so
      // the log may hold it twice.
      let pending: { key: string; id: string }[] = [];
      for (let n = 0; !stopping; n++) {
        const key = keys[n % keys.length] as string;
        const id = `${key}:${n}`;
        (sent.get(key) ?? sent.set(key, []).get(key))?.push(id);
        pending.push({ key, id });
        try {
          await producers[index]!.send({
            messages: pending.map((m) => ({
              topic,
              key: m.key,
              value: JSON.stringify({ id: m.id }),
              headers: { [KAFKA_HEADERS.eventId]: m.id },
            })),
          });
          for (const m of pending) {
            acknowledged.add(m.id);
            if (killed) ackedAfterKill += 1;
            if (elected) ackedSinceElection.add(m.key);
          }
          pending = [];
        } catch {
          failures += 1;
          if (stopping) return;
          await sleep(100);
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
    // The partitions it led get new leaders from the in-sync replicas, and every key is written again.
    const liveBrokers = cluster.nodes.filter((n) => n !== victim).map((n) => n.address);
    const movedOn = async (t: string): Promise<boolean> =>
      (await partitions(t, liveBrokers)).every((p) => p.leader !== victim!.id && p.isr.length === 2);
    await until(async () => (await movedOn(topic)) && (await movedOn(strict)), 120_000);
    elected = true;
    step(`new leaders elected (${ackedAfterKill} acknowledged meanwhile)`);
    await until(async () => ackedSinceElection.size === SENDERS * KEYS_PER_SENDER, 120_000);
    step(`every key acknowledged again, ${ackedAfterKill} since the kill`);

    // Two replicas in sync where three are required: refused, not acknowledged.
    const refused = await producers[0]!
      .send({
        messages: [{ topic: strict, key: 'customer-0-0', value: JSON.stringify({ id: `strict:${randomUUID()}` }) }],
      })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(refused && isKafkaError(refused, 'NOT_ENOUGH_REPLICAS'), 'a write short of min ISR is refused').toBe(true);

    // Persona still makes its topics while another topic has a partition without a leader (a
    // listing of the cluster's topics is refused then).
    const lister = admin(liveBrokers);
    try {
      await until(
        () =>
          lister.listTopics().then(
            () => false,
            () => true,
          ),
        60_000,
      );
    } finally {
      await lister.close().catch(() => undefined);
    }
    const later = `${topic}.later`;
    expect(
      await ensureTopics(s, [
        { name: later, partitions: 1 },
        { name: topic, partitions: PARTITIONS },
      ]),
    ).toEqual([later]);
    stopping = true;
    await Promise.all(senders);

    // It comes back; the topic, read from its start, against the ledger.
    await victim!.start();
    await until(async () => (await partitions(topic, cluster.brokers)).every((p) => p.isr.length === 3), 120_000);
    step('node back, every partition in sync again');
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
      `[kafka-replicated] seed ${SEED}: killed node ${victim!.id} (leader of a partition) under load; ` +
        `${acknowledged.size} acknowledged (${ackedAfterKill} with two nodes), ${failures} sends unanswered or ` +
        `refused and sent again, ${ids.length - seen.size} duplicates in the log, ${lost.length} lost, ` +
        `${outOfOrder.length} keys out of order`,
    );
    expect(lost).toEqual([]);
    expect(outOfOrder).toEqual([]);
  }, 300_000);
});
