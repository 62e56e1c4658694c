/**
 * Payment recovery — workflow id `payment-recovery-<payment id>`, started by Synapse with
 * signal-with-start of `paymentFailed` (a second report of the same payment changes nothing).
 *
 *   fraud-class hard decline → deactivate the method (compromised), tell the customer, stop.
 *   other hard decline       → deactivate it (expired_card → expired), then cascade.
 *   soft decline             → cascade.
 * The cascade charges the customer's other active, unexpired methods — used on a trusted device
 * first, then most recently used — with idempotency key `<payment id>:<method id>` (dunning
 * rounds append `:r<round>`). Success makes that method the default and tells the customer.
 * When every method fails, dunning: reminders and timers on the schedule; `paymentMethodAdded`
 * retries at once; `paymentMethodBlocked` (a confirmed fraud) takes a method out for good;
 * `cancel` stops. Card-network rules: never a method again after a
 * do-not-retry decline, never more than 15 charges of one method in 30 days.
 */
import { condition, log, setHandler, workflowInfo } from '@temporalio/workflow';
import type { RecoveryActivities } from '../activities/recovery';
import { declineRule } from '../payments/declines';
import { fromMinorUnits } from '../payments/money';
import {
  cancelRecoverySignal,
  paymentFailedSignal,
  paymentMethodAddedSignal,
  paymentMethodBlockedSignal,
  recoveryStatusQuery,
  type PaymentFailure,
  type RecoveryInput,
  type RecoveryStatus,
} from '../temporal/recovery';
import { activitiesWithSummaries, gatewayCharge, graphWrite } from './activityOptions';
import { countRecovery } from './metrics';
import { notifications } from './notifications';

const money = (amount: number, currency: string): string => `${fromMinorUnits(amount, currency)} ${currency}`;

const graph = activitiesWithSummaries<Omit<RecoveryActivities, 'chargePaymentMethod'>>(graphWrite, {
  listRecoveryCandidates: (req) =>
    `List customer ${req.customer_id}'s other active, unexpired payment methods to try, trusted-device ones first` +
    (req.exclude.length
      ? ` (not ${req.exclude.length === 1 ? 'the one' : `the ${req.exclude.length}`} already ruled out)`
      : ''),
  deactivatePaymentMethod: (req) => `Mark payment method ${req.payment_method_id} ${req.status}: ${req.reason}`,
  recordRecovery: (rec) =>
    `Record payment ${rec.payment_id} as recovered with ${rec.payment_method_id} and make that method the default`,
  recordRecoveryFailed: (rec) => `Record payment ${rec.payment_id} as not recoverable after ${rec.attempts} attempts`,
});
const gateway = activitiesWithSummaries<Pick<RecoveryActivities, 'chargePaymentMethod'>>(gatewayCharge, {
  chargePaymentMethod: (a) =>
    `Charge ${money(a.amount, a.currency)} to payment method ${a.payment_method_id} ` +
    `(idempotency key ${a.idempotency_key})`,
});

