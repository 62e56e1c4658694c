import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { ConflictError, InvalidInputError, NotFoundError } from '../graph/errors';
import { domainFailureOf } from '../temporal/failures';
import { asActivityFailure } from './failures';

/** What the api sees when the activity failed for good: workflow failure → activity failure → application failure. */
function asWorkflowFailure(applicationFailure: unknown): WorkflowFailedError {
  const activity = new ActivityFailure(
    'activity failed',
    'onboardCustomer',
    '1',
    RetryState.NON_RETRYABLE_FAILURE,
    'identity',
    applicationFailure as Error,
  );
  return new WorkflowFailedError('workflow failed', activity, RetryState.NON_RETRYABLE_FAILURE);
}

describe('a domain error crossing Temporal', () => {
  it('arrives as {code, field, reason} in the failure details, read without parsing the message', () => {
    const failure = asActivityFailure(new InvalidInputError('payment_method.expiry_year', 'card has: expired'));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'InvalidInputError', nonRetryable: true });
    // A reason that itself holds ": " used to be split wrongly when the field was parsed from the message.
    expect(domainFailureOf(asWorkflowFailure(failure))).toEqual({
      code: 'invalid_input',
      field: 'payment_method.expiry_year',
      reason: 'card has: expired',
    });
  });

  it('carries the code of other domain errors, and lets a conflict be retried', () => {
    const notFound = asActivityFailure(new NotFoundError('Customer', 'c-1'));
    expect(domainFailureOf(asWorkflowFailure(notFound))).toEqual({ code: 'not_found' });
    const conflict = new ConflictError('DigitalIdentifier with this type and value already exists');
    expect(asActivityFailure(conflict)).toBe(conflict);
  });

  it('finds nothing in a failure that is not a domain error', () => {
    const other = ApplicationFailure.create({ type: 'GatewayRejectedError', message: 'refused', details: ['x'] });
    expect(domainFailureOf(asWorkflowFailure(other))).toBeUndefined();
    expect(domainFailureOf(new Error('boom'))).toBeUndefined();
  });
});
