/**
 * Identity merge — workflow id from the unordered pair (`identity-merge-<id>-<id>`, the smaller
 * id first), started by `POST /api/v1/identity-merges`: by ops, who may merge at once, or with
 * the consent of both customers.
 *
 * With consent: a fresh code per customer goes to a verified email or phone of *each* record
 * (once per key, like every notification), and the merge waits up to `consent_days` for both
 * answers (Updates `confirmMerge` / `declineMerge`, each carrying the customer's code; the
 * validator refuses a stranger, a wrong code and a second answer). One decline ends it; silence
 * ends it as `expired`. Consent from one record alone never merges: whoever holds one record
 * could otherwise merge it into a stranger's and read their wallet.
 *
 * The merge is one graph transaction (graph/identityMerge.ts); a customer suspended, erased or merged
 * meanwhile ends it as `refused` with nothing changed. The merged customer's running recoveries
 * and fraud outcomes are told (signal `customerMerged`) and go on against the survivor. Then the
 * workflow stays open for `unmerge_days`, so ops can take the merge back (Update `undoMerge`),
 * and closes.
 */
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { IdentityMergeActivities } from '../activities/identityMerge';
import { describeFailure, domainFailureOf } from '../temporal/failures';
import {
  confirmMergeUpdate,
  customerMergedSignal,
  declineMergeUpdate,
  identityMergeStatusQuery,
  initialMergeStatus,
  undoMergeUpdate,
  type IdentityMergeInput,
  type IdentityMergeState,
  type IdentityMergeStatus,
  type MergeDecision,
} from '../temporal/identityMerge';
import { activitiesWithSummaries, graphWrite, graphWriteUntilDone, type ActivitySummaries } from './activityOptions';
import { countIdentityMerge } from './metrics';
import { notifications } from './notifications';
import { autoUpgrade } from './versioning';

const DAY_MS = 86_400_000;
const FINAL: IdentityMergeState[] = ['undone', 'declined', 'expired', 'refused', 'unreachable', 'cancelled'];

const SUMMARIES: ActivitySummaries<IdentityMergeActivities> = {
  createConsentCodes: (req) => `Make a consent code for each of customers ${req.customer_ids.join(' and ')}`,
  mergeCustomers: (req) =>
    `Merge customer ${req.merged_id} into ${req.survivor_id} in one transaction (${req.decided_by}): ` +
    'payment methods, devices, addresses and identifiers move; LTV summed; a tombstone stays',
  unmergeCustomers: (req) =>
    `Undo merge of ${req.merged_id} into ${req.survivor_id}: move back what the manifest moved, report what changed`,
  listMergedCustomerProcesses: (req) =>
    `Find customer ${req.customer_id}'s running recoveries and fraud outcomes` +
    (req.also?.length ? ` (and those of ${req.also.length} records merged into it before)` : '') +
    ', to tell them of the merge',
};
/** The codes (no I/O), and the processes to tell (20 attempts: a miss is noted, never fatal). */
const merges = activitiesWithSummaries<IdentityMergeActivities>(graphWrite, SUMMARIES);
/**
 * The merge and its undo: retried while Neo4j is down for as long as it takes, so an outage
 * delays a consented merge rather than failing it; only the graph's refusal ends one.
 */
const mergesUntilDone = activitiesWithSummaries<IdentityMergeActivities>(graphWriteUntilDone, SUMMARIES);

const copy = (s: IdentityMergeStatus): IdentityMergeStatus => JSON.parse(JSON.stringify(s)) as IdentityMergeStatus;

/** What the workflow's handlers and steps share. */
interface MergeRun {
  input: IdentityMergeInput;
  workflowId: string;
  mergeId: string;
  status: IdentityMergeStatus;
  /** The codes sent to each customer; never in the status (a query would show them). */
  codes: Record<string, string>;
  /** The undo window has closed (or the workflow was cancelled): no undo is taken any more. */
  closing: boolean;
}

