/**
 * The business metrics, recorded from workflow code through the SDK's workflow metric meter.
 * Nothing is recorded while a workflow replays its history, so a worker restart counts nothing
 * twice; a workflow task that fails after counting and runs again does count again (rare).
 * Names and meanings: temporal/metrics.ts.
 */
import { metricMeter } from '@temporalio/workflow';
import { BUSINESS_METRICS, type BusinessMetric } from '../temporal/metrics';

type ValueOf<M extends BusinessMetric, L extends keyof M['values']> = M['values'][L] extends readonly (infer V)[]
  ? V
  : never;

function add(metric: BusinessMetric, value: number, tags: Record<string, string> = {}): void {
  if (value > 0) metricMeter.createCounter(metric.name, metric.unit, metric.help).add(value, tags);
}

export function countOnboarding(outcome: ValueOf<typeof BUSINESS_METRICS.onboardings, 'outcome'>): void {
  add(BUSINESS_METRICS.onboardings, 1, { outcome });
}

export function countLinkRefused(reason: ValueOf<typeof BUSINESS_METRICS.onboardingLinksRefused, 'reason'>): void {
  add(BUSINESS_METRICS.onboardingLinksRefused, 1, { reason });
}

export function countRecovery(outcome: ValueOf<typeof BUSINESS_METRICS.recoveries, 'outcome'>): void {
  add(BUSINESS_METRICS.recoveries, 1, { outcome });
}

export function countRecoveredBy(mechanism: ValueOf<typeof BUSINESS_METRICS.recoveriesByMechanism, 'mechanism'>): void {
  add(BUSINESS_METRICS.recoveriesByMechanism, 1, { mechanism });
}

export function countRecoveryNeedingAttention(
  why: ValueOf<typeof BUSINESS_METRICS.recoveriesNeedingAttention, 'why'>,
): void {
  add(BUSINESS_METRICS.recoveriesNeedingAttention, 1, { why });
}

export function countRecoveryAttentionOverdue(
  why: ValueOf<typeof BUSINESS_METRICS.recoveriesAttentionOverdue, 'why'>,
): void {
  add(BUSINESS_METRICS.recoveriesAttentionOverdue, 1, { why });
}

export function countRecoveryChargeUnsettled(
  why: ValueOf<typeof BUSINESS_METRICS.recoveryChargesUnsettled, 'why'>,
): void {
  add(BUSINESS_METRICS.recoveryChargesUnsettled, 1, { why });
}

export function countExpiryBatch(
  notified: Record<ValueOf<typeof BUSINESS_METRICS.expiryNotifications, 'stage'>, number>,
  expired: number,
): void {
  for (const stage of BUSINESS_METRICS.expiryNotifications.values.stage)
    add(BUSINESS_METRICS.expiryNotifications, notified[stage], { stage });
  add(BUSINESS_METRICS.cardsExpired, expired);
}

/** Records when a scan finished, in the workflow's own (deterministic) time. */
export function markExpiryScanFinished(): void {
  const m = BUSINESS_METRICS.expiryScanFinished;
  metricMeter.createGauge(m.name, 'int', m.unit, m.help).set(Math.floor(Date.now() / 1000));
}

/** Records when an interaction-claims prune finished, in the workflow's own (deterministic) time. */
export function markInteractionPruneFinished(): void {
  const m = BUSINESS_METRICS.interactionPruneFinished;
  metricMeter.createGauge(m.name, 'int', m.unit, m.help).set(Math.floor(Date.now() / 1000));
}

/**
 * Records when an event prune finished, in the workflow's own (deterministic) time, and how many
 * consumers it found past the cap (alert above 0: they no longer hold pruning back).
 */
export function markEventPruneFinished(consumersBehindCap: number): void {
  const m = BUSINESS_METRICS.eventPruneFinished;
  metricMeter.createGauge(m.name, 'int', m.unit, m.help).set(Math.floor(Date.now() / 1000));
  const b = BUSINESS_METRICS.eventConsumersBehindCap;
  metricMeter.createGauge(b.name, 'int', b.unit, b.help).set(consumersBehindCap);
}

export function countFraudOutcome(kind: ValueOf<typeof BUSINESS_METRICS.fraudOutcomes, 'kind'>): void {
  add(BUSINESS_METRICS.fraudOutcomes, 1, { kind });
}

export function countFraudReview(decision: ValueOf<typeof BUSINESS_METRICS.fraudReviews, 'decision'>): void {
  add(BUSINESS_METRICS.fraudReviews, 1, { decision });
}

export function countFraudReviewOverdue(): void {
  add(BUSINESS_METRICS.fraudReviewsOverdue, 1);
}

export function countEventRelayed(events = 1): void {
  add(BUSINESS_METRICS.eventsRelayed, events);
}

export function countEventPublished(events: number): void {
  add(BUSINESS_METRICS.eventsPublished, events);
}

export function countGatewayRepairs(kind: ValueOf<typeof BUSINESS_METRICS.gatewayRepairs, 'kind'>, n: number): void {
  add(BUSINESS_METRICS.gatewayRepairs, n, { kind });
}

export function countGatewayDiscrepancies(
  kind: ValueOf<typeof BUSINESS_METRICS.gatewayDiscrepancies, 'kind'>,
  n: number,
): void {
  add(BUSINESS_METRICS.gatewayDiscrepancies, n, { kind });
}

/** Records when a gateway reconciliation finished, in the workflow's own (deterministic) time. */
export function markGatewayReconciliationFinished(): void {
  const m = BUSINESS_METRICS.gatewayReconciliationFinished;
  metricMeter.createGauge(m.name, 'int', m.unit, m.help).set(Math.floor(Date.now() / 1000));
}

export function countGatewayReconciliationPageFailure(
  phase: ValueOf<typeof BUSINESS_METRICS.gatewayReconciliationPageFailures, 'phase'>,
): void {
  add(BUSINESS_METRICS.gatewayReconciliationPageFailures, 1, { phase });
}

export function countIdentityMerge(outcome: ValueOf<typeof BUSINESS_METRICS.identityMerges, 'outcome'>): void {
  add(BUSINESS_METRICS.identityMerges, 1, { outcome });
}

export function countErasureOverdue(waitingOn: ValueOf<typeof BUSINESS_METRICS.erasuresOverdue, 'waiting_on'>): void {
  add(BUSINESS_METRICS.erasuresOverdue, 1, { waiting_on: waitingOn });
}
