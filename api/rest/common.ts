/** Pieces every REST resource uses: problem responses, the validation hook, access checks. */
import { z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import type { DependencyUnavailableError } from '../../runtime/dependencies';
import { problemResponse, problemType } from '../../runtime/problem';
import type { Graph } from '../../graph/graph';
import { freeText } from '../../graph/model';
import { actsAsSelf, AuthError, authorize, type AccessRule, type Authenticator, type Principal } from '../auth';
import { CustomerMergedError } from '../../graph/errors';
import { mergedRecordRefusal, refuseMergedAnswer, refuseMergedSelf } from '../services/mergedIds';
import { issueField, type Issue } from '../requests';

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    field: z.string().optional().openapi({ description: 'The offending field, for 400 answers' }),
    dependency: z
      .enum(['neo4j', 'temporal', 'either', 'identity-provider', 'worker'])
      .optional()
      .openapi({
        description:
          'For 503: what could not be reached (`worker`: Temporal answered, but no worker of the workflow’s task ' +
          'queue did, or its workflow task keeps failing)',
      }),
  })
  .openapi('Problem');

const PROBLEM_TEXT: Record<number, string> = {
  400: 'Invalid input; `field` names what is wrong',
  401: 'Missing, invalid or expired bearer token',
  403: 'The token lacks the scope, or is another customer’s',
  404: 'No such customer or resource',
  409: 'Conflicts with the current state',
  413: 'The body is larger than the limit',
  415: 'The body is not JSON (send `Content-Type: application/json`)',
  429: 'Too many requests from this caller; retry after `Retry-After` seconds',
  422:
    'The Idempotency-Key was used before with a different body; or (onboarding) every identity fact ' +
    'was a placeholder such as test@test.com, so nothing could recognise the customer later',
  503:
    'Neo4j or Temporal could not be reached within the request deadline, or no worker answered the workflow’s ' +
    'query; retry after `Retry-After` seconds (`dependency` names which)',
};

/**
 * OpenAPI entries for the problem+json answers a route can give: the codes named, 429 and 503
 * (any route may find its caller over the rate limit, or a dependency down), and 415 wherever
 * a body is taken (413 is named).
 */
export function problems(...named: (keyof typeof PROBLEM_TEXT)[]) {
  const codes = [...named, ...(named.includes(413) ? [415] : []), 429, 503];
  return Object.fromEntries(
    codes.map((code) => [
      code,
      { description: PROBLEM_TEXT[code] as string, content: { 'application/problem+json': { schema: problemSchema } } },
    ]),
  );
}

/**
 * The OpenAPI response headers of a write that answers synchronously: its consistency token
 * (api/consistency.ts), absent when the write changed nothing.
 */
export const consistencyHeaders = {
  'x-persona-consistency': {
    description:
      'A consistency token (`c:<customer_id>:<customer_seq>`, or `d:<device_id>:<device_seq>` for a device ' +
      'trust write): the write’s place in its customer’s (device’s) event sequence. ' +
      'Absent when the write changed nothing. ' +
      'docs/api.md',
    schema: { type: 'string' as const },
  },
};

export const customerParams = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, description: 'Customer id (UUID)' }),
});

/** zod-openapi's validation hook: a 400 problem naming the first wrong field (all are listed). */
export function validationHook(
  result: { success: boolean; target: string; error?: { issues: Issue[] } },
  c: Context,
): Response | undefined {
  if (result.success || !result.error) return undefined;
  const issues = result.error.issues;
  const first = issues[0] as Issue;
  const field = issueField(first, result.target);
  const message = first.code === 'unrecognized_keys' ? 'unknown field' : first.message;
  return problemResponse(c, {
    type: problemType('invalid-input'),
    title: 'Invalid input',
    status: 400,
    detail: `${field}: ${message}`,
    field,
    errors: issues.map((i) => ({
      field: issueField(i, result.target),
      message: i.code === 'unrecognized_keys' ? 'unknown field' : i.message,
    })),
  });
}

declare module 'hono' {
  interface ContextVariableMap {
    /** Who the bearer token says the caller is (set by `access`). */
    principal: Principal;
    /** The bearer token, authenticated by the rate limit (api/rest/guards.ts) before the route. */
    identity: { principal: Principal } | { authError: AuthError | DependencyUnavailableError };
  }
}

