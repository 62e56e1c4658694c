/**
 * Interactions the agents report (payments, logins, shipments), recorded exactly once: a whole
 * batch in ONE write transaction, a few UNWIND statements whatever its size.
 *
 * The order inside the transaction keeps the lock order (graph/graph.ts): the batch's customers
 * are locked first, in id order; then each item's id is claimed (an `Interaction` node per
 * customer and sender's id, under a uniqueness constraint: a redelivered item, or the same item
 * in a batch running concurrently, finds the claim and is a `duplicate`); then the claimed items
 * are aggregated per customer (one LTV change, one login count per device, …) and applied.
 * Two batches for one customer queue on its lock, so their sums add up exactly.
 *
 * What is refused per item, writing nothing for it: an unknown or erased customer, a payment
 * method that is not the customer's, a currency other than the reporting currency (no exchange
 * rates are configured).
 *
 * Events: what changed state, coalesced per customer and batch — a device newly linked
 * (DeviceLinked), a payment method first used on a device (PaymentMethodUsedOnDevice), an
 * address newly added (AddressAdded), and one CustomerProfileUpdated for LTV, segment, VIP and
 * the payment methods' `last_used` (`payment_methods_used`, written even when nothing else
 * changed). A payment itself is not copied into the log.
 *
 * The code, by interaction type: graph/interactionProfile.ts (payments and LTV feedback on the
 * profile), graph/interactionDevices.ts (logins and the devices payments were attempted on),
 * graph/shipments.ts (shipments); what they aggregate, and every decision taken on
 * values alone, is pure (graph/interactionRows.ts, graph/interactionRules.ts,
 * graph/profileChanges.ts); the types are graph/interactionModel.ts, re-exported here.
 */
import { randomUUID } from 'node:crypto';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { appendEvents, type NewEvent } from './events';
import { lockNode, writeTx, type Graph } from './graph';
import { applyShipments } from './shipments';
import { applyDevices } from './interactionDevices';
import type { Interaction, InteractionResult, ProfileRules } from './interactionModel';
import { applyLtvFeedback, applyPayments } from './interactionProfile';
import { ProfileChanges } from './profileChanges';
import {
  claimsOf,
  lockRowsOf,
  methodRefusal,
  methodsNamed,
  refusalOf,
  settleClaims,
  statusRefusal,
  survivorLockRows,
  type ClaimRow,
  type Indexed,
  type LockRow,
} from './interactionRules';

export {
  PAYMENT_OUTCOMES,
  type Interaction,
  type InteractionResult,
  type PaymentOutcome,
  type ProfileRules,
  type SeenDevice,
  type ShippingAddress,
} from './interactionModel';

const CYPHER = {
  // The write locks, in id order (graph.ts lockNode), and what the rules need, read under them:
  // the status, and which of the payment methods the batch names are the customer's own.
  lock: `
    UNWIND $rows AS row
    MATCH (c:Customer {id: row.id})
    ${lockNode('c')}
    WITH c, row
    RETURN c.id AS id, c.status AS status, c.merged_into AS mergedInto,
           [(c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod) WHERE p.id IN row.methods | p.id] AS owned`,
  // MERGE under the uniqueness constraint: of two transactions claiming one id, the second waits
  // for the first and then finds its node. The claim token tells a node this statement created.
  claim: `
    UNWIND $rows AS row
    MERGE (i:Interaction {id: row.key})
    ON CREATE SET i.customer_id = row.customerId, i.type = row.type, i.recorded_at = datetime.transaction(),
                  i.claim = $claim
    WITH row, i, i.claim = $claim AS created
    REMOVE i.claim
    RETURN row.key AS key, created`,
} as const;

/**
 * Records a batch of validated interactions in one transaction and answers each item's result
 * in the order given: `recorded`, `duplicate` (its id was recorded before, for this customer, or
 * earlier in the batch) or `invalid` (nothing of it written).
 */
export async function recordInteractions(
  g: Graph,
  items: Interaction[],
  rules: ProfileRules,
): Promise<InteractionResult[]> {
  return writeTx(g, (tx) => recordInteractionsTx(tx, g, items, rules));
}

/**
 * `recordInteractions` inside a writer's own transaction (a recovery's record). It takes the
 * customers' locks first; a writer that already holds one (and what belongs to that customer)
 * keeps the lock order, the customer first.
 */
export async function recordInteractionsTx(
  tx: ManagedTransaction,
  g: Graph,
  items: Interaction[],
  rules: ProfileRules,
): Promise<InteractionResult[]> {
  const currency = g.policy.reportingCurrency;
  // Recomputed on every attempt: the transaction function may run again after a transient error.
  const results: (InteractionResult | undefined)[] = items.map((item) => refusalOf(item, currency));
  const open = (): Indexed[] => items.map((item, i) => ({ item, i })).filter(({ i }) => results[i] === undefined);

  // 1. The customers' locks, in id order, before anything of theirs; with them, which of the
  //    payment methods the batch names each customer owns.
  const { status, owned, survivorFor } = await lockCustomers(tx, methodsNamed(open().map(({ item }) => item)));
  /** Whose the item is: the customer it names, or that customer's survivor. */
  const ownerOf = (item: Interaction): string => survivorFor.get(item.customer_id) ?? item.customer_id;
  for (const { item, i } of open()) {
    const refusal = statusRefusal(status.get(ownerOf(item)), item.customer_id);
    if (refusal) results[i] = refusal;
  }

  // 2. A payment names one of the customer's own methods.
  for (const { item, i } of open()) {
    const refusal = methodRefusal(item, ownerOf(item), owned);
    if (refusal) results[i] = refusal;
  }

  // 3. Claim the ids: the first of a key in the batch claims it, later ones are duplicates. The key
  //    is the customer the sender named (a merged one's too), so that an item recorded before its
  //    customer was merged is a duplicate when it is sent again after.
  const claim = randomUUID();
  const { firstOf, rows: claimRows } = claimsOf(open());
  const created = await claimIds(tx, claimRows, claim);
  const { settled, recorded } = settleClaims(open(), firstOf, created, ownerOf);
  for (const { i, result } of settled) results[i] = result;

  await apply(tx, recorded, rules, currency, claim);
  return results as InteractionResult[];
}

