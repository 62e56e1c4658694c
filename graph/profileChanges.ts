/**
 * A batch's changes to its customers' profiles, and the one CustomerProfileUpdated each gets
 * (graph/interactions.ts): LTV, segment, the Oracle's prediction, VIP, the methods' `last_used`.
 * Pure: it is told what the statements read before and after their writes, and decides what
 * changed, why (in words), and whether VIP moved (one rule: graph/context.ts isVip).
 */
import { fromMinorUnits } from '../payments/money';
import { isVip } from './context';
import { ltvFields } from './customers';
import type { NewEvent } from './events';
import { byKey } from './interactionRows';
import type { ProfileRules } from './interactionModel';

/** Per customer, what changed on its profile and why: one CustomerProfileUpdated each. */
export interface ProfileChange {
  changes: Record<string, { from: unknown; to: unknown }>;
  why: string[];
  /** The methods whose last_used a succeeded payment moved, and where to (RFC 3339). */
  used: { payment_method_id: string; last_used: string }[];
}

/** What the VIP rule reads. */
export interface VipInputs {
  segment: string;
  ltv: number;
  predicted: number | null;
}

/** Why LTV moved: "2 succeeded payments and 1 refund or chargeback recorded". */
export const ltvReason = (succeeded: number, refunded: number): string =>
  [
    succeeded > 0 ? `${succeeded} succeeded payment${succeeded === 1 ? '' : 's'}` : '',
    refunded > 0 ? `${refunded} refund${refunded === 1 ? '' : 's'} or chargeback` : '',
  ]
    .filter(Boolean)
    .join(' and ') + ' recorded';

/** The lifetime value the VIP rule reads, in words. */
export const vipBasisWords = (basis: ProfileRules['vipBasis']): string =>
  basis === 'measured'
    ? 'lifetime value'
    : basis === 'predicted'
      ? 'predicted lifetime value'
      : 'lifetime value or predicted lifetime value';

/** VIP before and after, and why it moved; `null` if it did not. */
export function vipChange(
  before: VipInputs,
  after: VipInputs,
  rules: Pick<ProfileRules, 'vipLtvMinor' | 'vipBasis'>,
): { from: boolean; to: boolean; why: string } | null {
  const vipFrom = isVip(before.segment, before.ltv, before.predicted, rules);
  const vipTo = isVip(after.segment, after.ltv, after.predicted, rules);
  if (vipFrom === vipTo) return null;
  const basis = vipBasisWords(rules.vipBasis);
  return {
    from: vipFrom,
    to: vipTo,
    why: vipTo ? `${basis} reached the VIP threshold` : `${basis} fell below the VIP threshold`,
  };
}

/** What the payments' statement read of one customer, before and after its writes. */
export interface PaymentsEffect {
  succeeded: number;
  refunded: number;
  ltvFrom: number;
  ltvTo: number;
  segmentFrom: string;
  segmentTo: string;
  /** The succeeded payments counted after the batch. */
  succeededPayments: string;
  predicted: number | null;
  used: { paymentMethodId: string; lastUsed: string }[];
}

/** What the feedback statement read of one customer: its prediction before and after. */
export interface FeedbackEffect {
  segment: string;
  ltv: number;
  predictedFrom: number | null;
  predictedTo: number | null;
}

/** The batch's profile changes, per customer, in the order they are noted. */
export class ProfileChanges {
  private readonly profile = new Map<string, ProfileChange>();
  /** Per customer, what the VIP rule reads: before the batch (first seen) and after it (last seen). */
  private readonly vip = new Map<string, { before: VipInputs; after: VipInputs }>();

  of(id: string): ProfileChange {
    const known = this.profile.get(id);
    if (known) return known;
    const fresh: ProfileChange = { changes: {}, why: [], used: [] };
    this.profile.set(id, fresh);
    return fresh;
  }

  vipInputs(id: string, before: VipInputs, after: VipInputs): void {
    const known = this.vip.get(id);
    this.vip.set(id, { before: known?.before ?? before, after });
  }

