/**
 * The event prune's activity: works out, by the graph's clock, how far every consumer has the
 * events (graph/eventPrune.ts), then deletes what is before that in batches, heartbeating the
 * counts so far after each. A retry (a dead worker, Neo4j gone for a while) works the horizon out
 * again and goes on counting from the last heartbeat: what was deleted stays deleted, and the next
 * batch finds what is left.
 */
import { Context } from '@temporalio/activity';
import type { Graph } from '../graph/graph';
import { pruneEvents, pruneHorizon, type PruneCount } from '../graph/eventPrune';
import type { EventPruneInput, EventPruneResult, PruneEventsProgress } from '../temporal/eventPrune';

const MINUTE_MS = 60_000;

/** The running activity's context, or null when called directly (a test without one). */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

export function createEventPruneActivities({ graph }: { graph: Graph }) {
  return {
    async pruneEvents(req: EventPruneInput): Promise<EventPruneResult> {
      const context = activityContext();
      const resumed = (context?.info.heartbeatDetails as Partial<PruneEventsProgress> | undefined)?.deleted;
      const before: PruneCount = { transient: resumed?.transient ?? 0, history: resumed?.history ?? 0 };
      const at = await pruneHorizon(graph, {
        safetyMs: req.safety_minutes * MINUTE_MS,
        capMs: req.cap_hours * 60 * MINUTE_MS,
        historyMs: req.history_days * 24 * 60 * MINUTE_MS,
      });
      const add = (n: PruneCount): PruneCount => ({
        transient: before.transient + n.transient,
        history: before.history + n.history,
      });
      const deleted = await pruneEvents(graph, at, {
        batchSize: req.batch_size,
        onBatch: (soFar) => {
          if (!context) return;
          context.heartbeat({ deleted: add(soFar) } satisfies PruneEventsProgress);
          // A cancelled run stops between two batches; what was deleted is.
          if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
        },
      });
      return { ...at, deleted: add(deleted) };
    },
  };
}

export type EventPruneActivities = ReturnType<typeof createEventPruneActivities>;
