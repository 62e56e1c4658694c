/** The payment-recovery workflow's contract: id, messages, state. */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export const RECOVERY_WORKFLOW_TYPE = 'paymentRecoveryWorkflow';

export function recoveryWorkflowId(paymentId: string): string {
  return `payment-recovery-${paymentId}`;
}

/** What Synapse reports: a recurring payment failed. */
export interface PaymentFailure {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  /** Minor units. */
  amount: number;
  currency: string;
  decline_code: string;
}

export interface RecoveryAttempt {
  payment_method_id: string;
  outcome: 'succeeded' | 'declined' | 'skipped';
  decline_code: string | null;
  at: string;
}

export type RecoveryState = 'waiting' | 'recovering' | 'recovered' | 'dunning' | 'failed' | 'stopped';

export interface RecoveryStatus {
  state: RecoveryState;
  attempts: RecoveryAttempt[];
  recovered_with: string | null;
  next_retry_at: string | null;
}

export interface RecoveryInput {
  /** Delays between dunning rounds, e.g. ['1d', '3d', '5d', '7d'] (PERSONA_DUNNING_SCHEDULE). */
  dunningSchedule: string[];
}

export const paymentFailedSignal = defineSignal<[PaymentFailure]>('paymentFailed');
/** The customer added a payment method: retry at once. */
export const paymentMethodAddedSignal = defineSignal<[{ payment_method_id: string }]>('paymentMethodAdded');
/** A method must never be charged again in this recovery (a confirmed fraud on it). */
export const paymentMethodBlockedSignal =
  defineSignal<[{ payment_method_id: string; reason: string }]>('paymentMethodBlocked');
/** Stop recovering (ops, or a fraud outcome). */
export const cancelRecoverySignal = defineSignal<[{ reason: string }]>('cancel');
export const recoveryStatusQuery = defineQuery<RecoveryStatus>('recoveryStatus');
