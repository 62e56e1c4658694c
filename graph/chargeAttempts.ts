/**
 * The charge ledger's attempts (graph/chargeLedger.ts: the ledger, its recoveries and what an
 * attempt's states mean): one created in the transaction that decides the charge may happen,
 * stamped before each request goes, answered once by the gateway (the first answer stays), or
 * settled as refused or absent; and the per-method count the charge governance caps.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { ATTEMPT_FIELDS, attemptOf, type LedgerAttempt } from './chargeLedger';
import { toPlain } from './convert';
import { readTx, writeTx, type Graph } from './graph';

/** What the gateway answered an attempt, as the ledger records it. */
export interface AttemptAnswer {
  state: 'succeeded' | 'declined';
  charge_id: string | null;
  decline_code?: string | null;
  network_response_code?: string | null;
  category?: number | null;
  advice_code?: string | null;
}

const CYPHER = {
  attempt: `MATCH (a:ChargeAttempt {id: $key}) RETURN ${ATTEMPT_FIELDS} AS attempt`,
  create: `
    MATCH (r:Recovery {id: $a.payment_id})
    CREATE (r)-[:ATTEMPTED]->(a:ChargeAttempt {
      id: $a.key, payment_id: $a.payment_id, customer_id: $a.customer_id,
      payment_method_id: $a.payment_method_id, token: $a.sealed, amount: $a.amount,
      currency: $a.currency, initiator: $a.initiator, reference: $a.reference,
      card_fingerprint: $a.card_fingerprint, card_network: $a.card_network,
      state: 'sent', sends: 1, created_at: datetime($now), first_sent_at: datetime($now),
      last_sent_at: datetime($now)
    })
    RETURN ${ATTEMPT_FIELDS} AS attempt`,
  // Stamped before the request goes: `last_sent_at` is what the settle window counts from.
  resend: `
    MATCH (a:ChargeAttempt {id: $key}) WHERE a.state = 'sent' AND a.token IS NOT NULL
    SET a.sends = a.sends + 1, a.last_sent_at = datetime($now)
    RETURN ${ATTEMPT_FIELDS} AS attempt`,
  // The first answer stays: a later one (a replay) is the same, and a refusal never overwrites one.
  // Settled, the attempt is never sent again: its copy of the token goes.
  answer: `
    MATCH (a:ChargeAttempt {id: $key})
    WITH a, a.state = 'sent' AS open
    SET a.token = null,
        a.state = CASE WHEN open THEN $answer.state ELSE a.state END,
        a.charge_id = CASE WHEN open THEN $answer.charge_id ELSE a.charge_id END,
        a.decline_code = CASE WHEN open THEN $answer.decline_code ELSE a.decline_code END,
        a.network_response_code = CASE WHEN open THEN $answer.network_response_code ELSE a.network_response_code END,
        a.category = CASE WHEN open THEN $answer.category ELSE a.category END,
        a.advice_code = CASE WHEN open THEN $answer.advice_code ELSE a.advice_code END,
        a.answered_at = coalesce(a.answered_at, datetime($now))
    RETURN ${ATTEMPT_FIELDS} AS attempt`,
  settle: `
    MATCH (a:ChargeAttempt {id: $key}) WHERE a.state = 'sent' AND ($sends IS NULL OR a.sends = $sends)
    SET a.state = $state, a.decline_code = $reason, a.answered_at = datetime($now), a.token = null
    RETURN ${ATTEMPT_FIELDS} AS attempt`,
  // Charges reserved on a method in the window: the per-method cap of cards the processor never named.
  methodAttempts: `
    MATCH (a:ChargeAttempt {payment_method_id: $paymentMethodId})
    WHERE a.created_at > datetime($since)
    RETURN count(a) AS n`,
} as const;

export async function attemptTx(tx: ManagedTransaction, key: string): Promise<LedgerAttempt | null> {
  return attemptOf((await tx.run(CYPHER.attempt, { key })).records[0]?.get('attempt'));
}

export async function readAttempt(g: Graph, key: string): Promise<LedgerAttempt | null> {
  return readTx(g, (tx) => attemptTx(tx, key));
}

/** What a new attempt records: the request as it is about to be sent for the first time. */
export interface NewAttempt {
  key: string;
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  /** The method's token, sealed as stored (bound to the method's id). */
  sealed: string;
  card: { fingerprint: string; network: string } | null;
  amount: number;
  currency: string;
  initiator: 'cit' | 'mit';
  reference: string;
}

/**
 * Inside the reserving transaction (the customer's, the method's and the recovery's locks held):
 * records the attempt as sent, under its recovery, before the request goes.
 */
export async function createAttemptTx(tx: ManagedTransaction, a: NewAttempt, now: Date): Promise<LedgerAttempt> {
  const params = {
    a: {
      ...a,
      amount: neo4j.int(a.amount),
      card_fingerprint: a.card?.fingerprint ?? null,
      card_network: a.card?.network ?? null,
    },
    now: now.toISOString(),
  };
  const attempt = attemptOf((await tx.run(CYPHER.create, params)).records[0]?.get('attempt'));
  if (!attempt) throw new Error(`charge attempt ${a.key} could not be recorded: its recovery is missing`);
  return attempt;
}

/** How many attempts were reserved on a method since `since` (the per-method cap's count). */
export async function methodAttemptsSinceTx(
  tx: ManagedTransaction,
  paymentMethodId: string,
  since: Date,
): Promise<number> {
  const r = (await tx.run(CYPHER.methodAttempts, { paymentMethodId, since: since.toISOString() })).records[0];
  return Number(toPlain(r?.get('n')) ?? 0);
}

/**
 * Stamps another request of an attempt whose outcome is unknown, before it goes; null when the
 * attempt is no longer `sent` (settled meanwhile) or has no token to send (erased).
 */
export async function markResent(g: Graph, key: string, now: Date): Promise<LedgerAttempt | null> {
  return writeTx(g, async (tx) =>
    attemptOf((await tx.run(CYPHER.resend, { key, now: now.toISOString() })).records[0]?.get('attempt')),
  );
}

/**
 * The gateway's answer to an attempt, recorded in `tx` (the first answer stays). `also` runs in
 * the same transaction: what the card networks count of the answer (graph/cardHistory.ts).
 */
export async function recordAttemptAnswerTx(
  tx: ManagedTransaction,
  key: string,
  answer: AttemptAnswer,
  now: Date,
): Promise<LedgerAttempt | null> {
  const params = {
    state: answer.state,
    charge_id: answer.charge_id,
    decline_code: answer.decline_code ?? null,
    network_response_code: answer.network_response_code ?? null,
    category: answer.category === null || answer.category === undefined ? null : neo4j.int(answer.category),
    advice_code: answer.advice_code ?? null,
  };
  return attemptOf(
    (await tx.run(CYPHER.answer, { key, answer: params, now: now.toISOString() })).records[0]?.get('attempt'),
  );
}

/**
 * Settles an attempt the gateway did not charge: `refused` (the one request ever sent was refused:
 * `sends`, the count it was sent with, must still be the ledger's) or `absent` (no charge under the
 * key, past the settle window). Null when it was settled already, or sent again meanwhile.
 */
export async function settleAttempt(
  g: Graph,
  key: string,
  state: 'refused' | 'absent',
  reason: string,
  now: Date,
  sends: number | null = null,
): Promise<LedgerAttempt | null> {
  const params = { key, state, reason, now: now.toISOString(), sends: sends === null ? null : neo4j.int(sends) };
  return writeTx(g, async (tx) => attemptOf((await tx.run(CYPHER.settle, params)).records[0]?.get('attempt')));
}
