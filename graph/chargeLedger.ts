/**
 * The charge ledger: each failed payment's recovery and every charge it attempted, as nodes of
 * their own that only the ledger's writers change.
 *
 *   (:Recovery {id: <payment id>})     reserved once, when the failure is first reported; started by
 *     │                                its workflow; ended once: recovered | failed | stopped
 *     ├─[:ATTEMPTED]→ (:ChargeAttempt {id: <idempotency key>})
 *     │                                the request exactly as first sent — customer, method, its
 *     │                                sealed token and card, amount, currency, initiator and the
 *     │                                reference (the payment id) — and what became of it
 *     └─[:REPLACES]→ (:Recovery)       the same payment's recovery under the id it was reported with
 *                                      before, marked `replaced_by` (graph/recoveryReplacement.ts)
 *
 * An attempt is written before the gateway is called, in the transaction that decides the charge
 * may happen (graph/recovery.ts `reserveGovernedCharge`), and a key is only ever sent again with
 * the request it was first sent with. Two rules make "one charge per payment" the ledger's, not
 * one workflow run's, so that a reset, a second run or a run after a terminate cannot charge twice:
 *   - one open attempt: a new key is refused while another attempt of the payment is `sent`
 *     (outcome unknown) or `succeeded` with the recovery not yet recorded; whoever asked resolves
 *     that one first (graph/recovery.ts, the `open` verdict);
 *   - a stop is a stop: once a stop is requested (`requestRecoveryStop`: the payment's owner, ops,
 *     an erasure — written before the workflow is told) or the recovery has ended, no request goes
 *     to the gateway again, neither a new key nor one sent again (`markResent`); what is in flight
 *     is settled by asking the gateway. Removing a card (its node is deleted), merging the customer
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
import { leaderReadTx, readTx, writeTx, type Graph } from './graph';
import { registerOpenProcessTx } from './openProcesses';
import { ATTEMPT_FIELDS, attemptOf, type LedgerAttempt } from './chargeAttempts';
import { checkReplacementTx, linkReplacementTx } from './recoveryReplacement';

export type RecoveryLedgerState = 'recovering' | 'recovered' | 'failed' | 'stopped';
/** The states in which a recovery is over for good: a payment is recovered once, ever. */
export const RECOVERY_LEDGER_ENDED: readonly RecoveryLedgerState[] = ['recovered', 'failed', 'stopped'];

/** A failure as the ledger keeps it (the report's facts, never a token). */
export interface ReportedFailure {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  amount: number;
  currency: string;
  decline_code: string;
  /** The payment whose recovery this one replaces (a payment reported again): graph/recoveryReplacement.ts. */
  replaces?: string | undefined;
  /** Who reported it (a token's subject, `kafka:<topic>`, or null): only they, or ops, may stop it. */
  reported_by?: string | null | undefined;
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
  reported_by: string | null;
  started_at: string | null;
  ended_at: string | null;
  /** The recovering charge, once recovered. */
  charge_id: string | null;
  recovered_with: string | null;
  /** Why it stopped or failed, in words. */
  reason: string | null;
  /** Set when the customer's erasure stripped it (and its attempts) of what was personal. */
  erased_at: string | null;
  /**
   * When a stop was requested (the payment's owner, ops, an erasure), by whom and why: from then on
   * nothing is sent to the gateway for it. Null while nobody asked.
   */
  stop_requested_at: string | null;
  stop_requested_by: string | null;
  stop_request: string | null;
  /** The payment whose recovery this one replaces, and the payment that replaced this one (or null). */
  replaces: string | null;
  replaced_by: string | null;
}

const RECOVERY_FIELDS = `r {
  .id, .customer_id, .payment_method_id, .amount, .currency, .state, .charge_id, .recovered_with, .reason,
  .stop_requested_by, .stop_request, .replaced_by, .reported_by, replaces: head([(r)-[:REPLACES]->(o:Recovery) | o.id]),
  erased_at: toString(r.erased_at), reported_at: toString(r.reported_at), started_at: toString(r.started_at),
  ended_at: toString(r.ended_at), stop_requested_at: toString(r.stop_requested_at)
}`;