  /** LTV, segment and the methods' use, from the payments. */
  notePayments(id: string, e: PaymentsEffect, currency: string): void {
    const { ltvFrom: from, ltvTo: to, segmentFrom, segmentTo, predicted } = e;
    this.vipInputs(id, { segment: segmentFrom, ltv: from, predicted }, { segment: segmentTo, ltv: to, predicted });
    const { changes, why, used } = this.of(id);
    for (const u of e.used) used.push({ payment_method_id: u.paymentMethodId, last_used: u.lastUsed });
    if (from !== to || used.length > 0) {
      if (from !== to) {
        changes.ltv_minor = { from, to };
        changes.ltv = { from: ltvFields(from, currency).ltv, to: ltvFields(to, currency).ltv };
      }
      why.push(ltvReason(e.succeeded, e.refunded));
    }
    if (segmentFrom !== segmentTo) {
      changes.segment = { from: segmentFrom, to: segmentTo };
      why.push(`${segmentTo} after ${e.succeededPayments} succeeded payments`);
    }
  }

  /** The Oracle's prediction: its own field, never added to the measured LTV. */
  noteFeedback(id: string, e: FeedbackEffect, currency: string): void {
    const { segment, ltv, predictedFrom: from, predictedTo: to } = e;
    this.vipInputs(id, { segment, ltv, predicted: from }, { segment, ltv, predicted: to });
    if (from === to) return;
    const { changes, why } = this.of(id);
    changes.predicted_ltv_minor = { from, to };
    changes.predicted_ltv = {
      from: from === null ? null : fromMinorUnits(from, currency),
      to: to === null ? null : fromMinorUnits(to, currency),
    };
    why.push('the Oracle’s LTV feedback');
  }

  /** VIP, from what the rule reads before the batch and after it. */
  noteVip(rules: Pick<ProfileRules, 'vipLtvMinor' | 'vipBasis'>): void {
    for (const [id, { before, after }] of this.vip) {
      const moved = vipChange(before, after, rules);
      if (moved === null) continue;
      const { changes, why } = this.of(id);
      changes.is_vip = { from: moved.from, to: moved.to };
      why.push(moved.why);
    }
  }

  /** One CustomerProfileUpdated per customer whose profile changed, in id order. */
  events(currency: string): NewEvent[] {
    const events: NewEvent[] = [];
    // A moved last_used alone is a change too (it orders the checkout): never silent.
    for (const [id, { changes, why, used }] of byKey(this.profile))
      if (Object.keys(changes).length > 0 || used.length > 0)
        events.push({
          type: 'CustomerProfileUpdated',
          customerId: id,
          transient: isTransient(changes),
          payload: {
            changes,
            ...(changes.ltv_minor || changes.predicted_ltv_minor ? { ltv_currency: currency } : {}),
            ...(used.length > 0 ? { payment_methods_used: used } : {}),
            reason: why.join('; '),
          },
        });
    return events;
  }
}

/** Profile changes a customer is not shown: the lifetime value moving, measured or predicted. */
const TRANSIENT_PROFILE_CHANGES: ReadonlySet<string> = new Set([
  'ltv',
  'ltv_minor',
  'predicted_ltv',
  'predicted_ltv_minor',
]);

/**
 * Whether a recorded interaction's CustomerProfileUpdated is transient: in the feed and on Kafka
 * (every consumer gets it) but not in the customer's history or export, because it is no change
 * of state the customer should see (docs/events.md, "What the graph keeps"). Only one that moved
 * nothing but the lifetime value and a card's last use is: the event of nearly every payment,
 * pruned from the graph as soon as every consumer has it (graph/eventPrune.ts); a segment or VIP
 * change is history. Asked for the interactions' changes only (graph/interactions.ts): a change
 * ops make to the lifetime value (`PUT …/profile`) is always history.
 */
function isTransient(changes: Record<string, unknown>): boolean {
  return Object.keys(changes).every((k) => TRANSIENT_PROFILE_CHANGES.has(k));
}
