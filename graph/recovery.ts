/** Graph reads and writes of payment recovery. */
import type { RecoveryMechanism } from '../payments/mechanisms';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { toPlain } from './convert';
import { ConflictError, CustomerMergedError, NotFoundError } from './errors';
import { survivorOfTx } from './merge';
import { appendEvent, findEventByIdempotencyKey } from './events';
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

export interface RecoveryCandidate {
  payment_method_id: string;
  used_on_trusted_device: boolean;
  last_used: string | null;
}

const CYPHER = {
  candidates: `
    MATCH (c:Customer {id: $customerId})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod {status: 'active'})
    WHERE NOT p.id IN $exclude AND (p.expiry_year IS NULL OR p.expiry_year * 12 + p.expiry_month >= $currentMonth)
    WITH p, r, EXISTS { (p)-[:USED_ON]->(d:Device) WHERE d.trust_score >= $trustThreshold } AS trusted
    RETURN p.id AS payment_method_id, trusted AS used_on_trusted_device, r.last_used AS last_used
    ORDER BY trusted DESC, r.last_used IS NULL, r.last_used DESC, p.created_at DESC`,
  // The recovered method becomes the one default only while it is active (a default is always
  // usable): one deactivated since the charge is recorded as used, and the default stays.
  recover: `
    MATCH (c:Customer {id: $customerId})
    SET c.updated_at = datetime.transaction()
    WITH c
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD {is_default: true}]->(prev:PaymentMethod)
    WITH c, collect(prev.id) AS previous
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(target:PaymentMethod {id: $paymentMethodId})
    WITH c, previous, coalesce(target.status = 'active', false) AS usable
    MATCH (c)-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
    SET r.is_default = CASE WHEN usable THEN p.id = $paymentMethodId ELSE r.is_default END,
        r.last_used = CASE WHEN p.id = $paymentMethodId THEN datetime.transaction() ELSE r.last_used END
    RETURN DISTINCT previous, usable`,
  // Locks the customer, then the method (graph.ts lockNode): an erasure or a suspension commits
  // before or after the check, never under it, and concurrent recoveries count one after another.
  standing: `
    OPTIONAL MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    ${lockNode('p')}
    WITH c, p
    RETURN c.status AS customer, p.status AS method, $key IN coalesce(p.charge_attempt_keys, []) AS known,
           p.token AS token, p.card_fingerprint AS fingerprint, c.merged_into AS mergedInto`,
  reserve: `
    MATCH (p:PaymentMethod {id: $paymentMethodId})
    WITH p, coalesce(p.charge_attempt_keys, []) AS keys, coalesce(p.charge_attempt_times, []) AS times
    WITH p, [i IN range(0, size(keys) - 1) WHERE times[i] > datetime($since) | i] AS live, keys, times
    WITH p, [i IN live | keys[i]] AS recentKeys, [i IN live | times[i]] AS recentTimes
    WITH p, recentKeys, recentTimes, $key IN recentKeys AS known
    WITH p, recentKeys, recentTimes, known, known OR size(recentKeys) < $max AS allowed
    SET p.charge_attempt_keys = CASE WHEN allowed AND NOT known THEN recentKeys + $key ELSE recentKeys END,
        p.charge_attempt_times = CASE WHEN allowed AND NOT known THEN recentTimes + datetime($now) ELSE recentTimes END
    RETURN allowed`,
} as const;

/**
 * Whether a charge may go ahead, decided in the graph right before it:
 *   allowed            — go ahead (one attempt is reserved for the key); a key reserved before is
 *                        always allowed again, whatever changed since: it is the same charge;
 *   limited            — card-network rule: the method was charged `max` times in 30 days, across
 *                        every recovery (the same key again, a retried activity, is the same attempt),
 *                        or, for a known card, the networks' rules (`reserveGovernedCharge`) say not now;
 *   customer_suspended — the customer is suspended (a fraud outcome awaits review): no charge now;
 *   customer_erased    — the customer was erased (or never existed): never charge;
 *   method_unavailable — the method is gone from the wallet or no longer active: never charge it.
 */
export type ChargeVerdict = 'allowed' | 'limited' | 'customer_suspended' | 'customer_erased' | 'method_unavailable';

export async function reserveChargeAttempt(
  g: Graph,
  charge: { customer_id: string; payment_method_id: string; key: string; max: number },
  now = new Date(),
): Promise<ChargeVerdict> {
  return (await reserveGovernedCharge(g, charge, now)).verdict;
}

