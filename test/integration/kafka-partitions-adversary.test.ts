/**
 * Routing outcomes count once, whatever happens to their consumers (issue 47, part 4): an adversary
 * drawing from one seed sends payments of a few customers over six partitions — some sent twice
 * under one id, some for a customer Persona does not know — while it loses Kafka commits after the
 * graph committed, crashes consumers in the middle of their batches, and starts others in the same
 * group (rebalances, two owners of a partition for a moment), and loses dead letters on their way.
 * It checks against its own ledger: each customer's lifetime value is the sum of its distinct
 * payments, and every payment that can never be recorded (a stranger's, a poison one) reached the
 * dead-letter topic. The seed is printed; replay a run with
 *
 *   PERSONA_ADVERSARY_SEED=<seed> npx vitest run --project integration \
 *     test/integration/kafka-partitions-adversary.test.ts
 */
import { randomUUID } from 'node:crypto';
import neo4j from 'neo4j-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConsumer } from '../../api/kafkaConsumer';
import { createKafkaProducer, KAFKA_HEADERS, type KafkaProducer } from '../../clients/kafka';
import { loadSettings } from '../../config/env';
import { mulberry32 } from '../../scripts/random';
import { localKafkaBrokers } from '../../stack/install';
import { startHarness, type Harness } from '../support/api';
import { readTopic, startTestConsumer, topicsForTest, type Msg, type TestTopics } from '../support/kafka';
import { customerWithCards } from '../support/recovery';
import { until } from '../support/wait';

