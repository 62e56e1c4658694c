/**
 * Request shapes that REST and gRPC both validate with, and how a validation issue names its
 * field. REST routes use them as their OpenAPI body schemas; gRPC handlers parse the same
 * messages with them, so a field is refused with the same words on both.
 */
import { z } from '@hono/zod-openapi';
import { PAYMENT_OUTCOMES } from '../graph/interactions';
import { addressInput, deviceInput, freeText, text } from '../graph/model';
import { containsIssuedCardNumber } from '../graph/tokens';
import { parseToken, type ConsistencyToken } from './consistency';

export const paymentIdField = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'must be 1–128 letters, digits and _ . : -')
  // Kept in the ledger, the gateway's records and the logs: never a card number.
  .refine((id) => !containsIssuedCardNumber(id), 'looks like a full card number; send the payment’s id');

export const paymentFailureSchema = z.strictObject({
  payment_id: paymentIdField,
  customer_id: z.uuid(),
  payment_method_id: z.uuid(),
  amount: z
    .number()
    .int()
    .positive()
    .max(999_999_999_999)
    .openapi({ description: 'Minor units of `currency`, at most 999,999,999,999' }),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR'),
  decline_code: z.string().regex(/^[a-z_]{2,64}$/, 'must be a gateway decline code such as insufficient_funds'),
  advice_code: z
    .string()
    .regex(/^\d{2}$/, "must be the network's two-digit Merchant Advice Code such as 03")
    .optional()
    .openapi({
      description:
        'The Merchant Advice Code of a Mastercard decline, as the processor gave it: the networks count the ' +
        'decline with it (03 or 21 bar the card, 24–30 set the earliest retry)',
    }),
  replaces: paymentIdField.optional().openapi({
    description:
      'The payment whose recovery this one replaces: the same payment reported again under a new id (after a ' +
      'restore, the recovery the restore wrote back). Taken only when that recovery is the same customer’s, ' +
      'has a verdict (failed or stopped), charged nothing and was not replaced before; else 409 naming this field',
  }),
});

/** Why the payment's owner says a payment no longer needs recovering (temporal/recovery.ts). */
export const NO_LONGER_OWED_REASONS = ['settled_elsewhere', 'not_owed'] as const;

/** The owner's word that a payment is no longer owed: `POST …/payment-recoveries/{payment_id}/no-longer-owed`. */
export const paymentNoLongerOwedSchema = z
  .strictObject({
    reason: z.enum(NO_LONGER_OWED_REASONS).openapi({
      description:
        'settled_elsewhere: the payment was paid another way; not_owed: it is no longer owed (the subscription ' +
        'was cancelled, the debt written off)',
    }),
    note: freeText(500).optional().openapi({ description: 'For ops, at most 500 characters (kept in the history)' }),
  })
  .openapi('PaymentNoLongerOwed');

/** The `kind` of a message on the payment-failures topic that is the owner's word, not a failure. */
export const NO_LONGER_OWED_KIND = 'payment_no_longer_owed';

/** The same word as a Kafka message on the payment-failures topic: the payment named in the body. */
export const paymentNoLongerOwedMessageSchema = paymentNoLongerOwedSchema.extend({
  kind: z.literal(NO_LONGER_OWED_KIND),
  payment_id: paymentIdField,
});

const OUTCOME_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export const outcomeIdField = z.string().regex(OUTCOME_ID, 'must be 1–128 letters, digits and _ . : -');

const outcomeBase = {
  outcome_id: outcomeIdField,
  customer_id: z.uuid(),
  device_id: z.uuid().optional(),
  payment_method_id: z.uuid().optional(),
};

/**
 * A fraud outcome. What each kind needs is part of the shape: a passed challenge names the
 * device that passed it, a confirmed fraud the payment method used.
 */
export const fraudOutcomeSchema = z
  .discriminatedUnion('outcome', [
    z.strictObject({
      ...outcomeBase,
      outcome: z.literal('challenge_passed'),
      device_id: z.uuid().openapi({ description: 'The device that passed the challenge' }),
    }),
    z.strictObject({
      ...outcomeBase,
      outcome: z.literal('confirmed_fraud'),
      payment_method_id: z.uuid().openapi({ description: 'The payment method used in the fraud' }),
    }),
    z.strictObject({ ...outcomeBase, outcome: z.literal('account_takeover') }),
    z.strictObject({ ...outcomeBase, outcome: z.literal('false_positive') }),
  ])
  .openapi('FraudOutcome');

/** PUT /devices/{id}/trust-score, gRPC UpdateDeviceTrustScore. */
export const deviceTrustSchema = z.strictObject({
  trust_score: z.number().min(0).max(1),
  reason: freeText(200)
    .optional()
    .openapi({
      description:
        "For the caller's own log only: Persona does not keep it. The device's DeviceTrustScoreUpdated says who set " +
        'the trust (a code): every customer of the device reads it, and it is published in clear',
    }),
});

