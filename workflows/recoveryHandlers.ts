/**
 * A payment recovery's handlers (Temporal's safe-message-handlers idiom): registered once, when
 * the run begins; each only records what it was told in the run's state (a failure, a card, a
 * decision, a stop) or answers from it, and the steps act on it at their next safe point. The
 * Updates' validators are the pure rules of workflows/recoveryUpdates.ts.
 */
import { CancellationScope, condition, log, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import {
  cancelRecoveryUpdate,
  offerPaymentMethodUpdate,
  paymentFailedSignal,
  paymentMethodAddedSignal,
  paymentMethodBlockedSignal,
  paymentNoLongerOwedUpdate,
  recoveryStatusQuery,
  resolveAttentionUpdate,
  retryAttentionSignal,
  type AttentionDecision,
  type CardOffer,
  type CardOfferAnswer,
  type OwnerStopAnswer,
  type PaymentNoLongerOwed,
  type RecoveryStatus,
} from '../temporal/recovery';
import { personaCustomerId } from '../temporal/searchAttributes';
import { customerMergedSignal } from '../temporal/identityMerge';
import { graphRestoredSignal } from '../temporal/restore';
import type { RecoveryRun } from './recoveryState';
import { ended, validateCancel, validateDecision, validateOffer, validateOwnerStop } from './recoveryUpdates';

/** Every handler of the run, registered once, before its first step: each records, the steps act. */
export function registerHandlers(run: RecoveryRun): void {
  setHandler(recoveryStatusQuery, () => run.status);
  setHandler(paymentFailedSignal, (f) => {
    if (run.failure) log.info('the same payment was reported again; nothing changes', { paymentId: f.payment_id });
    else run.failure = f;
  });
  setHandler(paymentMethodAddedSignal, ({ payment_method_id }) => {
    run.methodsAdded++;
    if (typeof payment_method_id === 'string' && !run.added.includes(payment_method_id))
      run.added.push(payment_method_id);
  });
  setHandler(offerPaymentMethodUpdate, (card) => offer(run, card), {
    validator: (card: Partial<{ payment_method_id: unknown }> | undefined) => validateOffer(run.asIs, card),
  });
  setHandler(paymentMethodBlockedSignal, ({ payment_method_id, reason }) => {
    log.info('payment method blocked for this recovery', { paymentMethodId: payment_method_id, reason });
    if (!run.blocked.includes(payment_method_id)) run.blocked.push(payment_method_id);
    run.neverAgain(payment_method_id);
  });
  // The customer was merged into another record: its payment methods moved there (same ids), and
  // every later step (new charges, notifications, records) goes on against the survivor. A charge
  // made before keeps its first request, the merged record's (the ledger re-sends it as it was).
  setHandler(customerMergedSignal, ({ merged_id, survivor_id, merge_id }) => {
    if (run.failure?.customer_id !== merged_id) return;
    log.info('the customer was merged: the recovery goes on against the survivor', {
      mergedId: merged_id,
      survivorId: survivor_id,
      mergeId: merge_id,
    });
    run.failure.customer_id = survivor_id;
    upsertSearchAttributes([{ key: personaCustomerId, value: survivor_id }]);
  });
  setHandler(graphRestoredSignal, ({ reason, backup_id }) => {
    log.warn('the graph was restored from a backup that lacks what this recovery acts on', { reason, backup_id });
    run.restored = `the graph was restored from backup ${backup_id}: ${reason}`;
  });
  setHandler(resolveAttentionUpdate, (d) => resolveAttention(run, d), {
    validator: (d: Partial<AttentionDecision> | undefined) => validateDecision(run.asIs, d),
  });
  // Temporal's batch operations send it to every recovery an outage left waiting: ops' `retry`.
  // A restore's attention is not an outage's: ops look at each one (it is ignored here).
  setHandler(retryAttentionSignal, () => {
    const kind = run.status.attention?.kind;
    if (run.status.state !== 'needs_attention' || run.decision !== null || kind === 'graph_restored') return;
    // A stop answers every attention but a record's, which only a decision answers: retrying it records the charge.
    if (run.stopping && kind !== 'record_failed') return;
    log.info('payment recovery retried by a batch of ops', { paymentId: run.failure?.payment_id });
    run.decision = { action: 'retry', note: 'retried with every recovery waiting for the same reason' };
  });
  setHandler(cancelRecoveryUpdate, (req) => cancel(run, req), {
    validator: (req: Partial<{ reason: unknown }> | undefined) => validateCancel(run.asIs, req),
  });
  setHandler(paymentNoLongerOwedUpdate, (word) => noLongerOwed(run, word), {
    validator: (word: Partial<PaymentNoLongerOwed> | undefined) => validateOwnerStop(run.asIs, word),
  });
  // A cancellation request (ops in the UI) stops the recovery the way the owner's word does:
  // nothing more is charged, a charge under way is finished (or its unknown outcome settled) and recorded.
  CancellationScope.current().cancelRequested.catch(() => {
    run.stopRequest ??= { by: 'cancellation', reason: 'workflow cancelled' };
  });
}

/** A card the customer just added, charged at once; answered once the retry that took it is over. */
async function offer(run: RecoveryRun, { payment_method_id }: CardOffer): Promise<CardOfferAnswer> {
  // Counted before the first await, like the signal: the retry it wakes takes it.
  const ticket = ++run.methodsAdded;
  if (!run.added.includes(payment_method_id)) run.added.push(payment_method_id);
  run.offersWaiting++;
  try {
    await CancellationScope.nonCancellable(() => condition(() => run.methodsAnswered >= ticket || ended(run.asIs)));
  } finally {
    run.offersWaiting--;
  }
  const attempt = [...run.status.attempts].reverse().find((a) => a.payment_method_id === payment_method_id);
  const outcome = attempt?.outcome === 'succeeded' ? 'recovered' : attempt ? attempt.outcome : ('not_tried' as const);
  return {
    payment_id: run.failure?.payment_id ?? '',
    payment_method_id,
    outcome,
    decline_code: attempt?.decline_code ?? null,
    state: run.status.state,
    recovered_with: run.status.recovered_with,
  };
}

/** Ops' answer to what needs attention; answered with the status once the step it woke went on. */
async function resolveAttention(run: RecoveryRun, d: AttentionDecision): Promise<RecoveryStatus> {
  // Recorded before the first await: a second update in the same workflow task is refused by the validator.
  run.decision = d;
  await CancellationScope.nonCancellable(() => condition(() => run.status.state !== 'needs_attention'));
  return JSON.parse(JSON.stringify(run.status)) as RecoveryStatus;
}

/** Ops or an erasure stop the recovery; answered with its final status. */
async function cancel(run: RecoveryRun, { reason }: { reason: string }): Promise<RecoveryStatus> {
  run.stopRequest ??= { by: 'ops', reason: `cancelled: ${reason.trim()}` };
  // Answered at the end, whatever ends it (a cancellation request must not fail an accepted Update).
  await CancellationScope.nonCancellable(() => condition(() => run.over));
  return JSON.parse(JSON.stringify(run.status)) as RecoveryStatus;
}

/** The payment's owner says it is no longer owed: stop at the next safe point, answer what was done. */
async function noLongerOwed(run: RecoveryRun, word: PaymentNoLongerOwed): Promise<OwnerStopAnswer> {
  const note = word.note?.trim() ? `: ${word.note.trim()}` : '';
  if (!ended(run.asIs))
    run.stopRequest ??= {
      by: 'owner',
      reason: `the payment's owner says it is no longer owed (${word.reason})${note}`,
    };
  // Answered at the end, whatever ends it (a cancellation request must not fail an accepted Update).
  await CancellationScope.nonCancellable(() => condition(() => run.over));
  const { state } = run.status;
  const stopped = run.unsettled === null ? 'stopped' : 'charge_unknown';
  return {
    payment_id: run.reported.payment_id,
    outcome: state === 'recovered' ? 'recovered' : state === 'failed' ? 'failed' : stopped,
    charge: run.charged,
    unknown_charge: run.unsettled,
    state,
    stop_reason: run.status.stop_reason,
  };
}
