/**
 * Graph reads and writes of payment recovery: the candidates to charge, and how a recovery ends
 * (recovered, failed, stopped). A charge's reservation is graph/chargeReservation.ts.
 */
import type { RecoveryMechanism } from '../payments/mechanisms';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { toPlain } from './convert';
import { TRUST_ON_DEVICE } from './devices';
import { CustomerMergedError } from './errors';
import { survivorOfTx } from './mergedRecords';
import { appendEvent } from './events';
import { lockNode, readTx, writeTx, type Graph } from './graph';
import { endRecoveryTx, readRecoveryTx, type RecoveryLedger } from './chargeLedger';
import { STANDING_CYPHER, type LedgerEnd } from './chargeReservation';

export interface RecoveryCandidate {
  payment_method_id: string;
  used_on_trusted_device: boolean;
  last_used: string | null;
}

const CYPHER = {
  candidates: `
    MATCH (c:Customer {id: $customerId})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod {status: 'active'})
    WHERE NOT p.id IN $exclude AND (p.expiry_year IS NULL OR p.expiry_year * 12 + p.expiry_month >= $currentMonth)
    // Used on a device this customer trusts (their trust there, not another account's on it).
    WITH p, r, EXISTS { (c)-[l:LOGGED_IN_FROM]->(d:Device)<-[:USED_ON]-(p)
                        WHERE ${TRUST_ON_DEVICE('l', 'd')} >= $trustThreshold } AS trusted
    RETURN p.id AS payment_method_id, trusted AS used_on_trusted_device, r.last_used AS last_used
    ORDER BY trusted DESC, r.last_used IS NULL, r.last_used DESC, p.created_at DESC`,
  // The recovered method becomes the one default only while it is active (a default is always
  // usable): one deactivated since the charge is recorded as used, and the default stays.
  // (Run under the customer's lock.) A wallet the method left meanwhile, or an empty one, is
  // recorded as it is: the recovery is the charge's, not the wallet's.
  recover: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD {is_default: true}]->(prev:PaymentMethod)
    WITH c, collect(prev.id) AS previous
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(target:PaymentMethod {id: $paymentMethodId})
    WITH c, previous, coalesce(target.status = 'active', false) AS usable
    CALL (c, usable) {
      MATCH (c)-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
      SET r.is_default = CASE WHEN usable THEN p.id = $paymentMethodId ELSE r.is_default END,
          r.last_used = CASE WHEN p.id = $paymentMethodId THEN datetime.transaction() ELSE r.last_used END
    }
    RETURN previous, usable`,
  lockCustomer: `
    OPTIONAL MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    RETURN c.status AS status, c.merged_into AS mergedInto`,
} as const;

/**
 * The customer's other active, unexpired methods to try: those used on a trusted device first,
 * then the most recently used.
 */
export async function listRecoveryCandidates(
  g: Graph,
  customerId: string,
  exclude: string[],
  trustThreshold: number,
  now = new Date(),
): Promise<RecoveryCandidate[]> {
  return readTx(g, async (tx) => {
    const res = await tx.run(CYPHER.candidates, {
      customerId,
      exclude,
      trustThreshold,
      currentMonth: neo4j.int(now.getUTCFullYear() * 12 + now.getUTCMonth() + 1),
    });
    return res.records.map((r) => toPlain(r.toObject()) as unknown as RecoveryCandidate);
  });
}

export interface RecoveryRecord {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  charge_id: string;
  amount: number;
  currency: string;
  /** What recovered it (absent in records of recoveries started before it was kept). */
  mechanism?: RecoveryMechanism;
}

/**
 * What recording a recovery came to: written now, or already (the same payment's record, once);
 * for a repair (`repair: true`, the gateway reconciliation) also refused because the recovery was
 * recorded as failed or stopped, or the customer (erased, or gone) or the method is no longer there
 * to hold it.
 */
export type RecordRecoveryOutcome =
  'recorded' | 'already_recorded' | 'recorded_failed' | 'customer_gone' | 'method_gone';

/**
 * The recovery succeeded: in one transaction, under the customer's lock and then the recovery's,
 * the charge ledger records it recovered (once per payment: the charge recorded first stands), the
 * method becomes the customer's one default (DefaultPaymentMethodChanged; only while it is active:
 * a card removed since is recorded as what recovered, and the default stays) and PaymentRecovered
 * is written. Money moved: a recovery the ledger had ended (stopped while the charge's outcome was
 * unknown) is recorded recovered all the same. A customer erased since keeps only the ledger's
 * record (no events, nothing personal). With `repair`, the record is refused, under those locks,
 * for a recovery recorded failed or stopped and for a customer erased or gone or a method gone.
 */
export async function recordRecovery(
  g: Graph,
  rec: RecoveryRecord,
  options: {
    repair?: boolean;
    /**
     * More of the recovery to write in the same transaction, once it is recorded (now or before),
     * for a customer still there: the recovered payment counted in the profile. Idempotent itself.
     */
    alsoTx?: (tx: ManagedTransaction) => Promise<void>;
  } = {},
): Promise<RecordRecoveryOutcome> {
  return writeTx(g, async (tx): Promise<RecordRecoveryOutcome> => {
    const { outcome, present } = await recordRecoveryTx(tx, rec, options);
    if (options.alsoTx && present && (outcome === 'recorded' || outcome === 'already_recorded'))
      await options.alsoTx(tx);
    return outcome;
  });
}

async function recordRecoveryTx(
  tx: ManagedTransaction,
  rec: RecoveryRecord,
  options: { repair?: boolean },
): Promise<{ outcome: RecordRecoveryOutcome; present: boolean }> {
  const lock = (await tx.run(CYPHER.lockCustomer, { customerId: rec.customer_id })).records[0];
  const status = (lock?.get('status') as string | null | undefined) ?? null;
  // A tombstone has no methods: the recovery is the survivor's now (the caller records it there).
  if (status === 'merged') throw new CustomerMergedError(rec.customer_id, lock?.get('mergedInto') as string);
  const present = status !== null && status !== 'erased';
  if (options.repair) {
    if (!present) return { outcome: 'customer_gone', present };
    const standing = (
      await tx.run(STANDING_CYPHER, { customerId: rec.customer_id, paymentMethodId: rec.payment_method_id })
    ).records[0];
    if (standing?.get('method') === null) return { outcome: 'method_gone', present };
    const ledger = await readRecoveryTx(tx, rec.payment_id);
    if (ledger?.state === 'recovered') return { outcome: 'already_recorded', present };
    // A recovery recorded as failed charged nothing, it said: ops look. One that stopped (a cancel)
    // while its charge's outcome was unknown is recorded as recovered: the money moved.
    if (ledger?.state === 'failed') return { outcome: 'recorded_failed', present };
  }
  const end = await endRecoveryTx(tx, {
    payment_id: rec.payment_id,
    customer_id: rec.customer_id,
    state: 'recovered',
    charge_id: rec.charge_id,
    recovered_with: rec.payment_method_id,
    money_moved: true,
  });
  if (!end.open) return { outcome: 'already_recorded', present };
  if (!present) return { outcome: 'recorded', present };
  const record = (await tx.run(CYPHER.recover, { customerId: rec.customer_id, paymentMethodId: rec.payment_method_id }))
    .records[0];
  const previous = ((record?.get('previous') as string[] | undefined) ?? [])[0] ?? null;
  if (record?.get('usable') === true && previous !== rec.payment_method_id) {
    await appendEvent(tx, 'DefaultPaymentMethodChanged', rec.customer_id, {
      from: previous,
      to: rec.payment_method_id,
      reason: 'payment_recovered',
    });
  }
  await appendEvent(
    tx,
    'PaymentRecovered',
    rec.customer_id,
    {
      payment_id: rec.payment_id,
      payment_method_id: rec.payment_method_id,
      charge_id: rec.charge_id,
      amount: rec.amount,
      currency: rec.currency,
      ...(rec.mechanism ? { mechanism: rec.mechanism } : {}),
    },
    { idempotencyKey: `recovered:${rec.payment_id}` },
  );
  return { outcome: 'recorded', present };
}

/**
 * The recovery gave up: the ledger records it failed and PaymentRecoveryFailed is written, once per
 * payment (never over an end recorded before; an erased customer keeps only the ledger's record).
 * Answers how the ledger has it ended: this failure, or an end recorded before (another run's).
 */
export async function recordRecoveryFailed(
  g: Graph,
  rec: { payment_id: string; customer_id: string; attempts: number; reason: string },
): Promise<LedgerEnd> {
  return writeTx(g, async (tx) => {
    // A customer merged since: the survivor's history says it.
    const customerId = (await survivorOfTx(tx, rec.customer_id))?.id ?? rec.customer_id;
    const lock = (await tx.run(CYPHER.lockCustomer, { customerId })).records[0];
    const status = (lock?.get('status') as string | null | undefined) ?? null;
    const end = await endRecoveryTx(tx, {
      payment_id: rec.payment_id,
      customer_id: rec.customer_id,
      state: 'failed',
      reason: rec.reason,
    });
    if (end.open && status !== null && status !== 'erased')
      await appendEvent(
        tx,
        'PaymentRecoveryFailed',
        customerId,
        { payment_id: rec.payment_id, attempts: rec.attempts, reason: rec.reason },
        { idempotencyKey: `recovery-failed:${rec.payment_id}` },
      );
    return ledgerEndOf(end.recovery);
  });
}

/** How the ledger has a recovery ended (after an end was recorded: this one, or one before it). */
function ledgerEndOf(r: RecoveryLedger): LedgerEnd {
  const state = r.state === 'recovering' ? 'stopped' : r.state;
  return { state, recovered_with: r.recovered_with, charge_id: r.charge_id, reason: r.reason };
}

/**
 * The recovery stopped (cancelled, the customer erased, a fraud-class decline): the ledger says so,
 * once. Answers how the ledger has it ended: this stop, or an end recorded before (another run's).
 */
export async function recordRecoveryStopped(
  g: Graph,
  rec: { payment_id: string; customer_id: string; reason: string },
): Promise<LedgerEnd> {
  const end = await writeTx(g, (tx) =>
    endRecoveryTx(tx, {
      payment_id: rec.payment_id,
      customer_id: rec.customer_id,
      state: 'stopped',
      reason: rec.reason,
    }),
  );
  return ledgerEndOf(end.recovery);
}
