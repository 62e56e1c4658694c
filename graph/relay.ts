/**
 * The event relay's checkpoint, kept in the graph beside the events it delivers: a
 * `RelayCheckpoint` node (one per relay, by id) holds the cursor, what was delivered, and what
 * the relay is blocked on; each parked event is a `PARKED` relationship from the checkpoint to
 * the `Event`, with the subscriber's error. So a relay that is terminated and started again
 * resumes where the graph says, its workflow state stays small whatever the backlog, and ops read
 * the relay's state even while Temporal is down. (An erased customer's events stay, stripped of
 * their payload; so do the relationships to them.)
 */
import neo4j from 'neo4j-driver';
import { toPlain, type Plain } from './convert';
import { toEvent } from './feed';
import { EVENT_PROJECTION, type PersonaEvent } from './events';
import { readTx, writeTx, type Graph } from './graph';

export interface RelayBlock {
  /** The event the subscriber has not taken yet; nothing after it is sent until it is. */
  event_id: string;
  /** The subscriber's last answer (a 5xx, 408, 429, or no answer). */
  error: string;
  /** When the relay first failed on this event. */
  since: string;
  attempts: number;
}

export interface RelayCheckpoint {
  id: string;
  /** Where the relay resumes in the feed (null: from its beginning). */
  cursor: string | null;
  delivered: number;
  parked: number;
  blocked: RelayBlock | null;
  last_delivery_at: string | null;
  updated_at: string | null;
  /**
   * Events after the cursor already delivered (or parked) by a page that delivered customers
   * side by side and stopped short of its end: the next page skips them, so a block on one
   * customer does not make the others' events go out twice.
   */
  ahead: string[];
}

export interface ParkedEvent {
  event: PersonaEvent;
  error: string;
  attempts: number;
  parked_at: string;
}

export interface RelayProgress {
  cursor: string | null;
  delivered: number;
  /** Events the subscriber refused for good, in feed order. */
  parked: { event_id: string; error: string }[];
  /** Set when the relay stopped at an event the subscriber failed for now; null clears it. */
  blocked: { event_id: string; error: string } | null;
  /** Events after the cursor already delivered or parked (replaces the checkpoint's list). */
  ahead?: string[];
}

/** The relay's checkpoint node, made on first use. */
const CHECKPOINT = `MERGE (r:RelayCheckpoint {id: $id})
      ON CREATE SET r.delivered = 0, r.created_at = datetime.realtime()`;

const CYPHER = {
  read: `
    OPTIONAL MATCH (r:RelayCheckpoint {id: $id})
    RETURN r {.cursor, .delivered, .ahead, .blocked_event_id, .blocked_error, .blocked_attempts,
              blocked_since: toString(r.blocked_since), last_delivery_at: toString(r.last_delivery_at),
              updated_at: toString(r.updated_at)} AS r,
           CASE WHEN r IS NULL THEN 0 ELSE COUNT { (r)-[:PARKED]->(:Event) } END AS parked`,
  // The block's start and attempts are worked out before the blocked event id is replaced.
  progress: `
    ${CHECKPOINT}
    WITH r, r.blocked_event_id AS wasBlockedOn
    SET r.cursor = $cursor,
        r.ahead = $ahead,
        r.delivered = r.delivered + $delivered,
        r.last_delivery_at = CASE WHEN $delivered > 0 THEN datetime.realtime() ELSE r.last_delivery_at END,
        r.blocked_since = CASE WHEN $blockedId IS NULL THEN null
                               WHEN wasBlockedOn = $blockedId THEN r.blocked_since
                               ELSE datetime.realtime() END,
        r.blocked_attempts = CASE WHEN $blockedId IS NULL THEN null
                                  WHEN wasBlockedOn = $blockedId THEN r.blocked_attempts + 1
                                  ELSE 1 END,
        r.blocked_event_id = $blockedId,
        r.blocked_error = $blockedError,
        r.updated_at = datetime.realtime()
    WITH r
    CALL (r) {
      UNWIND $parked AS p
      MATCH (e:Event {id: p.event_id})
      MERGE (r)-[k:PARKED]->(e)
        ON CREATE SET k.parked_at = datetime.realtime(), k.attempts = 0
      SET k.error = p.error, k.attempts = k.attempts + 1
    }
    RETURN r.id AS id`,
  parked: `
    MATCH (:RelayCheckpoint {id: $id})-[k:PARKED]->(e:Event)
    WHERE $eventId IS NULL OR e.id = $eventId
    RETURN ${EVENT_PROJECTION} AS event,
           k.error AS error,
           k.attempts AS attempts, toString(k.parked_at) AS parked_at
    ORDER BY e.occurred_at, e.seq, e.id
    LIMIT $limit`,
  settle: `
    ${CHECKPOINT}
    WITH r
    CALL (r) {
      UNWIND $delivered AS eventId
      MATCH (r)-[k:PARKED]->(:Event {id: eventId})
      DELETE k
    }
    CALL (r) {
      UNWIND $failed AS f
      MATCH (r)-[k:PARKED]->(:Event {id: f.event_id})
      SET k.error = f.error, k.attempts = k.attempts + 1
    }
    SET r.delivered = r.delivered + size($delivered),
        r.last_delivery_at = CASE WHEN size($delivered) > 0 THEN datetime.realtime() ELSE r.last_delivery_at END,
        r.updated_at = datetime.realtime()
    RETURN r.id AS id`,
  // A relay that ran before the checkpoint lived in the graph hands over its cursor and parked
  // events once; a checkpoint that already has a cursor keeps it.
  adopt: `
    ${CHECKPOINT}
    SET r.cursor = coalesce(r.cursor, $cursor), r.delivered = r.delivered + $delivered,
        r.updated_at = datetime.realtime()
    WITH r
    CALL (r) {
      UNWIND $parked AS p
      MATCH (e:Event {id: p.event_id})
      MERGE (r)-[k:PARKED]->(e)
        ON CREATE SET k.parked_at = datetime(p.parked_at), k.attempts = p.attempts, k.error = p.error
    }
    RETURN r.id AS id`,
} as const;

