/**
 * A customer's data rights (the customer's own token, or ops):
 *   GET    /api/v1/customers/{id}/export   everything Persona holds about the customer, as JSON
 *   DELETE /api/v1/customers/{id}          erase the customer (workflow erasure-<id>)
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { ApiDeps } from '../deps';
import { exportCustomer, requestErasure } from '../services/privacy';
import { access, bearerSecurity, customerParams, problems, validationHook } from './common';

const encoder = new TextEncoder();

export function privacyRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const selfOrOps = access(deps.authenticate, { scopes: ['ops'], self: true });
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/customers/{id}/export',
      tags: ['customers'],
      security: bearerSecurity,
      summary:
        'Everything Persona holds about the customer (profile, identifiers, wallet — never a token —, devices ' +
        'with the customer’s own last IP and user agent, addresses, events newest first), streamed; ' +
        'nothing of another customer',
      middleware: [selfOrOps] as const,
      request: { params: customerParams },
      responses: {
        200: {
          description: 'The export',
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()).openapi('CustomerExport') } },
        },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const pieces = await exportCustomer(deps, c.req.valid('param').id);
      const body = new ReadableStream<Uint8Array>({
        // Pulled: the next page is read only when the client has taken the last one.
        async pull(controller) {
          try {
            const next = await pieces.next();
            if (next.done) controller.close();
            else controller.enqueue(encoder.encode(next.value));
          } catch (err) {
            // The status is sent already: the body breaks off (no closing brace, never valid JSON).
            deps.logger.error({ err }, 'the export stopped midway');
            controller.error(err);
          }
        },
        async cancel() {
          await pieces.return(undefined);
        },
      });
      // Typed routes expect c.json's typed answer; the streamed body is the same JSON (the schema above).
      return c.body(body, 200, { 'content-type': 'application/json; charset=utf-8' }) as never;
    },
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/customers/{id}',
      tags: ['customers'],
      security: bearerSecurity,
      summary:
        'Erase the customer: cancels their running workflows, deletes their personal data, ' +
        'keeps a tombstone (idempotent)',
      middleware: [selfOrOps] as const,
      request: { params: customerParams },
      responses: {
        202: {
          description: 'The erasure runs',
          content: { 'application/json': { schema: z.object({ workflow_id: z.string() }) } },
        },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => c.json(await requestErasure(deps, c.req.valid('param').id), 202),
  );
  return app;
}