const CYPHER = {
  // MERGE on the unique id: two reports at once make one recovery; `created` tells them apart.
  reserve: `
    MERGE (r:Recovery {id: $f.payment_id})
      ON CREATE SET r.customer_id = $f.customer_id, r.payment_method_id = $f.payment_method_id,
                    r.amount = $f.amount, r.currency = $f.currency, r.decline_code = $f.decline_code,
                    r.state = 'recovering', r.reported_at = datetime.transaction(), r.created = true,
                    r.reported_by = $f.reported_by
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
  // A recovery a restore lost, written back as it began: only when the ledger has none of the payment.
  writeBack: `
    MERGE (r:Recovery {id: $r.payment_id})
      ON CREATE SET r.customer_id = $r.customer_id, r.payment_method_id = $r.payment_method_id,
                    r.amount = $r.amount, r.currency = $r.currency, r.decline_code = $r.decline_code,
                    r.state = 'recovering', r.reported_at = datetime($r.started_at),
                    r.started_at = datetime($r.started_at), r.reason = $r.reason,
                    r.written_back_at = datetime.transaction(), r.created = true
    WITH r, r.created IS NOT NULL AS created
    REMOVE r.created
    RETURN created, ${RECOVERY_FIELDS} AS recovery`,
  recovery: `MATCH (r:Recovery {id: $paymentId}) RETURN ${RECOVERY_FIELDS} AS recovery`,
  read: `
    OPTIONAL MATCH (r:Recovery {id: $paymentId})
    OPTIONAL MATCH (r)-[:ATTEMPTED]->(a:ChargeAttempt)
    WITH r, a ORDER BY a.created_at
    RETURN ${RECOVERY_FIELDS} AS recovery, collect(${ATTEMPT_FIELDS}) AS attempts`,
  // Once: the first stop requested stands (who and why), and only on a recovery still recovering.
  requestStop: `
    MATCH (r:Recovery {id: $paymentId})
    SET r.updated_at = datetime.transaction()
    WITH r, r.state = 'recovering' AND r.stop_requested_at IS NULL AS first
    SET r.stop_requested_at = CASE WHEN first THEN datetime.transaction() ELSE r.stop_requested_at END,
        r.stop_requested_by = CASE WHEN first THEN $by ELSE r.stop_requested_by END,
        r.stop_request = CASE WHEN first THEN $reason ELSE r.stop_request END
    RETURN ${RECOVERY_FIELDS} AS recovery`,
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
  // A page of the recoveries still recovering that began before `before`, by payment id.
  recovering: `
    MATCH (r:Recovery) WHERE r.state = 'recovering' AND r.id > $after
      AND coalesce(r.started_at, r.reported_at) < datetime($before)
    RETURN ${RECOVERY_FIELDS} AS recovery ORDER BY r.id LIMIT $limit`,
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
    SET r.reason = null, r.stop_request = null, r.erased_at = datetime.transaction()`,
} as const;

type Row = Record<string, unknown>;

function recoveryOf(raw: unknown): RecoveryLedger | null {
  if (raw === null || raw === undefined) return null;
  const { id, ...fields } = toPlain(raw) as Row;
  if (id === null || id === undefined) return null;
  // RECOVERY_FIELDS names every field of a RecoveryLedger (null when unset), the payment id as `id`.
  return { payment_id: id as string, ...fields } as RecoveryLedger;
}

const failureParams = ({ replaces: _, reported_by: by, ...f }: ReportedFailure) =>
  Object.assign(f, { amount: neo4j.int(f.amount), reported_by: by ?? null });

/**
 * Reserves the recovery of a reported failure (the api, before it starts the workflow): the first
 * report of a payment id creates it (`created`); every later one finds it, whatever Temporal
 * still remembers, and says what it is: recovering (started by its workflow or not yet), or ended.
 * A report that `replaces` another payment's recovery is checked against that one in the same
 * transaction, and refused writing nothing, or linked to it (graph/recoveryReplacement.ts).
 */
