/**
 * History keys (temporal/payloadCodec.ts): one per customer workflow, a node
 * `(:HistoryKey {id: <workflow id>, wrapped, wrapped_by, created_at})` linked
 * `(:Customer)-[:HAS_HISTORY_KEY]->(:HistoryKey)`. The key itself is 32 random bytes, stored only
 * wrapped (AES-256-GCM) by the service key that was active when it was made (`wrapped_by`), so
 * a dump of the graph alone reads no history.
 *
 * A key is created by the first payload its workflow encodes (the start), linked to the customer
 * then when the starter knows the customer (`provisionHistoryKey`), or — for an onboarding,
 * whose customer does not exist yet — in the transaction that creates or matches the customer
 * (graph/onboarding.ts). Erasure destroys the customer's keys in its own transaction once none of
 * those workflows is open (graph/erasure.ts, workflows/erasure.ts): the key material goes, the node
 * stays unlinked as a tombstone, so no later payload of the workflow can make it a new key.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { LRUCache } from 'lru-cache';
import type { KeyRing } from '../config/keyRing';
import { ConflictError, InvalidStateError, NotFoundError } from './errors';
import { lockNode, readTx, writeTx, type Graph } from './graph';

/** Where the history keys live (graph/historyKeys.ts keeps them in the graph). */
export interface HistoryKeyStore {
  /**
   * The workflow's history key, unwrapped. When it does not exist: created (not yet linked to
   * a customer) if `create`, otherwise null — it never existed, or erasure destroyed it.
   */
  keyFor(workflowId: string, options: { create: boolean }): Promise<Buffer | null>;
}

const CYPHER = {
  read: 'MATCH (k:HistoryKey {id: $id}) RETURN k.wrapped AS wrapped, k.wrapped_by AS wrappedBy',
  create: `
    MERGE (k:HistoryKey {id: $id})
      ON CREATE SET k.wrapped = $wrapped, k.wrapped_by = $wrappedBy, k.created_at = datetime()
    RETURN k.wrapped AS wrapped, k.wrapped_by AS wrappedBy`,
  // The customer's lock first (graph/graph.ts), then the key: an erasure cannot interleave.
  provision: `
    MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    WITH c
    OPTIONAL MATCH (other:Customer)-[:HAS_HISTORY_KEY]->(:HistoryKey {id: $id})
    WHERE other <> c
    WITH c, count(other) > 0 AS taken
    FOREACH (_ IN CASE WHEN c.status = 'erased' OR taken THEN [] ELSE [1] END |
      MERGE (k:HistoryKey {id: $id})
        ON CREATE SET k.wrapped = $wrapped, k.wrapped_by = $wrappedBy, k.created_at = datetime()
      MERGE (c)-[:HAS_HISTORY_KEY]->(k))
    RETURN c.status = 'erased' AS erased, taken`,
  link: `
    MATCH (k:HistoryKey {id: $id})
    MATCH (c:Customer {id: $customerId})
    MERGE (c)-[:HAS_HISTORY_KEY]->(k)`,
  ofCustomer: 'MATCH (:Customer {id: $customerId})-[:HAS_HISTORY_KEY]->(k:HistoryKey) RETURN k.id AS id ORDER BY id',
};

interface Wrapped {
  /** Null once an erasure destroyed the key (the node stays, a tombstone). */
  wrapped: string | null;
  wrappedBy: string;
}

