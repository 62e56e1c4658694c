/**
 * What the networks' account updater said about a card, applied to the payment method: a new
 * expiry (and, for a reissued card, its new token, encrypted under the method's id as every token
 * is) in one transaction with `PaymentMethodUpdatedByNetwork`. A method the updater's answer
 * renews that was `expired` is active again (`PaymentMethodStatusChanged`, and the customer's
 * default when they have none). The same answer again changes nothing and writes nothing.
 *
 * Never touched: a method blocked for a reason the updater cannot know about (`compromised`,
 * `inactive`), a customer who is erased, and an answer whose expiry is past or not a month, a
 * renewal of the same card to an expiry earlier than it has, or a reissued token that is not a
 * token (a card number is refused). A reissued card has an expiry of its own, and is named again
 * by the processor before its next charge (its fingerprint may be another card's for the
 * networks' rules). Brand and last four are not the updater's to change.
 */
import { appendEvent } from './events';
import { lockNode, writeTx, type Graph } from './graph';
import type { PaymentMethodStatus } from './model';
import { setPaymentMethodStatusTx } from './walletDefaults';
import { assertIsToken } from './tokens';

/** The updater's answer about one card, as the processor gives it (clients/paymentGateway.ts). */
export type UpdaterAnswerForMethod =
  | { status: 'no_change' | 'closed' }
  | { status: 'updated'; expiry_month: number; expiry_year: number }
  | { status: 'replaced'; token: string; expiry_month: number; expiry_year: number };

export type UpdateOutcome =
  /**
   * The method has the updater's renewal: applied now, or (`already`) by an earlier call with the
   * same answer (a retried activity). `reactivated` when it was expired.
   */
  | { outcome: 'updated'; token_replaced: boolean; reactivated: boolean; expiry: string; already?: boolean }
  /** Nothing to change: the updater knows nothing newer than the method has. */
  | { outcome: 'unchanged' }
  /** The answer is not applied, and why (in words). */
  | { outcome: 'not_applied'; reason: string };

const CYPHER = {
  // The customer's lock first, then the method is found again under it (a removal or an erasure
  // that committed meanwhile leaves nothing to find).
  lock: `
    MATCH (c0:Customer)-[:HAS_PAYMENT_METHOD]->(:PaymentMethod {id: $id})
    WITH c0 AS c
    ${lockNode('c')}
    WITH c
    MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $id})
    ${lockNode('p')}
    RETURN c.id AS customerId, c.status AS customerStatus, p.status AS status,
           p.expiry_month AS month, p.expiry_year AS year, p.renewed_to AS renewedTo, p.token AS token`,
  // A reissued card may be another card for the networks: it is named again before its next charge.
  set: `
    MATCH (p:PaymentMethod {id: $id})
    SET p.expiry_month = $month, p.expiry_year = $year, p.updated_at = datetime.transaction(),
        p.renewed_to = $renewedTo, p.expiry_warning = null
    FOREACH (_ IN CASE WHEN $token IS NULL THEN [] ELSE [1] END |
      SET p.token = $token, p.card_fingerprint = null, p.card_network = null)`,
} as const;

/** Statuses an updater's answer may renew: it says nothing about why a card was blocked. */
const RENEWABLE: readonly PaymentMethodStatus[] = ['active', 'expired'];
/** The last expiry year the graph takes (graph/model.ts). */
const LAST_YEAR = 2100;

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
  if (!Number.isInteger(month) || month < 1 || month > 12 || !Number.isInteger(year) || year > LAST_YEAR)
    return { outcome: 'not_applied', reason: `the updater's expiry ${month}/${year} is not a month` };
  if (year * 12 + month < now.getUTCFullYear() * 12 + now.getUTCMonth() + 1)
    return { outcome: 'not_applied', reason: `the updater's expiry ${label(year, month)} is past` };
  if (answer.status === 'replaced') {
    try {
      assertIsToken(answer.token, 'token');
    } catch {
      return { outcome: 'not_applied', reason: 'the reissued token is not a gateway token' };
    }
  }
  const to = label(year, month);
  return writeTx(g, async (tx): Promise<UpdateOutcome> => {
    const r = (await tx.run(CYPHER.lock, { id: paymentMethodId })).records[0];
    if (!r) return { outcome: 'not_applied', reason: 'the payment method is gone' };
    const customerId = r.get('customerId') as string;
    if (r.get('customerStatus') === 'erased') return { outcome: 'not_applied', reason: 'the customer is erased' };
    const status = r.get('status') as PaymentMethodStatus;
    if (!RENEWABLE.includes(status)) return { outcome: 'not_applied', reason: `the payment method is ${status}` };
    const stored =
      r.get('month') === null || r.get('year') === null ? null : label(Number(r.get('year')), Number(r.get('month')));
    const tokenReplaced = answer.status === 'replaced';
    const sameToken = () => {
      const current = r.get('token') as string | null;
      return current !== null && g.tokens.decrypt(current, paymentMethodId) === (answer as { token: string }).token;
    };
    if (stored === to && (!tokenReplaced || sameToken())) {
      // This renewal was applied before (a retried call): the method has it.
      if (r.get('renewedTo') === to && status === 'active')
        return { outcome: 'updated', token_replaced: tokenReplaced, reactivated: false, expiry: to, already: true };
      // The updater knows what the method already says: nothing new (an expired card stays expired).
      return { outcome: 'unchanged' };
    }
    // A renewal of the same card never goes back in time; a reissued card has an expiry of its own.
    if (!tokenReplaced && stored !== null && to < stored)
      return { outcome: 'not_applied', reason: `the updater's expiry ${to} is earlier than the card's ${stored}` };
    await tx.run(CYPHER.set, {
      id: paymentMethodId,
      month,
      year,
      renewedTo: to,
      token: tokenReplaced ? g.tokens.encrypt((answer as { token: string }).token, paymentMethodId) : null,
    });
    await appendEvent(tx, 'PaymentMethodUpdatedByNetwork', customerId, {
      payment_method_id: paymentMethodId,
      source: 'account_updater',
      expiry_from: stored,
      expiry_to: to,
      token_replaced: tokenReplaced,
    });
    const reactivated = status === 'expired';
    if (reactivated)
      await setPaymentMethodStatusTx(tx, paymentMethodId, 'active', {
        reason: `the account updater renewed the card (expires ${to})`,
      });
    return { outcome: 'updated', token_replaced: tokenReplaced, reactivated, expiry: to };
  });
}
