/** Activities of the fraud-outcome workflow: the graph changes, and finding the recoveries to tell. */
import type { Client } from '@temporalio/client';
import {
  applyFraudOutcome,
  type AppliedFraudOutcome,
  type FraudOutcomeReport,
  type FraudReporter,
  type FraudReversal,
  type ReviewDecision,
} from '../graph/fraud';
import { resolveFraudReview, reverseLatestFraudOutcome } from '../graph/fraudReversal';
import type { Graph } from '../graph/graph';
import type { CustomerStatus } from '../graph/model';
import { runningOpenProcesses } from '../graph/openProcesses';
import { RECOVERY_WORKFLOW_TYPE, recoveryWorkflowId } from '../temporal/recovery';
import { runningCustomerWorkflows, workflowState } from '../temporal/connection';

export function createFraudActivities({ graph, temporal }: { graph: Graph; temporal: Client }) {
  return {
    /** Applies the outcome's changes in one transaction; a retry returns the first result. */
    async applyFraudOutcome(
      report: FraudOutcomeReport,
      options: { trust_step: number; reported_by?: FraudReporter },
    ): Promise<AppliedFraudOutcome> {
      return applyFraudOutcome(graph, report, {
        trustStep: options.trust_step,
        reportedBy: options.reported_by ?? 'agent',
      });
    },
    /** A false positive: puts back what the customer's latest fraud outcome changed. */
    async reverseFraudOutcome(req: {
      outcome_id: string;
      customer_id: string;
      reported_by: FraudReporter;
    }): Promise<FraudReversal> {
      return reverseLatestFraudOutcome(graph, req);
    },
    /** Records the review's end; `reinstate` restores the customer's earlier status. */
    async resolveFraudReview(req: {
      outcome_id: string;
      customer_id: string;
      decision: ReviewDecision;
      restore_to?: CustomerStatus;
    }): Promise<{ reinstated: boolean }> {
      return resolveFraudReview(graph, req);
    },
    /**
     * The customer's running payment recoveries: those among its open processes (a small set the
     * workflows keep, graph/openProcesses.ts: a consistent read, so a recovery visibility has not
     * indexed yet is not missed; entries of closed workflows are dropped on the way), and those
     * the PersonaCustomerId search attribute finds (one that has run no activity yet).
     */
    async listRunningRecoveries(req: { customer_id: string }): Promise<string[]> {
      const running = new Set<string>(
        (await runningOpenProcesses(graph, [req.customer_id], (id) => workflowState(temporal, id))).filter((id) =>
          id.startsWith(recoveryWorkflowId('')),
        ),
      );
      for (const id of await runningCustomerWorkflows(temporal, req.customer_id, { type: RECOVERY_WORKFLOW_TYPE }))
        running.add(id);
      return [...running].sort();
    },
  };
}

export type FraudActivities = ReturnType<typeof createFraudActivities>;
