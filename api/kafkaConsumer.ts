/**
 * The agents' topics, consumed into the same services as the api's routes (docs/events.md#kafka):
 *   - payment failures (Synapse) → `reportPaymentFailure`: the recovery's signal-with-start; on
 *     the same topic, a message with `kind: "payment_no_longer_owed"` → `paymentNoLongerOwed`:
 *     the owner's stop, committed once the recovery has taken it (what it did is on the events
 *     topic, as `PaymentRecovered` for a charge it made, and at the recovery's status);
 *   - fraud outcomes (Chimera)   → `reportFraudOutcome`: starts its workflow;
 *   - routing outcomes (Cerebrum) → `recordPartition`: one writer per partition, each batch written
 *     in one transaction with the partition's offset (graph/ingestOffsets.ts), so a replay is skipped.
 *
 * A message's value is the JSON body the route takes, checked by the same schema. One that can
 * never be accepted (not JSON, a field wrong, a refusal of the service: an unknown customer, a
 * method not the customer's) goes to the dead-letter topic with the reason and its origin in
 * headers, and the partition goes on. Anything else (Neo4j or Temporal away) is retried with
 * backoff, and nothing after it on that partition goes first. Offsets are committed only after
 * the service answered (the workflow start or signal acknowledged by Temporal, the batch
 * committed in the graph): a crash replays from the last commit, and the workflow ids and
 * interaction ids make a replay change nothing. `x-request-id` and `traceparent` headers carry
 * the request id and the trace into the workflow as they do over HTTP.
 */
import {
  Consumer,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  stringDeserializers,
  type Message,
  type MessagesStream,
} from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  closeConsumer,
  KAFKA_HEADERS,
  kafkaConnection,
  type KafkaProducer,
  type KafkaSettings,
} from '../clients/kafka';
import type { Settings } from '../config/env';
import { DomainError } from '../graph/errors';
import type { FraudOutcomeReport } from '../graph/fraud';
import { requestIdFrom } from '../runtime/requestContext';
import { inSpan } from '../runtime/tracing';
import { UnreadablePayloadError } from '../temporal/payloadCodec';
import { AuthError, type Principal } from './auth';
import type { ApiDeps } from './deps';
import {
  fraudOutcomeSchema,
  issueField,
  MAX_INTERACTIONS,
  NO_LONGER_OWED_KIND,
  paymentFailureSchema,
  paymentNoLongerOwedMessageSchema,
} from './requests';
import { reportFraudOutcome } from './services/fraud';
import { recordPartition, type PartitionMessage } from './services/interactions';
import { boundRefusalText, type PartitionBatchResult } from '../graph/ingestOffsets';
import { unavailableDependency } from '../runtime/dependencies';
import { paymentNoLongerOwed, reportPaymentFailure } from './services/recovery';

type Msg = Message<string, string, string, string>;

/** A message that can never be accepted: it goes to the dead-letter topic with this reason. */
class Refused extends Error {
  constructor(
    readonly reason: string,
    readonly field?: string,
  ) {
    super(reason);
  }
}

/** Refusals of the service itself (a 4xx over HTTP) are for good; everything else is "not now". */
function refusalOf(err: unknown): Refused | null {
  if (err instanceof Refused) return err;
  if (err instanceof DomainError || err instanceof AuthError || err instanceof UnreadablePayloadError)
    return new Refused(err.message, 'field' in err ? String(err.field) : undefined);
  return null;
}

/**
 * The kind of a message on the payment-failures topic: its `kind` field, absent for a failure
 * (every failure sent before kinds existed). Any other kind can never be accepted.
 */
function failuresTopicKind(msg: Msg): 'failure' | 'no_longer_owed' {
  let json: unknown;
  try {
    json = JSON.parse(msg.value);
  } catch {
    return 'failure'; // refused as not JSON by the failure's parse
  }
  if (typeof json !== 'object' || json === null || !('kind' in json)) return 'failure';
  if (json.kind === NO_LONGER_OWED_KIND) return 'no_longer_owed';
  throw new Refused(`kind: must be ${NO_LONGER_OWED_KIND}, or absent for a payment failure`, 'kind');
}

