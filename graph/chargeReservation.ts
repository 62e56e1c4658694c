/**
 * The charge ledger's reservation of a recovery's charge (graph/chargeLedger.ts): decided in one
 * transaction right before the gateway is called — the customer's and the method's standing, the
 * recovery's (ended, told to stop, another attempt still open), the card networks' rules — and
 * recorded as an attempt when it may go.
 */
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
import { ATTEMPT_FIELDS, attemptOf, attemptTx, createAttemptTx, methodAttemptsSinceTx } from './chargeAttempts';
import type { LedgerAttempt } from './chargeAttempts';
import type { RecoveryLedgerState } from './chargeLedger';
import { CustomerMergedError } from './errors';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { lockNode, writeTx, type Graph } from './graph';

/**
 * Locks the customer, then the method (graph.ts lockNode): an erasure or a suspension commits
 * before or after the check, never under it, and concurrent recoveries count one after another.
 */
export const STANDING_CYPHER = `
    OPTIONAL MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    ${lockNode('p')}
    WITH c, p
    RETURN c.status AS customer, p.status AS method, p.token AS token, p.card_fingerprint AS fingerprint,
           c.merged_into AS mergedInto`;

/** Whoever holds the method now (a merge moved it to the survivor): whether it may be charged. */
const METHOD_NOW_CYPHER = `
    OPTIONAL MATCH (c:Customer)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    RETURN c.status AS customer, p.status AS method`;

/**
 * The recovery's lock first (the SET): an attempt is never added to a recovery that has ended or
 * that was told to stop, and never beside another one still open (sent, or succeeded and not
 * recorded: the succeeded one first, then the oldest).
 */
const LOCK_RECOVERY_CYPHER = `
    MERGE (r:Recovery {id: $r.payment_id})
      ON CREATE SET r.customer_id = $r.customer_id, r.amount = $r.amount, r.currency = $r.currency,
                    r.state = 'recovering', r.reported_at = datetime.transaction(),
                    r.started_at = datetime.transaction()
    SET r.updated_at = datetime.transaction()
    WITH r
    OPTIONAL MATCH (r)-[:ATTEMPTED]->(a:ChargeAttempt)
      WHERE a.id <> $r.key AND a.state IN ['sent', 'succeeded']
    WITH r, a ORDER BY CASE a.state WHEN 'succeeded' THEN 0 ELSE 1 END, a.created_at
    WITH r, collect(a)[0] AS a
    RETURN r.state AS state, r.stop_requested_at IS NOT NULL AS stopping, r.stop_request AS stopRequest,
           r.recovered_with AS recoveredWith, r.charge_id AS chargeId, r.reason AS reason,
           CASE WHEN a IS NULL THEN null ELSE ${ATTEMPT_FIELDS} END AS open`;

/** A recovery as a new attempt of it sees it, under its lock (`lockRecoveryTx`). */
export interface LockedRecovery {
  state: RecoveryLedgerState;
  /** How it ended, when it has: with what and by which charge it was recovered, or why not. */
  recovered_with: string | null;
  charge_id: string | null;
  reason: string | null;
  /** The stop requested (its words), or null: nothing is sent for the payment any more. */
  stop_request: string | null;
  stopping: boolean;
  /** Another attempt still open (sent, or succeeded and not recorded), or null. */
  open: LedgerAttempt | null;
}

/**
 * Inside the reserving transaction, after the customer's and the method's locks: takes the
 * recovery's lock and answers it as a new attempt under `key` sees it (reserving it, when nothing
 * did before). Only a recovery still `recovering`, with no stop requested and no other attempt
 * open, gets a new attempt.
 */
export async function lockRecoveryTx(
  tx: ManagedTransaction,
  r: { payment_id: string; customer_id: string; amount: number; currency: string; key: string },
): Promise<LockedRecovery> {
  const { payment_id, customer_id, currency, key } = r;
  const params = { r: { payment_id, customer_id, currency, key, amount: neo4j.int(r.amount) } };
  const row = (await tx.run(LOCK_RECOVERY_CYPHER, params)).records[0];
  return {
    state: row?.get('state') as RecoveryLedgerState,
    recovered_with: (row?.get('recoveredWith') as string | null) ?? null,
    charge_id: (row?.get('chargeId') as string | null) ?? null,
    reason: (row?.get('reason') as string | null) ?? null,
    stopping: row?.get('stopping') === true,
    stop_request: (row?.get('stopRequest') as string | null) ?? null,
    open: attemptOf(row?.get('open')),
  };
}

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
 *   open               — another attempt of the payment is still open (sent, its outcome unknown;
 *                        or succeeded, and the recovery not recorded): one charge per payment, so
 *                        no new key goes until that one is resolved — it may have charged;
 *   customer_suspended — the customer is suspended (a fraud outcome awaits review): no charge now;
 *   customer_erased    — the customer was erased (or never existed): never charge;
 *   method_unavailable — the method is gone from the wallet, no longer active, or has no token;
 *   recovery_ended     — the payment's recovery ended already (recovered, failed, stopped): a
 *                        payment is recovered once, and nothing more is charged for it (`ended`
 *                        says how it ended);
 *   stop_requested     — a stop of the recovery was requested (the owner, ops, an erasure): nothing
 *                        more is sent for the payment (`stop_request` says why).
 */
