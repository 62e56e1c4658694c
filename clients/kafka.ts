/**
 * Kafka, Persona's side of it: the topics Persona publishes to and reads from, the idempotent
 * producer, and making the topics that are missing. Off when KAFKA_BROKERS is empty.
 *
 * Topics (names are configuration, docs/events.md#kafka says what each carries):
 *   - `persona.events.v1`: the graph's events, keyed by customer id (a device-level event by its
 *     device id), JSON as docs/events.schema.json says, the event id in the `event-id` header;
 *   - `synapse.payment-failures.v1`, `chimera.fraud-outcomes.v1`, `cerebrum.routing-outcomes.v1`:
 *     the agents', consumed by the api into the same services as its routes;
 *   - `persona.dead-letters.v1`: what the api consumed and can never accept, with the reason.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TLSConnectionOptions } from 'node:tls';
import { Admin, ProduceAcks, Producer, stringSerializers, type SASLOptions } from '@platformatic/kafka';
import { ConfigError, type Settings } from '../config/env';

/** How Persona reaches the brokers: where, and with which TLS and SASL settings. */
export type KafkaConnectionSettings = Pick<Settings, 'kafkaBrokers'> &
  Partial<
    Pick<
      Settings,
      | 'KAFKA_TLS'
      | 'KAFKA_TLS_CA'
      | 'KAFKA_TLS_CERT'
      | 'KAFKA_TLS_KEY'
      | 'KAFKA_SASL_MECHANISM'
      | 'KAFKA_SASL_USERNAME'
      | 'kafkaSaslPassword'
    >
  >;

export type KafkaSettings = KafkaConnectionSettings &
  Pick<
    Settings,
    | 'PERSONA_KAFKA_EVENTS_TOPIC'
    | 'PERSONA_KAFKA_EVENTS_PARTITIONS'
    | 'PERSONA_KAFKA_EVENTS_RETENTION_MS'
    | 'PERSONA_KAFKA_REPLICATION'
    | 'PERSONA_KAFKA_MIN_INSYNC_REPLICAS'
    | 'PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC'
    | 'PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC'
    | 'PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC'
    | 'PERSONA_KAFKA_DEAD_LETTER_TOPIC'
  >;

export function kafkaEnabled(s: Pick<Settings, 'kafkaBrokers'>): boolean {
  return s.kafkaBrokers.length > 0;
}

function pem(name: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError([`${name}: cannot read ${file} (${(err as Error).message})`]);
  }
}

/**
 * The connection options every Kafka client of Persona is made with (producer, consumer, admin):
 * the bootstrap brokers, TLS when KAFKA_TLS=true (the brokers verified against KAFKA_TLS_CA or the
 * system's CAs, Persona's certificate when KAFKA_TLS_CERT/_KEY are set) and SASL when
 * KAFKA_SASL_MECHANISM is set. Throws ConfigError when a PEM file cannot be read.
 */
export function kafkaConnection(s: KafkaConnectionSettings): {
  bootstrapBrokers: string[];
  tls?: TLSConnectionOptions;
  sasl?: SASLOptions;
} {
  const tls: TLSConnectionOptions | undefined =
    s.KAFKA_TLS === 'true'
      ? {
          ...(s.KAFKA_TLS_CA ? { ca: pem('KAFKA_TLS_CA', s.KAFKA_TLS_CA) } : {}),
          ...(s.KAFKA_TLS_CERT && s.KAFKA_TLS_KEY
            ? { cert: pem('KAFKA_TLS_CERT', s.KAFKA_TLS_CERT), key: pem('KAFKA_TLS_KEY', s.KAFKA_TLS_KEY) }
            : {}),
        }
      : undefined;
  const sasl: SASLOptions | undefined = s.KAFKA_SASL_MECHANISM
    ? {
        mechanism: s.KAFKA_SASL_MECHANISM,
        ...(s.KAFKA_SASL_USERNAME ? { username: s.KAFKA_SASL_USERNAME } : {}),
        ...(s.kafkaSaslPassword ? { password: s.kafkaSaslPassword } : {}),
      }
    : undefined;
  return { bootstrapBrokers: s.kafkaBrokers, ...(tls ? { tls } : {}), ...(sasl ? { sasl } : {}) };
}

