/**
 * Payment failures and recoveries:
 *   POST /api/v1/payment-failures                 Synapse reports a failed recurring payment
 *   GET  /api/v1/payment-recoveries/{payment_id}  the recovery's status
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { ApiDeps } from '../deps';
import { recoveryStatus, reportPaymentFailure } from '../services/recovery';
import { access, bearerSecurity, problems, validationHook } from './common';

const PAYMENT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export const paymentFailureSchema = z.strictObject({
  payment_id: z.string().regex(PAYMENT_ID, 'must be 1–128 letters, digits and _ . : -'),
  customer_id: z.uuid(),
  payment_method_id: z.uuid(),
  amount: z.number().int().positive().openapi({ description: 'Minor units' }),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR'),
  decline_code: z.string().regex(/^[a-z_]{2,64}$/, 'must be a gateway decline code such as insufficient_funds'),
});

const statusSchema = z
  .object({
    state: z.enum(['waiting', 'recovering', 'recovered', 'dunning', 'failed', 'stopped']),
    attempts: z.array(
      z.object({
        payment_method_id: z.string(),
        outcome: z.string(),
        decline_code: z.string().nullable(),
        at: z.string(),
      }),
    ),
    recovered_with: z.string().nullable(),
    next_retry_at: z.string().nullable(),
  })
  .openapi('RecoveryStatus');

export function paymentRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/payment-failures',
      tags: ['payments'],
      security: bearerSecurity,
      summary: 'Report a failed recurring payment: starts (or signals) payment-recovery-<payment_id>',
      middleware: [access(deps.authenticate, { scopes: ['payments:report'] })] as const,
      request: { body: { required: true, content: { 'application/json': { schema: paymentFailureSchema } } } },
      responses: {
        202: {
          description: 'The recovery runs',
          content: { 'application/json': { schema: z.object({ workflow_id: z.string() }) } },
        },
        ...problems(400, 401, 403, 404, 413),
      },
    }),
    async (c) => c.json(await reportPaymentFailure(deps, c.req.valid('json')), 202),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/payment-recoveries/{payment_id}',
      tags: ['payments'],
      security: bearerSecurity,
      summary: 'A recovery’s status: state, attempts, the method it recovered with, the next retry',
      middleware: [access(deps.authenticate, { scopes: ['payments:report', 'customers:read'] })] as const,
      request: {
        params: z.object({
          payment_id: z
            .string()
            .regex(PAYMENT_ID)
            .openapi({ param: { name: 'payment_id', in: 'path' } }),
        }),
      },
      responses: {
        200: { description: 'The status query', content: { 'application/json': { schema: statusSchema } } },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => c.json(await recoveryStatus(deps, c.req.valid('param').payment_id), 200),
  );
  return app;
}
