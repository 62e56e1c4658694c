/**
 * Fraud outcome — workflow id `fraud-outcome-<outcome id>`, started by Chimera (a repeat of the
 * same outcome is a no-op).
 *
 *   challenge_passed → the device's trust rises by a bounded step;
 *   confirmed_fraud  → the method becomes compromised, the device's trust 0, the customer is
 *                      suspended, and every running recovery of the customer is told never to
 *                      charge that method again (`paymentMethodBlocked`);
 *   account_takeover → the customer is suspended, the device's trust 0, and the customer is
 *                      alerted through a verified email or phone;
 *   false_positive   → puts back what the customer's latest confirmed_fraud/account_takeover
 *                      changed, and ends that outcome's review (reinstate) — unless ops decided
 *                      that review already and the report is not ops' own: then it is recorded,
 *                      changes nothing and ends `not_applied` saying so.
 * After a suspension the workflow waits for ops' decision (the `resolveReview` Update, or the
 * `reviewResolved` signal a false positive sends) for up to `review_days`; a timeout leaves the
 * customer suspended and is recorded. The decision is due after `review_due` (a day): past it the
 * review is overdue (`review_overdue`, counted, alert PersonaFraudReviewOverdue) and waits on.
 * The first decision is final; a later one is refused.
 *
 * It never ends Failed: the graph writes are retried until done, a change the graph refuses for
 * good ends `not_applied` with the reason, and the account-takeover alert is best-effort and
 * sent while the review already waits, so a refused alert cannot keep ops from deciding.
 */
