/**
 * Activities of payment recovery: the gateway charge and the graph writes around it.
 *
 * The charge (`chargePaymentMethod`) keeps the charge ledger (graph/chargeLedger.ts): a new key is
 * recorded — the request exactly as it is about to go — in the transaction that decides the charge
 * may happen, before the gateway is called; the gateway's answer is recorded on it. A key seen
 * before is the same charge: it is never governed again and never sent with anything but its first
 * request. An outcome that is not known (no answer, a 5xx, a 409 "in flight", a refusal of a
 * request sent again) stays unknown — the activity fails, retryably, with `ChargeOutcomeUnknown` —
 * until the gateway says: the identical request is sent again under the key while the processor
 * remembers keys (PERSONA_GATEWAY_KEY_TTL_HOURS); past that, or after a refusal, the gateway's
 * charges are listed by reference (the payment id) and the key looked for, and "no such charge" is
 * believed only once the settle window (PERSONA_CHARGE_SETTLE_MINUTES) has passed since the last
 * request. Decisions about a decline (its class, the status the method takes) are made here, from
 * the decline table, and returned: the workflow only branches on what was recorded.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { asActivityFailure, isFinal } from './failures';
import {
  GatewayRejectedError,
  type AccountUpdater,
  type CardDescriber,
  type ChargeResult,
  type GatewayCharge,
  type PaymentGateway,
} from '../clients/paymentGateway';
import {
  cardOfMethod,
  forecastCharge,
  methodCards,
  recordCardAnswerTx,
  recordUpdaterLookup,
  type CardIdentity,
  type MethodName,
} from '../graph/cardHistory';
import {
  markResent,
  readAttempt,
  recordAttemptAnswerTx,
  settleAttempt,
  startRecovery,
  type LedgerAttempt,
  type RecoveryLedgerState,
} from '../graph/chargeLedger';
import type { UpdateOutcome } from '../graph/cardUpdates';
import { retryOnSurvivor, survivorOf } from '../graph/identityMerge';
import { writeTx, type Graph } from '../graph/graph';
import {
  recordInteractions,
  recordInteractionsTx,
  type Interaction,
  type InteractionResult,
  type ProfileRules,
} from '../graph/interactions';
import type { PaymentMethodStatus } from '../graph/model';
import { decideDecline, MAX_CHARGES_PER_METHOD_IN_30_DAYS, type DeclineDecision } from '../payments/declines';
import { describeVerdict, type RetryVerdict, type RuleTable } from '../payments/networkRules';
import { updatePaymentMethodStatus } from '../graph/paymentMethods';
import {
  listRecoveryCandidates,
  recordRecovery,
  recordRecoveryFailed,
  recordRecoveryStopped,
  reserveGovernedCharge,
  type RecoveryCandidate,
  type RecoveryRecord,
  type RefusedVerdict,
} from '../graph/recovery';
import type { PaymentFailure } from '../temporal/recovery';
import { CHARGE_NOT_SENT, CHARGE_OUTCOME_UNKNOWN, CHARGE_REFUSED } from '../temporal/recovery';
import { renewFromUpdater } from './accountUpdater';

export interface ChargeAttempt {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  amount: number;
  currency: string;
  /** From workflow data: `<payment id>:<payment method id>[:r<round>][:renewed]`. */
  idempotency_key: string;
  /** The decline the recovery started from (counted against its card before the first charge). */
  reported?: { payment_method_id: string; decline_code: string; advice_code?: string };
  /** The workflow's time when it scheduled the charge: see `clockOf`. */
  at?: string;
  /**
   * `charge` (the default): charge, or — for a key charged before — learn its outcome, sending the
   * identical request again when that is safe. `settle`: only learn what became of a key charged
   * before (its request is never sent again; a key never charged is `never_sent`): how a recovery
   * that stops finds out whether a charge of unknown outcome went through.
   */
  mode?: 'charge' | 'settle';
}

/**
 * When a recovery's candidates may next be charged under the networks' rules: the earliest time
 * one of them may (`at` itself when one may now); null when none ever may, or there is none.
 */
export interface ChargeForecast {
  earliest: string | null;
  /** The rule that sets `earliest`, in words, when it is later than the time asked about. */
  rule: string | null;
  candidates: number;
}

