/**
 * What a restored graph must do about what happened after its backup, before the api and worker
 * serve again (backup/restore.ts runs these in order):
 *
 *   1. a new epoch for the event log: the restore's events and every later one carry it, so no
 *      (epoch, customer_seq) is given twice and readers see the discontinuity;
 *   2. every erasure since the backup again, from the erasure ledger outside the graph: Temporal's
 *      own record of the erasure workflows that completed (their results), so an erased customer
 *      never comes back and the history keys the erasure destroyed are destroyed again;
 *   3. every running workflow against the restored graph: a customer workflow started after the
 *      backup (the graph never saw it), or one whose history key the graph no longer has (made
 *      after the backup: it can never be replayed), is terminated with the reason; a recovery or
 *      fraud review whose customer or payment method is gone is told (`graphRestored`) and waits
 *      for ops. Every payment recovery that began after the backup and no longer runs (terminated
 *      here, by hand or by an earlier run of the restore, or ended) is written back into the
 *      restored charge ledger as `recovering`, unless the ledger has it: stranded, it is refused
 *      to a new report and settled with the gateway (graph/chargeLedger.ts `writeBackRecovery`), so
 *      the payment reported again under a new id never charges twice;
 *   4. a `GraphRestored` event that says all of it.
 */
import type { Payload } from '@temporalio/common';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { eraseCustomer } from '../graph/erasure';
import { survivorOf } from '../graph/mergedRecords';
import { NotFoundError } from '../graph/errors';
import { appendEvent, EVENT_LOG_ID } from '../graph/events';
import { writeTx, type Graph } from '../graph/graph';
import { ERASURE_WORKFLOW_TYPE, type ErasureOutcome } from '../temporal/erasure';
import { FRAUD_OUTCOME_WORKFLOW_TYPE, fraudOutcomeWorkflowId, type FraudOutcomeInput } from '../temporal/fraud';
import {
  GATEWAY_RECONCILIATION_SCHEDULE_ID,
  GATEWAY_RECONCILIATION_WORKFLOW_TYPE,
  type GatewayReconciliationInput,
} from '../temporal/reconciliation';
import { HISTORY_KEYED_WORKFLOW_PREFIXES } from '../temporal/payloadCodec';
import { recoveryWorkflowId } from '../temporal/recovery';
import { graphRestoredSignal } from '../temporal/restore';
import { personaCustomerId } from '../temporal/searchAttributes';
import type { BackupManifest } from './archive';
import type { Log } from './backup';
import {
  firstInput,
  historyKeyPresent,
  reportedFailureOf,
  writeBackClosedRecoveries,
  writeBackLostRecovery,
} from './lostRecoveries';

/**
 * How far before the backup's time erasures are looked up: an erasure that closed just before the
 * copy is in the archive already, and erasing again is a no-op, so the margin costs nothing but
 * covers clocks that disagree.
 */
export const ERASURE_LOOKBACK_MS = 60 * 60_000;

/**
 * Temporal, twice: `client` with Persona's payload codec (signals, results, starts), `visibility`
 * without it (lists, describes, terminations, raw histories). A workflow started after the backup
 * has a summary encrypted under a history key the restored graph never had: listing it through the
 * codec would fail on it, and nothing read through `visibility` needs decoding (search attributes
 * are clear; the inputs read from histories are decoded one by one, where their key exists).
 */
export interface RestoreTemporal {
  client: Client;
  visibility: Client;
}

export interface WorkflowAction {
  workflow_id: string;
  action: 'needs_attention' | 'terminated';
  reason: string;
}