function parseBody<T>(msg: Msg, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(msg.value);
  } catch {
    throw new Refused('the message is not JSON', 'value');
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue ? issueField(issue, 'value') : 'value';
  const problem = issue?.code === 'unrecognized_keys' ? 'unknown field' : (issue?.message ?? 'invalid');
  throw new Refused(`${field}: ${problem}`, field);
}

export interface AgentConsumerOptions {
  settings: KafkaSettings & Pick<Settings, 'PERSONA_KAFKA_CONSUMER_GROUP'>;
  deps: ApiDeps;
  /** Writes the dead letters (the api's producer). */
  producer: KafkaProducer;
  logger: Logger;
  /** Called after a message was handled and before its offset is committed (tests stop a consumer here). */
  beforeCommit?: (messages: Msg[]) => Promise<void>;
  /** Longest wait between two tries of a message whose service is away (default 30 s). */
  maxBackoffMs?: number;
}

export interface AgentConsumer {
  /**
   * Stops reading. What is being handled finishes first, unless `abandon` (a crash, as tests
   * make one): then its offset is never committed and the group hands it out again.
   */
  close(options?: { abandon?: boolean }): Promise<void>;
  /** Messages handled (accepted or dead-lettered) since start. */
  readonly handled: number;
  /**
   * Resolves, with the reason, when the stream ended without close(): Kafka was away longer than
   * the client's retries (about 12 s), and this consumer reads nothing more. superviseAgentConsumer
   * starts another.
   */
  readonly ended: Promise<Error>;
}

/** The principal a topic's messages act as: the scope the route demands of its caller. */
function topicPrincipal(topic: string, scope: string): Principal {
  return { subject: `kafka:${topic}`, scopes: new Set([scope]) };
}

/** A partition's writer of routing outcomes. */
interface PartitionWriter {
  partition: number;
  queue: Msg[];
  /** The last offset this writer committed to Kafka (null: none yet). */
  committedThrough: bigint | null;
  /** The last offset queued: a group's rejoin hands out again what is queued or written, dropped here. */
  queuedThrough: bigint;
  /** The commit in flight: the next one waits for it, so commits go in order. */
  committing: Promise<void>;
  kick: () => void;
  running: () => Promise<void> | null;
}

/** A topic's id as Kafka gives it (a UUID), or its name where the broker gives none (warned). */
async function topicIdOf(
  consumer: Consumer<string, string, string, string>,
  topic: string,
  logger: Logger,
): Promise<string> {
  const metadata = await consumer.metadata({ topics: [topic] });
  const id = metadata.topics.get(topic)?.id;
  if (id && !/^[0-]+$/.test(id)) return id;
  logger.warn(
    { topic },
    "the broker gives no topic id: partitions' offsets in the graph are keyed by the topic's name, so a topic " +
      'made again under it must have its IngestOffset nodes deleted first',
  );
  return topic;
}

/** Tries of a batch (then of each message alone) failing for another reason than an outage. */
const POISON_TRIES = 5;