/** The relay's checkpoint; an empty one (from the feed's beginning) when it has none yet. */
export async function readRelayCheckpoint(g: Graph, id: string): Promise<RelayCheckpoint> {
  const rec = await readTx(g, async (tx) => (await tx.run(CYPHER.read, { id })).records[0]);
  const r = toPlain(rec?.get('r')) as Record<string, Plain> | null;
  const parked = toPlain(rec?.get('parked') ?? 0) as number;
  if (!r)
    return {
      id,
      cursor: null,
      delivered: 0,
      parked,
      blocked: null,
      last_delivery_at: null,
      updated_at: null,
      ahead: [],
    };
  return {
    id,
    cursor: (r.cursor as string | null) ?? null,
    delivered: (r.delivered as number | null) ?? 0,
    parked,
    blocked: r.blocked_event_id
      ? {
          event_id: r.blocked_event_id as string,
          error: (r.blocked_error as string | null) ?? '',
          since: iso(r.blocked_since) ?? '',
          attempts: (r.blocked_attempts as number | null) ?? 1,
        }
      : null,
    last_delivery_at: iso(r.last_delivery_at),
    updated_at: iso(r.updated_at),
    ahead: (r.ahead as string[] | null) ?? [],
  };
}

/**
 * Makes the checkpoint if there is none (at the start of the feed): a consumer holds the event
 * prune back from its first start, before it has delivered anything (graph/eventPrune.ts).
 */
export async function ensureRelayCheckpoint(g: Graph, id: string): Promise<void> {
  await writeTx(g, (tx) => tx.run(`${CHECKPOINT} RETURN r.id AS id`, { id }));
}

/** Moves the checkpoint: one transaction for a stretch of the feed (delivered, parked, blocked). */
export async function recordRelayProgress(g: Graph, id: string, p: RelayProgress): Promise<void> {
  await writeTx(g, (tx) =>
    tx.run(CYPHER.progress, {
      id,
      cursor: p.cursor,
      ahead: p.ahead ?? [],
      delivered: neo4j.int(p.delivered),
      parked: p.parked,
      blockedId: p.blocked?.event_id ?? null,
      blockedError: p.blocked?.error ?? null,
    }),
  );
}

/** Parked events, oldest first (all, or the one named). */
export async function listParkedEvents(
  g: Graph,
  id: string,
  options: { eventId?: string | undefined; limit: number },
): Promise<ParkedEvent[]> {
  const rows = await readTx(
    g,
    async (tx) =>
      (await tx.run(CYPHER.parked, { id, eventId: options.eventId ?? null, limit: neo4j.int(options.limit) })).records,
  );
  return rows.map((r) => ({
    event: toEvent(r.get('event')),
    error: r.get('error') as string,
    attempts: toPlain(r.get('attempts')) as number,
    parked_at: iso(r.get('parked_at')) ?? '',
  }));
}

/** After parked events were tried again: the delivered ones leave the list, the others keep their new error. */
export async function settleParkedEvents(
  g: Graph,
  id: string,
  outcome: { delivered: string[]; failed: { event_id: string; error: string }[] },
): Promise<void> {
  await writeTx(g, (tx) => tx.run(CYPHER.settle, { id, delivered: outcome.delivered, failed: outcome.failed }));
}

/** Takes over the state a relay kept in its workflow before its checkpoint moved to the graph. */
export async function adoptRelayState(
  g: Graph,
  id: string,
  state: {
    cursor: string | null;
    delivered: number;
    parked: { event_id: string; error: string; attempts: number; parked_at: string }[];
  },
): Promise<void> {
  await writeTx(g, (tx) =>
    tx.run(CYPHER.adopt, {
      id,
      cursor: state.cursor,
      delivered: neo4j.int(state.delivered),
      parked: state.parked,
    }),
  );
}

/** Neo4j prints a DateTime with nanoseconds and a zone name; callers get RFC 3339 in UTC. */
function iso(value: unknown): string | null {
  if (typeof value !== 'string' || !value) return null;
  const t = Date.parse(value.replace(/\[.*\]$/, ''));
  return Number.isNaN(t) ? value : new Date(t).toISOString();
}