/** Headers Persona reads and writes (lower case, as HTTP's). */
export const KAFKA_HEADERS = {
  eventId: 'event-id',
  eventType: 'event-type',
  requestId: 'x-request-id',
  traceparent: 'traceparent',
  deadLetterReason: 'persona-dead-letter-reason',
  deadLetterSource: 'persona-dead-letter-source',
} as const;

export type KafkaProducer = Producer<string, string, string, string>;

/**
 * The idempotent producer (acks from every in-sync replica): a retried produce request never
 * writes a message twice, and a partition keeps the order the messages were sent in.
 */
export function createKafkaProducer(s: KafkaConnectionSettings, clientId: string): KafkaProducer {
  return new Producer({
    clientId,
    ...kafkaConnection(s),
    serializers: stringSerializers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    retries: 5,
    timeout: 10_000,
  });
}

export interface TopicSpec {
  name: string;
  partitions: number;
  retentionMs?: number;
}

/** The topics Persona needs: its own, and the agents' (made here only when missing: local stacks and tests). */
export function personaTopics(s: KafkaSettings): TopicSpec[] {
  return [
    {
      name: s.PERSONA_KAFKA_EVENTS_TOPIC,
      partitions: s.PERSONA_KAFKA_EVENTS_PARTITIONS,
      retentionMs: s.PERSONA_KAFKA_EVENTS_RETENTION_MS,
    },
    { name: s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, partitions: 1 },
    { name: s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC, partitions: 6 },
    { name: s.PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC, partitions: 6 },
    { name: s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, partitions: 6 },
  ];
}

/** `min.insync.replicas` of the topics Persona makes: as set, else 2 from a replication of 3, else 1. */
export function minInsyncReplicas(
  s: Pick<Settings, 'PERSONA_KAFKA_REPLICATION' | 'PERSONA_KAFKA_MIN_INSYNC_REPLICAS'>,
): number {
  return s.PERSONA_KAFKA_MIN_INSYNC_REPLICAS ?? (s.PERSONA_KAFKA_REPLICATION >= 3 ? 2 : 1);
}

/** The configs a topic Persona makes is created with. */
export function topicConfigs(
  s: Pick<Settings, 'PERSONA_KAFKA_REPLICATION' | 'PERSONA_KAFKA_MIN_INSYNC_REPLICAS'>,
  t: TopicSpec,
): { name: string; value: string }[] {
  return [
    { name: 'min.insync.replicas', value: String(minInsyncReplicas(s)) },
    ...(t.retentionMs === undefined ? [] : [{ name: 'retention.ms', value: String(t.retentionMs) }]),
  ];
}

/** Creates the topics that do not exist yet; one that exists is left as it is. Returns those it made. */
export async function ensureTopics(s: KafkaSettings, topics: TopicSpec[] = personaTopics(s)): Promise<string[]> {
  const admin = new Admin({ clientId: 'persona-topics', ...kafkaConnection(s), timeout: 10_000 });
  try {
    const existing = new Set(await admin.listTopics());
    const made: string[] = [];
    for (const t of topics) {
      if (existing.has(t.name)) continue;
      try {
        await admin.createTopics({
          topics: [t.name],
          partitions: t.partitions,
          replicas: s.PERSONA_KAFKA_REPLICATION,
          configs: topicConfigs(s, t),
        });
        made.push(t.name);
      } catch (err) {
        // Another process made it in between: that is what we wanted.
        if (!(await admin.listTopics()).includes(t.name)) throw err;
      }
    }
    return made;
  } finally {
    await admin.close();
  }
}
