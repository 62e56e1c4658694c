/**
 * Recording the agents' interactions (POST /api/v1/interactions, gRPC RecordInteractions): each
 * item is parsed on its own with the one schema both transports use (api/requests.ts), and the
 * valid ones are recorded in one transaction (graph/interactions.ts). The answer lists every
 * item's result in order; an invalid item names its field as `data[<index>].<field>`.
 */
import { recordInteractions as recordInGraph, type Interaction } from '../../graph/interactions';
import type { ApiDeps } from '../deps';
import { interactionSchema, issueField } from '../requests';

export type InteractionAnswer =
  | { id: string | null; result: 'recorded' | 'duplicate' }
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
 * Records a batch (1–500 items, checked by the caller's envelope): every item answered in order,
 * `recorded`, `duplicate` or `invalid`; an invalid item writes nothing, the others are recorded.
 */
export async function recordInteractions(deps: ApiDeps, items: unknown[]): Promise<{ data: InteractionAnswer[] }> {
  const answers: (InteractionAnswer | undefined)[] = [];
  const valid: { index: number; item: Interaction }[] = [];
  items.forEach((raw, index) => {
    const parsed = parseInteraction(raw, index);
    if (parsed.ok) valid.push({ index, item: parsed.item });
    else answers[index] = { id: idOf(raw), result: 'invalid', field: parsed.field, problem: parsed.problem };
  });
  if (valid.length > 0) {
    const results = await recordInGraph(
      deps.graph,
      valid.map((v) => v.item),
      deps.interactions,
    );
    results.forEach((r, k) => {
      const { index, item } = valid[k] as { index: number; item: Interaction };
      answers[index] =
        r.result === 'invalid'
          ? { id: item.id, result: 'invalid', field: `data[${index}].${r.field}`, problem: r.problem }
          : { id: item.id, result: r.result };
    });
  }
  return { data: answers as InteractionAnswer[] };
}
