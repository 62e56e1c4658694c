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
  type MessagesStream,
} from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { closeConsumer, kafkaConnection } from '../clients/kafka';
import { topicPrincipal, type Msg } from './kafkaAgentMessages';
import { drainReports } from './kafkaAgentReports';
import { topicIdOf, writerOf } from './kafkaAgentRouting';
import {
  kicker,
  lanes,
  queued,
  type AgentConsumerOptions,
  type AgentConsumerState,
  type AgentTopics,
  type Kicker,
} from './kafkaAgentState';
import { MAX_INTERACTIONS } from './requests';

export type { AgentConsumerOptions } from './kafkaAgentState';

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

/** The consumer's own failures: the first one heard, and what hearing one does (replaced once consuming). */
interface ConsumerErrors {
  failed?: Error;
  onError: (err: Error) => void;
}

/**
 * The consumer itself reports a group operation that failed for good (a rejoin while the group's
 * coordinator is gone): unheard, that 'error' would end the api. It ends this consumer instead, as
 * a failed stream does, and the supervisor starts another. Until the stream is listened to, the
 * first failure is kept.
 */
function listenForConsumerErrors(consumer: Consumer<string, string, string, string>, logger: Logger): ConsumerErrors {
  const errors: ConsumerErrors = { onError: (err: Error): void => void (errors.failed ??= err) };
  consumer.on('error', (err: unknown) => {
    logger.error({ err }, 'the Kafka consumer failed');
    errors.onError(err instanceof Error ? err : new Error(String(err)));
  });
  return errors;
}

/** How long the group waits for a member's heartbeat before it hands its partitions to the others. */
const SESSION_TIMEOUT_MS = 30_000;

/** A consumer of the agents' topics, consuming, with what it was built from. */
interface OpenedConsumer {
  consumer: Consumer<string, string, string, string>;
  errors: ConsumerErrors;
  routingTopicId: string;
  stream: MessagesStream<string, string, string, string>;
}

/**
 * Builds the group's consumer and starts it consuming the topics from their committed offsets
 * (offsets committed by hand, once handled); a failure on the way closes it and throws.
 */
async function openAgentConsumer(
  options: AgentConsumerOptions,
  topics: AgentTopics,
  logger: Logger,
): Promise<OpenedConsumer> {
  const s = options.settings;
  const consumer = new Consumer({
    clientId: 'persona-api',
    groupId: s.PERSONA_KAFKA_CONSUMER_GROUP,
    ...kafkaConnection(s),
    deserializers: stringDeserializers,
    sessionTimeout: SESSION_TIMEOUT_MS,
    heartbeatInterval: Math.min(options.heartbeatIntervalMs ?? 3_000, SESSION_TIMEOUT_MS / 3),
  });
  const errors = listenForConsumerErrors(consumer, logger);
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
  return { consumer, errors, routingTopicId, stream };
}

/**
 * Queues a message of the stream in its lane (a routing outcome in its partition's writer, dropped
 * if already queued; anything else in the one-at-a-time queue) and starts that lane; pauses the
 * stream when two batches' worth wait per lane.
 */
function queueMessage(state: AgentConsumerState, others: Kicker, m: Msg): void {
  if (m.topic === state.topics.routing) {
    const w = writerOf(state, m.partition);
    if (m.offset <= w.queuedThrough) return;
    w.queuedThrough = m.offset;
    w.queue.push(m);
    w.kick();
  } else {
    state.queue.push(m);
    others.kick();
  }
  if (queued(state) >= 2 * MAX_INTERACTIONS * lanes(state)) state.stream.pause();
}

/**
 * Resolves, with the reason, when the stream fails or closes, or the consumer itself fails (one
 * heard before now included), unless the consumer is closing.
 */
function endedWithoutClose(state: AgentConsumerState, errors: ConsumerErrors): Promise<Error> {
  const { logger } = state.options;
  let end: (err: Error) => void = () => undefined;
  const ended = new Promise<Error>((resolve) => (end = resolve));
  state.stream.on('error', (err: unknown) => {
    logger.error({ err }, 'the Kafka consumer stream failed');
    if (!state.closing) end(err instanceof Error ? err : new Error(String(err)));
  });
  state.stream.on('close', () => {
    if (!state.closing) end(new Error('the Kafka consumer stream closed'));
  });
  errors.onError = (err) => {
    if (!state.closing) end(err);
  };
  if (errors.failed) errors.onError(errors.failed);
  return ended;
}

/**
 * Starts a consumer of the agents' topics in the api's consumer group: payment failures and fraud
 * outcomes one at a time, routing outcomes one writer per partition, each offset committed once
 * its service answered.
 */
export async function startAgentConsumer(options: AgentConsumerOptions): Promise<AgentConsumer> {
  const { settings: s, logger } = options;
  const topics: AgentTopics = {
    failures: s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC,
    fraud: s.PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC,
    routing: s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC,
  };
  const routingPrincipal = topicPrincipal(topics.routing, 'interactions:write');
  const { consumer, errors, routingTopicId, stream } = await openAgentConsumer(options, topics, logger);
  const state: AgentConsumerState = {
    options,
    topics,
    routingPrincipal,
    routingTopicId,
    stream,
    closing: false,
    handled: 0,
    queue: [],
    writers: new Map(),
  };
  const others = kicker(
    state,
    'payment failures and fraud outcomes',
    () => drainReports(state),
    () => state.queue.length,
  );
  stream.on('data', (m: Msg) => queueMessage(state, others, m));
  const ended = endedWithoutClose(state, errors);
  logger.info({ topics: Object.values(topics), group: s.PERSONA_KAFKA_CONSUMER_GROUP }, 'consuming the agents topics');

  return {
    get handled() {
      return state.handled;
    },
    ended,
    async close(opts = {}) {
      state.closing = true;
      if (!opts.abandon) await Promise.all([others.running(), ...[...state.writers.values()].map((w) => w.running())]);
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
