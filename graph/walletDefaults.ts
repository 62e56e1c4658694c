/**
 * A wallet's default and its methods' status (graph/paymentMethods.ts keeps the rules): the one
 * default set by the customer; a status change, with the default moved in the same transaction
 * when the method stops being usable, or adopted when an active method finds no default.
 */
import type { ManagedTransaction } from 'neo4j-driver';
import { z } from 'zod';
import { InvalidStateError, NotFoundError } from './errors';
import { appendEvent } from './events';
import { writeTx, type Graph } from './graph';
import {
  PAYMENT_METHOD_STATUSES,
  parseInput,
  type CustomerStatus,
  type PaymentMethodStatus,
  type WalletEntry,
} from './model';
import { lockWalletOwnerTx, toEntry, WALLET_ENTRY } from './paymentMethods';

const CYPHER = {
  defaultCandidate: `
    MATCH (c:Customer {id: $customerId})
    SET c.updated_at = datetime.transaction()
    WITH c
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(target:PaymentMethod {id: $paymentMethodId})
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD {is_default: true}]->(cur:PaymentMethod)
    RETURN target.status AS targetStatus, collect(cur.id) AS currentIds`,
  setDefault: `
    MATCH (:Customer {id: $customerId})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
    SET r.is_default = (p.id = $paymentMethodId)`,
  // The customer's lock first (the lock order every writer keeps: graph/graph.ts), then the
  // method's; `from` is read under it.
  setStatus: `
    MATCH (c:Customer)-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    SET c.updated_at = datetime.transaction()
    WITH c, r, p
    SET p.updated_at = datetime.transaction()
    WITH c, r, p, p.status AS from
    SET p.status = $status
    RETURN c.id AS customerId, from, ${WALLET_ENTRY} AS entry`,
  // A default that is no longer active stops being the default; the most recently used active
  // method left takes its place (or none does). Runs under the customers' locks, after the
  // status change, in the same transaction. One row per default that moved.
  replaceUnusableDefaults: `
    UNWIND $cards AS card
    MATCH (c:Customer {id: card.customerId})-[r:HAS_PAYMENT_METHOD {is_default: true}]->(p:PaymentMethod {id: card.id})
    WHERE p.status <> 'active'
    SET r.is_default = false
    WITH c, p
    CALL (c) {
      OPTIONAL MATCH (c)-[n:HAS_PAYMENT_METHOD]->(next:PaymentMethod {status: 'active'})
      WITH n, next ORDER BY n.last_used IS NULL, n.last_used DESC, next.created_at DESC LIMIT 1
      FOREACH (x IN CASE WHEN n IS NULL THEN [] ELSE [n] END | SET x.is_default = true)
      RETURN next.id AS promoted
    }
    RETURN c.id AS customerId, p.id AS paymentMethodId, promoted`,
  // A method that becomes active where the customer has no default becomes it (as an added one does).
  adoptDefault: `
    MATCH (c:Customer {id: $customerId})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    WHERE p.status = 'active' AND NOT EXISTS { (c)-[:HAS_PAYMENT_METHOD {is_default: true}]->(:PaymentMethod) }
    SET r.is_default = true
    RETURN p.id AS id`,
} as const;

/**
 * Makes an active method the customer's one default, in one transaction under the customer's
 * lock, with DefaultPaymentMethodChanged `{from, to}`. The customer's status is checked under the
 * lock as for any wallet write (`allowStatuses`, default active or suspended; never erased or
 * merged). Setting the current default again changes nothing and emits nothing.
 */
export async function setDefaultPaymentMethod(
  g: Graph,
  customerId: string,
  paymentMethodId: string,
  options: { allowStatuses?: readonly CustomerStatus[] } = {},
): Promise<void> {
  await writeTx(g, async (tx) => {
    await lockWalletOwnerTx(tx, customerId, options.allowStatuses);
    const res = await tx.run(CYPHER.defaultCandidate, { customerId, paymentMethodId });
    const record = res.records[0];
    if (!record) throw new NotFoundError('Customer', customerId);
    const status = record.get('targetStatus') as PaymentMethodStatus | null;
    if (status === null) throw new NotFoundError('PaymentMethod', paymentMethodId);
    if (status !== 'active') {
      throw new InvalidStateError(
        `payment method ${paymentMethodId} is ${status}; only an active method can be the default`,
      );
    }
    const currentIds = record.get('currentIds') as string[];
    if (currentIds.length === 1 && currentIds[0] === paymentMethodId) return;
    await tx.run(CYPHER.setDefault, { customerId, paymentMethodId });
    await appendEvent(tx, 'DefaultPaymentMethodChanged', customerId, {
      from: currentIds[0] ?? null,
      to: paymentMethodId,
    });
  });
}

