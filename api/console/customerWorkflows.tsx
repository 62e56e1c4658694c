/**
 * The customer's workflows on the customer page (section #workflows): running and recent, found in
 * Temporal's visibility by `PersonaCustomerId` (bounded), each with its state, its static summary
 * and a deep link into the Temporal UI's history of that run; a recovery with why its next retry is
 * when it is, a fraud outcome's review, a merge's undo window — and the forms of the actions ops
 * decide there (each shown only when the session may take it).
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Principal } from '../auth';
import type { ApiDeps } from '../deps';
import { FRAUD_OUTCOME_WORKFLOW_TYPE, fraudOutcomeWorkflowId, type FraudOutcomeStatus } from '../../temporal/fraud';
import { IDENTITY_MERGE_WORKFLOW_TYPE, type IdentityMergeStatus } from '../../temporal/identityMerge';
import { RECOVERY_WORKFLOW_TYPE, recoveryWorkflowId } from '../../temporal/recovery';
import { customerWorkflowsQuery } from '../../temporal/searchAttributes';
import { fraudOutcomeStatus } from '../services/fraud';
import { mergeStatus } from '../services/identityMerge';
import { mayOfferCancel, recoveryStatus } from '../services/recovery';
import type { RecoveryStatusAnswer } from '../services/recoveryLedger';
import { ActionForm, when } from './kit';
import type { ConsoleSession } from './session';

/** The most workflows the page lists (the newest; the Temporal UI has them all). */
export const WORKFLOW_LIST_LIMIT = 50;
/** The most workflows whose summary and state the page reads (running first, then the newest). */
export const WORKFLOW_DETAIL_LIMIT = 10;
/**
 * How long the page waits on Temporal for the list, and then for the details, before it goes
 * without: half the request deadline each, so the page never waits longer than the deadline.
 */
const temporalWaitMs = (deps: ApiDeps) => deps.limits.requestDeadlineMs / 2;

/** The Temporal UI's page of a run's history (or of the workflow's latest run, without a run id). */
export function temporalHistoryUrl(deps: ApiDeps, workflowId: string, runId?: string): string {
  const base = deps.console.temporalUiUrl.replace(/\/+$/, '');
  const ns = encodeURIComponent(deps.console.namespace);
  const run = runId ? `/${encodeURIComponent(runId)}/history` : '';
  return `${base}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}${run}`;
}

export interface WorkflowRow {
  workflowId: string;
  runId: string;
  type: string;
  /** Temporal's execution status, e.g. RUNNING, COMPLETED. */
  status: string;
  startTime: string;
  closeTime: string | null;
  /** The static summary; undefined when it was not read (beyond the detail limit, or unreadable). */
  summary?: string | undefined;
  recovery?: { paymentId: string; status: RecoveryStatusAnswer | null };
  fraud?: { outcomeId: string; status: FraudOutcomeStatus | null };
  merge?: { status: IdentityMergeStatus | null };
}

export type CustomerWorkflows = { rows: WorkflowRow[]; more: boolean } | { unavailable: string };

const RECOVERY_PREFIX = recoveryWorkflowId('');
const FRAUD_PREFIX = fraudOutcomeWorkflowId('');

/** Runs `fn` on the client with a deadline; its answer, or undefined when it fails. */
async function within<T>(client: Client, ms: number, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await client.connection.withDeadline(Date.now() + ms, fn);
  } catch {
    return undefined;
  }
}

/** The summary and the state of one workflow (whatever of it Temporal answers in time). */
async function detailsOf(deps: ApiDeps, info: WorkflowExecutionInfo, principal: Principal): Promise<WorkflowRow> {
  const { client } = deps.temporal;
  const row = rowOf(info);
  const handle = client.workflow.getHandle(info.workflowId, info.runId);
  const summary = within(client, temporalWaitMs(deps), async () => (await handle.describe()).staticSummary());
  const state = within(client, temporalWaitMs(deps), async () => {
    if (row.recovery) row.recovery.status = await recoveryStatus(deps, row.recovery.paymentId);
    else if (row.fraud) row.fraud.status = await fraudOutcomeStatus(deps, row.fraud.outcomeId);
    else if (row.merge) row.merge.status = await mergeStatus(deps, info.workflowId, principal);
  });
  row.summary = await summary;
  await state;
  return row;
}

function rowOf(info: WorkflowExecutionInfo): WorkflowRow {
  const row: WorkflowRow = {
    workflowId: info.workflowId,
    runId: info.runId,
    type: info.type,
    status: info.status.name,
    startTime: info.startTime.toISOString(),
    closeTime: info.closeTime?.toISOString() ?? null,
  };
  if (info.type === RECOVERY_WORKFLOW_TYPE && info.workflowId.startsWith(RECOVERY_PREFIX))
    row.recovery = { paymentId: info.workflowId.slice(RECOVERY_PREFIX.length), status: null };
  else if (info.type === FRAUD_OUTCOME_WORKFLOW_TYPE && info.workflowId.startsWith(FRAUD_PREFIX))
    row.fraud = { outcomeId: info.workflowId.slice(FRAUD_PREFIX.length), status: null };
  else if (info.type === IDENTITY_MERGE_WORKFLOW_TYPE) row.merge = { status: null };
  return row;
}

