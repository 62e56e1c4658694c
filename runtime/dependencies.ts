/**
 * When a request path cannot reach Neo4j or Temporal, its caller hears so quickly: 503 with
 * `Retry-After` over REST, UNAVAILABLE over gRPC, within a bounded time — never a 500 after the
 * driver's or the client's own retries (30 s and more). Background work (the worker) keeps its
 * longer retries; this bounds only what a caller waits for.
 *
 * `unavailableDependency` recognises the errors that mean "unreachable" (a refused or dropped
 * connection, a pool that hands out no connection in time, a call past its deadline), and
 * `withDeadline` bounds work that could otherwise wait on a server that hangs. A workflow that no
 * worker answers (runtime/unansweredQueries.ts) is unavailable too: `worker`.
 */
import { status } from '@grpc/grpc-js';
import { isGrpcServiceError } from '@temporalio/client';
import { Neo4jError } from 'neo4j-driver';
import { unansweredQuery, type UnansweredQuery } from './unansweredQueries';

/**
 * What did not answer; `either` when a request as a whole ran out of time (see `withDeadline`);
 * `worker` when Temporal answered but no worker of the workflow's task queue did.
 */
export type Dependency = 'neo4j' | 'temporal' | 'either' | 'identity-provider' | 'worker';

const NAMES: Record<Dependency, string> = {
  neo4j: 'Neo4j',
  temporal: 'Temporal',
  either: 'Neo4j or Temporal',
  'identity-provider': 'The identity provider’s signing keys (JWKS)',
  worker: 'The workflow’s worker',
};

export class DependencyUnavailableError extends Error {
  constructor(
    readonly dependency: Dependency,
    readonly reason: string,
    /** What the caller is told to wait before retrying (`Retry-After`). */
    readonly retryAfterSeconds = 1,
    /** What the caller is told (default: which dependency is unavailable). */
    message?: string,
  ) {
    // The message is what callers see: no internal detail (addresses, ids) goes in; `reason` is logged.
    super(message ?? `${NAMES[dependency]} is unavailable; retry shortly`);
    this.name = 'DependencyUnavailableError';
  }
}

/** What a caller is told of a workflow that did not answer, and how long to wait before asking again. */
const UNANSWERED: Record<UnansweredQuery, { said: string; retryAfterSeconds: number }> = {
  no_poller: {
    said: 'No worker is polling the workflow’s task queue (a deploy or a restart): try again in a few seconds',
    retryAfterSeconds: 5,
  },
  timed_out: {
    said:
      'The workflow did not answer in time: no worker may be polling its task queue (a deploy or a restart), ' +
      'or its worker is overloaded; try again in a few seconds',
    retryAfterSeconds: 5,
  },
  task_failing: {
    said: 'The workflow cannot answer now: its workflow task keeps failing on the worker; try again later',
    retryAfterSeconds: 30,
  },
};

/** A workflow that did not answer a query, as the unavailability every route answers 503 (UNAVAILABLE). */
export function workflowUnanswered(why: UnansweredQuery, reason: string): DependencyUnavailableError {
  const { said, retryAfterSeconds } = UNANSWERED[why];
  return new DependencyUnavailableError('worker', `${why}: ${reason}`, retryAfterSeconds, said);
}

const NEO4J_UNAVAILABLE = new Set([
  'ServiceUnavailable',
  'SessionExpired',
  'Neo.TransientError.General.DatabaseUnavailable',
]);

/**
 * Transient errors that mean "busy, try again": lock waits and deadlocks that outlived the
 * driver's retries, a cluster changing leader. Not a transaction over its own memory limit: that
 * fails the same way on every retry (a 500 to look into, not a 503 to retry). But the pool every
 * running transaction shares (`dbms.memory.transaction.total.max`) being full is busy, not broken:
 * the fleet test saw context reads answered 500 so while Neo4j caught up after a restart.
 */
const BUSY_TRANSACTION = [
  'DeadlockDetected',
  'LockClientStopped',
  'LockAcquisitionTimeout',
  'Outdated',
  'ConstraintsChanged',
];
/**
 * What Neo4j 5 answers when it stopped a transaction at the time limit the api gave it (the request
 * deadline), typically while it waited for a busy customer's lock: the same "busy, try again".
 */
const NEO4J_TIMED_OUT = new Set([
  'Neo.ClientError.Transaction.TransactionTimedOut',
  'Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration',
  'Neo.ClientError.Transaction.LockClientStopped',
]);
const NEO4J_BUSY = new RegExp(`^Neo\\.TransientError\\.(Transaction\\.(${BUSY_TRANSACTION.join('|')})|Cluster\\.)`);

/**
 * How the driver's channel words a connection it could not make or lost. It gives them the code
 * its connection provider chose, or none ('N/A'): an onboarding in the fleet test was answered 500
 * with the first while Neo4j restarted.
 */
const NEO4J_CONNECTION_LOST = [
  'Failed to connect to server.',
  'Connection was closed by server',
  "Connection lost. Server didn't respond in",
  'Failed to establish connection in',
];

