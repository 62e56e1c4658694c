/**
 * Erasure — workflow id `erasure-<customer id>`, started by `DELETE /api/v1/customers/{id}`.
 * Cancels the customer's running workflows (a recovery stops dunning, a review stops waiting),
 * then erases the customer in one graph transaction (graph/erasure.ts). Asking again is a no-op.
 */
import { getExternalWorkflowHandle, log, workflowInfo } from '@temporalio/workflow';
import type { ErasureActivities } from '../activities/erasure';
import type { ErasureOutcome } from '../temporal/erasure';
import { activitiesWithSummaries, graphWrite } from './activityOptions';

const activities = activitiesWithSummaries<ErasureActivities>(graphWrite, {
  listRunningCustomerWorkflows: (req) =>
    `Find customer ${req.customer_id}'s running workflows, to cancel them before the erasure`,
  eraseCustomer: (req) =>
    `Erase customer ${req.customer_id} in one transaction: identifiers, unshared addresses and devices, ` +
    'payment methods; keep a tombstone',
});

export async function erasureWorkflow(input: { customer_id: string }): Promise<ErasureOutcome> {
  const { workflowId } = workflowInfo();
  const running = await activities.listRunningCustomerWorkflows({ customer_id: input.customer_id, except: workflowId });
  const cancelled: string[] = [];
  for (const id of running) {
    try {
      await getExternalWorkflowHandle(id).cancel();
      cancelled.push(id);
    } catch (err) {
      log.info(`workflow ${id} not cancelled: it had finished`, {
        otherWorkflowId: id,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  const result = await activities.eraseCustomer({ customer_id: input.customer_id });
  log.info(result.erased ? 'customer erased' : 'customer was erased before', {
    customerId: input.customer_id,
    cancelled: cancelled.length,
  });
  return { customer_id: input.customer_id, cancelled, erased: result.erased, deleted: result.deleted };
}
