/** The card-expiry scan from the api's side: start one on demand, read a scan's progress. */
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

/**
 * Starts `expiry-scan-<as_of>` (default: today in the scan's time zone). While a scan for that
 * day runs, asking again returns the same run; once it has finished, a new run starts — and,
 * the scan being idempotent, sends nothing already sent.
 */
export async function startExpiryScan(deps: ApiDeps, asOf?: string): Promise<{ workflow_id: string; as_of: string }> {
  const day = asOf ?? dateInTimeZone(new Date(), deps.expiry.time_zone);
  const workflowId = expiryScanWorkflowId(day);
  await deps.temporal.client.workflow.start<typeof expiryScanWorkflow>(EXPIRY_SCAN_WORKFLOW_TYPE, {
    workflowId,
    taskQueue: taskQueueFor(deps.temporal.taskQueues, EXPIRY_SCAN_WORKFLOW_TYPE),
    args: [{ ...deps.expiry, as_of: day }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    staticSummary:
      `Card-expiry scan as of ${day}, started on demand: warns customers 60, 30 and 7 days before ` +
      'their default card expires, and marks expired cards',
  });
  return { workflow_id: workflowId, as_of: day };
}

/** A scan's progress (its query), running or finished: 503 when no worker answers it within the request's deadline. */
export async function expiryScanProgress(deps: ApiDeps, workflowId: string): Promise<ExpiryScanProgress> {
  const handle = deps.temporal.client.workflow.getHandle(workflowId);
  return orNotFound('ExpiryScan', workflowId, () =>
    queryWithin(handle, expiryScanProgressQuery, deps.limits.requestDeadlineMs),
  );
}
