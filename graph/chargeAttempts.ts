/**
 * The charge ledger's attempts (graph/chargeLedger.ts: the ledger, its recoveries and what an
 * attempt's states mean): one created in the transaction that decides the charge may happen,
 * stamped before each request goes, answered once by the gateway (the first answer stays), or
 * settled as refused or absent; and the per-method count the charge governance caps.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { toPlain } from './convert';
import { leaderReadTx, writeTx, type Graph } from './graph';

type Row = Record<string, unknown>;

export type AttemptState = 'sent' | 'succeeded' | 'declined' | 'refused' | 'absent';
/** The states in which the gateway has said what an attempt came to. */
export const ATTEMPT_SETTLED: readonly AttemptState[] = ['succeeded', 'declined', 'refused', 'absent'];

/** A charge attempt as the ledger has it (the sealed token only through `sealed`). */
export interface LedgerAttempt {
  key: string;
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  amount: number;
  currency: string;
  initiator: 'cit' | 'mit';
  reference: string;
  /** The card as the processor named it when the attempt was made (null: unnamed, or erased). */
  card: { fingerprint: string; network: string } | null;
  state: AttemptState;
  sends: number;
  created_at: string;
  first_sent_at: string | null;
  last_sent_at: string | null;
  answered_at: string | null;
  charge_id: string | null;
  decline_code: string | null;
  network_response_code: string | null;
  category: number | null;
  advice_code: string | null;
  /** The method's token, sealed, as first sent (null once the customer was erased). */
  sealed: string | null;
  /** Set when an erasure stripped the attempt's personal data. */
  erased_at: string | null;
}

/** A charge attempt's fields as the ledger's reads return them (`attemptOf` reads them). */
export const ATTEMPT_FIELDS = `a {
  .id, .payment_id, .customer_id, .payment_method_id, .amount, .currency, .initiator, .reference,
  .card_fingerprint, .card_network, .state, .sends, .charge_id, .decline_code, .network_response_code,
  .category, .advice_code, .token,
  created_at: toString(a.created_at), first_sent_at: toString(a.first_sent_at),
  last_sent_at: toString(a.last_sent_at), answered_at: toString(a.answered_at), erased_at: toString(a.erased_at)
}`;

/** A charge attempt as a query returns it (`ATTEMPT_FIELDS`), or null. */
export function attemptOf(raw: unknown): LedgerAttempt | null {
  if (raw === null || raw === undefined) return null;
  const a = toPlain(raw) as Row;
  const fingerprint = (a.card_fingerprint as string | null) ?? null;
  return {
    key: a.id as string,
    payment_id: a.payment_id as string,
    customer_id: a.customer_id as string,
    payment_method_id: a.payment_method_id as string,
    amount: a.amount as number,
    currency: a.currency as string,
    initiator: (a.initiator as 'cit' | 'mit' | null) ?? 'mit',
    reference: (a.reference as string | null) ?? (a.payment_id as string),
    card: fingerprint ? { fingerprint, network: (a.card_network as string | null) ?? 'unknown' } : null,
    state: a.state as AttemptState,
    sends: (a.sends as number | null) ?? 0,
    created_at: a.created_at as string,
    first_sent_at: (a.first_sent_at as string | null) ?? null,
    last_sent_at: (a.last_sent_at as string | null) ?? null,
    answered_at: (a.answered_at as string | null) ?? null,
    charge_id: (a.charge_id as string | null) ?? null,
    decline_code: (a.decline_code as string | null) ?? null,
    network_response_code: (a.network_response_code as string | null) ?? null,
    category: (a.category as number | null) ?? null,
    advice_code: (a.advice_code as string | null) ?? null,
    sealed: (a.token as string | null) ?? null,
    erased_at: (a.erased_at as string | null) ?? null,
  };
}

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
  // Stamped before the request goes: `last_sent_at` is what the settle window counts from. Under
  // the recovery's lock (the SET on it): a stop requested, or an end recorded, commits before the
  // stamp — and no request goes — or after it, when the request is the one in flight.
  resend: `
    MATCH (r:Recovery)-[:ATTEMPTED]->(a:ChargeAttempt {id: $key}) WHERE a.state = 'sent' AND a.token IS NOT NULL
    SET r.updated_at = datetime.transaction()
    WITH r, a WHERE r.state = 'recovering' AND r.stop_requested_at IS NULL
    SET a.sends = a.sends + 1, a.last_sent_at = datetime($now)
    RETURN ${ATTEMPT_FIELDS} AS attempt`,
  // A payment's attempts whose outcome is not known, or that succeeded: what settling it asks about.
  open: `
    MATCH (:Recovery {id: $paymentId})-[:ATTEMPTED]->(a:ChargeAttempt)
    WHERE a.state IN ['sent', 'succeeded']
    RETURN ${ATTEMPT_FIELDS} AS attempt ORDER BY CASE a.state WHEN 'succeeded' THEN 0 ELSE 1 END, a.created_at`,
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

/**
 * An attempt as the leader has it: what a charge decides on (settle, send again) must not be a
 * follower's older state.
 */
export async function readAttempt(g: Graph, key: string): Promise<LedgerAttempt | null> {
  return leaderReadTx(g, (tx) => attemptTx(tx, key));
}

/** A payment's attempts that succeeded or whose outcome is unknown (the succeeded first), on the leader. */
export async function openAttemptsOf(g: Graph, paymentId: string): Promise<LedgerAttempt[]> {
  return leaderReadTx(g, async (tx) =>
    (await tx.run(CYPHER.open, { paymentId })).records
      .map((r) => attemptOf(r.get('attempt')))
      .filter((a): a is LedgerAttempt => a !== null),
  );
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
 * attempt is no longer `sent` (settled meanwhile), has no token to send (erased), or its recovery
 * was told to stop or has ended: then nothing may be sent, only asked about.
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
 * Settles an attempt the gateway did not charge: `refused` (the one request ever sent was refused)
 * or `absent` (no charge under the key, past the settle window). `sends`, the count of requests the
 * caller decided on, must still be the ledger's. Null when it was settled already, or sent again
 * meanwhile.
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
