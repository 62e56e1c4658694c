/**
 * The gateway side of the recovery's charge (activities/recovery.ts, module comment): each gateway
 * call within the attempt's time, heartbeating meanwhile; the answer recorded in the charge ledger;
 * a key's unknown outcome learnt (the identical request sent again under it, or asked by reference).
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { GatewayRejectedError, type ChargeResult, type GatewayCharge } from '../clients/paymentGateway';
import { recordCardAnswerTx } from '../graph/cardHistory';
import {
  markResent,
  readAttempt,
  recordAttemptAnswerTx,
  settleAttempt,
  type LedgerAttempt,
} from '../graph/chargeAttempts';
import { writeTx } from '../graph/graph';
import { decideDecline } from '../payments/declines';
import { CHARGE_OUTCOME_UNKNOWN, CHARGE_REFUSED } from '../temporal/recovery';
import type { AnsweredCharge, ChargeOutcome, RecoveryContext } from './recoveryModel';

/**
 * How much sooner than the processor's key memory a key is treated as forgotten: this attempt's own
 * time (the activity's start-to-close), the request's way to the gateway, and clocks that differ.
 */
const KEY_TTL_MARGIN_MS = 5 * 60_000;

/** The outcome is not known: retried (the same key), and the workflow never moves on from it. */
function unknownOutcome(key: string, why: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: CHARGE_OUTCOME_UNKNOWN,
    message: `the outcome of the charge under key ${key} is not known yet: ${why}`,
    details: [{ idempotency_key: key }],
  });
}

/** The gateway refused the one request ever sent under the key: nothing was charged. */
function refused(key: string, detail: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: CHARGE_REFUSED,
    message: `the gateway refused the charge under key ${key}, the only request sent with it: ${detail}`,
    nonRetryable: true,
    details: [{ idempotency_key: key }],
  });
}

/** The running activity's context, or null when called directly. */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/** A gateway charge as listed, as the answer it was. */
function answerOfListed(c: GatewayCharge): ChargeResult {
  return c.status === 'succeeded'
    ? { outcome: 'succeeded', charge_id: c.id }
    : { outcome: 'declined', decline_code: c.decline_code ?? 'generic_decline', charge_id: c.id };
}

/** The answer the ledger holds for a settled attempt (succeeded or declined). */
function answerOfLedger(a: LedgerAttempt): AnsweredCharge {
  const card = { network: a.card?.network ?? null, fingerprint: a.card?.fingerprint ?? null };
  if (a.state === 'succeeded') return { outcome: 'succeeded', charge_id: a.charge_id as string, ...card };
  const code = a.decline_code ?? 'generic_decline';
  return {
    outcome: 'declined',
    decline_code: code,
    charge_id: a.charge_id,
    ...card,
    network_response_code: a.network_response_code,
    category: a.category,
    advice_code: a.advice_code,
    decision: decideDecline(code),
  };
}

/**
 * One gateway call, inside the activity's time: aborted when the activity is cancelled (its
 * attempt timed out on the server, the worker shuts down), and never longer than what is left
 * of the attempt's start-to-close, so that an attempt always ends before the next can begin.
 */
function callOptions(rc: RecoveryContext, deadline: number) {
  const ctx = activityContext();
  const left = deadline - Date.now();
  if (left <= 0) throw new Error('out of time for another gateway call in this attempt of the activity');
  const timeoutMs = Math.min(rc.chargePolicy.clientTimeoutMs, left);
  return ctx ? { signal: ctx.cancellationSignal, timeoutMs } : { timeoutMs };
}

