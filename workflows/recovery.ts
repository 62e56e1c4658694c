/**
 * Payment recovery — workflow id `payment-recovery-<payment id>`, started by Synapse with
 * signal-with-start of `paymentFailed` once the api has reserved the payment's recovery in the
 * charge ledger (a payment is recovered once, ever: graph/chargeLedger.ts).
 *
 *   fraud-class hard decline → deactivate the method (compromised), tell the customer, stop.
 *   other hard decline       → deactivate it (expired_card → expired), then cascade.
 *   soft decline             → cascade.
 * What a decline is, and everything else a business table decides, is decided by the activities
 * and recorded in this history (`beginRecovery` for the reported decline, `chargePaymentMethod`
 * for each charge's): this code only branches on recorded answers.
 * The cascade charges the customer's other active, unexpired methods — used on a trusted device
 * first, then most recently used — with idempotency key `<payment id>:<method id>` (dunning
 * rounds append `:r<round>`). Success makes that method the default and tells the customer.
 * When every method fails, dunning: reminders and timers on the schedule; `paymentMethodAdded`
 * retries at once; `paymentMethodBlocked` (a confirmed fraud) takes a method out for good;
 * `cancel` stops. Card-network rules: never a method again after a do-not-retry decline in this
 * recovery; every charge governed per card by the networks' rule table (activities/recovery.ts).
 *
 * Money moves once. Every charge is in the ledger before the gateway is called, and a charge whose
 * outcome is unknown (no answer, a 5xx, a 409 "in flight") is sticky: its activity is retried under
 * the same key for hours (PERSONA_CHARGE_RETRY_HOURS), then the recovery waits in `needs_attention`
 * where ops may only `retry` — never `skip` — and nothing else is charged, until the gateway says
 * what became of it. A `cancel` (ops, an erasure) then learns the outcome without sending anything
 * again (`settle`): a charge that went through is recorded as the recovery's success.
 *
 * It never ends Failed: notifications are best-effort; the graph decides right before each charge
 * whether it may happen (a suspended customer is not charged this round, an erased one never); a
 * charge the gateway refused for good waits in `needs_attention` for ops' `resolveAttention`
 * (retry or skip) or `cancel`; after money moved, the recording is retried until it is done.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  setHandler,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { ChargeAttempt, ChargeOutcome, RecoveryActivities } from '../activities/recovery';
import type { RecoveryCandidate } from '../graph/recovery';
import type { DeclineDecision } from '../payments/declines';
import { describeFailure } from '../temporal/failures';
import { fromMinorUnits } from '../payments/money';
import {
  cancelRecoverySignal,
  CHARGE_NOT_SENT,
  CHARGE_REFUSED,
  DEFAULT_CHARGE_RETRY_FOR,
  paymentFailedSignal,
  paymentMethodAddedSignal,
  paymentMethodBlockedSignal,
  offerPaymentMethodUpdate,
  MAX_OFFERS_WAITING,
  OFFER_BY_SIGNAL,
  RECOVERY_ENDED,
  recoveryStatusQuery,
  resolveAttentionUpdate,
  type AttentionDecision,
  type PaymentFailure,
  type RecoveryInput,
  initialRecoveryStatus,
  type RecoveryStatus,
} from '../temporal/recovery';
import { customerMergedSignal } from '../temporal/identityMerge';
import { graphRestoredSignal } from '../temporal/restore';
import {
  activitiesWithSummaries,
  agentCall,
  gatewayCharge,
  gatewaySettle,
  graphWrite,
  graphWriteUntilDone,
} from './activityOptions';
import { countRecoveredBy, countRecovery, countRecoveryNeedingAttention } from './metrics';
import { recoveryMechanism } from '../payments/mechanisms';
import { notifications } from './notifications';
import { autoUpgrade } from './versioning';

/** How often a round asks the rules again after its wait before it charges anyway (governed then). */
const RULE_RECHECKS = 3;

const money = (amount: number, currency: string): string => `${fromMinorUnits(amount, currency)} ${currency}`;

