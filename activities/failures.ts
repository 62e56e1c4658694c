/**
 * How an activity's error reaches its workflow: one conversion, in an activity inbound interceptor
 * every Persona worker registers (workers/logging.ts `workerInterceptors`), the same for every
 * activity. A domain error a retry cannot fix (not found, invalid input, invalid state) fails the
 * activity for good, as an ApplicationFailure whose type is the error's name and whose details
 * carry `{code, field, reason}` (temporal/failures.ts), so a workflow or the api reads what went
 * wrong without parsing a message. A conflict (a lost race on a constraint) and anything else (a
 * Neo4j that is away, a timeout) is retried under the activity's retry policy.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { DomainError, InvalidInputError } from '../graph/errors';
import type { DomainFailureDetails } from '../temporal/failures';

/** A domain error a retry cannot fix: every one but a conflict. */
function isFinalDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError && err.code !== 'conflict';
}

/** Whether a retry cannot fix the error: a final domain error, or a failure already marked non-retryable. */
export function isFinal(err: unknown): boolean {
  return isFinalDomainError(err) || (err instanceof ApplicationFailure && err.nonRetryable === true);
}

/** Domain errors a retry cannot fix become non-retryable failures with `{code, field}` in their details. */
export function asActivityFailure(err: unknown): unknown {
  if (!isFinalDomainError(err)) return err;
  const details: DomainFailureDetails =
    err instanceof InvalidInputError
      ? { code: err.code, field: err.field, reason: err.reason }
      : { code: err.code, ...('field' in err ? { field: err.field as string } : {}) };
  return ApplicationFailure.create({
    type: err.name,
    message: err.message,
    nonRetryable: true,
    details: [details],
    cause: err,
  });
}

/**
 * The conversion, for every activity: registered first, so it sees what the activity and the
 * other interceptors threw (a "not found" asked again on the leader first: workers/logging.ts).
 */
export function activityFailureInterceptor(): ActivityInterceptorsFactory {
  return () => ({
    inbound: {
      execute: async (input, next) => {
        try {
          return await next(input);
        } catch (err) {
          throw asActivityFailure(err);
        }
      },
    },
  });
}
