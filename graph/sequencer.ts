/**
 * The event log's commit order: every event is appended `:Unsequenced` (graph/events.ts), and the
 * sequencer numbers the committed ones 1, 2, 3, … (`log_seq`, dense: no number skipped or used
 * twice) in the order it finds them, taking the label off in the same transaction.
 *
 * Why: an event is stamped (`occurred_at`) when it is appended, not when its transaction commits,
 * and Neo4j neither interrupts a commit nor checks timeouts more often than every 2 s, so a reader
 * that goes by the stamp can pass an event that commits later. A committed event stays
 * `:Unsequenced` until the sequencer has numbered it, however late it commits, and a reader that
 * goes by `log_seq` sees a hole, not a skip, where an event is not visible yet: it reads the hole
 * again (`readSequenced`) instead of passing it.
 *
 * Sequencers (every worker runs one, workers/eventSequencer.ts) hold a lease on the sequencer node:
 * one numbers and sends while the others stand by, looking twice a second whether it lapsed (its
 * holder gone), and the numbering itself is under the node's lock, so two never number at once.
 * An idle round is a read: nothing waiting means nothing is written (but for the lease's renewal).
 * The numbers are the log's own within its epoch: a restore brings back the sequencer node with the
 * backup and starts a new epoch (backup/restore.ts), and a reader that sees the epoch change
 * starts over.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { EVENT_LOG_ID, EVENT_PROJECTION, eventFromRow, type PersonaEvent } from './events';
import { leaderReadTx, sessionOf, writeTx, type Graph } from './graph';

export const SEQUENCER_ID = 'persona';

/** Events whose payload a cache applies in place (api/readCache.ts); the others go by type and sequence. */
export const PAYLOAD_TYPES = ['CustomerProfileUpdated', 'DeviceTrustScoreUpdated', 'DeviceLinked'];

/** A numbered event, as much of it as a reader keeping copies needs (no payload but of PAYLOAD_TYPES). */
export interface SequencedEvent {
  log_seq: number;
  type: string;
  customer_id: string | null;
  customer_seq: number | null;
  device_id?: string;
  device_seq?: number;
  payload: Record<string, unknown> | null;
  /** What read caches apply in place beside the payload (graph/events.ts NewEvent.cache), when there is any. */
  cache?: Record<string, unknown>;
}

/** Where the log's numbering stands. */
export interface SequencerState {
  /** The log's epoch (graph/events.ts): a restore starts a new one, numbered from the backup's. */
  epoch: number;
  /** The last number given (0: none yet). */
  through: number;
  /**
   * Neo4j's clock (ms since 1970) at a moment nothing committed was waiting for a number: every
   * event committed before it is numbered at or below `through`. Null while events are waiting.
   */
  drainedAt: number | null;
}

export interface SequencedBatch extends SequencerState {
  /** The numbers this round gave, in order (empty: nothing was waiting). */
  events: SequencedEvent[];
  /** Another sequencer holds the lease: this one numbered nothing and says nothing. */
  standby?: boolean;
}

/** Who a sequencer is, and how long its lease lasts once taken or renewed. */
export interface SequencerLease {
  me: string;
  ms: number;
}

const ROW = `{logSeq: e.log_seq, type: e.type, customerId: e.customer_id, customerSeq: e.customer_seq,
  deviceId: e.device_id, deviceSeq: e.device_seq, payload: CASE WHEN e.type IN $payloadTypes THEN e.payload END,
  cache: CASE WHEN e.type IN $payloadTypes THEN e.cache END}`;

