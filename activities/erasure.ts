/** Activities of erasure: find the customer's running workflows, wait for them to stop, erase the graph side. */
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateStage, type Client } from '@temporalio/client';
import { eraseCustomer, pendingFraudReviews, type ErasureAudit, type ErasureResult } from '../graph/erasure';
import type { Graph } from '../graph/graph';
import { mergedRecordsOf } from '../graph/mergedRecords';
import { openProcessEntriesOf } from '../graph/openProcesses';
import { recoveriesOfCustomers, requestRecoveryStop } from '../graph/chargeLedger';
import { runningCustomerWorkflows } from '../temporal/connection';
import type { ErasureBlocker } from '../temporal/erasure';
import { fraudOutcomeStatusQuery, fraudOutcomeWorkflowId, type FraudOutcomeStatus } from '../temporal/fraud';
import {
  cancelRecoveryUpdate,
  paymentIdOfRecovery,
  recoveryStatusQuery,
  recoveryWorkflowId,
  type RecoveryStatus,
} from '../temporal/recovery';
import { updateRefusalOf } from '../temporal/updates';

/** How long `whyErasureWaits` waits for one workflow's status query. */
const QUERY_DEADLINE_MS = 5_000;

/*
 * What an overdue erasure says of each workflow holding it is kept in the erasure's own history,
 * under the service key, after the customer's keys are gone: so it is built from states, kinds and
 * times only — never a gateway's words, a problem's text or an error message, which may carry the
 * customer's data. Ops read the rest in the workflow itself.
 */

/** Why a recovery is still open, in words, from its status (states, kinds and times only). */
export function recoveryWhy(status: RecoveryStatus): string {
  const a = status.attention;
  if (status.state === 'needs_attention' && a)
    return (
      'payment recovery waits for ops' +
      (a.unknown_charge ? ': a charge of unknown outcome' : ` (${a.kind})`) +
      ` since ${a.since}${a.overdue ? ', overdue' : ''}`
    );
  if (status.state === 'recovering')
    return 'payment recovery has a charge under way: it takes the stop once the charge is recorded';
  return `payment recovery (${status.state}) has not taken the stop yet`;
}

/** Why a fraud outcome is still open, in words, from its status (states and times only). */
export function reviewWhy(status: FraudOutcomeStatus): string {
  if (status.state === 'awaiting_review')
    return `fraud review awaits ops' decision (resolveReview) until ${status.review_deadline ?? 'its deadline'}`;
  return `fraud outcome (${status.state}) has not ended yet${status.problem ? ' (it reports a problem)' : ''}`;
}

/**
 * Running workflows tagged with the customer (PersonaCustomerId), but `except`, and those the
 * graph names — recoveries the charge ledger has still recovering (the customer's and those of
 * the records merged into it), fraud outcomes whose review has not ended — which visibility may
 * not list yet.
 */
