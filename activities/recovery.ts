/** Activities of payment recovery: the gateway charge and the graph writes around it. */
import { ApplicationFailure } from '@temporalio/activity';
import { GatewayRejectedError, type ChargeResult, type PaymentGateway } from '../clients/paymentGateway';
import type { Graph } from '../graph/graph';
import type { PaymentMethodStatus } from '../graph/model';
import { MAX_CHARGES_PER_METHOD_IN_30_DAYS } from '../payments/declines';
import { revealPaymentToken, updatePaymentMethodStatus } from '../graph/paymentMethods';
import {
  listRecoveryCandidates,
  recordRecovery,
  recordRecoveryFailed,
  reserveChargeAttempt,
  type ChargeVerdict,
  type RecoveryCandidate,
  type RecoveryRecord,
} from '../graph/recovery';
import { domain } from './domain';

export interface ChargeAttempt {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  amount: number;
  currency: string;
  /** From workflow data: `<payment id>:<payment method id>[:<round>]`. */
  idempotency_key: string;
}

/** What a charge attempt came to: the gateway's answer, or why the gateway was not asked. */
export type ChargeOutcome =
  | ChargeResult
  | { outcome: 'limited' }
  | { outcome: 'not_charged'; reason: Exclude<ChargeVerdict, 'allowed' | 'limited'> };

export function createRecoveryActivities({
  graph,
  gateway,
  trustThreshold,
}: {
  graph: Graph;
  gateway: PaymentGateway;
  trustThreshold: number;
}) {
  return {
    /**
     * Charges one payment method with the workflow's idempotency key. A decline is returned (a
     * business outcome); 5xx and timeouts throw and are retried by Temporal with the same key,
     * so a retry after a lost answer is the same charge. Right before the charge the graph says
     * whether it may happen (graph/recovery.ts `reserveChargeAttempt`): a method charged 15 times
     * in 30 days (by any recovery) is `limited`; a suspended or erased customer, or a method no
     * longer active in the wallet, is not charged (`not_charged` with the reason).
     */
    async chargePaymentMethod(a: ChargeAttempt): Promise<ChargeOutcome> {
      const verdict = await domain(() =>
        reserveChargeAttempt(graph, {
          customer_id: a.customer_id,
          payment_method_id: a.payment_method_id,
          key: a.idempotency_key,
          max: MAX_CHARGES_PER_METHOD_IN_30_DAYS,
        }),
      );
      if (verdict === 'limited') return { outcome: 'limited' };
      if (verdict !== 'allowed') return { outcome: 'not_charged', reason: verdict };
      const token = await domain(() => revealPaymentToken(graph, a.payment_method_id));
      try {
        return await gateway.charge({
          idempotency_key: a.idempotency_key,
          token,
          amount: a.amount,
          currency: a.currency,
          customer_id: a.customer_id,
        });
      } catch (err) {
        if (err instanceof GatewayRejectedError)
          throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
        throw err;
      }
    },
    async listRecoveryCandidates(req: { customer_id: string; exclude: string[] }): Promise<RecoveryCandidate[]> {
      return domain(() => listRecoveryCandidates(graph, req.customer_id, req.exclude, trustThreshold));
    },
    async deactivatePaymentMethod(req: {
      payment_method_id: string;
      status: PaymentMethodStatus;
      reason: string;
    }): Promise<void> {
      await domain(() => updatePaymentMethodStatus(graph, req.payment_method_id, req.status, { reason: req.reason }));
    },
    async recordRecovery(rec: RecoveryRecord): Promise<void> {
      await domain(() => recordRecovery(graph, rec));
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

export type RecoveryActivities = ReturnType<typeof createRecoveryActivities>;
