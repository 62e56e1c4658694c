/** The payment-recovery workflow's contract: id, messages, state. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RecoveryMechanism } from '../payments/mechanisms';

export const RECOVERY_WORKFLOW_TYPE = 'paymentRecoveryWorkflow';

/**
 * The failure type of a charge whose outcome is not known yet (no answer, a 5xx, a 409 "in
 * flight", a refusal of a request sent again): retried under the same key, and never skipped.
 */
export const CHARGE_OUTCOME_UNKNOWN = 'ChargeOutcomeUnknown';
/** The failure type of a charge the gateway refused, the only request sent under its key: nothing charged. */
export const CHARGE_REFUSED = 'ChargeRefused';
/**
 * The failure type of a charge that failed before any request went (the processor could not name
 * the card, the account updater or Neo4j was away): the charge ledger has no attempt under the key.
 */
export const CHARGE_NOT_SENT = 'ChargeNotSent';
/** How long a charge's retryable failures (5xx, timeouts, 429, unknown outcomes) are retried before ops are asked. */
export const DEFAULT_CHARGE_RETRY_FOR = '6h';

export function recoveryWorkflowId(paymentId: string): string {
  return `payment-recovery-${paymentId}`;
}

/** The payment a recovery's workflow id names (`recoveryWorkflowId`'s inverse). */
export function paymentIdOfRecovery(workflowId: string): string {
  return workflowId.slice(recoveryWorkflowId('').length);
}

/** What Synapse reports: a recurring payment failed. */
export interface PaymentFailure {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  /** Minor units. */
  amount: number;
  currency: string;
  decline_code: string;
  /** The Merchant Advice Code of a Mastercard decline, when the processor gave one. */
  advice_code?: string;
  /**
   * The payment whose recovery this one replaces (a payment reported again under a new id, after a
   * restore): the charge ledger takes it only once that one has a verdict and charged nothing.
   */
  replaces?: string;
}

export interface RecoveryAttempt {
  payment_method_id: string;
  outcome: 'succeeded' | 'declined' | 'skipped';
  decline_code: string | null;
  at: string;
  /** Why a charge was skipped by a card-network rule: the rule, its table and when it allows one. */
  rule?: string;
  /** Why a dunning round's charge came when it did: the schedule, or the network rule it waited for. */
  scheduled_by?: string;
}

export type RecoveryState =
  'waiting' | 'recovering' | 'recovered' | 'dunning' | 'needs_attention' | 'failed' | 'stopped';

/** Why a recovery waits for ops: a charge that could not be made, or a write that could not be done. */
export interface RecoveryAttention {
  /** Why, as a code (the `PersonaAttentionReason` search attribute and the metric's `why`). */
  kind: AttentionReason;
  /** What failed, in words, with the failure's message. */
  reason: string;
  /** The method whose charge failed (null when the recording of a recovery failed). */
  payment_method_id: string | null;
  since: string;
  /**
   * The key of a charge whose outcome is not known: only `retry` (the same key, the same charge)
   * is allowed until the gateway says what became of it. Null otherwise.
   */
  unknown_charge: string | null;
  /** Whether ops may `skip`: only when nothing can have been charged. */
  skippable: boolean;
  /**
   * When ops should have answered (`since` plus the attention deadline): past it the recovery is
   * counted overdue (`persona_payment_recoveries_attention_overdue_total`) and alerts, and waits on.
   */
  due_at: string;
  /** Whether `due_at` passed with nobody answering (counted once, when it passed; the alert fires). */
  overdue: boolean;
}

/**
 * Why a recovery waits for ops: charge_refused (the gateway refused the one request sent, or
 * nothing was sent: skippable), charge_unknown (the gateway stayed away through every retry: the
 * charge may have gone through, only `retry` is safe — what a gateway outage leaves behind),
 * record_failed (charged, but the graph refused the record), graph_restored (a restore lost what
 * the recovery acts on).
 */
export const ATTENTION_REASONS = ['charge_refused', 'charge_unknown', 'record_failed', 'graph_restored'] as const;
export type AttentionReason = (typeof ATTENTION_REASONS)[number];

