/**
 * Fraud outcomes from the api's side: Chimera reports one (checked against the graph, then
 * `fraud-outcome-<outcome_id>` is started; a repeat is a no-op), anyone with the scope reads its
 * status, and ops resolve a suspension's review.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { checkFraudOutcome, type FraudOutcomeReport, type FraudReporter } from '../../graph/fraud';
import {
  FRAUD_OUTCOME_WORKFLOW_TYPE,
  fraudOutcomeStatusQuery,
  fraudOutcomeWorkflowId,
  resolveReviewUpdate,
  type FraudOutcomeStatus,
  type ReviewResolution,
} from '../../temporal/fraud';
import { personaCustomerId } from '../../temporal/searchAttributes';
import type { fraudOutcomeWorkflow } from '../../workflows/fraud';
import type { Principal } from '../auth';
import type { ApiDeps } from '../deps';
import { mergedInto } from './mergedIds';
import { decisionUpdateId, orNotFound, queryWithin, updateOrRefusal } from './refusals';
import { registerOpenProcess } from '../../graph/openProcesses';
import { taskQueueFor } from '../../temporal/taskQueues';
import { waitWithinBudget } from '../deadlines';

const SUMMARY: Record<FraudOutcomeReport['outcome'], string> = {
  challenge_passed: 'passed a fraud challenge: raise the device’s trust',
  confirmed_fraud:
    'confirmed fraud: compromise the payment method, distrust the device, suspend the customer pending review',
  account_takeover: 'account takeover: suspend the customer pending review, distrust the device, alert the customer',
  false_positive: 'false positive: put back what the earlier fraud outcome changed',
};

/** Who reports: ops (the `ops` scope) or an agent. */
export function reporterOf(principal: Principal): FraudReporter {
  return principal.scopes.has('ops') ? 'ops' : 'agent';
}

/**
 * Starts the outcome's workflow. `reported_by`: `ops` for an ops token (a false positive of ops
 * may reverse what ops decided on review), `agent` for everyone else — REST and gRPC agents, and
 * Chimera over Kafka.
 */
export async function reportFraudOutcome(
  deps: ApiDeps,
  reported: FraudOutcomeReport,
  reported_by: FraudReporter,
): Promise<{ workflow_id: string; merged_into?: string }> {
  const workflowId = fraudOutcomeWorkflowId(reported.outcome_id);
  // A repeat of a known outcome is answered without checking it again (it may have changed what it checked).
  try {
    await deps.temporal.client.workflow.getHandle(workflowId).describe();
    return { workflow_id: workflowId };
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  // A report naming a merged customer is about its survivor (the check follows the tombstone).
  const { customer_id } = await checkFraudOutcome(deps.graph, reported);
  const report = customer_id === reported.customer_id ? reported : { ...reported, customer_id };
  // Its history is encrypted under a key of its own, the customer's: erasure destroys it.
  await deps.payloads.provision(workflowId, report.customer_id);
  try {
    // It joins the customer's open processes before it starts: an erasure then waits for it.
    await registerOpenProcess(deps.graph, workflowId, report.customer_id);
    await deps.temporal.client.workflow.start<typeof fraudOutcomeWorkflow>(FRAUD_OUTCOME_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: taskQueueFor(deps.temporal.taskQueues, FRAUD_OUTCOME_WORKFLOW_TYPE),
      args: [
        {
          report,
          reported_by,
          trust_step: deps.fraud.trustStep,
          review_days: deps.fraud.reviewDays,
          ...(deps.fraud.reviewDue ? { review_due: deps.fraud.reviewDue } : {}),
        },
      ],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [{ key: personaCustomerId, value: report.customer_id }],
      staticSummary: `Fraud outcome ${report.outcome_id} — ${SUMMARY[report.outcome]}`,
    });
  } catch (err) {
    // Not started by this report: the id may be another customer's, so this process forgets whose it said.
    deps.payloads.release?.(workflowId, report.customer_id);
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return { workflow_id: workflowId, ...mergedInto(report === reported ? null : customer_id) };
}

/**
 * The outcome's status, its workflow's query: 503 when no worker answers it within the request's
 * deadline (nothing else records it).
 */
export async function fraudOutcomeStatus(deps: ApiDeps, outcomeId: string): Promise<FraudOutcomeStatus> {
  const handle = deps.temporal.client.workflow.getHandle(fraudOutcomeWorkflowId(outcomeId));
  return orNotFound('FraudOutcome', outcomeId, () =>
    queryWithin(handle, fraudOutcomeStatusQuery, waitWithinBudget(deps, deps.limits.requestDeadlineMs)),
  );
}

/**
 * Ops' decision on an outcome waiting for review, as a Workflow Update: the workflow's validator
 * refuses it (409, with the reason: not awaiting review, or decided already) and otherwise answers
 * once the decision is applied. Two ops deciding at once: one 200, one 409. An outcome is reviewed
 * once, so its decision goes under an id of its own (`decisionUpdateId`): the same ops sending the
 * same decision again (an answer lost) get the first one's answer.
 */
export async function resolveReview(
  deps: ApiDeps,
  outcomeId: string,
  resolution: ReviewResolution,
  requester: string | null,
): Promise<FraudOutcomeStatus> {
  const handle = deps.temporal.client.workflow.getHandle(fraudOutcomeWorkflowId(outcomeId));
  const updateId = decisionUpdateId('review', requester, resolution);
  return updateOrRefusal(
    handle,
    () => handle.executeUpdate(resolveReviewUpdate, { args: [resolution], ...(updateId ? { updateId } : {}) }),
    { entity: 'FraudOutcome', id: outcomeId, what: `fraud outcome ${outcomeId}` },
  );
}
