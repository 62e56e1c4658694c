/**
 * Graph work inside an activity. A domain error a retry cannot fix (not found, invalid input,
 * invalid state) fails the activity for good, as an ApplicationFailure whose type is the error's
 * name and whose details carry `{code, field, reason}` (temporal/failures.ts), so a workflow or
 * the api reads what went wrong without parsing a message. A conflict (a lost race on a constraint) is retried.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { DomainError, InvalidInputError } from '../graph/errors';
import type { DomainFailureDetails } from '../temporal/failures';

/** Domain errors a retry cannot fix become non-retryable failures with `{code, field}` in their details. */
export function asActivityFailure(err: unknown): unknown {
  if (err instanceof DomainError && err.code !== 'conflict') {
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
