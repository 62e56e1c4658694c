/** Activities of the fraud-outcome workflow: the graph changes, and finding the recoveries to tell. */
import type { Client } from '@temporalio/client';
import {
  applyFraudOutcome,
  resolveFraudReview,
  reverseLatestFraudOutcome,
  type AppliedFraudOutcome,
  type FraudOutcomeReport,
  type FraudReversal,
  type ReviewDecision,
} from '../graph/fraud';
import type { Graph } from '../graph/graph';
import type { CustomerStatus } from '../graph/model';
import { RECOVERY_WORKFLOW_TYPE } from '../temporal/recovery';
import { runningCustomerWorkflows } from '../temporal/connection';
import { domain } from './domain';

export function createFraudActivities({ graph, temporal }: { graph: Graph; temporal: Client }) {
  return {
    /** Applies the outcome's changes in one transaction; a retry returns the first result. */
    async applyFraudOutcome(report: FraudOutcomeReport, options: { trust_step: number }): Promise<AppliedFraudOutcome> {
      return domain(() => applyFraudOutcome(graph, report, { trustStep: options.trust_step }));
    },
    /** A false positive: puts back what the customer's latest fraud outcome changed. */
    async reverseFraudOutcome(req: { outcome_id: string; customer_id: string }): Promise<FraudReversal> {
      return domain(() => reverseLatestFraudOutcome(graph, req));
    },
    /** Records the review's end; `reinstate` restores the customer's earlier status. */
    async resolveFraudReview(req: {
      outcome_id: string;
      customer_id: string;
      decision: ReviewDecision;
      restore_to?: CustomerStatus;
    }): Promise<{ reinstated: boolean }> {
      return domain(() => resolveFraudReview(graph, req));
    },
    /** The customer's running payment recoveries (by the PersonaCustomerId search attribute). */
    async listRunningRecoveries(req: { customer_id: string }): Promise<string[]> {
      return runningCustomerWorkflows(temporal, req.customer_id, { type: RECOVERY_WORKFLOW_TYPE });
    },
  };
}

export type FraudActivities = ReturnType<typeof createFraudActivities>;
