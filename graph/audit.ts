/**
 * What ops (or the platform) did for a customer with a reason — an export, a wallet change of a
 * customer who is not active — recorded as an `OpsActionRecorded` event under the customer's
 * lock, before the action runs.
 */
import type { CustomerStatus } from './model';
import { appendEvent } from './events';
import { NotFoundError } from './errors';
import { writeTx, type Graph } from './graph';

export type AuditedAction = 'export' | 'add_payment_method' | 'remove_payment_method';

const CYPHER = {
  // The customer's lock first, as every writer of its events takes it.
  lock: `
    MATCH (c:Customer {id: $id})
    SET c.updated_at = datetime.transaction()
    RETURN c.status AS status`,
} as const;

export async function recordOpsAction(
  g: Graph,
  customerId: string,
  entry: { action: AuditedAction; reason: string; actor: string | null },
): Promise<void> {
  await writeTx(g, async (tx) => {
    const record = (await tx.run(CYPHER.lock, { id: customerId })).records[0];
    if (!record) throw new NotFoundError('Customer', customerId);
    await appendEvent(tx, 'OpsActionRecorded', customerId, {
      ...entry,
      customer_status: record.get('status') as CustomerStatus,
    });
  });
}
