/**
 * The recovery's charge (`chargePaymentMethod`, activities/recovery.ts): the cards it involves
 * named, the charge reserved (governed by the networks' rules or the per-method cap; the account
 * updater asked first after Mastercard's MAC 01), then sent or its earlier outcome learnt
 * (activities/recoveryGateway.ts); a failure before any request says so.
 */
import { ApplicationFailure, log } from '@temporalio/activity';
import { asActivityFailure, isFinal } from './failures';
import { GatewayRejectedError } from '../clients/paymentGateway';
import { methodCards, recordUpdaterLookup, type CardIdentity, type MethodName } from '../graph/cardHistory';
import { openAttemptsOf, readAttempt, type LedgerAttempt } from '../graph/chargeAttempts';
import { retryOnSurvivor } from '../graph/mergedRecords';
import { MAX_CHARGES_PER_METHOD_IN_30_DAYS } from '../payments/declines';
import { describeVerdict, type RetryVerdict } from '../payments/networkRules';
import { reserveGovernedCharge } from '../graph/chargeReservation';
import { CHARGE_NOT_SENT, CHARGE_OUTCOME_UNKNOWN, CHARGE_REFUSED } from '../temporal/recovery';
import { renewFromUpdater } from './accountUpdater';
import { clockOf, type ChargeAttempt, type ChargeOutcome, type RecoveryContext } from './recoveryModel';
import { beating, resolve, send } from './recoveryGateway';

/** What a `limited` outcome says of the rule behind it (in the status and the history). */
function limitedBy(rule: RetryVerdict | null): ChargeOutcome {
  if (!rule || rule.verdict === 'allowed') return { outcome: 'limited' };
  return {
    outcome: 'limited',
    rule: describeVerdict(rule),
    not_before: rule.verdict === 'not_before' ? rule.at : null,
    never: rule.verdict === 'never',
  };
}

/**
 * The cards of the methods a charge involves, as the processor names them, from one read: a
 * card named before is kept on its method; one not yet named is asked of the processor (its
 * token read in the same read), and its name is in `fresh`, to be kept by the reservation. A
 * method gone from the wallet, or one the processor will not name, has no card (the per-method
 * cap governs its charges then); an unreachable processor throws (retried: the charge could not
 * go either).
 */
async function cardsOf(rc: RecoveryContext, customerId: string, paymentMethodIds: string[]) {
  const named = new Map<string, CardIdentity>();
  const fresh: MethodName[] = [];
  const known = await methodCards(rc.graph, customerId, [...new Set(paymentMethodIds)]);
  await Promise.all(
    [...known].map(async ([paymentMethodId, method]) => {
      if (method.card) return void named.set(paymentMethodId, method.card);
      if (!rc.cards) return;
      let card: CardIdentity | null;
      try {
        card = await rc.cards.describe(method.token());
      } catch (err) {
        if (!(err instanceof GatewayRejectedError)) throw err;
        log.warn('the processor would not name a card; its charges fall back to the per-method cap', {
          paymentMethodId,
          error: err.message,
        });
        return;
      }
      if (!card) return;
      named.set(paymentMethodId, card);
      fresh.push({ payment_method_id: paymentMethodId, card, sealed: method.sealed });
    }),
  );
  return { named, fresh };
}

/** The reservation, governed by the card when the worker has the rules and the card is named. */
function reserve(
  rc: RecoveryContext,
  a: ChargeAttempt,
  card: CardIdentity | null,
  now: Date,
  before: { names?: MethodName[]; reported?: Parameters<typeof reserveGovernedCharge>[1]['reported'] } = {},
) {
  return reserveGovernedCharge(
    rc.graph,
    {
      payment_id: a.payment_id,
      customer_id: a.customer_id,
      payment_method_id: a.payment_method_id,
      key: a.idempotency_key,
      amount: a.amount,
      currency: a.currency,
      // A recovery's retry is merchant-initiated: the networks' retry rules are written for it.
      initiator: 'mit',
      max: MAX_CHARGES_PER_METHOD_IN_30_DAYS,
      card: card && rc.networkRules ? { identity: card, table: rc.networkRules } : undefined,
      ...before,
    },
    now,
  );
}

/** A success of the payment's other attempt `o`, as the answer to a charge asked under another key. */
function answeredBy(o: LedgerAttempt, outcome: ChargeOutcome): ChargeOutcome {
  if (outcome.outcome !== 'succeeded') return outcome;
  return { ...outcome, other_attempt: { payment_method_id: o.payment_method_id, idempotency_key: o.key } };
}