/** A refused token or access as problem+json (401 with its `WWW-Authenticate` challenge). */
export function authProblem(c: Context, err: AuthError): Response {
  if (err.status === 401) c.header('WWW-Authenticate', err.hint.challenge ?? 'Bearer');
  return problemResponse(c, {
    type: problemType(err.hint.type ?? (err.status === 401 ? 'unauthenticated' : 'forbidden')),
    title: err.status === 401 ? 'Unauthenticated' : 'Forbidden',
    status: err.status,
    detail: err.message,
  });
}

/**
 * Route middleware: authenticate the bearer token (or what `credentials` take instead of the
 * `Authorization` header), then check the route's access rule.
 */
export function access(
  authenticate: Authenticator,
  rule: AccessRule,
  credentials: (c: Context) => string | undefined = (c) => c.req.header('authorization'),
): MiddlewareHandler {
  return async (c, next) => {
    try {
      await admit(c, authenticate, rule, credentials);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      return authProblem(c, err);
    }
    await next();
  };
}

/** The caller's principal, allowed by `rule` for the route's `:id` (set as `principal`); AuthError otherwise. */
async function admit(
  c: Context,
  authenticate: Authenticator,
  rule: AccessRule,
  credentials: (c: Context) => string | undefined,
): Promise<Principal> {
  const identity = c.get('identity');
  if (identity && 'authError' in identity) throw identity.authError;
  const principal = identity ? identity.principal : await authenticate(credentials(c));
  authorize(principal, rule, c.req.param('id'));
  c.set('principal', principal);
  return principal;
}

/**
 * `access` for a route about one customer (`:id`) that the customer's own token may use
 * (`rule.self`): a merged record's own token reaches only the tombstone. A write is refused
 * before the route (one read of the graph), and its refusal by the graph under the customer's
 * lock (a merge that committed meanwhile) never names the survivor; a read is refused on its
 * answer, which says `merged_into` for a merged id — no graph read before it, so the read cache
 * still answers while Neo4j is away. A download (an attachment) is checked by its own service.
 */
export function customerAccess(
  deps: { authenticate: Authenticator; graph: Graph },
  rule: AccessRule,
): MiddlewareHandler {
  return async (c, next) => {
    let own: boolean;
    try {
      const principal = await admit(c, deps.authenticate, rule, (ctx) => ctx.req.header('authorization'));
      own = actsAsSelf(principal, rule.scopes);
      const read = c.req.method === 'GET' || c.req.method === 'HEAD';
      if (own && !read) await refuseMergedSelf(deps.graph, principal, rule.scopes, c.req.param('id'));
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      return authProblem(c, err);
    }
    await next();
    if (!own) return;
    if (c.error instanceof CustomerMergedError) {
      c.res = undefined;
      c.res = authProblem(c, mergedRecordRefusal());
      return;
    }
    const res = c.res;
    if (res.status >= 300 || res.headers.has('content-disposition')) return;
    if (!res.headers.get('content-type')?.includes('json')) return;
    const answer: unknown = await res
      .clone()
      .json()
      .catch(() => null);
    try {
      refuseMergedAnswer(c.get('principal'), rule.scopes, answer);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      c.res = undefined;
      c.res = authProblem(c, err);
    }
  };
}

/** The header through which ops (or the platform) give the reason for an action that needs one. */
export const reasonHeaders = z.object({
  'persona-reason': freeText(500)
    .min(1, 'must not be empty')
    .optional()
    .openapi({
      description:
        'Why ops (or the platform) do this: required for a customer who is not active and for an override; ' +
        'recorded with the action. A customer’s own token needs none.',
    }),
});

export const bearerSecurity = [{ bearerAuth: [] }];

/**
 * The validated JSON body of a route whose body is optional, or {} when none was sent (the
 * validator only runs for a request that declares JSON).
 */
export function optionalBody<T extends object>(
  req: { header(name: string): string | undefined },
  valid: () => T,
): Partial<T> {
  return req.header('content-type') && req.header('content-length') !== '0' ? valid() : {};
}