autoUpgrade(identityMergeWorkflow);
export async function identityMergeWorkflow(input: IdentityMergeInput): Promise<IdentityMergeStatus> {
  const { workflowId, runId } = workflowInfo();
  const mergeId = `${workflowId}:${runId}`;
  const status: IdentityMergeStatus = initialMergeStatus(workflowId, input);
  const run: MergeRun = { input, workflowId, mergeId, status, codes: {}, closing: false };
  const everyoneConfirmed = (): boolean => status.consent.every((p) => p.decision === 'confirmed');
  const someoneDeclined = (): boolean => status.consent.some((p) => p.decision === 'declined');

  setHandler(identityMergeStatusQuery, () => status);
  setConsentHandlers(run, everyoneConfirmed, someoneDeclined);
  const undoWindow = openUndoWindow(run);

  try {
    if (input.consent) {
      const asked = await askConsent(run);
      if ('ended' in asked) return asked.ended;
      const { deadline } = asked;
      Object.assign(status, { state: 'awaiting_consent', consent_deadline: deadline });
      const answered = await condition(
        () => everyoneConfirmed() || someoneDeclined(),
        Math.max(Date.parse(deadline) - Date.now(), 1),
        { summary: `Wait up to ${input.consent_days} days for both customers' answers (confirmMerge / declineMerge)` },
      );
      if (!answered)
        return end(run, 'expired', 'expired', `no answer from both customers within ${input.consent_days} days`);
      if (someoneDeclined()) {
        const who = status.consent.find((p) => p.decision === 'declined')?.customer_id;
        return end(run, 'declined', 'declined', `customer ${who ?? ''} declined`);
      }
      status.state = 'merging';
    }

    const refused = await merge(run);
    if (refused) return refused;
    await tellMergedProcesses(run);
    await undoWindow();
    run.closing = true;
    if (status.state === 'undone') status.undo_deadline = null;
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Cancelled (an erasure of the survivor stops its workflows): a merge that happened stays.
    if (status.state !== 'merged') end(run, 'cancelled', null, 'the merge was cancelled before it happened');
    else status.problem = 'cancelled: the merge stays, and can no longer be undone here';
    run.closing = true;
  }
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  return status;
}

/** The Updates `confirmMerge` and `declineMerge`: each customer's answer, with the code sent to them. */
function setConsentHandlers(run: MergeRun, everyoneConfirmed: () => boolean, someoneDeclined: () => boolean): void {
  const { input, status } = run;
  const partyOf = (id: unknown) => status.consent.find((p) => p.customer_id === id);
  const validateDecision = (d: Partial<MergeDecision> | undefined): void => {
    if (typeof d?.customer_id !== 'string' || typeof d.code !== 'string')
      throw new Error('customer_id and code are required');
    if (!input.consent) throw new Error('this merge was decided by ops: nobody is asked to consent');
    const party = partyOf(d.customer_id);
    if (!party) throw new Error(`customer ${d.customer_id} is not part of this merge`);
    if (party.decision) throw new Error(`customer ${d.customer_id} has answered already (${party.decision})`);
    if (status.state !== 'awaiting_consent') throw new Error(`consent is not awaited: the merge is ${status.state}`);
    if (d.code.trim().toUpperCase() !== run.codes[d.customer_id])
      throw new Error(`the code is not the one sent to customer ${d.customer_id}`);
  };
  const decide = (decision: 'confirmed' | 'declined') => async (d: MergeDecision) => {
    // Recorded before the first await: a second answer in the same workflow task is refused by the validator.
    const party = partyOf(d.customer_id);
    if (party) Object.assign(party, { decision, decided_at: new Date().toISOString() });
    // The caller hears the outcome: the merge when theirs was the last consent, else that the other is awaited.
    await condition(
      () =>
        FINAL.includes(status.state) ||
        status.state === 'merged' ||
        (status.state === 'awaiting_consent' && !everyoneConfirmed() && !someoneDeclined()),
    );
    return copy(status);
  };
  setHandler(confirmMergeUpdate, decide('confirmed'), { validator: validateDecision });
  setHandler(declineMergeUpdate, decide('declined'), { validator: validateDecision });
}

