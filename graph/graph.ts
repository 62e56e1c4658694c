/**
 * The graph handle every graph function takes: the process's one driver, the database name and
 * the token cipher. Writes run as transaction functions (the driver retries them on transient
 * errors, so their bodies are idempotent), and constraint violations become domain errors.
 *
 * The lock order every writer keeps: the customer first (several customers in id order), then
 * what belongs to it (payment methods, devices, addresses, notification claims, events). A
 * writer takes the customer's write lock with its first SET (`lockCustomersTx` in customers.ts,
 * or `lockNode` / a SET on the customer in the writer's own first statement) before it locks anything else,
 * and appending an event takes it too (the customer's `event_seq`, events.ts), so everything a
 * customer's writers read and write, and the order of the customer's events, is serialised by
 * that one lock. Two known exceptions, where Neo4j's deadlock detection and the transaction
 * functions' retry settle a rare cycle: onboarding MERGEs verified identifiers before it knows
 * (and locks) the customer they lead to, because the identifier is how it finds the customer;
 * and a device's trust change reaches its customers through the device. Records merged into
 * another (graph/identityMerge.ts) add three more of the same kind: a merge re-points older tombstones
 * after locking its pair; a write addressed to a tombstone (an interactions batch, a fraud
 * outcome) locks the survivor it leads to after what it locked already; and an erasure erases
 * the tombstones merged into a customer before that customer. Proven by
 * test/integration/concurrent-writers.test.ts ("one lock order: the customer first").
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { CountryCode } from 'libphonenumber-js';
import neo4j, { type BookmarkManager, type Driver, type ManagedTransaction, type SessionConfig } from 'neo4j-driver';
import { WRITE_TX_TIMEOUT_MS } from '../config/env';
import { toPlain } from './convert';
import { mapNeo4jError, NotFoundError } from './errors';
import type { TokenCipher } from './tokens';

/**
 * Cypher that takes a node's write lock and changes nothing: a constant property set and removed
 * again in the same transaction. Never a same-value SET such as `SET c.status = c.status`: Neo4j
 * evaluates the right-hand side before it waits for the lock, so a transaction that changed the
 * value meanwhile (a suspension, an erasure) would be overwritten, after its commit, with the value
 * read before it. What a statement reads after this, under the lock, is the committed value.
 */
export function lockNode(variable: string): string {
  return `SET ${variable}._lock = true REMOVE ${variable}._lock`;
}

/** How identities are read and matched, and what money is counted in (configurable per deployment). */
export interface GraphPolicy {
  /** Region national phone numbers are read in (ISO 3166-1 alpha-2). */
  defaultPhoneRegion: CountryCode;
  /** A fingerprint linked to more customers than this is no longer a matching signal. */
  sharedDeviceLimit: number;
  /** The ISO 4217 currency whose minor units the graph counts lifetime value in. */
  reportingCurrency: string;
  /** The most payment methods one wallet holds (PERSONA_MAX_PAYMENT_METHODS). */
  maxPaymentMethods: number;
}

export const DEFAULT_GRAPH_POLICY: GraphPolicy = {
  defaultPhoneRegion: 'US',
  sharedDeviceLimit: 5,
  reportingCurrency: 'USD',
  maxPaymentMethods: 20,
};

/**
 * Server-side limits on transactions, for a process whose callers wait (the api): a transaction
 * past its limit is rolled back by Neo4j, so a caller told 503 is not followed by a late commit
 * (except an interactions group, which drops `mayCommit`: api/services/interactions.ts).
 */
export interface TransactionLimits {
  /** Any read or write transaction (writes never longer than WRITE_TX_TIMEOUT_MS anyway). */
  transactionMs?: number;
  /** The agents' hot reads (context, checkout options). */
  hotReadMs?: number;
  /**
   * Asked before a write transaction commits: false when its caller was already answered
   * without it (a 503 when the request ran out of time), and then it rolls back instead.
   */
  mayCommit?: () => boolean;
}

/** A write rolled back because its caller had already been answered without it. */
export class AbandonedWriteError extends Error {
  constructor() {
    super('the request was answered without this write (out of time): rolled back');
    this.name = 'AbandonedWriteError';
  }
}

