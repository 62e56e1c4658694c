/**
 * History keys (temporal/payloadCodec.ts): one per **customer**, not per workflow. A node
 * `(:HistoryKey {id: 'customer:<customer id>', kind: 'customer', wrapped, wrapped_by, created_at})`
 * linked `(:Customer)-[:HAS_HISTORY_KEY]->(:HistoryKey)` encrypts the histories of all the
 * customer's payment recoveries and fraud outcomes. The key itself is 32 random bytes, stored only
 * wrapped (AES-256-GCM) by the service key that was active when it was made (`wrapped_by`), so a
 * dump of the graph alone reads no history.
 *
 * A customer's key is made once, by the first workflow the api starts for it (`provisionHistoryKey`,
 * a write under the customer's lock only then); every later start reads the customer's status and
 * key (one read, no lock, no write) and tells this process's codec whose the workflow is
 * (`WorkflowCustomers`). Nothing is written per workflow.
 *
 * Which customer a workflow's payloads belong to: the codec sees only the workflow id. A process
 * knows it (`WorkflowCustomers`, an LRU of workflow id → customer id) because the starter said so
 * (the api, just before the start), or because it decoded a payload of that workflow under a
 * customer's key (the key id in the payload's metadata names the customer, and the payload is
 * bound to its workflow: a worker replaying or running an activity learns it from the input it
 * decodes first). A process that knows neither (a cache evicted, a signal from a process that never
 * saw the workflow) asks the graph which customer has the workflow among its open processes
 * (graph/openProcesses.ts): a read, once, on that miss only.
 *
 * An **onboarding** has no customer when it starts: it keeps a key of its own,
 * `(:HistoryKey {id: <workflow id>, kind: 'onboarding'})`, made by its first payload (the start)
 * and linked to the customer it creates or matches in that transaction (graph/onboarding.ts), so
 * an erasure destroys it with the customer's. It is needed only while Temporal keeps the
 * onboarding's history (the namespace's retention, `PERSONA_HISTORY_RETENTION_DAYS`): each new
 * onboarding key removes up to two expired ones in its own transaction, so they never outgrow the
 * onboardings of one retention period. Before this module there was one key per workflow, never
 * pruned; Persona was never released, so no such keys are carried over.
 *
 * Erasure destroys the customer's keys (its own, and those of the records merged into it) in its
 * own transaction once none of its open processes runs (graph/erasure.ts, workflows/erasure.ts):
 * the key material goes, the node stays unlinked as a tombstone, so nothing makes the customer or
 * the onboarding a new key. Every payload of the customer's histories is unreadable from then on:
 * the api and the codec server never keep a key for decoding (they read it on every decode), and
 * a worker decodes only open workflows' payloads, of which the erased customer has none.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { LRUCache } from 'lru-cache';
import type { KeyRing } from '../config/keyRing';
import { ConflictError, InvalidStateError, NotFoundError } from './errors';
import { lockNode, readTx, writeTx, type Graph } from './graph';
import { customerOfOpenProcess, OPEN_PROCESS_OWNER } from './openProcesses';

/** The key id of a customer's history key. */
export const customerKeyId = (customerId: string): string => `customer:${customerId}`;
const CUSTOMER_KEY_PREFIX = 'customer:';

/** The customer a key id names, or null (an onboarding's own key). */
export function customerOfKeyId(keyId: string): string | null {
  return keyId.startsWith(CUSTOMER_KEY_PREFIX) ? keyId.slice(CUSTOMER_KEY_PREFIX.length) : null;
}

/** Where the history keys live (this module keeps them in the graph). */
export interface HistoryKeyStore {
  /**
   * The key, unwrapped (`customer:<id>`, or an onboarding's workflow id). When it does not exist:
   * made if `create` (a customer's only while the customer exists and is not erased), otherwise
   * null — it never existed, or an erasure destroyed it.
   */
  keyFor(keyId: string, options: { create: boolean }): Promise<Buffer | null>;
  /** The customer a (non-onboarding) customer workflow belongs to, or null when nothing says. */
  customerOf(workflowId: string): Promise<string | null>;
  /**
   * Records that the workflow is the customer's (a payload of it decrypted under the customer's
   * key). False (and nothing changes) when this process knows it as another customer's.
   */
  learn(workflowId: string, customerId: string): boolean;
}

/**
 * Which customer each workflow is, as far as this process knows: told by the starter, learned from
 * payloads decoded. A workflow belongs to one customer for its life, so an entry never changes; the
 * LRU bounds the working set.
 */
export class WorkflowCustomers {
  private readonly map: LRUCache<string, string>;
  constructor(maxEntries = 100_000) {
    this.map = new LRUCache({ max: Math.max(1, maxEntries) });
  }
  get(workflowId: string): string | undefined {
    return this.map.get(workflowId);
  }
  /** False (and nothing changes) when the workflow is known as another customer's. */
  set(workflowId: string, customerId: string): boolean {
    const known = this.map.get(workflowId);
    if (known !== undefined && known !== customerId) return false;
    if (known === undefined) this.map.set(workflowId, customerId);
    return true;
  }
  /** Forgets that the workflow is the customer's (its start was refused: the id may be another's). */
  forget(workflowId: string, customerId: string): void {
    if (this.map.get(workflowId) === customerId) this.map.delete(workflowId);
  }
}