/**
 * The Update `undoMerge` (registered now, with the other handlers), and the window it is taken in:
 * the returned function keeps the merge open for an undo until the deadline.
 */
function openUndoWindow(run: MergeRun): () => Promise<void> {
  const { input, mergeId, status } = run;
  let undo: { reason: string; requested_by: string | null } | null = null;
  let undoAnswer: { refusal: string | null } | null = null;
  setHandler(
    undoMergeUpdate,
    async (req) => {
      undo = req;
      undoAnswer = null;
      await condition(() => undoAnswer !== null || run.closing);
      const answer = undoAnswer as { refusal: string | null } | null;
      const refusal = answer ? answer.refusal : 'the undo window has closed';
      if (refusal) throw ApplicationFailure.create({ type: 'UndoRefused', message: refusal, nonRetryable: true });
      return copy(status);
    },
    {
      validator: (req: Partial<{ reason: string }> | undefined) => {
        if (typeof req?.reason !== 'string' || req.reason.trim() === '') throw new Error('reason is required');
        if (run.closing) throw new Error(`the undo window has closed (${status.undo_deadline ?? 'it was never open'})`);
        // Checked against the request recorded before the handler's first await: two undos in one
        // workflow task cannot both pass.
        if (undo !== null || status.state === 'undoing') throw new Error('an undo is running already');
        if (status.state !== 'merged')
          throw new Error(`only a merge that happened can be undone (it is ${status.state})`);
      },
    },
  );

  // Open for an undo until the deadline.
  return async () => {
    for (;;) {
      const left = Date.parse(status.undo_deadline ?? '') - Date.now();
      const asked = await condition(() => undo !== null, Math.max(left, 1), {
        summary: `Wait up to ${input.unmerge_days} days for ops to undo the merge (Update undoMerge)`,
      });
      if (!asked) break;
      const req = undo as unknown as { reason: string; requested_by: string | null };
      status.state = 'undoing';
      try {
        status.unmerge = await CancellationScope.nonCancellable(() =>
          mergesUntilDone.unmergeCustomers({
            merge_id: mergeId,
            survivor_id: input.survivor_id,
            merged_id: input.merged_id,
            requested_by: req.requested_by,
            reason: req.reason,
          }),
        );
      } catch (err) {
        if (isCancellation(err) || !domainFailureOf(err)) throw err;
        status.state = 'merged';
        status.problem = `the undo was refused: ${describeFailure(err)}`;
        undo = null;
        undoAnswer = { refusal: status.problem };
        continue;
      }
      end(run, 'undone', 'undone');
      undoAnswer = { refusal: null };
      break;
    }
  };
}

/** Ends the merge in `state` (counted as `outcome`), saying why. */
function end(
  run: MergeRun,
  state: IdentityMergeState,
  outcome: Parameters<typeof countIdentityMerge>[0] | null,
  problem: string | null = null,
): IdentityMergeStatus {
  const { input, status } = run;
  Object.assign(status, { state, problem, consent_deadline: null });
  if (outcome) countIdentityMerge(outcome);
  log.info(`identity merge ended: ${state}`, { survivorId: input.survivor_id, mergedId: input.merged_id, problem });
  return status;
}

/**
 * A fresh code per customer, sent to a verified email or phone of each: the deadline of their
 * answers, or the merge's end when one of them cannot be asked.
 */
