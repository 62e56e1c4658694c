import { status } from '@grpc/grpc-js';
import { ServiceError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError, unavailableDependency } from './dependencies';
import { unansweredQuery } from './unansweredQueries';

/** What grpc-js raises (the Temporal client's transport). */
function grpcError(code: status, details: string): Error {
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
}

/** A query's failure as the Temporal client throws it: its ServiceError around the gRPC error. */
const failedQuery = (code: status, details: string) =>
  new ServiceError('Failed to query Workflow', { cause: grpcError(code, details) });

// The server's words, as the stack's dev server (temporal CLI 1.9.1) answered them.
const NO_POLLER = 'no poller seen for task queue recently, worker may be down';
const TASK_FAILING = 'Unable to query workflow due to Workflow Task in failed state.';
const SERVER_TIMED_OUT = 'query timed out before a worker could process it';
const CLIENT_DEADLINE = 'Deadline exceeded after 2.003s,LB pick: 0.001s,remote_addr=127.0.0.1:7233';

describe('unansweredQuery', () => {
  it('tells apart no poller, a query past its deadline and a failing workflow task', () => {
    expect(unansweredQuery(failedQuery(status.FAILED_PRECONDITION, NO_POLLER))).toBe('no_poller');
    expect(unansweredQuery(failedQuery(status.FAILED_PRECONDITION, TASK_FAILING))).toBe('task_failing');
    expect(unansweredQuery(failedQuery(status.DEADLINE_EXCEEDED, CLIENT_DEADLINE))).toBe('timed_out');
    expect(unansweredQuery(failedQuery(status.DEADLINE_EXCEEDED, SERVER_TIMED_OUT))).toBe('timed_out');
    // The server's words alone (no client wrapper) are enough for the two it says outright.
    expect(unansweredQuery(grpcError(status.FAILED_PRECONDITION, NO_POLLER))).toBe('no_poller');
  });

  it('leaves other errors alone: another precondition, a deadline of another call, a refused query', () => {
    expect(unansweredQuery(failedQuery(status.FAILED_PRECONDITION, 'namespace is not active'))).toBeUndefined();
    // A start or a signal past its deadline is Temporal's, not a worker's (runtime/dependencies.ts).
    const start = new ServiceError('Failed to start Workflow', { cause: grpcError(status.DEADLINE_EXCEEDED, 'x') });
    expect(unansweredQuery(start)).toBeUndefined();
    expect(unansweredQuery(failedQuery(status.INVALID_ARGUMENT, 'unknown queryType'))).toBeUndefined();
    expect(unansweredQuery(new Error(NO_POLLER))).toBeUndefined();
    expect(unansweredQuery('no poller')).toBeUndefined();
  });
});

describe('a query no worker answered, as every route answers it', () => {
  it('is a 503 of the worker with Retry-After and words a caller can act on, never a 500', () => {
    const noPoller = unavailableDependency(failedQuery(status.FAILED_PRECONDITION, NO_POLLER));
    expect(noPoller).toBeInstanceOf(DependencyUnavailableError);
    expect(noPoller).toMatchObject({ dependency: 'worker', retryAfterSeconds: 5, reason: `no_poller: ${NO_POLLER}` });
    expect(noPoller?.message).toMatch(/^No worker is polling the workflow’s task queue .*try again/);
    const timedOut = unavailableDependency(failedQuery(status.DEADLINE_EXCEEDED, CLIENT_DEADLINE));
    expect(timedOut).toMatchObject({ dependency: 'worker', retryAfterSeconds: 5 });
    expect(timedOut?.message).toMatch(/no worker may be polling its task queue/);
    const failing = unavailableDependency(failedQuery(status.FAILED_PRECONDITION, TASK_FAILING));
    expect(failing).toMatchObject({ dependency: 'worker', retryAfterSeconds: 30 });
    expect(failing?.message).toMatch(/workflow task keeps failing/);
    // Nothing internal reaches the caller: the server's words are in the logged reason only.
    for (const e of [noPoller, timedOut, failing]) expect(e?.message).not.toMatch(/127\.0\.0\.1|poller seen|Unable/);
  });

  it('keeps what it was: another call past its deadline is still Temporal’s', () => {
    const start = new ServiceError('Failed to start Workflow', {
      cause: grpcError(status.DEADLINE_EXCEEDED, 'Deadline exceeded'),
    });
    expect(unavailableDependency(start)).toMatchObject({ dependency: 'temporal', retryAfterSeconds: 1 });
  });
});