/** A default method that stopped being usable, and what replaced it (null: nothing did). */
export interface DefaultReplacement {
  customer_id: string;
  from: string;
  to: string | null;
}

/**
 * After status changes inside the caller's transaction (which holds the customers' locks): every
 * changed method that was its customer's default and is no longer active stops being the
 * default, and the customer's most recently used active method (else the newest) becomes it, or
 * none does. The checkout never offers a compromised, expired or inactive default. Returns the
 * moves; the caller appends a DefaultPaymentMethodChanged for each (`defaultChangedEvent`).
 */
export async function replaceUnusableDefaultsTx(
  tx: ManagedTransaction,
  cards: { customer_id: string; payment_method_id: string }[],
): Promise<DefaultReplacement[]> {
  if (cards.length === 0) return [];
  const res = await tx.run(CYPHER.replaceUnusableDefaults, {
    cards: cards.map((c) => ({ customerId: c.customer_id, id: c.payment_method_id })),
  });
  return res.records.map((r) => ({
    customer_id: r.get('customerId') as string,
    from: r.get('paymentMethodId') as string,
    to: r.get('promoted') as string | null,
  }));
}

/** The DefaultPaymentMethodChanged event of a replaced default. */
export function defaultChangedEvent(m: DefaultReplacement, status: PaymentMethodStatus) {
  return {
    type: 'DefaultPaymentMethodChanged' as const,
    customerId: m.customer_id,
    payload: { from: m.from, to: m.to, reason: `payment_method_${status}` },
  };
}

/**
 * Changes a method's status inside the caller's transaction, with PaymentMethodStatusChanged
 * (`{payment_method_id, from, to, reason, ...extra}`) when it changed. When the method was the
 * default and is no longer active, the default moves in the same transaction
 * (replaceUnusableDefaultsTx) with DefaultPaymentMethodChanged; a method that becomes active
 * where the customer has no default becomes it (a false positive's card is the default again).
 * Takes the customer's lock before the method's.
 */
export async function setPaymentMethodStatusTx(
  tx: ManagedTransaction,
  paymentMethodId: string,
  to: PaymentMethodStatus,
  options: { reason?: string; extra?: Record<string, unknown> } = {},
): Promise<{ customer_id: string; from: PaymentMethodStatus; entry: WalletEntry }> {
  const res = await tx.run(CYPHER.setStatus, { paymentMethodId, status: to });
  const record = res.records[0];
  if (!record) throw new NotFoundError('PaymentMethod', paymentMethodId);
  const customerId = record.get('customerId') as string;
  const from = record.get('from') as PaymentMethodStatus;
  const entry = toEntry(record.get('entry'));
  if (from !== to) {
    await appendEvent(tx, 'PaymentMethodStatusChanged', customerId, {
      payment_method_id: paymentMethodId,
      from,
      to,
      reason: options.reason ?? null,
      ...options.extra,
    });
    const [moved] = await replaceUnusableDefaultsTx(tx, [
      { customer_id: customerId, payment_method_id: paymentMethodId },
    ]);
    if (moved) {
      const event = defaultChangedEvent(moved, to);
      await appendEvent(tx, event.type, event.customerId, event.payload);
      entry.is_default = false;
    }
    if (to === 'active' && (await tx.run(CYPHER.adoptDefault, { customerId, paymentMethodId })).records.length > 0) {
      await appendEvent(tx, 'DefaultPaymentMethodChanged', customerId, {
        from: null,
        to: paymentMethodId,
        reason: 'payment_method_active',
      });
      entry.is_default = true;
    }
  }
  return { customer_id: customerId, from, entry };
}

/**
 * Changes a method's status (e.g. active → expired) with a PaymentMethodStatusChanged event
 * carrying the reason. Setting the status it already has emits nothing.
 */
export async function updatePaymentMethodStatus(
  g: Graph,
  paymentMethodId: string,
  status: PaymentMethodStatus,
  options: { reason?: string } = {},
): Promise<WalletEntry & { customer_id: string }> {
  const to = parseInput(z.enum(PAYMENT_METHOD_STATUSES), status, 'status');
  return writeTx(g, async (tx) => {
    const { customer_id, entry } = await setPaymentMethodStatusTx(tx, paymentMethodId, to, options);
    return { ...entry, customer_id };
  });
}
