/** Graph reads and writes of payment recovery. */
import type { RecoveryMechanism } from '../payments/mechanisms';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { toPlain } from './convert';
import { TRUST_ON_DEVICE } from './devices';
import { CustomerMergedError } from './errors';
import { survivorOfTx } from './mergedRecords';
import { appendEvent } from './events';
import type { RetryVerdict, RuleTable } from '../payments/networkRules';
import {
  governChargeTx,
  lockCardsInOrderTx,
  nameMethodsTx,
  recordReportedDeclineTx,
  type CardIdentity,
  type MethodName,
  type ReportedDecline,
} from './cardHistory';
import { lockNode, readTx, writeTx, type Graph } from './graph';
import { attemptTx, createAttemptTx, methodAttemptsSinceTx } from './chargeAttempts';
import { endRecoveryTx, lockRecoveryTx, readRecoveryTx, type LedgerAttempt } from './chargeLedger';

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
  // Whoever holds the method now (a merge moved it to the survivor): whether it may be charged.
  methodNow: `
    OPTIONAL MATCH (c:Customer)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    RETURN c.status AS customer, p.status AS method`,
  lockCustomer: `
    OPTIONAL MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    RETURN c.status AS status, c.merged_into AS mergedInto`,
  // Locks the customer, then the method (graph.ts lockNode): an erasure or a suspension commits
  // before or after the check, never under it, and concurrent recoveries count one after another.
  standing: `
    OPTIONAL MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    ${lockNode('p')}
    WITH c, p
    RETURN c.status AS customer, p.status AS method, p.token AS token, p.card_fingerprint AS fingerprint,
           c.merged_into AS mergedInto`,
} as const;

/**
 * Whether a charge may go ahead, decided in the graph right before it:
 *   allowed            — go ahead: the attempt is in the charge ledger (graph/chargeLedger.ts) as
 *                        sent, with the request as it is about to go;
 *   known              — the key was reserved before: it is the same charge, whatever changed
 *                        since (the card removed, the customer merged): its request as first sent
 *                        is what may go again, and the ledger says what became of it so far;
 *   limited            — card-network rule: for a card the processor never named, the method was
 *                        charged `max` times in 30 days across every recovery (counted in the
 *                        ledger); for a known card, the networks' rules (the governor) say not now;
 *   customer_suspended — the customer is suspended (a fraud outcome awaits review): no charge now;
 *   customer_erased    — the customer was erased (or never existed): never charge;
 *   method_unavailable — the method is gone from the wallet, no longer active, or has no token;
 *   recovery_ended     — the payment's recovery ended already (recovered, failed, stopped): a
 *                        payment is recovered once, and nothing more is charged for it.
 */
export type ChargeVerdict =
  'allowed' | 'known' | 'limited' | 'customer_suspended' | 'customer_erased' | 'method_unavailable' | 'recovery_ended';

/** What a charge the graph did not allow is answered (`not_charged` with the reason, or `limited`). */
export type RefusedVerdict = Exclude<ChargeVerdict, 'allowed' | 'known'>;

export type Reservation =
  | { verdict: 'allowed'; rule: RetryVerdict | null; attempt: LedgerAttempt; token: () => string }
  /**
   * `resendable`: a new charge of the method would be allowed now (its customer and it active). A
   * known key whose first request may never have reached the gateway is sent again only then:
   * otherwise the re-send could be the first real charge of a removed card or a suspended customer.
   */
  | { verdict: 'known'; rule: null; attempt: LedgerAttempt; resendable: boolean }
  | { verdict: RefusedVerdict; rule: RetryVerdict | null };

/** A charge to reserve: who, what, under which key, and what the governor needs. */
export interface ChargeToReserve {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  key: string;
  amount: number;
  currency: string;
  initiator: 'cit' | 'mit';
  /** The per-method cap for a card the processor never named (15 in 30 days). */
  max: number;
  card?: { identity: CardIdentity; table: RuleTable } | undefined;
  names?: MethodName[];
  reported?: { card: CardIdentity; payment_id: string; decline: ReportedDecline; table: RuleTable } | undefined;
}

/**
 * Decides in one transaction whether a charge may go (the verdicts above) and, when it may, records
 * it in the charge ledger before it goes — governed by the card-network rules when the card is
 * known: the governor (graph/cardHistory.ts) decides on the card's history under its lock, in place
 * of the per-method cap; `rule` says why a charge is `limited`. What a charge writes before it is
 * governed goes in the same transaction: the processor's names for the cards of the customer's
 * methods (`names`) and the decline the recovery started from (`reported`, counted against its card
 * once per payment, whatever the verdict). An allowed charge's `token()` is the method's, read under
 * the lock (the one a renewal just wrote), and is the one the ledger keeps. A card named for a token
 * the method no longer has (renewed meanwhile) is not charged: `CardRenamedError`, and the charge,
 * retried, names the card again.
 */
