/**
 * Event prune — started by the Schedule `persona-event-prune` every PERSONA_EVENTS_PRUNE_EVERY_MINUTES.
 * Keeps the graph bounded: one `pruneEvents` activity works out how far every consumer of the
 * change feed has the events and deletes what is before that, less the safety window
 * (graph/eventPrune.ts); Kafka's events topic is the log of record. A consumer past the cap no
 * longer holds pruning back (a Kafka publisher still does): the run says which in its details and
 * its log, and sets `persona_event_consumers_behind_cap` (alert on it above 0). If the activity fails for good (its
 * retries are bounded), the run fails with `EventPruneFailed` (Failed in the UI) and the next run
 * tries again; what was deleted stays deleted.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, log, setCurrentDetails } from '@temporalio/workflow';
import type { EventPruneActivities } from '../activities/eventPrune';
import { EVENT_PRUNE_FAILED, type EventPruneInput, type EventPruneResult } from '../temporal/eventPrune';
import { activitiesWithSummaries, eventsPrune } from './activityOptions';
import { markEventPruneFinished } from './metrics';
import { pinned } from './versioning';

const { pruneEvents } = activitiesWithSummaries<EventPruneActivities>(eventsPrune, {
  pruneEvents: (req) =>
    `Delete the events every consumer has had for ${req.safety_minutes} minutes (history after ` +
    `${req.history_days} days), ${req.batch_size} per transaction`,
});

pinned(eventPruneWorkflow);
export async function eventPruneWorkflow(input: EventPruneInput): Promise<EventPruneResult> {
  setCurrentDetails(
    `**Event prune** — deleting the events every consumer has had for ${input.safety_minutes} minutes ` +
      `(a customer's history after ${input.history_days} days); a consumer ${input.cap_hours} hours behind ` +
      'no longer holds it back',
  );
  try {
    const result = await pruneEvents(input);
    const behind = result.consumers.filter((c) => c.behind_cap);
    const { transient, history } = result.deleted;
    setCurrentDetails(
      `**Event prune** — done: ${transient} transient events before ${result.horizon} and ${history} before ` +
        `${result.history_cutoff} deleted` +
        (behind.length === 0
          ? ''
          : `. **Past the cap**: ${behind
              .map(
                (c) =>
                  `${c.id} at ${c.position ?? 'the start of the feed'} (` +
                  (c.holds_back
                    ? 'still holding pruning back: it fills the log of record'
                    : 'no longer holding pruning back: what it had not read is gone from the graph, Kafka has it') +
                  ')',
              )
              .join(', ')}`),
    );
    if (behind.length > 0)
      log.warn('event consumers past the prune cap no longer hold pruning back', {
        consumers: behind.map((c) => c.id),
        cap_hours: input.cap_hours,
      });
    log.info('events pruned', { ...result.deleted, horizon: result.horizon, history_cutoff: result.history_cutoff });
    markEventPruneFinished(behind.length);
    return result;
  } catch (err) {
    // Cancelled by ops: Canceled in the UI, not a failure to alert on.
    if (isCancellation(err) || !(err instanceof ActivityFailure)) throw err;
    const why = err.cause?.message ?? err.message;
    throw ApplicationFailure.create({
      type: EVENT_PRUNE_FAILED,
      message:
        `pruning the events every consumer has failed after every retry (${why}); the events deleted before ` +
        'it stay deleted, and the next run tries again',
      nonRetryable: true,
      cause: err,
    });
  }
}
