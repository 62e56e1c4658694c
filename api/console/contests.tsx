/**
 * A customer's contested history entries, as ops see them on the customer page.
 */
import type { ApiDeps } from '../deps';
import type { ConsoleSession } from './session';

export async function ContestsSection(_props: { deps: ApiDeps; customerId: string; session: ConsoleSession }) {
  return null;
}
