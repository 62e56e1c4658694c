/**
 * What a REST or console call weighs: the routes that reach Temporal (start, signal, update, query
 * or describe a workflow) cost TEMPORAL_CALL_COST from the caller's bucket, every other one 1; and only the
 * routes that document `?wait=true` get the longer budget for it (api/deadlines.ts) — on any other
 * route the parameter changes nothing. `test/integration/api-limits.test.ts` checks both lists
 * against the OpenAPI document: every route named exists, and the waiting ones are exactly those
 * that take a `wait` parameter.
 */
import { TEMPORAL_CALL_COST } from './rateLimit';

/** `METHOD /path/{param}`, as the OpenAPI document names them. */
export const TEMPORAL_ROUTES = [
  'POST /api/v1/admin/expiry-scan',
  'GET /api/v1/admin/expiry-scans/{workflow_id}',
  'GET /api/v1/admin/event-relay',
  'POST /api/v1/admin/event-relay/retry',
  'POST /api/v1/onboarding',
  'POST /api/v1/customers/{id}/payment-methods',
  'POST /api/v1/fraud-outcomes',
  'GET /api/v1/fraud-outcomes/{outcome_id}',
  'POST /api/v1/fraud-outcomes/{outcome_id}/review',
  'POST /api/v1/identity-merges',
  'GET /api/v1/identity-merges/{merge_id}',
  'POST /api/v1/identity-merges/{merge_id}/confirm',
  'POST /api/v1/identity-merges/{merge_id}/decline',
  'POST /api/v1/identity-merges/{merge_id}/undo',
  'DELETE /api/v1/customers/{id}',
  'GET /api/v1/customers/{id}/erasure',
  'POST /api/v1/payment-failures',
  'GET /api/v1/payment-recoveries/{payment_id}',
  'POST /api/v1/payment-recoveries/{payment_id}/attention',
  'POST /api/v1/payment-recoveries/{payment_id}/no-longer-owed',
] as const;

/**
 * The console's pages and actions that reach Temporal: a customer's page (their processes), a
 * customer's own page (their erasure), the operations page (scans, the relay), and every action.
 */
export const CONSOLE_TEMPORAL_ROUTES = [
  'GET /console/me',
  'GET /console/customers/{id}',
  'GET /console/operations',
  'POST /console/actions/{name}',
] as const;

/** The routes whose `?wait=true` stretches the request's budget by PERSONA_WAIT_TIMEOUT_MS. */
export const WAITING_ROUTES = [
  'POST /api/v1/onboarding',
  'POST /api/v1/customers/{id}/payment-methods',
  'POST /api/v1/payment-recoveries/{payment_id}/no-longer-owed',
] as const;

type Matcher = (method: string, path: string) => boolean;

function matcher(routes: readonly string[]): Matcher {
  const compiled = routes.map((route) => {
    const [method, path = ''] = route.split(' ');
    return { method, regex: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`) };
  });
  return (method, path) => {
    const m = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
    return compiled.some((r) => r.method === m && r.regex.test(path));
  };
}

const reachesTemporal = matcher([...TEMPORAL_ROUTES, ...CONSOLE_TEMPORAL_ROUTES]);
const documentsWait = matcher(WAITING_ROUTES);

/** What the call costs from its caller's bucket. */
export const routeCost = (method: string, path: string): number =>
  reachesTemporal(method, path) ? TEMPORAL_CALL_COST : 1;

/** Whether the call asked to wait on a route that documents `?wait=true`. */
export const routeWaits = (method: string, path: string, wait: string | undefined): boolean =>
  wait === 'true' && documentsWait(method, path);
