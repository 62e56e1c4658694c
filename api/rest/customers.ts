/**
 * A customer's profile and wallet (possible matches: api/rest/possibleMatches.ts):
 *   GET/PUT /api/v1/customers/{id}/profile
 *   GET/POST /api/v1/customers/{id}/payment-methods, DELETE …/{pmId}
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { CUSTOMER_STATUSES, IDENTIFIER_TYPES, paymentMethodFields, text, withCardDetails } from '../../graph/model';
import { decimalAmount } from '../../graph/onboardingRequest';
import { observeCommits } from '../../graph/graph';
import { answerToken, customerTokenOf } from '../consistency';
import type { ApiDeps } from '../deps';
import { mergedIntoFields, predictedLtvField, walletItemSchema } from './responses';
import { addToWallet, getProfile, listWallet, removeFromWallet, updateProfile } from '../services/customers';
import {
  access,
  bearerSecurity,
  consistencyHeaders,
  customerAccess,
  customerParams,
  problems,
  reasonHeaders,
  validationHook,
} from './common';

const WALLET_WRITE_NOTE =
  'A suspended customer’s own token is refused (403 naming the status); the platform and ops give ' +
  '`Persona-Reason` for a customer who is not active, recorded as an `OpsActionRecorded` event. ' +
  'The id of a merged customer is refused (409 naming the survivor), whoever asks.';

const profile = z
  .object({
    customer_id: z.uuid(),
    status: z.enum(CUSTOMER_STATUSES),
    segment: z.string(),
    ltv: z.string().openapi({ description: 'Lifetime value: an exact decimal in `ltv_currency`, e.g. "1234.50"' }),
    ltv_currency: z.string().openapi({ description: 'The reporting currency (ISO 4217)' }),
    predicted_ltv: predictedLtvField,
    acquisition_date: z.string(),
    digital_identifiers: z.array(
      z.object({ type: z.enum(IDENTIFIER_TYPES), value: z.string(), is_verified: z.boolean() }),
    ),
    person: z
      .object({
        given_name: z.string().nullable(),
        family_name: z.string().nullable(),
        birth_date: z.string().nullable(),
      })
      .openapi({ description: 'Who the customer is, as far as Persona was told (each part null when not)' }),
    created_at: z.string(),
    updated_at: z.string(),
    ...mergedIntoFields,
  })
  .openapi('Profile');

/** Segment and/or LTV (an exact decimal in the reporting currency). */
function profileUpdateSchema(currency: string) {
  return z
    .strictObject({
      segment: text(64).optional(),
      ltv: decimalAmount(currency).optional(),
    })
    .refine((p) => Object.keys(p).length > 0, { message: 'send segment and/or ltv' })
    .openapi('ProfileUpdate', { minProperties: 1 });
}

const walletItem = walletItemSchema;
const recoveryOffer = z
  .object({
    payment_id: z.string(),
    workflow_id: z.string(),
    offered: z.number().int().openapi({ description: 'The order it was offered in: 1, the recovery started first' }),
    outcome: z.enum(['recovered', 'declined', 'skipped', 'not_tried', 'pending']).openapi({
      description:
        'recovered: charged with this card; declined; skipped: not charged (decline_code says why); ' +
        'not_tried: the retry ended without it; pending: no answer within the wait',
    }),
    decline_code: z.string().nullable(),
    state: z.string().nullable().openapi({ description: 'The recovery state after the retry (null while pending)' }),
    status_url: z.string().openapi({ description: 'Where to read the recovery’s status' }),
  })
  .openapi('RecoveryOffer');
const walletItemWithOffers = walletItem
  .extend({
    recoveries: z.array(recoveryOffer).optional().openapi({
      description: 'The customer’s running recoveries the card was offered to, each charging it at once',
    }),
  })
  .openapi('NewWalletItem');
const walletList = z
  .object({ data: z.array(walletItem), next_cursor: z.string().nullable(), ...mergedIntoFields })
  .openapi('WalletList');

const newPaymentMethod = withCardDetails(
  paymentMethodFields
    .omit({ id: true, status: true })
    .extend({ make_default: z.boolean().optional().openapi({ description: 'Make it the default method' }) })
    .strict(),
);

const walletParams = customerParams.extend({
  pmId: z.uuid().openapi({ param: { name: 'pmId', in: 'path' }, description: 'Payment method id (UUID)' }),
});

const common = { tags: ['customers'], security: bearerSecurity };

export function customerRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const read = customerAccess(deps, { scopes: ['customers:read'], self: true });
  const write = customerAccess(deps, { scopes: ['customers:write'], self: true });
  addProfileRoutes(app, deps, read);
  addWalletRoutes(app, deps, read, write);
  return app;
}

/** The app `customerRoutes` builds (the functions below add routes to it). */
type Routes = ReturnType<typeof customerRoutes>;

