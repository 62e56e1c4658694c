/**
 * Payment recovery — workflow id `payment-recovery-<payment id>`, started by the api, on Synapse's report, with
 * signal-with-start of `paymentFailed` once the api has reserved the payment's recovery in the
 * charge ledger (a payment is recovered once, ever: graph/chargeLedger.ts).
 *
 * One `PaymentRecovery` holds the state; its handlers are registered once, in the constructor,
 * and only record what they were told (Temporal's safe-message-handlers idiom); `run` moves the
 * recovery from state to state, one method per step:
 *
 *   waiting ──paymentFailed──▶ recovering (`begin`: the ledger, the reported decline)
 *     fraud-class hard decline → deactivate the method (compromised), tell the customer: stopped.
 *     other hard decline       → deactivate it (expired_card → expired, the updater asked), then:
 *   recovering  `cascade`: each other active, unexpired method — used on a trusted device first,
 *               then most recently used — is `charge`d (idempotency key `<payment id>:<method id>`,
 *               dunning rounds append `:r<round>`) until one succeeds: `recordCharge`, recovered.
 *   dunning     `dunningRound`: a reminder, then a wait on the schedule (never before the networks'
 *               rules allow a charge); a new payment method, a stop or a restore wakes it early.
 *   needs_attention  `askForAttention`: something a retry by Temporal could not fix waits for ops
 *               (`resolveAttention` retry/skip, the batch `retryAttention`), with a deadline past
 *               which it is counted overdue and alerts.
 *   recovered | failed | stopped  `finish` / `stop`: recorded in the ledger, the customer told.
 *
 * What a decline is, and everything else a business table decides, is decided by the activities
 * and recorded in this history: this code only branches on recorded answers. Card-network rules:
 * never a method again after a do-not-retry decline in this recovery; every charge governed per
 * card by the networks' rule table (activities/recovery.ts).
 *
 * Money moves once. Every charge is in the ledger before the gateway is called, and a charge whose
 * outcome is unknown (no answer, a 5xx, a 409 "in flight") is sticky: its activity is retried under
 * the same key for hours (PERSONA_CHARGE_RETRY_HOURS), then the recovery waits in `needs_attention`
 * (charge_unknown) where ops may only `retry` — never `skip` — and nothing else is charged.
 *
 * Stopping. Three parties may stop a recovery, each at a safe point only — never between a charge
 * and its record:
 *   - ops and the erasure, with the `cancel` Update, which the workflow refuses while a charge is
 *     being made or its outcome is unknown, and while a charge is being recorded (the reason says
 *     which; the erasure asks again until it is taken);
 *   - the payment's owner, with `paymentNoLongerOwed`, taken whatever the recovery is doing and
 *     applied at the next safe point: a charge of unknown outcome is first settled with the
 *     gateway (nothing sent again), and a charge that went through is answered, never hidden;
 *   - a cancellation request (the Temporal UI), which stops it like the owner's word.
 *
 * It never ends Failed: notifications are best-effort; the graph decides right before each charge
 * whether it may happen (a suspended customer is not charged this round, an erased one never);
 * after money moved, the recording is retried until it is done.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  upsertSearchAttributes,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { ChargeAttempt, ChargeOutcome, RecoveryActivities } from '../activities/recovery';
import type { RecoveryCandidate } from '../graph/recovery';
import type { DeclineDecision } from '../payments/declines';
import { describeFailure } from '../temporal/failures';
import {
  CHARGE_NOT_SENT,
  CHARGE_REFUSED,
  DEFAULT_CHARGE_RETRY_FOR,
  type RecoveryInput,
  type RecoveryStatus,
} from '../temporal/recovery';
import { personaOverdue } from '../temporal/searchAttributes';
import { chargingGateway, graph, ledger, settler, updater } from './recoveryActivities';
import { RecoveryRun, now } from './recoveryState';
import { registerHandlers } from './recoveryHandlers';
import { RecoveryAttention } from './recoveryAttention';
import { RecoveryEnding } from './recoveryEnding';
import { countRecovery, countRecoveryChargeUnsettled } from './metrics';
import { recoveryMechanism } from '../payments/mechanisms';
import { autoUpgrade } from './versioning';
import { msOf } from './durations';

/** How often a round asks the rules again after its wait before it charges anyway (governed then). */
const RULE_RECHECKS = 3;

