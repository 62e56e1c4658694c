/**
 * Payment recovery — workflow id `payment-recovery-<payment id>`, started by the api, on Synapse's report, with
 * signal-with-start of `paymentFailed` once the api has reserved the payment's recovery in the
 * charge ledger (a payment is recovered once, ever: graph/chargeLedger.ts).
 *
 * `PaymentRecovery`, here, moves the recovery from state to state, one method per step from
 * `runToEnd` down. The steps it calls live beside it, one concern per module, all over one state:
 *   workflows/recoveryState.ts       `RecoveryRun`: the state, shared; `moveTo` changes it at once
 *   workflows/recoveryHandlers.ts    the handlers, registered once, in the constructor: they only record
 *                                    what they were told (Temporal's safe-message-handlers idiom)
 *   workflows/recoveryCharging.ts    `cascade`, `charge`, `recordCharge`, what a decline does
 *   workflows/recoverySettling.ts    a stop on the money side: `fence` (the ledger told), `settle`
 *   workflows/recoveryAttention.ts   `askForAttention`: what waits for ops
 *   workflows/recoveryEnding.ts      `finish`, `stop`, the end of a cancelled run, `notify`
 *   workflows/recoveryActivities.ts  the activities, with their options and summaries
 * Calls go one way: the run calls the steps; charging asks attention, ending and settling; none calls back.
 *
 * The states, and the steps that move the recovery on:
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
 * (charge_unknown) where ops may only `retry` — never `skip` — and nothing else is charged. One
 * charge per payment is the ledger's rule, not this run's: a new key is refused while another
 * attempt of the payment is open, and the charge resolves that one first — so a reset, a second
 * run or a run started after a terminate charges at most once; a run that finds the ledger ended
 * ends as the ledger says.
 *
 * Stopping. A stop is a stop: the payment's owner (`paymentNoLongerOwed`), ops and the erasure
 * (`cancel`), and a cancellation request (the Temporal UI) are taken whatever the recovery is
 * doing. The api and the erasure write the stop to the charge ledger before they send it (this
 * run writes one that came another way), and from then on no request for the payment goes to the
 * gateway: the charge in flight only asks what became of its request, and a charge that went
 * through is recorded and answered, never hidden; an attempt of the payment still open (an earlier
 * run's) is settled — asked by key or by reference, never sent again — before the run stops. Never between a
 * charge and its record: a charge that succeeded is recorded whatever is asked meanwhile.
 *
 * It never ends Failed: notifications are best-effort; the graph decides right before each charge
 * whether it may happen (a suspended customer is not charged this round, an erased one never);
 * after money moved, the recording is retried until it is done.
 */
import { allHandlersFinished, CancellationScope, condition, isCancellation, log } from '@temporalio/workflow';
import { describeFailure } from '../temporal/failures';
import type { RecoveryInput, RecoveryStatus } from '../temporal/recovery';
import { msOf } from './durations';
import { countRecovery } from './metrics';
import { graph, ledger } from './recoveryActivities';
import { RecoveryAttention } from './recoveryAttention';
import { RecoveryCharging, type CascadeEnd } from './recoveryCharging';
import { RecoveryEnding } from './recoveryEnding';
import { RecoverySettling } from './recoverySettling';
import { registerHandlers } from './recoveryHandlers';
import { ended } from './recoveryUpdates';
import { now, RecoveryRun } from './recoveryState';
import { autoUpgrade } from './versioning';

/** How often a round asks the rules again after its wait before it charges anyway (governed then). */
const RULE_RECHECKS = 3;

autoUpgrade(paymentRecoveryWorkflow);
export async function paymentRecoveryWorkflow(input: RecoveryInput): Promise<RecoveryStatus> {
  return new PaymentRecovery(input).runToEnd();
}

/** One payment's recovery: what moves it on (`runToEnd` and its steps), over its state (`RecoveryRun`). */
class PaymentRecovery {
  private readonly run: RecoveryRun;
  private readonly attention: RecoveryAttention;
  private readonly ending: RecoveryEnding;
  private readonly charging: RecoveryCharging;
  private readonly settling: RecoverySettling;

  constructor(input: RecoveryInput) {
    this.run = new RecoveryRun(input);
    this.attention = new RecoveryAttention(this.run);
    this.ending = new RecoveryEnding(this.run);
    this.settling = new RecoverySettling(this.run);
    this.charging = new RecoveryCharging(this.run, this.attention, this.ending, this.settling);
    registerHandlers(this.run);
  }

  // ── The run ──────────────────────────────────────────────────────────────────────────────────

  async runToEnd(): Promise<RecoveryStatus> {
    // A stop taken by a handler is written to the charge ledger at once, whatever the run is doing
    // (a charge it waits on sends nothing more from then on): the api wrote it already; a stop sent
    // by hand or a cancellation request is written here.
    void CancellationScope.nonCancellable(async () => {
      await condition(() => this.run.stopping && this.run.failure !== null);
      await this.settling.fence();
    });
    try {
      await this.recover();
    } catch (err) {
      // A cancellation request surfaces here from a wait between charges (a charge, its settling
      // and its record are non-cancellable, and see it as a stop request).
      if (!isCancellation(err)) throw err;
      await CancellationScope.nonCancellable(async () => {
        // A charge of the payment still open is settled first, never hidden (as any stop does).
        if (this.run.failure && !ended(this.run.asIs)) await this.charging.settleBeforeStop();
        await this.ending.endCancelled();
      });
    }
    this.run.over = true;
    // A stop's write to the ledger is over before the run closes (never left running behind it).
    if (this.run.stopping) await CancellationScope.nonCancellable(() => this.settling.fence());
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
    const reportedRenewed = await this.charging.renewAfterExpiry(f.payment_method_id, begun.decline);
    let outcome = await this.charging.cascade(
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
    else if (outcome === 'ended') this.ending.asTheLedgerSays(this.run.ledgerEnd);
    else {
      // Stopping or failing: a charge of the payment still open (an earlier run's, reset or
      // terminated) is settled first, never hidden: one that went through recovers the payment.
      if (outcome !== 'recovered') await CancellationScope.nonCancellable(() => this.charging.settleBeforeStop());
      await this.ending.finish();
    }
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
      // A payment is recovered once: an earlier recovery of it ended, and this run ends as it did.
      if (begun.ended) this.ending.asTheLedgerSays(begun.ended);
      else {
        this.run.moveTo('stopped', { stop_reason: begun.reason ?? `payment ${f.payment_id} cannot be recovered` });
        countRecovery('stopped');
      }
      return null;
    }
    // A stop was asked of the ledger before this run began (a run started again after one).
    if (begun.stop_request !== undefined)
      this.run.stopRequest ??= { by: 'ledger', reason: begun.stop_request ?? 'a stop was requested' };
    if (await this.charging.onDecline(f.payment_method_id, begun.decline)) {
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

  /**
   * recovering: the pass of a dunning round (or one for a card added after the last); it answers
   * every card added so far.
   */
  private async retryPass(round: number, scheduledBy: string): Promise<CascadeEnd> {
    this.run.scheduledBy = scheduledBy;
    this.run.methodsTaken = this.run.methodsAdded;
    const answering = this.run.methodsTaken;
    this.run.moveTo('recovering', { next_retry_at: null, next_retry_reason: null });
    const outcome = await this.charging.cascade(round, []);
    this.run.methodsAnswered = Math.max(this.run.methodsAnswered, answering);
    return outcome;
  }
}
