/**
 * Kafka: the brokers (none turns Kafka off), the topics Persona publishes, creates and consumes,
 * the event sequencer that numbers events for the invalidation topic, and TLS and SASL to the
 * brokers with what production requires of them.
 */
import { z } from 'zod';
import type { ConfigIssue, CoreEnv, EnvOf } from './envCore';

/** A Kafka topic name as the broker accepts it. */
const kafkaTopic = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name (letters, digits, . _ -; at most 249)');

export const kafkaShape = {
  /**
   * Kafka's bootstrap brokers (`host:port,…`). Empty (the default) turns Kafka off: the feed and
   * the webhooks go on as before. `npm run dev` sets it to the local stack's broker.
   */
  KAFKA_BROKERS: z
    .string()
    .default('')
    .refine(
      (v) => v === '' || v.split(',').every((b) => /^[A-Za-z0-9.-]+:\d{1,5}$/.test(b.trim())),
      'expected host:port[,host:port…] (empty turns Kafka off)',
    ),
  /** The topic the graph's events are published to, keyed by customer id. */
  PERSONA_KAFKA_EVENTS_TOPIC: kafkaTopic.default('persona.events.v1'),
  /**
   * The invalidation topic (workers/eventSequencer.ts → api/invalidations.ts): one partition, every
   * api replica reads all of it. Its messages hold ids, sequence numbers and the few values the
   * cache applies in place (a lifetime value, a segment, a trust score), for
   * PERSONA_KAFKA_INVALIDATIONS_RETENTION_MS only.
   */
  PERSONA_KAFKA_INVALIDATIONS_TOPIC: kafkaTopic.default('persona.invalidations.v1'),
  /** How long the invalidation topic keeps a message (a replica further behind empties its cache). */
  PERSONA_KAFKA_INVALIDATIONS_RETENTION_MS: z.coerce.number().int().min(60_000).default(600_000),
  /** How often each worker's event sequencer looks for committed events to number (graph/sequencer.ts). */
  PERSONA_EVENT_SEQUENCER_POLL_MS: z.coerce.number().int().min(1).max(10_000).default(20),
  /**
   * With nothing to number, how often the sequencer still says so on the invalidation topic: below
   * PERSONA_READ_CACHE_FRESH_MS, or the replicas' hits stop while the log is quiet.
   */
  PERSONA_EVENT_SEQUENCER_TICK_MS: z.coerce.number().int().min(10).max(60_000).default(200),
  /** `off`: this worker does not number events (another process does; at least one must). */
  PERSONA_EVENT_SEQUENCER: z.enum(['on', 'off']).default('on'),
  /** Partitions of the events topic when Persona creates it (a customer's events stay on one). */
  PERSONA_KAFKA_EVENTS_PARTITIONS: z.coerce.number().int().min(1).max(10_000).default(12),
  /** How long the events topic keeps a message when Persona creates it (default 7 days; -1: for ever). */
  PERSONA_KAFKA_EVENTS_RETENTION_MS: z.coerce
    .number()
    .int()
    .min(-1)
    .default(7 * 24 * 3600 * 1000),
  /**
   * Replication factor of the topics Persona creates (1 for a one-broker stack). In production at
   * least 3 (the events topic is the log of record: a broker lost loses nothing acknowledged),
   * unless KAFKA_ALLOW_UNREPLICATED=true (a single-machine deployment that knows it).
   */
  PERSONA_KAFKA_REPLICATION: z.coerce.number().int().min(1).max(16).default(1),
  /**
   * `min.insync.replicas` of the topics Persona creates: a write the producer (acks from every
   * in-sync replica) is told succeeded is on at least this many brokers. Default: 2 with a
   * replication of 3 or more (one broker may be down, none lost), else 1.
   */
  PERSONA_KAFKA_MIN_INSYNC_REPLICAS: z.coerce.number().int().min(1).max(16).optional(),
  KAFKA_ALLOW_UNREPLICATED: z.enum(['true', 'false']).default('false'),
  /** Events per page the publisher reads from the graph and sends in one produce request. */
  PERSONA_KAFKA_PUBLISH_PAGE: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** The agents' topics the api consumes, and where a message that can never be valid goes. */
  PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: kafkaTopic.default('synapse.payment-failures.v1'),
  PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: kafkaTopic.default('chimera.fraud-outcomes.v1'),
  PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: kafkaTopic.default('cerebrum.routing-outcomes.v1'),
  PERSONA_KAFKA_DEAD_LETTER_TOPIC: kafkaTopic.default('persona.dead-letters.v1'),
  /**
   * How long the agents' topics and the dead letters keep a message when Persona creates them
   * (local stacks, tests; an existing topic is left as it is): routing outcomes hold IPs, user
   * agents, fingerprints and street addresses, which no erasure reaches there. 7 days by default,
   * between an hour and 30 days.
   */
  PERSONA_KAFKA_AGENT_TOPICS_RETENTION_MS: z.coerce
    .number()
    .int()
    .min(3_600_000)
    .max(30 * 24 * 3_600_000)
    .default(7 * 24 * 3_600_000),
  /** The consumer group of the api's consumers (every api replica joins it). */
  PERSONA_KAFKA_CONSUMER_GROUP: z.string().min(1).max(200).default('persona-api'),
  /**
   * TLS to the brokers: `true` verifies them against the system's CAs, or KAFKA_TLS_CA's PEM file
   * when set; KAFKA_TLS_CERT and _KEY (PEM files, both or neither) authenticate Persona by its
   * certificate (mTLS). Required in production unless KAFKA_ALLOW_PLAINTEXT=true.
   */
  KAFKA_TLS: z.enum(['true', 'false']).default('false'),
  KAFKA_TLS_CA: z.string().min(1).optional(),
  KAFKA_TLS_CERT: z.string().min(1).optional(),
  KAFKA_TLS_KEY: z.string().min(1).optional(),
  /**
   * SASL authentication: PLAIN (over TLS only in production), SCRAM-SHA-256 or SCRAM-SHA-512, with
   * KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD. In production Persona authenticates to Kafka by
   * SASL or by a TLS client certificate.
   */
  KAFKA_SASL_MECHANISM: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  /** `true` lets production talk to Kafka without TLS and without authenticating (a mesh that does both). */
  KAFKA_ALLOW_PLAINTEXT: z.enum(['true', 'false']).default('false'),
};

