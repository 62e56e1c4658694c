/** The onboarding activity: resolve the identity and write the customer with everything linked to it. */
import type { Graph } from '../graph/graph';
import { onboardCustomer, type OnboardingResult } from '../graph/onboarding';
import type { OnboardingPlan } from '../graph/onboardingRequest';

export function createOnboardingActivities({ graph }: { graph: Graph }) {
  return {
    /** Resolves the identity and writes the whole onboarding in one transaction; idempotent per onboarding id. */
    async onboardCustomer(
      plan: OnboardingPlan,
      ids: { onboardingId: string; customerId: string },
    ): Promise<OnboardingResult> {
      return onboardCustomer(graph, plan, ids);
    },
  };
}

export type OnboardingActivities = ReturnType<typeof createOnboardingActivities>;
