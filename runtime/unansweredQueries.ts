/**
 * Why a workflow did not answer a query. Only a worker polling the workflow's task queue answers
 * one (running or closed), so with every worker of that queue down (a deploy, a crash) Temporal
 * waits for one until the call's deadline and then says so in one of three ways, told apart here
 * once for every caller (runtime/dependencies.ts makes each a 503):
 *
 * - `no_poller`: FAILED_PRECONDITION "no poller seen for task queue recently" — the server's word
 *   when it gives up on a long deadline (about 1 s before it);
 * - `timed_out`: DEADLINE_EXCEEDED on a query — the call's own deadline passed first (every
 *   deadline under about 10 s), or the server's "query timed out before a worker could process it";
 * - `task_failing`: FAILED_PRECONDITION "Workflow Task in failed state" — a worker took the
 *   workflow's task and failed it (code it cannot run, a payload it cannot read); at once.
 */
import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, ServiceError } from '@temporalio/client';

export type UnansweredQuery = 'no_poller' | 'timed_out' | 'task_failing';

const NO_POLLER = /no poller seen for task queue recently/i;
const TASK_FAILING = /workflow task in failed state/i;
/** How the Temporal client words a failed query (its ServiceError around the gRPC error). */
const QUERY_FAILED = /^Failed to query Workflow/;

/** Why `err`, an error of a query, says no worker answered it; undefined for any other error. */
export function unansweredQuery(err: unknown): UnansweredQuery | undefined {
  let query = false;
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof ServiceError && QUERY_FAILED.test(current.message)) query = true;
    if (isGrpcServiceError(current)) {
      const details = current.details ?? current.message;
      if (current.code === status.FAILED_PRECONDITION && NO_POLLER.test(details)) return 'no_poller';
      if (current.code === status.FAILED_PRECONDITION && TASK_FAILING.test(details)) return 'task_failing';
      if (current.code === status.DEADLINE_EXCEEDED && query) return 'timed_out';
      return undefined;
    }
    current = current.cause;
  }
  return undefined;
}
