/**
 * One payment recovery's state (`RecoveryRun`): what it was told, what it did, and what the
 * status query and the search attributes say of it. Its steps and its handlers (workflows/recovery.ts
 * and the modules beside it) all read and write this one object; what belongs together changes in
 * one call (`moveTo`, `attempted`), before any await.
 */
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { LedgerEnd } from '../graph/chargeReservation';
import {
  DEFAULT_ATTENTION_DEADLINE,
  DEFAULT_SETTLE_FOR,
  initialRecoveryStatus,
  type AttentionDecision,
  type AttentionReason,
  type OwnerStopAnswer,
  type PaymentFailure,
  type RecoveryInput,
  type RecoveryState,
  type RecoveryStatus,
} from '../temporal/recovery';
import { personaAttentionReason, personaRecoveryState } from '../temporal/searchAttributes';
import { msOf } from './durations';
import type { RecoveryNow, StopRequest } from './recoveryUpdates';

/** One payment's recovery as it stands: the run's state, shared by its steps and its handlers. */
export class RecoveryRun {
  readonly status: RecoveryStatus = initialRecoveryStatus();
  readonly workflowId = workflowInfo().workflowId;
  /** How long a stop asks the gateway about an unknown charge before the settling is overdue. */
  readonly settleMs: number;
  readonly attentionMs: number;

  /** The reported failure (`paymentFailed`); its customer follows a merge. */
  failure: PaymentFailure | null = null;
  /** Methods the customer added while the recovery ran, and methods the account updater renewed. */
  readonly added: string[] = [];
  readonly renewed: string[] = [];
  /** Methods blocked for good by a confirmed fraud: no renewal brings them back into this recovery. */
  readonly blocked: string[] = [];
  /** Methods never to charge again in this recovery (do-not-retry declines, deactivated, blocked). */
  readonly doNotCharge: string[] = [];

  /** Cards added (signals and offers), how many a pass took when it began, and how many a finished pass answered. */
  methodsAdded = 0;
  methodsTaken = 0;
  methodsAnswered = 0;
  /** Offers whose answer waits for a retry (each holds one of the workflow's Updates in flight). */
  offersWaiting = 0;

  /** A stop asked for (the first one names the reason); taken at the next safe point. */
  stopRequest: StopRequest | null = null;
  /** Ops' answer to the attention the recovery waits for. */
  decision: AttentionDecision | null = null;
  /** What a restore of the graph found missing (temporal/restore.ts): ops look before the next charge. */
  restored: string | null = null;
  /** A charge whose outcome the gateway could not tell when the recovery stopped (the owner is told). */
  unsettled: string | null = null;
  /** How the charge ledger says the recovery ended, when another run of it ended it first. */
  ledgerEnd: LedgerEnd | null = null;
  /** The charge that went through, once it has: what the owner's stop answers. */
  charged: OwnerStopAnswer['charge'] = null;
  /** Why the charges of the current dunning round came when they did (null in the first pass). */
  scheduledBy: string | null = null;
  /** The customer being told of the recovery while it is recorded. */
  recoveredNotice: Promise<void> | null = null;
  /** Set once `runToEnd` is over: the Updates waiting for the end answer then. */
  over = false;
  /** What the search attributes say now (upserted only when it changes). */
  private indexed: { state: RecoveryState | null; reason: AttentionReason | null } = { state: null, reason: null };

  constructor(readonly input: RecoveryInput) {
    this.settleMs = msOf(input.settleFor ?? DEFAULT_SETTLE_FOR, 'settleFor');
    this.attentionMs = msOf(input.attentionDeadline ?? DEFAULT_ATTENTION_DEADLINE, 'attentionDeadline');
  }

  /** The state and what goes with it, at once; the search attributes follow when they change. */
  moveTo(state: RecoveryState, fields: Partial<RecoveryStatus> = {}): void {
    Object.assign(this.status, fields, { state });
    const reason = state === 'needs_attention' ? (this.status.attention?.kind ?? null) : null;
    const changes: SearchAttributeUpdatePair[] = [];
    if (state !== this.indexed.state) changes.push({ key: personaRecoveryState, value: state });
    if (reason !== this.indexed.reason) changes.push({ key: personaAttentionReason, value: reason });
    if (changes.length === 0) return;
    this.indexed = { state, reason };
    upsertSearchAttributes(changes);
  }

  attempted(
    paymentMethodId: string,
    outcome: 'succeeded' | 'declined' | 'skipped',
    declineCode: string | null,
    extra: { rule?: string } = {},
  ): void {
    this.status.attempts.push({
      payment_method_id: paymentMethodId,
      outcome,
      decline_code: declineCode,
      at: now(),
      ...extra,
      ...(this.scheduledBy ? { scheduled_by: this.scheduledBy } : {}),
    });
  }

  neverAgain(paymentMethodId: string): void {
    if (!this.doNotCharge.includes(paymentMethodId)) this.doNotCharge.push(paymentMethodId);
  }

  get reported(): PaymentFailure {
    if (this.failure === null) throw new Error('the recovery has no payment failure yet');
    return this.failure;
  }

  get stopping(): boolean {
    return this.stopRequest !== null;
  }

  /** A card added that no pass has taken yet. */
  get cardWaiting(): boolean {
    return this.methodsAdded > this.methodsTaken;
  }

  /** What the Updates' rules read of the recovery now (workflows/recoveryUpdates.ts). */
  get asIs(): RecoveryNow {
    const { status, failure, stopRequest, decision, offersWaiting } = this;
    return { status, failure, stopRequest, decision, offersWaiting };
  }
}

export function now(): string {
  return new Date().toISOString();
}