export interface RestoreReport {
  epoch: number;
  previous_epoch: number;
  /** Customers erased again (they came back with the graph). */
  erasures_reapplied: string[];
  /** Erasures of customers the restored graph never had (made after the backup): nothing to do. */
  erasures_absent: string[];
  /** Erasures the restored graph holds already. */
  erasures_already_applied: number;
  history_keys_destroyed: number;
  workflows: WorkflowAction[];
  /**
   * Payment recoveries that began after the backup and no longer run, written back into the restored
   * charge ledger as `recovering` (payment ids): each gets its verdict from the gateway before its
   * payment is reported again (with `replaces`).
   */
  recoveries_written_back: string[];
  /** Running workflows looked at. */
  workflows_checked: number;
  /**
   * Fraud outcomes reported since the backup (any state): the suspensions and compromised methods
   * they applied are not in the restored graph. Ops re-apply them (docs/runbook.md).
   */
  fraud_outcomes_since_backup: { workflow_id: string; customer_id: string | null; status: string }[];
  /** The gateway reconciliation the restore started over the window since the backup (runs once a worker does). */
  gateway_reconciliation: string | null;
}

/** Fraud outcomes started since an hour before the backup, from Temporal's visibility. */
export async function fraudOutcomesSince(
  visibility: Client,
  manifest: BackupManifest,
): Promise<RestoreReport['fraud_outcomes_since_backup']> {
  const query =
    `WorkflowType = '${FRAUD_OUTCOME_WORKFLOW_TYPE}' ` +
    `AND StartTime >= '${since(manifest.taken_at, ERASURE_LOOKBACK_MS)}'`;
  const out: RestoreReport['fraud_outcomes_since_backup'] = [];
  for await (const wf of visibility.workflow.list({ query }))
    out.push({
      workflow_id: wf.workflowId,
      customer_id: wf.typedSearchAttributes.get(personaCustomerId) ?? null,
      status: wf.status.name,
    });
  return out;
}

/**
 * Starts a gateway reconciliation over everything since an hour before the backup: charges the
 * gateway made after it, which the restored graph lacks, are recorded again or flagged. It runs
 * once a worker is back (the restore runs with the workers stopped), and `until_covered`: a page
 * that keeps failing is tried again until it goes through, never skipped.
 */
export async function startGatewayReconciliation(
  client: Client,
  taskQueue: string,
  manifest: BackupManifest,
  epoch: number,
  now: Date,
): Promise<string> {
  const workflowId = `${GATEWAY_RECONCILIATION_SCHEDULE_ID}-restore-${epoch}`;
  const input: GatewayReconciliationInput = {
    lookback_hours: 0,
    grace_minutes: 0,
    page_size: 200,
    window: { from: since(manifest.taken_at, ERASURE_LOOKBACK_MS), to: now.toISOString() },
    // No later run covers this window: a failing page is tried again until it goes through.
    until_covered: true,
  };
  await client.workflow.start(GATEWAY_RECONCILIATION_WORKFLOW_TYPE, {
    workflowId,
    taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: `Reconciliation with the gateway since backup ${manifest.id} (started by its restore)`,
  });
  return workflowId;
}

/** Moves the log to a new epoch: the restore's time in seconds, and always above the one before. */
export async function startEpoch(g: Graph, backupId: string, now: Date): Promise<{ epoch: number; previous: number }> {
  return writeTx(g, async (tx) => {
    const r = (
      await tx.run(
        `MERGE (l:EventLog {id: $id})
         WITH l, coalesce(l.epoch, 0) AS previous
         SET l.epoch = CASE WHEN $epoch > previous THEN $epoch ELSE previous + 1 END,
             l.restored_at = datetime.realtime(), l.restored_from = $backupId
         RETURN previous, l.epoch AS epoch`,
        { id: EVENT_LOG_ID, epoch: Math.floor(now.getTime() / 1000), backupId },
      )
    ).records[0];
    return { epoch: Number(r?.get('epoch')), previous: Number(r?.get('previous')) };
  });
}

/** Visibility's date format: RFC 3339, as the query language takes it. */
const since = (iso: string, lookbackMs: number): string => new Date(Date.parse(iso) - lookbackMs).toISOString();

/** Erases again every customer whose erasure completed since the backup (Temporal's record). */
export async function reapplyErasures(
  g: Graph,
  temporal: RestoreTemporal,
  manifest: BackupManifest,
  log: Log,
): Promise<
  Pick<RestoreReport, 'erasures_reapplied' | 'erasures_absent' | 'erasures_already_applied'> & {
    history_keys_destroyed: number;
  }