async function listRunningCustomerWorkflows(
  graph: Graph,
  temporal: Client,
  req: { customer_id: string; except: string },
): Promise<string[]> {
  const listed = await runningCustomerWorkflows(temporal, req.customer_id, { except: req.except });
  // Those of the records merged into the customer (erased with it) too.
  const mergedRecords = await mergedRecordsOf(graph, req.customer_id);
  for (const merged of mergedRecords)
    for (const id of await runningCustomerWorkflows(temporal, merged, { except: req.except }))
      if (!listed.includes(id)) listed.push(id);
  // Visibility lags: the graph names them too, and each is asked directly (describe reads the
  // workflow itself) whether it still runs.
  const named = [
    ...(await recoveriesOfCustomers(graph, [req.customer_id, ...mergedRecords])).map(recoveryWorkflowId),
    ...(await pendingFraudReviews(graph, req.customer_id)).map(fraudOutcomeWorkflowId),
  ];
  for (const id of named) {
    if (id === req.except || listed.includes(id)) continue;
    try {
      if ((await temporal.workflow.getHandle(id).describe()).status.name === 'RUNNING') listed.push(id);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return listed;
}

/** The read-only looks: the customer's running workflows, why an erasure waits, whether reviews have ended. */
function lookingActivities(graph: Graph, temporal: Client) {
  return {
    listRunningCustomerWorkflows: (req: { customer_id: string; except: string }): Promise<string[]> =>
      listRunningCustomerWorkflows(graph, temporal, req),
    /**
     * Why an overdue erasure still waits: each workflow it was told to wait for and each running
     * workflow of the customer (listRunningCustomerWorkflows), with why it is open, in words —
     * a recovery's attention or charge under way, a review awaiting ops, or "does not close".
     * Read-only: a status query per recovery and review (a workflow whose status cannot be read
     * says so), a describe per other.
     */
    async whyErasureWaits(req: {
      customer_id: string;
      except: string;
      workflow_ids: string[];
    }): Promise<ErasureBlocker[]> {
      const ids = [...req.workflow_ids];
      for (const id of await listRunningCustomerWorkflows(graph, temporal, req)) if (!ids.includes(id)) ids.push(id);
      const blockers: ErasureBlocker[] = [];
      for (const id of ids) {
        const handle = temporal.workflow.getHandle(id);
        let described;
        try {
          described = await handle.describe();
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) continue;
          throw err;
        }
        if (described.status.name !== 'RUNNING') continue;
        const since = described.startTime.toISOString();
        let why: string;
        try {
          // A query needs the workflow's worker: one that is away must not hold up the whole look.
          const soon = Date.now() + QUERY_DEADLINE_MS;
          if (id.startsWith(recoveryWorkflowId('')))
            why = recoveryWhy(await temporal.withDeadline(soon, () => handle.query(recoveryStatusQuery)));
          else if (id.startsWith(fraudOutcomeWorkflowId('')))
            why = reviewWhy(await temporal.withDeadline(soon, () => handle.query(fraudOutcomeStatusQuery)));
          else why = `${described.type} does not close (running since ${since}; the erasure asked it to stop)`;
        } catch {
          // Not the error's words: they stay out of the erasure's history (see above).
          why = `${described.type} does not close (running since ${since}); its status could not be read`;
        }
        blockers.push({ workflow_id: id, why });
      }
      return blockers;
    },
    /**
     * Whether the fraud reviews have ended: answers when none of these workflows runs any more,
     * and otherwise fails with a retryable `ReviewsPending`. The erasure waits through this
     * activity's retries (a minute apart at most): no worker slot is held between looks, and the
     * history holds one activity however long the review lasts.
     */
    async fraudReviewsEnded(req: { workflow_ids: string[] }): Promise<void> {
      const running: string[] = [];
      for (const id of req.workflow_ids) {
        try {
          if ((await temporal.workflow.getHandle(id).describe()).status.name === 'RUNNING') running.push(id);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
      if (running.length > 0)
        throw ApplicationFailure.retryable(`fraud reviews still running: ${running.join(', ')}`, 'ReviewsPending');
    },
  };
}

/**
 * Tells one of the customer's recoveries to stop: the stop written to the charge ledger first (from
 * then on nothing for the payment goes to the gateway), then the `cancel` Update, sent again as the
 * same update, answered once taken (a charge in flight is settled with the gateway, never sent
 * again, before the recovery ends). False when it had ended, or never ran.
 */
async function stopRecovery(graph: Graph, temporal: Client, workflowId: string, reason: string): Promise<boolean> {
  await requestRecoveryStop(graph, paymentIdOfRecovery(workflowId), { by: 'erasure', reason });
  const handle = temporal.workflow.getHandle(workflowId);
  try {
    await handle.startUpdate(cancelRecoveryUpdate, {
      args: [{ reason }],
      updateId: `erasure-cancel:${workflowId}`,
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    return true;
  } catch (err) {
    // Ended, or never ran: nothing to stop.
    if ((await updateRefusalOf(err, handle)) === undefined) throw err;
    return false;
  }
}

/** Telling the customer's recoveries to stop, and waiting for workflows to close. */
function stoppingActivities(graph: Graph, temporal: Client) {
  return {
    /**
     * Tells each of the customer's recoveries to stop (`stopRecovery`: the charge ledger, then the
     * `cancel` Update) and answers those that took it; a recovery takes it whatever it is doing.
     */
    async stopRecoveries(req: { workflow_ids: string[]; reason: string }): Promise<string[]> {
      const stopping: string[] = [];
      for (const id of req.workflow_ids) if (await stopRecovery(graph, temporal, id, req.reason)) stopping.push(id);
      return stopping;
    },
    /**
     * Waits until each workflow has closed (a recovery told to stop ends after the charge in
     * flight is recorded), for at most `within_ms`; answers the ids still running then.
     * Heartbeats, so a dead worker's wait is retried.
     */
    async awaitWorkflowsClosed(req: {
      workflow_ids: string[];
      within_ms: number;
      /** How often to look (default 500 ms). */
      poll_ms?: number;
      /** What the workflows are, in words, for the activity's summary (default: payment recoveries). */
      what?: string;
    }): Promise<string[]> {
      const deadline = Date.now() + req.within_ms;
      let running = req.workflow_ids;
      for (;;) {
        const still: string[] = [];
        for (const id of running) {
          try {
            if ((await temporal.workflow.getHandle(id).describe()).status.name === 'RUNNING') still.push(id);
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
          }
        }
        running = still;
        Context.current().heartbeat({ running: running.length });
        if (running.length === 0 || Date.now() >= deadline) return running;
        await sleep(req.poll_ms ?? 500, undefined, { signal: Context.current().cancellationSignal });
      }
    },
  };
}

/** The erasure proper: the customer's history workflows closed, then the graph side erased. */
function erasingActivities(graph: Graph, temporal: Client, erasureBatchSize: number | undefined) {
  return {
    /**
     * Whether every open process of the customer's (graph/openProcesses.ts: a small set the
     * workflows keep) has closed: erasure destroys the customer's history keys, and a worker could
     * no longer read the history of one still open. The graph names them, so none is missed
     * because visibility lags (entries of workflows that closed unseen go with the erasure). Each one
     * still running is told to stop (a recovery with its `cancel` Update, anything else
     * cancelled; a fraud review only when ops overrode it, otherwise it is waited for), and the
     * activity fails with a retryable `WorkflowsOpen` until they have closed: the erasure waits
     * through its retries.
     */
    async historyWorkflowsClosed(req: { customer_id: string; except: string; cancel_reviews: boolean }): Promise<void> {
      const open: string[] = [];
      // The records merged into the customer are erased with it: their workflows' keys go too.
      const owners = [req.customer_id, ...(await mergedRecordsOf(graph, req.customer_id))];
      const keyed = await openProcessEntriesOf(graph, owners);
      for (const { id, starting } of keyed) {
        if (id === req.except) continue;
        const handle = temporal.workflow.getHandle(id);
        try {
          if ((await handle.describe()).status.name !== 'RUNNING') continue;
          open.push(id);
          if (id.startsWith(recoveryWorkflowId('')))
            await stopRecovery(graph, temporal, id, `customer ${req.customer_id} is being erased`);
          else if (req.cancel_reviews || !id.startsWith(fraudOutcomeWorkflowId(''))) await handle.cancel();
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          // Registered moments ago and not started yet (the api registers, then starts): waited for.
          if (starting) open.push(id);
        }
      }
      if (open.length > 0)
        throw ApplicationFailure.retryable(
          `the customer's workflows must close before their history keys are destroyed; still open: ${open.join(', ')}`,
          'WorkflowsOpen',
        );
    },
    /**
     * Erases the customer: its events in batches (heartbeating after each, so a dead worker's
     * erasure is retried and goes on where it was), then the rest in one transaction.
     */
    async eraseCustomer(req: { customer_id: string; audit?: ErasureAudit }): Promise<ErasureResult> {
      return eraseCustomer(graph, req.customer_id, {
        ...(erasureBatchSize ? { batchSize: erasureBatchSize } : {}),
        ...(req.audit ? { audit: req.audit } : {}),
        onBatch: (progress) => {
          const context = Context.current();
          context.heartbeat(progress);
          if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
        },
      });
    },
  };
}

export function createErasureActivities({
  graph,
  temporal,
  erasureBatchSize,
}: {
  graph: Graph;
  temporal: Client;
  /** Events emptied per transaction (PERSONA_ERASURE_BATCH_SIZE). */
  erasureBatchSize?: number | undefined;
}) {
  return {
    ...lookingActivities(graph, temporal),
    ...stoppingActivities(graph, temporal),
    ...erasingActivities(graph, temporal, erasureBatchSize),
  };
}

export type ErasureActivities = ReturnType<typeof createErasureActivities>;
