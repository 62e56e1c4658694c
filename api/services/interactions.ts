/**
 * Recording the agents' interactions (POST /api/v1/interactions, gRPC RecordInteractions): each
 * item is parsed on its own with the one schema both transports use (api/requests.ts), and the
 * valid ones are recorded in one transaction (graph/interactions.ts). The answer lists every
 * item's result in order; an invalid item names its field as `data[<index>].<field>`.
 */
import type { Graph } from '../../graph/graph';
import {
  recordInteractions as recordInGraph,
  type Interaction,
  type InteractionResult,
  type ProfileRules,
} from '../../graph/interactions';
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
    const results = await groupCommitOf(deps).submit(valid.map((v) => v.item));
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

/**
 * Group commit: batches that arrive while one is being written wait, and go together in the next
 * transaction (up to `maxItems` items), each answered with its own slice of the results. Every
 * batch of a Zipf-shaped stream touches the few busiest customers, so concurrent transactions
 * would queue on those customers' locks one after another anyway; one transaction for all of them
 * takes each lock once, pays the round trips and the commit once, and aggregates more items per
 * customer. A group that fails is written again batch by batch, so one batch's failure never
 * becomes another's.
 *
 * The group's write may commit after one of its callers was answered 503 (out of time): an
 * interaction is idempotent, so the sender's retry is answered `duplicate` and nothing counts twice.
 */
export class GroupCommit {
  private readonly queue: {
    items: Interaction[];
    resolve: (results: InteractionResult[]) => void;
    reject: (err: unknown) => void;
  }[] = [];
  private writing = false;

  constructor(
    private readonly write: (items: Interaction[]) => Promise<InteractionResult[]>,
    private readonly maxItems: number,
  ) {}

  submit(items: Interaction[]): Promise<InteractionResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const group = [this.queue.shift() as (typeof this.queue)[number]];
        let size = group[0]?.items.length ?? 0;
        while (this.queue.length > 0 && size + (this.queue[0]?.items.length ?? 0) <= this.maxItems) {
          const next = this.queue.shift() as (typeof this.queue)[number];
          size += next.items.length;
          group.push(next);
        }
        try {
          const results = await this.write(group.flatMap((g) => g.items));
          let at = 0;
          for (const g of group) {
            g.resolve(results.slice(at, at + g.items.length));
            at += g.items.length;
          }
        } catch (err) {
          if (group.length === 1) group[0]?.reject(err);
          else for (const g of group) await this.write(g.items).then(g.resolve, g.reject);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

/** Per api instance, its one group commit. */
const groupCommits = new WeakMap<ApiDeps, GroupCommit>();

function groupCommitOf(deps: ApiDeps): GroupCommit {
  const known = groupCommits.get(deps);
  if (known) return known;
  // Not tied to the request that happens to start a group: its callers may differ (see above).
  const graph: Graph = { ...deps.graph, limits: { ...deps.graph.limits, mayCommit: undefined } };
  const rules: ProfileRules = deps.interactions;
  const fresh = new GroupCommit((items) => recordInGraph(graph, items, rules), deps.limits.maxInteractionsGroupItems);
  groupCommits.set(deps, fresh);
  return fresh;
}
