/**
 * The change-event feed and a customer's own history, read from the event log.
 *
 * Order: (occurred_at, seq, id) — a total order that, per customer, is the order the changes
 * were made in (an event is stamped under its entity's lock; seq orders one transaction's events).
 *
 * No skipped events: a transaction stamps its events before it commits, so an event can become
 * visible after a later-stamped one. The feed therefore only serves events stamped at least
 * `lagMs` ago (by Neo4j's own clock), and every write transaction is bounded by
 * WRITE_TX_TIMEOUT_MS < lag: anything stamped before the horizon has committed or rolled back,
 * so a cursor never passes an event that could still appear behind it.
 */
import neo4j from 'neo4j-driver';
import { toPlain } from './convert';
import { InvalidInputError, NotFoundError } from './errors';
import { EVENT_LOG_ID, EVENT_PROJECTION, eventFromRow, type PersonaEvent } from './events';
import { leaderReadTx, readTx, type Graph } from './graph';

/** Where a reader is: the last event it was given, as an opaque string. */
export interface Position {
  /** occurred_at exactly as Neo4j prints it (nanoseconds kept). */
  t: string;
  s: number;
  id: string;
  /**
   * A reader by number (the Kafka publisher, graph/sequencer.ts): it has every event numbered up to
   * this. Absent on the feed's own cursors.
   */
  n?: number;
}

const EVENT = `${EVENT_PROJECTION} AS event,
  toString(e.occurred_at) AS at, e.seq AS seq`;

/**
 * A customer's history, newest first: its own events but the transient ones (graph/eventSchemas.ts
 * `isTransient`: in the feed, not in the history) and the device-level events (a shared
 * device's trust change) of every device it logged in from, stamped from its first login on that
 * device. Each branch is an index seek cut at $limit, then the two are merged; `page` narrows
 * both to the events before a cursor. One row even when there are no events (404 is for an
 * unknown customer only). With `$follow`, the id of a merged customer (a merge's tombstone,
 * graph/identityMerge.ts) reads its survivor's history instead, in the same read.
 */
function history(page: string): string {
  return `
    MATCH (asked:Customer {id: $customerId})
    OPTIONAL MATCH (survivor:Customer {id: asked.merged_into}) WHERE $follow AND asked.status = 'merged'
    WITH coalesce(survivor, asked) AS c, survivor IS NOT NULL AS followed
    CALL (c) {
      CALL (c) {
        MATCH (e:Event {customer_id: c.id}) WHERE e.occurred_at IS NOT NULL AND e.transient IS NULL ${page}
          AND NOT e.type IN $hidden
        RETURN e ORDER BY e.occurred_at DESC, e.seq DESC, e.id DESC LIMIT $limit
        UNION
        MATCH (c)-[r:LOGGED_IN_FROM]->(d:Device)
        MATCH (e:Event {device_id: d.id})
        WHERE e.occurred_at >= coalesce(r.first_login, datetime({epochMillis: 0})) ${page} AND NOT e.type IN $hidden
        RETURN e ORDER BY e.occurred_at DESC, e.seq DESC, e.id DESC LIMIT $limit
      }
      WITH e ORDER BY e.occurred_at DESC, e.seq DESC, e.id DESC LIMIT $limit
      RETURN collect({event: e {.id, .type, .customer_id, .device_id, .device_seq, .occurred_at, .customer_seq,
                                .epoch, .payload},
                      at: toString(e.occurred_at), seq: e.seq}) AS rows
    }
    RETURN c.id AS customer, CASE WHEN followed THEN c.id END AS mergedInto, rows`;
}

/**
 * Cypher: whether event `e` is in customer `c`'s history — the customer's own, or a device-level
 * event of a device the customer logged in from, stamped since its first login there (the rule
 * `history` reads by index seeks). For a check of one event already found by its id.
 */
export function inHistory(c: string, e: string): string {
  return (
    `(${e}.customer_id = ${c}.id OR EXISTS { MATCH (${c})-[hr:LOGGED_IN_FROM]->(hd:Device) ` +
    `WHERE hd.id = ${e}.device_id AND ${e}.occurred_at >= coalesce(hr.first_login, datetime({epochMillis: 0})) })`
  );
}

