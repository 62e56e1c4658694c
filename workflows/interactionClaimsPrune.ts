/**
 * Interaction-claims prune — started daily by the Schedule `persona-interaction-prune`. Forgets
 * the interaction ids recorded more than `window_hours` before the run was due: one
 * `pruneInteractionClaims` activity deletes them in batches (graph/interactions.ts), heartbeating
 * its count. Past that, a redelivered id records again: the retention must exceed the longest
 * redelivery window upstream. If the activity fails for good (its retries are bounded), the run
 * fails with `InteractionPruneFailed` (Failed in the UI) and the next day's run tries again; what
 * was deleted stays deleted. The UI's current details say the cutoff and, at the end, the count.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  log,
  setCurrentDetails,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { InteractionPruneActivities } from '../activities/interactionPrune';
import {
  INTERACTION_PRUNE_FAILED,
  type InteractionPruneInput,
  type InteractionPruneResult,
} from '../temporal/interactionPrune';
import { activitiesWithSummaries, claimsPrune } from './activityOptions';
import { markInteractionPruneFinished } from './metrics';
import { pinned } from './versioning';

const { pruneInteractionClaims } = activitiesWithSummaries<InteractionPruneActivities>(claimsPrune, {
  pruneInteractionClaims: (req) =>
    `Delete interaction claims recorded before ${req.cutoff}, ${req.batch_size} per transaction`,
});

/** Set by Temporal on a run a Schedule started: when it was due, not when it happened to start. */
const SCHEDULED_START_TIME = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

const HOUR_MS = 60 * 60 * 1000;

pinned(interactionClaimsPruneWorkflow);
export async function interactionClaimsPruneWorkflow(input: InteractionPruneInput): Promise<InteractionPruneResult> {
  // A run caught up late (after an outage) still keeps the full retention, counted from when it was due.
  // Never later than now: a backfill reaching into the future must not delete ids still in their window.
  const scheduled = workflowInfo().typedSearchAttributes.get(SCHEDULED_START_TIME);
  const now = new Date();
  const due = scheduled && scheduled.getTime() < now.getTime() ? scheduled : now;
  const cutoff = new Date(due.getTime() - input.window_hours * HOUR_MS).toISOString();
  setCurrentDetails(
    `**Interaction-claims prune** — deleting claims recorded before ${cutoff} ` +
      `(${input.window_hours} hours), ${input.batch_size} per transaction`,
  );
  try {
    const result = await pruneInteractionClaims({ cutoff, batch_size: input.batch_size });
    setCurrentDetails(
      `**Interaction-claims prune** — done: ${result.deleted} claims recorded before ${cutoff} deleted`,
    );
    log.info('interaction claims pruned', { deleted: result.deleted, cutoff });
    markInteractionPruneFinished();
    return { deleted: result.deleted, cutoff };
  } catch (err) {
    // Cancelled by ops: Canceled in the UI, not a failure to alert on.
    if (isCancellation(err) || !(err instanceof ActivityFailure)) throw err;
    const why = err.cause?.message ?? err.message;
    throw ApplicationFailure.create({
      type: INTERACTION_PRUNE_FAILED,
      message:
        `pruning interaction claims recorded before ${cutoff} failed after every retry (${why}); ` +
        "the claims deleted before it stay deleted, and the next day's run tries again",
      nonRetryable: true,
      cause: err,
    });
  }
}