/**
 * An event as its transaction committed it, handed to `Graph.changes`: what a reader that keeps
 * copies (the api's read cache) needs to bring them up to date or drop them.
 */
export interface CommittedEvent {
  id: string;
  type: string;
  /** null on a device-level event. */
  customer_id: string | null;
  /** The event's place in its customer's sequence (null without a customer). */
  customer_seq: number | null;
  /** Only on a device-level event. */
  device_id?: string;
  /** A device-level event's place in its device's sequence. */
  device_seq?: number;
  payload: Record<string, unknown>;
  /** What read caches apply in place beside the payload (graph/events.ts NewEvent.cache). */
  cache?: Record<string, unknown>;
}

export interface Graph {
  driver: Driver;
  /**
   * Where read sessions go (readTx, a cache fill): absent, `driver` (a `neo4j://` driver routes
   * them to followers itself). A stale-follower harness points them at a Neo4j restored from an
   * older backup, to prove that no read behind the leader is taken for the truth.
   */
  readDriver?: Driver;
  /**
   * The bookmarks of every transaction this process ran, shared by all its sessions: a read waits
   * for this process's writes on whichever cluster member answers it (graph/bookmarks.ts).
   * Absent: sessions wait only for what is carried in (a workflow's, withCarriedBookmarks).
   */
  bookmarks?: BookmarkManager;
  database: string;
  tokens: TokenCipher;
  policy: GraphPolicy;
  limits?: TransactionLimits;
  /**
   * Called once a write transaction has committed, before the writer returns, with the events it
   * appended (those of the attempt that committed, never of a retried one). Must not throw.
   */
  changes?: (events: CommittedEvent[]) => void;
}

/**
 * No write transaction may run longer than WRITE_TX_TIMEOUT_MS: the change feed serves only
 * events stamped longer ago than its lag (PERSONA_EVENTS_FEED_LAG_MS, which config/env.ts refuses
 * below this plus a margin), so by then every transaction that stamped one has committed or
 * rolled back.
 */
export { WRITE_TX_TIMEOUT_MS };

/**
 * The events each transaction attempt appended (graph/events.ts records them here). Keyed by the
 * attempt's own transaction: the driver gives every retry a new one, so an attempt that failed or
 * was retried never leaks its events into the one that commits.
 */
const appendedBy = new WeakMap<ManagedTransaction, CommittedEvent[]>();

/** Records events appended inside `tx` (graph/events.ts), reported once `tx` commits. */
export function recordAppended(tx: ManagedTransaction, events: CommittedEvent[]): void {
  const known = appendedBy.get(tx);
  if (known) known.push(...events);
  else appendedBy.set(tx, [...events]);
}

/** The observers of `observeCommits` in scope, innermost first. */
const observers = new AsyncLocalStorage<{ events: CommittedEvent[]; outer: unknown }>();

/**
 * Runs `work` and answers, with its result, the events every write transaction it ran committed (in
 * commit order): how a writer learns the sequence numbers its answer's consistency token names
 * (api/consistency.ts). Nested observers each see the events of their own scope.
 */
export async function observeCommits<T>(work: () => Promise<T>): Promise<{ result: T; events: CommittedEvent[] }> {
  const events: CommittedEvent[] = [];
  const result = await observers.run({ events, outer: observers.getStore() }, work);
  return { result, events };
}

/** Hands a committed transaction's events to `g.changes` and to the observers in scope. */
function reportCommitted(g: Graph, events: CommittedEvent[]): void {
  if (events.length === 0) return;
  for (let o = observers.getStore(); o; o = o.outer as typeof o | undefined) o.events.push(...events);
  try {
    g.changes?.(events);
  } catch {
    // The write has committed: a failing hook must not turn it into an error. Nothing is logged here
    // (an event's payload may be personal); the hook reports its own failures.
  }
}

