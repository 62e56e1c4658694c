/**
 * Card-expiry scan — started daily by the Schedule `persona-expiry-scan`, or on demand as
 * `expiry-scan-<as_of>`. Pages through the active cards that expire up to the end of the 60-day
 * window, one `scanExpiryBatch` activity per page (cursor in, next cursor out), in `lanes` slices
 * of the card-id space side by side. Cards past their expiry month become `expired`; a customer
 * whose default card is 60, 30 or 7 days from expiry is warned once per card and stage. After
 * `batches_per_run` batches the workflow continues as new with its cursors and totals, so its
 * history stays small on any graph. The `expiryScanProgress` query and the UI's current details
 * report progress.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { ExpiryActivities } from '../activities/expiry';
import { dateInTimeZone, expiryLabel } from '../payments/expiry';
import {
  emptyStageCounts,
  expiryLanes,
  expiryScanProgressQuery,
  type ExpiryLane,
  type ExpiryScanInput,
  type ExpiryScanProgress,
} from '../temporal/expiry';
import { activitiesWithSummaries, expiryBatch } from './activityOptions';
import { countExpiryBatch, markExpiryScanFinished } from './metrics';
import { pinned } from './versioning';

const { scanExpiryBatch } = activitiesWithSummaries<ExpiryActivities>(expiryBatch, {
  scanExpiryBatch: (req) =>
    `Read up to ${req.batch_size} cards expiring by ${req.as_of} + 60 days; expire the past ones, warn at 60/30/7 days`,
});

/** Set by Temporal on a run a Schedule started: when it was due, not when it happened to start. */
const SCHEDULED_START_TIME = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

pinned(expiryScanWorkflow);
export async function expiryScanWorkflow(input: ExpiryScanInput): Promise<ExpiryScanProgress> {
  // A scheduled run that started late (caught up after an outage, or buffered behind a long
  // scan) still scans as of the day it was due.
  const due = workflowInfo().typedSearchAttributes.get(SCHEDULED_START_TIME);
  const asOf = input.as_of ?? dateInTimeZone(due ?? new Date(), input.time_zone);
  const progress: ExpiryScanProgress = input.progress ?? {
    as_of: asOf,
    state: 'scanning',
    scanned: 0,
    notified: emptyStageCounts(),
    already_notified: 0,
    unreachable: 0,
    rejected: 0,
    expired: 0,
    batches: 0,
    runs: 0,
    lanes: expiryLanes(input.lanes),
    started_at: new Date().toISOString(),
    finished_at: null,
    requested: input.requested ?? null,
  };
  progress.runs++;
  setHandler(expiryScanProgressQuery, () => progress);
  report(progress);

  // Each lane pages its slice of the ids on its own; together they share this run's batch budget.
  let budget = input.batches_per_run;
  // Numbered as they start (lanes run side by side, so they finish in any order).
  let started = progress.batches;
  const runLane = async (lane: ExpiryLane): Promise<void> => {
    while (!lane.done && budget > 0) {
      budget--;
      const result = await scanExpiryBatch.executeWithOptions(
        { ...expiryBatch, summary: `Batch ${++started}: read up to ${input.batch_size} cards, ${where(lane)}` },
        [{ as_of: asOf, cursor: lane.cursor, id_from: lane.from, id_to: lane.to, batch_size: input.batch_size }],
      );
      progress.batches++;
      countExpiryBatch(result.notified, result.expired);
      progress.scanned += result.scanned;
      progress.expired += result.expired;
      progress.already_notified += result.already_notified;
      progress.unreachable += result.unreachable;
      progress.rejected += result.rejected;
      progress.renewed = (progress.renewed ?? 0) + (result.renewed ?? 0);
      for (const stage of ['60', '30', '7'] as const) progress.notified[stage] += result.notified[stage];
      lane.cursor = result.next_cursor;
      lane.done = result.next_cursor === null;
      report(progress);
    }
  };
  await Promise.all(progress.lanes.map(runLane));

  if (progress.lanes.every((l) => l.done)) {
    progress.state = 'done';
    progress.finished_at = new Date().toISOString();
    markExpiryScanFinished();
    report(progress);
    log.info('expiry scan finished', { asOf, ...totals(progress) });
    return progress;
  }
  // Keep the history bounded: hand the lanes' cursors and the totals to a fresh run.
  await condition(allHandlersFinished);
  log.info('expiry scan continues as new', { asOf, batches: progress.batches, scanned: progress.scanned });
  return continueAsNew<typeof expiryScanWorkflow>({ ...input, as_of: asOf, progress });
}

function where(lane: ExpiryLane): string {
  const ids = `ids ${lane.from || '…'}–${lane.to ?? '…'}`;
  const { cursor } = lane;
  if (lane.done) return `${ids}: done`;
  if (cursor === null) return `${ids} from the earliest expiry`;
  return cursor.id === null
    ? `${ids} after expiry month ${expiryLabel(cursor.year, cursor.month)}`
    : `${ids} expiring ${expiryLabel(cursor.year, cursor.month)} after ${cursor.id}`;
}

function totals(p: ExpiryScanProgress): Record<string, number> {
  return {
    scanned: p.scanned,
    expired: p.expired,
    warned60: p.notified['60'],
    warned30: p.notified['30'],
    warned7: p.notified['7'],
    alreadyWarned: p.already_notified,
    unreachable: p.unreachable,
    renewed: p.renewed ?? 0,
  };
}

/** What ops read in the Temporal UI while the scan runs and after it ends. */
function report(p: ExpiryScanProgress): void {
  const { workflowId } = workflowInfo();
  setCurrentDetails(
    [
      `**Card-expiry scan as of ${p.as_of}** — ` +
        (p.state === 'done'
          ? `done at ${p.finished_at}`
          : `scanning, ${p.lanes.filter((l) => l.done).length} of ${p.lanes.length} lanes done`),
      '',
      `- cards read: ${p.scanned} in ${p.batches} batches (run ${p.runs} of workflow ${workflowId})`,
      `- warned: ${p.notified['60']} at 60 days, ${p.notified['30']} at 30 days, ${p.notified['7']} at 7 days`,
      `- already warned before: ${p.already_notified}; no email or phone: ${p.unreachable}; ` +
        `refused by the receiver: ${p.rejected}`,
      `- renewed by the account updater first (not warned): ${p.renewed ?? 0}`,
      `- marked expired: ${p.expired}`,
    ].join('\n'),
  );
}
