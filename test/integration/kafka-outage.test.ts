/**
 * The api's consumer through a Kafka outage, on a broker of its own (the shared stack's keeps
 * running): once Kafka has been away longer than the client's retries, the client ends its stream
 * for good; the supervisor notices, starts a new consumer once Kafka answers again, and a message
 * sent after the outage is handled. Without the supervisor nothing would read the topics again
 * until the api restarted.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { superviseAgentConsumer, type SupervisedConsumer } from '../../api/kafkaConsumer';
import { createKafkaProducer, ensureTopics, type KafkaProducer } from '../../clients/kafka';
import { createLogger } from '../../runtime/logger';
import { startHarness, type Harness } from '../support/api';
import { privateKafka, type PrivateKafka } from '../support/privateServices';
import { customerWithCards } from '../support/recovery';
import { until } from '../support/wait';

let h: Harness;
let kafka: PrivateKafka;
let producer: KafkaProducer | undefined;
let consumer: SupervisedConsumer | undefined;

beforeAll(async () => {
  kafka = await privateKafka();
  [h] = await Promise.all([startHarness(), kafka.start()]);
});
afterAll(async () => {
  await consumer?.close().catch(() => undefined);
  await producer?.close().catch(() => undefined);
  await h?.close();
  await kafka?.dispose();
});

describe('a Kafka outage', () => {
  it('ends the stream, and the supervisor starts a consumer that handles what comes after', async () => {
    const run = randomUUID().slice(0, 8);
    const s = {
      kafkaBrokers: [kafka.address],
      PERSONA_KAFKA_EVENTS_TOPIC: `test.${run}.persona.events`,
      PERSONA_KAFKA_EVENTS_PARTITIONS: 1,
      PERSONA_KAFKA_EVENTS_RETENTION_MS: 3_600_000,
      PERSONA_KAFKA_REPLICATION: 1,
      PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: `test.${run}.payment-failures`,
      PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: `test.${run}.fraud-outcomes`,
      PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: `test.${run}.routing-outcomes`,
      PERSONA_KAFKA_DEAD_LETTER_TOPIC: `test.${run}.dead-letters`,
      PERSONA_KAFKA_CONSUMER_GROUP: `test-${run}`,
    };
    producer = createKafkaProducer(s, 'persona-test-agent');
    consumer = superviseAgentConsumer({
      settings: s,
      deps: h.deps,
      producer,
      logger: createLogger('test-kafka-outage', 'silent'),
      ensureTopics: () => ensureTopics(s),
      minBackoffMs: 200,
      maxBackoffMs: 2_000,
    });
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const payment = (amount: number) => ({
      id: `route-${randomUUID()}`,
      type: 'payment',
      customer_id: customerId,
      occurred_at: new Date().toISOString(),
      payment_method_id: cards[0],
      amount,
      currency: h.graph.policy.reportingCurrency,
      outcome: 'succeeded',
    });
    const send = (value: unknown) =>
      producer!.send({
        messages: [{ topic: s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, key: customerId, value: JSON.stringify(value) }],
      });
    const ltv = async () =>
      Number(
        (
          await h.graph.query<{ ltv: number }>('MATCH (c:Customer {id: $id}) RETURN c.ltv AS ltv', {
            id: customerId,
          })
        )[0]?.ltv,
      );

    await until(async () => consumer!.consuming, 60_000);
    await send(payment(1000));
    await until(async () => consumer!.handled >= 1, 60_000);
    expect(await ltv()).toBe(1000);

    // Kafka goes away until the client gives its stream up.
    expect(await kafka.stop()).toBe('stopped');
    await until(async () => consumer!.interruptions >= 1, 120_000);
    expect(consumer.consuming).toBe(false);

    await kafka.start();
    await until(async () => consumer!.consuming, 120_000);
    expect(consumer.restarts).toBeGreaterThanOrEqual(1);
    await send(payment(234));
    await until(async () => (await ltv()) === 1234, 120_000);
    // Each payment once: the one before the outage was not handled again.
    expect(await ltv()).toBe(1234);
    // An outage of about 12 s and a broker's restart on a busy machine: more than the default minute.
  }, 420_000);
});