const SEED = Number(process.env.PERSONA_ADVERSARY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CUSTOMERS = 12;
const PAYMENTS = 600;
const WAVES = 8;
/** Payments of the poison customer (below). */
const POISONS = 2;

const brokers = localKafkaBrokers(loadSettings());
let producer: KafkaProducer;
let h: Harness;
const consumers: AgentConsumer[] = [];

beforeAll(async () => {
  producer = createKafkaProducer({ kafkaBrokers: brokers }, 'persona-test-adversary');
  h = await startHarness({ kafka: producer });
});
afterAll(async () => {
  for (const c of consumers) await c.close({ abandon: true }).catch(() => undefined);
  await h?.close();
  await producer?.close();
});

describe('routing outcomes under lost commits, crashes and rebalances', () => {
  it(`counts each payment once and dead-letters what can never be recorded (seed ${SEED})`, async () => {
    console.log(`[kafka-partitions-adversary] seed ${SEED}`);
    const rand = mulberry32(SEED);
    const s: TestTopics = await topicsForTest(brokers, { events: 1 });
    const topic = s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC;
    const customers = await Promise.all(
      Array.from({ length: CUSTOMERS }, () => customerWithCards(h.graph, [`tok_visa_${randomUUID()}`])),
    );
    // The independent ledger: what each customer's lifetime value must be, and what must be refused.
    const ledger = new Map<string, number>(customers.map((c) => [c.customerId, 0]));
    const refused = new Set<string>();
    // A customer whose LTV is at the edge of a 64-bit integer: a payment of theirs is a poison message
    // (Neo4j refuses the sum every time), dead-lettered alone after its batch and it alone failed.
    const poison = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    await h.graph.query('MATCH (c:Customer {id: $id}) SET c.ltv = $ltv', {
      id: poison.customerId,
      ltv: neo4j.int('9223372036854775807'),
    });
    const poisonAt = new Set(Array.from({ length: POISONS }, () => Math.floor(rand() * PAYMENTS)));
    const payments: { key: string; value: string; stranger: boolean }[] = [];
    for (let i = 0; i < PAYMENTS; i++) {
      const stranger = rand() < 0.03;
      const drawn = customers[Math.floor(rand() * customers.length)] as (typeof customers)[number];
      const c = poisonAt.has(i) ? poison : drawn;
      const customerId = stranger ? randomUUID() : c.customerId;
      const p = {
        id: `adv-${SEED}-${i}`,
        type: 'payment',
        customer_id: customerId,
        occurred_at: new Date().toISOString(),
        payment_method_id: stranger ? randomUUID() : c.cards[0],
        amount: 1 + Math.floor(rand() * 5000),
        currency: h.graph.policy.reportingCurrency,
        outcome: 'succeeded',
      };
      if (stranger || c === poison) refused.add(p.id);
      else ledger.set(customerId, (ledger.get(customerId) ?? 0) + p.amount);
      const value = JSON.stringify(p);
      payments.push({ key: customerId, value, stranger });
      // The sender sends it again (a retry of its own): the same id, another offset, counted once.
      if (rand() < 0.1) payments.push({ key: customerId, value, stranger });
    }

    const faults = { lostCommits: 0, crashes: 0, joins: 0, lostDeadLetters: 0 };
    // The dead-letter topic's producer, whose sends are lost at random (after the graph committed
    // the batch that refused the message: only the refusal kept on the partition's node sends it again).
    const deadLetters: KafkaProducer = {
      send: async (options) => {
        if (rand() < 0.2) {
          faults.lostDeadLetters++;
          throw new Error('adversary: the dead letter was lost on its way');
        }
        return producer.send(options);
      },
      close: async () => undefined,
    };
    /** A consumer whose commits are lost at random, and which may crash in the middle of a batch's commit. */
    const start = async (): Promise<AgentConsumer> => {
      // Set once started: a batch may reach its commit before the start has returned.
      const me: { c?: AgentConsumer } = {};
      const c = await startTestConsumer(
        {
          settings: s,
          deps: h.deps,
          producer: deadLetters,
          beforeCommit: async () => {
            const draw = rand();
            const dying = me.c;
            if (draw < 0.15 && dying && live.includes(dying) && live.length > 1) {
              faults.crashes++;
              live.splice(live.indexOf(dying), 1);
              void dying.close({ abandon: true });
              throw new Error('adversary: the consumer crashed after the graph committed');
            }
            if (draw < 0.4) {
              faults.lostCommits++;
              throw new Error('adversary: the commit to Kafka was lost');
            }
          },
        },
        consumers,
      );
      me.c = c;
      live.push(c);
      return c;
    };
    const live: AgentConsumer[] = [];
    const handledByAll = () => consumers.reduce((n, c) => n + c.handled, 0);

    const dead: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: brokers }, s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, dead);
    try {
      await start();
      const perWave = Math.ceil(payments.length / WAVES);
      for (let w = 0; w < WAVES; w++) {
        const wave = payments.slice(w * perWave, (w + 1) * perWave);
        for (let i = 0; i < wave.length; i += 50)
          await producer.send({
            messages: wave.slice(i, i + 50).map((p) => ({ topic, key: p.key, value: p.value })),
          });
        // Once the wave is being handled: another member joins the group (a rebalance), or one is killed.
        const before = handledByAll();
        await until(async () => handledByAll() > before || live.length === 0, 60_000);
        if (rand() < 0.5 || live.length < 2) {
          faults.joins++;
          await start();
        } else if (live.length > 1) {
          faults.crashes++;
          const victim = live.splice(Math.floor(rand() * live.length), 1)[0] as AgentConsumer;
          await victim.close({ abandon: true });
        }
      }
      // The adversary stops: what is left runs clean until everything is in.
      if (live.length === 0) await start();
      const ltvs = async () =>
        new Map(
          (
            await h.graph.query<{ id: string; ltv: number }>(
              'MATCH (c:Customer) WHERE c.id IN $ids RETURN c.id AS id, c.ltv AS ltv',
              { ids: customers.map((c) => c.customerId) },
            )
          ).map((r) => [r.id, Number(r.ltv ?? 0)]),
        );
      const refusedSeen = () =>
        new Set(dead.map((m) => (JSON.parse(m.value) as { id: string }).id).filter((id) => refused.has(id)));
      await until(async () => {
        const now = await ltvs();
        return [...ledger].every(([id, v]) => now.get(id) === v) && refusedSeen().size === refused.size;
      }, 120_000).catch(async (err: unknown) => {
        const now = await ltvs();
        const wrong = [...ledger]
          .filter(([id, v]) => now.get(id) !== v)
          .map(([id, v]) => `${id}: ${now.get(id)} ≠ ${v}`);
        throw new Error(
          `${String(err)} (seed ${SEED}, faults ${JSON.stringify(faults)}): ${wrong.length} customers off the ledger ` +
            `[${wrong.join('; ')}], ${refusedSeen().size} of ${refused.size} refusals dead-lettered`,
        );
      });
      // Never more than the ledger: a count that is right now stays right (nothing still to come).
      for (const [id, v] of await ltvs()) expect(v).toBe(ledger.get(id));
      // Each dead letter is a stranger's payment (at least once each), none of a known customer.
      expect(dead.every((m) => refused.has((JSON.parse(m.value) as { id: string }).id))).toBe(true);
      const reasons = new Set(
        dead.map((m) =>
          (m.headers.get(KAFKA_HEADERS.deadLetterReason) ?? '').startsWith('could not be recorded: ')
            ? 'could not be recorded'
            : m.headers.get(KAFKA_HEADERS.deadLetterReason),
        ),
      );
      expect([...reasons].sort()).toEqual(
        [...(poisonAt.size > 0 ? ['could not be recorded'] : []), 'customer_id: no such customer'].sort(),
      );
      console.log(
        `[kafka-partitions-adversary] seed ${SEED}: ${payments.length} messages (${PAYMENTS} payments, ` +
          `${refused.size} of strangers), faults ${JSON.stringify(faults)}, ${dead.length} dead letters ` +
          `for ${refused.size} refusals; every customer's LTV on the ledger`,
      );
    } finally {
      await reader.stop();
      for (const c of live.splice(0)) await c.close().catch(() => undefined);
    }
  }, 240_000);
});