export interface RecoveryStatus {
  state: RecoveryState;
  attempts: RecoveryAttempt[];
  recovered_with: string | null;
  /** What recovered it, exactly one (payments/mechanisms.ts); set with `recovered_with`. */
  recovered_by: RecoveryMechanism | null;
  next_retry_at: string | null;
  /**
   * Why the next retry is when it is, in words: the dunning schedule's round, or the card-network
   * rule (with its table) that allows no charge earlier. Set with `next_retry_at`.
   */
  next_retry_reason: string | null;
  /** Set while the state is `needs_attention`. */
  attention: RecoveryAttention | null;
  /** Why the recovery stopped (cancelled, customer erased, fraud-class decline), when it did. */
  stop_reason: string | null;
  /** Notifications that could not be delivered (best-effort: the recovery went on without them). */
  undelivered: string[];
}

/** A recovery's status before anything happened: a new run's, and the base of one read from the ledger. */
export function initialRecoveryStatus(): RecoveryStatus {
  return {
    state: 'waiting',
    attempts: [],
    recovered_with: null,
    recovered_by: null,
    next_retry_at: null,
    next_retry_reason: null,
    attention: null,
    stop_reason: null,
    undelivered: [],
  };
}

/**
 * Ops' answer to a recovery that needs attention: charge the same method again with the same
 * idempotency key (the cause was fixed), or go on without it (only when nothing can have been
 * charged). A stop that comes with it wins.
 */
export interface AttentionDecision {
  action: 'retry' | 'skip';
  note?: string;
  /**
   * The `attention.since` the decision was made on: when given, a decision about an earlier
   * attention (a resent request, a stale screen) is refused instead of applied to a later one.
   */
  since?: string;
}

export interface RecoveryInput {
  /** Delays between dunning rounds, e.g. ['1d', '3d', '5d', '7d'] (PERSONA_DUNNING_SCHEDULE). */
  dunningSchedule: string[];
  /**
   * How long a charge's retryable failures are retried before ops are asked, e.g. '6h'
   * (PERSONA_CHARGE_RETRY_HOURS; DEFAULT_CHARGE_RETRY_FOR when absent).
   */
  chargeRetryFor?: string;
  /** How long ops have to answer a recovery that needs attention before it is overdue (DEFAULT_ATTENTION_DEADLINE). */
  attentionDeadline?: string;
  /**
   * How long a stopping recovery asks the gateway what became of a charge of unknown outcome
   * before the settling is overdue (counted, alerted; it asks on), e.g. '24h'
   * (PERSONA_SETTLE_DEADLINE_HOURS; DEFAULT_SETTLE_FOR when absent).
   */
  settleFor?: string;
}

/** How long a recovery waits for ops before it is counted overdue and alerts (PERSONA_ATTENTION_DEADLINE_HOURS). */
export const DEFAULT_ATTENTION_DEADLINE = '24h';

/** How long a stopping recovery asks about an unknown charge before it is overdue (PERSONA_SETTLE_DEADLINE_HOURS). */
export const DEFAULT_SETTLE_FOR = '24h';

export const paymentFailedSignal = defineSignal<[PaymentFailure]>('paymentFailed');
/** The customer added a payment method: retry at once. */
export const paymentMethodAddedSignal = defineSignal<[{ payment_method_id: string }]>('paymentMethodAdded');
/** A method must never be charged again in this recovery (a confirmed fraud on it). */
export const paymentMethodBlockedSignal =
  defineSignal<[{ payment_method_id: string; reason: string }]>('paymentMethodBlocked');
/**
 * Ops (or an erasure) stop a recovery, taken whatever it is doing (a recovery that has ended
 * refuses it): it charges nothing more — a charge in flight is settled with the gateway, never sent
 * again — and ends `stopped` (or recovered, when a charge went through first); the Update answers
 * its final status. Callers write the stop to the charge ledger first (graph/chargeLedger.ts
 * `requestRecoveryStop`). A recovery cancelled already accepts it again and answers the same.
 */
export const cancelRecoveryUpdate = defineUpdate<RecoveryStatus, [{ reason: string }]>('cancel');

/** The payment's owner (Synapse) says the payment no longer needs recovering. */
export interface PaymentNoLongerOwed {
  /** settled_elsewhere — paid another way; not_owed — the subscription was cancelled, the debt written off. */
  reason: 'settled_elsewhere' | 'not_owed';
  /** Free text for ops (at most 500 characters). */
  note?: string;
}

