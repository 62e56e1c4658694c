/**
 * What the worker process starts for the event log beside its Workers: Kafka (the producer the
 * publisher uses, and Persona's topics, made in the background) and the event sequencer, which
 * numbers the log and tells the api replicas what changed over a producer of its own.
 */
import type { Config } from '../config/env';
import type { Graph } from '../graph/graph';
import type { Logger } from '../runtime/logger';
import {
  createKafkaProducer,
  ensureTopics,
  ensureTopicsUntilDone,
  kafkaEnabled,
  type KafkaProducer,
} from '../clients/kafka';
import { EventSequencer } from './eventSequencer';

/**
 * Kafka (KAFKA_BROKERS): the topics Persona needs, and the idempotent producer the publisher uses
 * (undefined when Kafka is off). The topics are made beside the start, not before it: Kafka away
 * (a broker down, the cluster unreachable) must not keep the worker from running recoveries,
 * erasures and relays. Aborting `stopEnsuringTopics` stops trying (on shutdown).
 */
export function startKafka(
  config: Config,
  logger: Logger,
): { kafka: KafkaProducer | undefined; stopEnsuringTopics: AbortController } {
  const kafka = kafkaEnabled(config) ? createKafkaProducer(config, 'persona-worker') : undefined;
  const stopEnsuringTopics = new AbortController();
  if (kafka) {
    logger.info({ brokers: config.kafkaBrokers }, `Kafka at ${config.KAFKA_BROKERS}`);
    void ensureTopicsUntilDone(() => ensureTopics(config), {
      signal: stopEnsuringTopics.signal,
      onError: (err, attempt, retryInMs) =>
        logger.warn(
          { err, attempt, retryInMs },
          `could not make the Kafka topics (${(err as Error).message}); trying again in ${retryInMs} ms ` +
            '(the publisher waits for its topic meanwhile)',
        ),
    })
      .then((made) => {
        if (made)
          logger.info({ made }, made.length ? `made the Kafka topics ${made.join(', ')}` : 'Kafka topics there');
      })
      .catch((err: unknown) => logger.error({ err }, 'making the Kafka topics stopped'));
  } else logger.info('no KAFKA_BROKERS: Kafka is off (the feed and the webhooks are unchanged)');
  return { kafka, stopEnsuringTopics };
}

/**
 * The event log's numbering (graph/sequencer.ts), started when PERSONA_EVENT_SEQUENCER is on, and
 * the api replicas' invalidations: its own producer (with Kafka on), so a publisher page never
 * holds up an invalidation. Both are undefined when not made; the caller stops and closes them.
 */
export function startEventSequencer(
  config: Config,
  graph: Graph,
  kafka: KafkaProducer | undefined,
  logger: Logger,
): { invalidations: KafkaProducer | undefined; sequencer: EventSequencer | undefined } {
  const on = config.PERSONA_EVENT_SEQUENCER === 'on';
  // Its producer only when it runs: an idle one would still connect to the brokers.
  const invalidations = on && kafka ? createKafkaProducer(config, 'persona-sequencer') : undefined;
  const sequencer = on
    ? new EventSequencer(
        graph,
        {
          pollMs: config.PERSONA_EVENT_SEQUENCER_POLL_MS,
          tickMs: config.PERSONA_EVENT_SEQUENCER_TICK_MS,
          batch: 500,
          ...(invalidations
            ? {
                kafka: {
                  producer: invalidations,
                  topic: config.PERSONA_KAFKA_INVALIDATIONS_TOPIC,
                  keys: config.payloadKeys,
                },
              }
            : {}),
        },
        logger,
      )
    : undefined;
  if (sequencer) {
    sequencer.start();
    logger.info(
      invalidations
        ? `numbering the event log; invalidations to ${config.PERSONA_KAFKA_INVALIDATIONS_TOPIC}`
        : 'numbering the event log (no Kafka: api replicas poll it)',
    );
  } else logger.info('PERSONA_EVENT_SEQUENCER=off: another process numbers the event log');
  return { invalidations, sequencer };
}
