/**
 * Payment failures and recoveries:
 *   POST /api/v1/payment-failures                 Synapse reports a failed recurring payment
 *   GET  /api/v1/payment-recoveries/{payment_id}  the recovery's status
 *   POST /api/v1/payment-recoveries/{payment_id}/attention  ops answer a recovery that needs attention
 *   POST /api/v1/payment-recoveries/{payment_id}/no-longer-owed  Synapse stops it: settled elsewhere, not owed
 */
import { RECOVERY_MECHANISMS } from '../../payments/mechanisms';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { freeText } from '../../graph/model';
import type { ApiDeps } from '../deps';
import { ATTENTION_REASONS } from '../../temporal/recovery';
import { paymentFailureSchema, paymentIdField, paymentNoLongerOwedSchema } from '../requests';
import { recoveryStatus, reportPaymentFailure, resolveAttention } from '../services/recovery';
import { paymentNoLongerOwed, reporterKey } from '../services/recoveryOwnerStop';
import { access, bearerSecurity, problems, validationHook } from './common';
import { mergedIntoFields } from './responses';

const RECOVERY_STATES = [
  'waiting',
  'recovering',
  'recovered',
  'dunning',
  'needs_attention',
  'failed',
  'stopped',
] as const;

const statusSchema = z
  .object({
    state: z.enum(RECOVERY_STATES),
    attempts: z.array(
      z.object({
        payment_method_id: z.string(),
        outcome: z.string(),
        decline_code: z.string().nullable(),
        at: z.string(),
        rule: z
          .string()
          .optional()
          .openapi({
            description:
              'A charge skipped by a card-network rule (decline_code network_retry_limit): the rule, ' +
              'its table version and when it allows a charge',
          }),
        scheduled_by: z
          .string()
          .optional()
          .openapi({
            description:
              "Why a dunning round's charge came when it did: the schedule's round, or the card-network " +
              'rule it waited for',
          }),
      }),
    ),
    recovered_with: z.string().nullable(),
    recovered_by: z
      .enum(RECOVERY_MECHANISMS)
      .nullable()
      .openapi({
        description:
          'What recovered it, exactly one: account_updater (a card the networks renewed), ' +
          'customer_added_card, retry (the failed method) or cascade (another method)',
      }),
    next_retry_at: z.string().nullable(),
    next_retry_reason: z
      .string()
      .nullable()
      .openapi({
        description:
          "Why the next retry is when it is: the dunning schedule's round, or the card-network rule that " +
          'allows no charge before',
      }),
    attention: z
      .object({
        kind: z.enum(ATTENTION_REASONS).openapi({
          description:
            'Why, as a code: charge_refused (skippable), charge_unknown (only retry: the charge may have gone ' +
            'through), record_failed (charged, not recorded), graph_restored',
        }),
        reason: z.string(),
        payment_method_id: z.string().nullable(),
        since: z.string(),
        unknown_charge: z
          .string()
          .nullable()
          .openapi({
            description:
              'The idempotency key of a charge whose outcome is unknown (it may have gone through): only retry ' +
              '(or a cancel, which asks the gateway first) until the gateway says',
          }),
        skippable: z.boolean().openapi({ description: 'Whether skip is allowed: only when nothing was charged' }),
        due_at: z.string().openapi({
          description: 'When ops should have answered (PERSONA_ATTENTION_DEADLINE_HOURS after since): overdue after',
        }),
      })
      .nullable()
      .openapi({ description: 'Why the recovery waits for ops (state needs_attention), else null' }),
    stop_reason: z.string().nullable(),
    undelivered: z.array(z.string()).openapi({ description: 'Notifications that could not be delivered' }),
    source: z
      .literal('ledger')
      .optional()
      .openapi({
        description:
          'Present when the recovery’s workflow did not answer (no worker polls its task queue: a deploy, a crash; ' +
          'or past Temporal’s retention) and this is what the charge ledger recorded: the state (`waiting` not ' +
          'started, `recovering` running, or how it ended), the charges as attempts and the recovering method — ' +
          'never the next retry, the attention or the undelivered notifications, which only the workflow knows',
      }),
    as_of: z
      .string()
      .optional()
      .openapi({ description: 'With `source`: the ledger’s last change for this recovery (RFC 3339)' }),
    replaces: z.string().optional().openapi({
      description: 'With `source`: the payment whose recovery this one replaces (its report’s `replaces`)',
    }),
    replaced_by: z.string().optional().openapi({
      description: 'With `source`: the payment reported again that replaced this recovery (it charged nothing)',
    }),
  })
  .openapi('RecoveryStatus');

const ownerStopSchema = z
  .object({
    payment_id: z.string(),
    outcome: z.enum(['stopped', 'recovered', 'failed', 'charge_unknown', 'stopping']).openapi({
      description:
        'stopped: Persona charged nothing for this payment and will not; recovered: Persona charged it before ' +
        'the word arrived (`charge` says which charge: refund one of the two if it was paid elsewhere too); ' +
        'failed: the recovery had ended without charging; charge_unknown: stopped, but the gateway never said ' +
        'what became of the charge under `unknown_charge` (it may have gone through; the gateway reconciliation ' +
        'settles it); stopping (202): taken, applied at the next safe point (a charge under way is settled ' +
        'first): read `status_url`, or send the same word again to wait for it',
    }),
    charge: z
      .object({
        payment_method_id: z.string(),
        charge_id: z.string().nullable(),
        amount: z.number().int().openapi({ description: 'Minor units of `currency`' }),
        currency: z.string(),
      })
      .nullable()
      .openapi({ description: 'The charge Persona made, when it made one: never left out' }),
    unknown_charge: z.string().nullable().openapi({
      description: 'The idempotency key of a charge whose outcome stayed unknown (outcome charge_unknown), else null',
    }),
    state: z.enum(RECOVERY_STATES).nullable().openapi({ description: 'The recovery’s state (null while stopping)' }),
    stop_reason: z.string().nullable(),
    status_url: z.string(),
  })
  .openapi('OwnerStopAnswer');