const CYPHER = {
  // Whether anything waits, as of a clock read first (whatever committed before it is seen). Then,
  // in a statement after it, where the numbering stands: a round that took the label off an event
  // has set its number and `through` by the time the label scan no longer sees it (Neo4j applies a
  // transaction's records before its index entries), so every event committed before `at` is
  // numbered at or below the `through` read after.
  waiting: `
    WITH datetime.realtime().epochMillis AS at
    RETURN at, EXISTS { MATCH (:Unsequenced) } AS waiting`,
  state: `
    OPTIONAL MATCH (s:EventSequencer {id: $id})
    OPTIONAL MATCH (log:EventLog {id: '${EVENT_LOG_ID}'})
    RETURN coalesce(s.through, 0) AS through, coalesce(log.epoch, 0) AS epoch, s.holder AS holder,
           coalesce(s.lease_until.epochMillis, 0) - datetime.realtime().epochMillis AS leaseLeftMs`,
  // The lease: one sequencer numbers (and sends) at a time, so replicas get one stream of messages
  // in order; another takes over when it lapses.
  claim: `
    MERGE (s:EventSequencer {id: $id}) ON CREATE SET s.through = 0
    SET s.claimed_at = datetime.realtime()
    WITH s WHERE s.holder IS NULL OR s.holder = $me OR s.lease_until < datetime.realtime()
    SET s.holder = $me, s.lease_until = datetime.realtime() + duration({milliseconds: $leaseMs})
    RETURN true AS mine`,
  // The SET takes the node's lock before anything is read, so sequencers take turns; the clock and
  // the label scan come after it. Oldest first: one customer's events are stamped in the order they
  // committed (graph/events.ts), and seq orders one transaction's.
  assign: `
    MERGE (s:EventSequencer {id: $id}) ON CREATE SET s.through = 0
    SET s.numbered_at = datetime.realtime()
    WITH s WHERE s.holder IS NULL OR s.holder = $me OR s.lease_until < datetime.realtime()
    SET s.holder = $me, s.lease_until = datetime.realtime() + duration({milliseconds: $leaseMs})
    WITH s, s.through AS base, datetime.realtime().epochMillis AS at
    CALL (s) {
      MATCH (e:Unsequenced)
      WITH e ORDER BY e.occurred_at, e.seq LIMIT $limit
      RETURN collect(e) AS candidates
    }
    // A transaction's events become visible one by one: an event whose transaction appended one of
    // the same customer before it (txn_prev) waits until that one is numbered or numbered with it,
    // and so does every later one of that customer, so each customer's events are numbered in order.
    WITH s, base, at, candidates,
         [c IN candidates WHERE c.customer_seq IS NOT NULL | c.customer_id + ':' + toString(c.customer_seq)] AS keys
    WITH s, base, at, candidates, [e IN candidates WHERE e.txn_prev = true AND e.customer_seq IS NOT NULL
           AND NOT (e.customer_id + ':' + toString(e.customer_seq - 1)) IN keys
           AND NOT EXISTS { MATCH (p:Event {customer_id: e.customer_id})
                            WHERE p.occurred_at IS NOT NULL AND p.customer_seq = e.customer_seq - 1
                              AND p.log_seq IS NOT NULL }] AS blocked
    WITH s, base, at, size(candidates) AS found, [e IN candidates WHERE none(b IN blocked
           WHERE b.customer_id = e.customer_id AND b.customer_seq <= e.customer_seq)] AS batch
    FOREACH (i IN range(0, size(batch) - 1) |
      FOREACH (e IN [batch[i]] | SET e.log_seq = base + i + 1 REMOVE e:Unsequenced))
    SET s.through = base + size(batch)
    WITH s, at, batch, found
    OPTIONAL MATCH (log:EventLog {id: '${EVENT_LOG_ID}'})
    UNWIND (CASE WHEN size(batch) = 0 THEN [null] ELSE batch END) AS e
    RETURN at, s.through AS through, coalesce(log.epoch, 0) AS epoch, found AS n, size(batch) AS numbered,
           CASE WHEN e IS NULL THEN null ELSE ${ROW} END AS row`,
  read: `
    MATCH (e:Event) WHERE e.log_seq >= $from AND e.log_seq <= $to
    WITH e ORDER BY e.log_seq LIMIT $limit
    RETURN ${ROW} AS row`,
  readWhole: `
    MATCH (e:Event) WHERE e.log_seq >= $from AND e.log_seq <= $to
    WITH e ORDER BY e.log_seq LIMIT $limit
    RETURN {logSeq: e.log_seq, at: toString(e.occurred_at), seq: e.seq, event: ${EVENT_PROJECTION}} AS row`,
  // The last number given to an event after a feed position (t, seq, id), less one: where a reader
  // that has everything up to the position goes on by number.
  numberAfter: `
    MATCH (e:Event) WHERE e.occurred_at >= datetime($t) AND e.log_seq IS NOT NULL
    WITH e WHERE e.occurred_at > datetime($t) OR e.seq > $s OR (e.seq = $s AND e.id > $id)
    RETURN min(e.log_seq) AS first`,
} as const;

const toNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function eventOf(row: Record<string, unknown>): SequencedEvent {
  const payload = row.payload as string | null;
  const cache = row.cache as string | null | undefined;
  const deviceId = row.deviceId as string | null;
  const deviceSeq = toNumber(row.deviceSeq);
  return {
    log_seq: Number(row.logSeq),
    type: row.type as string,
    customer_id: (row.customerId as string | null) ?? null,
    customer_seq: toNumber(row.customerSeq),
    ...(deviceId ? { device_id: deviceId } : {}),
    ...(deviceSeq !== null ? { device_seq: deviceSeq } : {}),
    payload: payload === null || payload === undefined ? null : (JSON.parse(payload) as Record<string, unknown>),
    ...(typeof cache === 'string' ? { cache: JSON.parse(cache) as Record<string, unknown> } : {}),
  };
}

/**
 * One round, for the lease's holder (or whoever finds it lapsed): numbers up to `limit` committed
 * events waiting for a number, oldest first, or, when none is waiting, says so without writing
 * (but to renew the lease when half of it is gone). `drainedAt` is set when the round left nothing
 * behind. While another holds the lease: `standby`, and nothing else is done.
 */
export async function sequenceEvents(g: Graph, limit: number, lease: SequencerLease): Promise<SequencedBatch> {
  const { state, holder, leaseLeftMs } = await leaderReadTx(g, readLeaseAndState);
  const standby = { events: [], ...state, standby: true };
  if (holder !== null && holder !== lease.me && leaseLeftMs > 0) return standby;
  const params = { id: SEQUENCER_ID, me: lease.me, leaseMs: neo4j.int(lease.ms) };
  if (state.drainedAt !== null) {
    if (holder === lease.me && leaseLeftMs > lease.ms / 2) return { events: [], ...state };
    const mine = await writeTx(g, async (tx) => (await tx.run(CYPHER.claim, params)).records.length > 0);
    return mine ? { events: [], ...state } : standby;
  }
  const records = await writeTx(
    g,
    async (tx) =>
      (await tx.run(CYPHER.assign, { ...params, limit: neo4j.int(limit), payloadTypes: PAYLOAD_TYPES })).records,
  );
  if (records.length === 0) return standby;
  const first = records[0];
  const through = Number(first?.get('through') ?? 0);
  // Drained only when the round took every event it found and found fewer than it may take.
  const n = Number(first?.get('n') ?? 0);
  const drained = n < limit && Number(first?.get('numbered') ?? 0) === n;
  const events = records
    .map((r) => r.get('row') as Record<string, unknown> | null)
    .filter((row): row is Record<string, unknown> => row !== null)
    .map(eventOf);
  return {
    events,
    epoch: Number(first?.get('epoch') ?? 0),
    through,
    drainedAt: drained ? Number(first?.get('at')) : null,
  };
}

/** Where the numbering stands, and who holds the lease, in a transaction of the caller's (see CYPHER.waiting). */
async function readLeaseAndState(
  tx: ManagedTransaction,
): Promise<{ state: SequencerState; holder: string | null; leaseLeftMs: number }> {
  const w = (await tx.run(CYPHER.waiting)).records[0];
  const st = (await tx.run(CYPHER.state, { id: SEQUENCER_ID })).records[0];
  return {
    state: {
      epoch: Number(st?.get('epoch') ?? 0),
      through: Number(st?.get('through') ?? 0),
      drainedAt: w?.get('waiting') === true ? null : Number(w?.get('at')),
    },
    holder: (st?.get('holder') as string | null) ?? null,
    leaseLeftMs: Number(st?.get('leaseLeftMs') ?? 0),
  };
}

async function readState(tx: ManagedTransaction): Promise<SequencerState> {
  return (await readLeaseAndState(tx)).state;
}

/** What a read of the numbered events found. */
export interface NumberedRead<T> {
  /** The events found, in order. */
  events: T[];
  /** The last number the read accounts for: every number from `from` to it was read or was pruned. */
  coveredThrough: number;
  state: SequencerState;
}

export type SequencedRead = NumberedRead<SequencedEvent>;

