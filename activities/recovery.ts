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
 * the decline table, and returned: the workflow only branches on what was recorded. The charge
 * itself is in activities/recoveryCharge.ts and activities/recoveryGateway.ts, its types in
 * activities/recoveryModel.ts.
 */
import { ApplicationFailure, log } from '@temporalio/activity';
import { GatewayRejectedError } from '../clients/paymentGateway';
import { cardOfMethod, forecastCharge } from '../graph/cardHistory';
import {
  requestRecoveryStop,
  startRecovery,
  type RecoveryLedgerState,
  type StopRequester,
} from '../graph/chargeLedger';
import type { UpdateOutcome } from '../graph/cardUpdates';
import { retryOnSurvivor, survivorOf } from '../graph/mergedRecords';
import type { Graph } from '../graph/graph';
import {
  recordInteractions,
  recordInteractionsTx,
  type Interaction,
  type InteractionResult,
  type ProfileRules,
} from '../graph/interactions';
import type { PaymentMethodStatus } from '../graph/model';
import { decideDecline, type DeclineDecision } from '../payments/declines';
import { describeVerdict } from '../payments/networkRules';
import { updatePaymentMethodStatus } from '../graph/walletDefaults';
import {
  listRecoveryCandidates,
  recordRecovery,
  recordRecoveryFailed,
  recordRecoveryStopped,
  type RecoveryCandidate,
  type RecoveryRecord,
} from '../graph/recovery';
import type { LedgerEnd } from '../graph/chargeReservation';
import type { PaymentFailure } from '../temporal/recovery';
import { renewFromUpdater } from './accountUpdater';
import { chargePaymentMethod, settleOpenCharges } from './recoveryCharge';
import {
  clockOf,
  recoveryContext,
  type ChargeAttempt,
  type ChargeOutcome,
  type RecoveryContext,
  type RecoveryDeps,
} from './recoveryModel';

export {
  clockOf,
  DEFAULT_CHARGE_POLICY,
  type AnsweredCharge,
  type ChargeAttempt,
  type ChargeOutcome,
  type ChargePolicy,
} from './recoveryModel';

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

/** What the workflow's first step answers: the recovery as the ledger has it, and what to do first. */
export interface RecoveryStart {
  /**
   * False when the payment's recovery ended before (recovered, failed, stopped), or was reserved
   * for another method or amount (`reason`): nothing is charged.
   */
  proceed: boolean;
  state: RecoveryLedgerState;
  reason?: string;
  /** How the recovery ended, when the ledger has it ended (another run of the payment ended it). */
  ended?: LedgerEnd;
  /** A stop requested in the ledger before this run began (its words): the run stops at once. */
  stop_request?: string | null;
  /** What the reported decline decides (its class, the method's new status, the updater). */
  decline: DeclineDecision;
  /** The customer's other methods to try first (not the one that failed, nor `exclude`). */
  candidates: RecoveryCandidate[];
}

export function createRecoveryActivities(deps: RecoveryDeps) {
  const rc = recoveryContext(deps);
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
    chargePaymentMethod: (attempt: ChargeAttempt): Promise<ChargeOutcome> => chargePaymentMethod(rc, attempt),
    /**
     * The recovery's first step: it is marked started in the charge ledger (a payment is recovered
     * once: one that ended before is answered with `proceed: false`), the reported decline is
     * decided (decline table), and the customer's other methods are listed to try first.
     */
    beginRecovery: (req: { failure: PaymentFailure; exclude: string[] }): Promise<RecoveryStart> =>
      beginRecovery(rc, req),
    listRecoveryCandidates: (
      req: { customer_id: string; exclude: string[] },
      now?: Date,
    ): Promise<RecoveryCandidate[]> => candidatesOf(rc, req, now),
    /**
     * Asks the networks' account updater about the method's card and applies its answer (after an
     * `expired_card` decline): a renewed card is active again with its new expiry (and token), with
     * PaymentMethodUpdatedByNetwork. Without an updater configured, nothing is asked.
     */
    renewCard: (req: { payment_method_id: string }): Promise<UpdateOutcome> => renewCard(rc, req),
    /**
     * When the networks' rules next allow a charge of one of the customer's candidates (asked
     * before a dunning round is scheduled, so that it is never scheduled earlier). A forecast:
     * the history is read without the card's lock, and the charge itself is governed again.
     * A card the processor never named, or a worker without the rule table, may be charged now.
     */
    forecastCharges: (req: { customer_id: string; exclude: string[]; at: string }): Promise<ChargeForecast> =>
      forecastCharges(rc, req),
    async deactivatePaymentMethod(req: {
      payment_method_id: string;
      status: PaymentMethodStatus;
      reason: string;
    }): Promise<void> {
      await updatePaymentMethodStatus(rc.graph, req.payment_method_id, req.status, { reason: req.reason });
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
    recordRecovery: (original: RecoveryRecord): Promise<void> => recordRecoveryAndCount(rc, original),
    /** The recovery gave up; answers how the ledger has it ended (another run may have ended it first). */
    recordRecoveryFailed: (rec: {
      payment_id: string;
      customer_id: string;
      attempts: number;
      reason: string;
    }): Promise<LedgerEnd> => recordRecoveryFailed(rc.graph, rec),
    /**
     * The recovery stopped without recovering (cancelled, the customer erased, a fraud-class
     * decline); answers how the ledger has it ended (another run may have ended it first).
     */
    recordRecoveryStopped: (rec: { payment_id: string; customer_id: string; reason: string }): Promise<LedgerEnd> =>
      recordRecoveryStopped(rc.graph, rec),
    ...stoppingActivities(rc),
  };
}

