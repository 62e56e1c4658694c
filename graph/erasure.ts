/**
 * Erasing a customer: everything personal goes, a tombstone stays. First the customer's events
 * are emptied in batches (`batchSize` per transaction, so a history of any length fits in the
 * write-transaction limit): each keeps its id, type and time, its payload becomes `{}` (and its
 * cache hint, graph/events.ts NewEvent.cache, goes); so do
 * its facts (graph/facts.ts: a possible match loses the customer it named). Then, in
 * one last transaction: identifiers, addresses, payment methods (and their encrypted tokens; the
 * charge ledger's attempts lose their copies of the token and the card, and keep the key, the
 * amounts and the outcome: graph/chargeLedger.ts), the
 * behavioural profile and devices no other customer uses are deleted; the keys of the customer's
 * workflow histories are destroyed (crypto-shredding: workflows/erasure.ts waits until those
 * workflows have closed); shared devices only lose the customer's edge; events appended since the
 * batches are emptied too; the customer keeps its id (and its event counter) with status `erased`
 * and nothing else; a CustomerErased event records it.
 * Idempotent and resumable: a batch only touches events not emptied yet, so an erasure that
 * stopped half-way goes on where it was; erasing an erased customer changes nothing.
 */
import neo4j from 'neo4j-driver';
import { appendEvent } from './events';
import { findFact } from './facts';
import { ConflictError, InvalidStateError, NotFoundError } from './errors';
import { scrubLedgerTx } from './chargeLedger';
import { mergedRecordsOfTx } from './mergedRecords';
import { lockNode, readTx, writeTx, type Graph } from './graph';
import type { ErasureReasonCode } from './model';

export interface ErasureResult {
  customer_id: string;
  /**
   * Records merged into this customer (tombstones of identity merges), erased with it — also when
   * the customer was erased already (its CustomerErased event says which): a restore erases them
   * all again (backup/reconcile.ts).
   */
  merged_records?: string[];
  /** False when the customer was erased already. */
  erased: boolean;
  deleted: {
    identifiers: number;
    addresses: number;
    payment_methods: number;
    devices: number;
    events_stripped: number;
    /** Keys of the customer's workflow histories destroyed: those payloads are unreadable now. */
    history_keys: number;
  };
}

/** Who asked for the erasure and why (ops, for a customer who is not active, or overriding a review). */
export interface ErasureAudit {
  /** Ops' words: they decide whether a suspended customer may be erased, and are never recorded. */
  reason: string;
  requested_by: string | null;
  override_fraud_review: boolean;
  /** The kind of request, as recorded (default `ops_request`). */
  reason_code?: ErasureReasonCode;
}

/** Events emptied per transaction, unless the caller says otherwise (PERSONA_ERASURE_BATCH_SIZE). */
export const DEFAULT_ERASURE_BATCH_SIZE = 1000;

