/**
 * Identity merges from the api's side: proposing one (ops, a service with `identity:merge`, or a
 * customer of one of the two records, who always needs both customers' consent), each
 * customer's answer, ops' undo, and the status. Every decision is a Workflow Update, so the
 * caller hears the outcome (or the validator's refusal, 409) at once.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { InvalidStateError, NotFoundError } from '../../graph/errors';
import { claimMergeProposal, mergeParties, mergeRefusal } from '../../graph/identityMerge';
import {
  IDENTITY_MERGE_WORKFLOW_TYPE,
  confirmMergeUpdate,
  declineMergeUpdate,
  identityMergePair,
  identityMergeStatusQuery,
  identityMergeWorkflowId,
  initialMergeStatus,
  undoMergeUpdate,
  type IdentityMergeStatus,
  type MergeDecision,
} from '../../temporal/identityMerge';
import { personaCustomerId } from '../../temporal/searchAttributes';
import type { identityMergeWorkflow } from '../../workflows/identityMerge';
import { actsAsSelf, AuthError, type Principal } from '../auth';
import type { ApiDeps } from '../deps';
import { QuotaReachedError } from '../rateLimit';
import { refuseMergedSelf } from './mergedIds';
import { orNotFound, queryWithin, updateOrRefusal, type UpdateTarget } from './refusals';
import { taskQueueFor } from '../../temporal/taskQueues';
import { waitWithinBudget } from '../deadlines';

export interface MergeProposal {
  survivor_id: string;
  merged_id: string;
  consent: boolean;
  reason?: string | undefined;
}

const ROUTE_SCOPES = ['identity:merge'] as const;

/**
 * A customer's own token proposes or answers only for its own record, and never as a merged
 * record's token (that reaches only its tombstone: api/services/mergedIds.ts).
 */
async function selfOnlyFor(deps: ApiDeps, principal: Principal, ids: string[]): Promise<boolean> {
  if (!actsAsSelf(principal, [...ROUTE_SCOPES])) return false;
  if (!principal.subject || !ids.includes(principal.subject))
    throw new AuthError(403, "Forbidden: a customer's token reaches only merges of that customer's own record.");
  await refuseMergedSelf(deps.graph, principal, [...ROUTE_SCOPES], principal.subject);
  return true;
}

async function claimProposal(deps: ApiDeps, principal: Principal, bySelf: boolean, ids: string[]): Promise<void> {
  const perDay = deps.merges.proposalsPerDay;
  const claims: [string, 'proposed' | 'asked'][] = [
    ...(bySelf && principal.subject ? [[principal.subject, 'proposed'] as [string, 'proposed']] : []),
    ...ids.filter((id) => id !== principal.subject).map((id) => [id, 'asked'] as [string, 'asked']),
  ];
  for (const [id, as] of claims) {
    const wait = await claimMergeProposal(deps.graph, id, perDay, Date.now(), as);
    if (wait !== null)
      throw new QuotaReachedError(
        as === 'proposed'
          ? `a customer may propose ${perDay} merges in 24 hours; retry after ${wait} s`
          : `customer ${id} may be asked to consent to ${perDay} merges in 24 hours; retry after ${wait} s`,
        wait,
      );
  }
}

/**
 * Starts `identity-merge-<pair>` after checking both customers (404, or 409 naming why one
 * cannot be merged: nothing is started, nothing written). A merge of the same pair that runs
 * already — either way round — is answered as it is (`created: false`).
 */