export type KafkaEnv = EnvOf<typeof kafkaShape>;

/** KAFKA_BROKERS split; empty when Kafka is off. */
export function kafkaBrokerList(brokers: KafkaEnv['KAFKA_BROKERS']): string[] {
  return brokers
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
}

/**
 * What is wrong with Kafka's TLS and SASL settings: each half of a pair without the other, SASL
 * without its credentials, and, in production with Kafka on, a connection that is not encrypted
 * or not authenticated (unless KAFKA_ALLOW_PLAINTEXT=true).
 */
export function kafkaSecurityIssues(env: KafkaEnv & Pick<CoreEnv, 'NODE_ENV'>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const tls = env.KAFKA_TLS === 'true';
  if (Boolean(env.KAFKA_TLS_CERT) !== Boolean(env.KAFKA_TLS_KEY))
    issues.push({
      path: [env.KAFKA_TLS_CERT ? 'KAFKA_TLS_KEY' : 'KAFKA_TLS_CERT'],
      message: 'KAFKA_TLS_CERT and KAFKA_TLS_KEY go together',
    });
  for (const name of ['KAFKA_TLS_CA', 'KAFKA_TLS_CERT', 'KAFKA_TLS_KEY'] as const)
    if (env[name] && !tls) issues.push({ path: [name], message: 'needs KAFKA_TLS=true' });
  if (env.KAFKA_SASL_MECHANISM)
    for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const)
      if (!env[name])
        issues.push({ path: [name], message: `required with KAFKA_SASL_MECHANISM=${env.KAFKA_SASL_MECHANISM}` });
  if (!env.KAFKA_SASL_MECHANISM && (env.KAFKA_SASL_USERNAME || env.KAFKA_SASL_PASSWORD))
    issues.push({
      path: ['KAFKA_SASL_MECHANISM'],
      message: 'required with KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD',
    });
  const kafkaOn = env.KAFKA_BROKERS.trim() !== '';
  const minInsync = env.PERSONA_KAFKA_MIN_INSYNC_REPLICAS;
  if (minInsync !== undefined && minInsync > env.PERSONA_KAFKA_REPLICATION)
    issues.push({
      path: ['PERSONA_KAFKA_MIN_INSYNC_REPLICAS'],
      message: `at most PERSONA_KAFKA_REPLICATION (${env.PERSONA_KAFKA_REPLICATION}): no write could succeed`,
    });
  if (
    env.NODE_ENV === 'production' &&
    kafkaOn &&
    env.PERSONA_KAFKA_REPLICATION < 3 &&
    env.KAFKA_ALLOW_UNREPLICATED !== 'true'
  )
    issues.push({
      path: ['PERSONA_KAFKA_REPLICATION'],
      message:
        'at least 3 in production with KAFKA_BROKERS: the events topic is the log of record, and a broker lost ' +
        'must lose nothing acknowledged; KAFKA_ALLOW_UNREPLICATED=true for a single-machine deployment',
    });
  if (env.NODE_ENV === 'production' && kafkaOn && env.KAFKA_ALLOW_PLAINTEXT !== 'true') {
    if (!tls)
      issues.push({
        path: ['KAFKA_TLS'],
        message:
          'required in production with KAFKA_BROKERS: set KAFKA_TLS=true (and KAFKA_TLS_CA for a private CA), ' +
          'or KAFKA_ALLOW_PLAINTEXT=true where a mesh encrypts and authenticates',
      });
    if (!env.KAFKA_SASL_MECHANISM && !env.KAFKA_TLS_CERT)
      issues.push({
        path: ['KAFKA_SASL_MECHANISM'],
        message:
          'required in production with KAFKA_BROKERS: Persona authenticates by SASL (KAFKA_SASL_MECHANISM, ' +
          '_USERNAME, _PASSWORD) or by a client certificate (KAFKA_TLS_CERT and KAFKA_TLS_KEY)',
      });
  }
  return issues;
}
