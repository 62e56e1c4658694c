/**
 * Identity-merge activities: the consent codes, the merge and its undo (one graph transaction
 * each, graph/identityMerge.ts), and the merged customer's running processes to tell.
 */
import type { Client } from '@temporalio/client';
import { randomInt } from 'node:crypto';
import { runningOpenProcesses } from '../graph/openProcesses';
import type { Graph } from '../graph/graph';
import { mergeCustomers, type MergeRequest } from '../graph/identityMerge';
import { unmergeCustomers } from '../graph/identityUnmerge';
import { runningCustomerWorkflows, workflowState } from '../temporal/connection';
import { fraudOutcomeWorkflowId } from '../temporal/fraud';
import type { MergeSummary, UnmergeSummary } from '../temporal/identityMerge';
import { recoveryWorkflowId } from '../temporal/recovery';

/** Letters and digits nobody misreads (no 0/O, 1/I/L): 10 of them are 48 bits. */
const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
const CODE_LENGTH = 10;

function consentCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

export function createIdentityMergeActivities({ graph, temporal }: { graph: Graph; temporal: Client }) {
  return {
    /**
     * A fresh code per customer, for the request for consent sent to that customer's verified
     * email or phone. Random, so nobody can answer for a customer without having received it; the
     * result is recorded once in the history (encrypted by the payload codec), and the same
     * codes are sent on every retry of the notification.
     */
    async createConsentCodes(req: { customer_ids: string[] }): Promise<Record<string, string>> {
      return Object.fromEntries(req.customer_ids.map((id) => [id, consentCode()]));
    },

    /** The merge, one transaction; a retry after it committed answers `already_merged`. */
    async mergeCustomers(req: MergeRequest): Promise<MergeSummary & { outcome: 'merged' | 'already_merged' }> {
      const r = await mergeCustomers(graph, req);
      // Ids and counts only into the history: the full manifest (login details) stays on the events.
      return {
        outcome: r.outcome,
        payment_methods: r.manifest.payment_methods.map((m) => m.id),
        devices: r.manifest.devices.map((d) => d.id),
        addresses: r.manifest.addresses.map((a) => a.id),
        identifiers: r.manifest.identifiers.map((i) => i.id),
        ltv_minor_moved: r.manifest.ltv.merged,
        redirected: r.manifest.redirected,
      };
    },

    async unmergeCustomers(req: {
      merge_id: string;
      survivor_id: string;
      merged_id: string;
      requested_by: string | null;
      reason: string;
    }): Promise<UnmergeSummary> {
      const r = await unmergeCustomers(graph, req);
      return { restored: r.restored, not_restored: r.not_restored };
    },

    /**
     * The merged customer's running recoveries and fraud outcomes: those among its open processes
     * (graph/openProcesses.ts; entries of closed workflows are dropped on the way) and those
     * visibility lists.
     */
    async listMergedCustomerProcesses(req: { customer_id: string; also?: string[] }): Promise<string[]> {
      const prefixes = [recoveryWorkflowId(''), fraudOutcomeWorkflowId('')];
      const ours = (id: string): boolean => prefixes.some((p) => id.startsWith(p));
      const customers = [req.customer_id, ...(req.also ?? [])];
      const running = new Set<string>(
        (await runningOpenProcesses(graph, customers, (id) => workflowState(temporal, id))).filter(ours),
      );
      for (const customerId of customers)
        for (const id of await runningCustomerWorkflows(temporal, customerId)) if (ours(id)) running.add(id);
      return [...running].sort();
    },
  };
}

export type IdentityMergeActivities = ReturnType<typeof createIdentityMergeActivities>;
