/**
 * The write lanes interaction batches are recorded through (api/services/interactions.ts): group
 * commits, one per lane, a batch split over them by customer. An api process builds its lanes once,
 * with its deps (api/deps.ts `ApiDeps.interactionLanes`); this module takes the parts it needs, not
 * the deps, so that the deps can build them without an import circle.
 */
import { observeCommits, type Graph } from '../../graph/graph';
import {
  recordInteractions as recordInGraph,
  type Interaction,
  type InteractionResult,
  type ProfileRules,
} from '../../graph/interactions';
import { partitionOf } from '../../clients/kafka';
import { DependencyUnavailableError, unavailableDependency } from '../../runtime/dependencies';
import type { RequestContext } from '../../runtime/requestContext';
import { customerSeqs, formatCustomerToken } from '../consistency';
import { MAX_INTERACTIONS } from '../requests';

/**
 * An item's result as the group commit answers it: a recorded item carries the consistency token of
 * its customer's write (api/consistency.ts) when the transaction that recorded it committed events of
 * that customer.
 */
export type LaneResult = InteractionResult & { consistency_token?: string };

/**
 * The graph as writers that answer no caller use it: not tied to the request that happens to run
 * them (its callers may differ, or be a topic). Its commits still reach the api's `changes` (read
 * at commit time, whenever that hook is set).
 */
export function detachedGraph(graph: Graph): Graph {
  return {
    ...graph,
    limits: { ...graph.limits, mayCommit: undefined },
    changes: (events) => graph.changes?.(events),
  };
}

/**
 * Group commit: batches that arrive while one is being written wait, and go together in the next
 * transaction (up to `maxItems` items), each answered with its own slice of the results. Every
 * batch of a Zipf-shaped stream touches the few busiest customers, so concurrent transactions
 * would queue on those customers' locks one after another anyway; one transaction for all of them
 * takes each lock once, pays the round trips and the commit once, and aggregates more items per
 * customer.
 *
 * What keeps it from becoming a single point of stall:
 * - a batch whose caller was already answered (503, out of time) is dropped before its turn, never
 *   written late in front of newer ones; the sender retries it with the same ids;
 * - at most `maxQueuedItems` wait: beyond that a batch is answered 503 busy at once;
 * - a group that fails because Neo4j is unavailable or busy fails all its batches (503: retry) at once;
 *   a group that fails for any other reason is written again batch by batch, so one batch's failure
 *   never becomes another's.
 * A group may still commit just after one of its callers was answered 503 (the deadline passed during
 * the commit): an interaction is idempotent, so the sender's retry is answered `duplicate` and nothing
 * counts twice.
 */
export class GroupCommit {
  private readonly queue: {
    items: Interaction[];
    /** False once the caller has been answered without this batch. */
    waiting: () => boolean;
    resolve: (results: LaneResult[]) => void;
    reject: (err: unknown) => void;
  }[] = [];
  private queued = 0;
  private writing = false;

  constructor(
    private readonly write: (items: Interaction[]) => Promise<LaneResult[]>,
    private readonly limits: { maxItems: number; maxQueuedItems: number },
    /** Runs the writer outside the scope of the request that happens to start it. */
    private readonly detached: (work: () => Promise<void>) => Promise<void> = (work) => work(),
  ) {}

  /** Items waiting for their turn (not those being written). */
  get queuedItems(): number {
    return this.queued;
  }

  /** `waiting` says whether the caller still waits (checked before the batch's turn). */
  submit(items: Interaction[], waiting: () => boolean = () => true): Promise<LaneResult[]> {
    if (this.queued > 0 && this.queued + items.length > this.limits.maxQueuedItems)
      return Promise.reject(
        new DependencyUnavailableError('neo4j', `${this.queued} interactions already wait to be written`),
      );
    return new Promise((resolve, reject) => {
      this.queue.push({ items, waiting, resolve, reject });
      this.queued += items.length;
      if (!this.writing) {
        this.writing = true;
        void this.detached(() => this.drain());
      }
    });
  }