/** Neo4j's memory for all running transactions is spent: others' use, which ends, not this one's size. */
function sharedMemoryFull(err: Neo4jError): boolean {
  return (
    err.code === 'Neo.TransientError.General.MemoryPoolOutOfMemoryError' &&
    err.message.includes('dbms.memory.transaction.total.max')
  );
}

/**
 * gRPC status codes (the Temporal client's transport) that mean the server did not answer in
 * time or at all, or is throttling (RESOURCE_EXHAUSTED): try again shortly. CANCELLED too, when
 * the server reset the call: it does so with a call whose deadline it saw pass, which grpc-js
 * reports as "Call cancelled", not DEADLINE_EXCEEDED (the fleet test saw a status query under load
 * end so, answered 500). Not a call this process cancelled itself ("Cancelled on client"): every
 * such abort is answered where it is made, so one that reaches here is a bug to see, not an outage.
 * Nor a message over gRPC's size limit, which grpc-js reports as RESOURCE_EXHAUSTED too: it fails
 * the same way on every retry (a 500 to look into, not a 503 to retry).
 */
const GRPC_UNREACHABLE: number[] = [
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.CANCELLED,
];
const CANCELLED_HERE = 'Cancelled on client';
/** grpc-js's words for a message over the size limit, sent or received. */
const OVER_SIZE_LIMIT = /message larger than max/i;

function firstLine(message: string): string {
  return message.split('\n')[0]?.slice(0, 200) ?? '';
}

/** The words of the gRPC error in `err`'s cause chain (else its own message). */
function grpcDetails(err: unknown): string {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (isGrpcServiceError(current)) return current.details || current.message;
    current = current.cause;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The dependency an error says is unreachable, if it says so: Neo4j's connection errors and
 * transient errors that outlived the driver's retries, the pool's acquisition timeout,
 * Temporal calls that failed UNAVAILABLE or past their deadline (anywhere in the cause chain), and
 * a query no worker answered (`worker`).
 */
export function unavailableDependency(err: unknown): DependencyUnavailableError | undefined {
  if (err instanceof DependencyUnavailableError) return err;
  const unanswered = unansweredQuery(err);
  if (unanswered) return workflowUnanswered(unanswered, firstLine(grpcDetails(err)));
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof DependencyUnavailableError) return current;
    if (current instanceof Neo4jError) {
      if (
        NEO4J_UNAVAILABLE.has(current.code) ||
        NEO4J_TIMED_OUT.has(current.code) ||
        NEO4J_BUSY.test(current.code) ||
        sharedMemoryFull(current)
      )
        return new DependencyUnavailableError('neo4j', firstLine(current.message));
      // The driver's own connection failures, whatever code its channel was given (none: 'N/A').
      if (NEO4J_CONNECTION_LOST.some((m) => current instanceof Error && current.message.startsWith(m)))
        return new DependencyUnavailableError('neo4j', firstLine(current.message));
      if (current.message.startsWith('Connection acquisition timed out'))
        return new DependencyUnavailableError('neo4j', 'no connection to Neo4j within the request deadline');
    }
    if (
      isGrpcServiceError(current) &&
      GRPC_UNREACHABLE.includes(current.code) &&
      !(current.code === status.CANCELLED && current.details === CANCELLED_HERE) &&
      !(current.code === status.RESOURCE_EXHAUSTED && OVER_SIZE_LIMIT.test(current.details ?? ''))
    )
      return new DependencyUnavailableError('temporal', firstLine(current.details || current.message));
    current = current.cause;
  }
  return undefined;
}

/**
 * Runs `work`, or fails with DependencyUnavailableError when it has not finished within `ms`.
 * The work itself is not stopped (a driver call ends at its own limits); only the caller stops
 * waiting for it.
 */
export async function withDeadline<T>(
  dependency: Dependency,
  ms: number,
  work: () => Promise<T>,
  /** Told of an error the work ends with after the deadline (so that a real bug is not lost in a 503). */
  onLateError?: (err: unknown) => void,
  /** Called when the deadline passes, in the caller's async context (e.g. to abandon its writes). */
  onExpired?: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  let settled = false;
  const expired = new Promise<never>((_, reject) => {
    // One turn of the event loop after the deadline: when the loop stalled past both, a call's own
    // timeout (due earlier, run just before in the same turn) settles the work first and names
    // what did not answer, instead of the net's "either".
    timer = setTimeout(
      () =>
        setImmediate(() => {
          if (settled) return;
          late = true;
          onExpired?.();
          reject(new DependencyUnavailableError(dependency, `no answer within ${ms} ms`));
        }),
      ms,
    );
  });
  const running = work();
  running.then(
    () => (settled = true),
    () => (settled = true),
  );
  // An answer that comes after the deadline is dropped; its error is reported, not thrown.
  running.catch((err: unknown) => {
    if (late) onLateError?.(err);
  });
  try {
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}
