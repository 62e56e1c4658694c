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
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionOptions as TLSConnectionOptions } from 'node:tls';
import {
  Admin,
  compatibilityPartitioner,
  ConnectionPool,
  murmur2,
  NetworkError,
  ProduceAcks,
  Producer,
  stringSerializers,
  type Consumer,
  type ProduceResult,
  type SASLOptions,
  type SendOptions,
} from '@platformatic/kafka';
import type { Logger } from 'pino';
import { ConfigError, type Settings } from '../config/env';

/**
 * A broker the cluster names but this client's metadata lacks (a group coordinator on a node that
 * died and came back, before the metadata knows it again) is answered as an unreachable broker,
 * through the callback, so the client retries or fails its operation. Without this the pool throws
 * a TypeError inside a network callback, which no caller can catch: the process dies (the fleet test
 * lost an api so). @platformatic/kafka 2.x does the same itself, but needs Node 22.
 */
function answerMissingBrokers(): void {
  type Get = (this: ConnectionPool, broker: unknown, callback?: (error: Error | null) => void) => unknown;
  const proto = ConnectionPool.prototype as unknown as { get: Get & { persona?: true } };
  if (proto.get.persona) return;
  const original = proto.get;
  const guarded: Get & { persona?: true } = function (this: ConnectionPool, broker, callback) {
    const b = broker as { host?: unknown; port?: unknown } | null | undefined;
    if (b == null || b.host == null || b.port == null) {
      const error = new NetworkError('Cannot get a connection: the broker is not in the current cluster metadata.');
      if (!callback) return Promise.reject(error);
      callback(error);
      return undefined;
    }
    return original.call(this, broker, callback);
  };
  guarded.persona = true;
  proto.get = guarded;
}
answerMissingBrokers();

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
  > &
  Partial<
    Pick<
      Settings,
      | 'PERSONA_KAFKA_INVALIDATIONS_TOPIC'
      | 'PERSONA_KAFKA_INVALIDATIONS_RETENTION_MS'
      | 'PERSONA_KAFKA_AGENT_TOPICS_RETENTION_MS'
    >
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

type Sent = SendOptions<string, string, string, string>;

/**
 * The partition a key goes to among `partitions`, as Kafka's Java clients choose it (murmur2 of the
 * key's UTF-8 bytes, made positive, modulo the count): the partition a customer's routing outcomes
 * land on when Cerebrum keys them by customer id, and the write lane of its REST batches
 * (api/services/interactions.ts), so both take a customer to the same writer's number.
 */
