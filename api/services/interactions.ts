/**
 * Recording the agents' interactions (POST /api/v1/interactions, gRPC RecordInteractions): each
 * item is parsed on its own with the one schema both transports use (api/requests.ts), and the
 * valid ones are recorded in one transaction (graph/interactions.ts). The answer lists every
 * item's result in order; an invalid item names its field as `data[<index>].<field>`.
 */
import type { Interaction } from '../../graph/interactions';
import {
  recordPartitionBatch,
  type PartitionBatchResult,
  type PartitionEntry,
  type PartitionSource,
} from '../../graph/ingestOffsets';
import type { ApiDeps } from '../deps';
import { AsyncResource } from 'node:async_hooks';
import type { Principal } from '../auth';
import { interactionSchema, issueField, RESERVED_INTERACTION_PREFIX } from '../requests';
import { detachedGraph } from './writeLanes';

// The write lanes live in api/services/writeLanes.ts (the deps build them); named here too, where they are used.
export { GroupCommit, laneOf, WriteLanes, type LaneResult } from './writeLanes';

export type InteractionAnswer =
  | { id: string | null; result: 'recorded'; consistency_token?: string }
  | { id: string | null; result: 'duplicate' }
  | { id: string | null; result: 'invalid'; field: string; problem: string };

/** The item's own `id` when it has a usable one (an invalid item may not). */
function idOf(item: unknown): string | null {
  const id = item && typeof item === 'object' ? (item as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length <= 128 ? id : null;
}

/** Why one item cannot be recorded as sent (field under `data[i]`), or the parsed item. */
export function parseInteraction(
  item: unknown,
  index: number,
): { ok: true; item: Interaction } | { ok: false; field: string; problem: string } {
  const parsed = interactionSchema.safeParse(item);
  if (parsed.success) return { ok: true, item: parsed.data as Interaction };
  const issue = parsed.error.issues[0];
  const inner = issue ? issueField(issue, '') : '';
  const problem = issue?.code === 'unrecognized_keys' ? 'unknown field' : (issue?.message ?? 'invalid');
  return { ok: false, field: inner ? `data[${index}].${inner}` : `data[${index}]`, problem };
}

/**
 * Each item parsed and checked against what `principal` may send: an answer for each item refused
 * (field under `data[i]`), and the items the graph may record, with their index.
 */
export function checkInteractions(
  items: unknown[],
  principal: Principal,
): { answers: (InteractionAnswer | undefined)[]; valid: { index: number; item: Interaction }[] } {
  // Persona records its own recovery charges under these ids; only ops may (to count a skipped record).
  const mayUseReserved = principal.scopes.has('ops');
  // A prediction may make a customer VIP (PERSONA_VIP_BASIS): only The Oracle's scope, or ops, sets one.
  const mayPredict = principal.scopes.has('ltv:write') || principal.scopes.has('ops');
  const answers: (InteractionAnswer | undefined)[] = [];
  const valid: { index: number; item: Interaction }[] = [];
  items.forEach((raw, index) => {
    const parsed = parseInteraction(raw, index);
    if (parsed.ok && !mayUseReserved && parsed.item.id.toLowerCase().startsWith(RESERVED_INTERACTION_PREFIX))
      answers[index] = {
        id: parsed.item.id,
        result: 'invalid',
        field: `data[${index}].id`,
        problem: `must not start with "${RESERVED_INTERACTION_PREFIX}": Persona's own recovery charges use it`,
      };
    else if (parsed.ok && parsed.item.type === 'ltv_feedback' && !mayPredict)
      answers[index] = {
        id: parsed.item.id,
        result: 'invalid',
        field: `data[${index}].type`,
        problem: 'ltv_feedback needs the scope ltv:write (The Oracle’s)',
      };
    else if (parsed.ok) valid.push({ index, item: parsed.item });
    else answers[index] = { id: idOf(raw), result: 'invalid', field: parsed.field, problem: parsed.problem };
  });
  return { answers, valid };
}

/**
 * Records a batch (1–500 items, checked by the caller's envelope): every item answered in order,
 * `recorded`, `duplicate` or `invalid`; an invalid item writes nothing, the others are recorded.
 */
export async function recordInteractions(
  deps: ApiDeps,
  items: unknown[],
  principal: Principal,
): Promise<{ data: InteractionAnswer[] }> {
  const { answers, valid } = checkInteractions(items, principal);
  if (valid.length > 0) {
    // Bound to this request's scope: read later, it says whether this caller still waits.
    const waiting = AsyncResource.bind(() => !deps.requests.abandoned);
    const results = await deps.interactionLanes.submit(
      valid.map((v) => v.item),
      waiting,
    );
    results.forEach((r, k) => {
      const { index, item } = valid[k] as { index: number; item: Interaction };
      answers[index] =
        r.result === 'invalid'
          ? { id: item.id, result: 'invalid', field: `data[${index}].${r.field}`, problem: r.problem }
          : r.result === 'recorded' && r.consistency_token !== undefined
            ? { id: item.id, result: 'recorded', consistency_token: r.consistency_token }
            : { id: item.id, result: r.result };
    });
  }
  return { data: answers as InteractionAnswer[] };
}

/**
 * A message of a partition: its JSON value; or that it is not JSON; or why it is refused already
 * (a poison message the consumer gave up on: written as a refusal, kept until Kafka committed past it).
 */
export type PartitionMessage =
  | { offset: bigint; json: unknown }
  | { offset: bigint; notJson: true }
  | { offset: bigint; refused: { field: string; reason: string } };

/**
 * Records a batch of one Kafka partition's messages (offsets ascending) by the partition's writer
 * (api/kafkaConsumer.ts): checked as `recordInteractions` checks a batch, written in one
 * transaction with the partition's offset (graph/ingestOffsets.ts). Answers what was skipped as
 * written before, and what goes to the dead-letter topic (fields named as in the message).
 */
export async function recordPartition(
  deps: ApiDeps,
  source: PartitionSource,
  messages: PartitionMessage[],
  principal: Principal,
  committedThrough: bigint,
): Promise<PartitionBatchResult> {
  const json = messages.filter((m): m is Extract<PartitionMessage, { json: unknown }> => 'json' in m);
  const { answers, valid } = checkInteractions(
    json.map((m) => m.json),
    principal,
  );
  const entries = new Map<bigint, PartitionEntry>();
  for (const m of messages)
    if ('refused' in m) entries.set(m.offset, { offset: m.offset, refused: m.refused });
    else if (!('json' in m))
      entries.set(m.offset, { offset: m.offset, refused: { field: 'value', reason: 'the message is not JSON' } });
  answers.forEach((a, i) => {
    const { offset } = json[i] as { offset: bigint };
    if (a?.result === 'invalid')
      entries.set(offset, refusedEntry(offset, a.field.replace(/^data\[\d+\]\.?/, '') || 'value', a.problem));
  });
  for (const { index, item } of valid)
    entries.set((json[index] as { offset: bigint }).offset, {
      offset: (json[index] as { offset: bigint }).offset,
      item,
    });
  const ordered = [...entries.values()].sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  return recordPartitionBatch(detachedGraph(deps.graph), source, ordered, deps.interactions, committedThrough);
}

function refusedEntry(offset: bigint, field: string, problem: string): PartitionEntry {
  return { offset, refused: { field, reason: `${field}: ${problem}` } };
}
