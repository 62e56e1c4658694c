/** The fraud-outcome workflow's contract: id, input, review signal, status query. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AppliedFraudOutcome, FraudOutcomeReport, FraudReporter, FraudReversal } from '../graph/fraud';

export const FRAUD_OUTCOME_WORKFLOW_TYPE = 'fraudOutcomeWorkflow';

/** One workflow per outcome: a repeated report of the same outcome is a no-op. */
export function fraudOutcomeWorkflowId(outcomeId: string): string {
  return `fraud-outcome-${outcomeId}`;
}

export interface FraudOutcomeInput {
  report: FraudOutcomeReport;
  /** Who reported it: a false positive from anyone but ops does not reverse what ops decided on review. */
  reported_by: FraudReporter;
  /** How far a passed challenge raises the device's trust (PERSONA_FRAUD_TRUST_STEP). */
  trust_step: number;
  /** How long a suspension waits for ops' review (PERSONA_FRAUD_REVIEW_DAYS). */
  review_days: number;
  /**
   * How long ops have to decide a review before it is overdue, as a workflow duration ('24h',
   * '90m'): PERSONA_FRAUD_REVIEW_DUE_HOURS. DEFAULT_REVIEW_DUE when absent.
   */
  review_due?: string;
}

/** How long ops have to decide a review before it is counted overdue and alerts (it waits on to review_days). */
export const DEFAULT_REVIEW_DUE = '24h';

export type FraudOutcomeState =
  | 'applying'
  | 'awaiting_review'
  | 'reinstated'
  | 'confirmed'
  | 'review_timed_out'
  | 'done'
  /** The graph refused the outcome for good (e.g. the customer was erased): nothing was changed. */
  | 'not_applied';

export interface FraudOutcomeStatus {
  state: FraudOutcomeState;
  outcome: FraudOutcomeReport['outcome'];
  applied: AppliedFraudOutcome | null;
  reversal: FraudReversal | null;
  /** Recoveries told not to charge the compromised method. */
  recoveries_blocked: string[];
  review_deadline: string | null;
  /**
   * When ops should have decided the review (its start plus `review_due`): past it the review is
   * overdue — counted once (`persona_fraud_reviews_overdue_total`), alerted — and waits on until
   * `review_deadline`. Null when no review waits.
   */
  review_due_at: string | null;
  /** Whether `review_due_at` passed with nobody deciding (stays true once set). */
  review_overdue: boolean;
  /** Ops' decision once taken (the first one; any later one is refused). */
  decision: ReviewResolution['decision'] | null;
  /** Why the outcome was not applied, or what went wrong after it was, in words. */
  problem: string | null;
  /** Notifications that could not be delivered (best-effort: the outcome went on without them). */
  undelivered: string[];
}

export type ReviewResolution = { decision: 'reinstate' | 'confirm'; note?: string };

/**
 * Ops' review of a suspension, as an Update: refused unless the outcome awaits review and
 * nobody has decided yet; answers the final status once the decision is applied.
 */
export const resolveReviewUpdate = defineUpdate<FraudOutcomeStatus, [ReviewResolution]>('resolveReview');
/**
 * The same decision as a signal: what a false positive sends to the outcome it reverses (a
 * workflow cannot send an Update).
 */
export const reviewResolvedSignal = defineSignal<[ReviewResolution]>('reviewResolved');
export const fraudOutcomeStatusQuery = defineQuery<FraudOutcomeStatus>('fraudOutcomeStatus');
