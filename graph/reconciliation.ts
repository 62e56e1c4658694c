/**
 * What the graph recorded of the payments the gateway charged, read for the reconciliation with
 * the gateway's own records (activities/reconciliation.ts): a payment's PaymentRecovered and
 * PaymentRecoveryFailed (found by their idempotency keys, a unique-index seek each), the
 * recoveries recorded in a window (the other direction), the active methods' tokens to ask the
 * gateway about, and the charges left pending because their recovery still ran or their outcome
 * was not known yet.
 */
import neo4j from 'neo4j-driver';
import { toPlain } from './convert';
import { readTx, writeTx, type Graph } from './graph';

export interface RecordedRecovery {
  customer_id: string;
  payment_method_id: string;
  charge_id: string;
  amount: number;
  currency: string;
}

export interface RecordedPayment {
  /** The PaymentRecovered written for the payment; 'erased' when the customer's erasure emptied it. */
  recovered: RecordedRecovery | 'erased' | null;
  /** Whether PaymentRecoveryFailed was written for it. */
  failed: boolean;
}

/**
 * A gateway charge as the reconciliation keeps it while its recovery still runs, or while the
 * gateway has it as `processing`.
 */
export interface PendingCharge {
  payment_id: string;
  payment_method_id: string;
  charge_id: string;
  customer_id: string;
  amount: number;
  currency: string;
  created_at: string;
  /** The gateway had it as `processing` when it was kept: its outcome is asked again before it is settled. */
  processing?: boolean;
}

const CYPHER = {
  payments: `
    UNWIND $ids AS id
    OPTIONAL MATCH (r:Fact {key: 'recovered:' + id})
    OPTIONAL MATCH (f:Fact {key: 'recovery-failed:' + id})
    RETURN id, r.customer_id AS customer_id, r.result AS recovered, coalesce(r.erased, false) AS erased,
           f IS NOT NULL AS failed`,
  // The recoveries' facts (graph/facts.ts), index-backed on (type, at): the window in order, a
  // page at a time after the cursor. An erased customer's recoveries are emptied: nothing is
  // left to compare.
  recoveredBetween: `
    MATCH (f:Fact {type: 'PaymentRecovered'})
    WHERE f.at >= datetime($from) AND f.at < datetime($to)
      AND (f.at > datetime($afterAt) OR (f.at = datetime($afterAt) AND f.event_id > $afterId))
      AND f.erased IS NULL
    RETURN f.event_id AS id, toString(f.at) AS occurred_at, f.customer_id AS customer_id, f.result AS payload
    ORDER BY f.at, f.event_id
    LIMIT $limit`,
  activeTokens: `
    UNWIND $ids AS id
    MATCH (c:Customer)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: id, status: 'active'})
    RETURN p.id AS payment_method_id, c.id AS customer_id, p.token AS token`,
  keepPending: `
    MERGE (r:ReconciliationPending {id: $charge.payment_id})
    ON CREATE SET r += $charge, r.first_seen = datetime.realtime()`,
  pending: `
    MATCH (r:ReconciliationPending) WHERE r.id > $after
    RETURN r {.payment_id, .payment_method_id, .charge_id, .customer_id, .amount, .currency, .created_at,
              processing: coalesce(r.processing, false)} AS charge
    ORDER BY r.id LIMIT $limit`,
  settle: `MATCH (r:ReconciliationPending {id: $paymentId}) DELETE r`,
} as const;

function recovery(customerId: string, payload: string): RecordedRecovery {
  const p = JSON.parse(payload) as Record<string, unknown>;
  return {
    customer_id: customerId,
    payment_method_id: String(p.payment_method_id),
    charge_id: String(p.charge_id),
    amount: Number(p.amount),
    currency: String(p.currency),
  };
}

/** What the graph recorded for each payment id. */
export async function recordedPayments(g: Graph, paymentIds: string[]): Promise<Map<string, RecordedPayment>> {
  const rows = await readTx(g, async (tx) => (await tx.run(CYPHER.payments, { ids: paymentIds })).records);
  const out = new Map<string, RecordedPayment>();
  for (const r of rows) {
    const payload = r.get('recovered') as string | null;
    const recovered =
      payload === null ? null : r.get('erased') === true ? 'erased' : recovery(r.get('customer_id') as string, payload);
    out.set(r.get('id') as string, { recovered, failed: r.get('failed') as boolean });
  }
  return out;
}

export interface RecoveryRecordedEvent extends RecordedRecovery {
  event_id: string;
  occurred_at: string;
  payment_id: string;
}

/** PaymentRecovered events written in [from, to), in order, `limit` after the cursor. */
export async function recoveriesRecordedBetween(
  g: Graph,
  window: { from: string; to: string },
  after: { occurred_at: string; id: string } | null,
  limit: number,
): Promise<RecoveryRecordedEvent[]> {
  const rows = await readTx(
    g,
    async (tx) =>
      (
        await tx.run(CYPHER.recoveredBetween, {
          from: window.from,
          to: window.to,
          afterAt: after?.occurred_at ?? '0001-01-01T00:00:00Z',
          afterId: after?.id ?? '',
          limit: neo4j.int(limit),
        })
      ).records,
  );
  return rows.map((r) => {
    const payload = r.get('payload') as string;
    return {
      ...recovery(r.get('customer_id') as string, payload),
      event_id: r.get('id') as string,
      occurred_at: r.get('occurred_at') as string,
      payment_id: String((JSON.parse(payload) as { payment_id: unknown }).payment_id),
    };
  });
}

/** The methods among `ids` still active in a wallet, with their tokens decrypted (never logged). */
export async function activeMethodTokens(
  g: Graph,
  ids: string[],
): Promise<{ payment_method_id: string; customer_id: string; token: string }[]> {
  const rows = await readTx(g, async (tx) => (await tx.run(CYPHER.activeTokens, { ids })).records);
  return rows.map((r) => {
    const { payment_method_id, customer_id, token } = toPlain(r.toObject()) as Record<string, string>;
    return {
      payment_method_id: payment_method_id as string,
      customer_id: customer_id as string,
      token: g.tokens.decrypt(token as string, payment_method_id as string),
    };
  });
}

/**
 * Keeps a charge whose recovery still runs, or whose outcome is not known yet, to look at again
 * (once per payment: the first charge seen).
 */
export async function keepPendingCharge(g: Graph, charge: PendingCharge): Promise<void> {
  await writeTx(g, (tx) => tx.run(CYPHER.keepPending, { charge }));
}

/** The pending charges, by payment id, `limit` after `after`. */
export async function pendingCharges(g: Graph, after: string | null, limit: number): Promise<PendingCharge[]> {
  const rows = await readTx(
    g,
    async (tx) => (await tx.run(CYPHER.pending, { after: after ?? '', limit: neo4j.int(limit) })).records,
  );
  return rows.map((r) => toPlain(r.get('charge')) as unknown as PendingCharge);
}

/** A pending charge settled: recorded, repaired or flagged. */
export async function settlePendingCharge(g: Graph, paymentId: string): Promise<void> {
  await writeTx(g, (tx) => tx.run(CYPHER.settle, { paymentId }));
}
