/** What an overdue erasure says of each workflow holding it: why it is open, in words ops can act on. */
import { describe, expect, it } from 'vitest';
import type { FraudOutcomeStatus } from '../temporal/fraud';
import type { RecoveryStatus } from '../temporal/recovery';
import { recoveryWhy, reviewWhy } from './erasure';

const recovery = (over: Partial<RecoveryStatus>): RecoveryStatus =>
  ({ state: 'recovering', attention: null, ...over }) as RecoveryStatus;

describe('why an erasure waits', () => {
  it('names a recovery’s charge of unknown outcome, other attentions by kind, and no gateway words', () => {
    const attention = {
      kind: 'charge_unknown' as const,
      reason: 'the gateway stayed away through every retry',
      payment_method_id: 'pm-1',
      since: '2026-11-26T10:00:00.000Z',
      unknown_charge: 'key-1',
      skippable: false,
      due_at: '2026-11-27T10:00:00.000Z',
      overdue: true,
    };
    expect(recoveryWhy(recovery({ state: 'needs_attention', attention }))).toBe(
      'payment recovery waits for ops: a charge of unknown outcome since 2026-11-26T10:00:00.000Z, overdue',
    );
    const refused = { ...attention, kind: 'charge_refused' as const, unknown_charge: null, overdue: false };
    expect(recoveryWhy(recovery({ state: 'needs_attention', attention: refused }))).toMatch(
      /^payment recovery waits for ops \(charge_refused\) since /,
    );
    expect(recoveryWhy(recovery({ state: 'recovering' }))).toMatch(/charge under way/);
    expect(recoveryWhy(recovery({ state: 'dunning' }))).toBe('payment recovery (dunning) has not taken the stop yet');
  });

  it('names a review awaiting ops with its deadline, and another state without its problem’s words', () => {
    const review = { state: 'awaiting_review', review_deadline: '2026-12-26T10:00:00.000Z', problem: null };
    expect(reviewWhy(review as FraudOutcomeStatus)).toBe(
      "fraud review awaits ops' decision (resolveReview) until 2026-12-26T10:00:00.000Z",
    );
    expect(reviewWhy({ ...review, state: 'applying', problem: 'Neo4j away' } as FraudOutcomeStatus)).toBe(
      'fraud outcome (applying) has not ended yet (it reports a problem)',
    );
  });
});