export function recoveryRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  addFailureRoutes(app, deps);
  addAttentionRoute(app, deps);
  addNoLongerOwedRoute(app, deps);
  return app;
}

/** The app `recoveryRoutes` builds (the functions below add routes to it). */
type Routes = ReturnType<typeof recoveryRoutes>;

/** POST /api/v1/payment-failures, and GET /api/v1/payment-recoveries/{payment_id}. */
function addFailureRoutes(app: Routes, deps: ApiDeps) {
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
          description:
            'The recovery runs; for a `customer_id` merged into another customer, the survivor’s (named in ' +
            '`merged_into`), whose wallet holds the method now',
          content: { 'application/json': { schema: z.object({ workflow_id: z.string(), ...mergedIntoFields }) } },
        },
        ...problems(400, 401, 403, 404, 409, 413),
      },
    }),
    async (c) => c.json(await reportPaymentFailure(deps, c.req.valid('json'), reporterKey(c.get('principal'))), 202),
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
          payment_id: paymentIdField.openapi({ param: { name: 'payment_id', in: 'path' } }),
        }),
      },
      responses: {
        200: {
          description:
            'The status query; when the workflow does not answer within half the request deadline, what the charge ' +
            'ledger recorded (`source: ledger`, `as_of`)',
          content: { 'application/json': { schema: statusSchema } },
        },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => c.json(await recoveryStatus(deps, c.req.valid('param').payment_id), 200),
  );
}

/** POST /api/v1/payment-recoveries/{payment_id}/attention. */
function addAttentionRoute(app: Routes, deps: ApiDeps) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/payment-recoveries/{payment_id}/attention',
      tags: ['payments'],
      security: bearerSecurity,
      summary:
        'Answer a recovery that needs attention: retry the charge that could not be made (same idempotency ' +
        'key), or skip that method; answers the status once the recovery acted on it',
      middleware: [access(deps.authenticate, { scopes: ['ops'] })] as const,
      request: {
        params: z.object({
          payment_id: paymentIdField.openapi({ param: { name: 'payment_id', in: 'path' } }),
        }),
        body: {
          required: true,
          content: {
            'application/json': {
              schema: z
                .strictObject({
                  action: z.enum(['retry', 'skip']),
                  note: freeText(500).optional(),
                  since: z
                    .string()
                    .regex(
                      /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?Z$/,
                      'must be an RFC 3339 date-time in UTC, as attention.since gives it',
                    )
                    .openapi({
                      description:
                        'The `attention.since` this decision answers (required: a decision without it ' +
                        'could land on a later problem): refused (409) when the recovery needs attention ' +
                        'for something later (a stale decision). The same decision sent again by the same ' +
                        'caller (an answer lost) is answered as the first was and taken once',
                    }),
                })
                .openapi('RecoveryAttentionDecision'),
            },
          },
        },
      },
      responses: {
        200: {
          description: 'The status after the decision',
          content: { 'application/json': { schema: statusSchema } },
        },
        ...problems(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      return c.json(
        await resolveAttention(
          deps,
          c.req.valid('param').payment_id,
          {
            action: body.action,
            ...(body.note ? { note: body.note } : {}),
            since: body.since,
          },
          c.get('principal').subject,
        ),
        200,
      );
    },
  );
}

/** POST /api/v1/payment-recoveries/{payment_id}/no-longer-owed. */
function addNoLongerOwedRoute(app: Routes, deps: ApiDeps) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/payment-recoveries/{payment_id}/no-longer-owed',
      tags: ['payments'],
      security: bearerSecurity,
      summary:
        'The payment’s owner says it was settled elsewhere or is no longer owed: the recovery stops at its next ' +
        'safe point (never between a charge and its record) and answers what it did, a charge it made included',
      middleware: [access(deps.authenticate, { scopes: ['payments:report'] })] as const,
      request: {
        params: z.object({
          payment_id: paymentIdField.openapi({ param: { name: 'payment_id', in: 'path' } }),
        }),
        query: z.object({
          wait: z
            .enum(['true', 'false'])
            .optional()
            .openapi({ description: 'Wait up to PERSONA_WAIT_TIMEOUT_MS for the recovery to stop (else 202 sooner)' }),
        }),
        body: { required: true, content: { 'application/json': { schema: paymentNoLongerOwedSchema } } },
      },
      responses: {
        200: {
          description: 'What the recovery did: stopped, recovered (with the charge) or failed',
          content: { 'application/json': { schema: ownerStopSchema } },
        },
        202: {
          description: 'Taken; the recovery stops at its next safe point (`outcome` stopping)',
          content: { 'application/json': { schema: ownerStopSchema } },
        },
        ...problems(400, 401, 403, 404, 409, 413),
      },
    }),
    async (c) => {
      const waitMs =
        c.req.valid('query').wait === 'true' ? deps.limits.waitTimeoutMs : deps.limits.requestDeadlineMs / 2;
      const principal = c.get('principal');
      const caller = { reporter: reporterKey(principal), ops: principal.scopes.has('ops') };
      const reply = await paymentNoLongerOwed(
        deps,
        c.req.valid('param').payment_id,
        c.req.valid('json'),
        waitMs,
        caller,
      );
      if (reply.outcome === 'stopping') return c.json(reply, 202);
      return c.json(reply, 200);
    },
  );
}
