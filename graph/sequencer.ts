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
 * Sequencers (every worker runs one, workers/eventSequencer.ts) take turns on the sequencer node's
 * lock, so two never number at once. An idle round is a read: nothing waiting means nothing is
 * written. The numbers are the log's own within its epoch: a restore brings back the sequencer node
 * with the backup and starts a new epoch (backup/restore.ts), and a reader that sees the epoch
 * change starts over.
 */
import neo4j from 'neo4j-driver';
import { EVENT_LOG_ID, EVENT_PROJECTION, eventFromRow, type PersonaEvent } from './events';
import { leaderReadTx, writeTx, type Graph } from './graph';

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
}

/** What a sequencer sends after each round (workers/eventSequencer.ts) on the invalidation topic. */
export interface InvalidationMessage {
  /** The log's epoch (a restore starts a new one, numbered again from the backup's). */
  epoch: number;
  /** The last number given when the round ended. */
  through: number;
  /** Neo4j's clock (ms) when nothing committed was waiting for a number; null if something was. */
  drained_at: number | null;
  /** Numbered events, in order (a round's, or several rounds' while a send was under way). */
  events: SequencedEvent[];
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
}

const ROW = `{logSeq: e.log_seq, type: e.type, customerId: e.customer_id, customerSeq: e.customer_seq,
  deviceId: e.device_id, deviceSeq: e.device_seq, payload: CASE WHEN e.type IN $payloadTypes THEN e.payload END}`;

const CYPHER = {
  // Nothing waiting: the clock is read first, so whatever committed before it was seen.
  idle: `
    WITH datetime.realtime().epochMillis AS at
    OPTIONAL MATCH (s:EventSequencer {id: $id})
    OPTIONAL MATCH (log:EventLog {id: '${EVENT_LOG_ID}'})
    RETURN at, coalesce(s.through, 0) AS through, coalesce(log.epoch, 0) AS epoch,
           EXISTS { MATCH (:Unsequenced) } AS waiting`,
  // The SET takes the node's lock before anything is read, so sequencers take turns; the clock and
  // the label scan come after it. Oldest first: one customer's events are stamped in the order they
  // committed (graph/events.ts), and seq orders one transaction's.
  assign: `
    MERGE (s:EventSequencer {id: $id}) ON CREATE SET s.through = 0
    SET s.numbered_at = datetime.realtime()
    WITH s, s.through AS base, datetime.realtime().epochMillis AS at
    CALL (s) {
      MATCH (e:Unsequenced)
      WITH e ORDER BY e.occurred_at, e.seq LIMIT $limit
      RETURN collect(e) AS batch
    }
    FOREACH (i IN range(0, size(batch) - 1) |
      FOREACH (e IN [batch[i]] | SET e.log_seq = base + i + 1 REMOVE e:Unsequenced))
    SET s.through = base + size(batch)
    WITH s, at, batch
    OPTIONAL MATCH (log:EventLog {id: '${EVENT_LOG_ID}'})
    UNWIND (CASE WHEN size(batch) = 0 THEN [null] ELSE batch END) AS e
    RETURN at, s.through AS through, coalesce(log.epoch, 0) AS epoch, size(batch) AS n,
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
  };
}

/**
 * One round: numbers up to `limit` committed events waiting for a number, oldest first, or, when
 * none is waiting, says so without writing. `drainedAt` is set when the round left nothing behind.
 */
export async function sequenceEvents(g: Graph, limit: number): Promise<SequencedBatch> {
  const idle = await leaderReadTx(g, async (tx) => (await tx.run(CYPHER.idle, { id: SEQUENCER_ID })).records[0]);
  if (idle && idle.get('waiting') !== true)
    return {
      events: [],
      epoch: Number(idle.get('epoch')),
      through: Number(idle.get('through')),
      drainedAt: Number(idle.get('at')),
    };
  const records = await writeTx(
    g,
    async (tx) =>
      (await tx.run(CYPHER.assign, { id: SEQUENCER_ID, limit: neo4j.int(limit), payloadTypes: PAYLOAD_TYPES })).records,
  );
  const first = records[0];
  const through = Number(first?.get('through') ?? 0);
  const n = Number(first?.get('n') ?? 0);
  const events = records
    .map((r) => r.get('row') as Record<string, unknown> | null)
    .filter((row): row is Record<string, unknown> => row !== null)
    .map(eventOf);
  return {
    events,
    epoch: Number(first?.get('epoch') ?? 0),
    through,
    drainedAt: n < limit ? Number(first?.get('at')) : null,
  };
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
 * has every number given). When a number is missing among them it reads once more, starting only
 * once everything committed by the end of the first read is applied (Neo4j makes a transaction
 * visible record by record; the sequencer's is whole by then). A number still missing then was
 * pruned (graph/eventPrune.ts): it is covered, and the caller passes it.
 */
async function readNumbers<T extends { log_seq: number }>(
  g: Graph,
  cypher: string,
  map: (row: Record<string, unknown>) => T,
  range: { from: number; to: number; limit: number },
): Promise<NumberedRead<T>> {
  const { from, to, limit } = range;
  const once = async (after?: string[]) => {
    const session = g.driver.session({
      database: g.database,
      defaultAccessMode: neo4j.session.WRITE,
      ...(after ? { bookmarks: after } : {}),
    });
    try {
      const res = await session.executeWrite(async (tx) => {
        const params = {
          from: neo4j.int(from),
          to: neo4j.int(to),
          limit: neo4j.int(limit),
          payloadTypes: PAYLOAD_TYPES,
        };
        const events = (await tx.run(cypher, params)).records.map((r) => map(r.get('row') as Record<string, unknown>));
        const idle = (await tx.run(CYPHER.idle, { id: SEQUENCER_ID })).records[0];
        const state: SequencerState = {
          epoch: Number(idle?.get('epoch') ?? 0),
          through: Number(idle?.get('through') ?? 0),
          drainedAt: idle?.get('waiting') === true ? null : Number(idle?.get('at')),
        };
        return { events, state };
      });
      return { ...res, bookmarks: session.lastBookmarks() };
    } finally {
      await session.close();
    }
  };
  const covered = (r: { events: T[]; state: SequencerState }) =>
    r.events.length >= limit ? (r.events.at(-1)?.log_seq ?? from - 1) : Math.min(to, r.state.through);
  const first = await once();
  if (contiguous(first.events, from, covered(first))) return { ...first, coveredThrough: covered(first) };
  const again = await once(first.bookmarks);
  return { events: again.events, state: again.state, coveredThrough: covered(again) };
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
    const first = (await tx.run(CYPHER.numberAfter, position)).records[0]?.get('first') as unknown;
    if (first !== null && first !== undefined) return Number(first) - 1;
    const idle = (await tx.run(CYPHER.idle, { id: SEQUENCER_ID })).records[0];
    return Number(idle?.get('through') ?? 0);
  });
}

/** Whether `events` (in order) are exactly the numbers from..to. */
export function contiguous(events: readonly { log_seq: number }[], from: number, to: number): boolean {
  if (to < from) return events.length === 0;
  if (events.length !== to - from + 1) return false;
  return events.every((e, i) => e.log_seq === from + i);
}