export async function reserveRecovery(
  g: Graph,
  f: ReportedFailure,
  /** The recovery's workflow: joins the customer's open processes in the same transaction, before it starts. */
  workflowId?: string,
): Promise<{ created: boolean; recovery: RecoveryLedger }> {
  return writeTx(g, async (tx) => {
    if (f.replaces !== undefined) await checkReplacementTx(tx, { ...f, replaces: f.replaces });
    const r = (await tx.run(CYPHER.reserve, { f: failureParams(f) })).records[0];
    const reserved = {
      created: r?.get('created') === true,
      recovery: recoveryOf(r?.get('recovery')) as RecoveryLedger,
    };
    if (f.replaces !== undefined)
      reserved.recovery = await linkReplacementTx(tx, { ...f, replaces: f.replaces }, reserved);
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

/** A recovery a restore lost (it began after the backup), as much of it as the restore could read. */
export interface LostRecovery {
  payment_id: string;
  /** Its workflow's PersonaCustomerId (null: none). */
  customer_id: string | null;
  /** When its workflow started. */
  started_at: string;
  /** The report's facts, when the restore could read its history (its key is in the restored graph). */
  payment_method_id: string | null;
  amount: number | null;
  currency: string | null;
  decline_code: string | null;
  /** Why it is written back, in words: who ended its workflow, and when. */
  reason: string;
}

/**
 * Writes a recovery a restore lost back into the restored ledger (backup/reconcile.ts): `recovering`,
 * started when its workflow started, with the reason. No workflow runs it, so it is stranded: the
 * gateway reconciliation flags it or records the charge the gateway made for it, and
 * `npm run ops:settle-recoveries` gives it a verdict. One the ledger has (the backup held it, or an
 * earlier run of the restore wrote it) is left as it is: `written` is false.
 */
export async function writeBackRecovery(
  g: Graph,
  lost: LostRecovery,
): Promise<{ written: boolean; recovery: RecoveryLedger }> {
  const params = { r: { ...lost, amount: lost.amount === null ? null : neo4j.int(lost.amount) } };
  return writeTx(g, async (tx) => {
    const r = (await tx.run(CYPHER.writeBack, params)).records[0];
    return { written: r?.get('created') === true, recovery: recoveryOf(r?.get('recovery')) as RecoveryLedger };
  });
}

/** A recovery and its attempts, oldest first (null: none). `leader`: as money decides (a follower may lag). */
export async function readRecoveryLedger(
  g: Graph,
  paymentId: string,
  options: { leader?: boolean } = {},
): Promise<{ recovery: RecoveryLedger; attempts: LedgerAttempt[] } | null> {
  const read = options.leader ? leaderReadTx : readTx;
  const r = await read(g, async (tx) => (await tx.run(CYPHER.read, { paymentId })).records[0]);
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

/** Who asked a recovery to stop. */
export type StopRequester = 'owner' | 'ops' | 'erasure' | 'cancellation';

/**
 * Records that a recovery must stop, before the workflow is told (the api, an erasure) or as it
 * takes a stop sent some other way (the workflow itself): from this commit on no request for the
 * payment goes to the gateway again (chargeAttempts.ts `markResent`, graph/recovery.ts
 * `reserveGovernedCharge`). The first request stands; a recovery that has ended is answered as it
 * is. NotFoundError-free: null when the ledger has no such recovery.
 */
export async function requestRecoveryStop(
  g: Graph,
  paymentId: string,
  stop: { by: StopRequester; reason: string; onlyFrom?: { reporter: string | null } },
): Promise<RecoveryLedger | null> {
  return writeTx(g, async (tx) => {
    // The owner's stop: only from who reported the payment, checked under the write (the leader).
    const reported = stop.onlyFrom ? await readRecoveryTx(tx, paymentId) : null;
    if (reported && reported.reported_by !== stop.onlyFrom?.reporter) throw new NotYoursToStopError(paymentId);
    return recoveryOf(
      (await tx.run(CYPHER.requestStop, { paymentId, by: stop.by, reason: stop.reason })).records[0]?.get('recovery'),
    );
  });
}

/** A stop from someone other than who reported the payment (the api answers it 403). */
export class NotYoursToStopError extends Error {
  constructor(readonly paymentId: string) {
    super(`payment ${paymentId} was reported by another service: only it, or ops, may say it is no longer owed`);
    this.name = 'NotYoursToStopError';
  }
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
 * A page of the recoveries the ledger has still `recovering` that began (or, never started, were
 * reported) before `before`, by payment id after `after`: what the stranded pass and
 * `npm run ops:settle-recoveries` look for in Temporal.
 */
export async function recoveringRecoveries(
  g: Graph,
  page: { after: string | null; before: string; limit: number },
): Promise<RecoveryLedger[]> {
  return leaderReadTx(g, async (tx) =>
    (
      await tx.run(CYPHER.recovering, { after: page.after ?? '', before: page.before, limit: neo4j.int(page.limit) })
    ).records
      .map((r) => recoveryOf(r.get('recovery')))
      .filter((r): r is RecoveryLedger => r !== null),
  );
}

/** Payment ids of these customers' recoveries (a customer and records merged in): recovering, or `all`. */
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