/**
 * The numbered events from `from` to `to`, in order, at most `limit`, read on the leader (which
 * has every number given). Where the numbering stands is read first, and the read accounts only
 * for numbers up to it: a round committing meanwhile may be half visible. When a number is missing
 * there it reads once more, starting only once everything committed by the end of the first read
 * is applied (Neo4j makes a transaction visible record by record; every round up to the first
 * read's `through` is whole by then), and still accounts only up to the first read's `through`. A
 * number missing then was pruned (graph/eventPrune.ts): it is covered, and the caller passes it.
 */
async function readNumbers<T extends { log_seq: number }>(
  g: Graph,
  cypher: string,
  map: (row: Record<string, unknown>) => T,
  range: { from: number; to: number; limit: number },
): Promise<NumberedRead<T>> {
  const { from, to, limit } = range;
  const once = async (after?: string[]) => {
    const session = g.driver.session(sessionOf(g, 'WRITE', after));
    try {
      // Bounded: a read that hangs must not hold the tail (and every message behind it) for ever.
      const res = await session.executeWrite(
        async (tx) => {
          const params = {
            from: neo4j.int(from),
            to: neo4j.int(to),
            limit: neo4j.int(limit),
            payloadTypes: PAYLOAD_TYPES,
          };
          const state = await readState(tx);
          const events = (await tx.run(cypher, params)).records.map((r) =>
            map(r.get('row') as Record<string, unknown>),
          );
          return { events, state };
        },
        { timeout: g.limits?.transactionMs ?? 10_000 },
      );
      return { ...res, bookmarks: session.lastBookmarks() };
    } finally {
      await session.close();
    }
  };
  // Up to the first read's `through`: what the second read sees past it may be a round half applied.
  const upTo = (events: T[], through: number) => {
    const mine = events.filter((e) => e.log_seq <= through);
    const covered = mine.length >= limit ? (mine.at(-1)?.log_seq ?? from - 1) : Math.min(to, through);
    return { events: mine.filter((e) => e.log_seq <= covered), coveredThrough: covered };
  };
  const first = await once();
  const firstCut = upTo(first.events, first.state.through);
  if (contiguous(firstCut.events, from, firstCut.coveredThrough)) return { ...firstCut, state: first.state };
  const again = await once(first.bookmarks);
  return { ...upTo(again.events, first.state.through), state: first.state };
}

/** The numbered events from `from` to `to` as a cache needs them (readNumbers). */
export function readSequenced(g: Graph, from: number, to: number, limit: number): Promise<SequencedRead> {
  return readNumbers(g, CYPHER.read, eventOf, { from, to, limit });
}

/** A numbered event whole, with its place in the feed's order (time, seq) as well as its number. */
export interface NumberedEvent {
  log_seq: number;
  /** occurred_at as Neo4j prints it (nanoseconds kept), and the event's seq: a feed cursor's parts. */
  at: string;
  seq: number;
  event: PersonaEvent;
}

/** Up to `limit` numbered events from `from` on, whole (readNumbers): what the Kafka publisher sends. */
export function readNumberedEvents(g: Graph, from: number, limit: number): Promise<NumberedRead<NumberedEvent>> {
  return readNumbers(
    g,
    CYPHER.readWhole,
    (row) => ({
      log_seq: Number(row.logSeq),
      at: row.at as string,
      seq: Number(row.seq),
      event: eventFromRow(row.event),
    }),
    { from, to: Number.MAX_SAFE_INTEGER, limit },
  );
}

/**
 * The number a reader that has every event up to a feed position (graph/feed.ts: time, seq, id)
 * has everything before: the first number given after the position, less one; with none, the last
 * number given. For a checkpoint made by position (a test's, an adopted relay's).
 */
export async function numberAtPosition(g: Graph, position: { t: string; s: number; id: string }): Promise<number> {
  return leaderReadTx(g, async (tx) => {
    // `through` first: a round numbering after it is found by the search, or is after it.
    const { through } = await readState(tx);
    const first = (await tx.run(CYPHER.numberAfter, position)).records[0]?.get('first') as unknown;
    return first !== null && first !== undefined ? Math.min(Number(first) - 1, through) : through;
  });
}

/** Whether `events` (in order) are exactly the numbers from..to. */
export function contiguous(events: readonly { log_seq: number }[], from: number, to: number): boolean {
  if (to < from) return events.length === 0;
  if (events.length !== to - from + 1) return false;
  return events.every((e, i) => e.log_seq === from + i);
}
