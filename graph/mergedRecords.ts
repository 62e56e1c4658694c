/**
 * Where a merged customer's id leads (graph/identityMerge.ts merges): a merge's tombstone keeps
 * `merged_into`, and every read or write about it follows that to the survivor. One way to follow
 * it for a read (`survivorOf`), one for a write refused on a tombstone (`retryOnSurvivor`), and
 * the records merged into a customer (`mergedRecordsOf`, the same person's).
 */
import type { ManagedTransaction } from 'neo4j-driver';
import { CustomerMergedError, InvalidStateError } from './errors';
import { readTx, type Graph } from './graph';

/** How many tombstones a read follows at most (chains are shortened by every merge, so 1 in practice). */
const MAX_HOPS = 5;

/**
 * The survivor a write's refusal names, or null: only the refusal itself, never one a failure wraps
 * (a failure raised after a side effect must not run the work again).
 */
export function survivorNamedBy(err: unknown): string | null {
  return err instanceof CustomerMergedError ? err.survivorId : null;
}

/**
 * A write that follows a merge: runs `work` for the customer and, when it was refused because the
 * customer is a merge's tombstone now (CustomerMergedError: its methods moved to the survivor with
 * the same ids, and so do its charges and recoveries), once more for the survivor. What `work`
 * returns is returned with the customer it was done for. (Where an id leads, without a write:
 * `survivorOf`.)
 */
export async function retryOnSurvivor<T>(
  customerId: string,
  work: (customerId: string) => Promise<T>,
): Promise<{ customerId: string; result: T }> {
  try {
    return { customerId, result: await work(customerId) };
  } catch (err) {
    const survivor = survivorNamedBy(err);
    if (survivor === null) throw err;
    return { customerId: survivor, result: await work(survivor) };
  }
}

/**
 * Where a customer id leads now: itself, or the survivor its merges lead to (followed at most
 * MAX_HOPS tombstones). null when the customer does not exist.
 */
export async function survivorOf(g: Graph, id: string): Promise<{ id: string; merged_into: string | null } | null> {
  return readTx(g, async (tx) => survivorOfTx(tx, id));
}

export async function survivorOfTx(
  tx: ManagedTransaction,
  id: string,
): Promise<{ id: string; merged_into: string | null } | null> {
  let current = id;
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    const r = (
      await tx.run('MATCH (c:Customer {id: $id}) RETURN c.status AS status, c.merged_into AS into', { id: current })
    ).records[0];
    if (!r) return hop === 0 ? null : { id: current, merged_into: current };
    const into = r.get('into') as string | null;
    if (r.get('status') !== 'merged' || !into) return { id: current, merged_into: hop === 0 ? null : current };
    current = into;
  }
  throw new InvalidStateError(`customer ${id}'s merges lead further than ${MAX_HOPS} records`);
}

/** The records merged into this customer (tombstones whose `merged_into` it is): the same person's. */
export async function mergedRecordsOf(g: Graph, id: string): Promise<string[]> {
  return readTx(g, async (tx) => mergedRecordsOfTx(tx, id));
}

export async function mergedRecordsOfTx(tx: ManagedTransaction, id: string): Promise<string[]> {
  const r = (
    await tx.run(`MATCH (t:Customer {merged_into: $id}) WHERE t.status = 'merged' RETURN collect(t.id) AS ids`, { id })
  ).records[0];
  return ((r?.get('ids') as string[] | undefined) ?? []).sort();
}
