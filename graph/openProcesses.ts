/**
 * A customer's open processes: the payment recoveries, fraud outcomes and onboardings of the
 * customer that have not closed, as a small set the workflows keep themselves —
 * `(:Customer)-[:HAS_OPEN_PROCESS]->(:OpenProcess {id: <workflow id>, opened_at})`.
 *
 *   - A recovery is registered before its workflow starts, in the transaction that reserves it
 *     (graph/chargeLedger.ts `reserveRecovery`); a fraud outcome by the api just before its start
 *     (api/services/fraud.ts). So an erasure never misses a workflow that has run no activity yet.
 *     The worker's activity interceptor registers it again at its first activity
 *     (workers/openProcesses.ts: the same MERGE, once per workflow and worker process), for a
 *     workflow started some other way. An onboarding is registered in the transaction that
 *     creates or matches its customer (graph/onboarding.ts). A workflow id is one customer's:
 *     registering it for another is refused. A close's removal is not awaited by the workflow's
 *     last task (a Neo4j brownout must not hold every close up).
 *   - Each is removed when its workflow closes (completed, failed or cancelled: the workflow
 *     interceptor's `openProcesses.closed` sink, run by the worker outside the workflow's replay).
 *     A continue-as-new keeps it.
 *   - What can leave an entry behind (a workflow terminated, timed out, or its worker dying between
 *     the last task and the sink) is cleaned by whoever lists the set: fraud outcomes, merges and
 *     erasures describe each entry, and one whose workflow is closed or gone is removed then
 *     (`runningOpenProcesses`). An entry whose workflow does not exist yet is kept for
 *     STARTING_GRACE_SECONDS (the api registered it and is about to start it), then dropped.
 *
 * So listing a customer's processes reads a handful of nodes and describes only those, instead of
 * every workflow the customer ever had. An erased customer's entries go with its erasure.
 */
import { lockNode, readTx, writeTx, type Graph } from './graph';
import { ConflictError, InvalidStateError, NotFoundError } from './errors';
import type { ManagedTransaction } from 'neo4j-driver';

/** The relationship from the customer to its open processes. */
export const OPEN_PROCESS_OWNER = 'HAS_OPEN_PROCESS';

/** How long an entry whose workflow does not exist yet counts as open: its start is on its way. */
export const STARTING_GRACE_SECONDS = 120;

const CYPHER = {
  register: `
    MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    OPTIONAL MATCH (other:Customer)-[:${OPEN_PROCESS_OWNER}]->(:OpenProcess {id: $workflowId})
    WHERE other <> c
    WITH c, count(other) > 0 AS taken
    FOREACH (_ IN CASE WHEN c.status = 'erased' OR taken THEN [] ELSE [1] END |
      MERGE (p:OpenProcess {id: $workflowId})
        ON CREATE SET p.opened_at = datetime()
      MERGE (c)-[:${OPEN_PROCESS_OWNER}]->(p))
    RETURN c.status = 'erased' AS erased, taken`,
  close: 'MATCH (p:OpenProcess {id: $workflowId}) DETACH DELETE p RETURN count(*) AS closed',
  ofCustomers: `
    UNWIND $customerIds AS customerId
    MATCH (:Customer {id: customerId})-[:${OPEN_PROCESS_OWNER}]->(p:OpenProcess)
    RETURN DISTINCT p.id AS id,
           p.opened_at > datetime() - duration({seconds: $grace}) AS starting
    ORDER BY id`,
  customerOf: `MATCH (c:Customer)-[:${OPEN_PROCESS_OWNER}]->(:OpenProcess {id: $workflowId}) RETURN c.id AS id`,
} as const;

/**
 * Adds the workflow to the customer's open processes (again: nothing changes). Refused for an
 * erased customer, and for a workflow id another customer's open process holds.
 */
export async function registerOpenProcess(g: Graph, workflowId: string, customerId: string): Promise<void> {
  await writeTx(g, (tx) => registerOpenProcessTx(tx, workflowId, customerId));
}

/** The same inside a writer's transaction (thrown, the writer's transaction is rolled back). */
export async function registerOpenProcessTx(
  tx: ManagedTransaction,
  workflowId: string,
  customerId: string,
): Promise<void> {
  const record = (await tx.run(CYPHER.register, { workflowId, customerId })).records[0];
  if (!record) throw new NotFoundError('Customer', customerId);
  if (record.get('erased') === true)
    throw new InvalidStateError(`customer ${customerId} is erased: its workflow ${workflowId} may not run`);
  if (record.get('taken') === true) throw new ConflictError(`workflow ${workflowId} belongs to another customer`);
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
  return (await openProcessEntriesOf(g, customerIds)).map((p) => p.id);
}

/** The same, each with whether it was registered within STARTING_GRACE_SECONDS (its start may be on its way). */
export async function openProcessEntriesOf(
  g: Graph,
  customerIds: readonly string[],
): Promise<{ id: string; starting: boolean }[]> {
  if (customerIds.length === 0) return [];
  return readTx(g, async (tx) =>
    (await tx.run(CYPHER.ofCustomers, { customerIds: [...customerIds], grace: STARTING_GRACE_SECONDS })).records.map(
      (r) => ({ id: r.get('id') as string, starting: r.get('starting') === true }),
    ),
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
 * (`state`: running, closed, or missing — not started yet, or gone); closed and missing ones are stale entries
 * (a terminated workflow, a worker that died before its close was recorded) and are removed.
 */
export async function runningOpenProcesses(
  g: Graph,
  customerIds: readonly string[],
  state: (workflowId: string) => Promise<'running' | 'closed' | 'missing'>,
): Promise<string[]> {
  const out: string[] = [];
  for (const { id, starting } of await openProcessEntriesOf(g, customerIds)) {
    const now = await state(id);
    if (now === 'running') out.push(id);
    // Missing but just registered: its start may be on its way (the api registers before it starts).
    else if (now === 'closed' || !starting) await closeOpenProcess(g, id);
  }
  return out;
}
