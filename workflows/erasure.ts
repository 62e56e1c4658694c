/**
 * Erasure — workflow id `erasure-<customer id>`, started by `DELETE /api/v1/customers/{id}`.
 * Stops the customer's running workflows — a recovery with its stop written to the charge ledger
 * (nothing more is sent to the gateway for it) and its `cancel` Update, which it takes whatever it
 * is doing (a charge in flight is settled with the gateway and recorded if it went through, never
 * abandoned), and waits (bounded) for recoveries to end; any other
 * workflow (a review waiting, an onboarding) is cancelled — then erases the customer
 * in the graph (graph/erasure.ts: its events in batches, the rest in one transaction). Asking
 * again is a no-op. A recovery visibility did not list yet (it lags) cannot charge afterwards:
 * the graph refuses a charge for an erased customer.
 *
 * While a fraud outcome of the customer runs (its review pending), the erasure waits, in state
 * `waiting_for_fraud_review` (query `erasureStatus`), and erases once the review has ended: an
 * attacker holding a taken-over account cannot erase it and its review with it. Only ops'
 * override (the `erasureRequested` signal with `override_fraud_review` and a reason) erases at
 * once, cancelling the review; the reason lands on the CustomerErased event.
 *
 * Every wait has a deadline (input `wait_deadline`, PERSONA_ERASURE_WAIT_DEADLINE_HOURS, counted
 * from the start): past it the erasure is overdue — `erasureStatus.wait.overdue`, counted once
 * (`persona_erasures_overdue_total{waiting_on}`, alert PersonaErasureOverdue), `wait.blocked_by`
 * naming each open workflow of the customer and why it is open (looked at again hourly) — and it
 * waits on: a history key is never destroyed under an open workflow. Ops get it out by ending
 * what holds it (answer the recovery or review, or terminate the stuck workflow): the erasure
 * then goes on by itself (docs/runbook.md "PersonaErasureOverdue").
 */
import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ErasureActivities } from '../activities/erasure';
import {
  DEFAULT_ERASURE_WAIT_DEADLINE,
  ERASURE_OVERDUE_RELOOK,
  erasureRequestedSignal,
  erasureStatusQuery,
  type ErasureInput,
  type ErasureOutcome,
  type ErasureStatus,
  type ErasureWaitOn,
} from '../temporal/erasure';
import { describeFailure, domainFailureOf } from '../temporal/failures';
import { fraudOutcomeWorkflowId } from '../temporal/fraud';
import { recoveryWorkflowId } from '../temporal/recovery';
import { personaOverdue } from '../temporal/searchAttributes';
import { activitiesWithSummaries, graphWrite } from './activityOptions';
import { countErasureOverdue } from './metrics';
import { autoUpgrade } from './versioning';
import { msOf } from './durations';

const RECOVERY_PREFIX = recoveryWorkflowId('');
const FRAUD_PREFIX = fraudOutcomeWorkflowId('');

/** How long an erasure waits for the customer's recoveries to finish the charge in flight. */
const RECOVERY_STOP_WAIT_MS = 120_000;
/**
 * An activity that fails retryably until what it waits for holds (recoveries took the cancel, keyed
 * workflows closed): retried without a limit, at most a minute apart — the history shows one
 * activity however long it waits.
 */
const untilItHolds: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: Infinity,
  },
};
/** The longest between two looks at whether a pending fraud review has ended. */
const REVIEW_POLL_MAX = '2 minutes';

const activities = activitiesWithSummaries<ErasureActivities>(graphWrite, {
  listRunningCustomerWorkflows: (req) =>
    `Find customer ${req.customer_id}'s running workflows, to stop them before the erasure`,
  awaitWorkflowsClosed: (req) =>
    req.what
      ? `Wait up to ${Math.round(req.within_ms / 1000)} s for ${req.workflow_ids.length} ${req.what} to end`
      : `Wait up to ${Math.round(req.within_ms / 1000)} s for ${req.workflow_ids.length} payment recoveries ` +
        'to finish the charge in flight and stop',
  stopRecoveries: (req) =>
    `Tell ${req.workflow_ids.length} payment recoveries to stop (the charge ledger first, then each recovery, ` +
    'which settles a charge in flight and sends nothing more)',
  historyWorkflowsClosed: (req) =>
    `Wait until every workflow of customer ${req.customer_id} with a history key has closed ` +
    '(telling those still running to stop), before the keys are destroyed',
  fraudReviewsEnded: (req) =>
    `Look (again and again, through retries) whether ${req.workflow_ids.length} fraud reviews have ended`,
  whyErasureWaits: (req) =>
    `The erasure of customer ${req.customer_id} is overdue: find which of its workflows are still open, and why`,
  eraseCustomer: (req) =>
    `Erase customer ${req.customer_id}: empty its events in batches, then identifiers, unshared addresses ` +
    'and devices, payment methods in one transaction; keep a tombstone',
});

/** What the workflow's handlers and steps share: its input, its status and its wait's deadline. */
interface ErasureRun {
  input: ErasureInput;
  workflowId: string;
  status: ErasureStatus;
  since: number;
  dueAt: number;
}

