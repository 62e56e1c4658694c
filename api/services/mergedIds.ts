/**
 * A merged customer's id — the tombstone a merge leaves (graph/merge.ts: status `merged`,
 * `merged_into`) — on the api's side, so that an agent or a person holding the old id keeps
 * working once the merge has committed:
 *
 * - reads (context, checkout options, profile, wallet, history) answer the survivor's data with
 *   `merged_into: <survivor id>` (absent for any other id);
 * - erasure and export follow it to the survivor (the same person);
 * - any other write addressed to it is refused, writing nothing, with the survivor named
 *   (CustomerMergedError: 409, gRPC FAILED_PRECONDITION).
 */
import { CustomerMergedError, NotFoundError } from '../../graph/errors';
import type { Graph } from '../../graph/graph';
import { survivorOf } from '../../graph/merge';

/** A status as the graph holds it: `merged` is a tombstone's (not a CustomerStatus a writer sets). */
export function isMergedStatus(status: string): boolean {
  return status === 'merged';
}

/** What an answer about a merged id adds: `merged_into`, the survivor it answers for. Nothing otherwise. */
export function mergedInto(survivor: string | null | undefined): { merged_into?: string } {
  return survivor ? { merged_into: survivor } : {};
}

/**
 * Where a customer id leads now: itself, or the survivor of its merge (with `merged_into`).
 * NotFoundError when there is no such customer.
 */
export async function followMerge(g: Graph, id: string): Promise<{ id: string; merged_into?: string }> {
  const found = await survivorOf(g, id);
  if (!found) throw new NotFoundError('Customer', id);
  return found.merged_into === null ? { id } : { id: found.id, ...mergedInto(found.merged_into) };
}

/** A customer read as `merged` (a tombstone): the refusal of a write to it, naming its survivor. */
export async function mergedRefusal(g: Graph, id: string): Promise<CustomerMergedError> {
  const found = await followMerge(g, id);
  return new CustomerMergedError(id, found.id);
}