/**
 * The lock statement over the customers the batch names (`methods`: each one's named payment
 * methods), then over the survivors of the merged ones among them. Answers each customer's status,
 * the `customer|method` pairs it owns, and each merged customer's survivor.
 */
async function lockCustomers(tx: ManagedTransaction, methods: Map<string, Set<string>>) {
  const lockRows = lockRowsOf(methods);
  const status = new Map<string, string>();
  const owned = new Set<string>();
  /** A merged customer (a merge's tombstone, graph/identityMerge.ts) named by the batch → its survivor. */
  const survivorFor = new Map<string, string>();
  const lock = async (rows: LockRow[]) => {
    for (const r of (await tx.run(CYPHER.lock, { rows })).records) {
      const id = r.get('id') as string;
      status.set(id, r.get('status') as string);
      const into = r.get('mergedInto') as string | null;
      if (r.get('status') === 'merged' && into) survivorFor.set(id, into);
      for (const m of r.get('owned') as string[]) owned.add(`${id}|${m}`);
    }
  };
  if (lockRows.length > 0) await lock(lockRows);
  // 1b. An item naming a merged customer is recorded on its survivor, which holds its methods and
  //     devices now: never on the tombstone. The survivors are locked after the others (the lock
  //     order bends here; a deadlock with a merge of the same records is retried by the driver),
  //     with the methods their tombstones' items name. Chains are shortened by every merge, so a
  //     survivor that is itself merged means a merge is committing: refused, to be sent again.
  if (survivorFor.size > 0) await lock(survivorLockRows(survivorFor, methods));
  return { status, owned, survivorFor };
}

/** The claim statement: answers the keys this transaction claimed (`claim`, its token). */
async function claimIds(tx: ManagedTransaction, rows: ClaimRow[], claim: string): Promise<Set<string>> {
  const created = new Set<string>();
  if (rows.length > 0)
    for (const r of (await tx.run(CYPHER.claim, { rows, claim })).records)
      if (r.get('created') === true) created.add(r.get('key') as string);
  return created;
}

/**
 * The effects of the newly recorded items, aggregated per customer, and their events, by
 * interaction type in a fixed order (the lock order): the profile (payments, then LTV feedback,
 * then VIP from both), the devices (logins and payments), the addresses (shipments and payments).
 */
async function apply(
  tx: ManagedTransaction,
  recorded: Interaction[],
  rules: ProfileRules,
  currency: string,
  claim: string,
): Promise<void> {
  if (recorded.length === 0) return;
  const events: NewEvent[] = [];
  const profile = new ProfileChanges();
  await applyPayments(
    tx,
    recorded.filter((i) => i.type === 'payment'),
    rules,
    currency,
    profile,
  );
  await applyLtvFeedback(tx, recorded, currency, profile);
  profile.noteVip(rules);
  events.push(...profile.events(currency));
  // Devices (logins, and the device a payment was attempted on), created on first sight.
  events.push(...(await applyDevices(tx, recorded, claim)));
  // Shipments (and a payment's shipping address): a known address is matched, a new one added once.
  events.push(...(await applyShipments(tx, recorded)));
  // Numbered in each customer's sequence under its lock (held since step 1).
  await appendEvents(tx, events);
}

/**
 * One batch of the daily prune (`pruneInteractionClaims`): claims recorded before `$olderThan`,
 * oldest first, straight off the `interaction_recorded_at` range index (a test checks the plan).
 */
export const PRUNE_CLAIMS_BATCH = `
  MATCH (i:Interaction) WHERE i.recorded_at < datetime($olderThan)
  WITH i ORDER BY i.recorded_at LIMIT $batch
  DETACH DELETE i
  RETURN count(i) AS deleted`;

export interface PruneClaimsOptions {
  /** Claims recorded before this instant are deleted. */
  olderThan: Date;
  /** Claims deleted per write transaction. */
  batchSize: number;
  /** Called after each batch with the claims deleted so far (an activity heartbeats here). */
  onBatch?: (deletedSoFar: number) => void;
}

/**
 * Forgets interaction ids recorded before `olderThan`, in batches of `batchSize` (each its own
 * write transaction, so a backlog of any size fits the write-transaction limit and a stop halfway
 * keeps what was deleted). Answers how many were deleted. Past its claim's deletion an id is
 * unknown again: a redelivery of it then records again (the contract past the retention window).
 * Idempotent: running it twice, or two at once, deletes each claim once.
 */
export async function pruneInteractionClaims(g: Graph, options: PruneClaimsOptions): Promise<number> {
  const params = { olderThan: options.olderThan.toISOString(), batch: neo4j.int(options.batchSize) };
  let deleted = 0;
  for (;;) {
    const n = await writeTx(g, async (tx) =>
      neo4j.integer.toNumber((await tx.run(PRUNE_CLAIMS_BATCH, params)).records[0]?.get('deleted') as number),
    );
    deleted += n;
    options.onBatch?.(deleted);
    if (n < options.batchSize) return deleted;
  }
}