autoUpgrade(erasureWorkflow);
export async function erasureWorkflow(input: ErasureInput): Promise<ErasureOutcome> {
  const { workflowId } = workflowInfo();
  const status: ErasureStatus = { state: 'starting', waiting_for: [], request: null, wait: null, overdue: false };
  const since = Date.now();
  const dueAt = since + msOf(input.wait_deadline ?? DEFAULT_ERASURE_WAIT_DEADLINE, 'wait_deadline');
  const run: ErasureRun = { input, workflowId, status, since, dueAt };
  setHandler(erasureStatusQuery, () => status);
  setHandler(erasureRequestedSignal, (r) => {
    // An override, once given, stays: a later request without one does not take it back.
    status.request = {
      ...r,
      override_fraud_review: r.override_fraud_review || !!status.request?.override_fraud_review,
    };
  });
  const overridden = (): boolean => status.request?.override_fraud_review === true;
  const first = await activities.listRunningCustomerWorkflows({ customer_id: input.customer_id, except: workflowId });
  const { running, waitedFor } = await waitForFraudReviews(run, first, overridden);
  Object.assign(status, { state: 'erasing', waiting_for: [] });
  const cancelled = await stopWorkflows(run, running);
  // Every workflow with a history key of the customer's closes first: the erasure destroys those
  // keys (crypto-shredding), and a worker cannot replay a history it can no longer decrypt.
  await waitFor(run, 'workflows_closing', [], () =>
    activities.historyWorkflowsClosed.executeWithOptions(untilItHolds, [
      { customer_id: input.customer_id, except: workflowId, cancel_reviews: overridden() },
    ]),
  );
  return erase(run, cancelled, waitedFor);
}

/**
 * Waits for `done` (what the erasure waits on) with the deadline: past it, the erasure is
 * overdue (counted once per erasure, the alert fires) and names what holds it, looked at again
 * every ERASURE_OVERDUE_RELOOK; it waits on all the same.
 */
async function waitVisibly(run: ErasureRun, on: ErasureWaitOn, done: () => boolean, named: string[]): Promise<void> {
  const { input, status, since, dueAt } = run;
  status.wait = {
    on,
    since: new Date(since).toISOString(),
    due_at: new Date(dueAt).toISOString(),
    overdue: status.overdue,
    blocked_by: named.map((id) => ({ workflow_id: id, why: null })),
  };
  const wait = status.wait;
  const summary = `Wait (${on.replace(/_/g, ' ')}) until ${wait.due_at}, then overdue`;
  if (status.overdue || !(await condition(done, Math.max(dueAt - Date.now(), 1), { summary }))) {
    if (!status.overdue) {
      status.overdue = true;
      countErasureOverdue(on);
      log.error('erasure overdue: it still waits, and nothing is erased meanwhile', {
        customerId: input.customer_id,
        waitingOn: on,
        dueAt: wait.due_at,
      });
    }
    wait.overdue = true;
    // Found with `PersonaOverdue = 'erasure'` while it waits overdue.
    upsertSearchAttributes([{ key: personaOverdue, value: 'erasure' }]);
    do {
      // Only a look: it never fails the erasure (ops read the last answer meanwhile).
      try {
        wait.blocked_by = await activities.whyErasureWaits({
          customer_id: input.customer_id,
          except: run.workflowId,
          workflow_ids: named,
        });
      } catch (err) {
        if (isCancellation(err)) throw err;
        log.warn('what holds the overdue erasure could not be looked at', { error: describeFailure(err) });
      }
    } while (
      !done() &&
      !(await condition(done, ERASURE_OVERDUE_RELOOK, {
        summary: 'Overdue: look again in an hour at what holds the erasure',
      }))
    );
    upsertSearchAttributes([{ key: personaOverdue, value: null }]);
  }
  status.wait = null;
}

/** Runs one activity that waits through its retries, visibly (`waitVisibly`); answers what it answers. */
async function waitFor<T>(run: ErasureRun, on: ErasureWaitOn, named: string[], activity: () => Promise<T>): Promise<T> {
  let settled = false;
  const running = activity().finally(() => void (settled = true));
  // A failure for good is thrown below, once the wait has ended.
  running.catch(() => undefined);
  await waitVisibly(run, on, () => settled, named);
  return running;
}

/**
 * Waits while a fraud review of the customer runs: answers the customer's running workflows once
 * none is a review (or ops overrode), and the reviews it waited for.
 */