> {
  const query =
    `WorkflowType = '${ERASURE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Completed' ` +
    `AND CloseTime >= '${since(manifest.taken_at, ERASURE_LOOKBACK_MS)}'`;
  const out = { erasures_reapplied: [] as string[], erasures_absent: [] as string[], erasures_already_applied: 0 };
  let keys = 0;
  for await (const wf of temporal.visibility.workflow.list({ query })) {
    const outcome = (await temporal.client.workflow.getHandle(wf.workflowId, wf.runId).result()) as ErasureOutcome;
    // Every record the erasure took: the customer and the records merged into it — which the
    // backup may hold as customers of their own (merged after it was taken).
    const records = outcome.erased_records ?? (outcome.erased ? [outcome.customer_id] : []);
    const closed = wf.closeTime?.toISOString() ?? 'an unknown time';
    for (const id of records) {
      try {
        const merged = id === outcome.customer_id ? '' : ` with ${outcome.customer_id}, into whom it was merged`;
        // A record the backup holds as a merge's tombstone (merged into another record there, which
        // may not be one of these): erased as that merge's tombstone, whatever the order here.
        const restoredAs = await survivorOf(g, id);
        const r = await eraseCustomer(g, id, {
          ...(restoredAs?.merged_into ? { asMergedInto: restoredAs.merged_into } : {}),
          audit: {
            reason:
              `erased at ${closed}${merged}; ` +
              `erased again by the restore of backup ${manifest.id}, taken before it`,
            requested_by: 'persona-restore',
            override_fraud_review: true,
            reason_code: 'restore_reapplied',
          },
        });
        if (r.erased) {
          out.erasures_reapplied.push(id);
          keys += r.deleted.history_keys;
          log(`erasure of ${id} (done ${closed}) applied again`);
        } else out.erasures_already_applied += 1;
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        out.erasures_absent.push(id);
      }
    }
  }
  return { ...out, history_keys_destroyed: keys };
}

const GRAPH_FACTS = {
  customer: `
    OPTIONAL MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (p:PaymentMethod {id: $methodId})
    RETURN c.status AS status, p IS NOT NULL AS method`,
} as const;

/** The customer and payment method a recovery or fraud outcome acts on, from its own history. */
async function subjectOf(
  client: Client,
  decode: (payloads: Payload[]) => Promise<Payload[]>,
  wf: WorkflowExecutionInfo,
): Promise<{ customer: string | null; method: string | null }> {
  const customer = wf.typedSearchAttributes.get(personaCustomerId) ?? null;
  if (wf.workflowId.startsWith(recoveryWorkflowId(''))) {
    const f = await reportedFailureOf(client, decode, wf);
    return { customer: f?.customer_id ?? customer, method: f?.payment_method_id ?? null };
  }
  const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
  for (const event of history.events ?? []) {
    const started = event.workflowExecutionStartedEventAttributes;
    if (!started) continue;
    const input = (await firstInput(decode, started.input)) as FraudOutcomeInput | undefined;
    return { customer: input?.report.customer_id ?? customer, method: input?.report.payment_method_id ?? null };
  }
  return { customer, method: null };
}

/**
 * Every running workflow against the restored graph (see the module's comment), then the payment
 * recoveries the restored ledger lost written back into it (backup/lostRecoveries.ts): those
 * terminated here, and those that began after the backup and closed before (`written_back`, payment
 * ids). Needs no worker: it reads histories and visibility, terminates and signals.
 */
