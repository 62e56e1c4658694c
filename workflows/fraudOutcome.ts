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
 *                      changed, and ends that outcome's review (reinstate).
 * After a suspension the workflow waits for ops' `reviewResolved` (reinstate | confirm) for up to
 * `review_days`; a timeout leaves the customer suspended and is recorded.
 */
import { condition, getExternalWorkflowHandle, log, setHandler, workflowInfo } from '@temporalio/workflow';
import type { FraudActivities } from '../activities/fraud';
import {
  fraudOutcomeStatusQuery,
  fraudOutcomeWorkflowId,
  reviewResolvedSignal,
  type FraudOutcomeInput,
  type FraudOutcomeStatus,
  type ReviewResolution,
} from '../temporal/fraud';
import { paymentMethodBlockedSignal } from '../temporal/recovery';
import { activitiesWithSummaries, graphWrite } from './activityOptions';
import { countFraudOutcome, countFraudReview } from './metrics';
import { notifications } from './notifications';

const APPLY: Record<FraudOutcomeInput['report']['outcome'], string> = {
  challenge_passed: 'raise the device’s trust by one step',
  confirmed_fraud: 'mark the payment method compromised, distrust the device, suspend the customer',
  account_takeover: 'distrust the device and suspend the customer',
  false_positive: 'nothing to apply',
};

const fraud = activitiesWithSummaries<FraudActivities>(graphWrite, {
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
    `Find customer ${req.customer_id}'s running payment recoveries, to tell them not to charge the compromised method`,
});

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

export async function fraudOutcomeWorkflow(input: FraudOutcomeInput): Promise<FraudOutcomeStatus> {
  const { report } = input;
  const { workflowId } = workflowInfo();
  const status: FraudOutcomeStatus = {
    state: 'applying',
    outcome: report.outcome,
    applied: null,
    reversal: null,
    recoveries_blocked: [],
    review_deadline: null,
  };
  let review: ReviewResolution | null = null;
  setHandler(fraudOutcomeStatusQuery, () => status);
  setHandler(reviewResolvedSignal, (r) => {
    if (review) log.info('the review was resolved already; this decision is ignored', { decision: r.decision });
    else review = r;
  });

  if (report.outcome === 'false_positive') {
    status.reversal = await fraud.reverseFraudOutcome({
      outcome_id: report.outcome_id,
      customer_id: report.customer_id,
    });
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

  const applied = await fraud.applyFraudOutcome(report, { trust_step: input.trust_step });
  status.applied = applied;
  countFraudOutcome(report.outcome);
  log.info(`fraud outcome ${report.outcome} applied`, {
    outcomeId: report.outcome_id,
    customerId: report.customer_id,
    changes: applied.changes.length,
    suspended: applied.suspended,
  });

  if (report.outcome === 'confirmed_fraud' && report.payment_method_id) {
    const methodId = report.payment_method_id;
    for (const id of await fraud.listRunningRecoveries({ customer_id: report.customer_id })) {
      const told = await tell(id, (h) =>
        h.signal(paymentMethodBlockedSignal, {
          payment_method_id: methodId,
          reason: `confirmed fraud ${report.outcome_id}`,
        }),
      );
      if (told) status.recoveries_blocked.push(id);
    }
  }
  if (report.outcome === 'account_takeover') {
    await notifications.notifyCustomer({
      customer_id: report.customer_id,
      kind: 'account_takeover',
      key: `${workflowId}:alert`,
      verified_only: true,
      data: { outcome_id: report.outcome_id },
      subject: { fraud_outcome_id: report.outcome_id },
    });
  }

  if (!applied.suspended) {
    status.state = 'done';
    return status;
  }

  // Suspended: wait for ops' review, for at most review_days.
  const before = applied.changes.find((c) => c.entity === 'customer');
  status.state = 'awaiting_review';
  status.review_deadline = new Date(Date.now() + input.review_days * 86_400_000).toISOString();
  const reviewed = await condition(() => review !== null, `${input.review_days} days`, {
    summary: `Wait up to ${input.review_days} days for ops' review (signal reviewResolved: reinstate or confirm)`,
  });
  const decision = reviewed ? (review as unknown as ReviewResolution).decision : 'timed_out';
  await fraud.resolveFraudReview({
    outcome_id: report.outcome_id,
    customer_id: report.customer_id,
    decision,
    ...(before && before.from !== 'suspended' ? { restore_to: before.from } : {}),
  });
  countFraudReview(decision);
  status.state = decision === 'reinstate' ? 'reinstated' : decision === 'confirm' ? 'confirmed' : 'review_timed_out';
  status.review_deadline = null;
  if (!reviewed)
    log.warn('fraud review timed out: the customer stays suspended', {
      outcomeId: report.outcome_id,
      days: input.review_days,
    });
  return status;
}