  /** The next batches whose callers still wait, up to maxItems (at least one batch). */
  private nextGroup(): typeof this.queue {
    const group: typeof this.queue = [];
    let size = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as (typeof this.queue)[number];
      if (group.length > 0 && size + next.items.length > this.limits.maxItems) break;
      this.queue.shift();
      this.queued -= next.items.length;
      if (!next.waiting()) {
        next.reject(new DependencyUnavailableError('neo4j', 'answered before its turn to be written'));
        continue;
      }
      group.push(next);
      size += next.items.length;
    }
    return group;
  }

  private async drain(): Promise<void> {
    try {
      for (let group = this.nextGroup(); group.length > 0; group = this.nextGroup()) {
        try {
          const results = await this.write(group.flatMap((g) => g.items));
          let at = 0;
          for (const g of group) {
            g.resolve(results.slice(at, at + g.items.length));
            at += g.items.length;
          }
        } catch (err) {
          if (group.length === 1 || unavailableDependency(err)) for (const g of group) g.reject(err);
          else
            for (const g of group)
              if (g.waiting()) await this.write(g.items).then(g.resolve, g.reject);
              else g.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

/**
 * The lane of a customer: its Kafka partition among `lanes` partitions (clients/kafka.ts
 * partitionOf), so a process with as many lanes as the routing topic has partitions writes a
 * customer's REST batches in the lane whose number its routing outcomes' partition has.
 */
export function laneOf(customerId: string, lanes: number): number {
  return partitionOf(customerId, lanes);
}

/**
 * Write lanes: a batch's items split by customer over several group commits, each writing its own
 * transactions. A transaction runs on one Neo4j thread; one lane leaves the other cores idle while the
 * api waits on it. The lanes never share a customer, so they never queue on each other's customer locks.
 * They may meet on a shared device: graph/interactions.ts locks a batch's devices in fingerprint order,
 * so they queue there, never deadlock. Every item is aggregated, claimed and evented with the other items
 * of its customer, as in one lane.
 *
 * One budget of waiting items covers all the lanes, and a batch is admitted to all of its lanes or to
 * none (503 busy at once, nothing written): a sender filling one lane cannot get other senders' batches
 * half written. The answer waits for every lane's part. When a part fails, the caller gets that failure
 * (503: retry), after the other parts have settled: a part that committed is answered `duplicate` on the
 * retry, as after any 503 here.
 */
export class WriteLanes {
  constructor(
    private readonly lanes: GroupCommit[],
    /** Most items waiting over all lanes; the lanes' own limits should be no lower. */
    private readonly maxQueuedItems: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Items waiting over all lanes. */
  get queuedItems(): number {
    return this.lanes.reduce((n, lane) => n + lane.queuedItems, 0);
  }

  /** Items waiting in each lane. */
  queuedPerLane(): number[] {
    return this.lanes.map((lane) => lane.queuedItems);
  }

  async submit(items: Interaction[], waiting: () => boolean = () => true): Promise<LaneResult[]> {
    const queued = this.queuedItems;
    if (queued > 0 && queued + items.length > this.maxQueuedItems)
      throw new DependencyUnavailableError('neo4j', `${queued} interactions already wait to be written`);
    const only = this.lanes.length === 1 ? this.lanes[0] : undefined;
    if (only) return only.submit(items, waiting);
    const parts = new Map<number, number[]>();
    items.forEach((item, i) => {
      const lane = laneOf(item.customer_id, this.lanes.length);
      const part = parts.get(lane);
      if (part) part.push(i);
      else parts.set(lane, [i]);
    });
    const results: LaneResult[] = new Array<LaneResult>(items.length);
    // The first failure in time is the answer; a part still waiting for its turn is then dropped (its
    // caller gets that failure anyway), one being written finishes (the retry answers it `duplicate`).
    let failure: { err: unknown } | undefined;
    const stillWaiting = () => failure === undefined && waiting();
    // Every part is queued in this same tick (each submit runs before the first await): all or none.
    await Promise.all(
      [...parts].map(async ([lane, indexes]) => {
        try {
          const answered = await (this.lanes[lane] as GroupCommit).submit(
            indexes.map((i) => items[i] as Interaction),
            stillWaiting,
          );
          answered.forEach((r, k) => (results[indexes[k] as number] = r));
        } catch (err) {
          failure ??= { err };
        }
      }),
    );
    if (failure) throw failure.err;
    return results;
  }
}

/**
 * Records a group and gives each recorded item the token of its customer's write: the highest
 * customer_seq the group's transaction committed for that customer (the group runs in its own scope,
 * so it maps the sequence numbers to the items itself).
 */
export async function recordWithTokens(g: Graph, items: Interaction[], rules: ProfileRules): Promise<LaneResult[]> {
  const { result, events } = await observeCommits(() => recordInGraph(g, items, rules));
  const seqs = customerSeqs(events);
  return result.map((r, i) => {
    // An item naming a merged customer was recorded on the survivor: the token is of the survivor's write.
    if (r.result !== 'recorded') return r;
    const customerId = r.merged_into ?? (items[i] as Interaction).customer_id;
    const seq = seqs.get(customerId);
    return seq === undefined ? r : { ...r, consistency_token: formatCustomerToken(customerId, seq) };
  });
}

/** Numbers the groups' request scopes (`interaction-group-<n>`, in log lines), unique in the process. */
let groups = 0;

/**
 * An api process's write lanes: `limits.lanes` group commits of at most `limits.maxItems` items
 * each, writing through the detached `graph` with `rules`, each group in a request scope of its
 * own (`requests`). Four groups' worth of items wait at most, over all the lanes together.
 */
export function createWriteLanes(parts: {
  graph: Graph;
  rules: ProfileRules;
  requests: RequestContext;
  limits: { maxItems: number; lanes: number };
}): WriteLanes {
  const graph = detachedGraph(parts.graph);
  const { rules, requests } = parts;
  const max = parts.limits.maxItems;
  const maxQueuedItems = Math.max(4 * max, MAX_INTERACTIONS);
  const lanes = Array.from(
    { length: parts.limits.lanes },
    () =>
      new GroupCommit(
        (items) => recordWithTokens(graph, items, rules),
        { maxItems: max, maxQueuedItems },
        (work) => requests.run({ requestId: `interaction-group-${++groups}` }, work),
      ),
  );
  return new WriteLanes(lanes, maxQueuedItems);
}
