/**
 * A customer's open processes: the payment recoveries, fraud outcomes and onboardings of the
 * customer that have not closed, as a small set the workflows keep themselves —
 * `(:Customer)-[:HAS_OPEN_PROCESS]->(:OpenProcess {id: <workflow id>, opened_at})`.
 *
 *   - A recovery or fraud outcome is registered by its first activity (workers/openProcesses.ts:
 *     the worker's activity interceptor, once per workflow and worker process; the customer is
 *     the one whose key its input was encrypted under). An onboarding is registered in the
 *     transaction that creates or matches its customer (graph/onboarding.ts).
 *   - Each is removed when its workflow closes (completed, failed or cancelled: the workflow
 *     interceptor's `openProcesses.closed` sink, run by the worker outside the workflow's replay).
 *     A continue-as-new keeps it.
 *   - What can leave an entry behind (a workflow terminated, timed out, or its worker dying between
 *     the last task and the sink) is cleaned by whoever lists the set: fraud outcomes, merges and
 *     erasures describe each entry, and one whose workflow is closed or gone is removed then
 *     (`runningOpenProcesses`). A workflow that started but has run no activity yet is not in the set.
 *
 * So listing a customer's processes reads a handful of nodes and describes only those, instead of
 * every workflow the customer ever had. An erased customer's entries go with its erasure.
 */
import { lockNode, readTx, writeTx, type Graph } from './graph';
import { InvalidStateError, NotFoundError } from './errors';
import type { ManagedTransaction } from 'neo4j-driver';

/** The relationship from the customer to its open processes. */
export const OPEN_PROCESS_OWNER = 'HAS_OPEN_PROCESS';

const CYPHER = {
  register: `
    MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    FOREACH (_ IN CASE WHEN c.status = 'erased' THEN [] ELSE [1] END |
      MERGE (p:OpenProcess {id: $workflowId})
        ON CREATE SET p.opened_at = datetime()
      MERGE (c)-[:${OPEN_PROCESS_OWNER}]->(p))
    RETURN c.status = 'erased' AS erased`,
  close: 'MATCH (p:OpenProcess {id: $workflowId}) DETACH DELETE p RETURN count(*) AS closed',
  ofCustomers: `
    UNWIND $customerIds AS customerId
    MATCH (:Customer {id: customerId})-[:${OPEN_PROCESS_OWNER}]->(p:OpenProcess)
    RETURN DISTINCT p.id AS id ORDER BY id`,
  customerOf: `MATCH (c:Customer)-[:${OPEN_PROCESS_OWNER}]->(:OpenProcess {id: $workflowId}) RETURN c.id AS id`,
} as const;

/** Adds the workflow to the customer's open processes (again: nothing changes). Refused for an erased customer. */
export async function registerOpenProcess(g: Graph, workflowId: string, customerId: string): Promise<void> {
  const erased = await writeTx(g, (tx) => registerOpenProcessTx(tx, workflowId, customerId));
  if (erased) throw new InvalidStateError(`customer ${customerId} is erased: its workflow ${workflowId} may not run`);
}

/** The same inside a writer's transaction; true when the customer is erased (nothing was added). */
export async function registerOpenProcessTx(
  tx: ManagedTransaction,
  workflowId: string,
  customerId: string,
): Promise<boolean> {
  const record = (await tx.run(CYPHER.register, { workflowId, customerId })).records[0];
  if (!record) throw new NotFoundError('Customer', customerId);
  return record.get('erased') === true;
}

/** Removes the workflow from its customer's open processes; false when it was not there. */
export async function closeOpenProcess(g: Graph, workflowId: string): Promise<boolean> {
  return writeTx(g, async (tx) => {
    const n = (await tx.run(CYPHER.close, { workflowId })).records[0]?.get('closed') as { toNumber(): number } | number;
    return (typeof n === 'number' ? n : (n?.toNumber() ?? 0)) > 0;
  });
}

/** The open processes of the customers (workflow ids, each once, sorted). */
export async function openProcessesOf(g: Graph, customerIds: readonly string[]): Promise<string[]> {
  if (customerIds.length === 0) return [];
  return readTx(g, async (tx) =>
    (await tx.run(CYPHER.ofCustomers, { customerIds: [...customerIds] })).records.map((r) => r.get('id') as string),
  );
}

/** The customer whose open process the workflow is, or null. */
export async function customerOfOpenProcess(g: Graph, workflowId: string): Promise<string | null> {
  return readTx(
    g,
    async (tx) => ((await tx.run(CYPHER.customerOf, { workflowId })).records[0]?.get('id') as string) ?? null,
  );
}

/**
 * The customers' open processes whose workflows still run, asking Temporal about each
 * (`running`: true when running, false when closed or not found); the others are stale entries
 * (a terminated workflow, a worker that died before its close was recorded) and are removed.
 */
export async function runningOpenProcesses(
  g: Graph,
  customerIds: readonly string[],
  running: (workflowId: string) => Promise<boolean>,
): Promise<string[]> {
  const out: string[] = [];
  for (const id of await openProcessesOf(g, customerIds)) {
    if (await running(id)) out.push(id);
    else await closeOpenProcess(g, id);
  }
  return out;
}
