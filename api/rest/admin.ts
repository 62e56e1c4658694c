/**
 * Operations (scope `ops`):
 *   POST /api/v1/admin/expiry-scan                  start a card-expiry scan now, for a reason (as of a day ≤ today)
 *   GET  /api/v1/admin/expiry-scans/{workflow_id}   a scan's progress
 *   GET  /api/v1/admin/event-relay                  the event relay: checkpoint, delivered, blocked, parked events
 *   POST /api/v1/admin/event-relay/retry            try parked events again (all, or {event_id})
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { ApiDeps } from '../deps';
import { expiryScanProgress, startExpiryScan } from '../services/expiry';
import { PARKED_LISTED, relayStatus, retryParked } from '../services/relay';
import { freeText } from '../../graph/model';
import { access, bearerSecurity, optionalBody, problems, validationHook } from './common';

const expiryScanRequest = z
  .strictObject({
    as_of: z.iso
      .date('must be a calendar date YYYY-MM-DD')
      .optional()
      .openapi({
        description:
          'Scan as if this day were today (default: today in PERSONA_EXPIRY_SCAN_TIMEZONE); at most today there: ' +
          'a later day would expire cards that are still valid',
        example: '2026-11-22',
      }),
    reason: freeText(500).regex(/\S/, 'say why the scan runs now').openapi({
      description: 'Why the scan runs now: kept with the scan (its input, summary and progress) beside who asked',
      example: 'the daily scan was skipped during the Temporal upgrade',
    }),
  })
  .openapi('ExpiryScanRequest');

const stageCounts = z.object({ '60': z.number().int(), '30': z.number().int(), '7': z.number().int() });
const progressSchema = z
  .object({
    as_of: z.string(),
    state: z.enum(['scanning', 'done']),
    scanned: z.number().int(),
    notified: stageCounts,
    already_notified: z.number().int(),
    unreachable: z.number().int(),
    rejected: z.number().int(),
    expired: z.number().int(),
    batches: z.number().int(),
    runs: z.number().int(),
    lanes: z.array(
      z.object({
        from: z.string(),
        to: z.string().nullable(),
        cursor: z.object({ year: z.number().int(), month: z.number().int(), id: z.string().nullable() }).nullable(),
        done: z.boolean(),
      }),
    ),
    started_at: z.string(),
    finished_at: z.string().nullable(),
    requested: z
      .object({ by: z.string().nullable(), reason: z.string() })
      .nullable()
      .optional()
      .openapi({ description: 'Who started the scan on demand, and why; null for a scheduled scan' }),
  })
  .openapi('ExpiryScanProgress');

const relayStatusSchema = z
  .object({
    workflow_id: z.string(),
    running: z.boolean().nullable().openapi({ description: 'null: Temporal did not answer in time' }),
    cursor: z.string().nullable(),
    delivered: z.number().int(),
    parked_count: z.number().int(),
    parked: z
      .array(
        z.object({
          event: z.record(z.string(), z.unknown()),
          error: z.string(),
          attempts: z.number().int(),
          parked_at: z.string(),
        }),
      )
      .openapi({ description: `The oldest parked events, up to ${PARKED_LISTED}` }),
    blocked: z
      .object({
        event_id: z.string(),
        error: z.string(),
        since: z.string(),
        attempts: z.number().int(),
      })
      .nullable()
      .openapi({ description: 'The event the subscriber has not taken yet; nothing after it goes out' }),
    last_delivery_at: z.string().nullable(),
    updated_at: z.string().nullable(),
  })
  .openapi('EventRelayStatus');

const SCAN_ID = /^(expiry-scan-[0-9]{4}-[0-9]{2}-[0-9]{2}|persona-expiry-scan-[A-Za-z0-9:.+-]{1,64})$/;

export function adminRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const opsOnly = access(deps.authenticate, { scopes: ['ops'] });
  addExpiryScanRoutes(app, deps, opsOnly);
  addEventRelayRoutes(app, deps, opsOnly);
  return app;
}

/** The app `adminRoutes` builds (the functions below add routes to it). */
type Routes = ReturnType<typeof adminRoutes>;

/** POST /api/v1/admin/expiry-scan, GET /api/v1/admin/expiry-scans/{workflow_id}. */
function addExpiryScanRoutes(app: Routes, deps: ApiDeps, opsOnly: MiddlewareHandler) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/admin/expiry-scan',
      tags: ['admin'],
      security: bearerSecurity,
      summary: 'Start a card-expiry scan now: expiry-scan-<as_of> (the same day again while it runs returns that run)',
      middleware: [opsOnly] as const,
      request: { body: { required: true, content: { 'application/json': { schema: expiryScanRequest } } } },
      responses: {
        202: {
          description:
            'The scan runs; follow it with GET /api/v1/admin/expiry-scans/{workflow_id} or in the Temporal UI',
          content: {
            'application/json': {
              schema: z.object({
                workflow_id: z.string(),
                as_of: z.string(),
                reason: z.string(),
                requested_by: z.string().nullable(),
              }),
            },
          },
        },
        ...problems(400, 401, 403, 413),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const requestedBy = c.get('principal').subject;
      return c.json(await startExpiryScan(deps, { ...body, requested_by: requestedBy }), 202);
    },
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/admin/expiry-scans/{workflow_id}',
      tags: ['admin'],
      security: bearerSecurity,
      summary: 'A card-expiry scan’s progress: cards read, warnings per stage, cards expired',
      middleware: [opsOnly] as const,
      request: {
        params: z.object({
          workflow_id: z
            .string()
            .regex(SCAN_ID, 'must be an expiry scan’s workflow id, e.g. expiry-scan-2026-11-22')
            .openapi({ param: { name: 'workflow_id', in: 'path' } }),
        }),
      },
      responses: {
        200: {
          description: 'The scan’s progress: a running scan’s query, a completed scan’s result',
          content: { 'application/json': { schema: progressSchema } },
        },
        ...problems(400, 401, 403, 404, 409),
      },
    }),
    async (c) => c.json(await expiryScanProgress(deps, c.req.valid('param').workflow_id), 200),
  );
}

/** GET /api/v1/admin/event-relay, POST /api/v1/admin/event-relay/retry. */
function addEventRelayRoutes(app: Routes, deps: ApiDeps, opsOnly: MiddlewareHandler) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/admin/event-relay',
      tags: ['admin'],
      security: bearerSecurity,
      summary: 'The event relay: its checkpoint, how many events it delivered, and the parked ones with their errors',
      middleware: [opsOnly] as const,
      responses: {
        200: {
          description: 'The relay’s checkpoint in the graph, and whether its workflow runs',
          content: { 'application/json': { schema: relayStatusSchema } },
        },
        ...problems(401, 403, 404),
      },
    }),
    async (c) => c.json(await relayStatus(deps.graph, deps.temporal.client), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/admin/event-relay/retry',
      tags: ['admin'],
      security: bearerSecurity,
      summary: 'Deliver parked events again: every one, or the one named by event_id',
      middleware: [opsOnly] as const,
      request: {
        body: {
          required: false,
          content: { 'application/json': { schema: z.strictObject({ event_id: z.uuid().optional() }) } },
        },
      },
      responses: {
        202: {
          description: 'The relay has queued the retry; it tries them between pages',
          content: { 'application/json': { schema: z.object({ workflow_id: z.string() }) } },
        },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const body = optionalBody(c.req, () => c.req.valid('json'));
      return c.json(await retryParked(deps.temporal.client, body.event_id), 202);
    },
  );
}
