/**
 * The agents' consumer's lane for routing outcomes (api/kafkaConsumer.ts): one writer per
 * partition, each batch written in one transaction with the partition's offset in the graph
 * (graph/ingestOffsets.ts, keyed by the topic's id), so a replay is skipped; a batch that keeps
 * failing is written message by message, and a poison message is dead-lettered.
 */
import type { Consumer } from '@platformatic/kafka';
import type { Logger } from 'pino';
import type { PartitionBatchResult } from '../graph/ingestOffsets';
import { asRequest, refusalOf, type Msg } from './kafkaAgentMessages';
import {
  commit,
  deadLetter,
  kicker,
  resumeIfRoom,
  untilAnswered,
  type AgentConsumerState,
  type PartitionWriter,
} from './kafkaAgentState';
import { MAX_INTERACTIONS } from './requests';
import { recordPartition, type PartitionMessage } from './services/interactions';

/** A topic's id as Kafka gives it (a UUID), or its name where the broker gives none (warned). */
export async function topicIdOf(
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

/** Writes some of a batch's messages in one transaction with the partition's offset. */
type RoutingWrite = (part: PartitionMessage[]) => Promise<PartitionBatchResult>;

/**
 * A batch of one partition's routing outcomes, written by that partition's writer in one
 * transaction with the partition's offset (api/services/interactions.ts recordPartition): what
 * was written before (a replay) is skipped; what can never be recorded goes to the dead-letter
 * topic. A batch that keeps failing for another reason than a dependency away (a refusal of the
 * whole write, a value Neo4j cannot take) is written message by message: one poison message is
 * dead-lettered, never holds its partition up nor takes the others' outcomes with it.
 */
async function handleRouting(state: AgentConsumerState, w: PartitionWriter, batch: Msg[]): Promise<void> {
  const { deps, logger } = state.options;
  const first = batch[0] as Msg;
  const messages: PartitionMessage[] = batch.map((m) => {
    try {
      return { offset: m.offset, json: JSON.parse(m.value) as unknown };
    } catch {
      return { offset: m.offset, notJson: true };
    }
  });
  const source = { topicId: state.routingTopicId, topic: state.topics.routing, partition: w.partition };
  // The group hands a partition out from its committed offset: what is before its first message is committed.
  const committedThrough = (w.committedThrough ??= first.offset - 1n);
  const write: RoutingWrite = (part) =>
    asRequest(deps, first, 'routing-outcomes', () =>
      recordPartition(deps, source, part, state.routingPrincipal, committedThrough),
    );
  const results: PartitionBatchResult[] = [];
  try {
    results.push(
      await untilAnswered(
        state,
        `${batch.length} routing outcomes of partition ${w.partition}`,
        () => write(messages),
        POISON_TRIES,
      ),
    );
  } catch (err) {
    if (state.closing) throw err;
    logger.warn(
      { err, partition: w.partition, messages: batch.length },
      'a batch of routing outcomes keeps failing: writing its messages one by one',
    );
    await writeOneByOne(state, batch, messages, write, results);
  }
  logSkipped(logger, w, first, results);
  const byOffset = new Map(batch.map((m) => [String(m.offset), m]));
  for (const r of results.flatMap((x) => x.deadLetters)) {
    const m = byOffset.get(r.offset);
    if (m) await deadLetter(state, m, r.reason, r.field);
  }
}

/**
 * Writes a batch that keeps failing one message at a time, each result pushed to `results`: a
 * message that keeps failing alone is written as a refusal, to be dead-lettered as any other.
 */
async function writeOneByOne(
  state: AgentConsumerState,
  batch: Msg[],
  messages: PartitionMessage[],
  write: RoutingWrite,
  results: PartitionBatchResult[],
): Promise<void> {
  for (const [i, one] of messages.entries()) {
    const m = batch[i] as Msg;
    try {
      results.push(
        await untilAnswered(
          state,
          `routing outcome ${m.topic}/${m.partition}/${m.offset}`,
          () => write([one]),
          POISON_TRIES,
        ),
      );
    } catch (alone) {
      if (state.closing) throw alone;
      // Written as a refusal with the partition's offset, as any other: kept until Kafka committed
      // past it, so a crash before its dead letter is sent does not lose it.
      const refusal = refusalOf(alone);
      const reason =
        refusal?.reason ?? `could not be recorded: ${alone instanceof Error ? alone.message : String(alone)}`;
      const refused = { offset: m.offset, refused: { field: refusal?.field ?? 'value', reason } };
      results.push(
        await untilAnswered(state, `the refusal of ${m.topic}/${m.partition}/${m.offset}`, () => write([refused])),
      );
    }
  }
}

/**
 * Logs the messages of a batch the graph's offset says were written before: a replay (info), or,
 * far past what Kafka handed out, a group reset or a topic made again under its name (warn).
 */
function logSkipped(logger: Logger, w: PartitionWriter, first: Msg, results: PartitionBatchResult[]): void {
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
}

/**
 * One partition's writer: its batches one after another (up to MAX_INTERACTIONS messages each).
 * A batch's Kafka commit runs while the next batch is written (commits go in order, each after the
 * one before): the offset in the graph, not Kafka's, is what keeps a batch from being written twice,
 * so a commit still in flight when the consumer dies only means a replay that is skipped.
 */
async function drainPartition(state: AgentConsumerState, w: PartitionWriter): Promise<void> {
  while (w.queue.length > 0 && !state.closing) {
    const run = w.queue.slice(0, MAX_INTERACTIONS);
    await handleRouting(state, w, run);
    await w.committing;
    w.committing = commitPartition(state, w, run);
    w.committing.catch(() => undefined); // awaited before the next commit; never an unhandled rejection meanwhile
    w.queue.splice(0, run.length);
    resumeIfRoom(state);
  }
  await w.committing;
}

/** Commits a partition's written batch and notes how far this writer committed; a failure is logged. */
async function commitPartition(state: AgentConsumerState, w: PartitionWriter, run: Msg[]): Promise<void> {
  try {
    await commit(state, run);
    w.committedThrough = (run.at(-1) as Msg).offset;
  } catch (err) {
    // As in drainReports (api/kafkaAgentReports.ts): the next owner (or this consumer, after the
    // rebalance) hands them again, and the partition's offset in the graph makes writing them again a skip.
    if (state.closing) throw err;
    state.options.logger.warn(
      { err, partition: w.partition, messages: run.length },
      'an offset could not be committed; the group hands the messages again',
    );
  }
}

/** A partition's writer, made (with its own loop) the first time a message of that partition comes. */
export function writerOf(state: AgentConsumerState, partition: number): PartitionWriter {
  const known = state.writers.get(partition);
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
    state,
    `routing outcomes of partition ${partition}`,
    () => drainPartition(state, w),
    () => w.queue.length,
  );
  w.kick = k.kick;
  w.running = k.running;
  state.writers.set(partition, w);
  return w;
}