/**
 * Settle mode: what became of the key and of every other attempt of the payment still open, asked
 * of the ledger and the gateway, nothing sent: a charge that went through (the key's, else
 * another's), else the key's outcome. An outcome the gateway cannot tell yet fails (retried).
 */
async function settleOpen(
  rc: RecoveryContext,
  paymentId: string,
  key: string | null,
  now: Date,
  deadline: number,
): Promise<ChargeOutcome> {
  const own = key === null ? null : await readAttempt(rc.graph, key);
  if (own?.state === 'succeeded') return resolve(rc, own, now, false, deadline);
  for (const other of await openAttemptsOf(rc.graph, paymentId)) {
    if (other.key === key) continue;
    const outcome = await resolve(rc, other, now, false, deadline);
    if (outcome.outcome === 'succeeded') return answeredBy(other, outcome);
  }
  return own ? resolve(rc, own, now, false, deadline) : { outcome: 'not_charged', reason: 'never_sent' };
}

/**
 * `settleOpenCharges` (its doc: createRecoveryActivities): every attempt of the payment still
 * open, settled with the gateway, nothing sent; the first that went through, or `never_sent`.
 */
export async function settleOpenCharges(
  rc: RecoveryContext,
  req: { payment_id: string; at?: string },
): Promise<ChargeOutcome> {
  return beating(rc, (deadline) => settleOpen(rc, req.payment_id, null, clockOf(req.at), deadline));
}

/** How many other open attempts one charge resolves before it gives the turn back (retried). */
const OPEN_ATTEMPTS_RESOLVED = 4;

/** One charge, for the customer the attempt names (chargePaymentMethod follows a merge). */
async function charge(rc: RecoveryContext, a: ChargeAttempt, deadline: number): Promise<ChargeOutcome> {
  const now = clockOf(a.at);
  if (a.mode === 'settle') return settleOpen(rc, a.payment_id, a.idempotency_key, now, deadline);
  for (let resolved = 0; ; resolved++) {
    const outcome = await chargeOnce(rc, a, now, deadline);
    if (!('open' in outcome)) return outcome;
    // One charge per payment: the payment's other attempt still open is resolved first (sent again
    // as it was first sent, when that is safe, else asked about); its success is the answer.
    const settled = answeredBy(outcome.open, await resolve(rc, outcome.open, now, outcome.resendable, deadline));
    if (settled.outcome === 'succeeded') return settled;
    if (resolved + 1 >= OPEN_ATTEMPTS_RESOLVED)
      throw ApplicationFailure.create({
        type: CHARGE_OUTCOME_UNKNOWN,
        message:
          `payment ${a.payment_id} had ${OPEN_ATTEMPTS_RESOLVED} other attempts open one after another: ` +
          'asked again',
        // The last open attempt's key: the one the gateway has (this charge's own was never sent).
        details: [{ idempotency_key: outcome.open.key }],
      });
  }
}

/**
 * The charge under the attempt's key: reserved and sent, its earlier outcome learnt, or refused;
 * or, when another attempt of the payment is still open, that attempt (to resolve first).
 */
