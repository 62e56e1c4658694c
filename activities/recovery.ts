/** Activities of payment recovery: the gateway charge and the graph writes around it. */
import { ApplicationFailure, log } from '@temporalio/activity';
import {
  GatewayRejectedError,
  type AccountUpdater,
  type CardDescriber,
  type ChargeResult,
  type PaymentGateway,
} from '../clients/paymentGateway';
import {
  cardOfMethod,
  forecastCharge,
  methodCards,
  recordCardAnswer,
  recordUpdaterLookup,
  type CardIdentity,
  type MethodName,
} from '../graph/cardHistory';
import type { UpdateOutcome } from '../graph/cardUpdates';
import { CustomerMergedError, NotFoundError } from '../graph/errors';
import { survivorOf } from '../graph/merge';
import type { Graph } from '../graph/graph';
import {
  recordInteractions,
  recordInteractionsTx,
  type Interaction,
  type InteractionResult,
  type ProfileRules,
} from '../graph/interactions';
import type { PaymentMethodStatus } from '../graph/model';
import { MAX_CHARGES_PER_METHOD_IN_30_DAYS } from '../payments/declines';
import { describeVerdict, type RetryVerdict, type RuleTable } from '../payments/networkRules';
import { updatePaymentMethodStatus } from '../graph/paymentMethods';
import {
  listRecoveryCandidates,
  recordRecovery,
  recordRecoveryFailed,
  reserveGovernedCharge,
  type ChargeVerdict,
  type RecoveryCandidate,
  type RecoveryRecord,
} from '../graph/recovery';
import { renewFromUpdater } from './accountUpdater';
import { asActivityFailure, domain } from './domain';