/** Records the gateway's answer (and what the networks count of it) and answers it as recorded. */
async function answered(
  rc: RecoveryContext,
  attempt: LedgerAttempt,
  result: ChargeResult,
  now: Date,
): Promise<AnsweredCharge> {
  const rules = rc.networkRules;
  const recorded = await writeTx(rc.graph, async (tx) => {
    const a = await recordAttemptAnswerTx(
      tx,
      attempt.key,
      {
        state: result.outcome,
        charge_id: result.charge_id,
        ...(result.outcome === 'declined'
          ? {
              decline_code: result.decline_code,
              network_response_code: result.network_response_code ?? null,
              category: result.category ?? null,
              advice_code: result.advice_code ?? null,
            }
          : {}),
      },
      now,
    );
    // What the network said is counted against the card (the same answer again changes nothing).
    if (attempt.card && rules) await recordCardAnswerTx(tx, attempt.card, attempt.key, result, rules, now);
    return a;
  });
  const a = recorded ?? attempt;
  // The first answer recorded stands (a replay is the same answer).
  if (a.state === 'succeeded' || a.state === 'declined') return answerOfLedger(a);
  return result.outcome === 'declined' ? { ...result, decision: decideDecline(result.decline_code) } : { ...result };
}

/**
 * Asks the gateway what became of a key, by the reference its request carried: the charge made
 * under it, recorded; none, and the settle window has passed since the key's last request —
 * nothing was charged, recorded `absent`; none yet — still unknown (thrown, retried).
 */
async function settle(
  rc: RecoveryContext,
  attempt: LedgerAttempt,
  now: Date,
  deadline: number,
): Promise<ChargeOutcome> {
  const listed = await rc.gateway.chargesByReference(attempt.reference, callOptions(rc, deadline));
  const mine = listed.filter((c) => c.idempotency_key === attempt.key);
  // Only a charge that ended is an answer: one still processing (any other status) is unknown yet.
  const found = mine.find((c) => c.status === 'succeeded') ?? mine.find((c) => c.status === 'declined');
  if (!found && mine.length > 0)
    throw unknownOutcome(attempt.key, `the gateway lists it as ${String(mine[0]?.status)}, not ended yet`);
  if (found) {
    // The charge under the key must be the request as sent: anything else is not ours to record.
    const same =
      found.amount === attempt.amount &&
      found.currency === attempt.currency &&
      found.customer_id === attempt.customer_id &&
      (found.reference === null || found.reference === attempt.reference);
    if (!same)
      throw unknownOutcome(
        attempt.key,
        `the gateway lists ${found.id} under it for ${found.amount} ${found.currency} and customer ` +
          `${found.customer_id}, not the request as first sent: ops look (runbook)`,
      );
    return answered(rc, attempt, answerOfListed(found), now);
  }
  const last = Date.parse(attempt.last_sent_at ?? attempt.created_at);
  if (now.getTime() - last < rc.chargePolicy.settleMs)
    throw unknownOutcome(
      attempt.key,
      `the gateway has no charge under it yet; "none" is believed ${Math.round(rc.chargePolicy.settleMs / 1000)} s ` +
        `after its last request (${attempt.last_sent_at ?? attempt.created_at})`,
    );
  // Only if no request went since the one the window counts from: a run sending the key again
  // meanwhile (its stamp commits after this read) leaves it unknown, asked again later.
  const settled = await settleAttempt(rc.graph, attempt.key, 'absent', 'gateway_has_no_charge', now, attempt.sends);
  if (!settled) {
    const current = await readAttempt(rc.graph, attempt.key);
    if (!current || current.state === 'sent')
      throw unknownOutcome(attempt.key, 'it was sent again while the gateway was asked about it');
    return resolve(rc, current, now, false, deadline);
  }
  log.info('a charge of unknown outcome was never made: the gateway has no charge under its key', {
    paymentId: attempt.payment_id,
    paymentMethodId: attempt.payment_method_id,
    idempotencyKey: attempt.key,
  });
  return { outcome: 'not_charged', reason: 'gateway_has_no_charge' };
}

