/**
 * The interaction-claims prune's activity: deletes the claims recorded before the cutoff in
 * batches, heartbeating the count so far after each. A retry (a dead worker, Neo4j gone for a
 * while) starts from the last heartbeat's count: what was deleted stays deleted, and the next
 * batch simply finds the claims that are left.
 */
import { Context } from '@temporalio/activity';
import type { Graph } from '../graph/graph';
import { pruneInteractionClaims as pruneClaims } from '../graph/interactions';
import type { InteractionPruneResult, PruneClaimsProgress, PruneClaimsRequest } from '../temporal/interactionPrune';

/** The running activity's context, or null when called directly (a test without one). */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/** The count the last attempt reached, from its heartbeat (0 on a first attempt). */
function resumedCount(context: Context | null): number {
  const details = context?.info.heartbeatDetails as Partial<PruneClaimsProgress> | undefined;
  return typeof details?.deleted === 'number' ? details.deleted : 0;
}

export function createInteractionPruneActivities({ graph }: { graph: Graph }) {
  return {
    async pruneInteractionClaims(req: PruneClaimsRequest): Promise<InteractionPruneResult> {
      const context = activityContext();
      const before = resumedCount(context);
      const deleted = await pruneClaims(graph, {
        olderThan: new Date(req.cutoff),
        batchSize: req.batch_size,
        onBatch: (soFar) => {
          if (!context) return;
          context.heartbeat({ deleted: before + soFar } satisfies PruneClaimsProgress);
          // A cancelled run stops between two batches; what was deleted is.
          if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
        },
      });
      return { deleted: before + deleted, cutoff: req.cutoff };
    },
  };
}

export type InteractionPruneActivities = ReturnType<typeof createInteractionPruneActivities>;
