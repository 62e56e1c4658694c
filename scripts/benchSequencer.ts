/**
 * The event sequencer a worker runs (workers/eventSequencer.ts), run by a benchmark itself: the
 * api processes it starts hear of every write as they would in production (the read cache serves
 * hits only while the log is drained). `topic`: the invalidations go to a Kafka topic of this run on
 * the stack's Kafka, which the api reads (`env` says so, and points the api's other topics at this
 * run's, where it has nothing to do); `poll`: the api polls the numbered log itself.
 * Needs the local stack with no worker running (its sequencer would share the lease).
 */
import type { Config } from '../config/env';
import { createKafkaProducer, ensureTopics } from '../clients/kafka';
import type { Graph } from '../graph';
import { createLogger } from '../runtime/logger';
import { localKafkaBrokers } from '../stack/install';
import { EventSequencer } from '../workers/eventSequencer';

export interface BenchSequencer {
  /** What an api process of the benchmark needs in its environment to hear of the writes. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startBenchSequencer(
  config: Config,
  graph: Graph,
  mode: 'topic' | 'poll',
  run: string,
): Promise<BenchSequencer> {
  const brokers = localKafkaBrokers(config);
  const env: Record<string, string> = {};
  const producer = mode === 'topic' ? createKafkaProducer({ kafkaBrokers: brokers }, 'bench-sequencer') : undefined;
  const topic = `bench.${run}.invalidations`;
  if (mode === 'topic') {
    await ensureTopics({ kafkaBrokers: brokers } as never, [{ name: topic, partitions: 1, retentionMs: 600_000 }]);
    Object.assign(env, {
      KAFKA_BROKERS: brokers.join(','),
      PERSONA_KAFKA_INVALIDATIONS_TOPIC: topic,
      // The agents' topics of this run: the api's consumer of them has nothing to do.
      PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: `bench.${run}.payment-failures`,
      PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: `bench.${run}.fraud-outcomes`,
      PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: `bench.${run}.routing-outcomes`,
      PERSONA_KAFKA_DEAD_LETTER_TOPIC: `bench.${run}.dead-letters`,
      PERSONA_KAFKA_EVENTS_TOPIC: `bench.${run}.events`,
      PERSONA_KAFKA_CONSUMER_GROUP: `bench-${run}`,
    });
  }
  const sequencer = new EventSequencer(
    graph,
    {
      pollMs: config.PERSONA_EVENT_SEQUENCER_POLL_MS,
      tickMs: config.PERSONA_EVENT_SEQUENCER_TICK_MS,
      batch: 500,
      ...(producer ? { kafka: { producer, topic, keys: config.payloadKeys } } : {}),
    },
    createLogger('bench-sequencer', 'warn'),
  );
  sequencer.start();
  return {
    env,
    async stop() {
      await sequencer.stop();
      await producer?.close();
    },
  };
}