/** Why the activity failed: the ApplicationFailure type it threw, if any. */
function failureType(err: unknown): string | null {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? null) : null;
}

/** How a pass over the candidates ended. */
type CascadeEnd =
  /** A charge succeeded and is recorded. */
  | 'recovered'
  /** No charge succeeded (every one declined or was skipped, the customer is suspended, or a stop came). */
  | 'not_recovered'
  /** The customer was erased: nothing may be charged, ever. */
  | 'erased'
  /** The charge ledger has the payment's recovery ended (another run of it finished it). */
  | 'ended';

/** A candidate of a pass; `renewedRetry` when the account updater renewed it in this pass and it comes again. */
type Candidate = RecoveryCandidate & { renewedRetry?: boolean };

autoUpgrade(paymentRecoveryWorkflow);
export async function paymentRecoveryWorkflow(input: RecoveryInput): Promise<RecoveryStatus> {
  return new PaymentRecovery(input).runToEnd();
}

/** One payment's recovery: what moves it on (`runToEnd` and its steps), over its state (`RecoveryRun`). */
class PaymentRecovery {
  private readonly run: RecoveryRun;
  private readonly attention: RecoveryAttention;
  private readonly ending: RecoveryEnding;
  private readonly gateway: Pick<RecoveryActivities, 'chargePaymentMethod'>;

  constructor(input: RecoveryInput) {
    this.run = new RecoveryRun(input);
    this.attention = new RecoveryAttention(this.run);
    this.ending = new RecoveryEnding(this.run);
    this.gateway = chargingGateway(input.chargeRetryFor ?? DEFAULT_CHARGE_RETRY_FOR);
    registerHandlers(this.run);
  }

  // ── The run ──────────────────────────────────────────────────────────────────────────────────

  async runToEnd(): Promise<RecoveryStatus> {
    try {
      await this.recover();
    } catch (err) {
      // A cancellation request surfaces here from a wait between charges (a charge, its settling
      // and its record are non-cancellable, and see it as a stop request).
      if (!isCancellation(err)) throw err;
      await CancellationScope.nonCancellable(() => this.ending.endCancelled());
    }
    this.run.over = true;
    // Offers and stops answered by the end return their answers before the run closes.
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
    return this.run.status;
  }

  /** From the reported failure to the end: the first pass, the dunning rounds, the last retries. */
  private async recover(): Promise<void> {
    await condition(() => this.run.failure !== null);
    const f = this.run.reported;
    const begun = await this.begin();
    if (!begun) return;
    // The first pass skips the method that just failed (unless the account updater renewed it);
    // dunning rounds may retry it.
    const reportedRenewed = await this.renewAfterExpiry(f.payment_method_id, begun.decline);
    let outcome = await this.cascade(
      0,
      reportedRenewed ? [] : [f.payment_method_id],
      reportedRenewed ? undefined : begun.candidates,
    );
    const rounds = this.run.input.dunningSchedule.length;
    for (let round = 1; outcome === 'not_recovered' && !this.run.stopping && round <= rounds; round++)
      outcome = await this.dunningRound(round);
    // A card added during the last pass is still answered before the recovery gives up.
    for (let round = rounds + 1; outcome === 'not_recovered' && this.run.cardWaiting && !this.run.stopping; round++)
      outcome = await this.retryPass(round, 'a payment method was added during the last round: retried at once');
    if (outcome === 'erased') await this.ending.stop('the customer was erased');
    else if (outcome === 'ended') await this.ending.stop('the charge ledger has this payment’s recovery ended');
    else await this.ending.finish();
  }

