/**
 * A merged customer's id — the tombstone a merge leaves (graph/identityMerge.ts: status `merged`,
 * `merged_into`) — on the api's side, so that an agent or a person holding the old id keeps
 * working once the merge has committed:
 *
 * - reads (context, checkout options, profile, wallet, history) answer the survivor's data with
 *   `merged_into: <survivor id>` (absent for any other id);
 * - erasure and export follow it to the survivor (the same person);
 * - any other write addressed to it is refused, writing nothing, with the survivor named
 *   (CustomerMergedError: 409, gRPC FAILED_PRECONDITION);
 * - except for the merged record's own token: the person who held the record may not be the
 *   survivor's owner (ops merge without asking), so that token reaches the tombstone only —
 *   never the survivor's data, export or erasure (`refuseMergedSelf`: 403 `merged-record`,
 *   gRPC PERMISSION_DENIED, naming no survivor).
 */
import { CustomerMergedError, NotFoundError } from '../../graph/errors';
import type { Graph } from '../../graph/graph';
import { survivorOf } from '../../graph/mergedRecords';
import { actsAsSelf, AuthError, type Principal, type Scope } from '../auth';

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

/** Problem type of the refusal a merged record's own token gets. */
export const MERGED_RECORD = 'merged-record';

/** What a merged record's own token is told: the record holds nothing now; sign in as the survivor. */
export function mergedRecordRefusal(): AuthError {
  return new AuthError(
    403,
    'Forbidden: this customer record was merged into another customer record and holds no data of its own ' +
      'any more; its token reaches nothing. Sign in as the customer it was merged into to see or change that data.',
    { type: MERGED_RECORD },
  );
}

/**
 * Refuses a customer's own token (not ops, none of the route's scopes) of a record that a merge
 * made a tombstone. Agents and ops that name a merged id are not affected (they follow it).
 */
export async function refuseMergedSelf(
  g: Graph,
  principal: Principal,
  routeScopes: readonly Scope[],
  id: string | undefined,
): Promise<void> {
  if (id === undefined || !actsAsSelf(principal, routeScopes)) return;
  const found = await survivorOf(g, id);
  if (found?.merged_into) throw mergedRecordRefusal();
}

/**
 * A merge may commit between that check and the read: an answer about a merged id (it carries
 * `merged_into`) is never one a customer's own token may see.
 */
export function refuseMergedAnswer(principal: Principal, routeScopes: readonly Scope[], answer: unknown): void {
  if (!actsAsSelf(principal, routeScopes)) return;
  const mergedInto = (answer as { merged_into?: unknown } | null)?.merged_into;
  if (typeof mergedInto === 'string' && mergedInto !== '') throw mergedRecordRefusal();
}
