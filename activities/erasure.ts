/** Activities of erasure: find the customer's running workflows, erase the graph side. */
import type { Client } from '@temporalio/client';
import { eraseCustomer, type ErasureResult } from '../graph/erasure';
import type { Graph } from '../graph/graph';
import { runningCustomerWorkflows } from '../temporal/connection';
import { domain } from './domain';

export function createErasureActivities({ graph, temporal }: { graph: Graph; temporal: Client }) {
  return {
    /** Running workflows tagged with the customer (PersonaCustomerId), but `except`. */
    async listRunningCustomerWorkflows(req: { customer_id: string; except: string }): Promise<string[]> {
      return runningCustomerWorkflows(temporal, req.customer_id, { except: req.except });
    },
    async eraseCustomer(req: { customer_id: string }): Promise<ErasureResult> {
      return domain(() => eraseCustomer(graph, req.customer_id));
    },
  };
}

export type ErasureActivities = ReturnType<typeof createErasureActivities>;