  /**
   * recovering: the ledger marks the recovery started and decides what the reported decline
   * means. Null when it ends here: an earlier recovery of the payment ended, or a fraud-class
   * decline stops it.
   */
  private async begin() {
    const f = this.run.reported;
    this.run.moveTo('recovering');
    this.run.status.attempts.push({
      payment_method_id: f.payment_method_id,
      outcome: 'declined',
      decline_code: f.decline_code,
      at: now(),
    });
    const begun = await ledger.beginRecovery({ failure: f, exclude: [...this.run.doNotCharge] });
    if (!begun.proceed) {
      // A payment is recovered once: an earlier recovery of it ended (the ledger says how).
      this.run.moveTo('stopped', {
        stop_reason:
          begun.reason ?? `payment ${f.payment_id} was ${begun.state} by an earlier recovery; it is recovered once`,
      });
      countRecovery('stopped');
      return null;
    }
    if (await this.onDecline(f.payment_method_id, begun.decline)) {
      // Stopped before the message: a refused message must not leave it looking like it still recovers.
      await this.ending.stop(`fraud-class decline ${f.decline_code}`);
      await this.ending.notify('card_compromised', 'card-compromised', { payment_method_id: f.payment_method_id });
      return null;
    }
    return begun;
  }

  /**
   * dunning: a reminder, then the schedule's wait — never earlier than the networks' rules allow
   * a charge of one of the candidates — then a pass. A card added, a stop or a restore wakes it.
   */
  private async dunningRound(round: number): Promise<CascadeEnd> {
    const schedule = this.run.input.dunningSchedule;
    const delay = schedule[round - 1] as string;
    const started = Date.now();
    const scheduled = `dunning round ${round} of ${schedule.length}, ${delay} after the last`;
    let next = await this.rulesAllow(started + msOf(delay, `dunningSchedule[${round - 1}]`), scheduled);
    // The whole dunning state at once, before the reminder: a query never sees half of it.
    this.run.moveTo('dunning', { next_retry_at: new Date(next.at).toISOString(), next_retry_reason: next.why });
    await this.ending.notify('dunning_reminder', `reminder-${round}`, { round });
    const woken = () => this.run.cardWaiting || this.run.stopping || this.run.restored !== null;
    for (let recheck = 0; ; recheck++) {
      await condition(woken, Math.max(next.at - Date.now(), 1), {
        summary:
          `Dunning round ${round} of ${schedule.length}: wait until ` +
          `${new Date(next.at).toISOString()} (${next.why}) before retrying (a new payment method retries at once)`,
      });
      if (woken() || recheck >= RULE_RECHECKS || !next.rules) break;
      // The card was charged meanwhile (another recovery of it): the rules may now say later.
      const again = await this.rulesAllow(Date.now(), scheduled);
      if (again.at <= Date.now()) break;
      next = again;
      this.run.moveTo('dunning', { next_retry_at: new Date(next.at).toISOString(), next_retry_reason: next.why });
    }
    if (this.run.stopping) return 'not_recovered';
    return this.retryPass(round, this.run.cardWaiting ? 'a payment method was added: retried at once' : next.why);
  }

  /**
   * recovering: the pass of a dunning round (or one for a card added after the last); it answers
   * every card added so far.
   */
  private async retryPass(round: number, scheduledBy: string): Promise<CascadeEnd> {
    this.run.scheduledBy = scheduledBy;
    this.run.methodsTaken = this.run.methodsAdded;
    const answering = this.run.methodsTaken;
    this.run.moveTo('recovering', { next_retry_at: null, next_retry_reason: null });
    const outcome = await this.cascade(round, []);
    this.run.methodsAnswered = Math.max(this.run.methodsAnswered, answering);
    return outcome;
  }

