/**
 * The state of one running agents' consumer (api/kafkaConsumer.ts) and what both of its lanes
 * (payment failures and fraud outcomes one at a time, routing outcomes one writer per partition)
 * share: dead letters, tries until the service answered, commits, the loop that runs a lane again
 * with backoff, and the stream's pause and resume on what waits.
 */
import type { MessagesStream } from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { KAFKA_HEADERS, type KafkaProducer, type KafkaSettings } from '../clients/kafka';
import type { Settings } from '../config/env';
import { boundRefusalText } from '../graph/ingestOffsets';
import { unavailableDependency } from '../runtime/dependencies';
import type { Principal } from './auth';
import type { ApiDeps } from './deps';
import { refusalOf, type Msg } from './kafkaAgentMessages';
import { MAX_INTERACTIONS } from './requests';

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
  /**
   * First wait between two tries of a message, or of a lane after a failure it could not handle,
   * doubling up to `maxBackoffMs` (default 200 ms).
   */
  firstBackoffMs?: number;
  /**
   * How often the consumer heartbeats its group (default 3 s; at most a third of the 30 s session
   * timeout). A member hears of a rebalance only when a heartbeat is refused, so this is how long
   * a member's join or leave may wait on the others.
   */
  heartbeatIntervalMs?: number;
}

/** The agents' topics, by what they carry. */
export type AgentTopics = Record<'failures' | 'fraud' | 'routing', string>;

/** A partition's writer of routing outcomes. */
export interface PartitionWriter {
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

/** One running consumer: what it reads, what waits to be handled, and whether it is closing. */
export interface AgentConsumerState {
  options: AgentConsumerOptions;
  topics: AgentTopics;
  /** The principal routing outcomes are recorded as. */
  routingPrincipal: Principal;
  /** The routing topic's id: its partitions' offsets in the graph are keyed by it (graph/ingestOffsets.ts). */
  routingTopicId: string;
  stream: MessagesStream<string, string, string, string>;
  /** Set by close(): retries stop, and the lanes take nothing more. */
  closing: boolean;
  /** Messages handled (accepted or dead-lettered) since start. */
  handled: number;
  /** Payment failures and fraud outcomes, one at a time in arrival order. */
  queue: Msg[];
  /** Routing outcomes: one writer per partition. */
  writers: Map<number, PartitionWriter>;
}

/**
 * Sends a message that can never be accepted to the dead-letter topic: its key, value and headers,
 * with the reason and its origin (topic/partition/offset) in headers; counted and logged.
 */
export async function deadLetter(state: AgentConsumerState, m: Msg, why: string, what?: string): Promise<void> {
  const { settings: s, deps, producer, logger } = state.options;
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
}

/**
 * Tries `work` until it is accepted, refused for good, or the consumer closes (then throws).
 * With `giveUpAfter`, a failure that is not a dependency away (Neo4j or Temporal unreachable,
 * busy, timed out) is thrown after that many tries in a row: a poison message, not an outage.
 */
export async function untilAnswered<T>(
  state: AgentConsumerState,
  what: string,
  work: () => Promise<T>,
  giveUpAfter?: number,
): Promise<T> {
  const { logger } = state.options;
  let delay = state.options.firstBackoffMs ?? 200;
  for (let failures = 1; ; failures++) {
    try {
      return await work();
    } catch (err) {
      if (refusalOf(err)) throw err;
      if (state.closing) throw err;
      if (giveUpAfter !== undefined && failures >= giveUpAfter && !unavailableDependency(err)) throw err;
      logger.warn({ err, what, retryInMs: delay }, 'a consumed message could not be handled for now; retrying');
      await sleep(delay);
      delay = Math.min(delay * 2, state.options.maxBackoffMs ?? 30_000);
    }
  }
}

/** Commits the last message of each partition in `done`. */
export async function commit(state: AgentConsumerState, done: Msg[]): Promise<void> {
  await state.options.beforeCommit?.(done);
  const last = new Map<string, Msg>();
  for (const m of done) last.set(`${m.topic}/${m.partition}`, m);
  for (const m of last.values()) await m.commit();
  state.handled += done.length;
}

/** A lane's loop: `kick` starts it unless it runs; `running` is the run in flight, if any. */
export interface Kicker {
  kick: () => void;
  running: () => Promise<void> | null;
}

/**
 * Runs `work` until its queue is empty: after a failure it could not handle (the dead-letter
 * topic unwritable, say), the next try waits, doubling up to the backoff's ceiling — never a
 * tight loop while Kafka is away.
 */
export function kicker(
  state: AgentConsumerState,
  what: string,
  work: () => Promise<void>,
  pending: () => number,
): Kicker {
  const { logger } = state.options;
  let running: Promise<void> | null = null;
  let failures = 0;
  const kick = (): void => {
    running ??= work()
      .then(() => {
        failures = 0;
      })
      .catch(async (err: unknown) => {
        if (state.closing) return;
        failures++;
        const first = state.options.firstBackoffMs ?? 200;
        const delay = Math.min(first * 2 ** (failures - 1), state.options.maxBackoffMs ?? 30_000);
        logger.error({ err, what, retryInMs: delay }, 'the Kafka consumer could not handle a message; trying it again');
        await sleep(delay);
      })
      .finally(() => {
        running = null;
        if (pending() > 0 && !state.closing) kick();
      });
  };
  return { kick, running: () => running };
}

/**
 * The lanes messages wait in: one per partition's writer, and the other topics'. Two batches' worth
 * may wait per writer (a partition's, and the other topics'), then the stream pauses: one budget for
 * all of them would starve the partitions' writers of full batches.
 */
export function lanes(state: AgentConsumerState): number {
  return state.writers.size + 1;
}

/** The messages waiting in every lane. */
export function queued(state: AgentConsumerState): number {
  return [...state.writers.values()].reduce((n, w) => n + w.queue.length, state.queue.length);
}

/** Resumes the paused stream once less than a batch's worth waits per lane. */
export function resumeIfRoom(state: AgentConsumerState): void {
  if (queued(state) < MAX_INTERACTIONS * lanes(state) && state.stream.isPaused()) state.stream.resume();
}
