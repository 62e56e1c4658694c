/**
 * A payment reported again under a new payment id that names the one it replaces (`replaces`):
 * after a restore, a recovery the restored ledger had lost is written back (backup/reconcile.ts),
 * and the payment, if it still needs recovering, is reported again under a new id — whose recovery
 * would charge again even when the lost one's charge went through. So the charge ledger takes the
 * new payment's recovery (graph/chargeLedger.ts `reserveRecovery`) only if, in the same
 * transaction, under the replaced recovery's lock, the replaced one
 *   - is in the ledger,
 *   - is the same customer's (or a record's merged into it),
 *   - was for the same amount and currency, where the ledger has them (a replacement is the same debt),
 *   - has a verdict (failed or stopped: the gateway reconciliation or `npm run ops:settle-recoveries`
 *     gives a stranded one its verdict),
 *   - charged nothing (no attempt succeeded or of unknown outcome, not recorded recovered),
 *   - and was not replaced before;
 * and links them: `(:Recovery {id: new})-[:REPLACES]->(:Recovery {id: old})`, the old one marked
 * `replaced_by`. A refusal writes nothing and names the field (`ReplacementRefusedError`, 409). The
 * same report again (the new payment already replaces the old one) is taken again. Every new
 * payment is also checked against its look-alikes (`recoveringLookalikes`): the api refuses it
 * beside a stranded one (api/services/recoveryStranded.ts).
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { InvalidInputError, InvalidStateError } from './errors';
import { toPlain } from './convert';
import { lockNode, readTx, type Graph } from './graph';
import { mergedRecordsOfTx, survivorOfTx } from './mergedRecords';

/** A report's `replaces` refused: nothing was written (409; gRPC FAILED_PRECONDITION), the field named. */
export class ReplacementRefusedError extends InvalidStateError {
  readonly field = 'replaces';
  constructor(message: string) {
    super(message);
    this.name = 'ReplacementRefusedError';
  }
}

const CYPHER = {
  // The replaced recovery's lock (changing nothing), then what the checks read under it: a charge of
  // it that went through (first) or whose outcome is unknown.
  replaced: `
    MATCH (old:Recovery {id: $replaces})
    ${lockNode('old')}
    WITH old
    OPTIONAL MATCH (old)-[:ATTEMPTED]->(a:ChargeAttempt) WHERE a.state IN ['sent', 'succeeded']
    WITH old, a ORDER BY CASE a.state WHEN 'succeeded' THEN 0 ELSE 1 END, a.created_at
    WITH old, collect(a {.id, .state, .charge_id})[0] AS charged
    RETURN old.customer_id AS customerId, old.state AS state, old.charge_id AS chargeId,
           old.replaced_by AS replacedBy, old.amount AS amount, old.currency AS currency, charged`,
  link: `
    MATCH (old:Recovery {id: $replaces}), (new:Recovery {id: $paymentId})
    MERGE (new)-[:REPLACES]->(old)
    SET old.replaced_by = $paymentId, old.replaced_at = coalesce(old.replaced_at, datetime.transaction()),
        old.updated_at = datetime.transaction()`,
  // A new payment's look-alikes: the customer's (and its merged records') started recoveries still
  // recovering, for the same amount and currency where the ledger has them, but the one it replaces
  // (none when the ledger has the payment already).
  lookalikes: `
    OPTIONAL MATCH (known:Recovery {id: $paymentId})
    WITH known WHERE known IS NULL
    MATCH (r:Recovery) WHERE r.customer_id IN $customerIds
      AND r.state = 'recovering' AND r.started_at IS NOT NULL AND r.id <> $paymentId
      AND ($replaces IS NULL OR r.id <> $replaces)
      AND coalesce(r.amount, $amount) = $amount AND coalesce(r.currency, $currency) = $currency
    RETURN r.id AS id ORDER BY r.started_at, r.id LIMIT $limit`,
} as const;

/** The replacing report: its payment, its customer (a merge's survivor, if it named the record), what it replaces. */
export interface Replacement {
  payment_id: string;
  customer_id: string;
  amount: number;
  currency: string;
  replaces: string;
}

/**
 * Before the new payment's recovery is reserved: the replaced recovery's lock, and the checks
 * above, in order; a refusal throws (the transaction writes nothing). The same report again passes.
 */