async function askConsent(run: MergeRun): Promise<{ deadline: string } | { ended: IdentityMergeStatus }> {
  const { input, mergeId, status, workflowId } = run;
  const codes = await merges.createConsentCodes({ customer_ids: [input.survivor_id, input.merged_id] });
  run.codes = codes;
  const deadline = new Date(Date.now() + input.consent_days * DAY_MS).toISOString();
  const unreachable = (problem: string) => ({ ended: end(run, 'unreachable', 'unreachable', problem) });
  for (const party of status.consent) {
    const other = party.customer_id === input.survivor_id ? input.merged_id : input.survivor_id;
    try {
      const sent = await notifications.notifyCustomer({
        customer_id: party.customer_id,
        kind: 'merge_consent',
        key: `${mergeId}:consent:${party.customer_id}`,
        verified_only: true,
        data: { merge_id: workflowId, code: codes[party.customer_id], other_customer_id: other, expires: deadline },
        subject: { merge_id: workflowId },
      });
      party.channel = sent.channel;
    } catch (err) {
      if (isCancellation(err)) throw err;
      return unreachable(`customer ${party.customer_id} could not be asked: ${describeFailure(err)}`);
    }
    if (!party.channel)
      return unreachable(`customer ${party.customer_id} has no verified email or phone to ask for consent through`);
  }
  return { deadline };
}

/** The merge, in one graph transaction: null once done, else the merge's end (refused). */
async function merge(run: MergeRun): Promise<IdentityMergeStatus | null> {
  const { input, mergeId, status } = run;
  try {
    // Not cancellable: once sent, the merge's answer is waited for and recorded.
    const moved = await CancellationScope.nonCancellable(() =>
      mergesUntilDone.mergeCustomers({
        merge_id: mergeId,
        survivor_id: input.survivor_id,
        merged_id: input.merged_id,
        decided_by: status.decided_by,
        requested_by: input.requested_by,
        reason: input.reason,
      }),
    );
    status.moved = {
      payment_methods: moved.payment_methods,
      devices: moved.devices,
      addresses: moved.addresses,
      identifiers: moved.identifiers,
      ltv_minor_moved: moved.ltv_minor_moved,
      redirected: moved.redirected,
    };
  } catch (err) {
    if (isCancellation(err) || !domainFailureOf(err)) throw err;
    return end(run, 'refused', 'refused', `the merge was refused: ${describeFailure(err)}`);
  }
  const mergedAt = Date.now();
  Object.assign(status, {
    state: 'merged',
    consent_deadline: null,
    merged_at: new Date(mergedAt).toISOString(),
    undo_deadline: new Date(mergedAt + input.unmerge_days * DAY_MS).toISOString(),
  });
  countIdentityMerge(input.consent ? 'consented' : 'ops');
  log.info('customers merged', { survivorId: input.survivor_id, mergedId: input.merged_id });
  return null;
}

/**
 * The merged customer's processes go on against the survivor; a miss is logged, never fatal.
 * Not cancellable either: a merge that happened tells them, whatever stops this workflow now.
 * Those of records merged into the merged one earlier (now redirected) are on it too.
 */
function tellMergedProcesses(run: MergeRun): Promise<void> {
  const { input, status, workflowId } = run;
  return CancellationScope.nonCancellable(async () => {
    try {
      const running = await merges.listMergedCustomerProcesses({
        customer_id: input.merged_id,
        also: status.moved?.redirected ?? [],
      });
      for (const id of running) {
        try {
          await getExternalWorkflowHandle(id).signal(customerMergedSignal, {
            merge_id: workflowId,
            merged_id: input.merged_id,
            survivor_id: input.survivor_id,
          });
        } catch (err) {
          log.info(`workflow ${id} not told of the merge: it had finished`, { error: describeFailure(err) });
        }
      }
    } catch (err) {
      // Their activities follow the merge in the graph anyway; the signal only saves them a hop.
      status.problem = `the merged customer's running processes could not be listed: ${describeFailure(err)}`;
      log.warn('merged customer’s processes not told of the merge', { problem: status.problem });
    }
  });
}