/** Sends the attempt's request as the ledger holds it (stamped before it goes) and records the answer. */
export async function send(
  rc: RecoveryContext,
  attempt: LedgerAttempt,
  token: string,
  now: Date,
  deadline: number,
): Promise<ChargeOutcome> {
  let result: ChargeResult;
  try {
    result = await rc.gateway.charge(
      {
        idempotency_key: attempt.key,
        token,
        amount: attempt.amount,
        currency: attempt.currency,
        customer_id: attempt.customer_id,
        initiator: attempt.initiator,
        reference: attempt.reference,
      },
      callOptions(rc, deadline),
    );
  } catch (err) {
    if (!(err instanceof GatewayRejectedError)) {
      throw unknownOutcome(attempt.key, err instanceof Error ? err.message : String(err));
    }
    // A refusal of the only request ever sent: nothing was charged. Of a request sent again, it
    // says nothing of the first (a processor refuses a key it holds for another request): ask.
    if (attempt.sends > 1) return settle(rc, attempt, now, deadline);
    const settled = await settleAttempt(rc.graph, attempt.key, 'refused', err.code, now, attempt.sends);
    if (settled) throw refused(attempt.key, err.message);
    // Sent again meanwhile (another attempt of the activity), or answered: what the ledger says now.
    const current = await readAttempt(rc.graph, attempt.key);
    if (!current || current.state === 'sent')
      throw unknownOutcome(attempt.key, `refused (${err.code}) while it was being sent again`);
    return resolve(rc, current, now, false, deadline);
  }
  return answered(rc, attempt, result, now);
}

/**
 * A key charged before: its outcome as the ledger has it, or learnt from the gateway — the
 * identical request sent again while the processor surely remembers the key (and there is a
 * token to send: an erasure strips it), else asked by reference.
 */
export async function resolve(
  rc: RecoveryContext,
  attempt: LedgerAttempt,
  now: Date,
  mayResend: boolean,
  deadline: number,
): Promise<ChargeOutcome> {
  switch (attempt.state) {
    case 'succeeded':
    case 'declined':
      return answerOfLedger(attempt);
    case 'absent':
      return { outcome: 'not_charged', reason: 'gateway_has_no_charge' };
    case 'refused':
      if (!mayResend) return { outcome: 'not_charged', reason: 'refused' };
      throw refused(attempt.key, attempt.decline_code ?? 'refused before');
    case 'sent':
      break;
  }
  const firstSent = Date.parse(attempt.first_sent_at ?? attempt.created_at);
  // With a margin for this attempt's own time, the request's way there and the clocks' skew.
  const remembered = Math.max(now.getTime(), Date.now()) - firstSent < rc.chargePolicy.keyTtlMs - KEY_TTL_MARGIN_MS;
  if (mayResend && remembered && attempt.sealed) {
    const again = await markResent(rc.graph, attempt.key, now);
    if (again?.sealed)
      return send(rc, again, rc.graph.tokens.decrypt(again.sealed, again.payment_method_id), now, deadline);
    // Settled (or erased) meanwhile: what the ledger has now.
    const current = await readAttempt(rc.graph, attempt.key);
    if (current && current.state !== 'sent') return resolve(rc, current, now, false, deadline);
  }
  if (attempt.state === 'sent' && !remembered)
    log.info('a charge of unknown outcome is older than the gateway keeps keys: asked by reference', {
      paymentId: attempt.payment_id,
      idempotencyKey: attempt.key,
    });
  return settle(rc, attempt, now, deadline);
}

/**
 * Heartbeats every 2 s while `work` runs (a dead worker's charge is noticed within the heartbeat
 * timeout), and hands it the deadline of its gateway calls: 5 s (at most a tenth of it) before the
 * attempt's start-to-close runs out, counted from now, so an attempt always ends before the next
 * begins.
 */
export async function beating<T>(rc: RecoveryContext, work: (deadline: number) => Promise<T>): Promise<T> {
  const ctx = activityContext();
  if (!ctx) return work(Date.now() + 4 * rc.chargePolicy.clientTimeoutMs);
  const budget = ctx.info.startToCloseTimeoutMs;
  const deadline = Date.now() + budget - Math.min(5_000, budget / 10);
  const timer = setInterval(() => ctx.heartbeat(), 2_000);
  try {
    return await work(deadline);
  } finally {
    clearInterval(timer);
  }
}