/** What the recovery did once the owner's word reached it. */
export interface OwnerStopAnswer {
  payment_id: string;
  /**
   * stopped — nothing of this payment was charged by Persona, and nothing will be;
   * recovered — Persona charged the payment before it could stop (`charge` says which charge:
   *   the owner refunds one of the two if it was settled elsewhere too);
   * failed — the recovery had ended without charging;
   * charge_unknown — it stopped, but the gateway could not say what became of the charge under
   *   `unknown_charge` (it may have gone through): the gateway reconciliation settles it.
   */
  outcome: 'stopped' | 'recovered' | 'failed' | 'charge_unknown';
  /** The idempotency key of a charge whose outcome stayed unknown (outcome `charge_unknown`), else null. */
  unknown_charge: string | null;
  /** The charge Persona made, when it made one: never hidden. */
  charge: { payment_method_id: string; charge_id: string | null; amount: number; currency: string } | null;
  state: RecoveryState;
  stop_reason: string | null;
}

/**
 * The owner's stop, accepted whatever the recovery is doing (unless it ended): it takes effect at
 * the next safe point — never between a charge and its record; a charge whose outcome is unknown
 * is first settled with the gateway, nothing sent again — and answers what the recovery did.
 */
export const paymentNoLongerOwedUpdate = defineUpdate<OwnerStopAnswer, [PaymentNoLongerOwed]>('paymentNoLongerOwed');

/**
 * Retry what needs attention, as ops' `retry` would: the signal Temporal's batch operations send
 * to every recovery a gateway outage left in `needs_attention` (`npm run ops:retry-recoveries`).
 * It carries no arguments (the payload codec binds a payload to one workflow: a batch cannot carry
 * one); a recovery that does not need attention, or waits for ops after a restore of the graph
 * (`graph_restored`: each is looked at), ignores it.
 */
export const retryAttentionSignal = defineSignal<[]>('retryAttention');
export const recoveryStatusQuery = defineQuery<RecoveryStatus>('recoveryStatus');
/** Rejected unless the recovery needs attention and nobody has decided yet; answers the status once acted on. */
export const resolveAttentionUpdate = defineUpdate<RecoveryStatus, [AttentionDecision]>('resolveAttention');

/** A card the customer just added, offered to a running recovery: it is charged at once. */
export interface CardOffer {
  payment_method_id: string;
}

/** What a recovery did with an offered card, once the retry that took it is over. */
export interface CardOfferAnswer {
  payment_id: string;
  payment_method_id: string;
  /**
   * recovered — the card was charged and paid; declined — it was charged and declined;
   * skipped — it was not charged (a network rule, a suspended customer: `decline_code` says);
   * not_tried — the retry ended without it (another method paid first, or it is not chargeable).
   */
  outcome: 'recovered' | 'declined' | 'skipped' | 'not_tried';
  decline_code: string | null;
  /** The recovery's state and method after the retry. */
  state: RecoveryState;
  recovered_with: string | null;
}

/** The states in which a recovery has ended: it takes no card any more. */
export const RECOVERY_ENDED: readonly RecoveryState[] = ['recovered', 'failed', 'stopped'];

/**
 * The type of an offer's refusal that means "signal the card instead": a run from before the
 * Update could answer, a recovery waiting for ops (an offer would hold one of the few Updates a
 * workflow may have in flight, which ops need for their decision), or offers already waiting.
 */
export const OFFER_BY_SIGNAL = 'RecoveryTakesCardBySignal';
/** Offers one recovery answers at a time; more are signalled (Temporal admits few Updates in flight). */
export const MAX_OFFERS_WAITING = 3;
/**
 * Offers a card the customer just added (`POST …/payment-methods`): validated (the recovery must
 * be running and not stopping), then charged at once like `paymentMethodAdded`, and answered
 * with what came of it once that retry is over — the synchronous answer a person adding a card
 * waits for. The update id `offer:<payment method id>` makes a resent offer the same one.
 */
export const offerPaymentMethodUpdate = defineUpdate<CardOfferAnswer, [CardOffer]>('offerPaymentMethod');
