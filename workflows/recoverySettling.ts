/**
 * A payment recovery's stop, on the money side: written to the charge ledger (`fence`: from then
 * on no request for the payment goes to the gateway, whoever would send it), and what a stopping
 * recovery learns of its charges without sending anything — the charge it was making (`settle`),
 * and any other attempt of the payment still open, an earlier run's (`settleOpen`).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ChargeAttempt, ChargeOutcome } from '../activities/recovery';
import { describeFailure } from '../temporal/failures';
import { personaOverdue } from '../temporal/searchAttributes';
import { countRecoveryChargeUnsettled } from './metrics';
import { ledger, settler } from './recoveryActivities';
import { now, type RecoveryRun } from './recoveryState';

/** The idempotency key a charge's failure names (the payment's other attempt it could not resolve, say). */
export function failureKey(err: unknown): string | null {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return null;
  const [detail] = err.cause.details ?? [];
  const key = (detail as { idempotency_key?: unknown } | undefined)?.idempotency_key;
  return typeof key === 'string' ? key : null;
}

/** The run's stop, on the money side: the ledger told, the charges settled. */
export class RecoverySettling {
  /** The stop being written to the charge ledger (once per run). */
  private fencing: Promise<void> | null = null;

  constructor(private readonly run: RecoveryRun) {}

  /**
   * What became of a charge (and of any other attempt of the payment still open), learnt without
   * sending anything again (the recovery is stopping): its answer when the gateway made it, else
   * `stopped`. The ledger is told of the stop first, so that no request for the payment goes again
   * whoever holds it. Asked until the gateway answers; past `settleFor` the settling is overdue —
   * counted, logged at ERROR, listed by `PersonaOverdue = 'charge_settle'` — and asks on. Refused
   * for good (no retry can fix it), the recovery stops with the charge still unknown, counted and
   * named in its stop reason: ops look it up at the gateway (runbook, PersonaRecoveryChargeUnsettled).
   */
  async settle(a: ChargeAttempt): Promise<ChargeOutcome | 'stopped'> {
    await this.fence();
    this.run.unsettled = a.idempotency_key;
    try {
      const settled = await this.overdueAfterDeadline(
        settler.chargePaymentMethod({ ...a, mode: 'settle' }),
        `the charge under ${a.idempotency_key}`,
        { idempotencyKey: a.idempotency_key },
      );
      this.run.unsettled = null;
      return settled.outcome === 'succeeded' || settled.outcome === 'declined' ? settled : 'stopped';
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.run.unsettled = failureKey(err) ?? a.idempotency_key;
      countRecoveryChargeUnsettled('refused');
      log.error('a charge of unknown outcome could not be settled with the gateway; the recovery stops', {
        paymentId: a.payment_id,
        idempotencyKey: this.run.unsettled,
        error: describeFailure(err),
      });
      return 'stopped';
    }
  }

  /**
   * The gateway asked (nothing sent): past `settleFor` without an answer the asking is overdue —
   * counted, logged at ERROR, listed by `PersonaOverdue = 'charge_settle'` until it ends — and asks on.
   */
  private async overdueAfterDeadline<T>(asking: Promise<T>, what: string, context: object): Promise<T> {
    let answered = false;
    const watched = asking.finally(() => void (answered = true));
    const summary = `Ask the gateway about ${what}: overdue after the settle deadline`;
    const overdue = !(await condition(() => answered, this.run.settleMs, { summary }));
    if (overdue) {
      countRecoveryChargeUnsettled('overdue');
      upsertSearchAttributes([{ key: personaOverdue, value: 'charge_settle' }]);
      log.error(`a recovery has asked the gateway about ${what} past its deadline`, {
        paymentId: this.run.reported.payment_id,
        ...context,
      });
    }
    try {
      return await watched;
    } finally {
      if (overdue) upsertSearchAttributes([{ key: personaOverdue, value: null }]);
    }
  }

  /**
   * A stop taken by this run is written to the charge ledger (the api and the erasure write it
   * before they tell the workflow; a stop sent by hand, or a cancellation request, is written
   * here): from then on no request for the payment goes to the gateway, whoever would send it.
   */
  fence(): Promise<void> {
    const stop = this.run.stopRequest;
    // Before the failure arrived there is nothing in the ledger to stop (a cancellation request then).
    if (stop === null || this.run.failure === null) return Promise.resolve();
    this.fencing ??= (async () => {
      const f = this.run.reported;
      try {
        await ledger.requestRecoveryStop({
          payment_id: f.payment_id,
          by: stop.by === 'ledger' ? 'ops' : stop.by,
          reason: stop.reason,
        });
      } catch (err) {
        // Retried while Neo4j is away; only a refusal no retry can fix ends here (the end recorded
        // in the ledger refuses every request for the payment all the same).
        if (isCancellation(err)) throw err;
        log.warn('the stop of a recovery could not be written to the charge ledger', {
          paymentId: f.payment_id,
          error: describeFailure(err),
        });
      }
    })();
    return this.fencing;
  }

  /**
   * Every attempt of the payment still open (an earlier run's, reset or terminated), settled with
   * the gateway, nothing sent: the first that went through, or null. Overdue past `settleFor` as
   * `settle` is. One the gateway refuses to tell of for good is counted, logged and named in the
   * stop reason (`unsettled`).
   */
  async settleOpen(): Promise<ChargeOutcome | null> {
    await this.fence();
    const f = this.run.reported;
    try {
      return await this.overdueAfterDeadline(
        settler.settleOpenCharges({ payment_id: f.payment_id, at: now() }),
        `the payment's other open charges`,
        {},
      );
    } catch (err) {
      if (isCancellation(err)) throw err;
      countRecoveryChargeUnsettled('refused');
      this.run.unsettled = failureKey(err);
      log.error('an open charge of the payment could not be settled with the gateway; the recovery stops', {
        paymentId: f.payment_id,
        idempotencyKey: this.run.unsettled,
        error: describeFailure(err),
      });
      return null;
    }
  }
}
