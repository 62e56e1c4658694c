/**
 * The charge ledger: each failed payment's recovery and every charge it attempted, as nodes of
 * their own that only the ledger's writers change.
 *
 *   (:Recovery {id: <payment id>})     reserved once, when the failure is first reported; started by
 *     │                                its workflow; ended once: recovered | failed | stopped
 *     └─[:ATTEMPTED]→ (:ChargeAttempt {id: <idempotency key>})
 *                                      the request exactly as first sent — customer, method, its
 *                                      sealed token and card, amount, currency, initiator and the
 *                                      reference (the payment id) — and what became of it
 *
 * An attempt is written before the gateway is called, in the transaction that decides the charge
 * may happen (graph/recovery.ts `reserveGovernedCharge`), and a key is only ever sent again with
 * the request it was first sent with. Removing a card (its node is deleted), merging the customer
 * into another or erasing it never deletes an attempt or a recovery: an erasure strips what is
 * personal (the token, the card) and keeps the key, the amounts and the outcome — what a processor
 * and an auditor need (`scrubLedgerTx`).
 *
 * An attempt's state:
 *   sent               the request went, or may have gone, to the gateway: its outcome is unknown
 *                      until the gateway answers it (`sends` counts the requests; each is stamped
 *                      `last_sent_at` before it goes, the first also `first_sent_at`);
 *   succeeded|declined the gateway's answer (`charge_id`, `decline_code` and the network's facts);
 *   refused            the gateway refused the one request ever sent (a 4xx, not a decline):
 *                      nothing was charged;
 *   absent             asked by reference once the settle window had passed since the last
 *                      request, the gateway had no charge under the key: nothing was charged.
 *
 * The recoveries are written here; the attempts, from created to settled, in graph/chargeAttempts.ts.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { toPlain } from './convert';
import { readTx, writeTx, type Graph } from './graph';
import { registerOpenProcessTx } from './openProcesses';

export type RecoveryLedgerState = 'recovering' | 'recovered' | 'failed' | 'stopped';
/** The states in which a recovery is over for good: a payment is recovered once, ever. */
export const RECOVERY_LEDGER_ENDED: readonly RecoveryLedgerState[] = ['recovered', 'failed', 'stopped'];

export type AttemptState = 'sent' | 'succeeded' | 'declined' | 'refused' | 'absent';
/** The states in which the gateway has said what an attempt came to. */
export const ATTEMPT_SETTLED: readonly AttemptState[] = ['succeeded', 'declined', 'refused', 'absent'];

/** A failure as the ledger keeps it (the report's facts, never a token). */
export interface ReportedFailure {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  amount: number;
  currency: string;
  decline_code: string;
}

/** A recovery as the ledger has it. */
export interface RecoveryLedger {
  payment_id: string;
  /** The customer the failure was reported for (a merge or an erasure never rewrites it). */
  customer_id: string;
  payment_method_id: string | null;
  amount: number | null;
  currency: string | null;
  state: RecoveryLedgerState;
  reported_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  /** The recovering charge, once recovered. */
  charge_id: string | null;
  recovered_with: string | null;
  /** Why it stopped or failed, in words. */
  reason: string | null;
  /** Set when the customer's erasure stripped it (and its attempts) of what was personal. */
  erased_at: string | null;
}

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

const RECOVERY_FIELDS = `r {
  .id, .customer_id, .payment_method_id, .amount, .currency, .state, .charge_id, .recovered_with, .reason,
  erased_at: toString(r.erased_at), reported_at: toString(r.reported_at), started_at: toString(r.started_at),
  ended_at: toString(r.ended_at)
}`;

