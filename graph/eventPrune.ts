/**
 * The bounded graph: events are written with the change they describe (the outbox, graph/events.ts)
 * and pruned from the graph once every consumer has them. Kafka's events topic is the log of
 * record; the graph keeps state, the facts read back from what happened (graph/facts.ts), and
 * of the events themselves only
 *   - the transient ones (graph/eventSchemas.ts `isTransient`: in the feed, not in a customer's
 *     history) until every consumer's checkpoint has passed them by the safety window, and
 *   - the rest (a customer's history and export) for the history retention too,
 * whichever ends later. A consumer is a `RelayCheckpoint` (the webhook relay, each Kafka
 * publisher): its position is its cursor's time (none yet: the start of the feed, everything held
 * back). A consumer that has left an event waiting longer than the cap (with no position: since its
 * start) holds nothing back any more — a dead consumer must not grow the graph without end — and
 * is reported (`behind_cap`)
 * for ops to alert on; a Kafka publisher still holds back (it fills the log of record, which must
 * not lose what it never had) and is paged on. A parked event (the subscriber refused it for good,
 * graph/relay.ts) stays until ops retry it.
 */
import neo4j from 'neo4j-driver';
import { toPlain } from './convert';
import { EVENT_LOG_ID } from './events';
import { readTx, writeTx, type Graph } from './graph';

export interface EventConsumer {
  /** The checkpoint's id: `persona-event-relay`, `kafka:<topic>`. */
  id: string;
  /**
   * RFC 3339: the consumer has every event stamped before it; null at the start of the feed (it
   * has delivered nothing yet: it holds everything back).
   */
  position: string | null;
  /**
   * Past the cap: the oldest event it has not had (with no position: its start) is older than the
   * cap. A consumer caught up is never past it, however long the feed was quiet. Ops are told.
   */
  behind_cap: boolean;
  /**
   * Whether it holds pruning back: every consumer within the cap, and a Kafka publisher always —
   * it fills the log of record, which must not lose what it never had (a page instead).
   */
  holds_back: boolean;
}

export interface PruneHorizon {
  /** RFC 3339: transient events stamped before it are pruned. */
  horizon: string;
  /**
   * The last event number (graph/sequencer.ts) every Kafka publisher has published, or null with
   * none reading by number: an event numbered after it stays, however old its stamp (a transaction
   * that committed long after it stamped its events), and so does one not numbered yet.
   */
  numbered_through: number | null;
  /** RFC 3339: every event stamped before it is pruned (the earlier of the horizon and the history retention). */
  history_cutoff: string;
  consumers: EventConsumer[];
}

export interface PruneSettings {
  /** How long after every consumer has an event it stays in the graph (PERSONA_EVENTS_PRUNE_SAFETY_MINUTES). */
  safetyMs: number;
  /** A consumer further behind than this no longer holds pruning back (PERSONA_EVENTS_PRUNE_CAP_HOURS). */
  capMs: number;
  /** How long a customer's history is kept (PERSONA_EVENTS_HISTORY_DAYS). */
  historyMs: number;
}

/** One batch of each prune, oldest first off its index (a test checks the plans). */
export const PRUNE_BATCHES = {
  // Off the (transient, occurred_at) index: only transient events carry the property. The hint
  // holds the plan whatever the statistics (a nearly empty log would make the planner scan by time).
  transient: `
    MATCH (e:Event) USING INDEX e:Event(transient, occurred_at)
    WHERE e.transient = true AND e.occurred_at < datetime($horizon)
      AND NOT e:Unsequenced AND NOT EXISTS { (e)<-[:PARKED]-(:RelayCheckpoint) }
      AND ($numberedThrough IS NULL OR e.log_seq IS NULL OR e.log_seq <= $numberedThrough)
    WITH e ORDER BY e.occurred_at LIMIT $batch
    DETACH DELETE e
    RETURN count(e) AS deleted`,
  // Off the (occurred_at) index.
  history: `
    MATCH (e:Event) USING INDEX e:Event(occurred_at)
    WHERE e.occurred_at < datetime($cutoff)
      AND NOT e:Unsequenced AND NOT EXISTS { (e)<-[:PARKED]-(:RelayCheckpoint) }
      AND ($numberedThrough IS NULL OR e.log_seq IS NULL OR e.log_seq <= $numberedThrough)
    WITH e ORDER BY e.occurred_at LIMIT $batch
    DETACH DELETE e
    RETURN count(e) AS deleted`,
} as const;

const CYPHER = {
  consumers: `
    MATCH (r:RelayCheckpoint)
    RETURN r.id AS id, r.cursor AS cursor, toString(r.created_at) AS createdAt,
           toString(datetime.realtime()) AS now
    ORDER BY id`,
  now: 'RETURN toString(datetime.realtime()) AS now',
  // The oldest event a consumer at `t` has not had: one seek of the (occurred_at) index.
  oldestAfter: `
    MATCH (e:Event) WHERE e.occurred_at > datetime($t)
    RETURN toString(e.occurred_at) AS t ORDER BY e.occurred_at LIMIT 1`,
  // What the feed says to a reader behind it (graph/feed.ts): never moved back.
  record: `
    MERGE (log:EventLog {id: '${EVENT_LOG_ID}'})
    SET log.pruned_before = CASE WHEN log.pruned_before IS NULL OR log.pruned_before < datetime($horizon)
                                 THEN datetime($horizon) ELSE log.pruned_before END`,
} as const;