import {
  allHandlersFinished,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { FraudActivities } from '../activities/fraud';
import type { AppliedFraudOutcome, FraudChange, ReviewDecision } from '../graph/fraud';
import {
  DEFAULT_REVIEW_DUE,
  fraudOutcomeStatusQuery,
  fraudOutcomeWorkflowId,
  resolveReviewUpdate,
  reviewResolvedSignal,
  type FraudOutcomeInput,
  type FraudOutcomeStatus,
  type ReviewResolution,
} from '../temporal/fraud';
import { paymentMethodBlockedSignal } from '../temporal/recovery';
import { customerMergedSignal } from '../temporal/identityMerge';
import { graphRestoredSignal } from '../temporal/restore';
import { describeFailure, domainFailureOf } from '../temporal/failures';
import { personaOverdue } from '../temporal/searchAttributes';
import { activitiesWithSummaries, graphWriteUntilDone } from './activityOptions';
import { countFraudOutcome, countFraudReview, countFraudReviewOverdue } from './metrics';
import { notifications } from './notifications';
import { autoUpgrade } from './versioning';
import { msOf } from './durations';

const APPLY: Record<FraudOutcomeInput['report']['outcome'], string> = {
  challenge_passed: 'raise the device’s trust by one step',
  confirmed_fraud: 'mark the payment method compromised, distrust the device, suspend the customer',
  account_takeover: 'distrust the device and suspend the customer',
  false_positive: 'nothing to apply',
};

const fraudActivities = (options: ActivityOptions) =>
  activitiesWithSummaries<FraudActivities>(options, {
    applyFraudOutcome: (report) =>
      `Apply ${report.outcome.replace(/_/g, ' ')} ${report.outcome_id} to customer ${report.customer_id}: ` +
      `${APPLY[report.outcome]}, with an event per change`,
    reverseFraudOutcome: (req) =>
      `Put back what customer ${req.customer_id}'s latest fraud outcome changed, value by value ` +
      `(false positive ${req.outcome_id})`,
    resolveFraudReview: (req) =>
      `Record ops' review of ${req.outcome_id}: ` +
      (req.decision === 'reinstate'
        ? 'reinstate the customer'
        : req.decision === 'confirm'
          ? 'the suspension stands'
          : 'no decision in time, the customer stays suspended'),
    listRunningRecoveries: (req) =>
      `Find customer ${req.customer_id}'s running payment recoveries, ` +
      'to tell them not to charge the compromised method',
  });
/** A suspension, its reversal and its review's end must reach the graph: retried until done. */
const fraudUntilDone = fraudActivities(graphWriteUntilDone);

/** Signals another workflow; one that has finished (or never ran) has nothing to be told. */
async function tell(
  workflowId: string,
  send: (h: ReturnType<typeof getExternalWorkflowHandle>) => Promise<void>,
): Promise<boolean> {
  try {
    await send(getExternalWorkflowHandle(workflowId));
    return true;
  } catch (err) {
    log.info(`workflow ${workflowId} not signalled: it is not running`, {
      otherWorkflowId: workflowId,
      error: err instanceof Error ? err.message : String(err),
    });
    return false;
  }
}

/** What the workflow's handlers and steps share: its input, its status, and ops' decision once made. */
interface FraudRun {
  input: FraudOutcomeInput;
  report: FraudOutcomeInput['report'];
  workflowId: string;
  status: FraudOutcomeStatus;
  review: ReviewResolution | null;
}

autoUpgrade(fraudOutcomeWorkflow);
export async function fraudOutcomeWorkflow(input: FraudOutcomeInput): Promise<FraudOutcomeStatus> {
  const status = await applyAndReview(input);
  // A review's Update answers before the run closes (whatever activation decided it), so its answer
  // is recorded and a resend of it is told the same.
  await condition(allHandlersFinished);
  return status;
}

/** The outcome applied (or reversed), and its review when it suspended the customer. */
async function applyAndReview(input: FraudOutcomeInput): Promise<FraudOutcomeStatus> {
  const graph = fraudUntilDone;
  const { report } = input;
  const { workflowId } = workflowInfo();
  const status: FraudOutcomeStatus = {
    state: 'applying',
    outcome: report.outcome,
    applied: null,
    reversal: null,
    recoveries_blocked: [],
    review_deadline: null,
    review_due_at: null,
    review_overdue: false,
    decision: null,
    problem: null,
    undelivered: [],
  };
  const run: FraudRun = { input, report, workflowId, status, review: null };
  setHandlers(run);

  if (report.outcome === 'false_positive') return reverseEarlier(run);

  let applied;
  try {
    applied = await graph.applyFraudOutcome(report, { trust_step: input.trust_step, reported_by: input.reported_by });
  } catch (err) {
    return refused(run, err, 'the graph refused the outcome');
  }
  status.applied = applied;
  countFraudOutcome(report.outcome);
  log.info(`fraud outcome ${report.outcome} applied`, {
    outcomeId: report.outcome_id,
    customerId: report.customer_id,
    changes: applied.changes.length,
    suspended: applied.suspended,
  });

  if (report.outcome === 'confirmed_fraud' && report.payment_method_id)
    await blockRecoveries(run, report.payment_method_id);
  if (report.outcome === 'account_takeover' && !applied.suspended) await alert(run);

  if (!applied.suspended) {
    status.state = 'done';
    return status;
  }
  return awaitReview(run, applied);
}

/** Ops' decision, by the Update or the signal: the first one is final, a later one is ignored. */
function decide(run: FraudRun, r: ReviewResolution, how: string): void {
  if (run.review) {
    log.info('the review was decided already; this decision is ignored', { decision: r.decision, how });
    return;
  }
  run.review = r;
  run.status.decision = r.decision;
}

/** The query, the signals and the Update, registered before the workflow's first await. */
function setHandlers(run: FraudRun): void {
  const { report, status } = run;
  const final = (): boolean => !['applying', 'awaiting_review'].includes(status.state);
  setHandler(fraudOutcomeStatusQuery, () => status);
  setHandler(reviewResolvedSignal, (r) => decide(run, r, 'signal'));
  setHandler(graphRestoredSignal, ({ reason, backup_id }) => {
    // The review stays open for ops, who now see what the restored graph lacks.
    status.problem = `needs attention: the graph was restored from backup ${backup_id}: ${reason}`;
    log.warn('the graph was restored from a backup that lacks what this fraud outcome acts on', {
      outcomeId: report.outcome_id,
      reason,
    });
  });
  // The customer was merged into another record (never a suspended one): what is left to do — the
  // alert, a review's record — is done for the survivor.
  setHandler(customerMergedSignal, ({ merged_id, survivor_id }) => {
    if (report.customer_id !== merged_id) return;
    log.info('the customer was merged: the fraud outcome goes on against the survivor', {
      outcomeId: report.outcome_id,
      survivorId: survivor_id,
    });
    report.customer_id = survivor_id;
  });
  setHandler(
    resolveReviewUpdate,
    async (r) => {
      // Recorded before the first await: a second Update in the same workflow task is refused by the validator.
      decide(run, r, 'update');
      await condition(final);
      return JSON.parse(JSON.stringify(status)) as FraudOutcomeStatus;
    },
    {
      validator: (r: Partial<ReviewResolution> | undefined) => {
        if (r?.decision !== 'reinstate' && r?.decision !== 'confirm')
          throw new Error('decision must be reinstate or confirm');
        if (run.review) throw new Error(`the review was decided already: ${run.review.decision}`);
        if (status.state !== 'awaiting_review') throw new Error(`it is not awaiting review (it is ${status.state})`);
      },
    },
  );
}

/** A graph change refused for good ends the outcome with the reason, never a failed workflow. */
function refused(run: FraudRun, err: unknown, what: string): FraudOutcomeStatus {
  const { report, status } = run;
  if (isCancellation(err) || !domainFailureOf(err)) throw err;
  Object.assign(status, { state: 'not_applied', review_deadline: null, problem: `${what}: ${describeFailure(err)}` });
  log.warn(`fraud outcome ${report.outcome} not applied`, {
    outcomeId: report.outcome_id,
    customerId: report.customer_id,
    problem: status.problem,
  });
  return status;
}

/** A false positive: puts back what the earlier outcome changed, unless ops decided its review. */
async function reverseEarlier(run: FraudRun): Promise<FraudOutcomeStatus> {
  const { input, report, status } = run;
  try {
    status.reversal = await fraudUntilDone.reverseFraudOutcome({
      outcome_id: report.outcome_id,
      customer_id: report.customer_id,
      reported_by: input.reported_by,
    });
  } catch (err) {
    return refused(run, err, 'the earlier outcome could not be reversed');
  }
  const overruled = status.reversal.refused;
  if (overruled) {
    // Recorded in the graph; nothing changed: ops decided that review, only ops reverse it.
    Object.assign(status, {
      state: 'not_applied',
      problem:
        `ops decided the review of fraud outcome ${overruled.outcome_id} (${overruled.decision}): ` +
        'only ops may reverse it; nothing was changed',
    });
    log.warn('false positive not applied: ops decided the review it would undo', {
      outcomeId: report.outcome_id,
      reviewedOutcomeId: overruled.outcome_id,
      decision: overruled.decision,
    });
    return status;
  }
  countFraudOutcome(report.outcome);
  log.info('false positive: earlier fraud outcome reversed', {
    outcomeId: report.outcome_id,
    reversedOutcomeId: status.reversal.reversed_outcome_id,
    restored: status.reversal.restored.length,
  });
  const earlier = status.reversal.reversed_outcome_id;
  // The reversed outcome's review is over: the customer is back.
  if (earlier)
    await tell(fraudOutcomeWorkflowId(earlier), (h) =>
      h.signal(reviewResolvedSignal, { decision: 'reinstate', note: `false positive ${report.outcome_id}` }),
    );
  status.state = 'done';
  return status;
}

/** Confirmed fraud: every running recovery of the customer is told never to charge the method again. */
async function blockRecoveries(run: FraudRun, methodId: string): Promise<void> {
  const { report, status } = run;
  // The suspension is applied already; finding the recoveries to tell waits out Neo4j too.
  const recoveries = await fraudUntilDone.listRunningRecoveries({ customer_id: report.customer_id });
  for (const id of recoveries) {
    const told = await tell(id, (h) =>
      h.signal(paymentMethodBlockedSignal, {
        payment_method_id: methodId,
        reason: `confirmed fraud ${report.outcome_id}`,
      }),
    );
    if (told) status.recoveries_blocked.push(id);
  }
}

/** The account-takeover alert: best-effort, it never throws (a refusal is noted in the status). */
async function alert(run: FraudRun): Promise<void> {
  const { report, status, workflowId } = run;
  try {
    await notifications.notifyCustomer({
      customer_id: report.customer_id,
      kind: 'account_takeover',
      key: `${workflowId}:alert`,
      verified_only: true,
      data: { outcome_id: report.outcome_id },
      subject: { fraud_outcome_id: report.outcome_id },
    });
  } catch (err) {
    status.undelivered.push('alert');
    log.warn('the account-takeover alert could not be delivered; the review goes on without it', {
      outcomeId: report.outcome_id,
      customerId: report.customer_id,
      error: describeFailure(err),
    });
  }
}

/** The review of a suspension: ops decide it (or nobody does, in time), and the decision is recorded. */
async function awaitReview(run: FraudRun, applied: AppliedFraudOutcome): Promise<FraudOutcomeStatus> {
  const { input, report, status } = run;
  // Suspended: wait for ops' review, for at most review_days.
  const before = applied.changes.find((c) => c.entity === 'customer');
  const reviewMs = input.review_days * 86_400_000;
  const opened = Date.now();
  Object.assign(status, {
    state: 'awaiting_review',
    review_deadline: new Date(opened + reviewMs).toISOString(),
  });
  // The review is open before the alert goes out, and the alert's retries run beside the wait:
  // they never delay a decision (alert() never throws).
  const alerting = report.outcome === 'account_takeover' ? alert(run) : Promise.resolve();
  // Due well before the deadline: past it the review is overdue (counted, alerted), and waits on.
  const dueMs = Math.min(msOf(input.review_due ?? DEFAULT_REVIEW_DUE, 'review_due'), reviewMs);
  status.review_due_at = new Date(opened + dueMs).toISOString();
  const decided = () => run.review !== null;
  let reviewed = await condition(decided, Math.max(dueMs - (Date.now() - opened), 1), {
    summary: `Wait for ops' review (Update resolveReview) until ${status.review_due_at}, then overdue`,
  });
  if (!reviewed && dueMs < reviewMs) {
    status.review_overdue = true;
    upsertSearchAttributes([{ key: personaOverdue, value: 'fraud_review' }]);
    countFraudReviewOverdue();
    log.error('fraud review overdue: nobody decided it before it was due; the customer stays suspended', {
      outcomeId: report.outcome_id,
      customerId: report.customer_id,
      dueAt: status.review_due_at,
    });
    reviewed = await condition(decided, Math.max(reviewMs - (Date.now() - opened), 1), {
      summary: `Wait up to ${input.review_days} days for ops' review (Update resolveReview: reinstate or confirm)`,
    });
    upsertSearchAttributes([{ key: personaOverdue, value: null }]);
  }
  const decision = reviewed ? (run.review as unknown as ReviewResolution).decision : 'timed_out';
  await recordReview(run, decision, before);
  await alerting;
  if (!reviewed)
    log.warn('fraud review timed out: the customer stays suspended', {
      outcomeId: report.outcome_id,
      days: input.review_days,
    });
  return status;
}

/** The review's record in the graph, and its outcome in the status. */
async function recordReview(
  run: FraudRun,
  decision: ReviewDecision,
  before: Extract<FraudChange, { entity: 'customer' }> | undefined,
): Promise<void> {
  const { report, status } = run;
  try {
    await fraudUntilDone.resolveFraudReview({
      outcome_id: report.outcome_id,
      customer_id: report.customer_id,
      decision,
      // Always the status from before the outcome: a customer suspended already (by an outcome
      // ops confirmed, say) stays suspended when this one's review reinstates.
      ...(before ? { restore_to: before.from } : {}),
    });
  } catch (err) {
    if (isCancellation(err) || !domainFailureOf(err)) throw err;
    // The customer changed under the review (erased, say): the decision stands, its record could not be made.
    status.problem = `the review's decision could not be recorded: ${describeFailure(err)}`;
    log.warn('fraud review decided, but the graph refused the record', {
      outcomeId: report.outcome_id,
      decision,
      problem: status.problem,
    });
  }
  countFraudReview(decision);
  // Final before the alert's retries end: ops' Update answers with the outcome at once, not once
  // the alert has gone out (or given up) minutes later.
  Object.assign(status, {
    state: decision === 'reinstate' ? 'reinstated' : decision === 'confirm' ? 'confirmed' : 'review_timed_out',
    review_deadline: null,
    review_due_at: null,
  });
}