const CYPHER = {
  // MERGE on the unique id: two reports at once make one recovery; `created` tells them apart.
  reserve: `
    MERGE (r:Recovery {id: $f.payment_id})
      ON CREATE SET r.customer_id = $f.customer_id, r.payment_method_id = $f.payment_method_id,
                    r.amount = $f.amount, r.currency = $f.currency, r.decline_code = $f.decline_code,
                    r.state = 'recovering', r.reported_at = datetime.transaction(), r.created = true
    WITH r, r.created IS NOT NULL AS created
    REMOVE r.created
    RETURN created, ${RECOVERY_FIELDS} AS recovery`,
  start: `
    MERGE (r:Recovery {id: $f.payment_id})
      ON CREATE SET r.customer_id = $f.customer_id, r.payment_method_id = $f.payment_method_id,
                    r.amount = $f.amount, r.currency = $f.currency, r.decline_code = $f.decline_code,
                    r.state = 'recovering', r.reported_at = datetime.transaction()
    SET r.started_at = coalesce(r.started_at, datetime.transaction())
    RETURN ${RECOVERY_FIELDS} AS recovery`,
  recovery: `MATCH (r:Recovery {id: $paymentId}) RETURN ${RECOVERY_FIELDS} AS recovery`,
  read: `
    OPTIONAL MATCH (r:Recovery {id: $paymentId})
    OPTIONAL MATCH (r)-[:ATTEMPTED]->(a:ChargeAttempt)
    WITH r, a ORDER BY a.created_at
    RETURN ${RECOVERY_FIELDS} AS recovery, collect(${ATTEMPT_FIELDS}) AS attempts`,
  // The recovery's lock first (the SET): an attempt is never added to a recovery that has ended.
  lockRecovery: `
    MERGE (r:Recovery {id: $r.payment_id})
      ON CREATE SET r.customer_id = $r.customer_id, r.amount = $r.amount, r.currency = $r.currency,
                    r.state = 'recovering', r.reported_at = datetime.transaction(),
                    r.started_at = datetime.transaction()
    SET r.updated_at = datetime.transaction()
    RETURN r.state AS state`,
  // Never over an end already recorded (a payment is recovered, failed or stopped once) — except
  // that money that moved is recorded over a failure or a stop (the gateway is the authority).
  end: `
    MERGE (r:Recovery {id: $paymentId})
      ON CREATE SET r.customer_id = $customerId, r.state = 'recovering', r.reported_at = datetime.transaction()
    SET r.updated_at = datetime.transaction()
    WITH r, r.state = 'recovering' OR ($moneyMoved AND r.state IN ['failed', 'stopped']) AS open
    SET r.state = CASE WHEN open THEN $state ELSE r.state END,
        r.ended_at = CASE WHEN open THEN datetime.transaction() ELSE r.ended_at END,
        r.reason = CASE WHEN open THEN $reason ELSE r.reason END,
        r.charge_id = CASE WHEN open THEN $chargeId ELSE r.charge_id END,
        r.recovered_with = CASE WHEN open THEN $recoveredWith ELSE r.recovered_with END
    RETURN open, ${RECOVERY_FIELDS} AS recovery`,
  ofCustomers: `
    MATCH (r:Recovery) WHERE r.customer_id IN $ids AND ($all OR r.state = 'recovering')
    RETURN r.id AS id ORDER BY id`,
  // By the customer each attempt was sent for: the erased customer or a record merged into it.
  scrub: `
    MATCH (a:ChargeAttempt) WHERE a.customer_id IN $ids AND a.erased_at IS NULL
    SET a.token = null, a.card_fingerprint = null, a.card_network = null, a.erased_at = datetime.transaction()
    RETURN count(a) AS n`,
  // A recovery's reason may be ops' words about the customer: it goes too.
  scrubRecoveries: `
    MATCH (r:Recovery) WHERE r.customer_id IN $ids AND r.erased_at IS NULL
    SET r.reason = null, r.erased_at = datetime.transaction()`,
} as const;

type Row = Record<string, unknown>;

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

function recoveryOf(raw: unknown): RecoveryLedger | null {
  if (raw === null || raw === undefined) return null;
  const r = toPlain(raw) as Row;
  if (r.id === null || r.id === undefined) return null;
  return {
    payment_id: r.id as string,
    customer_id: r.customer_id as string,
    payment_method_id: (r.payment_method_id as string | null) ?? null,
    amount: (r.amount as number | null) ?? null,
    currency: (r.currency as string | null) ?? null,
    state: r.state as RecoveryLedgerState,
    reported_at: (r.reported_at as string | null) ?? null,
    started_at: (r.started_at as string | null) ?? null,
    ended_at: (r.ended_at as string | null) ?? null,
    charge_id: (r.charge_id as string | null) ?? null,
    recovered_with: (r.recovered_with as string | null) ?? null,
    reason: (r.reason as string | null) ?? null,
    erased_at: (r.erased_at as string | null) ?? null,
  };
}

const failureParams = (f: ReportedFailure) => ({ ...f, amount: neo4j.int(f.amount) });

/**
 * Reserves the recovery of a reported failure (the api, before it starts the workflow): the first
 * report of a payment id creates it (`created`); every later one finds it, whatever Temporal
 * still remembers, and says what it is: recovering (started by its workflow or not yet), or ended.
 */
export async function reserveRecovery(
  g: Graph,
  f: ReportedFailure,
  /** The recovery's workflow: joins the customer's open processes in the same transaction, before it starts. */
  workflowId?: string,
): Promise<{ created: boolean; recovery: RecoveryLedger }> {
  return writeTx(g, async (tx) => {
    const r = (await tx.run(CYPHER.reserve, { f: failureParams(f) })).records[0];
    const reserved = {
      created: r?.get('created') === true,
      recovery: recoveryOf(r?.get('recovery')) as RecoveryLedger,
    };
    // Only a recovery about to start: an ended or running one starts nothing (api/services/recovery.ts).
    const toStart = reserved.recovery.state === 'recovering' && reserved.recovery.started_at === null;
    if (workflowId !== undefined && toStart && reserved.recovery.customer_id === f.customer_id)
      await registerOpenProcessTx(tx, workflowId, f.customer_id);
    return reserved;
  });
}

