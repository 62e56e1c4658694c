/**
 * Whether a payment recovery takes an Update now (workflows/recoveryHandlers.ts registers them): its
 * validators, as pure rules over what the recovery is doing when the Update arrives, each refusal
 * with its reason. A refused Update never reaches the workflow's history; the caller is told why
 * (409), and OFFER_BY_SIGNAL says what to do instead.
 */
import { ApplicationFailure } from '@temporalio/common';
import {
  MAX_OFFERS_WAITING,
  OFFER_BY_SIGNAL,
  RECOVERY_ENDED,
  type AttentionDecision,
  type PaymentFailure,
  type PaymentNoLongerOwed,
  type RecoveryStatus,
} from '../temporal/recovery';

/**
 * Who asked the recovery to stop, and the reason its status and the ledger will say: ops or an
 * erasure (`cancel`), the payment's owner, a cancellation request (the UI), or the charge ledger
 * (a stop requested there before the workflow heard of it: graph/chargeLedger.ts).
 */
export interface StopRequest {
  by: 'ops' | 'owner' | 'cancellation' | 'ledger';
  reason: string;
}

/** The longest reason a `cancel` or note may carry (recorded in the status). */
export const REASON_MAX = 500;

/** What the rules read of a recovery, as it is when an Update arrives. */
export interface RecoveryNow {
  status: RecoveryStatus;
  /** The reported failure, once the recovery took it. */
  failure: PaymentFailure | null;
  /** A stop asked for, taken at the next safe point. */
  stopRequest: StopRequest | null;
  /** Ops' answer to the attention the recovery waits for. */
  decision: AttentionDecision | null;
  /** Offers whose answer waits for a retry. */
  offersWaiting: number;
}

/** Whether the recovery has ended (recovered, failed or stopped): the Updates' rules and its handlers ask. */
export const ended = (r: RecoveryNow): boolean => RECOVERY_ENDED.includes(r.status.state);

/**
 * A card offered to the running recovery (`offerPaymentMethod`): refused while it is stopping or
 * has ended; told to go as a signal (OFFER_BY_SIGNAL) while it waits for ops or too many offers wait.
 */
export function validateOffer(r: RecoveryNow, offer: Partial<{ payment_method_id: unknown }> | undefined): void {
  if (typeof offer?.payment_method_id !== 'string' || offer.payment_method_id === '')
    throw new Error('payment_method_id is required');
  refuseUnlessRunning(r);
  if (r.stopRequest) throw new Error(`the recovery is stopping: ${r.stopRequest.reason}`);
  const bySignal = (message: string) => ApplicationFailure.create({ type: OFFER_BY_SIGNAL, message });
  if (r.status.state === 'needs_attention')
    throw bySignal('the recovery waits for ops: signal the card, charged after their decision');
  if (r.offersWaiting >= MAX_OFFERS_WAITING)
    throw bySignal(`${r.offersWaiting} offers wait for this recovery's retry: signal the card`);
}

/**
 * Ops' answer to what needs attention (`resolveAttention`): only while it waits for one and none
 * was given; a `since` must name the attention it answers; `skip` only where no charge may have gone.
 */
export function validateDecision(r: RecoveryNow, d: Partial<AttentionDecision> | undefined): void {
  const { attention } = r.status;
  if (r.status.state !== 'needs_attention' || attention === null)
    throw new Error(`the recovery does not need attention (it is ${r.status.state})`);
  if (r.decision) throw new Error(`ops decided already: ${r.decision.action}`);
  if (r.stopRequest && attention.kind !== 'record_failed')
    throw new Error(`the recovery is stopping: ${r.stopRequest.reason}`);
  if (d?.action !== 'retry' && d?.action !== 'skip') throw new Error('action must be retry or skip');
  if (d.since !== undefined && Date.parse(d.since) !== Date.parse(attention.since))
    throw new Error(
      `the decision answers the attention of ${d.since}; the recovery now needs attention since ` +
        `${attention.since}: ${attention.reason}`,
    );
  if (d.action === 'skip' && !attention.skippable)
    throw new Error(
      'skip is not safe here: the gateway may have taken this charge; ' +
        'retry, under the same idempotency key, finds out',
    );
}

/**
 * Ops' or an erasure's stop (`cancel`): a reason, and a recovery that runs. Taken whatever the
 * recovery is doing, like the owner's stop: a charge under way is settled with the gateway, never
 * sent again, and the Update answers the recovery's final status.
 */
export function validateCancel(r: RecoveryNow, req: Partial<{ reason: unknown }> | undefined): void {
  if (typeof req?.reason !== 'string' || req.reason.trim() === '') throw new Error('reason is required');
  if (req.reason.length > REASON_MAX) throw new Error(`reason: at most ${REASON_MAX} characters`);
  refuseUnlessRunning(r);
}

/** The owner's stop (`paymentNoLongerOwed`): a known reason; never refused once the failure is taken. */
export function validateOwnerStop(r: RecoveryNow, word: Partial<PaymentNoLongerOwed> | undefined): void {
  if (word?.reason !== 'settled_elsewhere' && word?.reason !== 'not_owed')
    throw new Error('reason must be settled_elsewhere or not_owed');
  if (word.note !== undefined && (typeof word.note !== 'string' || word.note.length > REASON_MAX))
    throw new Error(`note: a string of at most ${REASON_MAX} characters`);
  // One that ended (and has not closed yet) is answered what it did, at once: never refused.
  if (r.failure === null) throw new Error('the recovery has not taken its payment failure yet');
}

/** Refuses an Update before the recovery took its failure, or once it has ended. */
export function refuseUnlessRunning(r: RecoveryNow): void {
  if (r.failure === null) throw new Error('the recovery has not taken its payment failure yet');
  if (ended(r)) throw new Error(`the recovery has ended (${r.status.state})`);
}