/**
 * A session of `g`: `WRITE` for the leader, `READ` for any member. It waits for this process's
 * writes (`g.bookmarks`; not with `ownWrites: false`, for a hot read that must not wait for the
 * process's latest write of anyone) and for `after` (one read's, for the next); a `READ` session
 * for the bookmarks carried into the call too (graph/bookmarks.ts). The leader has every commit:
 * it is never held on carried bookmarks, so a made-up one costs a read one wait, and nothing more.
 */
export function sessionOf(
  g: Graph,
  mode: 'READ' | 'WRITE',
  after?: string[],
  options: { ownWrites?: boolean } = {},
): SessionConfig {
  const carried = mode === 'READ' ? carriedBookmarks() : [];
  const bookmarks = after ? [...carried, ...after] : carried;
  return {
    database: g.database,
    defaultAccessMode: mode === 'WRITE' ? neo4j.session.WRITE : neo4j.session.READ,
    ...(g.bookmarks && options.ownWrites !== false ? { bookmarkManager: g.bookmarks } : {}),
    ...(bookmarks.length > 0 ? { bookmarks: [...bookmarks] } : {}),
  };
}

/** How many of its latest writes' bookmarks a process keeps to hand on (bookmarksToCarry). */
export const RECENT_WRITES_KEPT = 8;

/** The bookmarks of the latest writes each process committed, newest last, by its bookmark manager. */
const recentWrites = new WeakMap<BookmarkManager, string[]>();

function noteWrite(g: Graph, bookmarks: string[]): void {
  if (!g.bookmarks || bookmarks.length === 0) return;
  let recent = recentWrites.get(g.bookmarks);
  if (!recent) recentWrites.set(g.bookmarks, (recent = []));
  for (const b of bookmarks) {
    const at = recent.indexOf(b);
    if (at >= 0) recent.splice(at, 1);
    recent.push(b);
  }
  if (recent.length > RECENT_WRITES_KEPT) recent.splice(0, recent.length - RECENT_WRITES_KEPT);
}

/**
 * The bookmarks of this process's latest writes (newest last): the leader's, so the newest names
 * every write committed before it (reads' bookmarks, a follower's, might not; they are left out).
 */
export function recentWriteBookmarks(g: Graph): readonly string[] {
  return (g.bookmarks && recentWrites.get(g.bookmarks)) ?? [];
}

export async function writeTx<T>(g: Graph, work: (tx: ManagedTransaction) => Promise<T>): Promise<T> {
  const session = g.driver.session(sessionOf(g, 'WRITE'));
  let committed: CommittedEvent[] = [];
  let result: T;
  try {
    const timeout = Math.min(g.limits?.transactionMs ?? WRITE_TX_TIMEOUT_MS, WRITE_TX_TIMEOUT_MS);
    const mayCommit = g.limits?.mayCommit;
    // Each attempt replaces what an earlier one appended: only the attempt that commits is reported
    // (a commit that fails after the work returned is retried, and its retry replaces it again).
    const attempt = async (tx: ManagedTransaction) => {
      const answer = await work(tx);
      if (mayCommit && !mayCommit()) throw new AbandonedWriteError();
      committed = appendedBy.get(tx) ?? [];
      return answer;
    };
    result = await session.executeWrite(attempt, { timeout });
    noteWrite(g, session.lastBookmarks());
  } catch (err) {
    throw mapNeo4jError(err);
  } finally {
    await session.close();
  }
  reportCommitted(g, committed);
  return result;
}

const carried = new AsyncLocalStorage<readonly string[]>();

/** Runs `work` with every session it begins also waiting for `bookmarks` (another process's writes). */
export function withCarriedBookmarks<T>(bookmarks: readonly string[], work: () => Promise<T>): Promise<T> {
  return bookmarks.length === 0 ? work() : carried.run(bookmarks, work);
}

/** The bookmarks carried into the current call (withCarriedBookmarks); [] when none. */
export function carriedBookmarks(): readonly string[] {
  return carried.getStore() ?? [];
}

const UNREACHABLE = new Set([
  // The member did not apply the bookmarked commit within its wait (a lagging follower, or a
  // store restored to before it).
  'Neo.TransientError.Transaction.BookmarkTimeout',
  // A bookmark the server cannot read, or bookmarks of different databases.
  'Neo.ClientError.Transaction.InvalidBookmark',
  'Neo.ClientError.Transaction.InvalidBookmarkMixture',
]);