function wrap(ring: KeyRing, key: Buffer, workflowId: string): Wrapped {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', ring.active.key, iv);
  cipher.setAAD(Buffer.from(`history-key:${workflowId}`));
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

function unwrap(ring: KeyRing, w: Wrapped, workflowId: string): Buffer {
  try {
    return unwrapWith(ring, w, workflowId);
  } catch (err) {
    if (err instanceof HistoryKeyUnreadableError) throw err;
    throw new HistoryKeyUnreadableError(
      `the history key of ${workflowId} does not unwrap: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

function unwrapWith(ring: KeyRing, w: Wrapped, workflowId: string): Buffer {
  const by = ring.get(w.wrappedBy);
  if (!by)
    throw new HistoryKeyUnreadableError(
      `the history key of ${workflowId} is wrapped by payload key ${w.wrappedBy}, which is not in PERSONA_PAYLOAD_KEYS`,
    );
  const data = Buffer.from(w.wrapped ?? '', 'base64');
  const decipher = createDecipheriv('aes-256-gcm', by, data.subarray(0, 12));
  decipher.setAAD(Buffer.from(`history-key:${workflowId}`));
  decipher.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
}

function newWrappedKey(ring: KeyRing, workflowId: string): Wrapped {
  return wrap(ring, randomBytes(32), workflowId);
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
}

/**
 * The history keys in the graph, unwrapped with the ring. With a cache, a process reads each
 * workflow's key once per `ttlMs` (a worker encodes and decodes a workflow's payloads on every
 * task); without one (the codec server), every decode asks the graph, so a key erasure destroyed
 * is gone for it at once.
 */
export function graphHistoryKeys(g: Graph, ring: KeyRing, cache?: HistoryKeyCacheOptions): HistoryKeyStore {
  const lru =
    cache && cache.maxEntries > 0 ? new LRUCache<string, Buffer>({ max: cache.maxEntries, ttl: cache.ttlMs }) : null;
  const inFlight = new Map<string, Promise<Buffer | null>>();
  const fetch = async (workflowId: string, create: boolean): Promise<Buffer | null> => {
    const read = async (tx: ManagedTransaction, cypher: string, params: Record<string, unknown>) => {
      const record = (await tx.run(cypher, params)).records[0];
      return record ? { wrapped: record.get('wrapped') as string, wrappedBy: record.get('wrappedBy') as string } : null;
    };
    let found = await readTx(g, (tx) => read(tx, CYPHER.read, { id: workflowId }));
    if (!found && create)
      found = await writeTx(g, (tx) => read(tx, CYPHER.create, { id: workflowId, ...newWrappedKey(ring, workflowId) }));
    // Destroyed by an erasure: the node stays without its key, so nothing makes a new one for the
    // workflow (its later payloads would escape the erasure).
    if (!found?.wrapped) return null;
    return unwrap(ring, found, workflowId);
  };
  return {
    async keyFor(workflowId, { create }) {
      const cached = create || cache?.decodes ? lru?.get(workflowId) : undefined;
      if (cached) return cached;
      const flightKey = `${create ? 'c' : 'r'}:${workflowId}`;
      let pending = inFlight.get(flightKey);
      if (!pending) {
        pending = fetch(workflowId, create).finally(() => inFlight.delete(flightKey));
        inFlight.set(flightKey, pending);
      }
      const key = await pending;
      if (key) lru?.set(workflowId, key);
      return key;
    },
  };
}

/**
 * Makes the workflow's history key (if its start has not already) and links it to the customer,
 * before a customer workflow starts: an erasure then finds it. Refused for an erased customer,
 * whose workflows may not start again.
 */
export async function provisionHistoryKey(
  g: Graph,
  ring: KeyRing,
  workflowId: string,
  customerId: string,
): Promise<void> {
  const { erased, taken } = await writeTx(g, async (tx) => {
    const record = (await tx.run(CYPHER.provision, { id: workflowId, customerId, ...newWrappedKey(ring, workflowId) }))
      .records[0];
    if (!record) throw new NotFoundError('Customer', customerId);
    return { erased: record.get('erased') as boolean, taken: record.get('taken') as boolean };
  });
  if (erased) throw new InvalidStateError(`customer ${customerId} is erased: no workflow of it may start`);
  // A payment or outcome id is the caller's: another customer's workflow keeps its own key, and an
  // erasure of this customer must never reach it.
  if (taken) throw new ConflictError(`workflow ${workflowId} belongs to another customer`);
}

/** Links an onboarding's history key to the customer it created or matched (in that transaction). */
export async function linkHistoryKeyTx(tx: ManagedTransaction, workflowId: string, customerId: string): Promise<void> {
  await tx.run(CYPHER.link, { id: workflowId, customerId });
}

/** The workflows whose history keys belong to the customer (erasure waits until none is open). */
export async function historyKeysOfCustomer(g: Graph, customerId: string): Promise<string[]> {
  return readTx(g, async (tx) =>
    (await tx.run(CYPHER.ofCustomer, { customerId })).records.map((r) => r.get('id') as string),
  );
}