/** What a stopping recovery asks of the ledger and the gateway. */
function stoppingActivities(rc: RecoveryContext) {
  return {
    /**
     * A stop the run took is written to the charge ledger (graph/chargeLedger.ts
     * `requestRecoveryStop`): nothing for the payment is sent to the gateway from then on.
     */
    async requestRecoveryStop(req: { payment_id: string; by: StopRequester; reason: string }): Promise<void> {
      await requestRecoveryStop(rc.graph, req.payment_id, { by: req.by, reason: req.reason });
    },
    /**
     * Before a stopping recovery ends: every attempt of the payment still open (sent, its outcome
     * unknown, or succeeded and not recorded) is settled with the gateway — asked by key or by
     * reference, never sent again. Answers the first that went through (with its method and key),
     * else `not_charged` (`never_sent`); an outcome the gateway cannot tell yet fails, retryably.
     */
    settleOpenCharges: (req: { payment_id: string; at?: string }): Promise<ChargeOutcome> => settleOpenCharges(rc, req),
  };
}

/** The survivor of a customer merged into another, or null (the id is nobody's tombstone). */
async function survivorIfMerged(rc: RecoveryContext, customerId: string): Promise<string | null> {
  const s = await survivorOf(rc.graph, customerId);
  return s?.merged_into ? s.id : null;
}

/** The customer's candidates; a tombstone of a merge has none: its survivor's are (checked only when none). */
async function candidatesOf(
  rc: RecoveryContext,
  req: { customer_id: string; exclude: string[] },
  now = new Date(),
): Promise<RecoveryCandidate[]> {
  const found = await listRecoveryCandidates(rc.graph, req.customer_id, req.exclude, rc.trustThreshold, now);
  const survivor = found.length === 0 ? await survivorIfMerged(rc, req.customer_id) : null;
  return survivor ? listRecoveryCandidates(rc.graph, survivor, req.exclude, rc.trustThreshold, now) : found;
}

/** `beginRecovery` (its doc: createRecoveryActivities). */
async function beginRecovery(
  rc: RecoveryContext,
  req: { failure: PaymentFailure; exclude: string[] },
): Promise<RecoveryStart> {
  const f = req.failure;
  const ledger = await startRecovery(rc.graph, {
    payment_id: f.payment_id,
    customer_id: f.customer_id,
    payment_method_id: f.payment_method_id,
    amount: f.amount,
    currency: f.currency,
    decline_code: f.decline_code,
  });
  const decline = decideDecline(f.decline_code);
  if (ledger.state !== 'recovering') {
    const { state, recovered_with, charge_id, reason } = ledger;
    return { proceed: false, state, ended: { state, recovered_with, charge_id, reason }, decline, candidates: [] };
  }
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
  const candidates = await candidatesOf(rc, {
    customer_id: f.customer_id,
    exclude: [f.payment_method_id, ...req.exclude],
  });
  const stop = ledger.stop_requested_at === null ? {} : { stop_request: ledger.stop_request };
  return { proceed: true, state: ledger.state, decline, candidates, ...stop };
}

/** `renewCard` (its doc: createRecoveryActivities). */
async function renewCard(rc: RecoveryContext, req: { payment_method_id: string }): Promise<UpdateOutcome> {
  if (!rc.updater) return { outcome: 'not_applied', reason: 'no account updater is configured' };
  try {
    return await renewFromUpdater(rc.graph, rc.updater, req.payment_method_id);
  } catch (err) {
    // The updater refused the request: asking again gets the same answer.
    if (err instanceof GatewayRejectedError)
      throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
    throw err;
  }
}

/** `forecastCharges` (its doc: createRecoveryActivities). */
async function forecastCharges(
  rc: RecoveryContext,
  req: { customer_id: string; exclude: string[]; at: string },
): Promise<ChargeForecast> {
  const now = clockOf(req.at);
  const candidates = await candidatesOf(rc, req, now);
  let best: { t: number; rule: string | null } | null = null;
  for (const c of candidates) {
    const card = rc.networkRules ? await cardOfMethod(rc.graph, c.payment_method_id) : null;
    const v = card && rc.networkRules ? await forecastCharge(rc.graph, card, rc.networkRules, now) : null;
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
}

/** `recordRecovery` (its doc: createRecoveryActivities). */
async function recordRecoveryAndCount(rc: RecoveryContext, original: RecoveryRecord): Promise<void> {
  // One transaction records the recovery and counts the payment (each once).
  let counted: InteractionResult | undefined;
  const record = (rec: RecoveryRecord) =>
    recordRecovery(rc.graph, rec, {
      alsoTx: async (tx) => {
        [counted] = await recordInteractionsTx(tx, rc.graph, [recoveredPayment(rec)], rc.profileRules);
      },
    });
  // Merged since the charge: the recovery (and the payment) are the survivor's.
  const { customerId } = await retryOnSurvivor(original.customer_id, (customer_id) =>
    record({ ...original, customer_id }),
  );
  warnIfNotCounted({ ...original, customer_id: customerId }, counted);
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
  warnIfNotCounted(rec, await recordRecoveredPayment(graph, profileRules, rec));
}

/** `countRecoveredPayment` outside an activity: the interaction's result, for the caller to report. */
export async function recordRecoveredPayment(
  graph: Graph,
  profileRules: ProfileRules,
  rec: RecoveryRecord,
): Promise<InteractionResult | undefined> {
  const [result] = await recordInteractions(graph, [recoveredPayment(rec)], profileRules);
  return result;
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
