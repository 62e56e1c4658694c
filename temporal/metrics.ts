/**
 * Persona's business metrics: what the workflows count, exported by the worker on /metrics
 * beside the Temporal SDK's own. Counters appear with a `_total` suffix, and every series also
 * carries the worker's `namespace`, `taskQueue` and the `workflowType` that recorded it. The
 * worker creates every counter series at 0 when it starts (`values` lists them), so that
 * `increase()` sees the first event of a series too.
 */
import { RECOVERY_MECHANISMS } from '../payments/mechanisms';
import { ERASURE_WAITS } from './erasure';
import { ATTENTION_REASONS } from './recovery';
export interface BusinessMetric {
  /** The name a workflow records under (a counter is exported as `<name>_total`). */
  name: string;
  kind: 'counter' | 'gauge';
  unit: string;
  help: string;
  /** The workflow type that records it. */
  workflowType: string;
  /** Each label besides the workflow's own, with every value it takes. */
  values: Record<string, readonly string[]>;
}

export const BUSINESS_METRICS = {
  onboardings: {
    name: 'persona_onboardings',
    kind: 'counter',
    unit: 'onboardings',
    help: 'Onboardings finished, by outcome: created, matched, rejected (input the graph refused) or failed',
    workflowType: 'onboardingWorkflow',
    values: { outcome: ['created', 'matched', 'rejected', 'failed'] },
  },
  onboardingLinksRefused: {
    name: 'persona_onboarding_links_refused',
    kind: 'counter',
    unit: 'onboardings',
    help:
      'Onboardings whose verified identifier pointed at a customer and that were not linked to it, by reason: ' +
      'proof_conflicts (a different given name or date of birth), proof_on_two_customers, ' +
      'probability_below_threshold or too_many_recent_links (a squatted or shared identifier links many)',
    workflowType: 'onboardingWorkflow',
    // resolution/policy.ts LINK_REFUSALS (its test holds them equal: temporal/ sits below resolution/).
    values: {
      reason: ['proof_conflicts', 'proof_on_two_customers', 'probability_below_threshold', 'too_many_recent_links'],
    },
  },
  recoveries: {
    name: 'persona_payment_recoveries',
    kind: 'counter',
    unit: 'recoveries',
    help:
      'Payment recoveries finished, by outcome: recovered, failed (dunning exhausted) ' +
      'or stopped (fraud decline, cancelled)',
    workflowType: 'paymentRecoveryWorkflow',
    values: { outcome: ['recovered', 'failed', 'stopped'] },
  },
  recoveriesByMechanism: {
    name: 'persona_payment_recoveries_recovered',
    kind: 'counter',
    unit: 'recoveries',
    help:
      'Payment recoveries that recovered, by the one mechanism credited: account_updater, ' +
      'customer_added_card, retry (the failed method) or cascade (another method)',
    workflowType: 'paymentRecoveryWorkflow',
    values: { mechanism: RECOVERY_MECHANISMS },
  },
  recoveriesNeedingAttention: {
    name: 'persona_payment_recoveries_needing_attention',
    kind: 'counter',
    unit: 'recoveries',
    help:
      'Payment recoveries that stopped to wait for ops, by why: charge_refused (the gateway refused the ' +
      'request, or none was sent), charge_unknown (the gateway stayed away through every retry: it may have ' +
      'charged), record_failed (charged, but the graph refused the record) ' +
      'or graph_restored (the graph was restored from a backup that lacks its customer or payment method)',
    workflowType: 'paymentRecoveryWorkflow',
    values: { why: ATTENTION_REASONS },
  },
  recoveriesAttentionOverdue: {
    name: 'persona_payment_recoveries_attention_overdue',
    kind: 'counter',
    unit: 'recoveries',
    help:
      'Payment recoveries still waiting for ops when their attention deadline passed ' +
      '(PERSONA_ATTENTION_DEADLINE_HOURS), by why they wait',
    workflowType: 'paymentRecoveryWorkflow',
    values: { why: ATTENTION_REASONS },
  },
  recoveryChargesUnsettled: {
    name: 'persona_recovery_charges_unsettled',
    kind: 'counter',
    unit: 'charges',
    help:
      'Charges of unknown outcome a stopping recovery could not learn the fate of from the gateway: still ' +
      'asking past PERSONA_SETTLE_DEADLINE_HOURS (overdue), or refused an answer for good (refused, it stopped)',
    workflowType: 'paymentRecoveryWorkflow',
    values: { why: ['overdue', 'refused'] },
  },
  expiryNotifications: {
    name: 'persona_expiry_notifications',
    kind: 'counter',
    unit: 'notifications',
    help: 'Card-expiry warnings sent, by stage (days before the card expires: 60, 30, 7)',
    workflowType: 'expiryScanWorkflow',
    values: { stage: ['60', '30', '7'] },
  },
  cardsExpired: {
    name: 'persona_cards_expired',
    kind: 'counter',
    unit: 'cards',
    help: 'Cards the expiry scan marked expired',
    workflowType: 'expiryScanWorkflow',
    values: {},
  },
  expiryScanFinished: {
    name: 'persona_expiry_scan_last_success_timestamp_seconds',
    kind: 'gauge',
    unit: 'seconds',
    help: 'When an expiry scan last finished (Unix time); the newest across workers is the last scan',
    workflowType: 'expiryScanWorkflow',
    values: {},
  },
  interactionPruneFinished: {
    name: 'persona_interaction_prune_last_success_timestamp_seconds',
    kind: 'gauge',
    unit: 'seconds',
    help: 'When an interaction-claims prune last finished (Unix time); the newest across workers is the last prune',
    workflowType: 'interactionClaimsPruneWorkflow',
    values: {},
  },
  eventPruneFinished: {
    name: 'persona_event_prune_last_success_timestamp_seconds',
    kind: 'gauge',
    unit: 'seconds',
    help: 'When an event prune last finished (Unix time); the newest across workers is the last prune',
    workflowType: 'eventPruneWorkflow',
    values: {},
  },
  eventConsumersBehindCap: {
    name: 'persona_event_consumers_behind_cap',
    kind: 'gauge',
    unit: 'consumers',
    help:
      'Consumers of the change feed the last event prune found further behind than the cap: they no longer ' +
      'hold pruning back (alert above 0)',
    workflowType: 'eventPruneWorkflow',
    values: {},
  },
  fraudOutcomes: {
    name: 'persona_fraud_outcomes',
    kind: 'counter',
    unit: 'outcomes',
    help: 'Fraud outcomes applied, by kind: challenge_passed, confirmed_fraud, account_takeover, false_positive',
    workflowType: 'fraudOutcomeWorkflow',
    values: { kind: ['challenge_passed', 'confirmed_fraud', 'account_takeover', 'false_positive'] },
  },
  fraudReviews: {
    name: 'persona_fraud_reviews',
    kind: 'counter',
    unit: 'reviews',
    help: 'Fraud suspensions reviewed, by decision: reinstate, confirm, timed_out',
    workflowType: 'fraudOutcomeWorkflow',
    values: { decision: ['reinstate', 'confirm', 'timed_out'] },
  },
  fraudReviewsOverdue: {
    name: 'persona_fraud_reviews_overdue',
    kind: 'counter',
    unit: 'reviews',
    help:
      'Fraud suspensions still awaiting ops review when their decision was due (PERSONA_FRAUD_REVIEW_DUE_HOURS); ' +
      'counted once each, and they wait on (to PERSONA_FRAUD_REVIEW_DAYS)',
    workflowType: 'fraudOutcomeWorkflow',
    values: {},
  },
  eventsRelayed: {
    name: 'persona_events_relayed',
    kind: 'counter',
    unit: 'events',
    help: 'Change events the relay delivered to the subscriber',
    workflowType: 'eventRelayWorkflow',
    values: {},
  },
  eventsPublished: {
    name: 'persona_events_published',
    kind: 'counter',
    unit: 'events',
    help: 'Change events the Kafka publisher published to the events topic (a page published again counts again)',
    workflowType: 'kafkaPublisherWorkflow',
    values: {},
  },
  gatewayRepairs: {
    name: 'persona_gateway_repairs',
    kind: 'counter',
    unit: 'repairs',
    help:
      'What the gateway reconciliation repaired, by kind: recovery_recorded (a charge the graph lacked), ' +
      'method_deactivated (a token the issuer revoked)',
    workflowType: 'gatewayReconciliationWorkflow',
    values: { kind: ['recovery_recorded', 'method_deactivated'] },
  },
  gatewayDiscrepancies: {
    name: 'persona_gateway_discrepancies',
    kind: 'counter',
    unit: 'discrepancies',
    help: 'What gateway reconciliations flagged for ops, by kind (one in two overlapping windows counts twice)',
    workflowType: 'gatewayReconciliationWorkflow',
    values: {
      kind: [
        'charged_twice',
        'charge_not_recorded',
        'charged_but_recorded_failed',
        'amount_mismatch',
        'recovery_without_charge',
        'stranded_recovery',
      ],
    },
  },
  gatewayReconciliationFinished: {
    name: 'persona_gateway_reconciliation_last_success_timestamp_seconds',
    kind: 'gauge',
    unit: 'seconds',
    help: 'When a gateway reconciliation last finished (Unix time); the newest across workers is the last run',
    workflowType: 'gatewayReconciliationWorkflow',
    values: {},
  },
  gatewayReconciliationPageFailures: {
    name: 'persona_gateway_reconciliation_page_failures',
    kind: 'counter',
    unit: 'failures',
    help:
      'Pages of a reconciliation started by a restore that failed every attempt and are tried again after a ' +
      'pause (the run keeps at it until its window is covered), by phase',
    workflowType: 'gatewayReconciliationWorkflow',
    values: { phase: ['charges', 'pending', 'recoveries', 'stranded'] },
  },
  identityMerges: {
    name: 'persona_identity_merges',
    kind: 'counter',
    unit: 'merges',
    help:
      'Identity merges: consented (both customers) or ops (decided by ops) when one happens, undone when one is ' +
      'taken back; declined, expired (no answer in time), refused (a customer could not be merged), unreachable ' +
      '(a customer could not be asked) when one ends without merging',
    workflowType: 'identityMergeWorkflow',
    values: { outcome: ['consented', 'ops', 'declined', 'expired', 'refused', 'unreachable', 'undone'] },
  },
  erasuresOverdue: {
    name: 'persona_erasures_overdue',
    kind: 'counter',
    unit: 'erasures',
    help:
      'Erasures still waiting when their deadline passed (PERSONA_ERASURE_WAIT_DEADLINE_HOURS), by what they wait ' +
      'on: fraud_review, recoveries_stopping, workflows_closing; counted once each, and they wait on',
    workflowType: 'erasureWorkflow',
    values: { waiting_on: ERASURE_WAITS },
  },
} as const satisfies Record<string, BusinessMetric>;

/** The name a metric has on /metrics (counters gain `_total`). */
export function exportedName(metric: BusinessMetric): string {
  return metric.kind === 'counter' ? `${metric.name}_total` : metric.name;
}

/** Every label set a counter takes (the product of its label values; one empty set without labels). */
export function labelSets(metric: BusinessMetric): Record<string, string>[] {
  return Object.entries(metric.values).reduce<Record<string, string>[]>(
    (sets, [label, values]) => sets.flatMap((set) => values.map((v) => ({ ...set, [label]: v }))),
    [{}],
  );
}