  /**
   * recovering: one pass over the candidates (`listed`: the pass's list, asked already), each
   * charged until one succeeds. A card the account updater renewed goes first; one renewed during
   * this pass comes again at once.
   */
  private async cascade(round: number, exclude: string[], listed?: RecoveryCandidate[]): Promise<CascadeEnd> {
    const f = this.run.reported;
    if (!(await this.attention.restoredAndDecided())) return 'not_recovered';
    const candidates =
      listed ??
      (await ledger.listRecoveryCandidates({
        customer_id: f.customer_id,
        exclude: [...exclude, ...this.run.doNotCharge],
      }));
    const queue: Candidate[] = [...candidates].sort(
      (x, y) =>
        Number(this.run.renewed.includes(y.payment_method_id)) - Number(this.run.renewed.includes(x.payment_method_id)),
    );
    for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
      if (this.run.stopping) return 'not_recovered';
      // Blocked while this pass ran (a confirmed fraud on it): never charged again.
      if (this.run.doNotCharge.includes(c.payment_method_id)) continue;
      if (!(await this.attention.restoredAndDecided()) || this.run.stopping) return 'not_recovered';
      const attempt = this.attemptOf(c, round);
      // Charge and record are one step a cancellation cannot cut in two: money taken is recorded.
      const result = await CancellationScope.nonCancellable(() => this.charge(attempt));
      if (result === 'stopped') return 'not_recovered';
      if (result === 'skip') {
        this.run.attempted(c.payment_method_id, 'skipped', 'skipped_by_ops');
        continue;
      }
      if (result.outcome === 'limited') {
        // A card-network rule does not allow this charge now (decided in the graph, per card).
        this.run.attempted(
          c.payment_method_id,
          'skipped',
          'network_retry_limit',
          result.rule ? { rule: result.rule } : {},
        );
        continue;
      }
      if (result.outcome === 'not_charged') {
        this.run.attempted(c.payment_method_id, 'skipped', result.reason);
        if (result.reason === 'customer_erased') return 'erased';
        if (result.reason === 'recovery_ended') return 'ended';
        // Suspended: nothing is charged this round; the next round asks again.
        if (result.reason === 'customer_suspended') return 'not_recovered';
        // Not charged, and a stop came meanwhile: nothing more.
        if (this.run.stopping) return 'not_recovered';
        this.run.neverAgain(c.payment_method_id);
        continue;
      }
      if (result.outcome === 'succeeded') {
        await CancellationScope.nonCancellable(() => this.recordCharge(c.payment_method_id, result));
        return 'recovered';
      }
      this.run.attempted(c.payment_method_id, 'declined', result.decline_code);
      if (this.run.stopping) {
        // Learnt while stopping: the declined card still takes what its decline decides.
        await CancellationScope.nonCancellable(() => this.onDecline(c.payment_method_id, result.decision));
        return 'not_recovered';
      }
      await this.onDecline(c.payment_method_id, result.decision);
      if (!c.renewedRetry && (await this.renewAfterExpiry(c.payment_method_id, result.decision)))
        queue.unshift({ ...c, renewedRetry: true });
    }
    return 'not_recovered';
  }

  /** The charge of candidate `c` in the pass of `round` (0: the first pass), under its idempotency key. */
  private attemptOf(c: Candidate, round: number): ChargeAttempt {
    const f = this.run.reported;
    return {
      payment_id: f.payment_id,
      customer_id: f.customer_id,
      payment_method_id: c.payment_method_id,
      amount: f.amount,
      currency: f.currency,
      idempotency_key:
        (round === 0 ? `${f.payment_id}:${c.payment_method_id}` : `${f.payment_id}:${c.payment_method_id}:r${round}`) +
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
  }

  /**
   * A charge. One the gateway refused for good waits for ops (retry or skip: charge_refused); one
   * whose outcome is unknown after every retry waits for ops too (charge_unknown), who may only
   * retry it (the same key, the same charge); a stop then learns its outcome without charging.
   */
  private async charge(a: ChargeAttempt): Promise<ChargeOutcome | 'skip' | 'stopped'> {
    for (;;) {
      let failed: unknown;
      try {
        return await this.whileInFlight(a, () => this.gateway.chargePaymentMethod(a));
      } catch (err) {
        if (isCancellation(err)) throw err;
        failed = err;
      }
      // Refused, the one request under the key, or nothing sent under it at all (the ledger says
      // so): nothing was charged. Anything else may have charged.
      const type = failureType(failed);
      const refused = type === CHARGE_REFUSED || type === CHARGE_NOT_SENT;
      const action = await this.attention.askForAttention(
        refused ? 'charge_refused' : 'charge_unknown',
        `the charge of ${a.payment_method_id} could not be made: ${describeFailure(failed)}` +
          (refused ? '' : ' (the gateway may have taken it: only a retry, same idempotency key, is safe)'),
        {
          payment_method_id: a.payment_method_id,
          skippable: refused,
          unknown_charge: refused ? null : a.idempotency_key,
        },
      );
      if (action === 'retry') continue;
      if (action === 'skip') return 'skip';
      return refused ? 'stopped' : this.settle(a);
    }
  }

  /**
   * What became of a charge of unknown outcome, learnt without sending anything again (the
   * recovery is stopping): its answer when the gateway made it, else `stopped`. Asked until the
   * gateway answers; past `settleFor` the settling is overdue — counted, logged at ERROR, listed by
   * `PersonaOverdue = 'charge_settle'` — and asks on. Refused for good (no retry can fix it), the
   * recovery stops with the charge still unknown, counted and named in its stop reason: ops look it
   * up at the gateway (runbook, PersonaRecoveryChargeUnsettled).
   */
  private async settle(a: ChargeAttempt): Promise<ChargeOutcome | 'stopped'> {
    this.run.unsettled = a.idempotency_key;
    let answered = false;
    const asking = this.whileInFlight(a, () => settler.chargePaymentMethod({ ...a, mode: 'settle' })).finally(
      () => void (answered = true),
    );
    const summary = `Ask the gateway about the charge under ${a.idempotency_key}: overdue after the settle deadline`;
    const overdue = !(await condition(() => answered, this.run.settleMs, { summary }));
    if (overdue) {
      countRecoveryChargeUnsettled('overdue');
      upsertSearchAttributes([{ key: personaOverdue, value: 'charge_settle' }]);
      log.error('a stopping recovery has asked the gateway about a charge of unknown outcome past its deadline', {
        paymentId: a.payment_id,
        idempotencyKey: a.idempotency_key,
      });
    }
    try {
      const settled = await asking;
      this.run.unsettled = null;
      return settled.outcome === 'succeeded' || settled.outcome === 'declined' ? settled : 'stopped';
    } catch (err) {
      if (isCancellation(err)) throw err;
      countRecoveryChargeUnsettled('refused');
      log.error('a charge of unknown outcome could not be settled with the gateway; the recovery stops', {
        paymentId: a.payment_id,
        idempotencyKey: a.idempotency_key,
        error: describeFailure(err),
      });
      return 'stopped';
    } finally {
      if (overdue) upsertSearchAttributes([{ key: personaOverdue, value: null }]);
    }
  }

  /**
   * The money moved: the customer is told (best effort) while it is recorded, retried until done;
   * a write the graph refuses waits for ops (record_failed), whatever anyone asks meanwhile.
   */
  private async recordCharge(
    paymentMethodId: string,
    result: Extract<ChargeOutcome, { outcome: 'succeeded' }>,
  ): Promise<void> {
    const f = this.run.reported;
    const mechanism = recoveryMechanism(paymentMethodId, {
      failed: f.payment_method_id,
      renewed: result.renewed_by_updater ? [...this.run.renewed, paymentMethodId] : this.run.renewed,
      added: this.run.added,
    });
    // Attempt and method together: a query never sees a success without the method.
    this.run.attempted(paymentMethodId, 'succeeded', null);
    Object.assign(this.run.status, { recovered_with: paymentMethodId, recovered_by: mechanism });
    this.run.charged = {
      payment_method_id: paymentMethodId,
      charge_id: result.charge_id,
      amount: f.amount,
      currency: f.currency,
    };
    this.run.recoveredNotice = this.ending.notify('payment_recovered', 'recovered', {
      payment_method_id: paymentMethodId,
    });
    const rec = {
      mechanism,
      payment_id: f.payment_id,
      customer_id: f.customer_id,
      payment_method_id: paymentMethodId,
      charge_id: result.charge_id,
      amount: f.amount,
      currency: f.currency,
    };
    for (;;) {
      try {
        await ledger.recordRecovery(rec);
        return;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const action = await this.attention.askForAttention(
          'record_failed',
          `payment ${rec.payment_id} was charged (${rec.charge_id}) but could not be recorded: ${describeFailure(err)}`,
          // Skip: ops take the recording over by hand (the runbook says how).
          { payment_method_id: null, skippable: true, unknown_charge: null },
        );
        if (action !== 'retry') return;
      }
    }
  }

  /** Applies a decline's consequences (as the activity decided them); true for a fraud-class decline. */
  private async onDecline(paymentMethodId: string, d: DeclineDecision): Promise<boolean> {
    if (d.do_not_retry) this.run.neverAgain(paymentMethodId);
    if (d.status) {
      try {
        await ledger.deactivatePaymentMethod({
          payment_method_id: paymentMethodId,
          status: d.status,
          reason: `payment ${this.run.reported.payment_id} declined: ${d.code}`,
        });
      } catch (err) {
        // The graph refused (the method was removed meanwhile): it is not charged again here either way.
        if (isCancellation(err)) throw err;
        this.run.neverAgain(paymentMethodId);
        log.warn('the declined payment method could not be marked; it is not charged again by this recovery', {
          paymentId: this.run.reported.payment_id,
          paymentMethodId,
          error: describeFailure(err),
        });
      }
    }
    return d.class === 'fraud_hard';
  }

  /**
   * After a decline the activity said to ask the account updater about (`expired_card`): a card
   * it renewed is active again with its new expiry, and is charged again at once; true then.
   * Best-effort: an updater that cannot be asked leaves the method expired (logged).
   */
  private async renewAfterExpiry(paymentMethodId: string, d: DeclineDecision): Promise<boolean> {
    if (!d.ask_updater || this.run.renewed.includes(paymentMethodId)) return false;
    try {
      const outcome = await updater.renewCard({ payment_method_id: paymentMethodId });
      if (outcome.outcome !== 'updated') return false;
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn('the account updater could not be asked about an expired card; it stays expired', {
        paymentId: this.run.reported.payment_id,
        paymentMethodId,
        error: describeFailure(err),
      });
      return false;
    }
    if (this.run.blocked.includes(paymentMethodId)) return false;
    this.run.renewed.push(paymentMethodId);
    this.run.doNotCharge.splice(
      0,
      this.run.doNotCharge.length,
      ...this.run.doNotCharge.filter((m) => m !== paymentMethodId),
    );
    log.info('the account updater renewed an expired card: it is charged again at once', {
      paymentId: this.run.reported.payment_id,
      paymentMethodId,
    });
    return true;
  }

  /**
   * When the next round may charge: at `scheduledAt`, or later when the networks' rules allow no
   * charge of any candidate before then. A forecast that cannot be had (the graph refused)
   * leaves the schedule as it is: the charge is governed by the rules again when it is made.
   */
  private async rulesAllow(
    scheduledAt: number,
    scheduled: string,
  ): Promise<{ at: number; why: string; rules: boolean }> {
    try {
      // Retried a while (graphWrite), not for ever: without a forecast the schedule stands.
      const forecast = await graph.forecastCharges({
        customer_id: this.run.reported.customer_id,
        exclude: this.run.doNotCharge,
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
        paymentId: this.run.reported.payment_id,
        error: describeFailure(err),
      });
      return { at: scheduledAt, why: scheduled, rules: false };
    }
  }

  // ── Small steps ──────────────────────────────────────────────────────────────────────────────

  /** A charge's activity, with the charge marked in flight meanwhile (a `cancel` waits for it). */
  private async whileInFlight<T>(a: ChargeAttempt, call: () => Promise<T>): Promise<T> {
    this.run.inFlight = a;
    try {
      return await call();
    } finally {
      this.run.inFlight = null;
    }
  }
}