export function partitionOf(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

/** The producer as Persona uses it: sends, one at a time, and a close. */
export interface KafkaProducer {
  send(options: Sent): Promise<ProduceResult>;
  close(): Promise<void>;
}

/**
 * The idempotent producer (acks from every in-sync replica; @platformatic/kafka takes acks from
 * each send, and an idempotent one always asks for all): a produce request it retries itself never
 * writes a message twice, and a partition keeps the order the messages were sent in. Two things
 * keep its sequence numbers right, which the client does not do for us:
 *   - sends go one at a time, in the order they were asked for: the client numbers a request's
 *     messages when it builds it and moves its count on success only, so two sends in flight to one
 *     partition would carry the same numbers (the second taken as a duplicate of the first, and every
 *     send after refused as out of order, for good);
 *   - after a send that failed, the next one goes from a new producer (a new producer id, numbers
 *     from 0): a send whose answer was lost may have been written, and what is sent again (a page
 *     read again from the checkpoint, maybe longer now) would no longer fit the numbers the broker
 *     expects — refused as out of order, for good, until the process restarted. At least once: what
 *     was written and is sent again is in the log twice; consumers drop it by `event-id`.
 */
export function createKafkaProducer(s: KafkaConnectionSettings, clientId: string): KafkaProducer {
  const open = (): Producer<string, string, string, string> =>
    new Producer({
      clientId,
      ...kafkaConnection(s),
      serializers: stringSerializers,
      idempotent: true,
      acks: ProduceAcks.ALL,
      // A key's partition as the Java clients choose it (partitionOf), not the client's own default.
      partitioner: compatibilityPartitioner,
      retries: 5,
      timeout: 10_000,
    });
  let producer = open();
  let turn: Promise<unknown> = Promise.resolve();
  let closed = false;
  const send = async (options: Sent): Promise<ProduceResult> => {
    if (closed) throw new Error('the Kafka producer is closed');
    try {
      return await producer.send(options);
    } catch (err) {
      const failed = producer;
      if (!closed) producer = open();
      // Not awaited: a close stuck on a broker that is gone must not hold up the next send.
      void failed.close().catch(() => undefined);
      throw err;
    }
  };
  return {
    send(options) {
      const mine = turn.catch(() => undefined).then(() => send(options));
      turn = mine;
      return mine;
    },
    /** Waits for the send under way; sends still queued behind it are refused (the process is stopping). */
    async close() {
      closed = true;
      await turn.catch(() => undefined);
      await producer.close();
    },
  };
}

export interface TopicSpec {
  name: string;
  partitions: number;
  retentionMs?: number;
  /**
   * How long a segment stays open: Kafka deletes closed segments only, so a topic that must keep
   * little for long (the invalidations) rolls them well within its retention.
   */
  segmentMs?: number;
}

/** The topics Persona needs: its own, and the agents' (made here only when missing: local stacks and tests). */
export function personaTopics(s: KafkaSettings): TopicSpec[] {
  return [
    {
      name: s.PERSONA_KAFKA_EVENTS_TOPIC,
      partitions: s.PERSONA_KAFKA_EVENTS_PARTITIONS,
      retentionMs: s.PERSONA_KAFKA_EVENTS_RETENTION_MS,
    },
    // One partition: the replicas read it whole, in the order it was numbered (api/invalidations.ts).
    ...(s.PERSONA_KAFKA_INVALIDATIONS_TOPIC
      ? [
          {
            name: s.PERSONA_KAFKA_INVALIDATIONS_TOPIC,
            partitions: 1,
            retentionMs: s.PERSONA_KAFKA_INVALIDATIONS_RETENTION_MS ?? 600_000,
            segmentMs: Math.max(60_000, Math.floor((s.PERSONA_KAFKA_INVALIDATIONS_RETENTION_MS ?? 600_000) / 5)),
          },
        ]
      : []),
    // What agents wrote, personal data included, kept a bounded time: erasure does not reach these topics.
    ...[
      { name: s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, partitions: 1 },
      { name: s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC, partitions: 6 },
      { name: s.PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC, partitions: 6 },
      { name: s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, partitions: 6 },
    ].map((t) => ({ ...t, retentionMs: s.PERSONA_KAFKA_AGENT_TOPICS_RETENTION_MS ?? 7 * 24 * 3_600_000 })),
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
    ...(t.segmentMs === undefined ? [] : [{ name: 'segment.ms', value: String(t.segmentMs) }]),
  ];
}

/** Whether a client error is, or gathers, Kafka's error `apiId` (the client wraps a broker's answer). */
export function isKafkaError(err: unknown, apiId: string, seen = new Set<unknown>()): boolean {
  if (!err || typeof err !== 'object' || seen.has(err)) return false;
  seen.add(err);
  const e = err as { apiId?: string; cause?: unknown; errors?: unknown[] };
  return (
    e.apiId === apiId ||
    isKafkaError(e.cause, apiId, seen) ||
    (e.errors ?? []).some((x) => isKafkaError(x, apiId, seen))
  );
}

/**
 * Creates the topics that do not exist yet; one that exists is left as it is. Returns those it
 * made. Each is created outright and "already exists" taken as done: listing the topics first
 * would read the whole cluster's metadata, which the client refuses while any partition of any
 * topic has no leader (a broker away), and Persona's own topics would wait on someone else's.
 */
export async function ensureTopics(s: KafkaSettings, topics: TopicSpec[] = personaTopics(s)): Promise<string[]> {
  const admin = new Admin({ clientId: 'persona-topics', ...kafkaConnection(s), timeout: 10_000 });
  try {
    const made: string[] = [];
    for (const t of topics) {
      try {
        await admin.createTopics({
          topics: [t.name],
          partitions: t.partitions,
          replicas: s.PERSONA_KAFKA_REPLICATION,
          configs: topicConfigs(s, t),
        });
        made.push(t.name);
      } catch (err) {
        // It exists (made before, or by another process just now): that is what we wanted.
        if (isKafkaError(err, 'TOPIC_ALREADY_EXISTS')) continue;
        // Where services may not create topics, Kafka refuses the create (not authorized) before it
        // looks whether the topic exists: then it is enough that it does (asked by its name alone).
        const exists = await admin.metadata({ topics: [t.name] }).then(
          (m) => m.topics.has(t.name),
          () => false,
        );
        if (!exists) throw err;
      }
    }
    return made;
  } finally {
    await admin.close();
  }
}

/**
 * `ensure` until it succeeds, again after each failure with a doubling backoff (each failure
 * reported), or until `signal` aborts (null then). The worker starts and runs its workflows while
 * Kafka is away; the publisher's produce waits for its topic meanwhile (an activity retried).
 */
export async function ensureTopicsUntilDone(
  ensure: () => Promise<string[]>,
  options: {
    signal: AbortSignal;
    onError: (err: unknown, attempt: number, retryInMs: number) => void;
    minBackoffMs?: number;
    maxBackoffMs?: number;
  },
): Promise<string[] | null> {
  const max = options.maxBackoffMs ?? 60_000;
  for (let attempt = 1, delay = options.minBackoffMs ?? 1_000; !options.signal.aborted; attempt++) {
    try {
      return await ensure();
    } catch (err) {
      if (options.signal.aborted) break;
      options.onError(err, attempt, delay);
      try {
        await sleep(delay, undefined, { signal: options.signal });
      } catch {
        break;
      }
      delay = Math.min(max, delay * 2);
    }
  }
  return null;
}

/**
 * Closes a consumer. Its close leaves the group first, and when that fails (the coordinator's node
 * gone, the case that ends a consumer) it keeps its connections open and says so: tried again in
 * the background, a few times, rather than leaving a consumer behind for every restart.
 */
export async function closeConsumer(consumer: Consumer<string, string, string, string>, logger: Logger): Promise<void> {
  // The overload with a boolean is typed as callback style; without a callback it returns the promise.
  const close = () => consumer.close(true) as unknown as Promise<void>;
  try {
    await close();
  } catch (first) {
    void (async () => {
      for (let attempt = 2; attempt <= 6; attempt++) {
        await sleep(attempt * 1000);
        if (
          await close().then(
            () => true,
            () => false,
          )
        )
          return;
      }
      logger.warn({ err: first }, 'a Kafka consumer could not be closed; its connections stay open');
    })();
  }
}
