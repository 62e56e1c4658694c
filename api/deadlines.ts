/**
 * How long a caller waits on the api, at most. Neo4j and Temporal calls are bounded where they
 * are made (the api's driver gives up within PERSONA_REQUEST_DEADLINE_MS, every Temporal call
 * has that deadline, the agents' reads PERSONA_READ_DEADLINE_MS); this is the net under them,
 * for a dependency that accepts a call and then hangs. Past it the caller gets 503 (gRPC:
 * UNAVAILABLE) with Retry-After, and the work that hung is left to end at its own limits.
 */
import type { MiddlewareHandler } from 'hono';
import { AbandonedWriteError } from '../graph/graph';
import { withDeadline } from '../runtime/dependencies';
import type { ApiDeps } from './deps';

/** What each kind of traffic needs: context reads only the graph; what starts or signals a workflow, Temporal too. */
export const READINESS_PATHS = { read: ['neo4j'], write: ['neo4j', 'temporal'] };

/** Room for the precise errors (which name the dependency) to arrive before the net's. */
const MARGIN_MS = 500;

/**
 * The whole budget of one request: the deadline, plus — for a `?wait=true` caller — the wait
 * it asked for and the two calls (start, describe) made before the wait begins.
 */
export function requestBudgetMs(deps: ApiDeps, waits: boolean): number {
  const { requestDeadlineMs, waitTimeoutMs } = deps.limits;
  return requestDeadlineMs + MARGIN_MS + (waits ? waitTimeoutMs + 2 * requestDeadlineMs : 0);
}

/** Runs one request's work within its budget; past it, DependencyUnavailableError. */
export function withinBudget<T>(deps: ApiDeps, waits: boolean, work: () => Promise<T>): Promise<T> {
  const requestId = deps.requests.requestId;
  return withDeadline(
    'either',
    requestBudgetMs(deps, waits),
    work,
    (err) => {
      if (err instanceof AbandonedWriteError) return; // rolled back, as it should
      deps.logger.error({ err, requestId }, 'a request that had already answered 503 (out of time) then failed');
    },
    // Its writes still under way roll back instead of committing (graph/graph.ts).
    () => deps.requests.abandon(),
  );
}

/** REST: every /api route within its budget. */
export function requestDeadline(deps: ApiDeps): MiddlewareHandler {
  return async (c, next) => {
    await withinBudget(deps, c.req.query('wait') === 'true', next);
  };
}