export async function startAgentConsumer(options: AgentConsumerOptions): Promise<AgentConsumer> {
  const { settings: s, deps, producer, logger } = options;
  const topics = {
    failures: s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC,
    fraud: s.PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC,
    routing: s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC,
  };
  const routingPrincipal = topicPrincipal(topics.routing, 'interactions:write');
  const consumer = new Consumer({
    clientId: 'persona-api',
    groupId: s.PERSONA_KAFKA_CONSUMER_GROUP,
    ...kafkaConnection(s),
    deserializers: stringDeserializers,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
  });
  // The consumer itself reports a group operation that failed for good (a rejoin while the group's
  // coordinator is gone): unheard, that 'error' would end the api. It ends this consumer instead, as
  // a failed stream does, and the supervisor starts another.
  let consumerFailed: Error | undefined;
  let onConsumerError = (err: Error): void => void (consumerFailed ??= err);
  consumer.on('error', (err: unknown) => {
    logger.error({ err }, 'the Kafka consumer failed');
    onConsumerError(err instanceof Error ? err : new Error(String(err)));
  });
  // The routing topic's id: its partitions' offsets in the graph are keyed by it (graph/ingestOffsets.ts).
  // Asked before consuming: a failure here leaves no member in the group holding partitions unread.
  let routingTopicId: string;
  try {
    routingTopicId = await topicIdOf(consumer, topics.routing, logger);
  } catch (err) {
    await closeConsumer(consumer, logger);
    throw err;
  }
  let stream: MessagesStream<string, string, string, string>;
  try {
    stream = await consumer.consume({
      topics: Object.values(topics),
      autocommit: false,
      mode: MessagesStreamModes.COMMITTED,
      // A new group starts at the oldest message: a replay is a no-op, a message missed is not.
      fallbackMode: MessagesStreamFallbackModes.EARLIEST,
      maxWaitTime: 500,
    });
  } catch (err) {
    await closeConsumer(consumer, logger);
    throw err;
  }

  let closing = false;
  let handled = 0;
  /** Payment failures and fraud outcomes, one at a time in arrival order. */
  const queue: Msg[] = [];
  /** Routing outcomes: one writer per partition. */
  const writers = new Map<number, PartitionWriter>();

  const headerOf = (m: Msg, name: string): string | undefined => m.headers.get(name);

  /** Runs `work` as a request: its request id (the message's, else a new one) and its trace. */
  const asRequest = <T>(m: Msg, name: string, work: () => Promise<T>): Promise<T> => {
    const requestId = requestIdFrom(headerOf(m, KAFKA_HEADERS.requestId));
    const carrier = (): Record<string, string> => {
      const tp = headerOf(m, KAFKA_HEADERS.traceparent);
      return tp ? { traceparent: tp } : {};
    };
    return inSpan(deps.tracer, `kafka ${name}`, carrier, (span) => {
      span?.setAttributes({
        'persona.request_id': requestId,
        'messaging.system': 'kafka',
        'messaging.destination.name': m.topic,
        'messaging.kafka.offset': Number(m.offset),
      });
      return deps.requests.run({ requestId }, work);
    });
  };

  const deadLetter = async (m: Msg, why: string, what?: string): Promise<void> => {
    const reason = boundRefusalText(why);
    const field = what === undefined ? undefined : boundRefusalText(what);
    await producer.send({
      messages: [
        {
          topic: s.PERSONA_KAFKA_DEAD_LETTER_TOPIC,
          ...(m.key ? { key: m.key } : {}),
          value: m.value,
          headers: {
            ...Object.fromEntries(m.headers),
            [KAFKA_HEADERS.deadLetterReason]: reason,
            [KAFKA_HEADERS.deadLetterSource]: `${m.topic}/${m.partition}/${m.offset}`,
          },
        },
      ],
    });
    deps.metrics.kafkaDeadLetters.inc({ topic: m.topic });
    logger.warn(
      { topic: m.topic, partition: m.partition, offset: String(m.offset), reason, ...(field ? { field } : {}) },
      'a message that can never be accepted went to the dead-letter topic',
    );
  };

  /**
   * Tries `work` until it is accepted, refused for good, or the consumer closes (then throws).
   * With `giveUpAfter`, a failure that is not a dependency away (Neo4j or Temporal unreachable,
   * busy, timed out) is thrown after that many tries in a row: a poison message, not an outage.
   */
  const untilAnswered = async <T>(what: string, work: () => Promise<T>, giveUpAfter?: number): Promise<T> => {
    let delay = 200;
    for (let failures = 1; ; failures++) {
      try {
        return await work();
      } catch (err) {
        if (refusalOf(err)) throw err;
        if (closing) throw err;
        if (giveUpAfter !== undefined && failures >= giveUpAfter && !unavailableDependency(err)) throw err;
        logger.warn({ err, what, retryInMs: delay }, 'a consumed message could not be handled for now; retrying');
        await sleep(delay);
        delay = Math.min(delay * 2, options.maxBackoffMs ?? 30_000);
      }
    }
  };

  const handleOne = async (m: Msg): Promise<void> => {
    try {
      await untilAnswered(`${m.topic}/${m.partition}/${m.offset}`, async () => {
        if (m.topic === topics.failures && failuresTopicKind(m) === 'no_longer_owed') {
          const { payment_id: paymentId, reason, note } = parseBody(m, paymentNoLongerOwedMessageSchema);
          const word = { reason, ...(note === undefined ? {} : { note }) };
          // Taken is enough here (no one waits on a topic): the stop is in the recovery's history.
          await asRequest(m, 'payment-no-longer-owed', () => paymentNoLongerOwed(deps, paymentId, word, 0));
        } else if (m.topic === topics.failures) {
          const f = parseBody(m, paymentFailureSchema);
          await asRequest(m, 'payment-failure', () => reportPaymentFailure(deps, f));
        } else if (m.topic === topics.fraud) {
          const report = parseBody(m, fraudOutcomeSchema) as FraudOutcomeReport;
          await asRequest(m, 'fraud-outcome', () => reportFraudOutcome(deps, report, 'agent'));
        }
      });
    } catch (err) {
      const refusal = refusalOf(err);
      if (!refusal) throw err;
      await deadLetter(m, refusal.reason, refusal.field);
    }
  };

  /**
   * A batch of one partition's routing outcomes, written by that partition's writer in one
   * transaction with the partition's offset (api/services/interactions.ts recordPartition): what
   * was written before (a replay) is skipped; what can never be recorded goes to the dead-letter
   * topic. A batch that keeps failing for another reason than a dependency away (a refusal of the
   * whole write, a value Neo4j cannot take) is written message by message: one poison message is
   * dead-lettered, never holds its partition up nor takes the others' outcomes with it.
   */
  const handleRouting = async (w: PartitionWriter, batch: Msg[]): Promise<void> => {
    const first = batch[0] as Msg;
    const messages: PartitionMessage[] = batch.map((m) => {
      try {
        return { offset: m.offset, json: JSON.parse(m.value) as unknown };
      } catch {
        return { offset: m.offset, notJson: true };
      }
    });
    const source = { topicId: routingTopicId, topic: topics.routing, partition: w.partition };
    // The group hands a partition out from its committed offset: what is before its first message is committed.
    const committedThrough = (w.committedThrough ??= first.offset - 1n);
    const write = (part: PartitionMessage[]) =>
      asRequest(first, 'routing-outcomes', () =>
        recordPartition(deps, source, part, routingPrincipal, committedThrough),
      );
    const results: PartitionBatchResult[] = [];
    try {
      results.push(
        await untilAnswered(
          `${batch.length} routing outcomes of partition ${w.partition}`,
          () => write(messages),
          POISON_TRIES,
        ),
      );
    } catch (err) {
      if (closing) throw err;
      logger.warn(
        { err, partition: w.partition, messages: batch.length },
        'a batch of routing outcomes keeps failing: writing its messages one by one',
      );
      for (const [i, one] of messages.entries()) {
        const m = batch[i] as Msg;
        try {
          results.push(
            await untilAnswered(
              `routing outcome ${m.topic}/${m.partition}/${m.offset}`,
              () => write([one]),
              POISON_TRIES,
            ),
          );
        } catch (alone) {
          if (closing) throw alone;
          // Written as a refusal with the partition's offset, as any other: kept until Kafka committed
          // past it, so a crash before its dead letter is sent does not lose it.
          const refusal = refusalOf(alone);
          const reason =
            refusal?.reason ?? `could not be recorded: ${alone instanceof Error ? alone.message : String(alone)}`;
          const refused = { offset: m.offset, refused: { field: refusal?.field ?? 'value', reason } };
          results.push(
            await untilAnswered(`the refusal of ${m.topic}/${m.partition}/${m.offset}`, () => write([refused])),
          );
        }
      }
    }
    const skipped = results.reduce((n, r) => n + r.skipped.length, 0);
    const before = results[0]?.before ?? -1n;
    if (skipped > 0)
      logger[before - first.offset >= 2 * MAX_INTERACTIONS ? 'warn' : 'info'](
        { partition: w.partition, skipped, graphOffset: String(before), firstOffset: String(first.offset) },
        before - first.offset >= 2 * MAX_INTERACTIONS
          ? "the graph's offset of this partition is far past what Kafka handed out (its group reset, or a topic " +
              'made again under its name): the messages at or before it are skipped as written'
          : 'routing outcomes written before (a replay from the last committed offset) were skipped',
      );
    const byOffset = new Map(batch.map((m) => [String(m.offset), m]));
    for (const r of results.flatMap((x) => x.deadLetters)) {
      const m = byOffset.get(r.offset);
      if (m) await deadLetter(m, r.reason, r.field);
    }
  };

  /** Commits the last message of each partition in `done`. */
  const commit = async (done: Msg[]): Promise<void> => {
    await options.beforeCommit?.(done);
    const last = new Map<string, Msg>();
    for (const m of done) last.set(`${m.topic}/${m.partition}`, m);
    for (const m of last.values()) await m.commit();
    handled += done.length;
  };

  const drain = async (): Promise<void> => {
    while (queue.length > 0 && !closing) {
      const first = queue[0] as Msg;
      const run = [first];
      await handleOne(first);
      try {
        await commit(run);
      } catch (err) {
        // The partition moved to another member (a rebalance) or the broker is away: the offset
        // stays where it was, the next owner hands these messages out again, and handling them
        // again changes nothing. Never retried here: that would spin on a partition no longer ours.
        if (closing) throw err;
        logger.warn(
          { err, messages: run.length },
          'an offset could not be committed; the group hands the messages again',
        );
      }
      queue.shift();
      resumeIfRoom();
    }
  };

  /**
   * One partition's writer: its batches one after another (up to MAX_INTERACTIONS messages each).
   * A batch's Kafka commit runs while the next batch is written (commits go in order, each after the
   * one before): the offset in the graph, not Kafka's, is what keeps a batch from being written twice,
   * so a commit still in flight when the consumer dies only means a replay that is skipped.
   */
  const drainPartition = async (w: PartitionWriter): Promise<void> => {
    while (w.queue.length > 0 && !closing) {
      const run = w.queue.slice(0, MAX_INTERACTIONS);
      await handleRouting(w, run);
      await w.committing;
      w.committing = commitPartition(w, run);
      w.committing.catch(() => undefined); // awaited before the next commit; never an unhandled rejection meanwhile
      w.queue.splice(0, run.length);
      resumeIfRoom();
    }
    await w.committing;
  };
  const commitPartition = async (w: PartitionWriter, run: Msg[]): Promise<void> => {
    try {
      await commit(run);
      w.committedThrough = (run.at(-1) as Msg).offset;
    } catch (err) {
      // As in drain: the next owner (or this consumer, after the rebalance) hands them again, and
      // the partition's offset in the graph makes writing them again a skip.
      if (closing) throw err;
      logger.warn(
        { err, partition: w.partition, messages: run.length },
        'an offset could not be committed; the group hands the messages again',
      );
    }
  };

  /**
   * Runs `work` until its queue is empty: after a failure it could not handle (the dead-letter
   * topic unwritable, say), the next try waits, doubling up to the backoff's ceiling — never a
   * tight loop while Kafka is away.
   */
  const kicker = (what: string, work: () => Promise<void>, pending: () => number) => {
    let running: Promise<void> | null = null;
    let failures = 0;
    const kick = (): void => {
      running ??= work()
        .then(() => {
          failures = 0;
        })
        .catch(async (err: unknown) => {
          if (closing) return;
          failures++;
          const delay = Math.min(200 * 2 ** (failures - 1), options.maxBackoffMs ?? 30_000);
          logger.error(
            { err, what, retryInMs: delay },
            'the Kafka consumer could not handle a message; trying it again',
          );
          await sleep(delay);
        })
        .finally(() => {
          running = null;
          if (pending() > 0 && !closing) kick();
        });
    };
    return { kick, running: () => running };
  };
  const others = kicker('payment failures and fraud outcomes', drain, () => queue.length);
  const writerOf = (partition: number): PartitionWriter => {
    const known = writers.get(partition);
    if (known) return known;
    const w: PartitionWriter = {
      partition,
      queue: [],
      committedThrough: null,
      queuedThrough: -1n,
      committing: Promise.resolve(),
      kick: () => undefined,
      running: () => null,
    };
    const k = kicker(
      `routing outcomes of partition ${partition}`,
      () => drainPartition(w),
      () => w.queue.length,
    );
    w.kick = k.kick;
    w.running = k.running;
    writers.set(partition, w);
    return w;
  };
  // Two batches' worth may wait per writer (a partition's, and the other topics'), then the stream
  // pauses: one budget for all of them would starve the partitions' writers of full batches.
  const lanes = (): number => writers.size + 1;
  const queued = (): number => [...writers.values()].reduce((n, w) => n + w.queue.length, queue.length);
  const resumeIfRoom = (): void => {
    if (queued() < MAX_INTERACTIONS * lanes() && stream.isPaused()) stream.resume();
  };

  stream.on('data', (m: Msg) => {
    if (m.topic === topics.routing) {
      const w = writerOf(m.partition);
      if (m.offset <= w.queuedThrough) return;
      w.queuedThrough = m.offset;
      w.queue.push(m);
      w.kick();
    } else {
      queue.push(m);
      others.kick();
    }
    if (queued() >= 2 * MAX_INTERACTIONS * lanes()) stream.pause();
  });
  let end: (err: Error) => void = () => undefined;
  const ended = new Promise<Error>((resolve) => (end = resolve));
  stream.on('error', (err: unknown) => {
    logger.error({ err }, 'the Kafka consumer stream failed');
    if (!closing) end(err instanceof Error ? err : new Error(String(err)));
  });
  stream.on('close', () => {
    if (!closing) end(new Error('the Kafka consumer stream closed'));
  });
  onConsumerError = (err) => {
    if (!closing) end(err);
  };
  if (consumerFailed) onConsumerError(consumerFailed);
  logger.info({ topics: Object.values(topics), group: s.PERSONA_KAFKA_CONSUMER_GROUP }, 'consuming the agents topics');

  return {
    get handled() {
      return handled;
    },
    ended,
    async close(opts = {}) {
      closing = true;
      if (!opts.abandon) await Promise.all([others.running(), ...[...writers.values()].map((w) => w.running())]);
      try {
        await stream.close();
      } finally {
        await closeConsumer(consumer, logger);
      }
    },
  };
}

