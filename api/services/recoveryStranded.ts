/**
 * A report beside a stranded recovery — one the charge ledger has `recovering` and started that no
 * workflow runs (terminated, or written back by a restore) — is refused until ops settle it
 * (`npm run ops:settle-recoveries`, docs/runbook.md "A recovery terminated by hand"): its charge may
 * have gone through, and a new run would charge again. Part of the recovery's service
 * (api/services/recovery.ts).
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { readRecoveryLedger } from '../../graph/chargeLedger';
import { InvalidStateError } from '../../graph/errors';
import { recoveringLookalikes, ReplacementRefusedError } from '../../graph/recoveryReplacement';
import { recoveryWorkflowId, type PaymentFailure } from '../../temporal/recovery';
import type { ApiDeps } from '../deps';

/**
 * A report of a payment whose recovery the ledger has `recovering` and started: answered as a
 * duplicate while its workflow runs, or once the ledger has it ended (its run ended since the ledger
 * was read); refused (409, saying so) when none does and the ledger still has it recovering — it
 * was terminated, or lost in a restore — since nothing would act on it: ops settle it first
 * (`npm run ops:settle-recoveries`, docs/runbook.md).
 */
export async function refuseIfStranded(deps: ApiDeps, paymentId: string, workflowId: string): Promise<void> {
  if (!(await workflowRuns(deps, workflowId)) && (await stillRecovering(deps, paymentId)))
    throw new InvalidStateError(
      `payment ${paymentId}'s recovery is recorded as recovering in the charge ledger, but no workflow runs it ` +
        '(it was terminated, or lost in a restore): ops settle it with the gateway first ' +
        '(npm run ops:settle-recoveries; runbook, "A recovery terminated by hand")',
    );
}

/**
 * A new payment of a customer (or of a record merged into it) with a stranded recovery for the same
 * amount and currency — the ledger has it recovering and started, and no workflow runs it — is
 * refused (409, field `replaces`), whatever other payment it names in `replaces`: it may be that
 * payment reported again after a restore or a terminate, whose charge may have gone through. The
 * report names it in `replaces` once ops settled it (the ledger then checks it charged nothing), or,
 * another debt, is sent again once ops settled it.
 */
export async function refuseBesideStranded(deps: ApiDeps, f: PaymentFailure): Promise<void> {
  for (const other of await recoveringLookalikes(deps.graph, f)) {
    if (await workflowRuns(deps, recoveryWorkflowId(other))) continue;
    if (!(await stillRecovering(deps, other))) continue;
    throw new ReplacementRefusedError(
      `customer ${f.customer_id}'s payment ${other} of the same amount is recorded as recovering in the charge ` +
        'ledger, and no workflow runs it (it was terminated, or lost in a restore): its charge may have gone ' +
        'through. Ops settle it first (npm run ops:settle-recoveries); then, if this payment is the same debt, ' +
        `report it with replaces: "${other}", otherwise report it again as it is`,
    );
  }
}

/**
 * Whether the leader's ledger still has the recovery `recovering` (or no longer has it at all: a
 * restore), read after Temporal said no workflow runs it: a run records its end before it closes,
 * so one that ended between the first read and Temporal's answer (a resent report racing its own
 * recovery) is not stranded.
 */
async function stillRecovering(deps: ApiDeps, paymentId: string): Promise<boolean> {
  const recorded = await readRecoveryLedger(deps.graph, paymentId, { leader: true });
  return recorded === null || recorded.recovery.state === 'recovering';
}

/** Whether Temporal runs the workflow now (not closed, not unknown to it). */
async function workflowRuns(deps: ApiDeps, workflowId: string): Promise<boolean> {
  try {
    return (await deps.temporal.client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    return false;
  }
}
