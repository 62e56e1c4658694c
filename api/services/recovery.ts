/**
 * Payment recovery from the api's side: Synapse reports a failure (signal-with-start of
 * `paymentFailed`) and may say the payment is no longer owed (`paymentNoLongerOwed`), anyone with
 * the scope reads a recovery's status, ops stop one (`cancel`), and a new card in the wallet wakes
 * the customer's running recoveries.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { InvalidInputError, InvalidStateError, NotFoundError } from '../../graph/errors';
import { erasureWorkflowId } from '../../temporal/erasure';
import { readRecoveryLedger, requestRecoveryStop, reserveRecovery } from '../../graph/chargeLedger';
import { refuseBesideStranded, refuseIfStranded } from './recoveryStranded';
import { getPaymentMethodsByCustomer } from '../../graph/paymentMethods';
import {
  cancelRecoveryUpdate,
  paymentFailedSignal,
  offerPaymentMethodUpdate,
  OFFER_BY_SIGNAL,
  paymentMethodAddedSignal,
  RECOVERY_WORKFLOW_TYPE,
  type CardOfferAnswer,
  recoveryStatusQuery,
  paymentIdOfRecovery,
  recoveryWorkflowId,
  resolveAttentionUpdate,
  type AttentionDecision,
  type PaymentFailure,
  type RecoveryStatus,
} from '../../temporal/recovery';
import { updateRefusalOf } from '../../temporal/updates';
import { customerWorkflowsQuery } from '../../temporal/searchAttributes';
import { personaCustomerId } from '../../temporal/searchAttributes';
import type { paymentRecoveryWorkflow } from '../../workflows/recovery';
import { fromMinorUnits } from '../../payments/money';
import type { ApiDeps } from '../deps';
import { followMerge, mergedInto } from './mergedIds';
import { decisionUpdateId, queryWithin, updateOrRefusal, type UpdateTarget } from './refusals';
import { cannotAnswer, statusFromLedger, type RecoveryStatusAnswer } from './recoveryLedger';
import { taskQueueFor } from '../../temporal/taskQueues';
import { waitWithinBudget } from '../deadlines';

/**
 * A reported failure: the payment's recovery is reserved in the charge ledger first
 * (graph/chargeLedger.ts), in one transaction, whatever Temporal still remembers — a payment is
 * recovered once, ever. Only the first report starts the workflow (signal-with-start of
 * `paymentFailed`); a report of a payment whose recovery ended (recovered, failed, stopped) or runs
 * starts nothing and answers the same workflow id. A reservation whose workflow never started (the
 * api died in between) is started by the next report of it. A report that `replaces` another
 * payment's recovery is reserved only once the ledger has checked that one, in the same
 * transaction (graph/recoveryReplacement.ts): else 409 naming the field, nothing written.
 */
export async function reportPaymentFailure(
  deps: ApiDeps,
  reported: PaymentFailure,
  /** Who reports it (the ledger's `reported_by`): only they, or ops, may say it is no longer owed. */
  reportedBy: string | null = null,
): Promise<{ workflow_id: string; merged_into?: string }> {
  const f = await ownerOfFailure(deps, reported);
  const workflowId = recoveryWorkflowId(f.payment_id);
  const answer = {
    workflow_id: workflowId,
    ...mergedInto(f.customer_id === reported.customer_id ? null : f.customer_id),
  };
  // A customer being erased starts no new recovery: its key would be destroyed while it ran (the
  // erasure checked the customer's workflows before). Fraud outcomes are never held back like this.
  await refuseWhileErasing(deps, f.customer_id);
  // Its history is encrypted under a key of its own, the customer's: erasure destroys it. Made
  // before the reservation: a payment id another customer's recovery holds is refused here (409).
  await deps.payloads.provision(workflowId, f.customer_id);
  try {
    return await reserveAndStart(deps, f, workflowId, answer, reportedBy);
  } catch (err) {
    deps.payloads.release?.(workflowId, f.customer_id);
    throw err;
  }
}

/**
 * Reserves the recovery, which joins the customer's open processes in that transaction (an erasure
 * then waits for it), and starts its workflow unless it ran or runs already.
 */
