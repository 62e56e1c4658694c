/**
 * The REST app factory. Tests call `createApp(deps).request(...)` without a socket; api/main.ts
 * serves it. Every error leaves as RFC 9457 problem+json.
 */
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { DomainError } from '../../graph/errors';
import { healthRoutes, type ReadinessCheck } from '../../runtime/health';
import type { Logger } from '../../runtime/logger';
import { problemResponse, problemType } from '../../runtime/problem';

export interface AppDeps {
  logger: Logger;
  readiness: ReadinessCheck[];
}

const DOMAIN_STATUS = { not_found: 404, conflict: 409, invalid_input: 400, invalid_state: 409 } as const;

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.route('/', healthRoutes({ service: 'persona-api', checks: deps.readiness }));

  app.notFound((c) =>
    problemResponse(c, { type: problemType('not-found'), title: 'Not found', status: 404, detail: `No route for ${c.req.method} ${c.req.path}` }),
  );

  app.onError((err, c) => {
    if (err instanceof DomainError) {
      return problemResponse(c, {
        type: problemType(err.code.replace('_', '-')),
        title: err.name.replace(/Error$/, '').replace(/([a-z])([A-Z])/g, '$1 $2'),
        status: DOMAIN_STATUS[err.code],
        detail: err.message,
        ...('field' in err ? { field: err.field } : {}),
      });
    }
    if (err instanceof HTTPException) {
      return problemResponse(c, { type: problemType('http-error'), title: err.message || 'Request failed', status: err.status });
    }
    deps.logger.error({ err, method: c.req.method, path: c.req.path }, 'unhandled error');
    return problemResponse(c, { type: problemType('internal'), title: 'Internal error', status: 500, detail: 'The error was logged.' });
  });
  return app;
}