/**
 * `reserveChargeAttempt`, with the card-network rules when the card is known: the governor
 * (graph/cardHistory.ts) decides on the card's history under its lock in the same transaction,
 * in place of the per-method cap; `rule` says why a charge is `limited`. What a charge writes
 * before it is governed goes in the same transaction: the processor's names for the cards of the
 * customer's methods (`names`) and the decline the recovery started from (`reported`, counted
 * against its card once per payment, whatever the verdict). An allowed charge's `token()` is the
 * method's, read under the lock (the one a renewal just wrote). A card named for a token the
 * method no longer has (renewed meanwhile) is not charged: `CardRenamedError`, and the charge,
 * retried, names the card again.
 */
export async function reserveGovernedCharge(
  g: Graph,
  charge: {
    customer_id: string;
    payment_method_id: string;
    key: string;
    max: number;
    card?: { identity: CardIdentity; table: RuleTable } | undefined;
    names?: MethodName[];
    reported?: { card: CardIdentity; payment_id: string; decline: ReportedDecline; table: RuleTable } | undefined;
  },
  now = new Date(),
): Promise<{ verdict: ChargeVerdict; rule: RetryVerdict | null; token: () => string | null }> {
  const decided = await writeTx(g, async (tx) => {
    const standing = (
      await tx.run(CYPHER.standing, {
        customerId: charge.customer_id,
        paymentMethodId: charge.payment_method_id,
        key: charge.key,
      })
    ).records[0];
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
    // The same key again is the same charge (a retried activity whose answer was lost): it goes
    // to the gateway whatever happened since, so the gateway answers what it did the first time.
    if (standing?.get('known') === true) return { verdict: 'allowed' as const, rule: null, sealed };
    const customer = standing?.get('customer') as string | null;
    const method = standing?.get('method') as string | null;
    if (customer === null || customer === 'erased') return { verdict: 'customer_erased' as const, rule: null, sealed };
    if (customer === 'suspended') return { verdict: 'customer_suspended' as const, rule: null, sealed };
    if (method !== 'active') return { verdict: 'method_unavailable' as const, rule: null, sealed };
    if (charge.card) {
      // The card governed must be the one the method's token is now (named above, or before).
      const named = charge.names?.find((n) => n.payment_method_id === charge.payment_method_id && n.sealed === sealed);
      const fingerprint = named ? named.card.fingerprint : (standing?.get('fingerprint') as string | null);
      if (fingerprint !== charge.card.identity.fingerprint) throw new CardRenamedError(charge.payment_method_id);
      const rule = await governChargeTx(tx, charge.card.identity, charge.key, charge.card.table, now);
      if (rule.verdict !== 'allowed') return { verdict: 'limited' as const, rule, sealed };
    }
    const since = new Date(now.getTime() - 30 * 24 * 60 * 60 * 1000).toISOString();
    const record = (
      await tx.run(CYPHER.reserve, {
        paymentMethodId: charge.payment_method_id,
        key: charge.key,
        // A known card is governed by the networks' rules above; the per-method cap is for the rest.
        max: neo4j.int(charge.card ? 1_000_000 : charge.max),
        since,
        now: now.toISOString(),
      })
    ).records[0];
    const verdict = record?.get('allowed') === true ? ('allowed' as const) : ('limited' as const);
    return { verdict, rule: null, sealed };
  });
  const { verdict, rule, sealed } = decided;
  const token = () => (verdict === 'allowed' && sealed ? g.tokens.decrypt(sealed, charge.payment_method_id) : null);
  return { verdict, rule, token };
}

/** The method's card changed (a renewal replaced its token) while a charge was prepared: name it again. */
export class CardRenamedError extends Error {
  constructor(paymentMethodId: string) {
    super(`payment method ${paymentMethodId} was renewed while its charge was prepared: its card is named again`);
    this.name = 'CardRenamedError';
  }
}

/**
 * The payment ids whose recoveries reserved a charge on the customer's methods in the last 30
 * days (the keys the network rule keeps): read from the graph, so it is consistent where
 * Temporal's visibility lags. An erasure stops these too, whether visibility lists them yet or not.
 */
