/**
 * The payment's owner (Synapse) says a payment is no longer owed: the `paymentNoLongerOwed`
 * Workflow Update, one per recovery, and its answer — from the recovery, or from the charge ledger
 * once the recovery has ended. Part of the recovery's service (api/services/recovery.ts).
 */
import { WorkflowUpdateFailedError, WorkflowUpdateStage } from '@temporalio/client';
import { InvalidStateError, NotFoundError } from '../../graph/errors';
import { endRecovery, NotYoursToStopError, readRecoveryLedger, requestRecoveryStop } from '../../graph/chargeLedger';
import {
  paymentNoLongerOwedUpdate,
  RECOVERY_ENDED,
  type OwnerStopAnswer,
  type PaymentNoLongerOwed,
  type RecoveryState,
  recoveryWorkflowId,
  type RecoveryStatus,
} from '../../temporal/recovery';
import { refusalError, updateRefusalOf, type UpdateRefusal } from '../../temporal/updates';
import { unknownUpdate } from './refusals';
import { AuthError, type Principal } from '../auth';
import type { ApiDeps } from '../deps';
import { recoveryStatus } from './recovery';

/** What the payment's owner learns of its stop: the recovery's answer, or `stopping` while it gets there. */
export interface OwnerStopReply extends Omit<OwnerStopAnswer, 'outcome' | 'state'> {
  /**
   * The recovery's answer (stopped, recovered, failed, charge_unknown), or `stopping`: the stop was taken and is
   * applied at the recovery's next safe point (a charge under way, or whose outcome the gateway has
   * yet to tell, is settled first): read `status_url`, or send the same word again to wait for it.
   */
  outcome: OwnerStopAnswer['outcome'] | 'stopping';
  /** The recovery's state once it answered (null while `stopping`). */
  state: RecoveryState | null;
  status_url: string;
}

/**
 * Who says a payment is no longer owed: the reporter's key as the ledger keeps it (a token's subject,
 * `kafka:<topic>`, null for a token without one), and whether it is ops (who may stop any).
 */
export interface OwnerStopCaller {
  reporter: string | null;
  ops: boolean;
}

/** The key a reporting principal is kept under in the ledger (`reported_by`). */
export const reporterKey = (principal: Principal): string | null => principal.subject;

/** The caller of the Kafka consumer's payment-failures topic: the same key for its failures and its stops. */
export const topicReporter = (topic: string): OwnerStopCaller => ({ reporter: `kafka:${topic}`, ops: false });

/** One stop per recovery: the same word resent (a timeout, a replayed message) joins the first. */
export const OWNER_STOP_UPDATE_ID = 'payment-no-longer-owed';

/**
 * The payment's owner (Synapse) says a payment was settled elsewhere or is no longer owed: the stop
 * is written to the charge ledger first (from then on nothing for the payment is sent to the
 * gateway), then the `paymentNoLongerOwed` Workflow Update, which the recovery takes whatever it is
 * doing: a charge in flight is settled with the gateway, never sent again. Answers what the recovery did:
 * stopped (nothing charged), recovered (a charge went through first: `charge` says which, so the
 * owner can refund one of the two), failed; or `stopping` when the recovery has not reached that
 * point within `waitMs` (0: only make sure the stop was taken, as the Kafka consumer does). A
 * recovery that has ended, in Temporal or past its retention, is answered from the charge ledger:
 * a charge Persona made is always reported. NotFoundError (404) for a payment never reported.
 */
