/**
 * What a restore reads of workflows from their histories (the key their payloads name, the failure a
 * recovery was reported with), and the payment recoveries the restored charge ledger lost: every
 * recovery whose workflow began after the backup and no longer runs — terminated by the restore
 * (backup/reconcile.ts `reconcileWorkflows`), by hand or by an earlier run of the restore, or ended
 * — is written back as `recovering` unless the ledger has it (graph/chargeLedger.ts
 * `writeBackRecovery`). Stranded so, it is refused to a new report of its payment, flagged or
 * recorded by the gateway reconciliation, and settled by `npm run ops:settle-recoveries`; a payment
 * reported again under a new id names it (`replaces`) and is taken only once it charged nothing.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { writeBackRecovery } from '../graph/chargeLedger';
import type { Graph } from '../graph/graph';
import { historyKeyIdOf } from '../temporal/payloadEnvelope';
import {
  paymentFailedSignal,
  paymentIdOfRecovery,
  RECOVERY_WORKFLOW_TYPE,
  type PaymentFailure,
} from '../temporal/recovery';
import { personaCustomerId } from '../temporal/searchAttributes';
import type { Log } from './backup';

type Decode = (payloads: Payload[]) => Promise<Payload[]>;

const KEY_PRESENT = 'OPTIONAL MATCH (k:HistoryKey {id: $id}) RETURN k IS NOT NULL AND k.wrapped IS NOT NULL AS present';

/** The first payload of a history event's input, decoded (Persona's codec, then JSON). */
export async function firstInput(
  decode: Decode,
  input: temporal.api.common.v1.IPayloads | null | undefined,
): Promise<unknown> {
  const payload = input?.payloads?.[0];
  if (!payload) return undefined;
  const [decoded] = await decode([payload]);
  return decoded ? defaultPayloadConverter.fromPayload(decoded) : undefined;
}

/** The history key (its id in the graph) the first payload of a run's history names, if any. */
async function historyKeyOfRun(client: Client, wf: WorkflowExecutionInfo): Promise<string | null> {
  const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
  for (const event of history.events ?? []) {
    const input =
      event.workflowExecutionStartedEventAttributes?.input ?? event.workflowExecutionSignaledEventAttributes?.input;
    for (const payload of input?.payloads ?? []) {
      const keyId = historyKeyIdOf(payload);
      if (keyId !== null) return keyId;
    }
  }
  return null;
}

/**
 * Whether the restored graph has the history key a run's payloads name (its customer's, or an
 * onboarding's own: graph/historyKeys.ts), so a worker, or the restore, can read its history.
 */
export async function historyKeyPresent(graph: Graph, client: Client, wf: WorkflowExecutionInfo): Promise<boolean> {
  const id = (await historyKeyOfRun(client, wf)) ?? wf.workflowId;
  const r = (await graph.driver.executeQuery(KEY_PRESENT, { id }, { database: graph.database })).records[0];
  return r?.get('present') === true;
}

/** The failure a recovery was reported with (its `paymentFailed` signal), from its own history. */
export async function reportedFailureOf(
  client: Client,
  decode: Decode,
  wf: WorkflowExecutionInfo,
): Promise<PaymentFailure | undefined> {
  const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
  for (const event of history.events ?? []) {
    const signal = event.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName === paymentFailedSignal.name)
      return (await firstInput(decode, signal.input)) as PaymentFailure | undefined;
  }
  return undefined;
}

/**
 * A recovery whose workflow no longer runs, written back into the restored ledger unless the ledger
 * has it: its customer (PersonaCustomerId), its start, the reason, and the report's facts only
 * when its history can be read (`readable`: its key is in the restored graph). The payment id when
 * written, else null.
 */
export async function writeBackLostRecovery(
  graph: Graph,
  client: Client,
  decode: Decode,
  wf: WorkflowExecutionInfo,
  lost: { readable: boolean; reason: string },
): Promise<string | null> {
  const f = lost.readable ? await reportedFailureOf(client, decode, wf) : undefined;
  const paymentId = paymentIdOfRecovery(wf.workflowId);
  const { written } = await writeBackRecovery(graph, {
    payment_id: paymentId,
    customer_id: wf.typedSearchAttributes.get(personaCustomerId) ?? f?.customer_id ?? null,
    started_at: wf.startTime.toISOString(),
    payment_method_id: f?.payment_method_id ?? null,
    amount: f?.amount ?? null,
    currency: f?.currency ?? null,
    decline_code: f?.decline_code ?? null,
    reason: lost.reason,
  });
  return written ? paymentId : null;
}

/**
 * Every recovery whose workflow began since `from` (the backup, less a margin) and has closed —
 * terminated by hand or by an earlier run of this restore, or ended (its verdict was written after
 * the backup) — written back unless the ledger has it, with its customer and start only (no
 * history is read: there may be many, and the gateway, not the report, says what they charged).
 * The payment ids written.
 */
export async function writeBackClosedRecoveries(
  graph: Graph,
  client: Client,
  decode: Decode,
  since: { from: string; backup_id: string },
  log: Log,
): Promise<string[]> {
  const query =
    `WorkflowType = '${RECOVERY_WORKFLOW_TYPE}' AND StartTime >= '${since.from}' ` +
    "AND ExecutionStatus IN ('Completed', 'Failed', 'Canceled', 'Terminated', 'TimedOut')";
  const written: string[] = [];
  for await (const wf of client.workflow.list({ query })) {
    const closed = `${wf.status.name.toLowerCase()} at ${wf.closeTime?.toISOString() ?? 'an unknown time'}`;
    const reason =
      `its workflow began after backup ${since.backup_id} and closed (${closed}); ` +
      'the restore wrote it back: the gateway says what it charged';
    const paymentId = await writeBackLostRecovery(graph, client, decode, wf, { readable: false, reason });
    if (paymentId === null) continue;
    written.push(paymentId);
    log(`${wf.workflowId}: closed (${closed}), written back into the charge ledger as recovering`);
  }
  return written;
}