/**
 * The workflow's first step: marks the recovery started (reserving it, when the workflow was
 * started some other way than through the api) and answers it as it is — ended already when an
 * earlier recovery of the payment recovered, failed or stopped.
 */
export async function startRecovery(g: Graph, f: ReportedFailure): Promise<RecoveryLedger> {
  return writeTx(g, async (tx) => {
    const r = (await tx.run(CYPHER.start, { f: failureParams(f) })).records[0];
    return recoveryOf(r?.get('recovery')) as RecoveryLedger;
  });
}

/** A recovery and its attempts, oldest first (null when the payment never had one). */
export async function readRecoveryLedger(
  g: Graph,
  paymentId: string,
): Promise<{ recovery: RecoveryLedger; attempts: LedgerAttempt[] } | null> {
  const r = await readTx(g, async (tx) => (await tx.run(CYPHER.read, { paymentId })).records[0]);
  const recovery = recoveryOf(r?.get('recovery'));
  if (!recovery) return null;
  const attempts = ((r?.get('attempts') as unknown[] | undefined) ?? [])
    .map(attemptOf)
    .filter((a): a is LedgerAttempt => a !== null && typeof a.key === 'string');
  return { recovery, attempts };
}

export async function readRecoveryTx(tx: ManagedTransaction, paymentId: string): Promise<RecoveryLedger | null> {
  return recoveryOf((await tx.run(CYPHER.recovery, { paymentId })).records[0]?.get('recovery'));
}

/**
 * Inside the reserving transaction, after the customer's and the method's locks: takes the
 * recovery's lock and answers its state (reserving it, when nothing did before). Only a recovery
 * still `recovering` gets a new attempt.
 */
export async function lockRecoveryTx(
  tx: ManagedTransaction,
  r: { payment_id: string; customer_id: string; amount: number; currency: string },
): Promise<RecoveryLedgerState> {
  const params = { r: { ...r, amount: neo4j.int(r.amount) } };
  return (await tx.run(CYPHER.lockRecovery, params)).records[0]?.get('state') as RecoveryLedgerState;
}

/** How a recovery ended, for `endRecoveryTx`. */
export interface RecoveryEnd {
  payment_id: string;
  customer_id: string;
  state: Exclude<RecoveryLedgerState, 'recovering'>;
  reason?: string | null;
  charge_id?: string | null;
  recovered_with?: string | null;
  /** A recovered charge: recorded over a failure or a stop recorded before (money moved). */
  money_moved?: boolean;
}

/**
 * Records how a recovery ended, once: `open` is false when it had ended already (the end recorded
 * first stands, and is answered).
 */
export async function endRecoveryTx(
  tx: ManagedTransaction,
  end: RecoveryEnd,
): Promise<{ open: boolean; recovery: RecoveryLedger }> {
  const r = (
    await tx.run(CYPHER.end, {
      paymentId: end.payment_id,
      customerId: end.customer_id,
      state: end.state,
      reason: end.reason ?? null,
      chargeId: end.charge_id ?? null,
      recoveredWith: end.recovered_with ?? null,
      moneyMoved: end.money_moved === true,
    })
  ).records[0];
  return { open: r?.get('open') === true, recovery: recoveryOf(r?.get('recovery')) as RecoveryLedger };
}

export async function endRecovery(g: Graph, end: RecoveryEnd): Promise<{ open: boolean; recovery: RecoveryLedger }> {
  return writeTx(g, (tx) => endRecoveryTx(tx, end));
}

/**
 * The payment ids of the recoveries reported for these customers (a customer and the records
 * merged into it): those still recovering, or (`all`) every one.
 */
export async function recoveriesOfCustomers(g: Graph, customerIds: string[], options: { all?: boolean } = {}) {
  return readTx(g, async (tx) =>
    (await tx.run(CYPHER.ofCustomers, { ids: customerIds, all: options.all === true })).records.map(
      (r) => r.get('id') as string,
    ),
  );
}

/**
 * Inside an erasure's transaction: strips the personal data (the sealed token, the card) from
 * every charge attempt of these customers' recoveries, keeping the key, amounts and outcome.
 */
export async function scrubLedgerTx(tx: ManagedTransaction, customerIds: string[]): Promise<number> {
  await tx.run(CYPHER.scrubRecoveries, { ids: customerIds });
  const r = (await tx.run(CYPHER.scrub, { ids: customerIds })).records[0];
  return Number(toPlain(r?.get('n')) ?? 0);
}