/**
 * The time the rules and the ledger's windows are applied at: the latest of the workflow's time
 * when it scheduled the activity, the server's time when it scheduled this attempt of it, and this
 * worker's clock. In production they differ by queueing and retries (the latest is the truth); in
 * a time-skipping test the server's clock runs ahead of the machine's, and its days must count.
 */
export function clockOf(at: string | undefined): Date {
  const scheduled = at === undefined ? Number.NaN : Date.parse(at);
  let attempt = Number.NaN;
  try {
    attempt = Context.current().info.currentAttemptScheduledTimestampMs;
  } catch {
    // Called outside an activity (a direct test call): the other two clocks.
  }
  return new Date(
    Math.max(Date.now(), Number.isFinite(scheduled) ? scheduled : 0, Number.isFinite(attempt) ? attempt : 0),
  );
}

/** A gateway answer, with what Persona decides of a decline (made here, recorded in the history). */
export type AnsweredCharge =
  | (Extract<ChargeResult, { outcome: 'succeeded' }> & { renewed_by_updater?: boolean })
  | (Extract<ChargeResult, { outcome: 'declined' }> & { decision: DeclineDecision; renewed_by_updater?: boolean });

/** What a charge attempt came to: the gateway's answer, or why the gateway was not asked. */
export type ChargeOutcome =
  | AnsweredCharge
  /** A card-network rule (or, for a card the processor never named, the per-method cap) says not now. */
  | { outcome: 'limited'; rule?: string; not_before?: string | null; never?: boolean }
  /**
   * Not charged, and never will be under this key: the graph did not allow it (`RefusedVerdict`),
   * the gateway has no charge under the key past the settle window (`gateway_has_no_charge`), it
   * refused the one request (`refused`, settle mode only), or a key to settle was never charged.
   */
  | {
      outcome: 'not_charged';
      reason: Exclude<RefusedVerdict, 'limited'> | 'gateway_has_no_charge' | 'refused' | 'never_sent';
    };

/** What the workflow's first step answers: the recovery as the ledger has it, and what to do first. */
export interface RecoveryStart {
  /**
   * False when the payment's recovery ended before (recovered, failed, stopped), or was reserved
   * for another method or amount (`reason`): nothing is charged.
   */
  proceed: boolean;
  state: RecoveryLedgerState;
  reason?: string;
  /** What the reported decline decides (its class, the method's new status, the updater). */
  decline: DeclineDecision;
  /** The customer's other methods to try first (not the one that failed, nor `exclude`). */
  candidates: RecoveryCandidate[];
}

/** How the charge treats the gateway (config/env.ts). */
export interface ChargePolicy {
  /** How long the processor is known to remember an idempotency key (a key older is never re-sent). */
  keyTtlMs: number;
  /** How long after a key's last request "the gateway has no charge under it" is believed. */
  settleMs: number;
  /** The longest one gateway call may take. */
  clientTimeoutMs: number;
}

export const DEFAULT_CHARGE_POLICY: ChargePolicy = {
  keyTtlMs: 24 * 3_600_000,
  settleMs: 10 * 60_000,
  clientTimeoutMs: 10_000,
};

/**
 * How much sooner than the processor's key memory a key is treated as forgotten: this attempt's own
 * time (the activity's start-to-close), the request's way to the gateway, and clocks that differ.
 */
const KEY_TTL_MARGIN_MS = 5 * 60_000;

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