const CYPHER = {
  status: `MATCH (c:Customer {id: $id}) RETURN c.status AS status, toString(datetime.realtime()) AS now`,
  // The tombstones of identity merges into this customer (graph/identityMerge.ts): the same person's records.
  // Those an earlier attempt of this erasure erased already (`erased_with`) are still the
  // customer's: a retry lists them too, so the erasure's record (and a restore) misses none.
  mergedInto: `
    CALL () {
      MATCH (t:Customer {merged_into: $id}) WHERE t.status = 'merged' RETURN t.id AS tid
      UNION
      MATCH (t:Customer {erased_with: $id}) RETURN t.id AS tid
    }
    RETURN collect(tid) AS ids`,
  // Suspending fraud outcomes of the customer whose review has no recorded end yet (keys
  // `fraud:<outcome id>` and `fraud-review:<outcome id>`, graph/fraud.ts).
  pendingReviews: `
    MATCH (f:Fact {customer_id: $id, type: 'FraudOutcomeApplied'})
    WHERE f.at IS NOT NULL AND f.erased IS NULL AND f.result CONTAINS '"suspended":true'
    WITH substring(f.key, size('fraud:')) AS outcomeId
    WHERE NOT EXISTS { MATCH (:Fact {key: 'fraud-review:' + outcomeId}) }
    RETURN collect(outcomeId) AS outcomeIds`,
  // Oldest first along the (customer_id, occurred_at) index, from where the last batch ended;
  // events emptied already (by an earlier run) are passed over. No customer lock: only the
  // customer's existing events are touched, which no other writer changes.
  stripBatch: `
    MATCH (e:Event {customer_id: $id})
    WHERE e.occurred_at >= datetime($after) AND e.occurred_at <= datetime($until) AND e.erased IS NULL
    WITH e ORDER BY e.occurred_at LIMIT $limit
    SET e.payload = '{}', e.erased = true
    REMOVE e.cache
    RETURN count(e) AS stripped, toString(max(e.occurred_at)) AS last`,
  // The customer's lock first: no write for it can interleave.
  lock: `
    MATCH (c:Customer {id: $id})
    SET c.updated_at = datetime.transaction()
    RETURN c.status AS status, c.merged_into AS mergedInto`,
  erase: `
    MATCH (c:Customer {id: $id})
    CALL (c) {
      OPTIONAL MATCH (c)-[:HAS_DIGITAL_IDENTIFIER]->(i:DigitalIdentifier)
      DETACH DELETE i
      RETURN count(i) AS identifiers
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:SHIPPED_TO]->(a:Address)
      WHERE NOT EXISTS { MATCH (a)<-[:SHIPPED_TO]-(other:Customer) WHERE other <> c }
      DETACH DELETE a
      RETURN count(a) AS addresses
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
      DETACH DELETE p
      RETURN count(p) AS paymentMethods
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:HAS_BEHAVIORAL_PROFILE]->(b:BehavioralProfile)
      DETACH DELETE b
      RETURN count(b) AS profiles
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:LOGGED_IN_FROM]->(d:Device)
      WHERE NOT EXISTS { MATCH (d)<-[:LOGGED_IN_FROM]-(other:Customer) WHERE other <> c }
      DETACH DELETE d
      RETURN count(d) AS devices
    }
    CALL (c) {
      // Crypto-shredding: every history payload of the customer's workflows becomes unreadable
      // (temporal/payloadCodec.ts): its own key and its onboardings'. Its open processes are closed
      // by now (workflows/erasure.ts). The key material goes; the node stays (unlinked below) as a
      // tombstone, so that nothing can make the customer or an onboarding a new key (graph/historyKeys.ts).
      OPTIONAL MATCH (c)-[:HAS_HISTORY_KEY]->(k:HistoryKey) WHERE k.wrapped IS NOT NULL
      SET k.wrapped = null, k.wrapped_by = null, k.destroyed_at = datetime.transaction()
      RETURN count(k) AS historyKeys
    }
    CALL (c) {
      // What is left of its open processes (entries of workflows that closed unseen): graph/openProcesses.ts.
      OPTIONAL MATCH (c)-[:HAS_OPEN_PROCESS]->(p:OpenProcess)
      DETACH DELETE p
      RETURN count(p) AS openProcesses
    }
    CALL (c) {
      // Its person's blocking keys (graph/matchKeys.ts), derived from its data: each locked in key
      // order (an onboarding's), and deleted when, under the lock, no other customer holds it.
      OPTIONAL MATCH (c)-[:KEYED]->(key:MatchKey)
      WITH c, key ORDER BY key.key
      CALL (c, key) {
        WITH key WHERE key IS NOT NULL
        ${lockNode('key')}
        WITH key WHERE NOT EXISTS { MATCH (key)<-[:KEYED]-(other:Customer) WHERE other <> c }
        DETACH DELETE key
        RETURN count(*) AS deleted
      }
      RETURN sum(deleted) AS matchKeys
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[r]-()
      DELETE r
      RETURN count(r) AS edges
    }
    CALL (c) {
      OPTIONAL MATCH (n:Notification {customer_id: c.id})
      DETACH DELETE n
      RETURN count(n) AS claims
    }
    CALL (c) {
      // From where the batches ended: the events before were emptied by them.
      MATCH (e:Event {customer_id: c.id}) WHERE e.occurred_at >= datetime($from) AND e.erased IS NULL
      SET e.payload = '{}', e.erased = true
      REMOVE e.cache
      RETURN count(e) AS events
    }
    CALL (c) {
      // The facts read back from its history (graph/facts.ts): emptied like its events; the
      // CustomerErased fact written next is the erasure's own. (Predicates on every property of
      // the (customer_id, type, at) index, so it is sought.)
      OPTIONAL MATCH (f:Fact {customer_id: c.id}) WHERE f.type IS NOT NULL AND f.at IS NOT NULL AND f.erased IS NULL
      SET f.result = '{}', f.erased = true, f.about = null
      RETURN count(f) AS facts
    }
    CALL (c) {
      // Other customers' facts about it (a possible match naming it, a merge with it undone since):
      // what they say of it goes too.
      OPTIONAL MATCH (f:Fact {about: c.id}) WHERE f.type IS NOT NULL AND f.at IS NOT NULL
      SET f.result = '{}', f.erased = true, f.about = null
      RETURN count(f) AS factsAbout
    }
    SET c = {id: c.id, status: 'erased', created_at: c.created_at, updated_at: datetime.transaction(),
             erased_at: datetime.transaction(), event_seq: c.event_seq, erased_with: $erasedWith},
        c:Retired
    RETURN identifiers, addresses, paymentMethods, devices, events, historyKeys`,
} as const;