type GraphActivities = Omit<RecoveryActivities, 'chargePaymentMethod' | 'renewCard'>;
const graphSummaries = {
  beginRecovery: (req: Parameters<RecoveryActivities['beginRecovery']>[0]) =>
    `Mark the recovery of payment ${req.failure.payment_id} started in the charge ledger, decide what its ` +
    `decline (${req.failure.decline_code}) means, and list customer ${req.failure.customer_id}'s other methods to try`,
  listRecoveryCandidates: (req: Parameters<RecoveryActivities['listRecoveryCandidates']>[0]) =>
    `List customer ${req.customer_id}'s other active, unexpired payment methods to try, trusted-device ones first` +
    (req.exclude.length
      ? ` (not ${req.exclude.length === 1 ? 'the one' : `the ${req.exclude.length}`} already ruled out)`
      : ''),
  deactivatePaymentMethod: (req: Parameters<RecoveryActivities['deactivatePaymentMethod']>[0]) =>
    `Mark payment method ${req.payment_method_id} ${req.status}: ${req.reason}`,
  recordRecovery: (rec: Parameters<RecoveryActivities['recordRecovery']>[0]) =>
    `Record payment ${rec.payment_id} as recovered with ${rec.payment_method_id} and make that method the default`,
  recordRecoveryFailed: (rec: Parameters<RecoveryActivities['recordRecoveryFailed']>[0]) =>
    `Record payment ${rec.payment_id} as not recoverable after ${rec.attempts} attempts`,
  recordRecoveryStopped: (rec: Parameters<RecoveryActivities['recordRecoveryStopped']>[0]) =>
    `Record the recovery of payment ${rec.payment_id} as stopped: ${rec.reason}`,
  forecastCharges: (req: Parameters<RecoveryActivities['forecastCharges']>[0]) =>
    `Ask the card networks' rules when customer ${req.customer_id}'s payment methods may next be charged`,
};
/** Graph reads and writes retried a while (the forecast: without it the schedule stands). */
const graph = activitiesWithSummaries<GraphActivities>(graphWrite, graphSummaries);
/** The cascade's reads and every record: retried while Neo4j is away, however long. */
const ledger = activitiesWithSummaries<GraphActivities>(graphWriteUntilDone, graphSummaries);
/** The account updater is another party: asked a few times, then the recovery goes on without it. */
const updater = activitiesWithSummaries<Pick<RecoveryActivities, 'renewCard'>>(agentCall, {
  renewCard: (req) =>
    `Ask the card networks' account updater whether payment method ${req.payment_method_id} was renewed, ` +
    'and apply its new expiry',
});
const chargeSummary = {
  chargePaymentMethod: (a: ChargeAttempt) =>
    a.mode === 'settle'
      ? `Ask the gateway what became of the charge under idempotency key ${a.idempotency_key} ` +
        '(its outcome is unknown; nothing is sent again)'
      : `Charge ${money(a.amount, a.currency)} to payment method ${a.payment_method_id} ` +
        `(idempotency key ${a.idempotency_key})`,
};
const settler = activitiesWithSummaries<Pick<RecoveryActivities, 'chargePaymentMethod'>>(gatewaySettle, chargeSummary);

/** Why the activity failed: the ApplicationFailure type it threw, if any. */
function failureType(err: unknown): string | null {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? null) : null;
}

