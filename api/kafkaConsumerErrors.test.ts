/**
 * A Kafka consumer reports a group operation that failed for good (a rejoin while the group's
 * coordinator is gone) as an 'error' event on the consumer itself, not on its stream; with no
 * listener, Node ends the process on it. The fleet test (test/fleet/run.ts) found an api ended so
 * when it killed a Kafka node. Both of the api's consumers — the agents' topics and the
 * invalidation topic — must hear it, and end that consumer rather than the api.
 */
import { Consumer } from '@platformatic/kafka';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { KeyRing } from '../config/keyRing';
import { createLogger } from '../runtime/logger';
import { InvalidationFeed, InvalidationTail } from './invalidations';
import { startAgentConsumer } from './kafkaConsumer';

const logger = createLogger('kafka-consumer-errors-test', 'silent');
/** Nothing listens here: every request of the consumer fails, and nothing is ever consumed. */
const connection = { kafkaBrokers: ['127.0.0.1:1'] };

/** The consumers made while `run` runs, caught as they are made. */
function consumersMadeBy(): Consumer<string, string, string, string>[] {
  const made: Consumer<string, string, string, string>[] = [];
  // eslint-disable-next-line @typescript-eslint/unbound-method -- applied below with the consumer as `this`
  const on = Consumer.prototype.on as (this: unknown, ...args: unknown[]) => unknown;
  vi.spyOn(Consumer.prototype, 'on').mockImplementation(function (
    this: Consumer<string, string, string, string>,
    ...args: unknown[]
  ) {
    if (!made.includes(this)) made.push(this);
    return on.apply(this, args) as Consumer<string, string, string, string>;
  });
  return made;
}

afterEach(() => vi.restoreAllMocks());

describe("a Kafka consumer's own 'error'", () => {
  it('ends the invalidation feed’s consumer, not the process: the feed counts it and starts again', async () => {
    const made = consumersMadeBy();
    const tail = new InvalidationTail(
      {} as never,
      { apply() {}, polled() {}, reset() {} },
      { maxGap: 10, pageSize: 10 },
      logger,
    );
    const feed = new InvalidationFeed(
      tail,
      { kafka: { connection, topic: `t-${randomUUID()}`, keys: {} as KeyRing }, pollMs: 50 },
      logger,
    );
    feed.start();
    try {
      await vi.waitFor(() => expect(made.length).toBeGreaterThan(0), { timeout: 10_000 });
      const consumer = made[0] as Consumer<string, string, string, string>;
      const failuresBefore = tail.stats.failures;
      // Unheard, emit throws the error (and in the api, the process ends).
      expect(() => consumer.emit('error', new Error('rejoinGroup failed 4 times.'))).not.toThrow();
      expect(tail.stats.failures).toBeGreaterThan(failuresBefore);
    } finally {
      await feed.stop();
    }
  });

  it('ends the agents’ consumer, not the process', async () => {
    const made = consumersMadeBy();
    const started = startAgentConsumer({
      settings: {
        ...connection,
        PERSONA_KAFKA_CONSUMER_GROUP: `g-${randomUUID()}`,
        PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: 'failures',
        PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: 'fraud',
        PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: 'routing',
      } as never,
      deps: {} as never,
      producer: {} as never,
      logger,
    });
    await vi.waitFor(() => expect(made.length).toBeGreaterThan(0), { timeout: 10_000 });
    const consumer = made[0] as Consumer<string, string, string, string>;
    expect(() => consumer.emit('error', new Error('rejoinGroup failed 4 times.'))).not.toThrow();
    // Nothing answers at that address: the start fails, as it would have without the error.
    await expect(started).rejects.toBeDefined();
  }, 60_000);
});