export async function paymentNoLongerOwed(
  deps: ApiDeps,
  paymentId: string,
  word: PaymentNoLongerOwed,
  waitMs: number,
  caller: OwnerStopCaller,
): Promise<OwnerStopReply> {
  const { client } = deps.temporal;
  const statusUrl = `/api/v1/payment-recoveries/${paymentId}`;
  const handle = client.workflow.getHandle(recoveryWorkflowId(paymentId));
  const deadline = Date.now() + waitMs;
  /** Rejects with `waited` when the wait ran out (the timer may fire a moment before `deadline` by the clock). */
  const waited = new Error('waited');
  const bounded = async <T>(ms: number, fn: () => Promise<T>): Promise<T> => {
    const call = new AbortController();
    const timer = setTimeout(() => call.abort(), Math.max(ms, 1));
    try {
      return await client.connection.withAbortSignal(call.signal, fn);
    } catch (err) {
      throw call.signal.aborted ? waited : err;
    } finally {
      clearTimeout(timer);
    }
  };
  // The ledger first: from this commit on nothing for the payment goes to the gateway, whatever the
  // workflow is doing when the Update reaches it (a charge being retried is settled, never re-sent).
  // Only who reported the payment (or ops) says it is no longer owed, checked in the same write.
  try {
    await requestRecoveryStop(deps.graph, paymentId, {
      by: 'owner',
      reason: ownerStopReason(word),
      ...(caller.ops ? {} : { onlyFrom: { reporter: caller.reporter } }),
    });
  } catch (err) {
    if (err instanceof NotYoursToStopError) throw new AuthError(403, `Forbidden: ${err.message}.`);
    throw err;
  }
  const refused = async (err: unknown): Promise<OwnerStopReply> => {
    const refusal = await updateRefusalOf(err, handle);
    if (!refusal) throw err;
    if (refusal.kind === 'unknown_update') throw unknownUpdate(`payment recovery ${paymentId}`);
    // Ended (closed, past retention, or refused by the validator because it ended): what was recorded.
    return { ...(await ownerAnswerFromRecords(deps, paymentId, refusal, word)), status_url: statusUrl };
  };
  let update;
  try {
    update = await handle.startUpdate(paymentNoLongerOwedUpdate, {
      args: [word],
      updateId: OWNER_STOP_UPDATE_ID,
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
  } catch (err) {
    return refused(err);
  }
  try {
    // A refusal is known at once (no call); an answer is waited for only as long as asked.
    const answer = await bounded(deadline - Date.now(), () => update.result());
    return { ...answer, status_url: statusUrl };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return refused(err);
    if (err !== waited) throw err;
    return {
      payment_id: paymentId,
      outcome: 'stopping',
      charge: null,
      unknown_charge: null,
      state: null,
      stop_reason: null,
      status_url: statusUrl,
    };
  }
}

/** The words a stop recorded by the api (no workflow to take it) carries in the ledger: the workflow's own. */
function ownerStopReason(word: PaymentNoLongerOwed): string {
  const note = word.note?.trim() ? `: ${word.note.trim()}` : '';
  return `the payment's owner says it is no longer owed (${word.reason})${note}`;
}

/**
 * What became of a recovery that can no longer take the owner's word: the charge ledger's record
 * (the workflow's status for what the ledger does not say). A charge that succeeded is the answer
 * whatever else was recorded. A refusal by a recovery still running that has not ended is the
 * 409 of its reason.
 */
async function ownerAnswerFromRecords(
  deps: ApiDeps,
  paymentId: string,
  refusal: Exclude<UpdateRefusal, { kind: 'unknown_update' }>,
  word: PaymentNoLongerOwed,
): Promise<Omit<OwnerStopReply, 'status_url'>> {
  const status = refusal.kind === 'not_found' ? null : await recoveryStatus(deps, paymentId).catch(() => null);
  if (refusal.kind === 'refused' && status && !RECOVERY_ENDED.includes(status.state))
    throw refusalError(refusal, `payment recovery ${paymentId}`);
  const recorded = await readRecoveryLedger(deps.graph, paymentId);
  if (!recorded) {
    if (status === null) throw new NotFoundError('PaymentRecovery', paymentId);
    throw new InvalidStateError(
      `payment recovery ${paymentId} has ended (${status.state}) but the charge ledger has no record of it: ` +
        'ask ops (runbook, "The charge ledger")',
    );
  }
  const { recovery, attempts } = recorded;
  // Reserved, but its workflow never started (the api died in between) and nothing was charged:
  // the stop is recorded in the ledger, so a later report of the payment starts nothing (a start
  // racing this one finds the recovery ended there and charges nothing). One that started and
  // that no workflow runs any more (terminated and deleted, lost in a restore, written back) may
  // have a charge the ledger never heard of: ops settle it with the gateway, which keeps the stop.
  if (
    refusal.kind === 'not_found' &&
    recovery.state === 'recovering' &&
    recovery.started_at === null &&
    attempts.every((a) => a.state !== 'sent' && a.state !== 'succeeded')
  ) {
    const ended = await endRecovery(deps.graph, {
      payment_id: paymentId,
      customer_id: recovery.customer_id,
      state: 'stopped',
      reason: ownerStopReason(word),
    });
    return ownerAnswerOf({ recovery: ended.recovery, attempts }, null);
  }
  return ownerAnswerOf(recorded, status);
}

type Recorded = NonNullable<Awaited<ReturnType<typeof readRecoveryLedger>>>;

/**
 * The owner's answer from the ledger (pure): recovered with the charge when any attempt succeeded
 * or the recovery is recorded recovered — never hidden behind a later stop — else, when an
 * attempt's outcome is still unknown (the gateway never said), charge_unknown with its key; else
 * failed or stopped as recorded (the workflow's final state when the ledger has not recorded the
 * end yet).
 */
export function ownerAnswerOf(
  { recovery, attempts }: Recorded,
  status: RecoveryStatus | null,
): Omit<OwnerStopReply, 'status_url'> {
  const succeeded = attempts.find((a) => a.state === 'succeeded');
  const chargedWith = succeeded?.payment_method_id ?? recovery.recovered_with ?? status?.recovered_with ?? null;
  const base = { payment_id: recovery.payment_id };
  if (succeeded || recovery.state === 'recovered' || chargedWith !== null) {
    const amount = succeeded?.amount ?? recovery.amount;
    const currency = succeeded?.currency ?? recovery.currency;
    if (chargedWith === null || amount === null || currency === null)
      throw new InvalidStateError(
        `payment recovery ${recovery.payment_id} charged, but the charge ledger does not say with what: ask ops`,
      );
    return {
      ...base,
      outcome: 'recovered',
      charge: {
        payment_method_id: chargedWith,
        charge_id: succeeded?.charge_id ?? recovery.charge_id,
        amount,
        currency,
      },
      unknown_charge: null,
      state: 'recovered',
      stop_reason: null,
    };
  }
  const unknown = attempts.find((a) => a.state === 'sent');
  const state = recovery.state === 'recovering' ? (status?.state ?? 'waiting') : recovery.state;
  const stopReason = recovery.state === 'recovering' ? (status?.stop_reason ?? null) : recovery.reason;
  if (state === 'failed' || state === 'stopped') {
    const ended = { ...base, charge: null, state, stop_reason: stopReason };
    // It may have gone through: the owner is told so (the gateway reconciliation settles it).
    if (unknown) return { ...ended, outcome: 'charge_unknown', unknown_charge: unknown.key };
    return { ...ended, outcome: state, unknown_charge: null };
  }
  throw new InvalidStateError(
    `payment recovery ${recovery.payment_id} is recorded as still recovering but no workflow runs it: the stop ` +
      'is recorded in the charge ledger, and nothing more is sent for it; ops settle it with the gateway ' +
      '(`npm run ops:settle-recoveries`, runbook "The charge ledger"), then it answers stopped or recovered',
  );
}
