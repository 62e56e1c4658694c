/**
 * The agents' routes:
 *   GET /api/v1/customers/{id}/context                      Cerebrum, Chimera
 *   GET /api/v1/customers/{id}/checkout-options?deviceId=   checkout (or the customer)
 *   PUT /api/v1/devices/{id}/trust-score                    Chimera
 *   POST /api/v1/payment-methods/{id}/inactivate            Chimera, ops
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { observeCommits } from '../../graph/graph';
import { answerToken, customerTokenOf, deviceTokenOf } from '../consistency';
import type { ApiDeps } from '../deps';
import { consistencyTokenField, deviceTrustSchema, inactivateSchema, parseConsistencyToken } from '../requests';
import { checkoutOptions, customerContext, markPaymentMethodInactive, setDeviceTrust } from '../services/context';
import {
  access,
  bearerSecurity,
  consistencyHeaders,
  customerAccess,
  customerParams,
  problems,
  validationHook,
} from './common';
import { customerContextSchema, mergedIntoFields, staleFields, walletItemSchema } from './responses';

/** A read that must reflect a write: the token from that write's answer. */
const consistencyRequestHeaders = z.object({
  'x-persona-consistency': consistencyTokenField.optional().openapi({
    format: 'persona-consistency-token',
    description:
      'The consistency token of a write (its answer’s `x-persona-consistency`): the answer reflects that ' +
      'write, on any api replica, or is refused (503 while Neo4j cannot answer; 409 for a token of another ' +
      'customer, or ahead of every write of this one); never older.',
  }),
});

const minVersion = (token: string | undefined) => (token === undefined ? null : parseConsistencyToken(token));

const idParam = (what: string) =>
  z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, description: `${what} id (UUID)` }) });

const tags = ['agents'];

export function contextRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  addContextRoute(app, deps);
  addCheckoutOptionsRoute(app, deps);
  addDeviceTrustRoute(app, deps);
  addInactivateRoute(app, deps);
  return app;
}

/** The app `contextRoutes` builds (the functions below add routes to it). */
type Routes = ReturnType<typeof contextRoutes>;

/** GET /api/v1/customers/{id}/context. */
function addContextRoute(app: Routes, deps: ApiDeps) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/customers/{id}/context',
      tags,
      security: bearerSecurity,
      summary: 'Customer context: status, VIP, LTV, trusted devices, default and active methods',
      middleware: [access(deps.authenticate, { scopes: ['context:read'] })] as const,
      request: { params: customerParams, headers: consistencyRequestHeaders },
      responses: {
        200: { description: 'The context', content: { 'application/json': { schema: customerContextSchema } } },
        ...problems(400, 401, 403, 404, 409),
      },
    }),
    async (c) =>
      c.json(
        await customerContext(
          deps,
          c.req.valid('param').id,
          undefined,
          minVersion(c.req.valid('header')['x-persona-consistency']),
        ),
        200,
      ),
  );
}

/** GET /api/v1/customers/{id}/checkout-options. */
function addCheckoutOptionsRoute(app: Routes, deps: ApiDeps) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/customers/{id}/checkout-options',
      tags,
      security: bearerSecurity,
      summary: 'Active, unexpired methods for checkout, the default first; none for a suspended customer',
      description:
        'When `deviceId` is one of the customer’s trusted devices, Chimera is told (at most once a day) ' +
        'without delaying this answer.',
      middleware: [customerAccess(deps, { scopes: ['context:read'], self: true })] as const,
      request: {
        params: customerParams,
        query: z.object({ deviceId: z.uuid().optional().openapi({ description: 'The device the checkout runs on' }) }),
        headers: consistencyRequestHeaders,
      },
      responses: {
        200: {
          description: 'Checkout options',
          content: {
            'application/json': {
              schema: z
                .object({
                  data: z.array(walletItemSchema),
                  trusted_device: z.boolean(),
                  ...mergedIntoFields,
                  ...staleFields,
                })
                .openapi('CheckoutOptions'),
            },
          },
        },
        ...problems(400, 401, 403, 404, 409),
      },
    }),
    async (c) =>
      c.json(
        await checkoutOptions(
          deps,
          c.req.valid('param').id,
          c.req.valid('query').deviceId ?? null,
          { principal: c.get('principal'), scopes: ['context:read'] },
          undefined,
          minVersion(c.req.valid('header')['x-persona-consistency']),
        ),
        200,
      ),
  );
}

/** PUT /api/v1/devices/{id}/trust-score. */
function addDeviceTrustRoute(app: Routes, deps: ApiDeps) {
  app.openapi(
    createRoute({
      method: 'put',
      path: '/api/v1/devices/{id}/trust-score',
      tags,
      security: bearerSecurity,
      summary: 'Set a device’s own trust score (0.0–1.0)',
      description:
        'A device-level signal: it caps the trust of every customer on the device (each customer’s trust ' +
        'there is the lower of what they earned on it and this). An agent does not raise a score that a ' +
        'fraud outcome ops confirmed on review set (409); ops may.',
      middleware: [access(deps.authenticate, { scopes: ['devices:write'] })] as const,
      request: {
        params: idParam('Device'),
        body: {
          required: true,
          content: {
            'application/json': {
              schema: deviceTrustSchema,
            },
          },
        },
      },
      responses: {
        200: {
          description: 'The new score',
          headers: consistencyHeaders,
          content: {
            'application/json': {
              schema: z.object({ device_id: z.string(), trust_score: z.number(), previous_trust_score: z.number() }),
            },
          },
        },
        ...problems(400, 401, 403, 404, 409, 413),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const { id } = c.req.valid('param');
      const { result, events } = await observeCommits(() =>
        setDeviceTrust(deps, c.get('principal'), id, body.trust_score, body.reason),
      );
      answerToken(c, deviceTokenOf(events, id));
      return c.json(result, 200);
    },
  );
}

/** POST /api/v1/payment-methods/{id}/inactivate. */
function addInactivateRoute(app: Routes, deps: ApiDeps) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/payment-methods/{id}/inactivate',
      tags,
      security: bearerSecurity,
      summary: 'Mark a payment method inactive, recording why',
      middleware: [access(deps.authenticate, { scopes: ['fraud:report', 'customers:write'] })] as const,
      request: {
        params: idParam('Payment method'),
        body: {
          required: true,
          content: { 'application/json': { schema: inactivateSchema } },
        },
      },
      responses: {
        200: {
          description: 'The method, now inactive',
          headers: consistencyHeaders,
          content: { 'application/json': { schema: walletItemSchema.extend({ customer_id: z.string() }) } },
        },
        ...problems(400, 401, 403, 404, 413),
      },
    }),
    async (c) => {
      const { result, events } = await observeCommits(() =>
        markPaymentMethodInactive(deps, c.req.valid('param').id, c.req.valid('json').reason),
      );
      answerToken(c, customerTokenOf(events, result.customer_id));
      return c.json(result, 200);
    },
  );
}
