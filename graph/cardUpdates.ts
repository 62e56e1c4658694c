/**
 * What the networks' account updater said about a card, applied to the payment method: a new
 * expiry (and, for a reissued card, its new token, encrypted under the method's id as every token
 * is) in one transaction with `PaymentMethodUpdatedByNetwork`. A method the updater's answer
 * renews that was `expired` is active again (`PaymentMethodStatusChanged`, and the customer's
 * default when they have none). The same answer again changes nothing and writes nothing.
 *
 * Never touched: a method blocked for a reason the updater cannot know about (`compromised`,
 * `inactive`), a customer who is erased, and an answer whose expiry is already past.
 */
import { appendEvent } from './events';
import { lockNode, writeTx, type Graph } from './graph';
import type { PaymentMethodStatus } from './model';
import { setPaymentMethodStatusTx } from './paymentMethods';

/** The updater's answer about one card, as the processor gives it (clients/paymentGateway.ts). */
export type UpdaterAnswerForMethod =
  | { status: 'no_change' | 'closed' }
  | { status: 'updated'; expiry_month: number; expiry_year: number }
  | { status: 'replaced'; token: string; expiry_month: number; expiry_year: number };

export type UpdateOutcome =
  /** The method now has the new expiry (and token); `reactivated` when it was expired. */
  | { outcome: 'updated'; token_replaced: boolean; reactivated: boolean; expiry: string }
  /** Nothing to change: the updater knows nothing newer, or the method already has it. */
  | { outcome: 'unchanged' }
  /** The answer is not applied, and why (in words). */
  | { outcome: 'not_applied'; reason: string };

const CYPHER = {
  lock: `
    MATCH (c:Customer)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $id})
    ${lockNode('c')}
    WITH c, p
    ${lockNode('p')}
    RETURN c.id AS customerId, c.status AS customerStatus, p.status AS status,
           p.expiry_month AS month, p.expiry_year AS year`,
  set: `
    MATCH (p:PaymentMethod {id: $id})
    SET p.expiry_month = $month, p.expiry_year = $year, p.updated_at = datetime.transaction(),
        p.token = coalesce($token, p.token), p.expiry_warning = null`,
} as const;

/** Statuses an updater's answer may renew: it says nothing about why a card was blocked. */
const RENEWABLE: readonly PaymentMethodStatus[] = ['active', 'expired'];

const label = (year: number, month: number) => `${year}-${String(month).padStart(2, '0')}`;

export async function applyUpdaterAnswer(
  g: Graph,
  paymentMethodId: string,
  answer: UpdaterAnswerForMethod,
  now = new Date(),
): Promise<UpdateOutcome> {
  if (answer.status !== 'updated' && answer.status !== 'replaced')
    return answer.status === 'closed'
      ? { outcome: 'not_applied', reason: 'the card account is closed' }
      : { outcome: 'unchanged' };
  const { expiry_month: month, expiry_year: year } = answer;
  if (!Number.isInteger(month) || month < 1 || month > 12 || !Number.isInteger(year))
    return { outcome: 'not_applied', reason: `the updater's expiry ${month}/${year} is not a month` };
  if (year * 12 + month < now.getUTCFullYear() * 12 + now.getUTCMonth() + 1)
    return { outcome: 'not_applied', reason: `the updater's expiry ${label(year, month)} is past` };
  return writeTx(g, async (tx) => {
    const r = (await tx.run(CYPHER.lock, { id: paymentMethodId })).records[0];
    if (!r) return { outcome: 'not_applied' as const, reason: 'the payment method is gone' };
    const customerId = r.get('customerId') as string;
    if (r.get('customerStatus') === 'erased')
      return { outcome: 'not_applied' as const, reason: 'the customer is erased' };
    const status = r.get('status') as PaymentMethodStatus;
    if (!RENEWABLE.includes(status))
      return { outcome: 'not_applied' as const, reason: `the payment method is ${status}` };
    const from = { month: Number(r.get('month')), year: Number(r.get('year')) };
    const tokenReplaced = answer.status === 'replaced';
    if (from.month === month && from.year === year && !tokenReplaced && status === 'active')
      return { outcome: 'unchanged' as const };
    if (from.month === month && from.year === year && tokenReplaced && status === 'active') {
      // The same reissue again (a retried activity): the token is the same card's; nothing to say.
      const same = await tx.run('MATCH (p:PaymentMethod {id: $id}) RETURN p.token AS token', { id: paymentMethodId });
      const stored = same.records[0]?.get('token') as string | undefined;
      if (stored && g.tokens.decrypt(stored, paymentMethodId) === answer.token)
        return { outcome: 'unchanged' as const };
    }
    await tx.run(CYPHER.set, {
      id: paymentMethodId,
      month,
      year,
      token: tokenReplaced ? g.tokens.encrypt(answer.token, paymentMethodId) : null,
    });
    await appendEvent(tx, 'PaymentMethodUpdatedByNetwork', customerId, {
      payment_method_id: paymentMethodId,
      source: 'account_updater',
      expiry_from: Number.isFinite(from.month) && Number.isFinite(from.year) ? label(from.year, from.month) : null,
      expiry_to: label(year, month),
      token_replaced: tokenReplaced,
    });
    const reactivated = status === 'expired';
    if (reactivated)
      await setPaymentMethodStatusTx(tx, paymentMethodId, 'active', {
        reason: `the account updater renewed the card (expires ${label(year, month)})`,
      });
    return { outcome: 'updated' as const, token_replaced: tokenReplaced, reactivated, expiry: label(year, month) };
  });
}