export async function recoveriesThatCharged(g: Graph, customerId: string): Promise<string[]> {
  const rows = await readTx(
    g,
    async (tx) =>
      (
        await tx.run(
          `MATCH (:Customer {id: $customerId})-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
           UNWIND coalesce(p.charge_attempt_keys, []) AS key
           RETURN DISTINCT p.id AS method, key`,
          { customerId },
        )
      ).records,
  );
  const ids = new Set<string>();
  for (const r of rows) {
    // Keys are `<payment id>:<method id>` or `<payment id>:<method id>:r<round>`.
    const key = r.get('key') as string;
    const at = key.lastIndexOf(`:${r.get('method') as string}`);
    if (at > 0) ids.add(key.slice(0, at));
  }
  return [...ids];
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
 * for a repair (`repair: true`, the gateway reconciliation) also refused because the payment was
 * recorded as failed, or the customer (erased, or gone) or the method is no longer there to hold it.
 */
export type RecordRecoveryOutcome =
  'recorded' | 'already_recorded' | 'recorded_failed' | 'customer_gone' | 'method_gone';

/**
 * The recovery succeeded: in one transaction the method becomes the customer's one default
 * (DefaultPaymentMethodChanged; only while it is active) and PaymentRecovered is written, once per
 * payment. With `repair`, the customer is locked first and the record refused, under that lock,
 * for a payment recorded as failed and for a customer erased or gone or a method gone.
 */
export async function recordRecovery(
  g: Graph,
  rec: RecoveryRecord,
  options: {
    repair?: boolean;
    /**
     * More of the recovery to write in the same transaction, once it is recorded (now or before):
     * the recovered payment counted in the profile. Idempotent itself; after a lost race on the
     * record it runs alone.
     */
    alsoTx?: (tx: ManagedTransaction) => Promise<void>;
  } = {},
): Promise<RecordRecoveryOutcome> {
  try {
    return await writeTx(g, async (tx): Promise<RecordRecoveryOutcome> => {
      const outcome = await recordRecoveryTx(tx, rec, options);
      if (options.alsoTx && (outcome === 'recorded' || outcome === 'already_recorded')) await options.alsoTx(tx);
      return outcome;
    });
  } catch (err) {
    // A concurrent writer recorded it first (the idempotency key is unique) — and only that: a
    // conflict of `alsoTx` rolled the record back too, and is retried.
    if (!(err instanceof ConflictError)) throw err;
    const recorded = await readTx(g, (tx) => findEventByIdempotencyKey(tx, `recovered:${rec.payment_id}`));
    if (!recorded) throw err;
    if (options.alsoTx) await writeTx(g, options.alsoTx);
    return 'already_recorded';
  }
}

async function recordRecoveryTx(
  tx: ManagedTransaction,
  rec: RecoveryRecord,
  options: { repair?: boolean },
): Promise<RecordRecoveryOutcome> {
  if (options.repair) {
    const standing = (
      await tx.run(CYPHER.standing, {
        customerId: rec.customer_id,
        paymentMethodId: rec.payment_method_id,
        key: '',
      })
    ).records[0];
    const customer = standing?.get('customer') as string | null;
    if (customer === null || customer === 'erased') return 'customer_gone';
    if (standing?.get('method') === null) return 'method_gone';
  }
  if (await findEventByIdempotencyKey(tx, `recovered:${rec.payment_id}`)) return 'already_recorded';
  if (options.repair && (await findEventByIdempotencyKey(tx, `recovery-failed:${rec.payment_id}`)))
    return 'recorded_failed';
  const res = await tx.run(CYPHER.recover, { customerId: rec.customer_id, paymentMethodId: rec.payment_method_id });
  const record = res.records[0];
  if (!record) {
    // A tombstone has no methods: the recovery is the survivor's now (the caller records it there).
    const merged = await survivorOfTx(tx, rec.customer_id);
    if (merged?.merged_into) throw new CustomerMergedError(rec.customer_id, merged.id);
    throw new NotFoundError('Customer', rec.customer_id);
  }
  const previous = (record.get('previous') as string[])[0] ?? null;
  if (record.get('usable') === true && previous !== rec.payment_method_id) {
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
  return 'recorded';
}

/** The recovery gave up: PaymentRecoveryFailed, once per payment. */
export async function recordRecoveryFailed(
  g: Graph,
  rec: { payment_id: string; customer_id: string; attempts: number; reason: string },
): Promise<void> {
  try {
    await writeTx(g, async (tx) =>
      appendEvent(
        tx,
        'PaymentRecoveryFailed',
        // A customer merged since: the survivor's history says it.
        (await survivorOfTx(tx, rec.customer_id))?.id ?? rec.customer_id,
        { payment_id: rec.payment_id, attempts: rec.attempts, reason: rec.reason },
        { idempotencyKey: `recovery-failed:${rec.payment_id}` },
      ),
    );
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
  }
}
