/** The card-expiry scan from the api's side: start one on demand, read a scan's progress. */
import { InvalidInputError, InvalidStateError } from '../../graph/errors';
import { dateInTimeZone } from '../../payments/expiry';
import {
  EXPIRY_SCAN_WORKFLOW_TYPE,
  expiryScanProgressQuery,
  expiryScanWorkflowId,
  type ExpiryScanProgress,
} from '../../temporal/expiry';
import type { expiryScanWorkflow } from '../../workflows/expiry';
import type { ApiDeps } from '../deps';
import { orNotFound, queryWithin } from './refusals';
import { taskQueueFor } from '../../temporal/taskQueues';
import { waitWithinBudget } from '../deadlines';

/** A scan on demand: as of which day (default today), who asks and why. */
export interface ExpiryScanRequest {
  as_of?: string | undefined;
  reason: string;
  requested_by: string | null;
}

/**
 * Starts `expiry-scan-<as_of>` (default: today in the scan's time zone), for a reason that is kept
 * with it (the workflow's input, summary and progress) beside who asked. `as_of` is at most today
 * in the scan's time zone: a scan expires every card whose month ended before its day (as of the
 * 1st, the whole of last month's), and a card expired too early comes back only when the account
 * updater renews it. While a scan
 * for that day runs, asking again returns the same run; once it has finished, a new run starts —
 * and, the scan being idempotent, sends nothing already sent.
 */
export async function startExpiryScan(
  deps: ApiDeps,
  req: ExpiryScanRequest,
): Promise<{ workflow_id: string; as_of: string; reason: string; requested_by: string | null }> {
  const today = dateInTimeZone(new Date(), deps.expiry.time_zone);
  const day = req.as_of ?? today;
  if (day > today)
    throw new InvalidInputError(
      'as_of',
      `must be at most ${today} (today in ${deps.expiry.time_zone}): a scan as of a later day would expire ` +
        'cards that are still valid',
    );
  const reason = req.reason.trim();
  if (!reason) throw new InvalidInputError('reason', 'say why the scan runs now');
  const workflowId = expiryScanWorkflowId(day);
  const requested = { by: req.requested_by, reason };
  await deps.temporal.client.workflow.start<typeof expiryScanWorkflow>(EXPIRY_SCAN_WORKFLOW_TYPE, {
    workflowId,
    taskQueue: taskQueueFor(deps.temporal.taskQueues, EXPIRY_SCAN_WORKFLOW_TYPE),
    args: [{ ...deps.expiry, as_of: day, requested }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    staticSummary:
      `Card-expiry scan as of ${day}, started on demand by ${req.requested_by ?? 'an ops token without a subject'} ` +
      `(${reason}): warns customers 60, 30 and 7 days before their default card expires, and marks expired cards`,
  });
  deps.logger.info(
    { workflowId, asOf: day, requestedBy: req.requested_by, reason },
    'card-expiry scan started on demand',
  );
  return { workflow_id: workflowId, as_of: day, reason, requested_by: req.requested_by };
}

/**
 * A scan's progress: a running scan's by its query (503 when no worker answers it within the
 * request's deadline), a completed one's from its result in the history; one that ended otherwise
 * has none (409). A scan is pinned to the
 * build that ran it (workflows/versioning.ts), whose workers stop once its version has drained:
 * after that no worker could answer a query of a finished scan.
 */
export async function expiryScanProgress(deps: ApiDeps, workflowId: string): Promise<ExpiryScanProgress> {
  const handle = deps.temporal.client.workflow.getHandle<typeof expiryScanWorkflow>(workflowId);
  return orNotFound('ExpiryScan', workflowId, async () => {
    const { status } = await handle.describe();
    if (status.name === 'RUNNING')
      return queryWithin(handle, expiryScanProgressQuery, waitWithinBudget(deps, deps.limits.requestDeadlineMs));
    if (status.name === 'COMPLETED') return handle.result();
    // Failed, cancelled, terminated or timed out: no result, and no worker may be left to ask.
    throw new InvalidStateError(
      `expiry scan ${workflowId} ended ${status.name.toLowerCase()} without a result: its history in the Temporal ` +
        'UI says how far it got; start the scan again (POST /api/v1/admin/expiry-scan)',
    );
  });
}