export interface ErasureOptions {
  /** Events emptied per transaction (default DEFAULT_ERASURE_BATCH_SIZE). */
  batchSize?: number;
  /** Called after each batch of events (an activity heartbeats here). */
  onBatch?: (progress: { batch: number; stripped: number; total: number }) => void;
  /** Who asked and why, recorded on the CustomerErased event. */
  audit?: ErasureAudit | undefined;
  /** Erasing a record merged into this customer, as part of that customer's erasure. */
  asMergedInto?: string;
}

/**
 * A suspended customer is erased only at ops' request (which carries a reason, `audit`): an
 * erasure the customer's own token asked for — perhaps the attacker's, before the takeover was
 * caught — is refused, before anything is emptied and again under the customer's lock.
 */
function refuseUnlessOps(status: unknown, options: ErasureOptions, customerId: string): void {
  if (status === 'suspended' && !options.audit)
    throw new InvalidStateError(
      `customer ${customerId} is suspended: only ops (with a reason) may erase it now, not its own request`,
    );
}

/** The customer's suspending fraud outcomes whose review has not ended (by the graph's record). */
export async function pendingFraudReviews(g: Graph, customerId: string): Promise<string[]> {
  return readTx(g, async (tx) => {
    const r = (await tx.run(CYPHER.pendingReviews, { id: customerId })).records[0];
    return (r?.get('outcomeIds') as string[] | undefined) ?? [];
  });
}

/** The key of a customer's CustomerErased event: one per customer, found again by a later erasure. */
const erasedKey = (customerId: string): string => `erased:${customerId}`;

/** The earliest instant Neo4j's datetime() reads: a batch cursor before every event. */
const BEFORE_ALL = '0001-01-01T00:00:00Z';

/**
 * Empties the customer's events up to `until`, oldest first, `batchSize` per transaction. Answers
 * how many it emptied, and where the last batch ended (BEFORE_ALL when none did).
 */
async function stripEventBatches(
  g: Graph,
  customerId: string,
  until: string,
  options: ErasureOptions,
): Promise<{ strippedInBatches: number; after: string }> {
  let strippedInBatches = 0;
  let after = BEFORE_ALL;
  const limit = neo4j.int(options.batchSize ?? DEFAULT_ERASURE_BATCH_SIZE);
  for (let batch = 1; ; batch++) {
    const r = await writeTx(
      g,
      async (tx) => (await tx.run(CYPHER.stripBatch, { id: customerId, after, until, limit })).records[0],
    );
    const stripped = Number(r?.get('stripped') ?? 0);
    if (stripped === 0) break;
    strippedInBatches += stripped;
    after = r?.get('last') as string;
    options.onBatch?.({ batch, stripped, total: strippedInBatches });
  }
  return { strippedInBatches, after };
}

