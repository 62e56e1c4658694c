/**
 * Erasure — workflow id `erasure-<customer id>`, started by `DELETE /api/v1/customers/{id}`.
 * Stops the customer's running workflows — a recovery with its `cancel` signal, so that a charge
 * in flight is finished and recorded rather than abandoned, and waits (bounded) for recoveries to
 * end; any other workflow (a review waiting, an onboarding) is cancelled — then erases the customer
 * in the graph (graph/erasure.ts: its events in batches, the rest in one transaction). Asking
 * again is a no-op. A recovery visibility did not list yet (it lags) cannot charge afterwards:
 * the graph refuses a charge for an erased customer.
 */
import { getExternalWorkflowHandle, log, patched, workflowInfo } from '@temporalio/workflow';
import type { ErasureActivities } from '../activities/erasure';
import type { ErasureOutcome } from '../temporal/erasure';
import { cancelRecoverySignal, recoveryWorkflowId } from '../temporal/recovery';
import { activitiesWithSummaries, graphWrite } from './activityOptions';

/** The patch that stops recoveries with a signal instead of a hard cancel (docs/workflows.md). */
export const ERASURE_STOPS_RECOVERIES_GRACEFULLY = 'erasure-stops-recoveries-gracefully';
const RECOVERY_PREFIX = recoveryWorkflowId('');
/**
 * The patch that gives the graph erasure time for a long history: its events are emptied in
 * batches (graph/erasure.ts), the activity heartbeating after each.
 */
export const ERASURE_IN_BATCHES = 'erasure-in-batches';
/** How long an erasure waits for the customer's recoveries to finish the charge in flight. */
const RECOVERY_STOP_WAIT_MS = 120_000;

const activities = activitiesWithSummaries<ErasureActivities>(graphWrite, {
  listRunningCustomerWorkflows: (req) =>
    `Find customer ${req.customer_id}'s running workflows, to stop them before the erasure`,
  awaitWorkflowsClosed: (req) =>
    `Wait up to ${Math.round(req.within_ms / 1000)} s for ${req.workflow_ids.length} payment recoveries ` +
    'to finish the charge in flight and stop',
  eraseCustomer: (req) =>
    `Erase customer ${req.customer_id}: empty its events in batches, then identifiers, unshared addresses ` +
    'and devices, payment methods in one transaction; keep a tombstone',
});

export async function erasureWorkflow(input: { customer_id: string }): Promise<ErasureOutcome> {
  const { workflowId } = workflowInfo();
  const graceful = patched(ERASURE_STOPS_RECOVERIES_GRACEFULLY);
  const running = await activities.listRunningCustomerWorkflows({ customer_id: input.customer_id, except: workflowId });
  const cancelled: string[] = [];
  const recoveries: string[] = [];
  for (const id of running) {
    try {
      const other = getExternalWorkflowHandle(id);
      if (graceful && id.startsWith(RECOVERY_PREFIX)) {
        await other.signal(cancelRecoverySignal, { reason: `customer ${input.customer_id} is being erased` });
        recoveries.push(id);
      } else await other.cancel();
      cancelled.push(id);
    } catch (err) {
      log.info(`workflow ${id} not cancelled: it had finished`, {
        otherWorkflowId: id,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  if (recoveries.length) {
    const still = await activities.awaitWorkflowsClosed.executeWithOptions(
      { startToCloseTimeout: RECOVERY_STOP_WAIT_MS + 60_000, heartbeatTimeout: '20 seconds' },
      [{ workflow_ids: recoveries, within_ms: RECOVERY_STOP_WAIT_MS }],
    );
    if (still.length)
      log.warn('payment recoveries still running at erasure; the graph refuses them any further charge', {
        customerId: input.customer_id,
        running: still,
      });
  }
  const result = patched(ERASURE_IN_BATCHES)
    ? await activities.eraseCustomer.executeWithOptions(
        { ...graphWrite, startToCloseTimeout: '1 hour', heartbeatTimeout: '1 minute' },
        [{ customer_id: input.customer_id }],
      )
    : await activities.eraseCustomer({ customer_id: input.customer_id });
  log.info(result.erased ? 'customer erased' : 'customer was erased before', {
    customerId: input.customer_id,
    cancelled: cancelled.length,
  });
  return { customer_id: input.customer_id, cancelled, erased: result.erased, deleted: result.deleted };
}