async function reserveAndStart(
  deps: ApiDeps,
  f: PaymentFailure,
  workflowId: string,
  answer: { workflow_id: string; merged_into?: string },
  reportedBy: string | null,
): Promise<{ workflow_id: string; merged_into?: string }> {
  await refuseBesideStranded(deps, f);
  const { created, recovery } = await reserveRecovery(deps.graph, { ...f, reported_by: reportedBy }, workflowId);
  if (!created) {
    // A payment id names one payment: a report of it with other facts is refused, never merged in.
    const reservedFor = (await followMerge(deps.graph, recovery.customer_id).catch(() => null))?.id;
    if (
      recovery.amount !== f.amount ||
      recovery.currency !== f.currency ||
      recovery.payment_method_id !== f.payment_method_id ||
      (recovery.customer_id !== f.customer_id && reservedFor !== f.customer_id)
    )
      throw new InvalidStateError(
        `payment ${f.payment_id} was reported before for another customer, payment method or amount; ` +
          'a payment id names one payment',
      );
    if (recovery.state !== 'recovering') return answer;
    if (recovery.started_at !== null) {
      await refuseIfStranded(deps, f.payment_id, workflowId);
      return answer;
    }
  }
  const amount = `${fromMinorUnits(f.amount, f.currency)} ${f.currency}`;
  try {
    await deps.temporal.client.workflow.signalWithStart<typeof paymentRecoveryWorkflow, [PaymentFailure]>(
      RECOVERY_WORKFLOW_TYPE,
      {
        workflowId,
        taskQueue: taskQueueFor(deps.temporal.taskQueues, RECOVERY_WORKFLOW_TYPE),
        args: [
          {
            dunningSchedule: deps.recovery.dunningSchedule,
            chargeRetryFor: deps.recovery.chargeRetryFor,
            attentionDeadline: deps.recovery.attentionDeadline,
            settleFor: deps.recovery.settleFor,
          },
        ],
        signal: paymentFailedSignal,
        signalArgs: [f],
        // Within Temporal's retention a closed run is not started again either.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [{ key: personaCustomerId, value: f.customer_id }],
        staticSummary:
          `Recover payment ${f.payment_id} of ${amount} after a declined charge (${f.decline_code})` +
          (f.replaces === undefined ? '' : `, replacing payment ${f.replaces}`),
      },
    );
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return answer;
}

/**
 * The failure as the recovery runs it: the method must be the customer's (404 otherwise). A report
 * naming a merged customer (a merge's tombstone, whose methods moved to the survivor) is the
 * survivor's: the recovery runs for the survivor, never on the tombstone. Only a method not found
 * in the named customer's wallet asks where the id leads, so an ordinary report costs no more reads.
 */
async function ownerOfFailure(deps: ApiDeps, f: PaymentFailure): Promise<PaymentFailure> {
  const owns = async (customerId: string) =>
    (await getPaymentMethodsByCustomer(deps.graph, customerId)).some((pm) => pm.id === f.payment_method_id);
  if (await owns(f.customer_id)) return f;
  const target = await followMerge(deps.graph, f.customer_id);
  if (target.merged_into !== undefined && (await owns(target.id))) return { ...f, customer_id: target.id };
  throw new NotFoundError('PaymentMethod', f.payment_method_id);
}

async function refuseWhileErasing(deps: ApiDeps, customerId: string): Promise<void> {
  try {
    const erasure = await deps.temporal.client.workflow.getHandle(erasureWorkflowId(customerId)).describe();
    if (erasure.status.name === 'RUNNING')
      throw new InvalidStateError(`customer ${customerId} is being erased: no new payment recovery may start`);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
}

/**
 * A recovery's status: the workflow's own answer when it gives one within half the request's
 * deadline; otherwise what the charge ledger recorded of it (marked so): past Temporal's retention,
 * before its workflow started, and while no worker answers (none polls its task queue: a deploy, a
 * crash; or Temporal is out of reach) — the other half is the ledger's. NotFoundError when neither
 * has the payment; the workflow's unavailability (503) when it runs but the ledger has nothing.
 */
export async function recoveryStatus(deps: ApiDeps, paymentId: string): Promise<RecoveryStatusAnswer> {
  const handle = deps.temporal.client.workflow.getHandle(recoveryWorkflowId(paymentId));
  try {
    return await queryWithin(handle, recoveryStatusQuery, waitWithinBudget(deps, deps.limits.requestDeadlineMs / 2));
  } catch (err) {
    const unanswered = cannotAnswer(err);
    if (!unanswered && !(err instanceof WorkflowNotFoundError)) throw err;
    const recorded = await readRecoveryLedger(deps.graph, paymentId);
    if (!recorded) throw unanswered ?? new NotFoundError('PaymentRecovery', paymentId);
    if (unanswered)
      deps.logger.warn({ paymentId, reason: unanswered.reason }, 'recovery status answered from the charge ledger');
    return statusFromLedger(recorded);
  }
}

/**
 * Ops' answer to a recovery in `needs_attention`, as a Workflow Update: its validator refuses
 * (409, with the workflow's reason) a recovery that does not need attention or was answered
 * already, so two ops deciding at once get one 200 and one 409. One naming its attention (`since`)
 * has an id of its own (`decisionUpdateId`): the same ops' resend gets the first one's answer.
 */
export async function resolveAttention(
  deps: ApiDeps,
  paymentId: string,
  decision: AttentionDecision,
  by: string | null,
) {
  const handle = deps.temporal.client.workflow.getHandle(recoveryWorkflowId(paymentId));
  const updateId = decision.since ? decisionUpdateId('attention', by, decision) : undefined;
  return updateOrRefusal(
    handle,
    () => handle.executeUpdate(resolveAttentionUpdate, { args: [decision], ...(updateId ? { updateId } : {}) }),
    recoveryTarget(paymentId),
  );
}

/** A recovery as a refusal of its Update names it. */
function recoveryTarget(paymentId: string): UpdateTarget {
  return { entity: 'PaymentRecovery', id: paymentId, what: `payment recovery ${paymentId}` };
}

/** The longest reason ops may give for cancelling a recovery (recorded in its status). */
export const CANCEL_REASON_MAX = 500;

/** What ops learn of their cancel: the recovery's final status, or `stopping` while it settles a charge first. */
export type CancelReply = { outcome: 'cancelled'; status: RecoveryStatus } | { outcome: 'stopping'; status: null };

/** One cancel per recovery: the same form sent again (a timeout, a double click) joins the first. */
export const OPS_CANCEL_UPDATE_ID = 'ops-cancel';

/**
 * Ops stop a recovery with a reason: written to the charge ledger first (from then on nothing for
 * the payment is sent to the gateway), then the `cancel` Workflow Update, which the recovery takes
 * whatever it is doing — a charge in flight is settled with the gateway, never sent again — and
 * answers with its final status, its `stop_reason` "cancelled: <reason>" (or recovered, with the
 * charge that went through first); a recovery cancelled already answers it again (a resent form).
 * Waited for `waitMs` (half the request's deadline by default): a settle takes longer (up to the
 * settle window), and is then answered `stopping` — read the recovery's status. NotFoundError (404)
 * when no recovery has this payment id; InvalidStateError (409) when it has ended, or not started.
 */
export async function cancelRecovery(
  deps: ApiDeps,
  paymentId: string,
  reason: string,
  waitMs = deps.limits.requestDeadlineMs / 2,
): Promise<CancelReply> {
  const why = reason.trim();
  if (!why) throw new InvalidInputError('reason', 'say why the recovery is cancelled');
  if (why.length > CANCEL_REASON_MAX) throw new InvalidInputError('reason', `at most ${CANCEL_REASON_MAX} characters`);
  await requestRecoveryStop(deps.graph, paymentId, { by: 'ops', reason: `cancelled: ${why}` });
  const { client } = deps.temporal;
  const handle = client.workflow.getHandle(recoveryWorkflowId(paymentId));
  const target = recoveryTarget(paymentId);
  const answers = { ended: `payment recovery ${paymentId} has ended: there is nothing to cancel` };
  const update = await updateOrRefusal(
    handle,
    () =>
      handle.startUpdate(cancelRecoveryUpdate, {
        args: [{ reason: why }],
        updateId: OPS_CANCEL_UPDATE_ID,
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      }),
    target,
    answers,
  );
  const call = new AbortController();
  const timer = setTimeout(() => call.abort(), Math.max(waitMs, 1));
  try {
    const status = await client.connection.withAbortSignal(call.signal, () => update.result());
    return { outcome: 'cancelled', status };
  } catch (err) {
    if (call.signal.aborted) return { outcome: 'stopping', status: null };
    return updateOrRefusal(
      handle,
      () => {
        throw err;
      },
      target,
      answers,
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether the console offers ops a cancel button for a recovery in this state: a hint for the
 * page only (dunning, charging or waiting for ops with nothing recovered yet). The recovery
 * decides when the cancel arrives, and may still refuse it with its reason.
 */
export function mayOfferCancel(status: RecoveryStatus): boolean {
  if (status.recovered_with !== null) return false;
  return status.state === 'dunning' || status.state === 'recovering' || status.state === 'needs_attention';
}

/** What became of a new card offered to one of the customer's running recoveries. */
export interface RecoveryOffer {
  payment_id: string;
  workflow_id: string;
  /** The order the card was offered in (1 first: the recovery that started first). */
  offered: number;
  /** The recovery's answer for the card, or `pending` when it did not come within the wait. */
  outcome: CardOfferAnswer['outcome'] | 'pending';
  decline_code: string | null;
  /** The recovery's state after the retry (null while pending). */
  state: CardOfferAnswer['state'] | null;
  /** Where to read the outcome: the recovery's status. */
  status_url: string;
}

/** The customer's running recoveries, the one started first first (visibility may lag). */
async function runningRecoveriesOldestFirst(client: Client, customerId: string): Promise<string[]> {
  const found: { id: string; started: number }[] = [];
  for await (const wf of client.workflow.list({
    query:
      `${customerWorkflowsQuery(customerId)} AND WorkflowType = '${RECOVERY_WORKFLOW_TYPE}'` +
      " AND ExecutionStatus = 'Running'",
  }))
    found.push({ id: wf.workflowId, started: wf.startTime.getTime() });
  return found.sort((a, b) => a.started - b.started || a.id.localeCompare(b.id)).map((f) => f.id);
}

/**
 * Offers a card just added to each of the customer's running recoveries at once (a Workflow
 * Update `offerPaymentMethod`, validated by the recovery: one that has ended or was cancelled
 * refuses it and is left out). Each charges the card at once; `offered` numbers them by start, the
 * one started first first. With a wait, each answer comes back as it is known until `waitMs` is
 * spent (then `pending`, read at `status_url`); without one, the offers are only made. A run
 * waiting for ops, or one with offers already waiting, refuses with OFFER_BY_SIGNAL and is told by
 * the signal instead (`pending`), as is one whose worker lacks the Update (a deployment under
 * way). Everything here, the listing included, fits in one budget: the wait, or half the
 * request's deadline. The card is in the wallet whatever happens here.
 */
export async function offerNewPaymentMethod(
  deps: ApiDeps,
  customerId: string,
  paymentMethodId: string,
  waitMs: number,
): Promise<RecoveryOffer[]> {
  const { client } = deps.temporal;
  const deadline = Date.now() + (waitMs > 0 ? waitMs : deps.limits.requestDeadlineMs / 2);
  const left = () => Math.max(deadline - Date.now(), 1);
  /** A call to Temporal bounded by what is left of the budget (or `ms`). */
  const bounded = <T>(ms: number, fn: () => Promise<T>): Promise<T> => {
    const call = new AbortController();
    const timer = setTimeout(() => call.abort(), ms);
    return client.connection.withAbortSignal(call.signal, fn).finally(() => clearTimeout(timer));
  };
  const ids = await bounded(left(), () => runningRecoveriesOldestFirst(client, customerId));
  const offer = async (workflowId: string): Promise<Omit<RecoveryOffer, 'offered'> | null> => {
    const paymentId = paymentIdOfRecovery(workflowId);
    const base = {
      payment_id: paymentId,
      workflow_id: workflowId,
      status_url: `/api/v1/payment-recoveries/${paymentId}`,
    };
    const pending = { ...base, outcome: 'pending' as const, decline_code: null, state: null };
    const handle = client.workflow.getHandle(workflowId);
    let update;
    try {
      update = await bounded(left(), () =>
        handle.startUpdate(offerPaymentMethodUpdate, {
          args: [{ payment_method_id: paymentMethodId }],
          updateId: `offer:${paymentMethodId}`,
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        }),
      );
    } catch (err) {
      const refusal = await updateRefusalOf(err, handle).catch(() => undefined);
      if (refusal?.kind === 'ended' || refusal?.kind === 'not_found') return null;
      // Not accepted in time: the server may still deliver it, so no signal (it would count twice).
      deps.logger.warn({ err, workflowId }, 'a running recovery did not take the new card in time');
      return pending;
    }
    try {
      // A refusal is known at once (no call); an answer is waited for only with a wait.
      const answer = await bounded(waitMs > 0 ? left() : 1, () => update.result());
      return { ...base, outcome: answer.outcome, decline_code: answer.decline_code, state: answer.state };
    } catch (err) {
      if (!(err instanceof WorkflowUpdateFailedError)) return pending;
      // A worker without the Update (other code than the api's: a deployment under way) takes the
      // card by the signal every version has; a refused Update is never in the history, so the card
      // counts once.
      const refusal = await updateRefusalOf(err, handle).catch(() => undefined);
      const type = err.cause instanceof ApplicationFailure ? err.cause.type : null;
      if (type !== OFFER_BY_SIGNAL && refusal?.kind !== 'unknown_update') return null;
      await bounded(left(), () =>
        handle.signal(paymentMethodAddedSignal, { payment_method_id: paymentMethodId }),
      ).catch((signalErr: unknown) =>
        deps.logger.warn({ err: signalErr, workflowId }, 'could not signal the new card to a running recovery'),
      );
      return pending;
    }
  };
  const answers = await Promise.all(ids.map(offer));
  return answers.filter((a) => a !== null).map((a, i) => ({ ...a, offered: i + 1 }));
}