export async function reserveGovernedCharge(g: Graph, charge: ChargeToReserve, now = new Date()): Promise<Reservation> {
  const decided = await writeTx(g, async (tx): Promise<Reservation> => {
    const standing = (
      await tx.run(CYPHER.standing, {
        customerId: charge.customer_id,
        paymentMethodId: charge.payment_method_id,
      })
    ).records[0];
    // The same key again is the same charge (a retried activity whose answer was lost): what the
    // ledger holds of it decides, whatever happened to the wallet or the customer since.
    const known = await attemptTx(tx, charge.key);
    if (known) {
      const now = (await tx.run(CYPHER.methodNow, { paymentMethodId: known.payment_method_id })).records[0];
      const resendable = now?.get('customer') === 'active' && now.get('method') === 'active';
      return { verdict: 'known', rule: null, attempt: known, resendable };
    }
    const sealed = (standing?.get('token') as string | null) ?? null;
    // Merged into another record since the recovery last heard (its methods are the survivor's
    // now): nothing is charged under the tombstone; the caller charges again for the survivor.
    if (standing?.get('customer') === 'merged')
      throw new CustomerMergedError(charge.customer_id, standing.get('mergedInto') as string);
    await nameMethodsTx(tx, charge.customer_id, charge.names ?? []);
    const { reported } = charge;
    if (reported) {
      // The customer's lock first (above), then the cards' in fingerprint order.
      await lockCardsInOrderTx(tx, charge.card ? [reported.card, charge.card.identity] : [reported.card]);
      await recordReportedDeclineTx(tx, reported.card, reported.payment_id, reported.decline, reported.table, now);
    }
    const customer = standing?.get('customer') as string | null;
    const method = standing?.get('method') as string | null;
    if (customer === null || customer === 'erased') return { verdict: 'customer_erased', rule: null };
    if (customer === 'suspended') return { verdict: 'customer_suspended', rule: null };
    if (method !== 'active' || sealed === null) return { verdict: 'method_unavailable', rule: null };
    const recovery = await lockRecoveryTx(tx, charge);
    if (recovery !== 'recovering') return { verdict: 'recovery_ended', rule: null };
    let rule: RetryVerdict | null = null;
    if (charge.card) {
      // The card governed must be the one the method's token is now (named above, or before).
      const named = charge.names?.find((n) => n.payment_method_id === charge.payment_method_id && n.sealed === sealed);
      const fingerprint = named ? named.card.fingerprint : (standing?.get('fingerprint') as string | null);
      if (fingerprint !== charge.card.identity.fingerprint) throw new CardRenamedError(charge.payment_method_id);
      rule = await governChargeTx(tx, charge.card.identity, charge.key, charge.card.table, now);
      if (rule.verdict !== 'allowed') return { verdict: 'limited', rule };
    } else {
      // A card the processor never named: the per-method cap, counted in the ledger.
      const since = new Date(now.getTime() - 30 * 24 * 60 * 60 * 1000);
      if ((await methodAttemptsSinceTx(tx, charge.payment_method_id, since)) >= charge.max)
        return { verdict: 'limited', rule: null };
    }
    const attempt = await createAttemptTx(
      tx,
      {
        key: charge.key,
        payment_id: charge.payment_id,
        customer_id: charge.customer_id,
        payment_method_id: charge.payment_method_id,
        sealed,
        card: charge.card?.identity ?? null,
        amount: charge.amount,
        currency: charge.currency,
        initiator: charge.initiator,
        reference: charge.payment_id,
      },
      now,
    );
    return { verdict: 'allowed', rule, attempt, token: () => '' };
  });
  if (decided.verdict !== 'allowed') return decided;
  const sealed = decided.attempt.sealed as string;
  return { ...decided, token: () => g.tokens.decrypt(sealed, charge.payment_method_id) };
}

/** The method's card changed (a renewal replaced its token) while a charge was prepared: name it again. */
export class CardRenamedError extends Error {
  constructor(paymentMethodId: string) {
    super(`payment method ${paymentMethodId} was renewed while its charge was prepared: its card is named again`);
    this.name = 'CardRenamedError';
  }
}

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
      await tx.run(CYPHER.standing, { customerId: rec.customer_id, paymentMethodId: rec.payment_method_id })
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
 */
export async function recordRecoveryFailed(
  g: Graph,
  rec: { payment_id: string; customer_id: string; attempts: number; reason: string },
): Promise<void> {
  await writeTx(g, async (tx) => {
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
    if (!end.open || status === null || status === 'erased') return;
    await appendEvent(
      tx,
      'PaymentRecoveryFailed',
      customerId,
      { payment_id: rec.payment_id, attempts: rec.attempts, reason: rec.reason },
      { idempotencyKey: `recovery-failed:${rec.payment_id}` },
    );
  });
}

/** The recovery stopped (cancelled, the customer erased, a fraud-class decline): the ledger says so, once. */
export async function recordRecoveryStopped(
  g: Graph,
  rec: { payment_id: string; customer_id: string; reason: string },
): Promise<void> {
  await writeTx(g, (tx) =>
    endRecoveryTx(tx, {
      payment_id: rec.payment_id,
      customer_id: rec.customer_id,
      state: 'stopped',
      reason: rec.reason,
    }),
  );
}