/**
 * The customer's workflows: the newest WORKFLOW_LIST_LIMIT in visibility (running first), the
 * first WORKFLOW_DETAIL_LIMIT of them with their summary and state, read at once. When Temporal
 * does not answer in time, the page says so instead of failing.
 */
export async function loadCustomerWorkflows(
  deps: ApiDeps,
  customerId: string,
  principal: Principal,
): Promise<CustomerWorkflows> {
  const { client } = deps.temporal;
  const listed: WorkflowExecutionInfo[] = [];
  let more = false;
  try {
    await client.connection.withDeadline(Date.now() + temporalWaitMs(deps), async () => {
      for await (const wf of client.workflow.list({
        query: customerWorkflowsQuery(customerId),
        pageSize: WORKFLOW_LIST_LIMIT + 1,
      })) {
        if (listed.length === WORKFLOW_LIST_LIMIT) {
          more = true;
          break;
        }
        listed.push(wf);
      }
    });
  } catch (err) {
    deps.logger.warn({ err, customerId }, 'console: the customer’s workflows could not be listed');
    return { unavailable: 'Temporal did not answer in time: the workflows are not listed now. Reload to try again.' };
  }
  const running = (w: WorkflowExecutionInfo) => (w.status.name === 'RUNNING' ? 0 : 1);
  listed.sort(
    (a, b) => running(a) - running(b) || b.startTime.getTime() - a.startTime.getTime() || (a.runId < b.runId ? -1 : 1),
  );
  const rows = await Promise.all(
    listed.map((wf, i) => (i < WORKFLOW_DETAIL_LIMIT ? detailsOf(deps, wf, principal) : Promise.resolve(rowOf(wf)))),
  );
  return { rows, more };
}

const TYPE_WORDS: Record<string, string> = {
  onboardingWorkflow: 'Onboarding',
  paymentRecoveryWorkflow: 'Payment recovery',
  fraudOutcomeWorkflow: 'Fraud outcome',
  identityMergeWorkflow: 'Identity merge',
  erasureWorkflow: 'Erasure',
  trustedDeviceWorkflow: 'Trusted device report',
};

const words = (s: string) => s.toLowerCase().replace(/_/g, ' ');

/** The state of a recovery, fraud outcome or merge in words (what its status query said). */
function StateOf({ row }: { row: WorkflowRow }) {
  if (row.recovery) {
    const s = row.recovery.status;
    if (!s) return <span class="muted">Its state could not be read now.</span>;
    return (
      <div>
        <p>{`Recovery ${words(s.state)}; ${s.attempts.length} ${s.attempts.length === 1 ? 'attempt' : 'attempts'}.`}</p>
        {s.source === 'ledger' ? (
          <p class="muted">
            {`As the charge ledger recorded it${s.as_of ? ` (${when(s.as_of)})` : ''}: its workflow did not answer.`}
          </p>
        ) : null}
        {s.next_retry_at ? (
          <p class="next-retry">
            {`Next retry: ${when(s.next_retry_at)}`}
            {s.next_retry_reason ? ` — why then: ${s.next_retry_reason}` : ''}
          </p>
        ) : null}
        {s.attention ? <p class="problem">{`Needs attention: ${s.attention.reason}`}</p> : null}
        {s.attention?.unknown_charge ? (
          <p class="problem">
            {`The charge under key ${s.attention.unknown_charge} may have gone through: retry it (the same ` +
              'key asks the gateway) or cancel the recovery (it asks the gateway first); it cannot be skipped.'}
          </p>
        ) : null}
        {s.stop_reason ? <p>{`Stopped: ${s.stop_reason}`}</p> : null}
      </div>
    );
  }
  if (row.fraud) {
    const s = row.fraud.status;
    if (!s) return <span class="muted">Its state could not be read now.</span>;
    return (
      <div>
        <p>{`Outcome ${words(s.outcome)}: ${words(s.state)}.`}</p>
        {s.state === 'awaiting_review' && s.review_deadline ? (
          <p>{`Review by ${when(s.review_deadline)} (the suspension stays without a decision).`}</p>
        ) : null}
        {s.decision ? <p>{`Decision: ${s.decision}.`}</p> : null}
        {s.problem ? <p class="problem">{s.problem}</p> : null}
      </div>
    );
  }
  if (row.merge) {
    const s = row.merge.status;
    if (!s) return <span class="muted">Its state could not be read now.</span>;
    return (
      <div>
        <p>{`Merge of ${s.merged_id} into ${s.survivor_id}: ${words(s.state)} (decided by ${s.decided_by}).`}</p>
        {s.state === 'merged' && s.undo_deadline ? <p>{`Undo possible until ${when(s.undo_deadline)}.`}</p> : null}
        {s.problem ? <p class="problem">{s.problem}</p> : null}
      </div>
    );
  }
  return <span class="muted">—</span>;
}

