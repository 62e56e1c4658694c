import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  initialRecoveryStatus,
  MAX_OFFERS_WAITING,
  OFFER_BY_SIGNAL,
  type RecoveryAttention,
  type RecoveryStatus,
} from '../temporal/recovery';
import {
  REASON_MAX,
  validateCancel,
  validateDecision,
  validateOffer,
  validateOwnerStop,
  type RecoveryNow,
} from './recoveryUpdates';

/** A running recovery that took its failure, with `over` changed. */
function recovery(over: Partial<Omit<RecoveryNow, 'status'>> & { status?: Partial<RecoveryStatus> } = {}): RecoveryNow {
  const { status, ...rest } = over;
  return {
    failure: {
      payment_id: 'pay-1',
      customer_id: 'c-1',
      payment_method_id: 'pm-1',
      amount: 1000,
      currency: 'USD',
      decline_code: 'insufficient_funds',
    },
    stopRequest: null,
    decision: null,
    offersWaiting: 0,
    ...rest,
    status: { ...initialRecoveryStatus(), state: 'dunning', ...status },
  };
}

const attention = (over: Partial<RecoveryAttention> = {}): RecoveryAttention => ({
  kind: 'charge_refused',
  reason: 'the gateway could not be reached',
  payment_method_id: 'pm-1',
  since: '2026-11-28T10:00:00.000Z',
  unknown_charge: null,
  skippable: true,
  due_at: '2026-11-29T10:00:00.000Z',
  overdue: false,
  ...over,
});

/** The refusal `fn` throws: its type (ApplicationFailure) or null, and its message. */
function refusal(fn: () => void): { type: string | null; message: string } | null {
  try {
    fn();
    return null;
  } catch (err) {
    const e = err as Error;
    return { type: err instanceof ApplicationFailure ? (err.type ?? null) : null, message: e.message };
  }
}

describe('whether a recovery takes a card offered to it', () => {
  it('takes one while it runs', () => {
    expect(refusal(() => validateOffer(recovery(), { payment_method_id: 'pm-2' }))).toBeNull();
  });

  it('refuses a missing card, a recovery without its failure, one that ended or is stopping', () => {
    expect(refusal(() => validateOffer(recovery(), { payment_method_id: '' }))?.message).toMatch(/required/);
    expect(refusal(() => validateOffer(recovery({ failure: null }), { payment_method_id: 'pm-2' }))?.message).toMatch(
      /has not taken its payment failure/,
    );
    expect(
      refusal(() => validateOffer(recovery({ status: { state: 'recovered' } }), { payment_method_id: 'pm-2' }))
        ?.message,
    ).toBe('the recovery has ended (recovered)');
    const stopping = recovery({ stopRequest: { by: 'ops', reason: 'cancelled: duplicate' } });
    expect(refusal(() => validateOffer(stopping, { payment_method_id: 'pm-2' }))?.message).toBe(
      'the recovery is stopping: cancelled: duplicate',
    );
  });

  it('sends the card as a signal while ops decide, or while too many offers wait', () => {
    const waiting = recovery({ status: { state: 'needs_attention', attention: attention() } });
    expect(refusal(() => validateOffer(waiting, { payment_method_id: 'pm-2' }))?.type).toBe(OFFER_BY_SIGNAL);
    const full = recovery({ offersWaiting: MAX_OFFERS_WAITING });
    expect(refusal(() => validateOffer(full, { payment_method_id: 'pm-2' }))?.type).toBe(OFFER_BY_SIGNAL);
    const room = recovery({ offersWaiting: MAX_OFFERS_WAITING - 1 });
    expect(refusal(() => validateOffer(room, { payment_method_id: 'pm-2' }))).toBeNull();
  });
});

