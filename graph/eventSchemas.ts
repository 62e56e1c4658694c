/**
 * What each event type's payload holds: the contract with the feed's readers. A type never
 * changes meaning; a payload may gain fields (readers ignore what they do not know), never lose
 * or retype one. docs/events.schema.json is generated from here (`npm run events:schema`), and
 * the tests check every payload the system writes against it.
 */
import { z } from 'zod';
import { RECOVERY_MECHANISMS } from '../payments/mechanisms';
import {
  CUSTOMER_STATUSES,
  DEVICE_TRUST_REASONS,
  ERASURE_REASON_CODES,
  IDENTIFIER_TYPES,
  PAYMENT_METHOD_STATUSES,
  PAYMENT_METHOD_TYPES,
} from './model';

/** Every type of event the graph writes. */
export const EVENT_TYPES = [
  'CustomerCreated',
  'CustomerOnboarded',
  'CustomerProfileUpdated',
  'DigitalIdentifierAdded',
  'PaymentMethodAdded',
  'PaymentMethodStatusChanged',
  'DefaultPaymentMethodChanged',
  'DeviceLinked',
  'DeviceTrustScoreUpdated',
  'DeviceTrustEarned',
  'AddressAdded',
  'PaymentRecovered',
  'PaymentRecoveryFailed',
  'CustomerNotified',
  'CustomerSuspended',
  'CustomerReinstated',
  'PossibleMatchFound',
  'PaymentMethodRemoved',
  'BehavioralProfileRequested',
  'TrustedDeviceReported',
  'FraudOutcomeApplied',
  'FraudOutcomeReversed',
  'FraudReviewResolved',
  'CustomerErased',
  'OpsActionRecorded',
  'PaymentMethodUsedOnDevice',
  'GraphRestored',
  'PaymentMethodUpdatedByNetwork',
  'CustomersMerged',
  'CustomersUnmerged',
  'DeviceRemovedByCustomer',
  'AddressRemovedByCustomer',
  'HistoryEntryContested',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const id = z.string().min(1);
const fraud = { fraud_outcome_id: id.optional() };
const personParts = z.array(z.enum(['given_name', 'family_name', 'birth_date']));
const change = z.object({
  entity: z.enum(['payment_method', 'device', 'customer_device', 'customer']),
  id,
  field: z.string(),
  from: z.union([z.string(), z.number()]),
  to: z.union([z.string(), z.number()]),
});

export const EVENT_PAYLOADS = {
  CustomerCreated: z.looseObject({
    segment: z.string(),
    status: z.enum(CUSTOMER_STATUSES),
    /** Major units, as a number: kept for readers from before `ltv_minor`; read `ltv_minor`. */
    ltv: z.number(),
    /** Exact: minor units of `ltv_currency` (absent from events written before it existed). */
    ltv_minor: z.number().int().nonnegative().optional(),
    ltv_currency: z
      .string()
      .regex(/^[A-Z]{3}$/)
      .optional(),
    acquisition_date: z.string().nullable(),
  }),
  CustomerOnboarded: z.looseObject({
    onboarding_id: id,
    outcome: z.enum(['created', 'matched']),
    payment_method_id: id.nullable(),
    device_id: id.nullable(),
    address_id: id.nullable(),
    identifiers: z.array(z.looseObject({ type: z.string(), is_verified: z.boolean(), linked: z.boolean() })),
    /**
     * With a `person` in the request: the parts it set on a new customer; on a match, the parts the
     * record lacks (left unset: a link never writes who the person is) and those it said otherwise.
     */
    person: z.object({ filled: personParts, unfilled: personParts, differs: personParts }).optional(),
    /** On a match: the match model's probability for the link, and the table's version. */
    link: z.object({ probability: z.number().min(0).max(1), model_version: z.string() }).optional(),
  }),
  CustomerProfileUpdated: z.looseObject({
    changes: z.record(z.string(), z.object({ from: z.unknown(), to: z.unknown() })),
    /** With an LTV change: the currency of `changes.ltv_minor`. */
    ltv_currency: z
      .string()
      .regex(/^[A-Z]{3}$/)
      .optional(),
    /** Why, in words, when the change was not asked for directly (recorded interactions). */
    reason: z.string().optional(),
    /**
     * Recorded payments only: the payment methods whose `last_used` the succeeded payments moved, and
     * its value after the change (RFC 3339). The event is written for this alone, `changes` then `{}`.
     */
    payment_methods_used: z.array(z.looseObject({ payment_method_id: id, last_used: z.string() })).optional(),
  }),
  DigitalIdentifierAdded: z.looseObject({
    digital_identifier_id: id.optional(),
    type: z.enum(['email', 'phone_number']),
    is_verified: z.boolean(),
  }),
  PaymentMethodAdded: z.looseObject({
    payment_method_id: id,
    type: z.enum(PAYMENT_METHOD_TYPES),
    status: z.enum(PAYMENT_METHOD_STATUSES),
    brand: z.string().nullable(),
    last_four: z.string().nullable(),
    expiry_month: z.number().int().nullable(),
    expiry_year: z.number().int().nullable(),
    is_default: z.boolean(),
  }),
  PaymentMethodStatusChanged: z.looseObject({
    payment_method_id: id,
    from: z.enum(PAYMENT_METHOD_STATUSES),
    to: z.enum(PAYMENT_METHOD_STATUSES),
    reason: z.string().nullable(),
    ...fraud,
  }),
  DefaultPaymentMethodChanged: z.looseObject({ from: id.nullable(), to: id.nullable() }),
  PaymentMethodRemoved: z.looseObject({ payment_method_id: id, was_default: z.boolean() }),
  DeviceLinked: z.looseObject({ device_id: id, new_device: z.boolean(), login_count: z.number().int() }),
  DeviceTrustScoreUpdated: z.looseObject({
    device_id: id,
    from: z.number(),
    to: z.number(),
    /** Who moved it, as a code: every customer of the device reads it, published in clear. */
    reason: z.enum(DEVICE_TRUST_REASONS),
    ...fraud,
  }),
  DeviceTrustEarned: z.looseObject({ device_id: id, from: z.number(), to: z.number(), reason: z.string().nullable() }),
  AddressAdded: z.looseObject({ address_id: id, type: z.string(), country: z.string(), is_default: z.boolean() }),
  PaymentRecovered: z.looseObject({
    payment_id: id,
    payment_method_id: id,
    charge_id: z.string().nullable(),
    amount: z.number().int(),
    currency: z.string(),
    /**
     * What recovered it, exactly one (absent from events of recoveries before it was kept):
     * another of the customer's methods, the failed method retried, the account updater's renewal
     * of the card, or a card the customer added while the recovery ran.
     */
    mechanism: z.enum(RECOVERY_MECHANISMS).optional(),
  }),
  /** The networks' account updater renewed a card: its new expiry (and token, never published). */
  PaymentMethodUpdatedByNetwork: z.looseObject({
    payment_method_id: id,
    source: z.enum(['account_updater']),
    /** `YYYY-MM`; null when the method had none. */
    expiry_from: z.string().nullable(),
    expiry_to: z.string(),
    token_replaced: z.boolean(),
  }),
  /**
   * Two customer records became one (graph/identityMerge.ts), on both customers' logs: the manifest says
   * everything that moved to the survivor and every value that changed, with its value before.
   */
  CustomersMerged: z.looseObject({
    merge_id: id,
    survivor_id: id,
    merged_id: id,
    decided_by: z.enum(['consent', 'ops']),
    requested_by: z.string().nullable(),
    // Ops' `reason` (free text) stays in the graph's log, never published.
    manifest: z.looseObject({
      payment_methods: z.array(z.looseObject({ id, was_default: z.boolean(), is_default: z.boolean() })),
      devices: z.array(z.looseObject({ id })),
      addresses: z.array(z.looseObject({ id, was_default: z.boolean(), is_default: z.boolean() })),
      identifiers: z.array(z.looseObject({ id, type: z.string() })),
      ltv: z.looseObject({
        survivor_before: z.number().int(),
        merged: z.number().int(),
        survivor_after: z.number().int(),
      }),
      redirected: z.array(id),
    }),
  }),
  /** A merge taken back: what went back to the merged record, and what did not (and why). */
  CustomersUnmerged: z.looseObject({
    merge_id: id,
    survivor_id: id,
    merged_id: id,
    requested_by: z.string().nullable(),
    // Ops' `reason` (free text) stays in the graph's log, never published.
    restored: z.looseObject({
      payment_methods: z.array(id),
      devices: z.array(id),
      addresses: z.array(id),
      identifiers: z.array(id),
    }),
    not_restored: z.array(z.looseObject({ kind: z.string(), id: id.nullable(), reason: z.string() })),
  }),
  PaymentRecoveryFailed: z.looseObject({ payment_id: id, attempts: z.number().int(), reason: z.string() }),
  CustomerNotified: z.looseObject({
    kind: z.string(),
    channel: z.enum(['email', 'sms']).nullable(),
    payment_method_id: id.optional(),
    stage_days: z.number().int().optional(),
    expires: z.string().optional(),
    ...fraud,
  }),
  CustomerSuspended: z.looseObject({
    from: z.enum(CUSTOMER_STATUSES),
    to: z.literal('suspended'),
    reason: z.string(),
    ...fraud,
  }),
  CustomerReinstated: z.looseObject({
    from: z.enum(CUSTOMER_STATUSES),
    to: z.enum(CUSTOMER_STATUSES),
    reason: z.string(),
    ...fraud,
  }),
  PossibleMatchFound: z.looseObject({
    matched_customer_id: id,
    signals: z.array(z.string()),
    onboarding_id: id,
    /** The match model's probability that the two are one person, and the table's version. */
    probability: z.number().min(0).max(1),
    model_version: z.string(),
    /** Each identifier of the onboarding the matched customer holds: its type, verified on which side. */
    identifiers: z
      .array(
        z.looseObject({
          type: z.enum(IDENTIFIER_TYPES),
          incoming_verified: z.boolean(),
          on_file_verified: z.boolean(),
        }),
      )
      .optional(),
    /** Why the policy refused to link the proof's customer (graph/proofCheck.ts). */
    link_refused: z
      .object({
        reason: z.enum(['proof_conflicts', 'probability_below_threshold', 'too_many_recent_links']),
        conflicts: z.array(z.string()),
      })
      .optional(),
  }),
  BehavioralProfileRequested: z.looseObject({ onboarding_id: id, reference: z.string() }),
  TrustedDeviceReported: z.looseObject({ device_id: id, seen_on: z.string() }),
  FraudOutcomeApplied: z.looseObject({
    outcome_id: id,
    outcome: z.enum(['challenge_passed', 'confirmed_fraud', 'account_takeover']),
    changes: z.array(change),
    suspended: z.boolean(),
  }),
  FraudOutcomeReversed: z.looseObject({
    outcome_id: id,
    reported_by: z.enum(['ops', 'agent']).optional(),
    reversed_outcome_id: id.nullable(),
    restored: z.array(change),
    skipped: z.array(change),
    refused: z.object({ outcome_id: id, decision: z.enum(['reinstate', 'confirm']) }).optional(),
  }),
  FraudReviewResolved: z.looseObject({
    outcome_id: id,
    decision: z.enum(['reinstate', 'confirm', 'timed_out']),
    reinstated: z.boolean(),
    reapplied: z.array(change).optional(),
  }),
  CustomerErased: z.looseObject({
    deleted: z.object({
      identifiers: z.number().int(),
      addresses: z.number().int(),
      payment_methods: z.number().int(),
      devices: z.number().int(),
      events_stripped: z.number().int(),
      /** Keys of the customer's workflow histories destroyed: every history payload of theirs is unreadable. */
      history_keys: z.number().int(),
    }),
    /** Ops' request, if any: who, and its kind as a code — never ops' words (the event outlives the customer). */
    request: z
      .object({
        reason_code: z.enum(ERASURE_REASON_CODES),
        requested_by: z.string().nullable(),
        override_fraud_review: z.boolean(),
      })
      .optional(),
    // Records merged into it stay on the graph's fact (a retry answers them), never published:
    // each has a CustomerErased of its own, and naming them here would link them for ever.
  }),
  OpsActionRecorded: z.looseObject({
    /** What was done for the customer, with a reason (ops, or the platform, acting for a customer not active). */
    action: z.enum([
      'export',
      'add_payment_method',
      'remove_payment_method',
      'set_default_payment_method',
      'remove_device',
      'remove_address',
      'reset_auto_links',
    ]),
    reason: z.string(),
    /** The acting token's subject, when it has one. */
    actor: z.string().nullable(),
    /** The customer's status when it was done. */
    customer_status: z.enum(CUSTOMER_STATUSES),
    /** `reset_auto_links`: the auto-links of the last 30 days it cleared. */
    cleared: z.number().int().min(1).optional(),
  }),
  /**
   * The customer said a device is not theirs any more: their login edge to it is marked disowned,
   * not deleted (fraud checks, trust, shared-device signals and ops keep it; the customer's own
   * page and context leave it out). Once per disowning: a second removal appends nothing; their
   * next login from it links it again (DeviceLinked). Nothing about who else uses the device.
   */
  DeviceRemovedByCustomer: z.looseObject({ device_id: id }),
  /** The customer said an address is not theirs any more: as DeviceRemovedByCustomer, for an address. */
  AddressRemovedByCustomer: z.looseObject({ address_id: id }),
  /**
   * The customer contested an entry of their history (an event of theirs, named by id): a new
   * event for ops to review, the contested one unchanged. The payload also holds `words`, the
   * customer's own text (at most 1000 characters), which this contract deliberately does not name:
   * the graph's log (history, export, the HTTP feed) keeps it where erasure empties it, and it is
   * never published to Kafka, which erasure cannot reach (`publishedPayload`).
   */
  HistoryEntryContested: z
    .looseObject({ contested_event_id: id, contested_type: z.string(), contested_occurred_at: z.string() })
    .describe(
      'Also holds `words` (the customer’s text, at most 1000 characters): in the graph’s log and the ' +
        'HTTP feed, emptied by erasure with the rest of the payload, never published to Kafka.',
    ),
  /** A payment method first used on a device (a recorded payment interaction). */
  PaymentMethodUsedOnDevice: z.looseObject({
    payment_method_id: id,
    device_id: id,
    /** The device was first seen with this payment. */
    new_device: z.boolean(),
  }),
  /**
   * The graph was restored from a backup (backup/restore.ts): of no customer, the first event of
   * the log's new epoch that the restore's own writes follow. What the restore did, by ids only.
   */
  GraphRestored: z.looseObject({
    epoch: z.number().int(),
    previous_epoch: z.number().int(),
    backup: z.object({ id: z.string(), taken_at: z.string() }),
    /** Customers erased after the backup, erased again from Temporal's record of their erasure. */
    erasures_reapplied: z.array(id),
    /** History keys those erasures destroyed again (they were back with the restored graph). */
    history_keys_destroyed: z.number().int(),
    /** Running workflows the restore acted on, and why. */
    workflows: z.array(
      z.object({ workflow_id: id, action: z.enum(['needs_attention', 'terminated']), reason: z.string() }),
    ),
    /**
     * Payment recoveries that began after the backup and no longer run, written back into the charge
     * ledger as recovering (payment ids): each is settled with the gateway before its payment is
     * reported again. Absent in events of restores before it was kept.
     */
    recoveries_written_back: z.array(id).optional(),
    /** Who restored (`user@host`); why is on the event log's node (`restore_reason`), never an event. */
    requested_by: z.string(),
  }),
} satisfies Record<EventType, z.ZodType>;

/** Null when the payload keeps its type's contract; else what is wrong. */
export function payloadProblem(type: EventType, payload: unknown): string | null {
  const result = EVENT_PAYLOADS[type].safeParse(payload);
  return result.success
    ? null
    : result.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ');
}

/** The payload fields of each type its contract names: all that leaves Persona on a Kafka topic. */
export function publishedFields(type: EventType): string[] {
  return Object.keys(EVENT_PAYLOADS[type].shape);
}

/**
 * An event's payload as it is published outside Persona (Kafka, where erasure cannot reach): the
 * fields its type's contract names, each only as the contract has it — an object's fields it does
 * not name dropped, a value it does not take (old free text where a code is due) left out — so
 * nothing leaves Persona that the contract (and docs/events.md's table) does not name. An unknown
 * type publishes `{}`.
 */
export function publishedPayload(type: string, payload: Record<string, unknown>): Record<string, unknown> {
  if (!(EVENT_TYPES as readonly string[]).includes(type)) return {};
  const shape: Record<string, z.ZodType> = EVENT_PAYLOADS[type as EventType].shape;
  return Object.fromEntries(
    Object.entries(payload).flatMap(([k, v]) => {
      const parsed = shape[k]?.safeParse(v);
      return parsed?.success && parsed.data !== undefined ? [[k, parsed.data]] : [];
    }),
  );
}