export interface ChargeAttempt {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  amount: number;
  currency: string;
  /** From workflow data: `<payment id>:<payment method id>[:<round>]`. */
  idempotency_key: string;
  /** The decline the recovery started from (absent in attempts scheduled before it was sent). */
  reported?: { payment_method_id: string; decline_code: string; advice_code?: string };
  /** The workflow's time when it scheduled the charge (absent in older attempts): see `clockOf`. */
  at?: string;
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
 * The time the rules are applied at: the later of the workflow's time when it scheduled the
 * activity and this worker's clock. In production they differ by the activity's queueing and
 * retries (the later is the truth); in a time-skipping test the workflow's clock runs ahead of
 * the machine's, and its days must count.
 */
export function clockOf(at: string | undefined): Date {
  const scheduled = at === undefined ? Number.NaN : Date.parse(at);
  return new Date(Number.isFinite(scheduled) ? Math.max(scheduled, Date.now()) : Date.now());
}

/** What a charge attempt came to: the gateway's answer, or why the gateway was not asked. */
export type ChargeOutcome =
  /** `renewed_by_updater`: the account updater renewed the card right before this charge (after MAC 01). */
  | (ChargeResult & { renewed_by_updater?: boolean })
  /** A card-network rule (or, for a card the processor never named, the per-method cap) says not now. */
  | { outcome: 'limited'; rule?: string; not_before?: string | null; never?: boolean }
  | { outcome: 'not_charged'; reason: Exclude<ChargeVerdict, 'allowed' | 'limited'> };

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

export function createRecoveryActivities({
  graph,
  gateway,
  trustThreshold,
  profileRules,
  cards,
  updater,
  networkRules,
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
    const known = await domain(() => methodCards(graph, customerId, [...new Set(paymentMethodIds)]));
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
    before: Pick<Parameters<typeof reserveGovernedCharge>[1], 'names' | 'reported'> = {},
  ) =>
    domain(() =>
      reserveGovernedCharge(
        graph,
        {
          customer_id: a.customer_id,
          payment_method_id: a.payment_method_id,
          key: a.idempotency_key,
          max: MAX_CHARGES_PER_METHOD_IN_30_DAYS,
          card: card && networkRules ? { identity: card, table: networkRules } : undefined,
          ...before,
        },
        now,
      ),
    );

  /** One charge, for the customer the attempt names (chargePaymentMethod follows a merge). */
  const charge = async (a: ChargeAttempt): Promise<ChargeOutcome> => {
    const now = clockOf(a.at);
    // One read names the cards (the one charged, and the one the recovery started from), and
    // one transaction keeps new names, counts the reported decline against its card (once per
    // payment) and reserves the charge: the charge's graph round trips are these two and the
    // answer's.
    const reportedId = a.reported?.payment_method_id;
    const { named, fresh } = networkRules
      ? await cardsOf(a.customer_id, reportedId ? [a.payment_method_id, reportedId] : [a.payment_method_id])
      : { named: new Map<string, CardIdentity>(), fresh: [] };
    let card = named.get(a.payment_method_id) ?? null;
    const reportedCard = reportedId ? named.get(reportedId) : undefined;
    let reservation = await reserve(a, card, now, {
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
      await domain(() => recordUpdaterLookup(graph, card as CardIdentity, now));
      // A reissued card is named again: the networks count its charges as its own.
      let names: MethodName[] = [];
      if (renewal.outcome === 'updated' && renewal.token_replaced) {
        const again = await cardsOf(a.customer_id, [a.payment_method_id]);
        card = again.named.get(a.payment_method_id) ?? null;
        names = again.fresh;
      }
      reservation = await reserve(a, card, now, { names });
    }
    const { verdict, rule } = reservation;
    if (verdict === 'limited') {
      log.info('a charge the networks’ rules do not allow now was not made', {
        paymentId: a.payment_id,
        paymentMethodId: a.payment_method_id,
        rule: rule ? describeVerdict(rule) : 'per-method cap',
      });
      return limitedBy(rule);
    }
    if (verdict !== 'allowed') return { outcome: 'not_charged', reason: verdict };
    // Allowed, the method had a token under the lock (a method without one is no card).
    const token = reservation.token();
    if (token === null) throw asActivityFailure(new NotFoundError('PaymentMethod', a.payment_method_id));
    let result: ChargeResult;
    try {
      result = await gateway.charge({
        idempotency_key: a.idempotency_key,
        token,
        amount: a.amount,
        currency: a.currency,
        customer_id: a.customer_id,
        // A recovery's retry is merchant-initiated: the networks' retry rules are written for it.
        initiator: 'mit',
      });
    } catch (err) {
      if (err instanceof GatewayRejectedError)
        throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
      throw err;
    }
    // What the network said is counted against the card (a retry of this activity records the
    // same answer again, which changes nothing). Money may have moved: a write that fails here
    // must not fail the charge, so it is logged, and the charge stays pending in the card's
    // history, where it counts as a decline until it ages out.
    if (card && networkRules) {
      const rules = networkRules;
      try {
        await recordCardAnswer(graph, card, a.idempotency_key, result, rules, clockOf(a.at));
      } catch (err) {
        log.warn('the network’s answer could not be counted against the card; it stays pending there', {
          paymentId: a.payment_id,
          paymentMethodId: a.payment_method_id,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    return renewed ? { ...result, renewed_by_updater: true } : result;
  };

  /** The survivor named by a CustomerMergedError anywhere in an error's causes (domain() wraps it), or null. */
  const mergedInto = (err: unknown): string | null => {
    let e: unknown = err;
    for (let depth = 0; depth < 5 && e instanceof Error; depth++, e = e.cause)
      if (e instanceof CustomerMergedError) return e.survivorId;
    return null;
  };

  /** The survivor of a customer merged into another, or null (the id is nobody's tombstone). */
  const survivorIfMerged = async (customerId: string): Promise<string | null> => {
    const s = await domain(() => survivorOf(graph, customerId));
    return s?.merged_into ? s.id : null;
  };

  return {
    /**
     * Charges one payment method with the workflow's idempotency key. A decline is returned (a
     * business outcome); 5xx and timeouts throw and are retried by Temporal with the same key,
     * so a retry after a lost answer is the same charge. Right before the charge the graph says
     * whether it may happen (graph/recovery.ts `reserveGovernedCharge`): a charge the card
     * networks' rules do not allow now is `limited`, with the rule and when it allows one (for a
     * card the processor never named, the cap of 15 charges per method in 30 days); a suspended
     * or erased customer, or a method no longer active in the wallet, is not charged
     * (`not_charged` with the reason). The network's answer is counted against the card.
     */
    async chargePaymentMethod(attempt: ChargeAttempt): Promise<ChargeOutcome> {
      try {
        return await charge(attempt);
      } catch (err) {
        // The customer was merged since the workflow last heard: the methods (same ids) are the
        // survivor's now, and so is the charge. Nothing was charged under the tombstone.
        const survivor = mergedInto(err);
        if (!survivor) throw err;
        return charge({ ...attempt, customer_id: survivor });
      }
    },
    async listRecoveryCandidates(req: { customer_id: string; exclude: string[] }): Promise<RecoveryCandidate[]> {
      const found = await domain(() => listRecoveryCandidates(graph, req.customer_id, req.exclude, trustThreshold));
      // A tombstone of a merge has no methods: its survivor's are the candidates (checked only when none).
      const survivor = found.length === 0 ? await survivorIfMerged(req.customer_id) : null;
      return survivor ? domain(() => listRecoveryCandidates(graph, survivor, req.exclude, trustThreshold)) : found;
    },
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
      let candidates = await domain(() =>
        listRecoveryCandidates(graph, req.customer_id, req.exclude, trustThreshold, now),
      );
      const survivor = candidates.length === 0 ? await survivorIfMerged(req.customer_id) : null;
      if (survivor)
        candidates = await domain(() => listRecoveryCandidates(graph, survivor, req.exclude, trustThreshold, now));
      let best: { t: number; rule: string | null } | null = null;
      for (const c of candidates) {
        const card = networkRules ? await domain(() => cardOfMethod(graph, c.payment_method_id)) : null;
        const v = card && networkRules ? await domain(() => forecastCharge(graph, card, networkRules, now)) : null;
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
      await domain(() => updatePaymentMethodStatus(graph, req.payment_method_id, req.status, { reason: req.reason }));
    },
    /**
     * Records a recovery that charged: the method becomes the default and PaymentRecovered is
     * written (graph/recovery.ts), then the charge is recorded as the payment Persona made itself
     * through the interaction service (graph/interactions.ts), as a succeeded payment with id
     * `recovery:<payment id>`: it adds its amount to LTV, counts as a succeeded payment and may
     * move the segment and VIP. Both writes are idempotent (PaymentRecovered by its idempotency
     * key, the interaction by its claimed id), so a retry after a worker died between them records
     * each once; the second answers `duplicate`, which is fine.
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
      let rec = original;
      await domain(async () => {
        try {
          await record(rec);
        } catch (err) {
          // Merged since the charge: the recovery (and the payment) are the survivor's.
          if (!(err instanceof CustomerMergedError)) throw err;
          rec = { ...rec, customer_id: err.survivorId };
          await record(rec);
        }
      });
      warnIfNotCounted(rec, counted);
    },
    async recordRecoveryFailed(rec: {
      payment_id: string;
      customer_id: string;
      attempts: number;
      reason: string;
    }): Promise<void> {
      await domain(() => recordRecoveryFailed(graph, rec));
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
  const [result] = await domain(() => recordInteractions(graph, [recoveredPayment(rec)], profileRules));
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