export async function proposeMerge(
  deps: ApiDeps,
  proposal: MergeProposal,
  principal: Principal,
): Promise<{ created: boolean; status: IdentityMergeStatus }> {
  const { survivor_id, merged_id } = proposal;
  // Well-formed (the schema cannot say the two differ), but nothing to merge: a conflict, like a tombstone.
  if (survivor_id === merged_id)
    throw new InvalidStateError(`merged_id: customer ${merged_id} cannot be merged into itself`);
  // A customer proves both identities by both consents: a customer's request always asks both.
  // Only ops decide alone: a service with `identity:merge` proposes, and both customers consent.
  const bySelf = await selfOnlyFor(deps, principal, [survivor_id, merged_id]);
  const consent = bySelf || !principal.scopes.has('ops') || proposal.consent;
  const workflowId = identityMergeWorkflowId(survivor_id, merged_id);
  const handle = deps.temporal.client.workflow.getHandle<typeof identityMergeWorkflow>(workflowId);
  const running = await runningStatus(deps, workflowId);
  if (running) return { created: false, status: running };
  // Each proposal asks for consent: a customer proposes a few a day, and is asked a few a day
  // (whoever asks, ops aside). Claimed before anything about the records is answered, so the
  // answers (merged already, suspended, erased) cost a proposal too.
  if (!principal.scopes.has('ops')) await claimProposal(deps, principal, bySelf, [survivor_id, merged_id]);
  const [survivor, merged] = await mergeParties(deps.graph, [survivor_id, merged_id]);
  if (!survivor) throw new NotFoundError('Customer', survivor_id);
  if (!merged) throw new NotFoundError('Customer', merged_id);
  const nameSurvivor = principal.scopes.has('ops') || principal.scopes.has('identity:merge');
  const refusal =
    mergeRefusal('survivor', survivor, { nameSurvivor }) ?? mergeRefusal('merged', merged, { nameSurvivor });
  if (refusal) throw new InvalidStateError(refusal);
  try {
    await deps.temporal.client.workflow.start<typeof identityMergeWorkflow>(IDENTITY_MERGE_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: taskQueueFor(deps.temporal.taskQueues, IDENTITY_MERGE_WORKFLOW_TYPE),
      args: [
        {
          survivor_id,
          merged_id,
          consent,
          consent_days: deps.merges.consentDays,
          unmerge_days: deps.merges.unmergeDays,
          requested_by: principal.subject,
          reason: proposal.reason ?? null,
        },
      ],
      // A merge that ended (declined, expired, undone) may be proposed again; a running one is the answer.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [{ key: personaCustomerId, value: survivor_id }],
      staticSummary:
        `Merge customer ${merged_id} into ${survivor_id} — ` +
        (consent
          ? `only with the consent of both, asked through a verified email or phone (${deps.merges.consentDays} days)`
          : 'decided by ops') +
        `; undo possible for ${deps.merges.unmergeDays} days`,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    // Lost a race with the same pair: that merge is the answer.
    return { created: false, status: await queryWithin(handle, identityMergeStatusQuery, statusWaitMs(deps)) };
  }
  // Asked right after the start, the workflow may not have run its first task yet (or no worker
  // polls its queue): then the answer is what that task sets up.
  const status = await queryWithin(handle, identityMergeStatusQuery, statusWaitMs(deps)).catch(() =>
    initialMergeStatus(workflowId, { survivor_id, merged_id, consent }),
  );
  return { created: true, status };
}

/** How long a proposal waits for a merge's status query: half its deadline, the rest is its own work. */
const statusWaitMs = (deps: ApiDeps) => waitWithinBudget(deps, deps.limits.requestDeadlineMs / 2);

async function runningStatus(deps: ApiDeps, workflowId: string): Promise<IdentityMergeStatus | null> {
  const handle = deps.temporal.client.workflow.getHandle(workflowId);
  try {
    const d = await handle.describe();
    return d.status.name === 'RUNNING' ? await queryWithin(handle, identityMergeStatusQuery, statusWaitMs(deps)) : null;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

function pairOf(mergeId: string): [string, string] {
  const pair = identityMergePair(mergeId);
  if (!pair) throw new NotFoundError('IdentityMerge', mergeId);
  return pair;
}

/**
 * The merge's status (its last run), for ops, services with the scope, or a customer of either
 * record: 503 when no worker answers its query within the request's deadline.
 */
export async function mergeStatus(deps: ApiDeps, mergeId: string, principal: Principal): Promise<IdentityMergeStatus> {
  await selfOnlyFor(deps, principal, pairOf(mergeId));
  const handle = deps.temporal.client.workflow.getHandle(mergeId);
  return orNotFound('IdentityMerge', mergeId, () =>
    queryWithin(handle, identityMergeStatusQuery, waitWithinBudget(deps, deps.limits.requestDeadlineMs)),
  );
}

/** A merge as a refusal of its Update names it. */
function mergeTarget(mergeId: string): UpdateTarget {
  return { entity: 'IdentityMerge', id: mergeId, what: `identity merge ${mergeId}` };
}

/**
 * A customer's answer, with the code sent to that customer. The validator refuses (409) a
 * customer not in the merge, a wrong code, a second answer, and a merge no longer waiting.
 */
export async function answerMerge(
  deps: ApiDeps,
  mergeId: string,
  answer: 'confirm' | 'decline',
  decision: MergeDecision,
  principal: Principal,
): Promise<IdentityMergeStatus> {
  pairOf(mergeId);
  await selfOnlyFor(deps, principal, [decision.customer_id]);
  const handle = deps.temporal.client.workflow.getHandle(mergeId);
  return updateOrRefusal(
    handle,
    () => handle.executeUpdate(answer === 'confirm' ? confirmMergeUpdate : declineMergeUpdate, { args: [decision] }),
    mergeTarget(mergeId),
  );
}

/** Ops take a merge back: 200 with what was restored and what was not, or 409 naming why not. */
export async function undoMerge(
  deps: ApiDeps,
  mergeId: string,
  reason: string,
  principal: Principal,
): Promise<IdentityMergeStatus> {
  pairOf(mergeId);
  const handle = deps.temporal.client.workflow.getHandle(mergeId);
  return updateOrRefusal(
    handle,
    () => handle.executeUpdate(undoMergeUpdate, { args: [{ reason, requested_by: principal.subject }] }),
    mergeTarget(mergeId),
    { ended: `identity merge ${mergeId} has closed: its undo window is over (or it never merged)` },
  );
}