/** GET and PUT /api/v1/customers/{id}/profile. */
function addProfileRoutes(app: Routes, deps: ApiDeps, read: MiddlewareHandler) {
  const g = deps.graph;
  const profileUpdate = profileUpdateSchema(g.policy.reportingCurrency);

  app.openapi(
    createRoute({
      ...common,
      method: 'get',
      path: '/api/v1/customers/{id}/profile',
      summary: 'A customer’s profile',
      middleware: [read] as const,
      request: { params: customerParams },
      responses: {
        200: { description: 'The profile', content: { 'application/json': { schema: profile } } },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => c.json(await getProfile(g, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      ...common,
      method: 'put',
      path: '/api/v1/customers/{id}/profile',
      summary: 'Update segment or lifetime value (platform only)',
      description:
        'Segment and LTV are the platform’s to set: this needs `customers:write`; ' +
        'a customer’s own token is refused. The id of a merged customer is refused (409 naming the survivor).',
      middleware: [access(deps.authenticate, { scopes: ['customers:write'] })] as const,
      request: {
        params: customerParams,
        body: { required: true, content: { 'application/json': { schema: profileUpdate } } },
      },
      responses: {
        200: {
          description: 'The updated profile',
          headers: consistencyHeaders,
          content: { 'application/json': { schema: profile } },
        },
        ...problems(400, 401, 403, 404, 409, 413),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { result, events } = await observeCommits(() => updateProfile(g, id, c.req.valid('json')));
      answerToken(c, customerTokenOf(events, id));
      return c.json(result, 200);
    },
  );
}

/** The wallet: GET and POST /api/v1/customers/{id}/payment-methods, DELETE …/{pmId}. */
function addWalletRoutes(app: Routes, deps: ApiDeps, read: MiddlewareHandler, write: MiddlewareHandler) {
  const g = deps.graph;

  app.openapi(
    createRoute({
      ...common,
      method: 'get',
      path: '/api/v1/customers/{id}/payment-methods',
      summary: 'The wallet: the default first, then the most recently used',
      middleware: [read] as const,
      request: { params: customerParams },
      responses: {
        200: { description: 'Wallet items (never a token)', content: { 'application/json': { schema: walletList } } },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => c.json(await listWallet(g, c.req.valid('param').id), 200),
  );

  addPaymentMethodRoute(app, deps, write);

  app.openapi(
    createRoute({
      ...common,
      method: 'delete',
      path: '/api/v1/customers/{id}/payment-methods/{pmId}',
      summary: 'Remove a payment method; removing the default promotes the most recently used active one',
      description: WALLET_WRITE_NOTE,
      middleware: [write] as const,
      request: { params: walletParams, headers: reasonHeaders },
      responses: {
        204: { description: 'Removed', headers: consistencyHeaders },
        ...problems(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const { id, pmId } = c.req.valid('param');
      const { events } = await observeCommits(() =>
        removeFromWallet(deps, id, pmId, {
          principal: c.get('principal'),
          reason: c.req.valid('header')['persona-reason'],
        }),
      );
      answerToken(c, customerTokenOf(events, id));
      return c.body(null, 204);
    },
  );
}

/** POST /api/v1/customers/{id}/payment-methods: a card added, offered to the customer's running recoveries. */
function addPaymentMethodRoute(app: Routes, deps: ApiDeps, write: MiddlewareHandler) {
  app.openapi(
    createRoute({
      ...common,
      method: 'post',
      path: '/api/v1/customers/{id}/payment-methods',
      summary: 'Add a payment method (a gateway token, never a card number)',
      description: WALLET_WRITE_NOTE,
      middleware: [write] as const,
      request: {
        params: customerParams,
        headers: reasonHeaders,
        query: z.object({
          wait: z
            .enum(['true', 'false'])
            .optional()
            .openapi({ description: 'Wait (up to PERSONA_WAIT_TIMEOUT_MS) for the running recoveries’ answers' }),
        }),
        body: { required: true, content: { 'application/json': { schema: newPaymentMethod } } },
      },
      responses: {
        201: {
          description:
            'The new wallet item; with `recoveries` when running recoveries were offered it, each with its answer',
          headers: consistencyHeaders,
          content: { 'application/json': { schema: walletItemWithOffers } },
        },
        202: {
          description:
            'The card is added; a running recovery it was offered to has not answered yet ' +
            '(`outcome: pending`; read it at `status_url`)',
          headers: consistencyHeaders,
          content: { 'application/json': { schema: walletItemWithOffers } },
        },
        ...problems(400, 401, 403, 404, 409, 413),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { result, events } = await observeCommits(() =>
        addToWallet(
          deps,
          id,
          c.req.valid('json'),
          { principal: c.get('principal'), reason: c.req.valid('header')['persona-reason'] },
          { wait: c.req.valid('query').wait === 'true' },
        ),
      );
      answerToken(c, customerTokenOf(events, id));
      return result.recoveries?.some((r) => r.outcome === 'pending') ? c.json(result, 202) : c.json(result, 201);
    },
  );
}
