/**
 * Onboarding — workflow id `onboarding-<Idempotency-Key>`.
 *   1. resolve the identity and write the customer with everything linked to it, in one graph
 *      transaction (idempotent per onboarding: a retry returns the first result);
 *   2. tag the workflow with PersonaCustomerId as soon as the customer id is known;
 *   3. ask Chimera for a behavioural profile — retried, and never able to fail onboarding.
 * The `customerWritten` Update answers a waiting caller right after step 1 (or with step 1's
 * refusal); step 3 goes on after it. Step 1 is a
 * local activity: the worker running the first workflow task
 * writes the customer within it, so the answer is one workflow task away from the request; past
 * its three attempts, the ordinary activity takes over (graphWrite's retries).
 */
import {
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { AgentActivities } from '../activities/agents';
import type { OnboardingActivities } from '../activities/onboarding';
import {
  customerWrittenUpdate,
  type OnboardingWorkflowInput,
  type OnboardingWorkflowResult,
  type OnboardingWritten,
} from '../temporal/onboarding';
import { domainFailureOf } from '../temporal/failures';
import { personaCustomerId } from '../temporal/searchAttributes';
import {
  activitiesWithSummaries,
  agentCall,
  graphWrite,
  graphWriteLocal,
  localActivitiesWithSummaries,
  type ActivitySummaries,
} from './activityOptions';
import { countLinkRefused, countOnboarding } from './metrics';
import { pinned } from './versioning';

const writeSummary: ActivitySummaries<OnboardingActivities> = {
  onboardCustomer: (plan) =>
    `Resolve the identity and write the ${plan.customer.segment} customer with everything linked to it, ` +
    'in one transaction',
};
const graph = activitiesWithSummaries<OnboardingActivities>(graphWrite, writeSummary);
const localGraph = localActivitiesWithSummaries<OnboardingActivities>(graphWriteLocal, writeSummary);
const agents = activitiesWithSummaries<Pick<AgentActivities, 'requestBehavioralProfile'>>(agentCall, {
  requestBehavioralProfile: (req) =>
    `Ask Chimera to start a behavioural profile for customer ${req.customer_id} ` +
    '(optional: onboarding goes on without it)',
});

pinned(onboardingWorkflow);
export async function onboardingWorkflow({ plan }: OnboardingWorkflowInput): Promise<OnboardingWorkflowResult> {
  const { workflowId } = workflowInfo();
  /** What the `customerWritten` Update answers: the customer, or the graph's refusal. */
  const outcome: { written?: OnboardingWritten; refused?: Error } = {};
  setHandler(customerWrittenUpdate, async () => {
    await condition(() => outcome.written !== undefined || outcome.refused !== undefined);
    if (outcome.refused) throw outcome.refused; // the activity's failure: its domain details reach the caller
    return outcome.written as OnboardingWritten;
  });
  const ids = { onboardingId: workflowId, customerId: uuid4() };
  /** Locally first; past its few attempts (Neo4j away), the ordinary activity goes on retrying. */
  const writeCustomer = async () => {
    try {
      return await localGraph.onboardCustomer(plan, ids);
    } catch (err) {
      if (domainFailureOf(err) || isCancellation(err)) throw err;
      log.warn('the customer could not be written within the first workflow task; retried as an activity', {
        error: err instanceof Error ? err.message : String(err),
      });
      return graph.onboardCustomer(plan, ids);
    }
  };
  let written: Awaited<ReturnType<typeof writeCustomer>>;
  try {
    written = await writeCustomer();
  } catch (err) {
    countOnboarding(domainFailureOf(err)?.code === 'invalid_input' ? 'rejected' : 'failed');
    // A waiting caller hears the refusal from its Update before the workflow fails.
    outcome.refused = err instanceof Error ? err : new Error(String(err));
    await condition(allHandlersFinished);
    throw err;
  }
  // Why a link was refused is counted, never answered nor logged (graph/onboarding.ts).
  const { link_refused: linkRefused, ...result } = written;
  outcome.written = { ...result, workflow_id: workflowId };
  upsertSearchAttributes([{ key: personaCustomerId, value: result.customer_id }]);
  countOnboarding(result.outcome);
  if (linkRefused) countLinkRefused(linkRefused);
  log.info(`customer ${result.outcome}`, {
    customerId: result.customer_id,
    outcome: result.outcome,
    possibleMatches: result.possible_matches.length,
  });

  let behavioralProfileRequested = true;
  try {
    await agents.requestBehavioralProfile({
      customer_id: result.customer_id,
      onboarding_id: workflowId,
      request_id: `${workflowId}:behavioral-profile`,
    });
  } catch (err) {
    behavioralProfileRequested = false;
    log.warn('Chimera could not be asked for a behavioural profile; onboarding goes on without it', {
      customerId: result.customer_id,
      error: err instanceof Error ? err.message : String(err),
    });
  }
  return { ...result, workflow_id: workflowId, behavioral_profile_requested: behavioralProfileRequested };
}
