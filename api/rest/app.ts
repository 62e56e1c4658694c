/**
 * The REST app factory. Tests call `createApp(deps).request(...)` without a socket; api/main.ts
 * serves it. Every error leaves as RFC 9457 problem+json; the OpenAPI document at
 * /openapi.json is generated from the same zod schemas that validate requests, and /docs
 * browses it.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { except } from 'hono/combine';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { DomainError } from '../../graph/errors';
import { unavailableDependency } from '../../runtime/dependencies';
import { healthRoutes } from '../../runtime/health';
import { metricsRoutes } from '../../runtime/metrics';
import { problemResponse, problemType } from '../../runtime/problem';
import { AuthError } from '../auth';
import { RateLimitedError } from '../rateLimit';
import type { ApiDeps } from '../deps';
import { observeRequests } from '../observability';
import { answeredOutOfTime, READINESS_PATHS, requestDeadline } from '../deadlines';
import { IdempotencyKeyReusedError } from '../services/onboarding';
import { UnreadablePayloadError } from '../../temporal/payloadCodec';
import { adminRoutes } from './admin';
import { consoleRoutes } from '../console/app';
import { CODEC_MAX_BODY_BYTES, codecCredentials, codecRoutes } from './codec';
import { authProblem, validationHook } from './common';
import { contextRoutes } from './context';
import { customerRoutes } from './customers';
import { possibleMatchRoutes } from './possibleMatches';
import { docsRoutes } from './docs';
import { eventRoutes } from './events';
import { fraudRoutes } from './fraud';
import { identityMergeRoutes } from './identityMerge';
import { INTERACTIONS_PATH, interactionRoutes } from './interactions';
import { noStore, rateLimit, rateLimitedProblem, readinessDetail, readinessLimit } from './guards';
import { privacyRoutes } from './privacy';
import { recoveryRoutes } from './recovery';
import { onboardingRoutes } from './onboarding';

export type { ApiDeps as AppDeps };

const DOMAIN_STATUS = {
  not_found: 404,
  conflict: 409,
  invalid_input: 400,
  invalid_state: 409,
  unrecognisable_input: 422,
} as const;

/** The methods each registered path takes (HEAD wherever GET is), as a lookup by request path. */
function routeMethods(routes: { method: string; path: string }[]): (path: string) => string[] {
  const patterns = routes
    .filter((r) => r.method !== 'ALL' && !r.path.includes('*'))
    .map((r) => ({
      method: r.method,
      regex: new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+')}$`),
    }));
  return (path) => {
    const methods = new Set(patterns.filter((p) => p.regex.test(path)).map((p) => p.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}

export function createApp(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.use('*', observeRequests(deps));
  app.use('*', noStore());
  app.use('/readyz', readinessLimit(deps));
  app.use('/readyz/*', readinessLimit(deps));
  app.route(
    '/',
    healthRoutes({
      service: 'persona-api',
      checks: deps.readiness,
      paths: READINESS_PATHS,
      detail: readinessDetail(),
      // Reads of cached customers are answered (stale) while Neo4j is down: keep the replica.
      degraded: { read: () => deps.readCache.settings.enabled && deps.readCache.size > 0 },
    }),
  );
  app.route(
    '/',
    metricsRoutes(() => deps.metrics.registry.metrics(), { token: deps.metricsToken }),
  );
  guardCalls(app, deps);
  app.route('/', onboardingRoutes(deps));
  app.route('/', customerRoutes(deps));
  app.route('/', possibleMatchRoutes(deps));
  app.route('/', contextRoutes(deps));
  app.route('/', recoveryRoutes(deps));
  app.route('/', fraudRoutes(deps));
  app.route('/', identityMergeRoutes(deps));
  app.route('/', interactionRoutes(deps));
  app.route('/', eventRoutes(deps));
  app.route('/', privacyRoutes(deps));
  app.route('/', adminRoutes(deps));
  app.route('/', codecRoutes(deps));
  app.route('/', consoleRoutes(deps));
  describeApi(app);
  answerUnknownRoutes(app);
  app.onError((err, c) => errorProblem(deps, err, c));
  return app;
}

/** The app `createApp` builds (the functions below add to it). */
type App = ReturnType<typeof createApp>;

/**
 * The middleware of every /api, /codec and /console call (after the probes and scrapes): the codec
 * server's CORS, rate limits, body limits and request deadlines.
 */
function guardCalls(app: App, deps: ApiDeps) {
  // The codec server answers the Temporal UI's origin from a browser (its preflight carries no token;
  // the UI's credentialed fetch carries the console's session cookie).
  if (deps.payloads.corsOrigin)
    app.use(
      '/codec/*',
      cors({
        origin: deps.payloads.corsOrigin,
        allowMethods: ['POST', 'OPTIONS'],
        allowHeaders: ['Authorization', 'Content-Type', 'X-Namespace'],
        credentials: true,
        maxAge: 600,
      }),
    );

  // Probes and scrapes above are not limited; every /api and /codec call is.
  app.use('/api/*', rateLimit(deps));
  app.use('/codec/*', rateLimit(deps, codecCredentials(deps.payloads.corsOrigin)));

  // A batch of interactions may be larger than any other body; everything else keeps the small limit.
  app.use(INTERACTIONS_PATH, limitTo(deps.limits.maxInteractionsBodyBytes));
  app.use('/api/*', except(INTERACTIONS_PATH, limitTo(deps.limits.maxBodyBytes)));
  app.use('/codec/*', limitTo(CODEC_MAX_BODY_BYTES));
  app.use('/api/*', requestDeadline(deps));
  app.use('/codec/*', requestDeadline(deps));
  app.use('/console/*', requestDeadline(deps));
}

/** A body limit of `maxSize` bytes: a larger body is refused with a 413 problem. */
function limitTo(maxSize: number) {
  return bodyLimit({
    maxSize,
    onError: (c) =>
      problemResponse(c, {
        type: problemType('too-large'),
        title: 'Request body too large',
        status: 413,
        detail: `The body must be at most ${maxSize} bytes.`,
        field: 'body',
      }),
  });
}

/** The OpenAPI document at /openapi.json (with its bearer security scheme), and /docs browsing it. */
function describeApi(app: App) {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Persona API',
      version: '1',
      description:
        'Customer identity and lifecycle. Bearer JWTs carry space-separated scopes; `ops` may do everything; ' +
        'a customer token (`sub` = customer id, scope `self`) reaches only its own profile and wallet. ' +
        'Errors are RFC 9457 problem+json.',
    },
  });
  app.route('/', docsRoutes());
}