/** POST /payment-methods/{id}/inactivate, gRPC MarkPaymentMethodInactive. */
export const inactivateSchema = z.strictObject({ reason: text(200) });

export interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

/** The dotted field an issue is about; an unknown key names the key itself. */
export function issueField(issue: Issue, target?: string): string {
  const path = issue.code === 'unrecognized_keys' && issue.keys?.[0] ? [...issue.path, issue.keys[0]] : issue.path;
  return path.map(String).join('.') || (target === 'json' ? 'body' : (target ?? 'body'));
}

/** The most items one POST /interactions (or RecordInteractions) carries. */
export const MAX_INTERACTIONS = 500;

const interactionDevice = deviceInput.omit({ trust_score: true }).openapi('InteractionDevice');
const interactionAddress = addressInput.omit({ id: true, is_default: true }).openapi('InteractionAddress');
/** The ids Persona records its own recovery charges under (activities/recovery.ts): no sender may use them. */
export const RESERVED_INTERACTION_PREFIX = 'recovery:';

/** How far ahead of our clock a sender's `occurred_at` may be: a time later than that would pin every "latest". */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

const interactionCommon = {
  id: paymentIdField.openapi({
    description:
      'The sender’s id of the interaction: the same id again is a no-op. Ids starting with `recovery:` are ' +
      'Persona’s own (a recovery’s charge): refused from anyone but ops, who count a recovery by hand',
  }),
  customer_id: z.uuid(),
  occurred_at: z.iso
    .datetime({ offset: true, local: false })
    .refine((v) => Number.isFinite(Date.parse(v)), 'must be a real instant (RFC 3339)')
    .refine(
      (v) => Date.parse(v) <= Date.now() + MAX_CLOCK_SKEW_MS,
      'must not be in the future (more than 5 minutes ahead of Persona’s clock)',
    )
    .openapi({ description: 'When it happened (RFC 3339); first/last times keep the earliest and latest' }),
};

/**
 * One interaction (POST /interactions, gRPC RecordInteractions): a payment's outcome, a login,
 * a shipment. Each item of a batch is parsed with this on its own, so one bad item is answered
 * `invalid` (its field named) while the others are recorded.
 */
export const interactionSchema = z
  .discriminatedUnion('type', [
    z.strictObject({
      ...interactionCommon,
      type: z.literal('payment'),
      payment_method_id: z.uuid(),
      amount: z
        .number()
        .int()
        .nonnegative()
        .max(999_999_999_999)
        .openapi({ description: 'Minor units of `currency` (an integer), at most 999,999,999,999' }),
      currency: z
        .string()
        .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR')
        .openapi({ description: 'Must be the reporting currency: no exchange rates are configured' }),
      outcome: z.enum(PAYMENT_OUTCOMES),
      decline_code: z
        .string()
        .regex(/^[a-z_]{2,64}$/, 'must be a gateway decline code such as insufficient_funds')
        .optional(),
      transaction_id: z.string().min(1).max(128).optional(),
      device: interactionDevice.optional(),
      shipping_address: interactionAddress.optional(),
    }),
    z.strictObject({ ...interactionCommon, type: z.literal('login'), device: interactionDevice }),
    z.strictObject({ ...interactionCommon, type: z.literal('shipment'), address: interactionAddress }),
    z.strictObject({
      ...interactionCommon,
      type: z.literal('ltv_feedback'),
      predicted_ltv: z
        .string()
        .max(32)
        .openapi({
          description:
            'The Oracle’s predicted lifetime value: an exact decimal in the reporting currency ("1234.50"); ' +
            'kept apart from the measured LTV, the latest by `occurred_at` wins',
        }),
    }),
  ])
  .openapi('Interaction');

/**
 * A write's consistency token, as a read passes it back (`x-persona-consistency`, `min_version`):
 * `c:<customer id>:<customer event sequence>` or `d:<device id>:<device event sequence>` (api/consistency.ts).
 */
export const consistencyTokenField = z
  .string()
  // The OpenAPI document carries the pattern, so a client (or the fuzzer) knows the format; every
  // value it admits parses (sequences below 10^15, safe integers).
  .regex(
    /^[cd]:[0-9A-Za-z-]{1,64}:(0|[1-9][0-9]{0,14})$/,
    'must be a consistency token from a write’s answer: c:<customer id>:<seq> or d:<device id>:<seq>',
  );

/** The token a valid `consistencyTokenField` names. */
export function parseConsistencyToken(token: string): ConsistencyToken {
  const parsed = parseToken(token);
  if (!parsed) throw new Error('not a consistency token (validate with consistencyTokenField first)');
  return parsed;
}