async function chargeOnce(
  rc: RecoveryContext,
  a: ChargeAttempt,
  now: Date,
  deadline: number,
): Promise<ChargeOutcome | { open: LedgerAttempt; resendable: boolean }> {
  // One read names the cards (the one charged, and the one the recovery started from), and
  // one transaction keeps new names, counts the reported decline against its card (once per
  // payment), decides and records the attempt in the ledger: the charge's graph round trips
  // are these two and the answer's.
  const reportedId = a.reported?.payment_method_id;
  const { named, fresh } = rc.networkRules
    ? await cardsOf(rc, a.customer_id, reportedId ? [a.payment_method_id, reportedId] : [a.payment_method_id])
    : { named: new Map<string, CardIdentity>(), fresh: [] };
  let card = named.get(a.payment_method_id) ?? null;
  const reportedCard = reportedId ? named.get(reportedId) : undefined;
  // Stamped with the clock as the charge is reserved (naming cards may have taken a while).
  let reservation = await reserve(rc, a, card, clockOf(a.at), {
    names: fresh,
    reported:
      a.reported && reportedCard && rc.networkRules
        ? {
            card: reportedCard,
            payment_id: a.payment_id,
            decline: { decline_code: a.reported.decline_code, advice_code: a.reported.advice_code },
            table: rc.networkRules,
          }
        : undefined,
  });
  // After Mastercard's MAC 01 the account updater is asked first, then the rules again.
  let renewed = false;
  if (reservation.verdict === 'limited' && reservation.rule?.verdict === 'updater_first' && card && rc.updater) {
    // Its answer is applied: a new expiry (and token) for the method, charged below.
    const renewal = await renewFromUpdater(rc.graph, rc.updater, a.payment_method_id, now);
    renewed = renewal.outcome === 'updated';
    await recordUpdaterLookup(rc.graph, card, now);
    // A reissued card is named again: the networks count its charges as its own.
    let names: MethodName[] = [];
    if (renewal.outcome === 'updated' && renewal.token_replaced) {
      const again = await cardsOf(rc, a.customer_id, [a.payment_method_id]);
      card = again.named.get(a.payment_method_id) ?? null;
      names = again.fresh;
    }
    reservation = await reserve(rc, a, card, clockOf(a.at), { names });
  }
  switch (reservation.verdict) {
    case 'known':
      // The same key again: the same charge, whatever changed since (sent again only while a new
      // charge of the method would be allowed; otherwise only asked about).
      return resolve(rc, reservation.attempt, now, reservation.resendable, deadline);
    case 'limited':
      log.info('a charge the networks’ rules do not allow now was not made', {
        paymentId: a.payment_id,
        paymentMethodId: a.payment_method_id,
        rule: reservation.rule ? describeVerdict(reservation.rule) : 'per-method cap',
      });
      return limitedBy(reservation.rule);
    case 'allowed': {
      const result = await send(rc, reservation.attempt, reservation.token(), now, deadline);
      return renewed && (result.outcome === 'succeeded' || result.outcome === 'declined')
        ? { ...result, renewed_by_updater: true }
        : result;
    }
    case 'open':
      return { open: reservation.attempt, resendable: reservation.resendable };
    case 'recovery_ended':
      return { outcome: 'not_charged', reason: 'recovery_ended', ended: reservation.ended };
    case 'stop_requested':
      return { outcome: 'not_charged', reason: 'stop_requested', stop_request: reservation.stop_request };
    default:
      return { outcome: 'not_charged', reason: reservation.verdict };
  }
}

/**
 * A failure before any request went under the key (the ledger has no attempt for it) says so
 * (`ChargeNotSent`, retried like the failure it wraps): when it fails for good, ops may pass
 * the method over, since nothing can have been charged. Anything else is left as it is.
 */
async function notSentIfSo(rc: RecoveryContext, a: ChargeAttempt, err: unknown): Promise<unknown> {
  const typed = err instanceof ApplicationFailure ? err.type : null;
  if (typed === CHARGE_REFUSED || typed === CHARGE_OUTCOME_UNKNOWN || a.mode === 'settle') return err;
  try {
    if (await readAttempt(rc.graph, a.idempotency_key)) return err;
  } catch {
    // The ledger cannot be read either: nothing is claimed.
    return err;
  }
  // Converted here, as the interceptor would have: the workflow reads a domain failure's details.
  const failure = asActivityFailure(err);
  return ApplicationFailure.create({
    type: CHARGE_NOT_SENT,
    message: `nothing was sent under key ${a.idempotency_key}: ${err instanceof Error ? err.message : String(err)}`,
    nonRetryable: isFinal(err),
    details: [{ idempotency_key: a.idempotency_key }],
    cause: failure instanceof Error ? failure : undefined,
  });
}

/** `chargePaymentMethod` (its doc: createRecoveryActivities, activities/recovery.ts). */
export async function chargePaymentMethod(rc: RecoveryContext, attempt: ChargeAttempt): Promise<ChargeOutcome> {
  return beating(rc, async (deadline) => {
    try {
      // The customer may have been merged since the workflow last heard: the methods (same ids)
      // are the survivor's now, and so is a new charge. Nothing was charged under the tombstone.
      const charged = await retryOnSurvivor(attempt.customer_id, (customer_id) =>
        charge(rc, { ...attempt, customer_id }, deadline),
      );
      return charged.result;
    } catch (err) {
      // Converted here, never by the interceptors: a "not found" must not rerun a charge on the
      // leader, whose gateway deadline would be counted from the rerun (workers/logging.ts).
      throw asActivityFailure(await notSentIfSo(rc, attempt, err));
    }
  });
}