export async function checkReplacementTx(tx: ManagedTransaction, f: Replacement): Promise<void> {
  const old = f.replaces;
  if (old === f.payment_id)
    throw new InvalidInputError('replaces', 'names the payment reported: name the payment whose recovery it replaces');
  const row = (await tx.run(CYPHER.replaced, { replaces: old })).records[0];
  if (!row)
    throw new ReplacementRefusedError(
      `payment ${old} is unknown to the charge ledger: a report replaces only a recovery the ledger has`,
    );
  const replacedBy = row.get('replacedBy') as string | null;
  if (replacedBy === f.payment_id) return;
  const owner = row.get('customerId') as string | null;
  const survivor = owner === null ? null : (await survivorOfTx(tx, owner))?.id;
  if (owner !== f.customer_id && survivor !== f.customer_id)
    throw new ReplacementRefusedError(
      `payment ${old}'s recovery is another customer's: a report replaces only a recovery of the same customer ` +
        '(or of a record merged into it)',
    );
  const oldAmount = toPlain(row.get('amount')) as number | null;
  const oldCurrency = row.get('currency') as string | null;
  if ((oldAmount !== null && oldAmount !== f.amount) || (oldCurrency !== null && oldCurrency !== f.currency))
    throw new ReplacementRefusedError(
      `payment ${old}'s recovery was for ${oldAmount ?? 'an unknown amount'} ${oldCurrency ?? ''} (minor units), ` +
        `not ${f.amount} ${f.currency}: a report replaces only the same debt`,
    );
  const state = row.get('state') as string;
  const charged = row.get('charged') as { id: string; state: string; charge_id: string | null } | null;
  if (state === 'recovered' || charged?.state === 'succeeded') {
    const chargeId = (row.get('chargeId') as string | null) ?? charged?.charge_id ?? `under key ${charged?.id}`;
    throw new ReplacementRefusedError(
      `payment ${old}'s recovery was recovered by charge ${chargeId}: the payment was collected, and nothing ` +
        'replaces it',
    );
  }
  if (state === 'recovering')
    throw new ReplacementRefusedError(
      `payment ${old}'s recovery has no verdict yet: the gateway reconciliation or ` +
        '`npm run ops:settle-recoveries` gives it one; report again then',
    );
  if (charged)
    throw new ReplacementRefusedError(
      `payment ${old}'s charge ${charged.id} has an unknown outcome (it may have gone through): nothing replaces ` +
        'its recovery until the gateway says what became of it',
    );
  if (replacedBy !== null)
    throw new ReplacementRefusedError(
      `payment ${old}'s recovery was replaced by payment ${replacedBy} already: a recovery is replaced once`,
    );
}

/**
 * After the reservation: links the new payment's recovery to the one it replaces, once. A payment
 * reported before that does not replace this one is refused (a payment id names one payment).
 */
export async function linkReplacementTx<R extends { replaces: string | null }>(
  tx: ManagedTransaction,
  f: Replacement,
  reserved: { created: boolean; recovery: R },
): Promise<R> {
  const { recovery } = reserved;
  if (!reserved.created && recovery.replaces !== f.replaces)
    throw new ReplacementRefusedError(
      `payment ${f.payment_id} was reported before, replacing ${recovery.replaces ?? 'no payment'}: ` +
        'a payment id names one payment',
    );
  if (reserved.created) await tx.run(CYPHER.link, { paymentId: f.payment_id, replaces: f.replaces });
  return { ...recovery, replaces: f.replaces };
}

/**
 * The recoveries a new report may be the same debt as: the started recoveries the ledger has still
 * recovering of the customer and of the records merged into it, for the same amount and currency
 * where it has them, oldest first, at most `limit` — but the one the report `replaces`. Empty when
 * the ledger has the payment already (a report of it again is a duplicate, not a new debt). The api
 * refuses the report while one of them is stranded (api/services/recoveryStranded.ts).
 */
export async function recoveringLookalikes(
  g: Graph,
  f: { payment_id: string; customer_id: string; amount: number; currency: string; replaces?: string },
  limit = 1_000,
): Promise<string[]> {
  return readTx(g, async (tx) => {
    const customerIds = [f.customer_id, ...(await mergedRecordsOfTx(tx, f.customer_id))];
    const { records } = await tx.run(CYPHER.lookalikes, {
      paymentId: f.payment_id,
      replaces: f.replaces ?? null,
      customerIds,
      amount: neo4j.int(f.amount),
      currency: f.currency,
      limit: neo4j.int(limit),
    });
    return records.map((r) => r.get('id') as string);
  });
}
