/** The fraud-outcome workflow's contract: id, input, review signal, status query. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { AppliedFraudOutcome, FraudOutcomeReport, FraudReversal } from '../graph/fraud';

export const FRAUD_OUTCOME_WORKFLOW_TYPE = 'fraudOutcomeWorkflow';

/** One workflow per outcome: a repeated report of the same outcome is a no-op. */
export function fraudOutcomeWorkflowId(outcomeId: string): string {
  return `fraud-outcome-${outcomeId}`;
}

export interface FraudOutcomeInput {
  report: FraudOutcomeReport;
  /** How far a passed challenge raises the device's trust (PERSONA_FRAUD_TRUST_STEP). */
  trust_step: number;
  /** How long a suspension waits for ops' review (PERSONA_FRAUD_REVIEW_DAYS). */
  review_days: number;
}

export type FraudOutcomeState =
  'applying' | 'awaiting_review' | 'reinstated' | 'confirmed' | 'review_timed_out' | 'done';

export interface FraudOutcomeStatus {
  state: FraudOutcomeState;
  outcome: FraudOutcomeReport['outcome'];
  applied: AppliedFraudOutcome | null;
  reversal: FraudReversal | null;
  /** Recoveries told not to charge the compromised method. */
  recoveries_blocked: string[];
  review_deadline: string | null;
}

export type ReviewResolution = { decision: 'reinstate' | 'confirm'; note?: string };

/** Ops' review of a suspension: reinstate the customer, or confirm the suspension. */
export const reviewResolvedSignal = defineSignal<[ReviewResolution]>('reviewResolved');
export const fraudOutcomeStatusQuery = defineQuery<FraudOutcomeStatus>('fraudOutcomeStatus');