export async function paymentRecoveryWorkflow(input: RecoveryInput): Promise<RecoveryStatus> {
  const { workflowId } = workflowInfo();
  const status: RecoveryStatus = { state: 'waiting', attempts: [], recovered_with: null, next_retry_at: null };
  let failure: PaymentFailure | null = null;
  let methodAdded = false;
  let cancelled: string | null = null;
  /** Methods never to charge again in this recovery (do-not-retry declines, deactivated). */
  const doNotCharge: string[] = [];

  setHandler(recoveryStatusQuery, () => status);
  setHandler(paymentFailedSignal, (f) => {
    if (failure) log.info('the same payment was reported again; nothing changes', { paymentId: f.payment_id });
    else failure = f;
  });
  setHandler(paymentMethodAddedSignal, () => {
    methodAdded = true;
  });
  setHandler(paymentMethodBlockedSignal, ({ payment_method_id, reason }) => {
    log.info('payment method blocked for this recovery', { paymentMethodId: payment_method_id, reason });
    if (!doNotCharge.includes(payment_method_id)) doNotCharge.push(payment_method_id);
  });
  setHandler(cancelRecoverySignal, ({ reason }) => {
    cancelled = reason;
  });

  await condition(() => failure !== null);
  const f = failure as unknown as PaymentFailure;
  const notify = (kind: string, step: string, data: Record<string, unknown> = {}) =>
    notifications.notifyCustomer({
      customer_id: f.customer_id,
      kind,
      key: `${workflowId}:${step}`,
      data: { payment_id: f.payment_id, ...data },
    });

  /** Applies a decline's consequences to the method; returns true for a fraud-class decline. */
  const onDecline = async (paymentMethodId: string, code: string): Promise<boolean> => {
    const rule = declineRule(code);
    if (rule.doNotRetry && !doNotCharge.includes(paymentMethodId)) doNotCharge.push(paymentMethodId);
    if (rule.status) {
      await graph.deactivatePaymentMethod({
        payment_method_id: paymentMethodId,
        status: rule.status,
        reason: `payment ${f.payment_id} declined: ${code}`,
      });
    }
    return rule.class === 'fraud_hard';
  };

  status.state = 'recovering';
  status.attempts.push({
    payment_method_id: f.payment_method_id,
    outcome: 'declined',
    decline_code: f.decline_code,
    at: new Date().toISOString(),
  });
  if (await onDecline(f.payment_method_id, f.decline_code)) {
    await notify('card_compromised', 'card-compromised', { payment_method_id: f.payment_method_id });
    status.state = 'stopped';
    countRecovery('stopped');
    log.info('payment recovery stopped: fraud-class decline', {
      paymentId: f.payment_id,
      customerId: f.customer_id,
      declineCode: f.decline_code,
    });
    return status;
  }

  /** One pass over the candidates; true when a charge succeeded. */
  const cascade = async (round: number, exclude: string[]): Promise<boolean> => {
    const candidates = await graph.listRecoveryCandidates({
      customer_id: f.customer_id,
      exclude: [...exclude, ...doNotCharge],
    });
    for (const c of candidates) {
      if (cancelled) return false;
      // Blocked while this cascade ran (a confirmed fraud on it): never charged again.
      if (doNotCharge.includes(c.payment_method_id)) continue;
      const result = await gateway.chargePaymentMethod({
        payment_id: f.payment_id,
        customer_id: f.customer_id,
        payment_method_id: c.payment_method_id,
        amount: f.amount,
        currency: f.currency,
        idempotency_key:
          round === 0 ? `${f.payment_id}:${c.payment_method_id}` : `${f.payment_id}:${c.payment_method_id}:r${round}`,
      });
      if (result.outcome === 'limited') {
        // Charged 15 times in 30 days already (card-network rule, counted in the graph).
        status.attempts.push({
          payment_method_id: c.payment_method_id,
          outcome: 'skipped',
          decline_code: 'network_retry_limit',
          at: new Date().toISOString(),
        });
        continue;
      }
      if (result.outcome === 'succeeded') {
        status.attempts.push({
          payment_method_id: c.payment_method_id,
          outcome: 'succeeded',
          decline_code: null,
          at: new Date().toISOString(),
        });
        await graph.recordRecovery({
          payment_id: f.payment_id,
          customer_id: f.customer_id,
          payment_method_id: c.payment_method_id,
          charge_id: result.charge_id,
          amount: f.amount,
          currency: f.currency,
        });
        status.recovered_with = c.payment_method_id;
        return true;
      }
      status.attempts.push({
        payment_method_id: c.payment_method_id,
        outcome: 'declined',
        decline_code: result.decline_code,
        at: new Date().toISOString(),
      });
      await onDecline(c.payment_method_id, result.decline_code);
    }
    return false;
  };

  const finish = async (): Promise<RecoveryStatus> => {
    status.next_retry_at = null;
    if (status.recovered_with) {
      status.state = 'recovered';
      await notify('payment_recovered', 'recovered', { payment_method_id: status.recovered_with });
    } else if (cancelled) {
      status.state = 'stopped';
    } else {
      status.state = 'failed';
      await graph.recordRecoveryFailed({
        payment_id: f.payment_id,
        customer_id: f.customer_id,
        attempts: status.attempts.length,
        reason: 'all payment methods failed',
      });
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

  // The first cascade skips the method that just failed; dunning rounds may retry it.
  if (await cascade(0, [f.payment_method_id])) return finish();

  for (let round = 1; round <= input.dunningSchedule.length && !cancelled; round++) {
    status.state = 'dunning';
    const delay = input.dunningSchedule[round - 1] as string;
    await notify('dunning_reminder', `reminder-${round}`, { round });
    status.next_retry_at = new Date(Date.now() + msOf(delay)).toISOString();
    methodAdded = false;
    await condition(() => methodAdded || cancelled !== null, delay, {
      summary:
        `Dunning round ${round} of ${input.dunningSchedule.length}: wait ${delay} before retrying ` +
        '(a new payment method retries at once)',
    });
    if (cancelled) break;
    status.state = 'recovering';
    if (await cascade(round, [])) return finish();
  }
  return finish();
}

/** Duration strings of the dunning schedule: `1d`, `12h`, `30m`, `45s`. */
function msOf(duration: string): number {
  const m = /^(\d+)\s*(d|h|m|s)$/.exec(duration.trim());
  if (!m) throw new Error(`bad duration ${duration}`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 }[m[2] as 'd' | 'h' | 'm' | 's'];
  return Number(m[1]) * unit;
}
