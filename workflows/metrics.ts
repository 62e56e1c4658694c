/**
 * The business counters, recorded from workflow code through the SDK's workflow metric meter:
 * nothing is recorded while a workflow replays, so a worker restart counts nothing twice.
 * Names and meanings: temporal/metrics.ts.
 */
import { metricMeter } from '@temporalio/workflow';
import { BUSINESS_METRICS, type BusinessMetric } from '../temporal/metrics';

function add(metric: BusinessMetric, value: number, tags: Record<string, string> = {}): void {
  if (value > 0) metricMeter.createCounter(metric.name, metric.unit, metric.help).add(value, tags);
}

export function countOnboarding(outcome: 'created' | 'matched' | 'rejected' | 'failed'): void {
  add(BUSINESS_METRICS.onboardings, 1, { outcome });
}

export function countRecovery(outcome: 'recovered' | 'failed' | 'stopped'): void {
  add(BUSINESS_METRICS.recoveries, 1, { outcome });
}

export function countExpiryBatch(notified: Record<'60' | '30' | '7', number>, expired: number): void {
  for (const stage of ['60', '30', '7'] as const) add(BUSINESS_METRICS.expiryNotifications, notified[stage], { stage });
  add(BUSINESS_METRICS.cardsExpired, expired);
}

export function countFraudOutcome(kind: string): void {
  add(BUSINESS_METRICS.fraudOutcomes, 1, { kind });
}

export function countFraudReview(decision: 'reinstate' | 'confirm' | 'timed_out'): void {
  add(BUSINESS_METRICS.fraudReviews, 1, { decision });
}

export function countEventRelayed(): void {
  add(BUSINESS_METRICS.eventsRelayed, 1);
}

export function setRelayParked(parked: number): void {
  const m = BUSINESS_METRICS.relayParked;
  metricMeter.createGauge(m.name, 'int', m.unit, m.help).set(parked);
}
