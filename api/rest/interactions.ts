/**
 * POST /api/v1/interactions — the agents report payments, logins and shipments (scope
 * interactions:write), each recorded once; the answer lists every item's result in order.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { ApiDeps } from '../deps';
import { interactionSchema, MAX_INTERACTIONS } from '../requests';
import { recordInteractions } from '../services/interactions';
import { access, bearerSecurity, problems, validationHook } from './common';

/** The one route whose body may be as large as a full batch (api/rest/app.ts). */
export const INTERACTIONS_PATH = '/api/v1/interactions';

/**
 * The envelope only: each item is checked on its own (against `Interaction`), so one bad item is
 * answered `invalid` while the others are recorded; a bad envelope is the only 400.
 */
const envelope = z
  .strictObject({
    data: z
      .array(
        z.unknown().openapi({
          description: 'An `Interaction` (components/schemas/Interaction): a payment, a login or a shipment',
        }),
      )
      .min(1)
      .max(MAX_INTERACTIONS),
  })
  .openapi('InteractionBatch');

const answer = z
  .object({
    data: z.array(
      z
        .object({
          id: z.string().nullable().openapi({ description: 'The item’s id (null when it had no usable one)' }),
          result: z.enum(['recorded', 'duplicate', 'invalid']),
          field: z.string().optional().openapi({ description: 'For `invalid`: the field, e.g. `data[3].amount`' }),
          problem: z.string().optional().openapi({ description: 'For `invalid`: what is wrong with it' }),
          consistency_token: z
            .string()
            .optional()
            .openapi({
              description:
                'For `recorded`: the consistency token of its customer’s write ' +
                '(`c:<customer_id>:<customer_seq>`), for a read’s `x-persona-consistency`; ' +
                'absent when nothing about the customer changed. docs/api.md',
            }),
        })
        .openapi('InteractionResult'),
    ),
  })
  .openapi('InteractionResults');

export function interactionRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openAPIRegistry.register('Interaction', interactionSchema);
  app.openapi(
    createRoute({
      method: 'post',
      path: INTERACTIONS_PATH,
      tags: ['interactions'],
      security: bearerSecurity,
      summary: 'Record payments, logins and shipments (1–500), each exactly once',
      description:
        'Each item is answered in order: `recorded`, `duplicate` (its id was recorded before for this customer) ' +
        'or `invalid` with the field (`data[3].amount`) — an invalid item writes nothing, the others are ' +
        'recorded, in one transaction. A payment must be in the reporting currency (no exchange rates are ' +
        'configured). 400 only when the envelope itself is wrong.',
      middleware: [access(deps.authenticate, { scopes: ['interactions:write'] })] as const,
      request: { body: { required: true, content: { 'application/json': { schema: envelope } } } },
      responses: {
        200: { description: 'Every item’s result, in order', content: { 'application/json': { schema: answer } } },
        ...problems(400, 401, 403, 413),
      },
    }),
    async (c) => c.json(await recordInteractions(deps, c.req.valid('json').data, c.get('principal')), 200),
  );
  return app;
}
