/**
 * Payment recovery from the api's side: Synapse reports a failure (signal-with-start of
 * `paymentFailed`), anyone with the scope reads a recovery's status, and a new card in the
 * wallet wakes the customer's running recoveries.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { InvalidStateError, NotFoundError } from '../../graph/errors';
import { erasureWorkflowId } from '../../temporal/erasure';
import { getPaymentMethodsByCustomer } from '../../graph/paymentMethods';
import {
  paymentFailedSignal,
  paymentMethodAddedSignal,
  RECOVERY_WORKFLOW_TYPE,
  recoveryStatusQuery,
  recoveryWorkflowId,
  resolveAttentionUpdate,
  type AttentionDecision,
  type PaymentFailure,
  initialRecoveryStatus,
  type RecoveryStatus,
} from '../../temporal/recovery';
import { refusalError, updateRefusalOf } from '../../temporal/updates';
import { runningCustomerWorkflows } from '../../temporal/connection';
import { personaCustomerId } from '../../temporal/searchAttributes';
import type { paymentRecoveryWorkflow } from '../../workflows/recovery';
import { fromMinorUnits } from '../../payments/money';
import type { ApiDeps } from '../deps';

export async function reportPaymentFailure(deps: ApiDeps, f: PaymentFailure): Promise<{ workflow_id: string }> {
  const wallet = await getPaymentMethodsByCustomer(deps.graph, f.customer_id);
  if (!wallet.some((pm) => pm.id === f.payment_method_id))
    throw new NotFoundError('PaymentMethod', f.payment_method_id);
  const workflowId = recoveryWorkflowId(f.payment_id);
  const amount = `${fromMinorUnits(f.amount, f.currency)} ${f.currency}`;
  // A customer being erased starts no new recovery: its key would be destroyed while it ran (the
  // erasure checked the customer's workflows before). Fraud outcomes are never held back like this.
  await refuseWhileErasing(deps, f.customer_id);
  // Its history is encrypted under a key of its own, the customer's: erasure destroys it.
  await deps.payloads.provision(workflowId, f.customer_id);
  try {
    await deps.temporal.client.workflow.signalWithStart<typeof paymentRecoveryWorkflow, [PaymentFailure]>(
      RECOVERY_WORKFLOW_TYPE,
      {
        workflowId,
        taskQueue: deps.temporal.taskQueue,
        args: [{ dunningSchedule: deps.recovery.dunningSchedule }],
        signal: paymentFailedSignal,
        signalArgs: [f],
        // A recovery that already finished is not started again: the same report changes nothing.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [{ key: personaCustomerId, value: f.customer_id }],
        staticSummary: `Recover payment ${f.payment_id} of ${amount} after a declined charge (${f.decline_code})`,
      },
    );
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return { workflow_id: workflowId };
}

async function refuseWhileErasing(deps: ApiDeps, customerId: string): Promise<void> {
  try {
    const erasure = await deps.temporal.client.workflow.getHandle(erasureWorkflowId(customerId)).describe();
    if (erasure.status.name === 'RUNNING')
      throw new InvalidStateError(`customer ${customerId} is being erased: no new payment recovery may start`);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
}

/** Recoveries started before `attention`, `stop_reason` and `undelivered` existed answer without them. */
function complete(status: Partial<RecoveryStatus> & Pick<RecoveryStatus, 'state'>): RecoveryStatus {
  return { ...initialRecoveryStatus(), ...status };
}

export async function recoveryStatus(deps: ApiDeps, paymentId: string): Promise<RecoveryStatus> {
  try {
    return complete(
      await deps.temporal.client.workflow.getHandle(recoveryWorkflowId(paymentId)).query(recoveryStatusQuery),
    );
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError('PaymentRecovery', paymentId);
    throw err;
  }
}

/**
 * Ops' answer to a recovery in `needs_attention`, as a Workflow Update: its validator refuses
 * (409, with the workflow's reason) a recovery that does not need attention or was answered
 * already, so two ops deciding at once get one 200 and one 409.
 */
export async function resolveAttention(
  deps: ApiDeps,
  paymentId: string,
  decision: AttentionDecision,
): Promise<RecoveryStatus> {
  const handle = deps.temporal.client.workflow.getHandle(recoveryWorkflowId(paymentId));
  try {
    return complete(await handle.executeUpdate(resolveAttentionUpdate, { args: [decision] }));
  } catch (err) {
    const refusal = await updateRefusalOf(err, handle);
    if (!refusal) throw err;
    if (refusal.kind === 'not_found') throw new NotFoundError('PaymentRecovery', paymentId);
    throw refusalError(refusal, `payment recovery ${paymentId}`);
  }
}

/**
 * Wakes every running recovery of the customer: a new method means "retry now". Visibility lags,
 * so one listed as running may have ended since: it is skipped, and the others are still told.
 * Answers the ids that were told.
 */
export async function signalNewPaymentMethod(
  deps: ApiDeps,
  customerId: string,
  paymentMethodId: string,
): Promise<string[]> {
  const told: string[] = [];
  for (const id of await runningCustomerWorkflows(deps.temporal.client, customerId, { type: RECOVERY_WORKFLOW_TYPE })) {
    try {
      await deps.temporal.client.workflow
        .getHandle(id)
        .signal(paymentMethodAddedSignal, { payment_method_id: paymentMethodId });
      told.push(id);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return told;
}
