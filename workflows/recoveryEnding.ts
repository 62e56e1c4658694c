/**
 * How a payment recovery ends — `recovered`, `failed` or `stopped`, in its status, in the charge
 * ledger and in its count — and the customer told of it (notifications are best-effort here as
 * everywhere in the recovery).
 */
import { CancellationScope, isCancellation, log } from '@temporalio/workflow';
import { describeFailure } from '../temporal/failures';
import { countRecoveredBy, countRecovery } from './metrics';
import { notifications } from './notifications';
import { ledger } from './recoveryActivities';
import type { LedgerEnd } from '../graph/chargeReservation';
import type { RecoveryRun } from './recoveryState';
import { ended } from './recoveryUpdates';

/** Ends the run (at the end of its passes, on a stop, on a cancellation request) and tells the customer. */
export class RecoveryEnding {
  constructor(private readonly run: RecoveryRun) {}

  /** recovered, failed or stopped: how the recovery ends when its passes are over. */
  async finish(): Promise<void> {
    const f = this.run.reported;
    this.run.status.next_retry_at = null;
    this.run.status.next_retry_reason = null;
    if (this.run.status.recovered_with) {
      this.run.moveTo('recovered');
      if (this.run.status.recovered_by) countRecoveredBy(this.run.status.recovered_by);
      await (this.run.recoveredNotice ??
        this.notify('payment_recovered', 'recovered', { payment_method_id: this.run.status.recovered_with }));
    } else if (this.run.stopRequest) {
      await this.stop(this.run.stopRequest.reason);
      return;
    } else {
      let end: LedgerEnd | null = null;
      try {
        // Failed is final: a cancellation request now must not leave the ledger's recovery open.
        end = await CancellationScope.nonCancellable(() =>
          ledger.recordRecoveryFailed({
            payment_id: f.payment_id,
            customer_id: f.customer_id,
            attempts: this.run.status.attempts.length,
            reason: this.withUnsettled('all payment methods failed'),
          }),
        );
      } catch (err) {
        // Retried without a cap: only a refusal no retry can fix ends here (no money moved).
        if (isCancellation(err)) throw err;
        log.warn('the failure of a recovery could not be recorded in the graph', {
          paymentId: f.payment_id,
          error: describeFailure(err),
        });
      }
      // Another run of the payment ended it first (recovered it, say): this one ends as it did.
      if (end && end.state !== 'failed') return this.asTheLedgerSays(end);
      this.run.moveTo('failed');
      await CancellationScope.nonCancellable(() => this.notify('payment_failed', 'failed'));
    }
    countRecovery(this.run.status.state as 'recovered' | 'failed');
    log.info(`payment recovery ${this.run.status.state}`, {
      paymentId: f.payment_id,
      customerId: f.customer_id,
      attempts: this.run.status.attempts.length,
      recoveredWith: this.run.status.recovered_with,
    });
  }

  /**
   * The charge ledger has the recovery ended (another run of the payment ended it first): this run
   * ends as it did — recovered with its method, failed, or stopped — and records nothing; the run
   * that ended it told the customer.
   */
  asTheLedgerSays(end: LedgerEnd | null): void {
    const f = this.run.reported;
    const state = end?.state ?? 'stopped';
    this.run.moveTo(state, {
      next_retry_at: null,
      next_retry_reason: null,
      attention: null,
      recovered_with: end?.recovered_with ?? this.run.status.recovered_with,
      stop_reason:
        state === 'stopped'
          ? (end?.reason ?? `payment ${f.payment_id}'s recovery was ended by another run of it`)
          : this.run.status.stop_reason,
    });
    // What the owner's stop answers: the charge that recovered it, whoever made it.
    if (state === 'recovered' && end?.recovered_with)
      this.run.charged ??= {
        payment_method_id: end.recovered_with,
        charge_id: end.charge_id,
        amount: f.amount,
        currency: f.currency,
      };
    countRecovery(state);
    log.info(`payment recovery ${state}: the charge ledger has it ended by another run`, { paymentId: f.payment_id });
  }

  /** The end's reason, naming a charge the gateway refused to say the outcome of (ops look it up). */
  private withUnsettled(why: string): string {
    if (this.run.unsettled === null) return why;
    return (
      `${why}; the charge under idempotency key ${this.run.unsettled} is of unknown outcome ` +
      '(the gateway refused to say): ops look it up at the gateway'
    );
  }

  /**
   * stopped: in the ledger (retried until done), then in the status — or as the ledger says, when
   * another run of the payment ended it first.
   */
  async stop(why: string): Promise<void> {
    const f = this.run.reported;
    const reason = this.withUnsettled(why);
    const end = await this.recordStopped(reason);
    if (end && end.state !== 'stopped') return this.asTheLedgerSays(end);
    this.run.moveTo('stopped', { next_retry_at: null, next_retry_reason: null, attention: null, stop_reason: reason });
    countRecovery('stopped');
    // The reason stays out of the log line: an owner's note or ops' reason is free text.
    log.info('payment recovery stopped', {
      paymentId: f.payment_id,
      customerId: f.customer_id,
      by: this.run.stopRequest?.by,
    });
  }

  private async recordStopped(reason: string): Promise<LedgerEnd | null> {
    const f = this.run.reported;
    try {
      return await CancellationScope.nonCancellable(() =>
        ledger.recordRecoveryStopped({ payment_id: f.payment_id, customer_id: f.customer_id, reason }),
      );
    } catch (err) {
      // Only a refusal a retry cannot fix ends here: the status says stopped all the same.
      log.warn('the stop of a recovery could not be recorded in the charge ledger', {
        paymentId: f.payment_id,
        error: describeFailure(err),
      });
      return null;
    }
  }

  /**
   * A cancellation request surfaced from a wait: the recovery ends like a stop, never mid-charge.
   * A charge that went through before it was recorded (non-cancellable): it stays recovered.
   */
  async endCancelled(): Promise<void> {
    if (ended(this.run.asIs)) return;
    if (this.run.status.recovered_with) {
      this.run.moveTo('recovered', { next_retry_at: null, next_retry_reason: null, attention: null });
      countRecovery('recovered');
    } else if (this.run.failure) {
      await this.stop('workflow cancelled');
    } else {
      this.run.moveTo('stopped', { stop_reason: 'workflow cancelled' });
      countRecovery('stopped');
    }
    log.info(`payment recovery ${this.run.status.state}: workflow cancelled`, { workflowId: this.run.workflowId });
  }

  /** Best-effort: a notification that cannot be delivered is noted, and the recovery goes on. */
  async notify(kind: string, step: string, data: Record<string, unknown> = {}): Promise<void> {
    const f = this.run.reported;
    try {
      await notifications.notifyCustomer({
        customer_id: f.customer_id,
        kind,
        key: `${this.run.workflowId}:${step}`,
        data: { payment_id: f.payment_id, ...data },
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.run.status.undelivered.push(step);
      log.warn('a notification could not be delivered; the recovery goes on without it', {
        paymentId: f.payment_id,
        customerId: f.customer_id,
        kind,
        error: describeFailure(err),
      });
    }
  }
}
