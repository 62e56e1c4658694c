/**
 * Onboarding — workflow id `onboarding-<Idempotency-Key>`.
 *   1. resolve the identity and write the customer with everything linked to it, in one graph
 *      transaction (idempotent per onboarding: a retry returns the first result);
 *   2. tag the workflow with PersonaCustomerId as soon as the customer id is known;
 *   3. ask Chimera for a behavioural profile — retried, and never able to fail onboarding.
 */
import { log, upsertSearchAttributes, uuid4, workflowInfo } from '@temporalio/workflow';
import type { AgentActivities } from '../activities/agents';
import type { OnboardingActivities } from '../activities/onboarding';
import type { OnboardingWorkflowInput, OnboardingWorkflowResult } from '../temporal/onboarding';
import { domainFailureOf } from '../temporal/failures';
import { personaCustomerId } from '../temporal/searchAttributes';
import { activitiesWithSummaries, agentCall, graphWrite } from './activityOptions';
import { countOnboarding } from './metrics';

const graph = activitiesWithSummaries<OnboardingActivities>(graphWrite, {
  onboardCustomer: (plan) =>
    `Resolve the identity and write the ${plan.customer.segment} customer with everything linked to it, ` +
    'in one transaction',
});
const agents = activitiesWithSummaries<Pick<AgentActivities, 'requestBehavioralProfile'>>(agentCall, {
  requestBehavioralProfile: (req) =>
    `Ask Chimera to start a behavioural profile for customer ${req.customer_id} ` +
    '(optional: onboarding goes on without it)',
});

export async function onboardingWorkflow({ plan }: OnboardingWorkflowInput): Promise<OnboardingWorkflowResult> {
  const { workflowId } = workflowInfo();
  let result;
  try {
    result = await graph.onboardCustomer(plan, { onboardingId: workflowId, customerId: uuid4() });
  } catch (err) {
    countOnboarding(domainFailureOf(err)?.code === 'invalid_input' ? 'rejected' : 'failed');
    throw err;
  }
  upsertSearchAttributes([{ key: personaCustomerId, value: result.customer_id }]);
  countOnboarding(result.outcome);
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
