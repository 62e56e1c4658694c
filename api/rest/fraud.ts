/**
 * Fraud outcomes:
 *   POST /api/v1/fraud-outcomes                         Chimera reports an outcome (scope fraud:report)
 *   GET  /api/v1/fraud-outcomes/{outcome_id}            its status
 *   POST /api/v1/fraud-outcomes/{outcome_id}/review     ops resolve a suspension (scope ops)
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { freeText } from '../../graph/model';
import { FRAUD_OUTCOMES } from '../../graph/fraud';
import type { ApiDeps } from '../deps';
import { fraudOutcomeSchema, outcomeIdField } from '../requests';
import { fraudOutcomeStatus, reporterOf, reportFraudOutcome, resolveReview } from '../services/fraud';
import { access, bearerSecurity, problems, validationHook } from './common';
import { mergedIntoFields } from './responses';

const change = z.object({
  entity: z.string(),
  id: z.string(),
  field: z.string(),
  from: z.union([z.string(), z.number()]),
  to: z.union([z.string(), z.number()]),
});
const statusSchema = z
  .object({
    state: z.enum([
      'applying',
      'awaiting_review',
      'reinstated',
      'confirmed',
      'review_timed_out',
      'done',
      'not_applied',
    ]),
    outcome: z.enum(FRAUD_OUTCOMES),
    applied: z
      .object({ outcome_id: z.string(), outcome: z.string(), changes: z.array(change), suspended: z.boolean() })
      .nullable(),
    reversal: z
      .object({ reversed_outcome_id: z.string().nullable(), restored: z.array(change), skipped: z.array(change) })
      .nullable(),
    recoveries_blocked: z.array(z.string()),
    review_deadline: z.string().nullable(),
    review_due_at: z.string().nullable().openapi({
      description: 'When ops should have decided the review (PERSONA_FRAUD_REVIEW_DUE_HOURS after it opened)',
    }),
    review_overdue: z.boolean().openapi({ description: 'Whether the review passed review_due_at undecided' }),
    decision: z.enum(['reinstate', 'confirm']).nullable(),
    problem: z.string().nullable().openapi({ description: 'Why the outcome was not applied, in words, else null' }),
    undelivered: z.array(z.string()).openapi({ description: 'Notifications that could not be delivered' }),
  })
  .openapi('FraudOutcomeStatus');

const outcomeParams = z.object({ outcome_id: outcomeIdField.openapi({ param: { name: 'outcome_id', in: 'path' } }) });
const accepted = {
  description:
    'Accepted; for a `customer_id` merged into another customer, the outcome is the survivor’s (`merged_into`)',
  content: { 'application/json': { schema: z.object({ workflow_id: z.string(), ...mergedIntoFields }) } },
};

export function fraudRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/fraud-outcomes',
      tags: ['fraud'],
      security: bearerSecurity,
      summary: 'Report a fraud outcome: starts fraud-outcome-<outcome_id> (a repeat is a no-op)',
      middleware: [access(deps.authenticate, { scopes: ['fraud:report'] })] as const,
      request: { body: { required: true, content: { 'application/json': { schema: fraudOutcomeSchema } } } },
      responses: { 202: accepted, ...problems(400, 401, 403, 404, 409, 413) },
    }),
    async (c) => c.json(await reportFraudOutcome(deps, c.req.valid('json'), reporterOf(c.get('principal'))), 202),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/fraud-outcomes/{outcome_id}',
      tags: ['fraud'],
      security: bearerSecurity,
      summary: 'A fraud outcome’s status: what it changed, and its review',
      middleware: [access(deps.authenticate, { scopes: ['fraud:report', 'customers:read'] })] as const,
      request: { params: outcomeParams },
      responses: {
        200: { description: 'The status query', content: { 'application/json': { schema: statusSchema } } },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => c.json(await fraudOutcomeStatus(deps, c.req.valid('param').outcome_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/fraud-outcomes/{outcome_id}/review',
      tags: ['fraud'],
      security: bearerSecurity,
      summary:
        'Resolve the review of a suspension: reinstate the customer, or confirm the suspension. The first ' +
        'decision is taken; 409 when the outcome is not awaiting review or was decided already',
      middleware: [access(deps.authenticate, { scopes: ['ops'] })] as const,
      request: {
        params: outcomeParams,
        body: {
          required: true,
          content: {
            'application/json': {
              schema: z
                .strictObject({ decision: z.enum(['reinstate', 'confirm']), note: freeText(500).optional() })
                .openapi('FraudReview'),
            },
          },
        },
      },
      responses: {
        200: {
          description: 'The decision was taken and applied: the outcome’s final status',
          content: { 'application/json': { schema: statusSchema } },
        },
        ...problems(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      return c.json(
        await resolveReview(
          deps,
          c.req.valid('param').outcome_id,
          {
            decision: body.decision,
            ...(body.note ? { note: body.note } : {}),
          },
          c.get('principal').subject,
        ),
        200,
      );
    },
  );
  return app;
}