autoUpgrade(paymentRecoveryWorkflow);
export async function paymentRecoveryWorkflow(input: RecoveryInput): Promise<RecoveryStatus> {
  const { workflowId } = workflowInfo();
  const gateway = activitiesWithSummaries<Pick<RecoveryActivities, 'chargePaymentMethod'>>(
    gatewayCharge(input.chargeRetryFor ?? DEFAULT_CHARGE_RETRY_FOR),
    chargeSummary,
  );
  const status: RecoveryStatus = initialRecoveryStatus();
  let failure: PaymentFailure | null = null;
  /** `paymentMethodAdded` signals received, and how many a retry has answered (none is lost). */
  let methodsAdded = 0;
  let methodsAnswered = 0;
  /** How many added methods a finished retry has taken (an offer is answered once its retry is over). */
  let methodsTried = 0;
  let cancelled: string | null = null;
  /** Cancelled by a cancellation request (ops in the UI), not by the `cancel` signal. */
  let cancelRequested = false;
  /** What a restore of the graph found missing (temporal/restore.ts): ops look before the next charge. */
  let restored: string | null = null;
  let decision: AttentionDecision | null = null;
  /**
   * Whether ops may skip what needs attention: only after a charge the gateway refused, the one
   * request ever sent under its key (the ledger proves it), or a failure that charged nothing.
   */
  let skippable = false;
  /**
   * The charge whose outcome is not known (sticky): nothing else is charged, and it is never
   * skipped, until the gateway has said what became of it.
   */
  let unknownCharge: ChargeAttempt | null = null;
  /** Methods never to charge again in this recovery (do-not-retry declines, deactivated). */
  const doNotCharge: string[] = [];

  setHandler(recoveryStatusQuery, () => status);
  setHandler(paymentFailedSignal, (f) => {
    if (failure) log.info('the same payment was reported again; nothing changes', { paymentId: f.payment_id });
    else failure = f;
  });
  /** Methods the customer added while the recovery ran, and methods the account updater renewed. */
  const added: string[] = [];
  const renewed: string[] = [];
  /** Offers whose answer waits for a retry (each holds one of the workflow's Updates in flight). */
  let offersWaiting = 0;
  setHandler(paymentMethodAddedSignal, ({ payment_method_id }) => {
    methodsAdded++;
    if (typeof payment_method_id === 'string' && !added.includes(payment_method_id)) added.push(payment_method_id);
  });
  setHandler(
    offerPaymentMethodUpdate,
    async ({ payment_method_id }) => {
      // Counted before the first await, like the signal: the retry it wakes takes it.
      const ticket = ++methodsAdded;
      if (!added.includes(payment_method_id)) added.push(payment_method_id);
      offersWaiting++;
      try {
        await condition(() => methodsTried >= ticket || RECOVERY_ENDED.includes(status.state));
      } finally {
        offersWaiting--;
      }
      const attempt = [...status.attempts].reverse().find((a) => a.payment_method_id === payment_method_id);
      const outcome =
        attempt?.outcome === 'succeeded' ? 'recovered' : attempt ? attempt.outcome : ('not_tried' as const);
      return {
        payment_id: failure?.payment_id ?? '',
        payment_method_id,
        outcome,
        decline_code: attempt?.decline_code ?? null,
        state: status.state,
        recovered_with: status.recovered_with,
      };
    },
    {
      validator: (offer: Partial<{ payment_method_id: unknown }> | undefined) => {
        if (typeof offer?.payment_method_id !== 'string' || offer.payment_method_id === '')
          throw new Error('payment_method_id is required');
        if (failure === null) throw new Error('the recovery has not started');
        if (RECOVERY_ENDED.includes(status.state)) throw new Error(`the recovery has ended (${status.state})`);
        if (cancelled !== null) throw new Error(`the recovery was cancelled: ${cancelled}`);
        const bySignal = (message: string) => ApplicationFailure.create({ type: OFFER_BY_SIGNAL, message });
        if (status.state === 'needs_attention')
          throw bySignal('the recovery waits for ops: signal the card, charged after their decision');
        if (offersWaiting >= MAX_OFFERS_WAITING)
          throw bySignal(`${offersWaiting} offers wait for this recovery's retry: signal the card`);
      },
    },
  );
  /** Methods blocked for good by a confirmed fraud: no renewal brings them back into this recovery. */
  const blocked: string[] = [];
  setHandler(paymentMethodBlockedSignal, ({ payment_method_id, reason }) => {
    log.info('payment method blocked for this recovery', { paymentMethodId: payment_method_id, reason });
    if (!blocked.includes(payment_method_id)) blocked.push(payment_method_id);
    if (!doNotCharge.includes(payment_method_id)) doNotCharge.push(payment_method_id);
  });
  // The customer was merged into another record: its payment methods moved there (same ids), and
  // every later step (new charges, notifications, records) goes on against the survivor. A charge
  // made before keeps its first request, the merged record's (the ledger re-sends it as it was).
  setHandler(customerMergedSignal, ({ merged_id, survivor_id, merge_id }) => {
    if (failure?.customer_id !== merged_id) return;
    log.info('the customer was merged: the recovery goes on against the survivor', {
      mergedId: merged_id,
      survivorId: survivor_id,
      mergeId: merge_id,
    });
    failure.customer_id = survivor_id;
  });
  setHandler(cancelRecoverySignal, ({ reason }) => {
    cancelled = reason;
  });
  setHandler(graphRestoredSignal, ({ reason, backup_id }) => {
    log.warn('the graph was restored from a backup that lacks what this recovery acts on', { reason, backup_id });
    restored = `the graph was restored from backup ${backup_id}: ${reason}`;
  });
  setHandler(
    resolveAttentionUpdate,
    async (d) => {
      // Recorded before the first await: a second update in the same workflow task is rejected by the validator.
      decision = d;
      await condition(() => status.state !== 'needs_attention');
      return JSON.parse(JSON.stringify(status)) as RecoveryStatus;
    },
    {
      validator: (d: Partial<AttentionDecision> | undefined) => {
        if (status.state !== 'needs_attention')
          throw new Error(`the recovery does not need attention (it is ${status.state})`);
        if (decision) throw new Error(`ops decided already: ${decision.action}`);
        if (cancelled !== null) throw new Error(`the recovery was cancelled: ${cancelled}`);
        if (d?.action !== 'retry' && d?.action !== 'skip') throw new Error('action must be retry or skip');
        if (d.since !== undefined && Date.parse(d.since) !== Date.parse(status.attention?.since ?? ''))
          throw new Error(
            `the decision answers the attention of ${d.since}; the recovery now needs attention since ` +
              `${status.attention?.since ?? 'never'}: ${status.attention?.reason ?? ''}`,
          );
        if (d.action === 'skip' && !skippable)
          throw new Error(
            'skip is not safe here: the gateway may have taken this charge; ' +
              'retry, under the same idempotency key, finds out',
          );
      },
    },
  );

  // A cancellation request (ops in the UI) stops the recovery the way `cancel` does: nothing more
  // is charged, a charge under way is finished (or its unknown outcome settled) and recorded.
  CancellationScope.current().cancelRequested.catch(() => {
    cancelRequested = true;
    cancelled ??= 'workflow cancelled';
  });

  const main = async (): Promise<RecoveryStatus> => {
    await condition(() => failure !== null);
    const f = failure as unknown as PaymentFailure;
    const now = () => new Date().toISOString();

    /** Best-effort: a notification that cannot be delivered is noted, and the recovery goes on. */
    const notify = async (kind: string, step: string, data: Record<string, unknown> = {}): Promise<void> => {
      try {
        await notifications.notifyCustomer({
          customer_id: f.customer_id,
          kind,
          key: `${workflowId}:${step}`,
          data: { payment_id: f.payment_id, ...data },
        });
      } catch (err) {
        if (isCancellation(err)) throw err;
        status.undelivered.push(step);
        log.warn('a notification could not be delivered; the recovery goes on without it', {
          paymentId: f.payment_id,
          customerId: f.customer_id,
          kind,
          error: describeFailure(err),
        });
      }
    };

    /** The customer being told of the recovery while it is recorded. */
    let recoveredNotice: Promise<void> | null = null;

    /** Waits for ops (or a cancel) after something a retry by Temporal could not fix. */
    const needAttention = async (
      why: 'charge_failed' | 'record_failed' | 'graph_restored',
      reason: string,
      paymentMethodId: string | null,
      canSkip: boolean,
      unknownKey: string | null = null,
    ): Promise<AttentionDecision['action'] | 'cancelled'> => {
      const resume = status.state;
      skippable = canSkip;
      Object.assign(status, {
        state: 'needs_attention',
        next_retry_at: null,
        next_retry_reason: null,
        attention: {
          reason,
          payment_method_id: paymentMethodId,
          since: new Date().toISOString(),
          unknown_charge: unknownKey,
          skippable: canSkip,
        },
      });
      decision = null;
      countRecoveryNeedingAttention(why);
      log.warn('payment recovery needs attention', {
        paymentId: f.payment_id,
        customerId: f.customer_id,
        paymentMethodId,
        reason,
      });
      await condition(() => decision !== null || cancelled !== null);
      const action = cancelled !== null ? 'cancelled' : (decision as unknown as AttentionDecision).action;
      log.info('payment recovery resumed', {
        paymentId: f.payment_id,
        action,
        note: (decision as AttentionDecision | null)?.note,
      });
      Object.assign(status, { state: resume, attention: null });
      return action;
    };

    /** Applies a decline's consequences (as the activity decided them); true for a fraud-class decline. */
    const onDecline = async (paymentMethodId: string, d: DeclineDecision): Promise<boolean> => {
      if (d.do_not_retry && !doNotCharge.includes(paymentMethodId)) doNotCharge.push(paymentMethodId);
      if (d.status) {
        try {
          await ledger.deactivatePaymentMethod({
            payment_method_id: paymentMethodId,
            status: d.status,
            reason: `payment ${f.payment_id} declined: ${d.code}`,
          });
        } catch (err) {
          // The graph refused (the method was removed meanwhile): it is not charged again here either way.
          if (isCancellation(err)) throw err;
          if (!doNotCharge.includes(paymentMethodId)) doNotCharge.push(paymentMethodId);
          log.warn('the declined payment method could not be marked; it is not charged again by this recovery', {
            paymentId: f.payment_id,
            paymentMethodId,
            error: describeFailure(err),
          });
        }
      }
      return d.class === 'fraud_hard';
    };

    /** The recovery ends stopped: at once in the status, then in the ledger (retried until done). */
    const stop = async (reason: string): Promise<RecoveryStatus> => {
      Object.assign(status, { state: 'stopped', next_retry_at: null, next_retry_reason: null, stop_reason: reason });
      countRecovery('stopped');
      log.info(`payment recovery stopped: ${reason}`, { paymentId: f.payment_id, customerId: f.customer_id });
      await recordStopped(reason);
      return status;
    };
    const recordStopped = async (reason: string): Promise<void> => {
      try {
        await CancellationScope.nonCancellable(() =>
          ledger.recordRecoveryStopped({ payment_id: f.payment_id, customer_id: f.customer_id, reason }),
        );
      } catch (err) {
        // Only a refusal a retry cannot fix ends here: the status says stopped all the same.
        log.warn('the stop of a recovery could not be recorded in the charge ledger', {
          paymentId: f.payment_id,
          error: describeFailure(err),
        });
      }
    };

    status.state = 'recovering';
    status.attempts.push({
      payment_method_id: f.payment_method_id,
      outcome: 'declined',
      decline_code: f.decline_code,
      at: now(),
    });
    const begun = await ledger.beginRecovery({ failure: f, exclude: [...doNotCharge] });
    if (!begun.proceed) {
      // A payment is recovered once: an earlier recovery of it ended (the ledger says how).
      Object.assign(status, {
        state: 'stopped',
        stop_reason:
          begun.reason ?? `payment ${f.payment_id} was ${begun.state} by an earlier recovery; it is recovered once`,
      });
      countRecovery('stopped');
      return status;
    }
    if (await onDecline(f.payment_method_id, begun.decline)) {
      // Stopped before the message: a refused message must not leave it looking like it still recovers.
      await stop(`fraud-class decline ${f.decline_code}`);
      await notify('card_compromised', 'card-compromised', { payment_method_id: f.payment_method_id });
      return status;
    }

    /**
     * What became of a charge of unknown outcome, learnt without sending anything again (the
     * recovery was cancelled): its answer when the gateway made it, else `cancelled`.
     */
    const settleUnknown = async (a: ChargeAttempt): Promise<ChargeOutcome | 'cancelled'> => {
      try {
        const settled = await settler.chargePaymentMethod({ ...a, mode: 'settle' });
        unknownCharge = null;
        return settled.outcome === 'succeeded' || settled.outcome === 'declined' ? settled : 'cancelled';
      } catch (err) {
        // Retried without a cap: only a refusal no retry can fix ends here. The ledger keeps the
        // attempt unknown, and the gateway reconciliation compares it with the gateway's records.
        if (isCancellation(err)) throw err;
        log.warn('a charge of unknown outcome could not be settled with the gateway; the recovery stops', {
          paymentId: a.payment_id,
          idempotencyKey: a.idempotency_key,
          error: describeFailure(err),
        });
        return 'cancelled';
      }
    };

    /**
     * A charge. One the gateway refused for good waits for ops (retry or skip); one whose outcome
     * is unknown after every retry waits for ops too, who may only retry it (the same key, the same
     * charge); a cancel then learns its outcome without charging.
     */
    const charge = async (a: ChargeAttempt): Promise<ChargeOutcome | 'skip' | 'cancelled'> => {
      for (;;) {
        try {
          const result = await gateway.chargePaymentMethod(a);
          unknownCharge = null;
          return result;
        } catch (err) {
          if (isCancellation(err)) throw err;
          // Refused, the one request under the key, or nothing sent under it at all (the ledger
          // says so): nothing was charged. Anything else may have charged.
          const type = failureType(err);
          const refused = type === CHARGE_REFUSED || type === CHARGE_NOT_SENT;
          unknownCharge = refused ? null : a;
          const action = await needAttention(
            'charge_failed',
            `the charge of ${a.payment_method_id} could not be made: ${describeFailure(err)}` +
              (refused ? '' : ' (the gateway may have taken it: only a retry, same idempotency key, is safe)'),
            a.payment_method_id,
            refused,
            refused ? null : a.idempotency_key,
          );
          if (action === 'retry') continue;
          if (action === 'skip') return 'skip';
          return unknownCharge ? settleUnknown(a) : 'cancelled';
        }
      }
    };

    /** Records the recovery, retried until done; a write the graph refuses waits for ops. */
    const record = async (rec: Parameters<RecoveryActivities['recordRecovery']>[0]): Promise<void> => {
      for (;;) {
        try {
          return await ledger.recordRecovery(rec);
        } catch (err) {
          if (isCancellation(err)) throw err;
          const action = await needAttention(
            'record_failed',
            `payment ${rec.payment_id} was charged (${rec.charge_id}) ` +
              `but could not be recorded: ${describeFailure(err)}`,
            null,
            // Skip: ops take the recording over by hand (the runbook says how).
            true,
          );
          if (action !== 'retry') return;
        }
      }
    };

    /**
     * A restore lost what this recovery acts on: ops decide before anything more is charged (retry
     * or skip: go on with the graph as it is now; cancel: stop). Asked before every charge, so a
     * signal that arrives mid-cascade stops the next charge too. False when ops cancelled.
     */
    const restoredAndDecided = async (): Promise<boolean> => {
      if (restored === null) return true;
      const reason = restored;
      restored = null;
      return (await needAttention('graph_restored', reason, null, true)) !== 'cancelled';
    };
    /**
     * After a decline the activity said to ask the account updater about (`expired_card`): a card
     * it renewed is active again with its new expiry, and is charged again at once; true then.
     * Best-effort: an updater that cannot be asked leaves the method expired (logged).
     */
    const renewAfterExpiry = async (paymentMethodId: string, d: DeclineDecision): Promise<boolean> => {
      if (!d.ask_updater || renewed.includes(paymentMethodId)) return false;
      try {
        const outcome = await updater.renewCard({ payment_method_id: paymentMethodId });
        if (outcome.outcome !== 'updated') return false;
      } catch (err) {
        if (isCancellation(err)) throw err;
        log.warn('the account updater could not be asked about an expired card; it stays expired', {
          paymentId: f.payment_id,
          paymentMethodId,
          error: describeFailure(err),
        });
        return false;
      }
      if (blocked.includes(paymentMethodId)) return false;
      renewed.push(paymentMethodId);
      doNotCharge.splice(0, doNotCharge.length, ...doNotCharge.filter((m) => m !== paymentMethodId));
      log.info('the account updater renewed an expired card: it is charged again at once', {
        paymentId: f.payment_id,
        paymentMethodId,
      });
      return true;
    };

    /** Why the charges of the current dunning round came when they did (null in the first pass). */
    let scheduledBy: string | null = null;
    /**
     * When the next round may charge: at `scheduledAt`, or later when the networks' rules allow no
     * charge of any candidate before then. A forecast that cannot be had (the graph refused)
     * leaves the schedule as it is: the charge is governed by the rules again when it is made.
     */
    const rulesAllow = async (
      scheduledAt: number,
      scheduled: string,
    ): Promise<{ at: number; why: string; rules: boolean }> => {
      try {
        // Retried a while (graphWrite), not for ever: without a forecast the schedule stands.
        const forecast = await graph.forecastCharges({
          customer_id: f.customer_id,
          exclude: doNotCharge,
          at: new Date().toISOString(),
        });
        const earliest = forecast.earliest === null ? Number.NaN : Date.parse(forecast.earliest);
        if (!(earliest > scheduledAt)) return { at: scheduledAt, why: scheduled, rules: true };
        return {
          at: earliest,
          why: `${scheduled}, moved to when the card networks' rules allow a charge: ${forecast.rule ?? 'a rule'}`,
          rules: true,
        };
      } catch (err) {
        if (isCancellation(err)) throw err;
        log.warn('the card networks’ rules could not be asked when to retry; the schedule stands', {
          paymentId: f.payment_id,
          error: describeFailure(err),
        });
        return { at: scheduledAt, why: scheduled, rules: false };
      }
    };
    /**
     * One pass over the candidates (`listed`: the pass's list, asked already): true when a charge
     * succeeded, 'erased' when the customer is gone, 'ended' when the ledger says the payment's
     * recovery ended.
     */
    const cascade = async (
      round: number,
      exclude: string[],
      listed?: RecoveryCandidate[],
    ): Promise<boolean | 'erased' | 'ended'> => {
      if (!(await restoredAndDecided())) return false;
      const candidates =
        listed ??
        (await ledger.listRecoveryCandidates({
          customer_id: f.customer_id,
          exclude: [...exclude, ...doNotCharge],
        }));
      // A card the account updater renewed goes first; one renewed during this pass comes again at once.
      const queue: (RecoveryCandidate & { renewedRetry?: boolean })[] = [...candidates].sort(
        (x, y) => Number(renewed.includes(y.payment_method_id)) - Number(renewed.includes(x.payment_method_id)),
      );
      for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
        if (cancelled) return false;
        // Blocked while this cascade ran (a confirmed fraud on it): never charged again.
        if (doNotCharge.includes(c.payment_method_id)) continue;
        if (!(await restoredAndDecided())) return false;
        if (cancelled) return false;
        const attempt: ChargeAttempt = {
          payment_id: f.payment_id,
          customer_id: f.customer_id,
          payment_method_id: c.payment_method_id,
          amount: f.amount,
          currency: f.currency,
          idempotency_key:
            (round === 0
              ? `${f.payment_id}:${c.payment_method_id}`
              : `${f.payment_id}:${c.payment_method_id}:r${round}`) +
            // The renewed card's charge is a new one: under the declined charge's key the gateway answers its decline.
            (c.renewedRetry ? ':renewed' : ''),
          // Counted against its card before the charge (an activity input: replay compares none).
          reported: {
            payment_method_id: f.payment_method_id,
            decline_code: f.decline_code,
            ...(f.advice_code ? { advice_code: f.advice_code } : {}),
          },
          at: now(),
        };
        /** What every attempt of a dunning round says of why it came when it did. */
        const why = scheduledBy ? { scheduled_by: scheduledBy } : {};
        // Charge and record are one step a cancellation cannot cut in two: money taken is recorded.
        const result = await CancellationScope.nonCancellable(() => charge(attempt));
        if (result === 'cancelled') return false;
        if (result === 'skip') {
          status.attempts.push({
            payment_method_id: c.payment_method_id,
            outcome: 'skipped',
            decline_code: 'skipped_by_ops',
            at: now(),
            ...why,
          });
          continue;
        }
        if (result.outcome === 'limited') {
          // A card-network rule does not allow this charge now (decided in the graph, per card);
          // the rule is named when the worker governs by the rule table.
          status.attempts.push({
            payment_method_id: c.payment_method_id,
            outcome: 'skipped',
            decline_code: 'network_retry_limit',
            at: now(),
            ...(result.rule ? { rule: result.rule } : {}),
            ...why,
          });
          continue;
        }
        if (result.outcome === 'not_charged') {
          status.attempts.push({
            payment_method_id: c.payment_method_id,
            outcome: 'skipped',
            decline_code: result.reason,
            at: now(),
            ...why,
          });
          if (result.reason === 'customer_erased') return 'erased';
          if (result.reason === 'recovery_ended') return 'ended';
          // Suspended: nothing is charged this round; the next round asks again.
          if (result.reason === 'customer_suspended') return false;
          // Cancelled while its outcome was unknown, and the gateway never made it.
          if (cancelled) return false;
          doNotCharge.push(c.payment_method_id);
          continue;
        }
        if (result.outcome === 'succeeded') {
          // Attempt and method together: a query never sees a success without the method.
          status.attempts.push({
            payment_method_id: c.payment_method_id,
            outcome: 'succeeded',
            decline_code: null,
            at: now(),
            ...why,
          });
          const mechanism = recoveryMechanism(c.payment_method_id, {
            failed: f.payment_method_id,
            renewed: result.renewed_by_updater ? [...renewed, c.payment_method_id] : renewed,
            added,
          });
          Object.assign(status, { recovered_with: c.payment_method_id, recovered_by: mechanism });
          const rec = {
            mechanism,
            payment_id: f.payment_id,
            customer_id: f.customer_id,
            payment_method_id: c.payment_method_id,
            charge_id: result.charge_id,
            amount: f.amount,
            currency: f.currency,
          };
          // The money moved: the customer is told (best effort) while it is recorded, whatever
          // ops decide meanwhile; the recovery ends when both are done (`finish`).
          recoveredNotice = CancellationScope.nonCancellable(() =>
            notify('payment_recovered', 'recovered', { payment_method_id: c.payment_method_id }),
          );
          await CancellationScope.nonCancellable(() => record(rec));
          status.recovered_with = c.payment_method_id;
          return true;
        }
        status.attempts.push({
          payment_method_id: c.payment_method_id,
          outcome: 'declined',
          decline_code: result.decline_code,
          at: now(),
          ...why,
        });
        if (cancelled) {
          // Learnt while stopping: the declined card still takes what its decline decides.
          await CancellationScope.nonCancellable(() => onDecline(c.payment_method_id, result.decision));
          return false;
        }
        await onDecline(c.payment_method_id, result.decision);
        if (!c.renewedRetry && (await renewAfterExpiry(c.payment_method_id, result.decision)))
          queue.unshift({ ...c, renewedRetry: true });
      }
      return false;
    };

    const finish = async (): Promise<RecoveryStatus> => {
      Object.assign(status, { next_retry_at: null, next_retry_reason: null });
      if (status.recovered_with) {
        status.state = 'recovered';
        if (status.recovered_by) countRecoveredBy(status.recovered_by);
        await (recoveredNotice ??
          notify('payment_recovered', 'recovered', { payment_method_id: status.recovered_with }));
      } else if (cancelled) {
        return stop(cancelRequested ? 'workflow cancelled' : `cancelled: ${cancelled}`);
      } else {
        status.state = 'failed';
        try {
          await ledger.recordRecoveryFailed({
            payment_id: f.payment_id,
            customer_id: f.customer_id,
            attempts: status.attempts.length,
            reason: 'all payment methods failed',
          });
        } catch (err) {
          // Retried without a cap: only a refusal no retry can fix ends here (no money moved).
          if (isCancellation(err)) throw err;
          log.warn('the failure of a recovery could not be recorded in the graph', {
            paymentId: f.payment_id,
            error: describeFailure(err),
          });
        }
        await notify('payment_failed', 'failed');
      }
      countRecovery(status.state);
      log.info(`payment recovery ${status.state}`, {
        paymentId: f.payment_id,
        customerId: f.customer_id,
        attempts: status.attempts.length,
        recoveredWith: status.recovered_with,
      });
      return status;
    };
    const ended = async (outcome: boolean | 'erased' | 'ended'): Promise<RecoveryStatus | null> => {
      if (outcome === 'erased') return stop('the customer was erased');
      if (outcome === 'ended') return stop('the charge ledger has this payment’s recovery ended');
      return outcome ? finish() : null;
    };

    // The first cascade skips the method that just failed (unless the account updater renewed it);
    // dunning rounds may retry it.
    const reportedRenewed = await renewAfterExpiry(f.payment_method_id, begun.decline);
    const first = await ended(
      await cascade(0, reportedRenewed ? [] : [f.payment_method_id], reportedRenewed ? undefined : begun.candidates),
    );
    if (first) return first;

    for (let round = 1; round <= input.dunningSchedule.length && !cancelled; round++) {
      const delay = input.dunningSchedule[round - 1] as string;
      const wait = msOf(delay);
      const started = Date.now();
      const scheduled = `dunning round ${round} of ${input.dunningSchedule.length}, ${delay} after the last`;
      // Never earlier than the networks' rules allow a charge of one of the candidates.
      let next = await rulesAllow(started + wait, scheduled);
      // The whole dunning state at once, before the reminder: a query never sees half of it.
      Object.assign(status, {
        state: 'dunning',
        next_retry_at: new Date(next.at).toISOString(),
        next_retry_reason: next.why,
      });
      await notify('dunning_reminder', `reminder-${round}`, { round });
      const woken = () => methodsAdded > methodsAnswered || cancelled !== null || restored !== null;
      for (let recheck = 0; ; recheck++) {
        await condition(woken, Math.max(next.at - Date.now(), 1), {
          summary:
            `Dunning round ${round} of ${input.dunningSchedule.length}: wait until ` +
            `${new Date(next.at).toISOString()} (${next.why}) before retrying (a new payment method retries at once)`,
        });
        if (woken() || recheck >= RULE_RECHECKS || !next.rules) break;
        // The card was charged meanwhile (another recovery of it): the rules may now say later.
        const again = await rulesAllow(Date.now(), scheduled);
        if (again.at <= Date.now()) break;
        next = again;
        Object.assign(status, { next_retry_at: new Date(next.at).toISOString(), next_retry_reason: next.why });
      }
      scheduledBy = methodsAdded > methodsAnswered ? 'a payment method was added: retried at once' : next.why;
      // Every card added so far is answered by this retry; one added during it wakes the next round.
      methodsAnswered = methodsAdded;
      if (cancelled) break;
      Object.assign(status, { state: 'recovering', next_retry_at: null, next_retry_reason: null });
      const answering = methodsAnswered;
      const outcome = await cascade(round, []);
      methodsTried = Math.max(methodsTried, answering);
      const done = await ended(outcome);
      if (done) return done;
    }
    // A card added during the last pass is still answered before the recovery gives up.
    for (let round = input.dunningSchedule.length + 1; methodsAdded > methodsAnswered && !cancelled; round++) {
      methodsAnswered = methodsAdded;
      scheduledBy = 'a payment method was added during the last round: retried at once';
      const answering = methodsAnswered;
      const outcome = await cascade(round, []);
      methodsTried = Math.max(methodsTried, answering);
      const done = await ended(outcome);
      if (done) return done;
    }
    return finish();
  };

  try {
    const result = await main();
    // An offer answered by the last retry returns its answer before the recovery ends (even when
    // a cancellation was asked for meanwhile: this wait must not throw it).
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
    return result;
  } catch (err) {
    // A cancellation (ops in the UI) ends the recovery like `cancel` does, never mid-charge: it
    // surfaces here from a wait between charges (a charge, its settling and its record are
    // non-cancellable, and see the cancel as `cancelled`).
    if (!isCancellation(err)) throw err;
    const f = failure as PaymentFailure | null;
    const ended = RECOVERY_ENDED.includes(status.state);
    // A charge that went through before the cancel was recorded (non-cancellable): it stays recovered.
    const state = status.recovered_with ? 'recovered' : 'stopped';
    if (!ended) {
      Object.assign(status, { state, next_retry_at: null, next_retry_reason: null, attention: null });
      if (state === 'stopped') status.stop_reason = 'workflow cancelled';
      countRecovery(state);
    }
    if (state === 'stopped' && f)
      try {
        await CancellationScope.nonCancellable(() =>
          ledger.recordRecoveryStopped({
            payment_id: f.payment_id,
            customer_id: f.customer_id,
            reason: status.stop_reason ?? 'workflow cancelled',
          }),
        );
      } catch (e) {
        log.warn('the stop of a recovery could not be recorded in the charge ledger', { error: describeFailure(e) });
      }
    log.info(`payment recovery ${status.state}: workflow cancelled`, { workflowId });
    // The root scope is cancelled: waiting for the offers' answers must not be.
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
    return status;
  }
}

/** Duration strings of the dunning schedule: `1d`, `12h`, `30m`, `45s`. */
function msOf(duration: string): number {
  const m = /^(\d+)\s*(d|h|m|s)$/.exec(duration.trim());
  if (!m) throw new Error(`bad duration ${duration}`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 }[m[2] as 'd' | 'h' | 'm' | 's'];
  return Number(m[1]) * unit;
}