async function waitForFraudReviews(
  run: ErasureRun,
  first: string[],
  overridden: () => boolean,
): Promise<{ running: string[]; waitedFor: string[] }> {
  const { input, status, workflowId } = run;
  let running = first;
  const waitedFor: string[] = [];
  // A pending fraud review holds the erasure (and is never cancelled by it) unless ops override.
  while (!overridden()) {
    const reviews = running.filter((id) => id.startsWith(FRAUD_PREFIX));
    if (reviews.length === 0) break;
    Object.assign(status, { state: 'waiting_for_fraud_review', waiting_for: reviews });
    for (const id of reviews) if (!waitedFor.includes(id)) waitedFor.push(id);
    log.info('erasure waits for the customer’s fraud review', { customerId: input.customer_id, reviews });
    let ended = false;
    let failure: unknown = null;
    const scope = new CancellationScope();
    // One activity whose retries are the polling (ReviewsPending until the reviews end): no worker
    // slot held while waiting, one activity in the history however long the review lasts, and
    // no attempt limit (an outage of Temporal's frontend only delays it). From 1 s: a review
    // decided at once lets the erasure go on within a second; a long one costs two more reads.
    const waiting = scope
      .run(() =>
        activities.fraudReviewsEnded.executeWithOptions(
          {
            startToCloseTimeout: '1 minute',
            retry: {
              initialInterval: '1 second',
              backoffCoefficient: 2,
              maximumInterval: REVIEW_POLL_MAX,
              maximumAttempts: Number.POSITIVE_INFINITY,
            },
          },
          [{ workflow_ids: reviews }],
        ),
      )
      .then(
        () => void (ended = true),
        (err: unknown) => void ((failure = err), (ended = true)),
      );
    await waitVisibly(run, 'fraud_review', () => ended || overridden(), reviews);
    if (!ended) scope.cancel();
    await waiting;
    if (failure && !isCancellation(failure)) throw failure as Error;
    running = await activities.listRunningCustomerWorkflows({ customer_id: input.customer_id, except: workflowId });
  }
  return { running, waitedFor };
}

/**
 * Stops the customer's running workflows: recoveries take the stop (the charge ledger first) and
 * are waited for (bounded); any other is cancelled. Answers the workflows stopped.
 */
async function stopWorkflows(run: ErasureRun, running: string[]): Promise<string[]> {
  const { input } = run;
  const cancelled: string[] = [];
  const recoveries = running.filter((id) => id.startsWith(RECOVERY_PREFIX));
  let stopping: string[] = [];
  if (recoveries.length) {
    // Retried (the erasure waits) while Temporal or the graph cannot be reached.
    stopping = await waitFor(run, 'recoveries_stopping', recoveries, () =>
      activities.stopRecoveries.executeWithOptions(untilItHolds, [
        { workflow_ids: recoveries, reason: `customer ${input.customer_id} is being erased` },
      ]),
    );
    cancelled.push(...stopping);
  }
  for (const id of running.filter((id) => !id.startsWith(RECOVERY_PREFIX))) {
    try {
      await getExternalWorkflowHandle(id).cancel();
      cancelled.push(id);
    } catch (err) {
      log.info(`workflow ${id} not cancelled: it had finished`, {
        otherWorkflowId: id,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  if (stopping.length) {
    const still = await activities.awaitWorkflowsClosed.executeWithOptions(
      { startToCloseTimeout: RECOVERY_STOP_WAIT_MS + 60_000, heartbeatTimeout: '20 seconds' },
      [{ workflow_ids: stopping, within_ms: RECOVERY_STOP_WAIT_MS }],
    );
    if (still.length)
      log.warn('payment recoveries still running at erasure; the graph refuses them any further charge', {
        customerId: input.customer_id,
        running: still,
      });
  }
  return cancelled;
}

/** Erases the customer in the graph, unless the graph refuses (a suspended customer): the outcome. */
async function erase(run: ErasureRun, cancelled: string[], waitedFor: string[]): Promise<ErasureOutcome> {
  const { input, status } = run;
  const request = status.request;
  const eraseInput = { customer_id: input.customer_id, ...(request ? { audit: request } : {}) };
  let result;
  try {
    // Events are emptied in batches (graph/erasure.ts), the activity heartbeating after each.
    result = await activities.eraseCustomer.executeWithOptions(
      { ...graphWrite, startToCloseTimeout: '1 hour', heartbeatTimeout: '1 minute' },
      [eraseInput],
    );
  } catch (err) {
    // The graph refuses to erase a suspended customer at its own request (graph/erasure.ts): the
    // erasure ends, saying so; ops may erase with a reason (DELETE with Persona-Reason).
    const refusal = domainFailureOf(err);
    if (refusal?.code !== 'invalid_state') throw err;
    const why = describeFailure(err);
    Object.assign(status, { state: 'refused', refused: why });
    log.warn('erasure refused: the customer is suspended and only ops may erase it now', {
      customerId: input.customer_id,
      refused: why,
    });
    return {
      customer_id: input.customer_id,
      cancelled,
      erased: false,
      deleted: { identifiers: 0, addresses: 0, payment_methods: 0, devices: 0, events_stripped: 0, history_keys: 0 },
      waited_for: waitedFor,
      request,
      refused: why,
      overdue: status.overdue,
    };
  }
  status.state = 'done';
  log.info(result.erased ? 'customer erased' : 'customer was erased before', {
    customerId: input.customer_id,
    cancelled: cancelled.length,
  });
  return {
    customer_id: input.customer_id,
    cancelled,
    erased: result.erased,
    erased_records: [input.customer_id, ...(result.merged_records ?? [])],
    deleted: result.deleted,
    waited_for: waitedFor,
    request,
    overdue: status.overdue,
  };
}
