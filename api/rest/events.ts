/**
 * The event log:
 *   GET /api/v1/events?after=&limit=                 the change feed (scope events:read)
 *   GET /api/v1/customers/{id}/events?before=&limit=  a customer's own history (the customer, or ops)
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { EVENT_TYPES } from '../../graph/eventSchemas';
import { actsAsSelf } from '../auth';
import type { ApiDeps } from '../deps';
import { customerHistory, eventFeed } from '../services/events';
import { access, bearerSecurity, customerAccess, customerParams, problems, validationHook } from './common';
import { mergedIntoFields } from './responses';

const limit = (max: number, fallback: number) =>
  z.coerce
    .number()
    .int()
    .min(1)
    .max(max)
    .default(fallback)
    .openapi({ param: { name: 'limit', in: 'query' }, description: `1–${max}, default ${fallback}` });

const customerSeq = z
  .number()
  .int()
  .min(1)
  .nullable()
  .openapi({
    description:
      'The event’s place in its customer’s own sequence (1, 2, 3, … without gaps; a gap means a missed event); ' +
      'null for an event of no customer',
  });

const eventSchema = z
  .object({
    id: z.uuid(),
    type: z.enum(EVENT_TYPES),
    customer_id: z.string().nullable().openapi({
      description: 'The customer the event is about; null on a device-level event (see device_id)',
    }),
    device_id: z
      .string()
      .optional()
      .openapi({
        description:
          'Only on a device-level event (DeviceTrustScoreUpdated): the device, shared by any number of ' +
          'customers; join by device (DeviceLinked) to see whom it concerns. docs/events.md',
      }),
    device_seq: z
      .number()
      .int()
      .optional()
      .openapi({
        description:
          'Only on a device-level event: its place in its device’s own sequence (1, 2, 3, … without gaps; ' +
          '0 on an event from before devices were numbered)',
      }),
    occurred_at: z.string(),
    customer_seq: customerSeq,
    epoch: z
      .number()
      .int()
      .min(0)
      .openapi({
        description:
          'The event log’s epoch: 0 until the graph is first restored from a backup, then the restore’s time ' +
          '(seconds since 1970). Sequences count within an epoch: a new epoch after a restore may number ' +
          'again what a lost one numbered, so order and de-duplicate by (epoch, customer_seq) or by id',
      }),
    payload: z.record(z.string(), z.unknown()).openapi({ description: 'Per type: docs/events.md' }),
  })
  .openapi('Event');

const historyItem = z
  .object({
    id: z.uuid(),
    type: z.enum(EVENT_TYPES),
    occurred_at: z.string(),
    customer_seq: customerSeq,
    summary: z.string(),
  })
  .openapi('HistoryItem');

export function eventRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  addFeedRoute(app, deps);
  addHistoryRoute(app, deps);
  return app;
}

/** The app `eventRoutes` builds (the functions below add routes to it). */
type Routes = ReturnType<typeof eventRoutes>;

/** GET /api/v1/events: the change feed. */
function addFeedRoute(app: Routes, deps: ApiDeps) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/events',
      tags: ['events'],
      security: bearerSecurity,
      summary:
        'The change feed: every event, oldest first; store next_cursor and resume with ?after= ' +
        '(at least once, in order per customer)',
      middleware: [access(deps.authenticate, { scopes: ['events:read'] })] as const,
      request: {
        query: z.object({
          after: z
            .string()
            .max(512)
            .optional()
            .openapi({ param: { name: 'after', in: 'query' }, description: 'next_cursor of the previous page' }),
          limit: limit(1000, 100),
        }),
      },
      responses: {
        200: {
          description: 'A page of the feed; next_cursor is where to resume (the same cursor when nothing was new)',
          content: {
            'application/json': {
              schema: z
                .object({ data: z.array(eventSchema), next_cursor: z.string().nullable() })
                .openapi('EventFeedPage'),
            },
          },
        },
        ...problems(400, 401, 403),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await eventFeed(deps, q.after, q.limit), 200);
    },
  );
}

/** GET /api/v1/customers/{id}/events: a customer's own history. */
function addHistoryRoute(app: Routes, deps: ApiDeps) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/customers/{id}/events',
      tags: ['customers'],
      security: bearerSecurity,
      summary: 'The customer’s own history, newest first, in words',
      description:
        'For the id of a customer merged into another: the survivor’s history, with `merged_into` (the ' +
        'survivor’s id); a customer’s own token of the merged id reads it through the merged id.',
      middleware: [customerAccess(deps, { scopes: ['ops'], self: true })] as const,
      request: {
        params: customerParams,
        query: z.object({
          before: z
            .string()
            .max(512)
            .optional()
            .openapi({ param: { name: 'before', in: 'query' }, description: 'next_cursor of the previous page' }),
          limit: limit(200, 50),
        }),
      },
      responses: {
        200: {
          description: 'A page of the history; next_cursor is null on the last page',
          content: {
            'application/json': {
              schema: z
                .object({ data: z.array(historyItem), next_cursor: z.string().nullable(), ...mergedIntoFields })
                .openapi('HistoryPage'),
            },
          },
        },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      // The customer's own token reads the customer's words (no ops' reasons, no fraud outcome's kind).
      const audience = actsAsSelf(c.get('principal'), ['ops']) ? 'customer' : 'staff';
      return c.json(await customerHistory(deps, c.req.valid('param').id, q.before, q.limit, audience), 200);
    },
  );
}