export async function eraseCustomer(
  g: Graph,
  customerId: string,
  options: ErasureOptions = {},
): Promise<ErasureResult> {
  const status = await readTx(g, async (tx) => (await tx.run(CYPHER.status, { id: customerId })).records[0]);
  if (!status) throw new NotFoundError('Customer', customerId);
  refuseUnlessOps(status.get('status'), options, customerId);
  // The records merged into this one are the same person's: their events, history keys and what
  // else a tombstone keeps go first (each its own erasure), so a retry still finds what is left.
  const merged = await readTx(
    g,
    async (tx) => ((await tx.run(CYPHER.mergedInto, { id: customerId })).records[0]?.get('ids') as string[]) ?? [],
  );
  for (const id of merged) await eraseCustomer(g, id, { ...options, asMergedInto: customerId });
  // Batches empty only what was there when the erasure began; anything appended since (a fraud
  // outcome, say) is emptied in the last transaction, under the lock, after the last check.
  const { strippedInBatches, after } =
    status.get('status') !== 'erased'
      ? await stripEventBatches(g, customerId, status.get('now') as string, options)
      : { strippedInBatches: 0, after: BEFORE_ALL };
  return writeTx(g, async (tx) => {
    const lock = (await tx.run(CYPHER.lock, { id: customerId })).records[0];
    if (!lock) throw new NotFoundError('Customer', customerId);
    if (lock.get('status') === 'merged' && lock.get('mergedInto') !== options.asMergedInto)
      throw new InvalidStateError(
        `customer ${customerId} was merged into ${String(lock.get('mergedInto'))} meanwhile: erase that customer`,
      );
    // A record merged into this one after the erasure began: a retry erases it first.
    const late = (await mergedRecordsOfTx(tx, customerId)).filter((id) => !merged.includes(id));
    if (late.length > 0) throw new ConflictError(`records merged into ${customerId} meanwhile: ${late.join(', ')}`);
    const none = { identifiers: 0, addresses: 0, payment_methods: 0, devices: 0, events_stripped: 0, history_keys: 0 };
    if (lock.get('status') === 'erased') {
      // Erased before (an earlier run, or this one whose answer was lost): the records it erased with it.
      const earlier = await findFact(tx, erasedKey(customerId));
      const records = (earlier?.payload.merged_records as string[] | undefined) ?? [];
      return {
        customer_id: customerId,
        ...(records.length ? { merged_records: records } : {}),
        erased: false,
        deleted: none,
      };
    }
    refuseUnlessOps(lock.get('status'), options, customerId);
    const r = (await tx.run(CYPHER.erase, { id: customerId, from: after, erasedWith: options.asMergedInto ?? null }))
      .records[0];
    // The charge ledger keeps every attempt (key, amounts, outcome) without what is personal.
    await scrubLedgerTx(tx, [customerId]);
    const n = (k: string): number => Number(r?.get(k) ?? 0);
    const deleted = {
      identifiers: n('identifiers'),
      addresses: n('addresses'),
      payment_methods: n('paymentMethods'),
      devices: n('devices'),
      events_stripped: strippedInBatches + n('events'),
      history_keys: n('historyKeys'),
    };
    await appendEvent(
      tx,
      'CustomerErased',
      customerId,
      {
        deleted,
        ...(merged.length ? { merged_records: merged } : {}),
        ...(options.audit
          ? {
              request: {
                reason_code: options.audit.reason_code ?? 'ops_request',
                requested_by: options.audit.requested_by,
                override_fraud_review: options.audit.override_fraud_review,
              },
            }
          : {}),
      },
      { idempotencyKey: erasedKey(customerId) },
    );
    return { customer_id: customerId, ...(merged.length ? { merged_records: merged } : {}), erased: true, deleted };
  });
}