export type ChargeVerdict =
  | 'allowed'
  | 'known'
  | 'open'
  | 'limited'
  | 'customer_suspended'
  | 'customer_erased'
  | 'method_unavailable'
  | 'recovery_ended'
  | 'stop_requested';

/** What a charge the graph did not allow is answered (`not_charged` with the reason, or `limited`). */
export type RefusedVerdict = Exclude<ChargeVerdict, 'allowed' | 'known' | 'open'>;

/** How a recovery the ledger has ended ended (the `recovery_ended` verdict). */
export interface LedgerEnd {
  state: Exclude<RecoveryLedgerState, 'recovering'>;
  recovered_with: string | null;
  charge_id: string | null;
  reason: string | null;
}

export type Reservation =
  | { verdict: 'allowed'; rule: RetryVerdict | null; attempt: LedgerAttempt; token: () => string }
  /**
   * `resendable`: a new charge of the method would be allowed now (its customer and it active). A
   * known key whose first request may never have reached the gateway is sent again only then:
   * otherwise the re-send could be the first real charge of a removed card or a suspended customer.
   * `open` names the payment's other attempt to resolve first, with the same rule.
   */
  | { verdict: 'known' | 'open'; rule: null; attempt: LedgerAttempt; resendable: boolean }
  | { verdict: 'recovery_ended'; rule: null; ended: LedgerEnd }
  | { verdict: 'stop_requested'; rule: null; stop_request: string | null }
  | { verdict: Exclude<RefusedVerdict, 'recovery_ended' | 'stop_requested'>; rule: RetryVerdict | null };

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
 * retried, names the card again. The recovery's lock decides before the customer's standing: a
 * recovery ended or told to stop charges nothing, and another attempt still open is resolved first
 * (it may have charged, whatever became of the customer or the card since).
 */
export async function reserveGovernedCharge(g: Graph, charge: ChargeToReserve, now = new Date()): Promise<Reservation> {
  const decided = await writeTx(g, async (tx): Promise<Reservation> => {
    const standing = (
      await tx.run(STANDING_CYPHER, {
        customerId: charge.customer_id,
        paymentMethodId: charge.payment_method_id,
      })
    ).records[0];
    /** Whether a key of this method may be sent again now: its customer and it active. */
    const resendable = async (a: LedgerAttempt) => {
      const now = (await tx.run(METHOD_NOW_CYPHER, { paymentMethodId: a.payment_method_id })).records[0];
      return now?.get('customer') === 'active' && now.get('method') === 'active';
    };
    // The same key again is the same charge (a retried activity whose answer was lost): what the
    // ledger holds of it decides, whatever happened to the wallet or the customer since.
    const known = await attemptTx(tx, charge.key);
    if (known) return { verdict: 'known', rule: null, attempt: known, resendable: await resendable(known) };
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
    const recovery = await recoveryVerdictTx(tx, charge, resendable);
    if (recovery) return recovery;
    const customer = standing?.get('customer') as string | null;
    const method = standing?.get('method') as string | null;
    if (customer === null || customer === 'erased') return { verdict: 'customer_erased', rule: null };
    if (customer === 'suspended') return { verdict: 'customer_suspended', rule: null };
    if (method !== 'active' || sealed === null) return { verdict: 'method_unavailable', rule: null };
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

/**
 * The recovery's lock, and what it says of a new attempt: ended (how), told to stop (why), another
 * attempt open (resolved first); null when the charge may be decided on.
 */
async function recoveryVerdictTx(
  tx: ManagedTransaction,
  charge: ChargeToReserve,
  resendable: (a: LedgerAttempt) => Promise<boolean>,
): Promise<Reservation | null> {
  const recovery = await lockRecoveryTx(tx, charge);
  if (recovery.state !== 'recovering') {
    const { recovered_with, charge_id, reason } = recovery;
    return {
      verdict: 'recovery_ended',
      rule: null,
      ended: { state: recovery.state, recovered_with, charge_id, reason },
    };
  }
  if (recovery.stopping) return { verdict: 'stop_requested', rule: null, stop_request: recovery.stop_request };
  if (recovery.open)
    return { verdict: 'open', rule: null, attempt: recovery.open, resendable: await resendable(recovery.open) };
  return null;
}

/** The method's card changed (a renewal replaced its token) while a charge was prepared: name it again. */
export class CardRenamedError extends Error {
  constructor(paymentMethodId: string) {
    super(`payment method ${paymentMethodId} was renewed while its charge was prepared: its card is named again`);
    this.name = 'CardRenamedError';
  }
}
