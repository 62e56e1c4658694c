/**
 * How long a caller waits on the api, at most. Neo4j and Temporal calls are bounded where they
 * are made (the api's driver gives up within PERSONA_REQUEST_DEADLINE_MS, every Temporal call
 * has that deadline, the agents' reads PERSONA_READ_DEADLINE_MS); this is the net under them,
 * for a dependency that accepts a call and then hangs. Past it the caller gets 503 (gRPC:
 * UNAVAILABLE) with Retry-After, and the work that hung is left to end at its own limits.
 */
import type { MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { DomainError } from '../graph/errors';
import { AbandonedWriteError } from '../graph/graph';
import { DependencyUnavailableError, unavailableDependency, withDeadline } from '../runtime/dependencies';
import { AuthError } from './auth';
import type { ApiDeps } from './deps';
import { RateLimitedError } from './rateLimit';
import { routeWaits } from './routeWeights';

/** What each kind of traffic needs: context reads only the graph; what starts or signals a workflow, Temporal too. */
export const READINESS_PATHS = { read: ['neo4j'], write: ['neo4j', 'temporal'] };

/** Room for the precise errors (which name the dependency) to arrive before the net's. */
const MARGIN_MS = 500;
/** Less than this left for a call, and the request is out of time before making it. */
const MIN_WAIT_MS = 50;

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
  const budgetMs = requestBudgetMs(deps, waits);
  deps.requests.setDeadline(Date.now() + budgetMs);
  return withDeadline(
    'either',
    budgetMs,
    work,
    (err) => logLate(deps, err, requestId),
    // Its writes still under way roll back instead of committing (graph/graph.ts).
    () => deps.requests.abandon(),
  );
}

/**
 * How long a call made now may wait, at most `ms`: less when the request has less left, so that
 * the call's own error (which names what did not answer) reaches the caller before the net's 503.
 * With almost nothing left, the request's own unavailability (`either`) instead of the call.
 */
export function waitWithinBudget(deps: ApiDeps, ms: number): number {
  const left = deps.requests.msLeft;
  if (left === undefined) return ms;
  // Out of time before the call: the time went elsewhere, and the answer must not blame the call's dependency.
  if (left - MARGIN_MS < MIN_WAIT_MS)
    throw new DependencyUnavailableError('either', 'the request ran out of time before its last call');
  return Math.min(ms, left - MARGIN_MS);
}

/** What a request answered 503 ended with later: an error only when it is one (a bug's 500). */
function logLate(deps: ApiDeps, err: unknown, requestId: string | undefined): void {
  if (err instanceof AbandonedWriteError) return; // rolled back, as it should
  const refusal =
    err instanceof DomainError ||
    err instanceof AuthError ||
    err instanceof RateLimitedError ||
    err instanceof HTTPException;
  if (refusal)
    deps.logger.debug({ err, requestId }, 'a request that had already answered 503 (out of time) was refused');
  else deps.logger.error({ err, requestId }, 'a request that had already answered 503 (out of time) then failed');
}

/**
 * What an error-handler makes of an error that ended a request already answered 503 (out of time):
 * the unavailability it was answered with (logged as `withinBudget` logs a late error), or undefined
 * for a request still in time. Hono catches a route's error inside the chain and hands it to the
 * app's onError, so a late one never reaches `requestDeadline`'s race: onError asks this first, or
 * it would log an abandoned write as unhandled (its answer is never sent either way).
 */
export function answeredOutOfTime(deps: ApiDeps, err: unknown): DependencyUnavailableError | undefined {
  // The deadline's own error (the 503 itself), or any other unavailability: answered as such.
  if (!deps.requests.abandoned || unavailableDependency(err)) return undefined;
  logLate(deps, err, deps.requests.requestId);
  return new DependencyUnavailableError('either', 'the request was answered 503 before its work ended');
}

/** REST: every /api route within its budget. */
export function requestDeadline(deps: ApiDeps): MiddlewareHandler {
  return async (c, next) => {
    await withinBudget(deps, routeWaits(c.req.method, c.req.path, c.req.query('wait')), next);
  };
}
