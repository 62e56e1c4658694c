/** Activities that write the identity graph. */
import { ApplicationFailure } from '@temporalio/activity';
import { DomainError } from '../graph/errors';
import type { Graph } from '../graph/graph';
import { onboardCustomer, type OnboardingPlan, type OnboardingResult } from '../graph/onboarding';

/** Domain errors a retry cannot fix become non-retryable failures with the error's code as type. */
export function asActivityFailure(err: unknown): unknown {
  if (err instanceof DomainError && err.code !== 'conflict') {
    return ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true, cause: err });
  }
  return err;
}

/** Runs graph work in an activity: domain errors a retry cannot fix fail it for good. */
export async function domain<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw asActivityFailure(err);
  }
}

export function createGraphActivities({ graph }: { graph: Graph }) {
  return {
    /** Resolves the identity and writes the whole onboarding in one transaction; idempotent per onboarding id. */
    async onboardCustomer(
      plan: OnboardingPlan,
      ids: { onboardingId: string; customerId: string },
    ): Promise<OnboardingResult> {
      return domain(() => onboardCustomer(graph, plan, ids));
    },
  };
}

export type GraphActivities = ReturnType<typeof createGraphActivities>;