export async function reconcileWorkflows(
  graph: Graph,
  temporal: RestoreTemporal,
  decode: (payloads: Payload[]) => Promise<Payload[]>,
  notice: { epoch: number; backup_id: string },
  log: Log,
  /** When the backup was taken: a customer workflow started after it runs against a graph that never saw it. */
  backupTakenAt: string | null = null,
): Promise<{ workflows: WorkflowAction[]; checked: number; written_back: string[] }> {
  const fact = async (cypher: string, params: Record<string, unknown>) =>
    (await graph.driver.executeQuery(cypher, params, { database: graph.database })).records[0];
  const actions: WorkflowAction[] = [];
  const writtenBack: string[] = [];
  let checked = 0;
  const { visibility, client } = temporal;
  for await (const wf of visibility.workflow.list({ query: "ExecutionStatus = 'Running'" })) {
    checked += 1;
    const id = wf.workflowId;
    const isRecovery = id.startsWith(recoveryWorkflowId(''));
    if (HISTORY_KEYED_WORKFLOW_PREFIXES.some((p) => id.startsWith(p))) {
      // The key its payloads name (its customer's, or an onboarding's own): graph/historyKeys.ts.
      const readable = await historyKeyPresent(graph, visibility, wf);
      // Its customer's key may be older than the backup while the workflow is not (keys are per
      // customer): one started after the backup is terminated all the same.
      const startedAfter = backupTakenAt !== null && wf.startTime.getTime() > Date.parse(backupTakenAt);
      if (!readable || startedAfter) {
        const reason = !readable
          ? `its history key was made after backup ${notice.backup_id} and is not in the restored graph: ` +
            'no worker can read its history again'
          : `it started after backup ${notice.backup_id}: the restored graph never saw it`;
        await visibility.workflow.getHandle(id, wf.runId).terminate(reason);
        actions.push({ workflow_id: id, action: 'terminated', reason });
        log(`${id}: terminated (${reason})`);
        // The restored ledger never had it: written back, so that nothing charges for it again unseen.
        const written = isRecovery
          ? await writeBackLostRecovery(graph, visibility, decode, wf, {
              readable,
              reason: `terminated by the restore: ${reason}`,
            })
          : null;
        if (written !== null) writtenBack.push(written);
        continue;
      }
    }
    if (!isRecovery && !id.startsWith(fraudOutcomeWorkflowId(''))) continue;
    const subject = await subjectOf(visibility, decode, wf);
    if (!subject.customer) continue;
    const row = await fact(GRAPH_FACTS.customer, { customerId: subject.customer, methodId: subject.method ?? '' });
    const status = row?.get('status') as string | null;
    const missing =
      status === null
        ? `customer ${subject.customer} is not in it`
        : status === 'erased'
          ? `customer ${subject.customer} is erased in it`
          : subject.method && row?.get('method') !== true
            ? `payment method ${subject.method} is not in it`
            : null;
    if (!missing) continue;
    await client.workflow
      .getHandle(id, wf.runId)
      .signal(graphRestoredSignal, { reason: `the restored graph lacks what it acts on: ${missing}`, ...notice });
    actions.push({ workflow_id: id, action: 'needs_attention', reason: missing });
    log(`${id}: waits for ops (${missing})`);
  }
  if (backupTakenAt !== null) {
    const from = since(backupTakenAt, ERASURE_LOOKBACK_MS);
    writtenBack.push(
      ...(await writeBackClosedRecoveries(graph, visibility, decode, { from, backup_id: notice.backup_id }, log)),
    );
  }
  return { workflows: actions, checked, written_back: writtenBack };
}

/** The restore's own record in the log, after the erasures it applied again (all in the new epoch). */
export async function recordRestore(
  g: Graph,
  manifest: BackupManifest,
  report: RestoreReport,
  requested: { by: string; reason: string },
): Promise<void> {
  await writeTx(g, (tx) =>
    appendEvent(tx, 'GraphRestored', null, {
      epoch: report.epoch,
      previous_epoch: report.previous_epoch,
      backup: { id: manifest.id, taken_at: manifest.taken_at },
      erasures_reapplied: report.erasures_reapplied,
      history_keys_destroyed: report.history_keys_destroyed,
      workflows: report.workflows,
      recoveries_written_back: report.recoveries_written_back,
      // Who restored: ops' words stay on the event log's own node, never on an event (the feed and
      // the webhook serve events whole).
      requested_by: requested.by,
    }).then(() =>
      tx.run(
        `MATCH (l:EventLog)
         SET l.restored_by = $by, l.restore_reason = $reason, l.restored_at = datetime.transaction()`,
        { by: requested.by, reason: requested.reason.trim() },
      ),
    ),
  );
}
