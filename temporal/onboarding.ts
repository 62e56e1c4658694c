/** The onboarding workflow's contract, shared by the api (which starts it) and the worker. */
import { defineUpdate } from '@temporalio/workflow';
import type { OnboardingResult } from '../graph/onboarding';
import type { OnboardingPlan } from '../graph/onboardingRequest';

export const ONBOARDING_WORKFLOW_TYPE = 'onboardingWorkflow';

export interface OnboardingWorkflowInput {
  plan: OnboardingPlan;
}

export interface OnboardingWorkflowResult extends Omit<OnboardingResult, 'link_refused'> {
  workflow_id: string;
  /** False when Chimera could not be asked for a behavioural profile (onboarding still succeeded). */
  behavioral_profile_requested: boolean;
}

/** What a waiting caller gets: the customer, as soon as it is written. */
export interface OnboardingWritten extends Omit<OnboardingResult, 'link_refused'> {
  workflow_id: string;
}

/**
 * Completes as soon as the customer is written (or fails with the graph's refusal), while the
 * workflow goes on with Chimera's request in the background: `POST /onboarding?wait=true` sends
 * it with the start (Update-with-Start), so a Chimera brownout never delays the answer.
 */
export const customerWrittenUpdate = defineUpdate<OnboardingWritten>('customerWritten');

/**
 * The one-line summary ops see in the Temporal UI: what is being onboarded, in words, without
 * personal data.
 */
export function onboardingSummary(plan: OnboardingPlan): string {
  const parts: string[] = [];
  const ids = plan.digital_identifiers.map(
    (i) => `${i.is_verified ? 'verified' : 'unverified'} ${i.type.replace('_', ' ')}`,
  );
  parts.push(ids.length > 0 ? ids.join(' and ') : 'no email or phone');
  const pm = plan.payment_method;
  if (pm)
    parts.push(
      pm.type === 'card' ? `${pm.brand ?? 'card'} card ending ${pm.last_four ?? '????'}` : pm.type.replace('_', ' '),
    );
  if (plan.device) parts.push('a device');
  if (plan.address) parts.push(`a ${plan.address.type} address in ${plan.address.country}`);
  return `Onboard a ${plan.customer.segment} customer with ${parts.join(', ')}`;
}