/** The process's directory, shared by its codecs (the api's start tells its client's codec). */
export const processWorkflowCustomers = new WorkflowCustomers();

const CYPHER = {
  read: 'MATCH (k:HistoryKey {id: $id}) RETURN k.wrapped AS wrapped, k.wrapped_by AS wrappedBy',
  // An onboarding's key; expired onboarding keys (their histories gone) removed in the same go.
  createOnboarding: `
    MERGE (k:HistoryKey {id: $id})
      ON CREATE SET k.wrapped = $wrapped, k.wrapped_by = $wrappedBy, k.kind = 'onboarding',
                    k.created_at = datetime()
    WITH k
    CALL (k) {
      MATCH (old:HistoryKey {kind: 'onboarding'})
      WHERE old.created_at < datetime() - duration({days: $retentionDays}) AND old <> k
      WITH old LIMIT 2
      DETACH DELETE old
    }
    RETURN k.wrapped AS wrapped, k.wrapped_by AS wrappedBy`,
  // The customer's lock first (graph/graph.ts), then its key: an erasure cannot interleave.
  createCustomer: `
    MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    FOREACH (_ IN CASE WHEN c.status = 'erased' THEN [] ELSE [1] END |
      MERGE (k:HistoryKey {id: $id})
        ON CREATE SET k.wrapped = $wrapped, k.wrapped_by = $wrappedBy, k.kind = 'customer',
                      k.created_at = datetime()
      MERGE (c)-[:HAS_HISTORY_KEY]->(k))
    WITH c
    OPTIONAL MATCH (k:HistoryKey {id: $id})
    RETURN c.status = 'erased' AS erased, k.wrapped AS wrapped, k.wrapped_by AS wrappedBy`,
  // What a start needs to know, read without a lock: the customer, its key, and whether the
  // workflow id is another customer's open process.
  startable: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[:HAS_HISTORY_KEY]->(k:HistoryKey {id: $keyId})
    OPTIONAL MATCH (other:Customer)-[:${OPEN_PROCESS_OWNER}]->(:OpenProcess {id: $workflowId})
    WHERE other <> c
    RETURN c.status = 'erased' AS erased, k IS NOT NULL AND k.wrapped IS NOT NULL AS keyed,
           count(other) > 0 AS taken`,
  link: `
    MATCH (k:HistoryKey {id: $id})
    MATCH (c:Customer {id: $customerId})
    MERGE (c)-[:HAS_HISTORY_KEY]->(k)`,
};

interface Wrapped {
  /** Null once an erasure destroyed the key (the node stays, a tombstone). */
  wrapped: string | null;
  wrappedBy: string;
}

function wrap(ring: KeyRing, key: Buffer, keyId: string): Wrapped {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', ring.active.key, iv);
  cipher.setAAD(Buffer.from(`history-key:${keyId}`));
  const sealed = Buffer.concat([iv, cipher.update(key), cipher.final(), cipher.getAuthTag()]);
  return { wrapped: sealed.toString('base64'), wrappedBy: ring.active.id };
}

/** A history key this process cannot unwrap (its service key is not in the ring, or it is damaged). */
export class HistoryKeyUnreadableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HistoryKeyUnreadableError';
  }
}

function unwrap(ring: KeyRing, w: Wrapped, keyId: string): Buffer {
  try {
    return unwrapWith(ring, w, keyId);
  } catch (err) {
    if (err instanceof HistoryKeyUnreadableError) throw err;
    throw new HistoryKeyUnreadableError(
      `the history key ${keyId} does not unwrap: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

function unwrapWith(ring: KeyRing, w: Wrapped, keyId: string): Buffer {
  const by = ring.get(w.wrappedBy);
  if (!by)
    throw new HistoryKeyUnreadableError(
      `the history key ${keyId} is wrapped by payload key ${w.wrappedBy}, which is not in PERSONA_PAYLOAD_KEYS`,
    );
  const data = Buffer.from(w.wrapped ?? '', 'base64');
  const decipher = createDecipheriv('aes-256-gcm', by, data.subarray(0, 12));
  decipher.setAAD(Buffer.from(`history-key:${keyId}`));
  decipher.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
}

function newWrappedKey(ring: KeyRing, keyId: string): Wrapped {
  return wrap(ring, randomBytes(32), keyId);
}

export interface HistoryKeyCacheOptions {
  /** Unwrapped keys kept in memory (0: none, every payload asks the graph). */
  maxEntries: number;
  /** How long a key is kept in memory after it was read. */
  ttlMs: number;
  /**
   * Whether decoding uses the cache too (a worker, which decodes every task of an open workflow),
   * or only encoding does (an api: each read of a result or status asks the graph, so what an
   * erasure destroyed is unreadable for it at once).
   */
  decodes: boolean;
  /** How long an onboarding's own key is kept (the namespace's retention), in days (default 30). */
  onboardingKeyDays?: number;
  /** Which customer each workflow is (default: the process's, `processWorkflowCustomers`). */
  workflowCustomers?: WorkflowCustomers;
}

const readWrapped = async (tx: ManagedTransaction, cypher: string, params: Record<string, unknown>) => {
  const record = (await tx.run(cypher, params)).records[0];
  return record
    ? { wrapped: record.get('wrapped') as string | null, wrappedBy: record.get('wrappedBy') as string }
    : null;
};

/**
 * The history keys in the graph, unwrapped with the ring. With a cache, a process reads each key
 * once per `ttlMs` (a worker encodes and decodes on every task); without one (the codec server),
 * every decode asks the graph, so a key erasure destroyed is gone for it at once.
 */
export function graphHistoryKeys(g: Graph, ring: KeyRing, cache?: HistoryKeyCacheOptions): HistoryKeyStore {
  const lru =
    cache && cache.maxEntries > 0 ? new LRUCache<string, Buffer>({ max: cache.maxEntries, ttl: cache.ttlMs }) : null;
  const directory = cache?.workflowCustomers ?? processWorkflowCustomers;
  const retentionDays = cache?.onboardingKeyDays ?? 30;
  const inFlight = new Map<string, Promise<Buffer | null>>();
  // A fetch is shared by every caller that asks for the key meanwhile, so no one caller's request
  // may roll its write back: one answered 503 (out of time) would hand its AbandonedWriteError to a
  // retry with the same Idempotency-Key that joined it (the fleet test saw that as a 500). Making a
  // key is idempotent and harms nothing when its first caller has gone.
  const shared: Graph = g.limits?.mayCommit ? { ...g, limits: { ...g.limits, mayCommit: undefined } } : g;
  const fetch = async (keyId: string, create: boolean): Promise<Buffer | null> => {
    let found = await readTx(shared, (tx) => readWrapped(tx, CYPHER.read, { id: keyId }));
    if (!found && create) {
      const customerId = customerOfKeyId(keyId);
      found = await writeTx(shared, (tx) =>
        customerId === null
          ? readWrapped(tx, CYPHER.createOnboarding, { id: keyId, retentionDays, ...newWrappedKey(ring, keyId) })
          : readWrapped(tx, CYPHER.createCustomer, { id: keyId, customerId, ...newWrappedKey(ring, keyId) }),
      );
    }
    // Destroyed by an erasure: the node stays without its key, so nothing makes a new one (the
    // workflow's later payloads would escape the erasure).
    if (!found?.wrapped) return null;
    return unwrap(ring, found, keyId);
  };
  return {
    async keyFor(keyId, { create }) {
      const cached = create || cache?.decodes ? lru?.get(keyId) : undefined;
      if (cached) return cached;
      const flightKey = `${create ? 'c' : 'r'}:${keyId}`;
      let pending = inFlight.get(flightKey);
      if (!pending) {
        pending = fetch(keyId, create).finally(() => inFlight.delete(flightKey));
        inFlight.set(flightKey, pending);
      }
      const key = await pending;
      if (key) lru?.set(keyId, key);
      return key;
    },
    async customerOf(workflowId) {
      const known = directory.get(workflowId);
      if (known !== undefined) return known;
      const found = await customerOfOpenProcess(g, workflowId);
      if (found !== null) directory.set(workflowId, found);
      return found;
    },
    learn: (workflowId, customerId) => directory.set(workflowId, customerId),
  };
}

/**
 * Before a customer workflow starts: refuses an erased customer (whose workflows may not start
 * again) and a workflow id another customer's open process holds (a payment or outcome id is the
 * caller's), makes the customer's key if it has none yet (its first workflow only), and tells
 * this process's codecs whose the workflow is. One read without a lock for every later start.
 */
export async function provisionHistoryKey(
  g: Graph,
  ring: KeyRing,
  workflowId: string,
  customerId: string,
  directory: WorkflowCustomers = processWorkflowCustomers,
): Promise<void> {
  const keyId = customerKeyId(customerId);
  const record = await readTx(
    g,
    async (tx) => (await tx.run(CYPHER.startable, { customerId, keyId, workflowId })).records[0],
  );
  if (!record) throw new NotFoundError('Customer', customerId);
  let erased = record.get('erased') as boolean;
  if (!erased && record.get('taken') === true)
    throw new ConflictError(`workflow ${workflowId} belongs to another customer`);
  if (!erased && record.get('keyed') !== true) {
    erased = await writeTx(g, async (tx) => {
      const made = (await tx.run(CYPHER.createCustomer, { id: keyId, customerId, ...newWrappedKey(ring, keyId) }))
        .records[0];
      return made?.get('erased') === true || !made?.get('wrapped');
    });
  }
  if (erased) throw new InvalidStateError(`customer ${customerId} is erased: no workflow of it may start`);
  if (!directory.set(workflowId, customerId))
    throw new ConflictError(`workflow ${workflowId} belongs to another customer`);
}

/** Links an onboarding's own key to the customer it created or matched (in that transaction). */
export async function linkHistoryKeyTx(tx: ManagedTransaction, workflowId: string, customerId: string): Promise<void> {
  await tx.run(CYPHER.link, { id: workflowId, customerId });
}
