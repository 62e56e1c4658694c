/**
 * Persona's business metrics: what the workflows count, exported by the worker on /metrics
 * beside the Temporal SDK's own. Counters appear with a `_total` suffix, and every series also
 * carries the worker's `namespace`, `task_queue` and the `workflowType` that counted it.
 */
export interface BusinessMetric {
  /** The name a workflow records under (a counter is exported as `<name>_total`). */
  name: string;
  kind: 'counter' | 'gauge';
  unit: string;
  help: string;
  /** Labels besides the ones every workflow metric has. */
  labels: string[];
}

export const BUSINESS_METRICS = {
  onboardings: { name: 'persona_onboardings', kind: 'counter', unit: 'onboardings', help: 'Onboardings finished, by outcome: created, matched, rejected (input the graph refused) or failed', labels: ['outcome'] },
  recoveries: { name: 'persona_payment_recoveries', kind: 'counter', unit: 'recoveries', help: 'Payment recoveries finished, by outcome: recovered, failed (dunning exhausted) or stopped (fraud decline, cancelled)', labels: ['outcome'] },
  expiryNotifications: { name: 'persona_expiry_notifications', kind: 'counter', unit: 'notifications', help: 'Card-expiry warnings sent, by stage (days before the card expires: 60, 30, 7)', labels: ['stage'] },
  cardsExpired: { name: 'persona_cards_expired', kind: 'counter', unit: 'cards', help: 'Cards the expiry scan marked expired', labels: [] },
  fraudOutcomes: { name: 'persona_fraud_outcomes', kind: 'counter', unit: 'outcomes', help: 'Fraud outcomes applied, by kind: challenge_passed, confirmed_fraud, account_takeover, false_positive', labels: ['kind'] },
  fraudReviews: { name: 'persona_fraud_reviews', kind: 'counter', unit: 'reviews', help: 'Fraud suspensions reviewed, by decision: reinstate, confirm, timed_out', labels: ['decision'] },
  eventsRelayed: { name: 'persona_events_relayed', kind: 'counter', unit: 'events', help: 'Change events the relay delivered to the subscriber', labels: [] },
  relayParked: { name: 'persona_event_relay_parked_events', kind: 'gauge', unit: 'events', help: 'Events the relay has parked because the subscriber keeps refusing them', labels: [] },
} as const satisfies Record<string, BusinessMetric>;

/** The name a metric has on /metrics (counters gain `_total`). */
export function exportedName(metric: BusinessMetric): string {
  return metric.kind === 'counter' ? `${metric.name}_total` : metric.name;
}
