/**
 * Interactions taken from a Kafka partition, written once by the partition's offset (the routing
 * outcomes' consumer, api/kafkaConsumer.ts): one `IngestOffset` node per partition (id
 * `<topic id>/<partition>`, the topic's id as Kafka gives it, so a topic deleted and made again
 * under its name starts from nothing) holds the offset of the last message written, set in the SAME
 * transaction as the batch. A batch is written after the node's write lock is taken (first, before
 * any customer's: no other writer takes it), and only its messages past the offset are written: a
 * replay after a crash between the graph's commit and Kafka's (a new owner of the partition, or
 * the same consumer again) finds them written and skips them, without reading an interaction claim
 * — whatever the claims' window; two owners of one partition during a rebalance queue on the node.
 *
 * A message that can never be recorded (not JSON, a field wrong, an unknown customer) is sent to
 * the dead-letter topic after the commit. So that a crash before that send does not lose it, the
 * node also keeps the refusals past the offset Kafka has committed (as the writer last knew it): a
 * replay that skips a message sends its refusal again. Dead letters are so sent at least once
 * (`persona-dead-letter-source` names the message: the same source twice is one refusal).
 */
import neo4j from 'neo4j-driver';
import { lockNode, readTx, writeTx, type Graph } from './graph';
import { recordInteractionsTx, type Interaction, type InteractionResult, type ProfileRules } from './interactions';

/** A partition of a topic, as the writer knows it. */
export interface PartitionSource {
  /** The topic's id (Kafka's UUID), or its name where the broker gives none. */
  topicId: string;
  topic: string;
  partition: number;
}

export interface Refusal {
  offset: string;
  reason: string;
  field: string;
}

/** One message of a batch: its item, or why it was refused before the graph saw it. */
export type PartitionEntry =
  { offset: bigint; item: Interaction } | { offset: bigint; refused: { reason: string; field: string } };

export interface PartitionBatchResult {
  /** The results of the messages written now, by offset (as a decimal string). */
  recorded: Map<string, InteractionResult>;
  /** Messages at or before the node's offset: written by an earlier transaction. */
  skipped: bigint[];
  /** What goes to the dead-letter topic now: this batch's refusals, and a skipped message's kept one. */
  deadLetters: Refusal[];
  /** The partition's offset in the graph before this batch (-1: none yet). */
  before: bigint;
}

/** The most refusals a node keeps (the newest); beyond it, a lost send is not sent again. */
export const KEPT_REFUSALS = 5000;

/** The longest reason or field kept or sent: a field's name is the sender's, of any length. */
const MAX_REFUSAL_TEXT = 300;

/**
 * A refusal's text as it is kept and sent: cut to MAX_REFUSAL_TEXT characters, and any run of 12
 * or more digits (a card number a sender put in a field's name) replaced.
 */
export function boundRefusalText(text: string): string {
  const safe = text.replace(/\d{12,}/g, '[digits]');
  return safe.length > MAX_REFUSAL_TEXT ? `${safe.slice(0, MAX_REFUSAL_TEXT - 1)}…` : safe;
}

/**
 * An item names a customer a merge is committing (graph/interactions.ts): the whole batch is rolled
 * back, to be tried again once the merge is done, rather than the item refused for good.
 */
export class MergeInProgressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MergeInProgressError';
  }
}

const CYPHER = {
  lock: `
    MERGE (o:IngestOffset {id: $id})
    ON CREATE SET o.topic = $topic, o.partition = $partition, o.offset = -1, o.refusals = '[]',
                  o.created_at = datetime.transaction()
    ${lockNode('o')}
    RETURN o.offset AS offset, o.refusals AS refusals`,
  advance: `
    MATCH (o:IngestOffset {id: $id})
    SET o.offset = CASE WHEN o.offset < $offset THEN $offset ELSE o.offset END,
        o.refusals = $refusals, o.updated_at = datetime.transaction()`,
} as const;

export const ingestOffsetId = (s: PartitionSource): string => `${s.topicId}/${s.partition}`;

/**
 * Writes a partition's batch (offsets ascending) in one transaction with the partition's offset.
 * `committedThrough`: the highest offset Kafka is known to have committed for this partition (the
 * refusals at or before it need no second send).
 */
export async function recordPartitionBatch(
  g: Graph,
  source: PartitionSource,
  entries: PartitionEntry[],
  rules: ProfileRules,
  committedThrough: bigint,
): Promise<PartitionBatchResult> {
  const last = entries.at(-1)?.offset;
  if (last === undefined) return { recorded: new Map(), skipped: [], deadLetters: [], before: -1n };
  const id = ingestOffsetId(source);
  return writeTx(g, async (tx) => {
    const head = (await tx.run(CYPHER.lock, { id, topic: source.topic, partition: neo4j.int(source.partition) }))
      .records[0];
    const at = BigInt(String(head?.get('offset') ?? -1));
    const kept = JSON.parse(String(head?.get('refusals') ?? '[]')) as Refusal[];
    const fresh = entries.filter((e) => e.offset > at);
    const skipped = entries.filter((e) => e.offset <= at).map((e) => e.offset);
    const skippedSet = new Set(skipped.map(String));

    const toWrite = fresh.filter((e): e is Extract<PartitionEntry, { item: Interaction }> => 'item' in e);
    const results =
      toWrite.length > 0
        ? await recordInteractionsTx(
            tx,
            g,
            toWrite.map((e) => e.item),
            rules,
          )
        : [];
    const recorded = new Map<string, InteractionResult>();
    toWrite.forEach((e, i) => recorded.set(String(e.offset), results[i] as InteractionResult));
    const merging = results.find((r) => r.result === 'invalid' && r.retry === true);
    if (merging?.result === 'invalid') throw new MergeInProgressError(merging.problem);

    const refusedNow: Refusal[] = [];
    for (const e of fresh) {
      const refused = 'refused' in e ? e.refused : invalidOf(recorded.get(String(e.offset)));
      if (refused)
        refusedNow.push({
          offset: String(e.offset),
          reason: boundRefusalText(refused.reason),
          field: boundRefusalText(refused.field),
        });
    }
    const stillOpen = kept.filter((r) => BigInt(r.offset) > committedThrough);
    const keep = [...stillOpen, ...refusedNow].slice(-KEPT_REFUSALS);
    if (fresh.length > 0 || keep.length !== kept.length)
      await tx.run(CYPHER.advance, { id, offset: neo4j.int(String(last)), refusals: JSON.stringify(keep) });
    return {
      before: at,
      recorded,
      skipped,
      deadLetters: [...kept.filter((r) => skippedSet.has(r.offset)), ...refusedNow],
    };
  });
}

function invalidOf(r: InteractionResult | undefined): { reason: string; field: string } | undefined {
  return r?.result === 'invalid' ? { reason: `${r.field}: ${r.problem}`, field: r.field } : undefined;
}

/** Each partition's offset in the graph (ops, tests and the benchmark read it). */
export async function ingestOffsets(g: Graph, topicId: string): Promise<Map<number, bigint>> {
  const records = await readTx(g, async (tx) => {
    const cypher =
      'MATCH (o:IngestOffset) WHERE o.id STARTS WITH $prefix RETURN o.partition AS partition, o.offset AS offset';
    return (await tx.run(cypher, { prefix: `${topicId}/` })).records;
  });
  return new Map(records.map((r) => [Number(r.get('partition')), BigInt(String(r.get('offset')))]));
}