export interface SupervisedConsumer {
  /** Messages handled across every consumer it started. */
  readonly handled: number;
  /** Consumers started after the first (each after a stream ended). */
  readonly restarts: number;
  /** Streams that ended without being closed (each one logged, and replaced once Kafka answers). */
  readonly interruptions: number;
  /** True while a consumer reads the topics. */
  readonly consuming: boolean;
  close(): Promise<void>;
}

/**
 * Keeps the agents' consumer running for as long as the api runs: makes the topics that are
 * missing and starts it, with backoff (1 s doubling to 30 s) while Kafka does not answer, and
 * starts a new one whenever a stream ends (Kafka away past the client's retries) — never a
 * consumer that silently stopped reading. What the dead one was handling is replayed by the group.
 */
export function superviseAgentConsumer(
  options: AgentConsumerOptions & { ensureTopics: () => Promise<unknown>; minBackoffMs?: number },
): SupervisedConsumer {
  const { logger, settings: s } = options;
  const minBackoff = options.minBackoffMs ?? 1000;
  let stopped = false;
  let current: AgentConsumer | undefined;
  let handledBefore = 0;
  let starts = 0;
  let interruptions = 0;
  const wake = new AbortController();
  const loop = (async () => {
    for (let delay = minBackoff; !stopped;) {
      try {
        await options.ensureTopics();
        current = await startAgentConsumer(options);
        starts++;
        const startedAt = Date.now();
        if (stopped) break;
        const why = await Promise.race([
          current.ended,
          new Promise<null>((r) => wake.signal.addEventListener('abort', () => r(null))),
        ]);
        if (why === null || stopped) break;
        interruptions++;
        logger.error({ err: why }, 'the Kafka consumer stopped reading; starting another');
        const dead = current;
        current = undefined;
        handledBefore += dead.handled;
        await dead.close({ abandon: true }).catch(() => undefined);
        // One that lived long is started again at once; one that keeps ending soon (a coordinator
        // that comes and goes) backs off, or each start would rebalance every replica's group.
        if (Date.now() - startedAt >= 60_000) delay = minBackoff;
        else {
          await sleep(delay, undefined, { signal: wake.signal }).catch(() => undefined);
          delay = Math.min(delay * 2, options.maxBackoffMs ?? 30_000);
        }
      } catch (err) {
        if (stopped) break;
        logger.warn({ err, retryInMs: delay }, `Kafka at ${s.kafkaBrokers.join(',')} does not answer yet`);
        await sleep(delay, undefined, { signal: wake.signal }).catch(() => undefined);
        delay = Math.min(delay * 2, options.maxBackoffMs ?? 30_000);
      }
    }
  })();
  return {
    get handled() {
      return handledBefore + (current?.handled ?? 0);
    },
    get restarts() {
      return Math.max(0, starts - 1);
    },
    get interruptions() {
      return interruptions;
    },
    get consuming() {
      return current !== undefined;
    },
    async close() {
      stopped = true;
      wake.abort();
      await loop;
      await current?.close();
    },
  };
}