/** Answers a call no route takes: 405 for a path registered so far with other methods, else 404. */
function answerUnknownRoutes(app: App) {
  // A known path asked with a method it does not take: 405 with Allow, not 404.
  const methodsOf = routeMethods(app.routes);
  app.notFound((c) => {
    const allowed = methodsOf(c.req.path);
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      c.header('Allow', allowed.join(', '));
      return problemResponse(c, {
        type: problemType('method-not-allowed'),
        title: 'Method not allowed',
        status: 405,
        detail: `${c.req.path} takes ${allowed.join(', ')}, not ${c.req.method}`,
      });
    }
    return problemResponse(c, {
      type: problemType('not-found'),
      title: 'Not found',
      status: 404,
      detail: `No route for ${c.req.method} ${c.req.path}`,
    });
  });
}

/** An error a call raised, as problem+json: 503 for a dependency unavailable, 500 for one not foreseen. */
function errorProblem(deps: ApiDeps, err: Error, c: Context): Response {
  const unavailable = answeredOutOfTime(deps, err) ?? unavailableDependency(err);
  if (unavailable) {
    deps.logger.warn({ dependency: unavailable.dependency, reason: unavailable.reason }, 'dependency unavailable');
    c.header('Retry-After', String(unavailable.retryAfterSeconds));
    return problemResponse(c, {
      type: problemType('unavailable'),
      title: 'Service unavailable',
      status: 503,
      detail: unavailable.message,
      dependency: unavailable.dependency,
    });
  }
  // A service's own refusal (a customer who is not active, a sign-in that is not recent).
  if (err instanceof AuthError) return authProblem(c, err);
  if (err instanceof RateLimitedError) return rateLimitedProblem(c, err);
  if (err instanceof IdempotencyKeyReusedError) {
    return problemResponse(c, {
      type: problemType('idempotency-key-reused'),
      title: 'Idempotency-Key reused',
      status: 422,
      detail: err.message,
      field: 'idempotency-key',
    });
  }
  if (err instanceof DomainError) {
    return problemResponse(c, {
      type: problemType(err.code.replaceAll('_', '-')),
      title: err.name.replace(/Error$/, '').replace(/([a-z])([A-Z])/g, '$1 $2'),
      status: DOMAIN_STATUS[err.code],
      detail: err.message,
      ...('field' in err ? { field: err.field } : {}),
    });
  }
  if (err instanceof UnreadablePayloadError) {
    // A workflow of an erased customer: its history key was destroyed with the customer.
    return problemResponse(c, {
      type: problemType('gone'),
      title: 'Gone',
      status: 410,
      detail: err.message,
    });
  }
  if (err instanceof HTTPException) {
    // Hono's validators raise these for a body that is not JSON at all.
    const malformed = err.status === 400;
    return problemResponse(c, {
      type: problemType(malformed ? 'invalid-input' : 'http-error'),
      title: malformed ? 'Invalid input' : err.message || 'Request failed',
      status: err.status,
      detail: err.message,
      ...(malformed ? { field: 'body' } : {}),
    });
  }
  deps.logger.error({ err, method: c.req.method, path: c.req.path }, 'unhandled error');
  return problemResponse(c, {
    type: problemType('internal'),
    title: 'Internal error',
    status: 500,
    detail: 'The error was logged.',
  });
}
