/**
 * The api's Kafka metrics on /metrics: whether the agents' topics' consumer runs and how often it
 * ended, the messages sent to the dead-letter topic, and the Kafka publisher's lag read from its
 * checkpoint at each scrape (whichever worker publishes).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Where the consumer's metrics read it: set by api/main.ts when Kafka is on (api/kafkaConsumer.ts). */
export interface KafkaConsumerSource {
  view?: () => { consuming: boolean; restarts: number };
}

/** The Kafka publisher's lag now, from its checkpoint, or null when Kafka is off or it never ran. */
export type PublisherLag = () => Promise<{ behind_events: number; behind_seconds: number } | null>;

/**
 * The agents' topics' consumer: up (1 consuming, 0 being started again) and the times it ended.
 * Both read the consumer's view at each scrape and show nothing while it is unset (Kafka off).
 */
export function kafkaConsumerMetrics(registry: Registry, kafkaConsumer: KafkaConsumerSource): void {
  // The agents' topics' consumer (absent when Kafka is off): one that ended and has not been started
  // again reads nothing, and payment failures and fraud outcomes sent by Kafka wait.
  new Gauge({
    name: 'persona_kafka_consumer_up',
    help: "1 while this api consumes the agents' Kafka topics, 0 while its consumer is being started again",
    registers: [registry],
    collect() {
      const view = kafkaConsumer.view?.();
      // No sample at all without a consumer: an unlabelled gauge reads 0 until told otherwise, which
      // an alert on `max(...) == 0` would take for a consumer down.
      if (view) this.set(view.consuming ? 1 : 0);
      else this.remove();
    },
  });
  new Counter({
    name: 'persona_kafka_consumer_restarts_total',
    help: "Times the agents' topics' consumer ended (its stream failed, or its group could not be rejoined)",
    registers: [registry],
    collect() {
      const view = kafkaConsumer.view?.();
      if (!view) return this.remove();
      this.reset();
      this.inc(view.restarts);
    },
  });
}

/**
 * Consumed messages sent to the dead-letter topic, by the topic they came from: counted by the
 * consumer (api/kafkaConsumer.ts) as it sends each one.
 */
export function kafkaDeadLetterCounter(registry: Registry): Counter<'topic'> {
  return new Counter({
    name: 'persona_kafka_dead_letters_total',
    help: "Messages of the agents' topics the api can never accept, sent to the dead-letter topic, by topic",
    labelNames: ['topic'],
    registers: [registry],
  });
}

/**
 * The Kafka publisher's lag: events behind and the age of the oldest one not yet published. Both
 * gauges come from one checkpoint read per scrape: a collect that starts while the other's read is
 * in flight shares it; the next scrape reads again.
 */
export function kafkaPublisherMetrics(
  registry: Registry,
  publisher: PublisherLag | undefined,
): { publisherBehindEvents: Gauge; publisherBehindSeconds: Gauge } {
  let publishing: Promise<{ behind_events: number; behind_seconds: number } | null> | null = null;
  const publisherNow = () => {
    if (!publisher) return Promise.resolve(null);
    publishing ??= publisher().finally(() => {
      publishing = null;
    });
    return publishing;
  };
  return {
    // The Kafka publisher's lag, from its checkpoint at each scrape (whichever worker publishes).
    publisherBehindEvents: new Gauge({
      name: 'persona_kafka_publisher_behind_events',
      help:
        "Events in the log after the Kafka publisher's checkpoint, counted up to 100,000 " +
        '(0 when Kafka is off or the publisher never ran)',
      registers: [registry],
      async collect() {
        this.reset();
        const now = await publisherNow();
        if (now !== null) this.set(now.behind_events);
      },
    }),
    publisherBehindSeconds: new Gauge({
      name: 'persona_kafka_publisher_behind_seconds',
      help:
        'Age of the oldest event the Kafka publisher has not published yet (0 when it is at the end, ' +
        'when Kafka is off or the publisher never ran; the feed lag PERSONA_EVENTS_FEED_LAG_MS is always in it)',
      registers: [registry],
      async collect() {
        this.reset();
        const now = await publisherNow();
        if (now !== null) this.set(now.behind_seconds);
      },
    }),
  };
}