describe("whether a recovery takes ops' answer to what needs attention", () => {
  const waiting = (over: Partial<RecoveryAttention> = {}, rest: Partial<Omit<RecoveryNow, 'status'>> = {}) =>
    recovery({ ...rest, status: { state: 'needs_attention', attention: attention(over) } });

  it('takes a retry or a skip naming the attention it answers, or none', () => {
    expect(refusal(() => validateDecision(waiting(), { action: 'retry' }))).toBeNull();
    expect(refusal(() => validateDecision(waiting(), { action: 'skip', since: '2026-11-28T10:00:00Z' }))).toBeNull();
  });

  it('refuses one not waiting for ops, decided already, or stopping (but for a record to make)', () => {
    expect(refusal(() => validateDecision(recovery(), { action: 'retry' }))?.message).toBe(
      'the recovery does not need attention (it is dunning)',
    );
    const decided = waiting({}, { decision: { action: 'skip' } });
    expect(refusal(() => validateDecision(decided, { action: 'retry' }))?.message).toBe('ops decided already: skip');
    const stopping = { stopRequest: { by: 'owner' as const, reason: 'not owed' } };
    expect(refusal(() => validateDecision(waiting({}, stopping), { action: 'retry' }))?.message).toMatch(/stopping/);
    expect(
      refusal(() => validateDecision(waiting({ kind: 'record_failed' }, stopping), { action: 'retry' })),
    ).toBeNull();
  });

  it('refuses an unknown action, another attention, and a skip where a charge may have gone', () => {
    expect(refusal(() => validateDecision(waiting(), { action: 'charge' as never }))?.message).toBe(
      'action must be retry or skip',
    );
    expect(
      refusal(() => validateDecision(waiting(), { action: 'retry', since: '2026-11-28T09:00:00Z' }))?.message,
    ).toMatch(/answers the attention of 2026-11-28T09:00:00Z; the recovery now needs attention since/);
    const unknown = waiting({ unknown_charge: 'pay-1:pm-1', skippable: false });
    expect(refusal(() => validateDecision(unknown, { action: 'skip' }))?.message).toMatch(/skip is not safe here/);
    expect(refusal(() => validateDecision(unknown, { action: 'retry' }))).toBeNull();
  });
});

describe('whether a recovery takes a cancel now', () => {
  it('takes one with a reason at a safe point, and again while it stops', () => {
    expect(refusal(() => validateCancel(recovery(), { reason: 'duplicate' }))).toBeNull();
    const stopping = recovery({ stopRequest: { by: 'ops', reason: 'cancelled: duplicate' } });
    expect(refusal(() => validateCancel(stopping, { reason: 'again' }))).toBeNull();
  });

  it('refuses no reason, a long one, and a recovery that ended', () => {
    expect(refusal(() => validateCancel(recovery(), { reason: '  ' }))?.message).toBe('reason is required');
    expect(refusal(() => validateCancel(recovery(), { reason: 'x'.repeat(REASON_MAX + 1) }))?.message).toBe(
      `reason: at most ${REASON_MAX} characters`,
    );
    expect(refusal(() => validateCancel(recovery({ status: { state: 'failed' } }), { reason: 'x' }))?.message).toBe(
      'the recovery has ended (failed)',
    );
  });

  it('takes it whatever the recovery is doing: charging, recording, waiting for ops, an outcome unknown', () => {
    for (const r of [
      recovery({ status: { state: 'recovering' } }),
      recovery({ status: { recovered_with: 'pm-2' } }),
      recovery({ decision: { action: 'retry' }, status: { state: 'needs_attention', attention: attention() } }),
      recovery({ status: { state: 'needs_attention', attention: attention({ unknown_charge: 'pay-1:pm-1' }) } }),
      recovery({ stopRequest: { by: 'owner', reason: 'paid' } }),
    ])
      expect(refusal(() => validateCancel(r, { reason: 'duplicate' }))).toBeNull();
  });
});

describe("whether a recovery takes its owner's stop", () => {
  it('takes a known reason with a short note, even once the recovery ended', () => {
    expect(refusal(() => validateOwnerStop(recovery(), { reason: 'not_owed', note: 'refunded' }))).toBeNull();
    const ended = recovery({ status: { state: 'recovered' } });
    expect(refusal(() => validateOwnerStop(ended, { reason: 'settled_elsewhere' }))).toBeNull();
  });

  it('refuses another reason, a long note, and a recovery without its failure', () => {
    expect(refusal(() => validateOwnerStop(recovery(), { reason: 'changed_mind' as never }))?.message).toBe(
      'reason must be settled_elsewhere or not_owed',
    );
    expect(
      refusal(() => validateOwnerStop(recovery(), { reason: 'not_owed', note: 'x'.repeat(REASON_MAX + 1) }))?.message,
    ).toBe(`note: a string of at most ${REASON_MAX} characters`);
    expect(refusal(() => validateOwnerStop(recovery({ failure: null }), { reason: 'not_owed' }))?.message).toMatch(
      /has not taken its payment failure/,
    );
  });
});
