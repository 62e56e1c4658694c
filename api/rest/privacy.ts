/**
 * A customer's data rights (the customer's own token, or ops):
 *   GET    /api/v1/customers/{id}/export   everything Persona holds about the customer, as JSON
 *   DELETE /api/v1/customers/{id}          erase the customer (workflow erasure-<id>)
 *   GET    /api/v1/customers/{id}/erasure  where the erasure is (ops): e.g. waiting for a fraud review
 * A customer's own token needs a recent sign-in (`auth_time`) and an active customer; ops give a
 * reason (header Persona-Reason) for a customer who is not active (api/services/guards.ts).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { ApiDeps } from '../deps';
import { erasureStatus, exportBody, exportCustomer, requestErasure } from '../services/privacy';
import {
  access,
  bearerSecurity,
  customerAccess,
  customerParams,
  problems,
  reasonHeaders,
  validationHook,
} from './common';
import { mergedIntoFields } from './responses';
import { ERASURE_WAITS } from '../../temporal/erasure';

const erasureStatusSchema = z
  .object({
    workflow_id: z.string(),
    running: z.boolean(),
    state: z.enum(['starting', 'waiting_for_fraud_review', 'erasing', 'done', 'refused', 'stopped']).openapi({
      description:
        '`stopped`: failed, cancelled or terminated before erasing; DELETE again starts it anew. ' +
        '`refused`: the customer is suspended and the erasure was its own request; ops may erase with a reason',
    }),
    refused: z.string().optional().openapi({ description: 'Why the erasure was refused' }),
    history_keys_destroyed: z
      .number()
      .int()
      .optional()
      .openapi({
        description:
          'When done: how many keys of the customer’s workflow histories were destroyed with the erasure — every ' +
          'history payload of theirs in Temporal is unreadable from then on (crypto-shredding)',
      }),
    waiting_for: z.array(z.string()).openapi({ description: 'The fraud-outcome workflows whose review it waits for' }),
    wait: z
      .object({
        on: z.enum(ERASURE_WAITS),
        since: z.string(),
        due_at: z.string().openapi({
          description: 'since plus PERSONA_ERASURE_WAIT_DEADLINE_HOURS: past it the erasure is overdue, and waits on',
        }),
        overdue: z.boolean(),
        blocked_by: z
          .array(z.object({ workflow_id: z.string(), why: z.string().nullable() }))
          .openapi({ description: 'What holds the erasure and why (looked at once it is overdue, then hourly)' }),
      })
      .nullable()
      .openapi({
        description: 'What the erasure waits on now (nothing is erased meanwhile); null when it does not wait',
      }),
    overdue: z.boolean().openapi({ description: 'Whether the erasure waited past its deadline' }),
    request: z
      .object({ reason: z.string(), requested_by: z.string().nullable(), override_fraud_review: z.boolean() })
      .nullable(),
  })
  .openapi('ErasureStatus');

const SELF_NOTE =
  'A customer’s own token needs a sign-in within PERSONA_RECENT_AUTH_SECONDS (its `auth_time`; else 401 ' +
  'with `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=…`) and an active ' +
  'customer (else 403 naming the status). Ops give `Persona-Reason` for a customer who is not active. ' +
  'The id of a customer merged into another acts on the survivor (the same person), and says so ' +
  '(`merged_into`).';

export function privacyRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const selfOrOps = customerAccess(deps, { scopes: ['ops'], self: true });
  addExportRoute(app, deps, selfOrOps);
  addErasureRoutes(app, deps, selfOrOps);
  return app;
}

/** The app `privacyRoutes` builds (the functions below add routes to it). */
type Routes = ReturnType<typeof privacyRoutes>;

/** GET /api/v1/customers/{id}/export. */
function addExportRoute(app: Routes, deps: ApiDeps, selfOrOps: MiddlewareHandler) {
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
      description: SELF_NOTE,
      middleware: [selfOrOps] as const,
      request: { params: customerParams, headers: reasonHeaders },
      responses: {
        200: {
          description: 'The export',
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()).openapi('CustomerExport') } },
        },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const pieces = await exportCustomer(deps, c.req.valid('param').id, {
        principal: c.get('principal'),
        reason: c.req.valid('header')['persona-reason'],
      });
      const body = exportBody(deps, pieces);
      // Typed routes expect c.json's typed answer; the streamed body is the same JSON (the schema above).
      return c.body(body, 200, { 'content-type': 'application/json; charset=utf-8' }) as never;
    },
  );
}

/** DELETE /api/v1/customers/{id}, GET /api/v1/customers/{id}/erasure. */
function addErasureRoutes(app: Routes, deps: ApiDeps, selfOrOps: MiddlewareHandler) {
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/customers/{id}',
      tags: ['customers'],
      security: bearerSecurity,
      summary:
        'Erase the customer: cancels their running workflows, deletes their personal data, ' +
        'keeps a tombstone (idempotent)',
      description:
        `${SELF_NOTE} While a fraud review of the customer is pending the erasure waits for it (see ` +
        '`GET …/erasure`); ops erase at once with `?override=fraud_review` and a reason, which cancels the review.',
      middleware: [selfOrOps] as const,
      request: {
        params: customerParams,
        headers: reasonHeaders,
        query: z.object({
          override: z
            .literal('fraud_review')
            .optional()
            .openapi({ description: 'Ops only, with Persona-Reason: erase now though a fraud review is pending' }),
        }),
      },
      responses: {
        202: {
          description: 'The erasure runs',
          content: {
            'application/json': { schema: z.object({ workflow_id: z.string(), ...mergedIntoFields }) },
          },
        },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) =>
      c.json(
        await requestErasure(deps, c.req.valid('param').id, {
          principal: c.get('principal'),
          reason: c.req.valid('header')['persona-reason'],
          overrideFraudReview: c.req.valid('query').override === 'fraud_review',
        }),
        202,
      ),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/customers/{id}/erasure',
      tags: ['customers'],
      security: bearerSecurity,
      summary: 'Where the customer’s erasure is: starting, waiting for a fraud review, erasing, done (ops)',
      middleware: [access(deps.authenticate, { scopes: ['ops'] })] as const,
      request: { params: customerParams },
      responses: {
        200: { description: 'The erasure’s status', content: { 'application/json': { schema: erasureStatusSchema } } },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => c.json(await erasureStatus(deps, c.req.valid('param').id), 200),
  );
}