/** A text input with its label, for a form in a row (ids made unique by `uid`). */
function TextField(props: { name: string; label: string; uid: string; required?: boolean }) {
  const id = `${props.name}-${props.uid}`.replace(/[^A-Za-z0-9_-]/g, '_');
  return (
    <>
      <label for={id}>{props.label}</label>
      <input id={id} name={props.name} type="text" maxlength={500} required={props.required} autocomplete="off" />
    </>
  );
}

/** The actions ops decide on one workflow: those the session may take, and the workflow can take now. */
function ActionsOf(props: {
  row: WorkflowRow;
  session: ConsoleSession;
  may: (action: string) => boolean;
  back: string;
}) {
  const { row, session, may, back } = props;
  const forms = [];
  const running = row.status === 'RUNNING';
  const recovery = row.recovery;
  // Offered where the recovery would likely take it (dunning, charging or waiting for ops, nothing
  // recovered yet): a hint only, the recovery validates the cancel when it arrives.
  if (recovery?.status && running && may('cancel-recovery') && mayOfferCancel(recovery.status))
    forms.push(
      <ActionForm
        session={session}
        action="cancel-recovery"
        fields={{ payment_id: recovery.paymentId }}
        label="Cancel this recovery"
        back={back}
        danger
      >
        <TextField name="reason" label="Reason" uid={`cancel-${row.workflowId}`} required />
      </ActionForm>,
    );
  const fraud = row.fraud;
  if (fraud?.status?.state === 'awaiting_review' && !fraud.status.decision && may('fraud-review'))
    for (const decision of ['reinstate', 'confirm'] as const)
      forms.push(
        <ActionForm
          session={session}
          action="fraud-review"
          fields={{ outcome_id: fraud.outcomeId, decision }}
          label={decision === 'reinstate' ? 'Reinstate the customer' : 'Confirm the suspension'}
          back={back}
          danger={decision === 'confirm'}
        >
          <TextField name="note" label="Note (optional)" uid={`${decision}-${row.workflowId}`} />
        </ActionForm>,
      );
  const merge = row.merge?.status;
  if (merge?.state === 'merged' && running && may('merge-undo'))
    forms.push(
      <ActionForm
        session={session}
        action="merge-undo"
        fields={{ merge_id: row.workflowId }}
        label="Undo this merge"
        back={back}
        danger
      >
        <TextField name="reason" label="Reason" uid={`undo-${row.workflowId}`} required />
      </ActionForm>,
    );
  return forms.length > 0 ? <div class="actions">{forms}</div> : <span class="muted">—</span>;
}

export function WorkflowsSection(props: {
  deps: ApiDeps;
  workflows: CustomerWorkflows;
  session: ConsoleSession;
  may: (action: string) => boolean;
  back: string;
}) {
  const { deps, workflows, session, may, back } = props;
  const showActions = ['cancel-recovery', 'fraud-review', 'merge-undo'].some(may);
  return (
    <section id="workflows" aria-labelledby="workflows-title">
      <h2 id="workflows-title">Workflows</h2>
      {'unavailable' in workflows ? (
        <p class="problem">{workflows.unavailable}</p>
      ) : workflows.rows.length === 0 ? (
        <p>No workflow of this customer is known to Temporal.</p>
      ) : (
        <>
          <p class="hint">
            {`Running first, then the newest${workflows.more ? `; the newest ${WORKFLOW_LIST_LIMIT} are listed` : ''}` +
              ` (state and summary of the first ${WORKFLOW_DETAIL_LIMIT}).` +
              ' Each links to its history in the Temporal UI.'}
          </p>
          <table>
            <caption>The customer’s workflows</caption>
            <thead>
              <tr>
                <th scope="col">Workflow</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col">Closed</th>
                <th scope="col">Summary</th>
                <th scope="col">State</th>
                {showActions ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {workflows.rows.map((row) => (
                <tr data-workflow-id={row.workflowId}>
                  <th scope="row">
                    <a class="temporal-link" href={temporalHistoryUrl(deps, row.workflowId, row.runId)}>
                      {row.workflowId}
                    </a>
                  </th>
                  <td>{TYPE_WORDS[row.type] ?? row.type}</td>
                  <td>{words(row.status)}</td>
                  <td>{when(row.startTime)}</td>
                  <td>{when(row.closeTime)}</td>
                  <td>{row.summary ?? <span class="muted">—</span>}</td>
                  <td>
                    <StateOf row={row} />
                  </td>
                  {showActions ? (
                    <td>
                      <ActionsOf row={row} session={session} may={may} back={back} />
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