/** Whether `err` says the bookmarks a transaction began with could not be reached where it ran. */
export function isBookmarkUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREACHABLE.has(code);
}

const leaderReads = new AsyncLocalStorage<true>();

/**
 * Runs `work` with every read on the leader (readTx and a cache fill as leaderReadTx): how an
 * activity that found nothing on a follower is run again (workers/logging.ts).
 */
export function onTheLeader<T>(work: () => Promise<T>): Promise<T> {
  return leaderReads.run(true, work);
}

/** Whether the reads of this call are pinned to the leader (onTheLeader). */
export function readsOnTheLeader(): boolean {
  return leaderReads.getStore() === true;
}

/**
 * A read in a read session: on a cluster any member may answer, and a follower may be behind the
 * leader. It waits for the bookmarks its session carries (sessionOf), and a follower that cannot
 * reach them in time is passed over for the leader. A "not found" it answers is asked again on the
 * leader before it is believed too: an activity reading what the api has just written fails for
 * good only when the leader has not got it either, never because a follower was behind.
 */
export async function readTx<T>(g: Graph, work: (tx: ManagedTransaction) => Promise<T>): Promise<T> {
  if (readsOnTheLeader()) return leaderReadTx(g, work);
  const session = (g.readDriver ?? g.driver).session(sessionOf(g, 'READ'));
  try {
    return await session.executeRead(work, g.limits?.transactionMs ? { timeout: g.limits.transactionMs } : {});
  } catch (err) {
    if (!(err instanceof NotFoundError) && !isBookmarkUnreachable(err)) throw err;
  } finally {
    await session.close();
  }
  return leaderReadTx(g, work);
}

/**
 * A read on the leader of a cluster (Enterprise, Aura): a write-routed session running a read.
 * Followers apply the leader's commits a moment later, so a read routed to one can miss an
 * event the leader has committed while returning a later one; the change feed, whose cursor
 * moves past whatever it returned, must never do that. On a single instance (Community) it is
 * an ordinary read. Nothing is written, so nothing is asked of `mayCommit`.
 */
export async function leaderReadTx<T>(g: Graph, work: (tx: ManagedTransaction) => Promise<T>): Promise<T> {
  const session = g.driver.session(sessionOf(g, 'WRITE'));
  try {
    return await session.executeWrite(work, g.limits?.transactionMs ? { timeout: g.limits.transactionMs } : {});
  } finally {
    await session.close();
  }
}

/**
 * Reads one collected list belonging to a customer (its devices, addresses, …) with a query
 * that returns one row while the customer exists. A missing customer is a NotFoundError, not [].
 */
export async function readCustomerList<T>(
  g: Graph,
  cypher: string,
  customerId: string,
  column: string,
  params: Record<string, unknown> = {},
): Promise<T[]> {
  return readTx(g, async (tx) => {
    const record = (await tx.run(cypher, { ...params, customerId })).records[0];
    if (!record) throw new NotFoundError('Customer', customerId);
    return toPlain(record.get(column)) as unknown as T[];
  });
}

const commitListeners = new WeakMap<Graph, Set<(events: CommittedEvent[]) => void>>();

/**
 * Adds a listener to the graph's commits (`Graph.changes`), beside any already there: an api
 * process's read cache, and in tests a second api on the same graph. A copy of the graph made
 * afterwards (`{...graph, limits}`) reaches the same listeners. Returns its removal.
 */
export function onCommit(g: Graph, listener: (events: CommittedEvent[]) => void): () => void {
  let listeners = commitListeners.get(g);
  if (!listeners) {
    const all = new Set<(events: CommittedEvent[]) => void>();
    const before = g.changes;
    g.changes = (events) => {
      before?.(events);
      for (const l of all) l(events);
    };
    commitListeners.set(g, all);
    listeners = all;
  }
  listeners.add(listener);
  const added = listeners;
  return () => void added.delete(listener);
}
