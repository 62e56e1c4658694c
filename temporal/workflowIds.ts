/** Workflow ids: meaningful, so a duplicate start is rejected and ops can read them. */

/** Idempotency keys are echoed into workflow ids: keep them to a safe alphabet and length. */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

export function onboardingWorkflowId(idempotencyKey: string): string {
  return `onboarding-${idempotencyKey}`;
}