/** A feed cursor's time and number (graph/feed.ts encodes {t, s, id, n?} as base64url JSON); nulls if unreadable. */
function cursorPlace(cursor: unknown): { t: string | null; n: number | null } {
  if (typeof cursor !== 'string') return { t: null, n: null };
  try {
    const p = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { t?: unknown; n?: unknown };
    const t = typeof p.t === 'string' && Number.isFinite(ms(p.t)) ? p.t : null;
    return { t, n: t !== null && Number.isSafeInteger(p.n) ? (p.n as number) : null };
  } catch {
    return { t: null, n: null };
  }
}

/** The checkpoints of the log of record's publishers (temporal/kafkaPublisher.ts `kafkaCheckpointId`). */
const LOG_OF_RECORD = 'kafka:';

/** Milliseconds of an RFC 3339 instant as Neo4j prints it (up to nanoseconds). */
function ms(instant: string): number {
  return Date.parse(instant.replace(/(\.\d{3})\d+/, '$1'));
}

/**
 * Where pruning may go now, by the graph's clock: the oldest position of the consumers within the
 * cap (or now, with none) less the safety window; history is kept `historyMs` besides.
 */
export async function pruneHorizon(g: Graph, s: PruneSettings): Promise<PruneHorizon> {
  const { rows, now } = await readTx(g, async (tx) => {
    const res = await tx.run(CYPHER.consumers);
    const clock = (res.records[0] ?? (await tx.run(CYPHER.now)).records[0])?.get('now') as string;
    // How long each has left an event waiting: the oldest after its position (none: caught up,
    // however long ago its last event was); with no position, since it was made.
    const rows: { id: string; position: string | null; number: number | null; waiting: string | null }[] = [];
    for (const r of res.records) {
      const { t: position, n: number } = cursorPlace(r.get('cursor'));
      const after = position === null ? null : (await tx.run(CYPHER.oldestAfter, { t: position })).records[0];
      const waiting =
        position === null
          ? ((r.get('createdAt') as string | null) ?? new Date(0).toISOString())
          : ((after?.get('t') as string | undefined) ?? null);
      rows.push({ id: r.get('id') as string, position, number, waiting });
    }
    return { rows, now: ms(clock) };
  });
  const consumers: EventConsumer[] = rows.map(({ id, position, waiting }) => {
    const behind = waiting !== null && !(ms(waiting) >= now - s.capMs);
    return { id, position, behind_cap: behind, holds_back: !behind || id.startsWith(LOG_OF_RECORD) };
  });
  // A consumer at the start of the feed holds everything back.
  const held = consumers.filter((c) => c.holds_back).map((c) => (c.position === null ? 0 : ms(c.position)));
  const horizon = Math.max(0, Math.min(now, ...held) - s.safetyMs);
  const numbers = rows
    .filter((r) => r.id.startsWith(LOG_OF_RECORD) && r.number !== null)
    .map((r) => r.number as number);
  return {
    horizon: new Date(horizon).toISOString(),
    numbered_through: numbers.length > 0 ? Math.min(...numbers) : null,
    history_cutoff: new Date(Math.min(horizon, now - s.historyMs)).toISOString(),
    consumers,
  };
}

export interface PruneCount {
  transient: number;
  history: number;
}

/**
 * Deletes the events before the horizon (transient) and the cutoff (all), `batchSize` per write
 * transaction, and records the horizon on the log (the feed refuses a cursor before it). Idempotent:
 * running it twice, or two at once, deletes each event once. `onBatch` is called after each batch.
 */
export async function pruneEvents(
  g: Graph,
  at: Pick<PruneHorizon, 'horizon' | 'history_cutoff' | 'numbered_through'>,
  options: { batchSize: number; onBatch?: (soFar: PruneCount) => void },
): Promise<PruneCount> {
  const count: PruneCount = { transient: 0, history: 0 };
  const batch = neo4j.int(options.batchSize);
  const run = async (cypher: string, params: Record<string, unknown>, into: keyof PruneCount) => {
    for (;;) {
      const n = await writeTx(
        g,
        async (tx) => toPlain((await tx.run(cypher, { ...params, batch })).records[0]?.get('deleted')) as number,
      );
      count[into] += n;
      options.onBatch?.({ ...count });
      if (n < options.batchSize) return;
    }
  };
  // Recorded first: from now on the feed refuses a cursor before the horizon, and starts a new
  // reader at it, even while (or if an attempt dies while) the batches below delete.
  await writeTx(g, async (tx) => {
    await tx.run(CYPHER.record, { horizon: at.horizon });
  });
  const numberedThrough = at.numbered_through === null ? null : neo4j.int(at.numbered_through);
  await run(PRUNE_BATCHES.transient, { horizon: at.horizon, numberedThrough }, 'transient');
  await run(PRUNE_BATCHES.history, { cutoff: at.history_cutoff, numberedThrough }, 'history');
  return count;
}

/** RFC 3339: the feed no longer holds every event stamped before it (null: nothing pruned yet). */
export async function prunedBefore(g: Graph): Promise<string | null> {
  return readTx(g, async (tx) => {
    const r = (await tx.run(`MATCH (log:EventLog {id: '${EVENT_LOG_ID}'}) RETURN toString(log.pruned_before) AS t`))
      .records[0];
    return (r?.get('t') as string | null | undefined) ?? null;
  });
}
