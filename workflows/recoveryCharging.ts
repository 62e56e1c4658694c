/**
 * A payment recovery's charges: a pass over the candidates (`cascade`), each `charge` under its
 * idempotency key, sticky while its outcome is unknown, and `settle`d with the gateway when a stop
 * comes (workflows/recoverySettling.ts); the record of the one that went through (`recordCharge`);
 * what a decline does to its method (`onDecline`, `renewAfterExpiry`). What needs ops goes to
 * workflows/recoveryAttention.ts.
 */
import { ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, log } from '@temporalio/workflow';
import type { ChargeAttempt, ChargeOutcome, RecoveryActivities } from '../activities/recovery';
import type { RecoveryCandidate } from '../graph/recovery';
import type { DeclineDecision } from '../payments/declines';
import { recoveryMechanism } from '../payments/mechanisms';
import { describeFailure } from '../temporal/failures';
import { CHARGE_NOT_SENT, CHARGE_REFUSED, DEFAULT_CHARGE_RETRY_FOR } from '../temporal/recovery';
import { chargingGateway, ledger, updater } from './recoveryActivities';
import type { RecoveryAttention } from './recoveryAttention';
import type { RecoveryEnding } from './recoveryEnding';
import { failureKey, type RecoverySettling } from './recoverySettling';
import { now, type RecoveryRun } from './recoveryState';

/** Why the activity failed: the ApplicationFailure type it threw, if any. */
function failureType(err: unknown): string | null {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? null) : null;
}

/** How a pass over the candidates ended. */
export type CascadeEnd =
  /** A charge succeeded and is recorded. */
  | 'recovered'
  /** No charge succeeded (every one declined or was skipped, the customer is suspended, or a stop came). */
  | 'not_recovered'
  /** The customer was erased: nothing may be charged, ever. */
  | 'erased'
  /** The charge ledger has the payment's recovery ended (another run of it finished it: `run.ledgerEnd`). */
  | 'ended';

/** A candidate of a pass; `renewedRetry` when the account updater renewed it in this pass and it comes again. */
type Candidate = RecoveryCandidate & { renewedRetry?: boolean };

/** Charges on the run's behalf; asks ops through `attention`, tells the customer through `ending`. */
export class RecoveryCharging {
  private readonly gateway: Pick<RecoveryActivities, 'chargePaymentMethod'>;

  constructor(
    private readonly run: RecoveryRun,
    private readonly attention: RecoveryAttention,
    private readonly ending: RecoveryEnding,
    private readonly settling: RecoverySettling,
  ) {
    this.gateway = chargingGateway(run.input.chargeRetryFor ?? DEFAULT_CHARGE_RETRY_FOR);
  }

  /**
   * recovering: one pass over the candidates (`listed`: the pass's list, asked already), each
   * charged until one succeeds. A card the account updater renewed goes first; one renewed during
   * this pass comes again at once.
   */
  async cascade(round: number, exclude: string[], listed?: RecoveryCandidate[]): Promise<CascadeEnd> {
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
        if (result.reason === 'recovery_ended') {
          this.run.ledgerEnd = result.ended ?? null;
          return 'ended';
        }
        // Suspended: nothing is charged this round; the next round asks again.
        if (result.reason === 'customer_suspended') return 'not_recovered';
        // Not charged, and a stop came meanwhile: nothing more.
        if (this.run.stopping) return 'not_recovered';
        this.run.neverAgain(c.payment_method_id);
        continue;
      }
      if (result.outcome === 'succeeded') {
        // One charge per payment: the success may be another attempt's (an earlier run's), on its method.
        const charged = result.other_attempt?.payment_method_id ?? c.payment_method_id;
        await CancellationScope.nonCancellable(() => this.recordCharge(charged, result));
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
   * A charge. One the gateway refused for good waits for ops (retry or skip: charge_refused) — a
   * retry is a new request under a key of its own (`:retry<n>`), since the refused one charged
   * nothing and is never sent again; one whose outcome is unknown after every retry waits for ops
   * too (charge_unknown), who may only retry it (the same key, the same charge). A stop taken while
   * the charge runs does not cut it short: the ledger, told of the stop (`fence`), lets it send
   * nothing more, so its next attempt only asks the gateway what became of the request in flight,
   * and answers that; a charge the ledger refused because a stop was asked of it is `settle`d.
   */
  private async charge(first: ChargeAttempt): Promise<ChargeOutcome | 'skip' | 'stopped'> {
    let a = first;
    for (let tries = 1; ; tries++) {
      if (this.run.stopping) return this.settling.settle(a);
      let failed: unknown;
      try {
        const charged = await this.gateway.chargePaymentMethod(a);
        if (charged.outcome === 'not_charged' && charged.reason === 'stop_requested') {
          // Asked of the ledger before this run heard of it (the api writes it first).
          this.run.stopRequest ??= { by: 'ledger', reason: charged.stop_request ?? 'a stop was requested' };
          return this.settling.settle(a);
        }
        return charged;
      } catch (err) {
        if (isCancellation(err)) throw err;
        failed = err;
      }
      // Refused, the one request under the key, or nothing sent under it at all (the ledger says
      // so): nothing was charged. Anything else may have charged.
      const type = failureType(failed);
      const refused = type === CHARGE_REFUSED || type === CHARGE_NOT_SENT;
      const unknownKey = failureKey(failed) ?? a.idempotency_key;
      const action = await this.attention.askForAttention(
        refused ? 'charge_refused' : 'charge_unknown',
        `the charge of ${a.payment_method_id} could not be made: ${describeFailure(failed)}` +
          (refused ? '' : ' (the gateway may have taken it: only a retry, same idempotency key, is safe)'),
        {
          payment_method_id: a.payment_method_id,
          skippable: refused,
          unknown_charge: refused ? null : unknownKey,
        },
      );
      if (action === 'retry') {
        if (type === CHARGE_REFUSED)
          a = { ...first, idempotency_key: `${first.idempotency_key}:retry${tries}`, at: now() };
        continue;
      }
      if (action === 'skip') return 'skip';
      return refused ? 'stopped' : this.settling.settle(a);
    }
  }

  /**
   * Before a stopping recovery ends: any attempt of the payment still open (an earlier run's,
   * reset or terminated) is settled with the gateway, nothing sent; one that went through is
   * recorded and the recovery ends recovered — a charge is never hidden behind a stop.
   */
  async settleBeforeStop(): Promise<void> {
    if (this.run.status.recovered_with !== null) return;
    const settled = await this.settling.settleOpen();
    if (settled?.outcome === 'succeeded' && settled.other_attempt)
      await this.recordCharge(settled.other_attempt.payment_method_id, settled);
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
  async onDecline(paymentMethodId: string, d: DeclineDecision): Promise<boolean> {
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
  async renewAfterExpiry(paymentMethodId: string, d: DeclineDecision): Promise<boolean> {
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
}
