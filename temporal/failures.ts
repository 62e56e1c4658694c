/**
 * How a domain error crosses Temporal: an activity that fails for good on a domain error (see
 * activities/failures.ts) raises a non-retryable ApplicationFailure whose type is the error's name
 * and whose first detail is `{code, field, reason}`. Workflows and the api read it with
 * `domainFailureOf`, never by parsing a message.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { DomainErrorCode } from '../graph/errors';

export interface DomainFailureDetails {
  code: DomainErrorCode;
  /** The offending field (snake_case path), for invalid input. */
  field?: string;
  /** What is wrong with it, without the field's name. */
  reason?: string;
}

const CODES: readonly string[] = [
  'not_found',
  'conflict',
  'invalid_input',
  'invalid_state',
  'unrecognisable_input',
] satisfies DomainErrorCode[];

function isDetails(value: unknown): value is DomainFailureDetails {
  return typeof value === 'object' && value !== null && CODES.includes((value as { code?: unknown }).code as string);
}

/** The domain failure anywhere in an error's cause chain (workflow → activity → application), if any. */
export function domainFailureOf(err: unknown): DomainFailureDetails | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof ApplicationFailure) {
      const details = current.details?.[0];
      if (isDetails(details)) return details;
      // Failures recorded before details were carried: "<field>: <reason>" in the message.
      if (current.type === 'InvalidInputError' && !current.details?.length) {
        const [field = 'body', ...reason] = current.message.split(': ');
        return { code: 'invalid_input', field, reason: reason.join(': ') || current.message };
      }
    }
    current = current.cause;
  }
  return undefined;
}

/**
 * A failure in words for a status or a log line: the innermost cause's type and message (an
 * activity's failure says what the activity itself threw, not "Activity task failed").
 */
export function describeFailure(err: unknown): string {
  let current: unknown = err;
  let last: Error | undefined;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    last = current;
    current = current.cause;
  }
  if (!last) return String(err);
  const type = last instanceof ApplicationFailure && last.type ? last.type : last.name;
  return `${type}: ${last.message}`;
}