const CYPHER = {
  historyEntry: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (e:Event {id: $eventId})
    WHERE e.occurred_at IS NOT NULL AND e.transient IS NULL AND NOT e.type IN $hidden AND ${inHistory('c', 'e')}
    RETURN CASE WHEN e IS NULL THEN null ELSE ${EVENT_PROJECTION} END AS event`,
  prunedAfter: `
    MATCH (log:EventLog {id: '${EVENT_LOG_ID}'}) WHERE log.pruned_before > datetime($t)
    RETURN toString(log.pruned_before) AS prunedBefore`,
  // From the start of what the graph holds whole: before the last prune's horizon only events of
  // a customer's history are left (graph/eventPrune.ts), so a new reader starts there.
  feedFirst: `
    OPTIONAL MATCH (log:EventLog {id: '${EVENT_LOG_ID}'})
    WITH datetime.realtime() - duration({milliseconds: $lagMs}) AS horizon,
         coalesce(log.pruned_before, datetime({epochMillis: 0})) AS whole
    MATCH (e:Event) WHERE e.occurred_at >= whole AND e.occurred_at <= horizon
    RETURN ${EVENT}
    ORDER BY e.occurred_at, e.seq, e.id LIMIT $limit`,
  feedAfter: `
    WITH datetime.realtime() - duration({milliseconds: $lagMs}) AS horizon
    MATCH (e:Event) WHERE e.occurred_at >= datetime($t) AND e.occurred_at <= horizon
    WITH e WHERE e.occurred_at > datetime($t) OR e.seq > $s OR (e.seq = $s AND e.id > $id)
    RETURN ${EVENT}
    ORDER BY e.occurred_at, e.seq, e.id LIMIT $limit`,
  // How far a reader at the cursor is behind: the oldest event after it, and how many (counted up
  // to a cap, so a scrape stays cheap on a backlog of millions). Every event counts, lag or not.
  backlogFirst: `
    CALL () { MATCH (e:Event) WHERE e.occurred_at IS NOT NULL RETURN e LIMIT $cap }
    WITH count(e) AS events
    OPTIONAL CALL () { MATCH (e:Event) WHERE e.occurred_at IS NOT NULL
                       RETURN e.occurred_at AS oldest ORDER BY e.occurred_at LIMIT 1 }
    RETURN events, toString(oldest) AS oldest`,
  backlogAfter: `
    CALL () {
      MATCH (e:Event) WHERE e.occurred_at >= datetime($t)
      WITH e WHERE e.occurred_at > datetime($t) OR e.seq > $s OR (e.seq = $s AND e.id > $id)
      RETURN e LIMIT $cap
    }
    WITH count(e) AS events
    OPTIONAL CALL () {
      MATCH (e:Event) WHERE e.occurred_at >= datetime($t)
      WITH e WHERE e.occurred_at > datetime($t) OR e.seq > $s OR (e.seq = $s AND e.id > $id)
      RETURN e.occurred_at AS oldest ORDER BY e.occurred_at LIMIT 1
    }
    RETURN events, toString(oldest) AS oldest`,
  historyFirst: history(''),
  historyBefore: history(
    'AND e.occurred_at <= datetime($t) AND (e.occurred_at < datetime($t) OR e.seq < $s OR (e.seq = $s AND e.id < $id))',
  ),
} as const;

export function encodeCursor(p: Position): string {
  return Buffer.from(JSON.stringify(p)).toString('base64url');
}

/** `2024-01-31T09:05Z`, `…:07.123456789+01:00`: a real day and time of day, as Neo4j writes them. */
function isInstant(t: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/.exec(t);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = m.slice(1).map((v) => Number(v ?? 0));
  const date = new Date(Date.UTC(year ?? 0, (month ?? 0) - 1, day));
  return (
    date.getUTCMonth() === (month ?? 0) - 1 &&
    date.getUTCDate() === day &&
    (hour ?? 24) < 24 &&
    (minute ?? 60) < 60 &&
    (second ?? 60) < 60 &&
    (offsetHour ?? 24) < 24 &&
    (offsetMinute ?? 60) < 60
  );
}

export function decodeCursor(cursor: string, field: string): Position {
  try {
    const p = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Position;
    // Only what this api gives out: an RFC 3339 instant Neo4j can read, a whole sequence number
    // and an id, so a forged cursor is refused here (400) instead of by Cypher (500).
    if (
      typeof p.t === 'string' &&
      isInstant(p.t) &&
      Number.isSafeInteger(p.s) &&
      typeof p.id === 'string' &&
      p.id.length <= 64 &&
      (p.n === undefined || (Number.isSafeInteger(p.n) && p.n >= 0))
    )
      return { t: p.t, s: p.s, id: p.id, ...(p.n === undefined ? {} : { n: p.n }) };
  } catch {
    // fall through
  }
  throw new InvalidInputError(field, 'is not a cursor this api gave out');
}

/** An Event node's map as the event it records (see eventFromRow). */
export function toEvent(value: unknown): PersonaEvent {
  return eventFromRow(value);
}

export interface FeedPage {
  data: PersonaEvent[];
  /** Resume from here (it is `after` again when there was nothing new). */
  next_cursor: string | null;
}

/** An event of the feed with the cursor that resumes right after it. */
export interface FeedEntry {
  event: PersonaEvent;
  cursor: string;
}

/**
 * Up to `limit` events after the cursor, oldest first, none stamped within the last `lagMs`,
 * each with its own cursor (the relay checkpoints after any event, not only after a page).
 */
export async function readFeedEntries(
  g: Graph,
  options: { after?: string | undefined; limit: number; lagMs: number },
): Promise<FeedEntry[]> {
  const after = options.after ? decodeCursor(options.after, 'after') : null;
  // From the leader in a cluster (leaderReadTx): a lagging follower could skip an event for good.
  const rows = await leaderReadTx(
    g,
    async (tx) =>
      (
        await tx.run(after ? CYPHER.feedAfter : CYPHER.feedFirst, {
          lagMs: neo4j.int(options.lagMs),
          limit: neo4j.int(options.limit),
          ...(after ?? {}),
        })
      ).records,
  );
  return rows.map((r) => {
    const event = toEvent(r.get('event'));
    return {
      event,
      cursor: encodeCursor({ t: r.get('at') as string, s: toPlain(r.get('seq')) as number, id: event.id }),
    };
  });
}

/**
 * Up to `limit` events after the cursor, oldest first, none stamped within the last `lagMs`. A
 * cursor from before what the graph still holds whole (events pruned since: graph/eventPrune.ts)
 * is refused, naming `after`, rather than answered with a page that silently skips them.
 */
export async function readFeed(
  g: Graph,
  options: { after?: string | undefined; limit: number; lagMs: number },
): Promise<FeedPage> {
  if (options.after) {
    const { t } = decodeCursor(options.after, 'after');
    const pruned = await readTx(
      g,
      async (tx) => (await tx.run(CYPHER.prunedAfter, { t })).records[0]?.get('prunedBefore') as string | undefined,
    );
    if (pruned)
      throw new InvalidInputError(
        'after',
        `is from before ${pruned}, and events from before then have been pruned from the graph: read them from ` +
          'the Kafka events topic (the log of record), then ask again without `after`',
      );
  }
  const entries = await readFeedEntries(g, options);
  return { data: entries.map((e) => e.event), next_cursor: entries.at(-1)?.cursor ?? options.after ?? null };
}

/**
 * A customer's events, newest first, `limit` per page; `before` continues from a page's cursor.
 * With `follow`, a merged customer's id reads its survivor's history, and says so (`merged_into`).
 */
export async function readCustomerHistory(
  g: Graph,
  customerId: string,
  options: {
    before?: string | undefined;
    limit: number;
    follow?: boolean;
    /** Event types this reader does not see (left out of the page, which stays full). */
    hidden?: readonly string[];
  },
): Promise<{ data: PersonaEvent[]; next_cursor: string | null; merged_into?: string }> {
  const before = options.before ? decodeCursor(options.before, 'before') : null;
  const record = await readTx(
    g,
    async (tx) =>
      (
        await tx.run(before ? CYPHER.historyBefore : CYPHER.historyFirst, {
          customerId,
          limit: neo4j.int(options.limit),
          follow: options.follow === true,
          hidden: options.hidden ?? [],
          ...(before ?? {}),
        })
      ).records[0],
  );
  if (!record) throw new NotFoundError('Customer', customerId);
  const rows = record.get('rows') as { event: unknown; at: string; seq: number }[];
  const data = rows.map((r) => toEvent(r.event));
  const last = rows.at(-1);
  const mergedInto = record.get('mergedInto') as string | null;
  return {
    data,
    ...(mergedInto === null ? {} : { merged_into: mergedInto }),
    next_cursor:
      last && rows.length === options.limit
        ? encodeCursor({ t: last.at, s: toPlain(last.seq) as number, id: (data.at(-1) as PersonaEvent).id })
        : null,
  };
}

/**
 * One entry of the customer's history (as `readCustomerHistory` would list it), or null when the
 * event is not in it (another customer's, or none). NotFoundError for an unknown customer.
 */
export async function readHistoryEntry(
  g: Graph,
  customerId: string,
  eventId: string,
  /** Event types this reader does not see: such an entry reads as not in the history. */
  hidden: readonly string[] = [],
): Promise<PersonaEvent | null> {
  const record = await readTx(
    g,
    async (tx) => (await tx.run(CYPHER.historyEntry, { customerId, eventId, hidden })).records[0],
  );
  if (!record) throw new NotFoundError('Customer', customerId);
  const event = record.get('event') as unknown;
  return event === null ? null : toEvent(event);
}

/** How far a reader at `after` is behind the log: events after it (at most `cap`) and the oldest one's time. */
export interface FeedBacklog {
  events: number;
  /** The oldest event after the cursor (RFC 3339), or null when the reader is at the end. */
  oldest_at: string | null;
}

export async function feedBacklog(g: Graph, options: { after: string | null; cap: number }): Promise<FeedBacklog> {
  const after = options.after ? decodeCursor(options.after, 'after') : null;
  return readTx(g, async (tx) => {
    const row = (
      await tx.run(after ? CYPHER.backlogAfter : CYPHER.backlogFirst, { cap: neo4j.int(options.cap), ...(after ?? {}) })
    ).records[0];
    return {
      events: (toPlain(row?.get('events')) as number | undefined) ?? 0,
      oldest_at: (row?.get('oldest') as string | null | undefined) ?? null,
    };
  });
}
