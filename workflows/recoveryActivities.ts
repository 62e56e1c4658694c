/**
 * The payment recovery's activities as its steps call them (workflows/recovery.ts and the step
 * modules beside it): one proxy per options profile, each call carrying the summary in words that
 * ops read beside it in the Temporal UI.
 */
import type { ChargeAttempt, RecoveryActivities } from '../activities/recovery';
import { fromMinorUnits } from '../payments/money';
import {
  activitiesWithSummaries,
  agentCall,
  gatewayCharge,
  gatewaySettle,
  graphWrite,
  graphWriteUntilDone,
} from './activityOptions';

const money = (amount: number, currency: string): string => `${fromMinorUnits(amount, currency)} ${currency}`;

type GraphActivities = Omit<RecoveryActivities, 'chargePaymentMethod' | 'settleOpenCharges' | 'renewCard'>;
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
  requestRecoveryStop: (req: Parameters<RecoveryActivities['requestRecoveryStop']>[0]) =>
    `Tell the charge ledger that the recovery of payment ${req.payment_id} stops (asked by ${req.by}): ` +
    'nothing more is sent to the gateway for it',
  forecastCharges: (req: Parameters<RecoveryActivities['forecastCharges']>[0]) =>
    `Ask the card networks' rules when customer ${req.customer_id}'s payment methods may next be charged`,
};
/** Graph reads and writes retried a while (the forecast: without it the schedule stands). */
export const graph = activitiesWithSummaries<GraphActivities>(graphWrite, graphSummaries);
/** The cascade's reads and every record: retried while Neo4j is away, however long. */
export const ledger = activitiesWithSummaries<GraphActivities>(graphWriteUntilDone, graphSummaries);
/** The account updater is another party: asked a few times, then the recovery goes on without it. */
export const updater = activitiesWithSummaries<Pick<RecoveryActivities, 'renewCard'>>(agentCall, {
  renewCard: (req) =>
    `Ask the card networks' account updater whether payment method ${req.payment_method_id} was renewed, ` +
    'and apply its new expiry',
});
const chargeSummary = {
  chargePaymentMethod: (a: ChargeAttempt) =>
    a.mode === 'settle'
      ? `Ask the gateway what became of the charge under idempotency key ${a.idempotency_key} ` +
        'and of any other open charge of the payment (their outcome is unknown; nothing is sent again)'
      : `Charge ${money(a.amount, a.currency)} to payment method ${a.payment_method_id} ` +
        `(idempotency key ${a.idempotency_key})`,
  settleOpenCharges: (req: Parameters<RecoveryActivities['settleOpenCharges']>[0]) =>
    `Ask the gateway what became of payment ${req.payment_id}'s charges still open before the recovery ` +
    'stops (nothing is sent again)',
};

/** The gateway's activities: a charge, or (in `settle` mode) what became of one, or of every one still open. */
type Gateway = Pick<RecoveryActivities, 'chargePaymentMethod' | 'settleOpenCharges'>;

/** The gateway asked about a charge of unknown outcome, nothing sent (a stop's): until it answers. */
export const settler = activitiesWithSummaries<Gateway>(gatewaySettle, chargeSummary);

/** The gateway charging, each charge retried under its key for `retryFor` (the run's `chargeRetryFor`). */
export function chargingGateway(retryFor: string): Pick<Gateway, 'chargePaymentMethod'> {
  return activitiesWithSummaries<Gateway>(gatewayCharge(retryFor), chargeSummary);
}