export function createRecoveryActivities({
  graph,
  gateway,
  trustThreshold,
  profileRules,
  cards,
  updater,
  networkRules,
  chargePolicy = DEFAULT_CHARGE_POLICY,
}: {
  graph: Graph;
  gateway: PaymentGateway;
  /**
   * The processor, naming a method's card (network and fingerprint), and the network-rule table:
   * with both, every charge is governed per card by the networks' rules (payments/networkRules.ts);
   * without, by the per-method cap alone.
   */
  cards?: CardDescriber | undefined;
  /** The networks' account updater, asked before a retry that Mastercard's MAC 01 asks it for. */
  updater?: AccountUpdater | undefined;
  networkRules?: RuleTable | undefined;
  trustThreshold: number;
  /** The segment and VIP rules a recovered payment is recorded under (as the agents' payments are). */
  profileRules: ProfileRules;
  /** The processor's key memory, the settle window and the client's timeout. */
  chargePolicy?: ChargePolicy | undefined;
}) {
  /**
   * The cards of the methods a charge involves, as the processor names them, from one read: a
   * card named before is kept on its method; one not yet named is asked of the processor (its
   * token read in the same read), and its name is in `fresh`, to be kept by the reservation. A
   * method gone from the wallet, or one the processor will not name, has no card (the per-method
   * cap governs its charges then); an unreachable processor throws (retried: the charge could not
   * go either).
   */
  const cardsOf = async (customerId: string, paymentMethodIds: string[]) => {
    const named = new Map<string, CardIdentity>();
    const fresh: MethodName[] = [];
    const known = await methodCards(graph, customerId, [...new Set(paymentMethodIds)]);
    await Promise.all(
      [...known].map(async ([paymentMethodId, method]) => {
        if (method.card) return void named.set(paymentMethodId, method.card);
        if (!cards) return;
        let card: CardIdentity | null;
        try {
          card = await cards.describe(method.token());
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
  };

  /** The reservation, governed by the card when the worker has the rules and the card is named. */
  const reserve = (
    a: ChargeAttempt,
    card: CardIdentity | null,
    now: Date,
    before: { names?: MethodName[]; reported?: Parameters<typeof reserveGovernedCharge>[1]['reported'] } = {},
  ) =>
    reserveGovernedCharge(
      graph,
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
        card: card && networkRules ? { identity: card, table: networkRules } : undefined,
        ...before,
      },
      now,
    );

  /**
   * One gateway call, inside the activity's time: aborted when the activity is cancelled (its
   * attempt timed out on the server, the worker shuts down), and never longer than what is left
   * of the attempt's start-to-close, so that an attempt always ends before the next can begin.
   */
  const callOptions = (deadline: number) => {
    const ctx = activityContext();
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('out of time for another gateway call in this attempt of the activity');
    const timeoutMs = Math.min(chargePolicy.clientTimeoutMs, left);
    return ctx ? { signal: ctx.cancellationSignal, timeoutMs } : { timeoutMs };
  };

  /** Records the gateway's answer (and what the networks count of it) and answers it as recorded. */
  const answered = async (attempt: LedgerAttempt, result: ChargeResult, now: Date): Promise<AnsweredCharge> => {
    const rules = networkRules;
    const recorded = await writeTx(graph, async (tx) => {
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
  };

  /**
   * Asks the gateway what became of a key, by the reference its request carried: the charge made
   * under it, recorded; none, and the settle window has passed since the key's last request —
   * nothing was charged, recorded `absent`; none yet — still unknown (thrown, retried).
   */
  const settle = async (attempt: LedgerAttempt, now: Date, deadline: number): Promise<ChargeOutcome> => {
    const listed = await gateway.chargesByReference(attempt.reference, callOptions(deadline));
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
      return answered(attempt, answerOfListed(found), now);
    }
    const last = Date.parse(attempt.last_sent_at ?? attempt.created_at);
    if (now.getTime() - last < chargePolicy.settleMs)
      throw unknownOutcome(
        attempt.key,
        `the gateway has no charge under it yet; "none" is believed ${Math.round(chargePolicy.settleMs / 1000)} s ` +
          `after its last request (${attempt.last_sent_at ?? attempt.created_at})`,
      );
    await settleAttempt(graph, attempt.key, 'absent', 'gateway_has_no_charge', now);
    log.info('a charge of unknown outcome was never made: the gateway has no charge under its key', {
      paymentId: attempt.payment_id,
      paymentMethodId: attempt.payment_method_id,
      idempotencyKey: attempt.key,
    });
    return { outcome: 'not_charged', reason: 'gateway_has_no_charge' };
  };

  /** Sends the attempt's request as the ledger holds it (stamped before it goes) and records the answer. */
  const send = async (attempt: LedgerAttempt, token: string, now: Date, deadline: number): Promise<ChargeOutcome> => {
    let result: ChargeResult;
    try {
      result = await gateway.charge(
        {
          idempotency_key: attempt.key,
          token,
          amount: attempt.amount,
          currency: attempt.currency,
          customer_id: attempt.customer_id,
          initiator: attempt.initiator,
          reference: attempt.reference,
        },
        callOptions(deadline),
      );
    } catch (err) {
      if (!(err instanceof GatewayRejectedError)) {
        throw unknownOutcome(attempt.key, err instanceof Error ? err.message : String(err));
      }
      // A refusal of the only request ever sent: nothing was charged. Of a request sent again, it
      // says nothing of the first (a processor refuses a key it holds for another request): ask.
      if (attempt.sends > 1) return settle(attempt, now, deadline);
      const settled = await settleAttempt(graph, attempt.key, 'refused', err.code, now, attempt.sends);
      if (settled) throw refused(attempt.key, err.message);
      // Sent again meanwhile (another attempt of the activity), or answered: what the ledger says now.
      const current = await readAttempt(graph, attempt.key);
      if (!current || current.state === 'sent')
        throw unknownOutcome(attempt.key, `refused (${err.code}) while it was being sent again`);
      return resolve(current, now, false, deadline);
    }
    return answered(attempt, result, now);
  };

  /**
   * A key charged before: its outcome as the ledger has it, or learnt from the gateway — the
   * identical request sent again while the processor surely remembers the key (and there is a
   * token to send: an erasure strips it), else asked by reference.
   */
  const resolve = async (
    attempt: LedgerAttempt,
    now: Date,
    mayResend: boolean,
    deadline: number,
  ): Promise<ChargeOutcome> => {
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
    const remembered = Math.max(now.getTime(), Date.now()) - firstSent < chargePolicy.keyTtlMs - KEY_TTL_MARGIN_MS;
    if (mayResend && remembered && attempt.sealed) {
      const again = await markResent(graph, attempt.key, now);
      if (again?.sealed) return send(again, graph.tokens.decrypt(again.sealed, again.payment_method_id), now, deadline);
      // Settled (or erased) meanwhile: what the ledger has now.
      const current = await readAttempt(graph, attempt.key);
      if (current && current.state !== 'sent') return resolve(current, now, false, deadline);
    }
    if (attempt.state === 'sent' && !remembered)
      log.info('a charge of unknown outcome is older than the gateway keeps keys: asked by reference', {
        paymentId: attempt.payment_id,
        idempotencyKey: attempt.key,
      });
    return settle(attempt, now, deadline);
  };

  /** One charge, for the customer the attempt names (chargePaymentMethod follows a merge). */
  const charge = async (a: ChargeAttempt, deadline: number): Promise<ChargeOutcome> => {
    const now = clockOf(a.at);
    if (a.mode === 'settle') {
      const known = await readAttempt(graph, a.idempotency_key);
      return known ? resolve(known, now, false, deadline) : { outcome: 'not_charged', reason: 'never_sent' };
    }
    // One read names the cards (the one charged, and the one the recovery started from), and
    // one transaction keeps new names, counts the reported decline against its card (once per
    // payment), decides and records the attempt in the ledger: the charge's graph round trips
    // are these two and the answer's.
    const reportedId = a.reported?.payment_method_id;
    const { named, fresh } = networkRules
      ? await cardsOf(a.customer_id, reportedId ? [a.payment_method_id, reportedId] : [a.payment_method_id])
      : { named: new Map<string, CardIdentity>(), fresh: [] };
    let card = named.get(a.payment_method_id) ?? null;
    const reportedCard = reportedId ? named.get(reportedId) : undefined;
    // Stamped with the clock as the charge is reserved (naming cards may have taken a while).
    let reservation = await reserve(a, card, clockOf(a.at), {
      names: fresh,
      reported:
        a.reported && reportedCard && networkRules
          ? {
              card: reportedCard,
              payment_id: a.payment_id,
              decline: { decline_code: a.reported.decline_code, advice_code: a.reported.advice_code },
              table: networkRules,
            }
          : undefined,
    });
    // After Mastercard's MAC 01 the account updater is asked first, then the rules again.
    let renewed = false;
    if (reservation.verdict === 'limited' && reservation.rule?.verdict === 'updater_first' && card && updater) {
      // Its answer is applied: a new expiry (and token) for the method, charged below.
      const renewal = await renewFromUpdater(graph, updater, a.payment_method_id, now);
      renewed = renewal.outcome === 'updated';
      await recordUpdaterLookup(graph, card, now);
      // A reissued card is named again: the networks count its charges as its own.
      let names: MethodName[] = [];
      if (renewal.outcome === 'updated' && renewal.token_replaced) {
        const again = await cardsOf(a.customer_id, [a.payment_method_id]);
        card = again.named.get(a.payment_method_id) ?? null;
        names = again.fresh;
      }
      reservation = await reserve(a, card, clockOf(a.at), { names });
    }
    switch (reservation.verdict) {
      case 'known':
        // The same key again: the same charge, whatever changed since (sent again only while a new
        // charge of the method would be allowed; otherwise only asked about).
        return resolve(reservation.attempt, now, reservation.resendable, deadline);
      case 'limited':
        log.info('a charge the networks’ rules do not allow now was not made', {
          paymentId: a.payment_id,
          paymentMethodId: a.payment_method_id,
          rule: reservation.rule ? describeVerdict(reservation.rule) : 'per-method cap',
        });
        return limitedBy(reservation.rule);
      case 'allowed': {
        const result = await send(reservation.attempt, reservation.token(), now, deadline);
        return renewed && (result.outcome === 'succeeded' || result.outcome === 'declined')
          ? { ...result, renewed_by_updater: true }
          : result;
      }
      default:
        return { outcome: 'not_charged', reason: reservation.verdict };
    }
  };

  /**
   * Heartbeats every 2 s while `work` runs (a dead worker's charge is noticed within the heartbeat
   * timeout), and hands it the deadline of its gateway calls: 5 s (at most a tenth of it) before the
   * attempt's start-to-close runs out, counted from now, so an attempt always ends before the next
   * begins.
   */
  const beating = async <T>(work: (deadline: number) => Promise<T>): Promise<T> => {
    const ctx = activityContext();
    if (!ctx) return work(Date.now() + 4 * chargePolicy.clientTimeoutMs);
    const budget = ctx.info.startToCloseTimeoutMs;
    const deadline = Date.now() + budget - Math.min(5_000, budget / 10);
    const timer = setInterval(() => ctx.heartbeat(), 2_000);
    try {
      return await work(deadline);
    } finally {
      clearInterval(timer);
    }
  };

  /**
   * A failure before any request went under the key (the ledger has no attempt for it) says so
   * (`ChargeNotSent`, retried like the failure it wraps): when it fails for good, ops may pass
   * the method over, since nothing can have been charged. Anything else is left as it is.
   */
  const notSentIfSo = async (a: ChargeAttempt, err: unknown): Promise<unknown> => {
    const typed = err instanceof ApplicationFailure ? err.type : null;
    if (typed === CHARGE_REFUSED || typed === CHARGE_OUTCOME_UNKNOWN || a.mode === 'settle') return err;
    try {
      if (await readAttempt(graph, a.idempotency_key)) return err;
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
  };

  /** The survivor of a customer merged into another, or null (the id is nobody's tombstone). */
  const survivorIfMerged = async (customerId: string): Promise<string | null> => {
    const s = await survivorOf(graph, customerId);
    return s?.merged_into ? s.id : null;
  };

  /** The customer's candidates; a tombstone of a merge has none: its survivor's are (checked only when none). */
  async function candidatesOf(
    req: { customer_id: string; exclude: string[] },
    now = new Date(),
  ): Promise<RecoveryCandidate[]> {
    const found = await listRecoveryCandidates(graph, req.customer_id, req.exclude, trustThreshold, now);
    const survivor = found.length === 0 ? await survivorIfMerged(req.customer_id) : null;
    return survivor ? listRecoveryCandidates(graph, survivor, req.exclude, trustThreshold, now) : found;
  }

  return {
    /**
     * Charges one payment method with the workflow's idempotency key, keeping the charge ledger
     * (module comment). Right before a new key is charged the graph says whether it may be
     * (graph/recovery.ts `reserveGovernedCharge`): a charge the card networks' rules do not allow
     * now is `limited`, with the rule and when it allows one (for a card the processor never
     * named, the cap of 15 charges per method in 30 days); a suspended or erased customer, a method
     * no longer active in the wallet, or a recovery that has ended is not charged (`not_charged`
     * with the reason). A decline is returned with what it decides. An unknown outcome fails,
     * retryably, with `ChargeOutcomeUnknown` (the same key is the same charge next time); a refusal
     * of the only request sent under the key fails for good with `ChargeRefused` (nothing charged).
     * Heartbeats while it works; every gateway call ends within the attempt's start-to-close.
     */
    async chargePaymentMethod(attempt: ChargeAttempt): Promise<ChargeOutcome> {
      return beating(async (deadline) => {
        try {
          // The customer may have been merged since the workflow last heard: the methods (same ids)
          // are the survivor's now, and so is a new charge. Nothing was charged under the tombstone.
          const charged = await retryOnSurvivor(attempt.customer_id, (customer_id) =>
            charge({ ...attempt, customer_id }, deadline),
          );
          return charged.result;
        } catch (err) {
          // Converted here, never by the interceptors: a "not found" must not rerun a charge on the
          // leader, whose gateway deadline would be counted from the rerun (workers/logging.ts).
          throw asActivityFailure(await notSentIfSo(attempt, err));
        }
      });
    },
    /**
     * The recovery's first step: it is marked started in the charge ledger (a payment is recovered
     * once: one that ended before is answered with `proceed: false`), the reported decline is
     * decided (decline table), and the customer's other methods are listed to try first.
     */
    async beginRecovery(req: { failure: PaymentFailure; exclude: string[] }): Promise<RecoveryStart> {
      const f = req.failure;
      const ledger = await startRecovery(graph, {
        payment_id: f.payment_id,
        customer_id: f.customer_id,
        payment_method_id: f.payment_method_id,
        amount: f.amount,
        currency: f.currency,
        decline_code: f.decline_code,
      });
      const decline = decideDecline(f.decline_code);
      if (ledger.state !== 'recovering') return { proceed: false, state: ledger.state, decline, candidates: [] };
      // A payment id names one payment: a recovery reserved with other facts is not this one.
      if (
        (ledger.amount !== null && (ledger.amount !== f.amount || ledger.currency !== f.currency)) ||
        (ledger.payment_method_id !== null && ledger.payment_method_id !== f.payment_method_id)
      )
        return {
          proceed: false,
          state: ledger.state,
          reason: `payment ${f.payment_id} was reserved for another payment method or amount`,
          decline,
          candidates: [],
        };
      const candidates = await candidatesOf({
        customer_id: f.customer_id,
        exclude: [f.payment_method_id, ...req.exclude],
      });
      return { proceed: true, state: ledger.state, decline, candidates };
    },
    listRecoveryCandidates: candidatesOf,
    /**
     * Asks the networks' account updater about the method's card and applies its answer (after an
     * `expired_card` decline): a renewed card is active again with its new expiry (and token), with
     * PaymentMethodUpdatedByNetwork. Without an updater configured, nothing is asked.
     */
    async renewCard(req: { payment_method_id: string }): Promise<UpdateOutcome> {
      if (!updater) return { outcome: 'not_applied', reason: 'no account updater is configured' };
      try {
        return await renewFromUpdater(graph, updater, req.payment_method_id);
      } catch (err) {
        // The updater refused the request: asking again gets the same answer.
        if (err instanceof GatewayRejectedError)
          throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
        throw err;
      }
    },
    /**
     * When the networks' rules next allow a charge of one of the customer's candidates (asked
     * before a dunning round is scheduled, so that it is never scheduled earlier). A forecast:
     * the history is read without the card's lock, and the charge itself is governed again.
     * A card the processor never named, or a worker without the rule table, may be charged now.
     */
    async forecastCharges(req: { customer_id: string; exclude: string[]; at: string }): Promise<ChargeForecast> {
      const now = clockOf(req.at);
      const candidates = await candidatesOf(req, now);
      let best: { t: number; rule: string | null } | null = null;
      for (const c of candidates) {
        const card = networkRules ? await cardOfMethod(graph, c.payment_method_id) : null;
        const v = card && networkRules ? await forecastCharge(graph, card, networkRules, now) : null;
        // After MAC 01 the charge asks the account updater itself, then the rules again: it may go now.
        const t = v?.verdict === 'never' ? null : v?.verdict === 'not_before' ? Date.parse(v.at) : now.getTime();
        if (t === null || (best && best.t <= t)) continue;
        best = { t, rule: v && t > now.getTime() ? describeVerdict(v) : null };
        if (t <= now.getTime()) break;
      }
      return {
        earliest: best ? new Date(best.t).toISOString() : null,
        rule: best?.rule ?? null,
        candidates: candidates.length,
      };
    },
    async deactivatePaymentMethod(req: {
      payment_method_id: string;
      status: PaymentMethodStatus;
      reason: string;
    }): Promise<void> {
      await updatePaymentMethodStatus(graph, req.payment_method_id, req.status, { reason: req.reason });
    },
    /**
     * Records a recovery that charged, in one transaction: the method becomes the default and
     * PaymentRecovered is written (graph/recovery.ts), and the charge is counted as the payment
     * Persona made itself (graph/interactions.ts), a succeeded payment with id
     * `recovery:<payment id>`: it adds its amount to LTV, counts as a succeeded payment and may
     * move the segment and VIP. A retry records neither again (PaymentRecovered by its idempotency
     * key, the interaction by its claimed id: it answers `duplicate`, which is fine).
     *
     * An `invalid` interaction (a currency other than the reporting currency, a customer erased
     * or a method removed meanwhile) does not fail the activity: the recovery itself is recorded
     * and a retry could not change the answer. It is logged as a warning with the payment id, the
     * customer id and the problem (never the method's token) and the activity returns.
     */
    async recordRecovery(original: RecoveryRecord): Promise<void> {
      // One transaction records the recovery and counts the payment (each once).
      let counted: InteractionResult | undefined;
      const record = (rec: RecoveryRecord) =>
        recordRecovery(graph, rec, {
          alsoTx: async (tx) => {
            [counted] = await recordInteractionsTx(tx, graph, [recoveredPayment(rec)], profileRules);
          },
        });
      // Merged since the charge: the recovery (and the payment) are the survivor's.
      const { customerId } = await retryOnSurvivor(original.customer_id, (customer_id) =>
        record({ ...original, customer_id }),
      );
      warnIfNotCounted({ ...original, customer_id: customerId }, counted);
    },
    async recordRecoveryFailed(rec: {
      payment_id: string;
      customer_id: string;
      attempts: number;
      reason: string;
    }): Promise<void> {
      await recordRecoveryFailed(graph, rec);
    },
    /** The recovery stopped without recovering (cancelled, the customer erased, a fraud-class decline). */
    async recordRecoveryStopped(rec: { payment_id: string; customer_id: string; reason: string }): Promise<void> {
      await recordRecoveryStopped(graph, rec);
    },
  };
}

/** The interaction id a recovery's successful charge is recorded under (agents must not report it again). */
export function recoveryInteractionId(paymentId: string): string {
  return `recovery:${paymentId}`;
}

export type RecoveryActivities = ReturnType<typeof createRecoveryActivities>;

/**
 * A recovered payment counted in the customer's profile: the succeeded payment interaction
 * `recovery:<payment id>` (LTV, segment, VIP), once (a second time answers `duplicate`). An
 * invalid one (another currency, a customer erased or a method removed meanwhile) is logged as a
 * warning with the ids and the problem, never the token, and does not fail: a retry could not
 * change the answer.
 */
export async function countRecoveredPayment(graph: Graph, profileRules: ProfileRules, rec: RecoveryRecord) {
  const [result] = await recordInteractions(graph, [recoveredPayment(rec)], profileRules);
  warnIfNotCounted(rec, result);
}

/** The succeeded payment interaction a recovery counts in the customer's profile. */
function recoveredPayment(rec: RecoveryRecord): Interaction {
  return {
    type: 'payment',
    id: recoveryInteractionId(rec.payment_id),
    customer_id: rec.customer_id,
    payment_method_id: rec.payment_method_id,
    // RecoveryRecord.amount is integer minor units of `currency`, as the interaction's is.
    amount: rec.amount,
    currency: rec.currency,
    outcome: 'succeeded',
    transaction_id: rec.charge_id,
    occurred_at: new Date().toISOString(),
  };
}

function warnIfNotCounted(rec: RecoveryRecord, result: InteractionResult | undefined): void {
  if (result?.result === 'invalid')
    log.warn('recovered payment not counted in the customer profile (LTV, segment): the interaction is invalid', {
      paymentId: rec.payment_id,
      customerId: rec.customer_id,
      field: result.field,
      problem: result.problem,
    });
}
