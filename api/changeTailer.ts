/**
 * Brings other processes' writes to the read cache (api/readCache.ts): tails the event log on its
 * `occurred_at` index.
 *
 * - Every PERSONA_READ_CACHE_POLL_MS it reads the events stamped after (newest seen − overlap),
 *   on Neo4j's own clock, and hands the ones it has not seen (by id) to the cache. The overlap
 *   catches an event whose transaction commits a little after a later-stamped one.
 * - An event may commit later still: a write transaction runs at most WRITE_TX_TIMEOUT_MS, so an
 *   event stamped at t is final by then. Every PERSONA_READ_CACHE_SWEEP_MS a sweep counts the
 *   index entries between (newest − the feed's lag) and (newest − overlap), the stretch the fast
 *   poll no longer reads; when the count differs from the ids seen there, it reads that stretch
 *   again and applies what is new. The feed's lag (PERSONA_EVENTS_FEED_LAG_MS) is refused below
 *   the write timeout plus a margin, so the sweep covers every late commit.
 * - Each successful poll tells the cache when it began; the cache serves hits only while that is
 *   recent (PERSONA_READ_CACHE_FRESH_MS), so a tailer that cannot poll turns hits into reads.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { leaderReadTx, type Graph } from '../graph/graph';
import type { Logger } from '../runtime/logger';
import type { CacheEvent, ReadCache } from './readCache';

export interface TailerSettings {
  pollMs: number;
  overlapMs: number;
  sweepMs: number;
  /** How far back the sweep looks: the change feed's lag (every write has committed by then). */
  lagMs: number;
  /** Most events one poll reads; a full page is followed by the next at once. */
  pageSize?: number;
}

/** Events whose payload the cache applies in place; the others are applied by type and sequence. */
const PAYLOAD_TYPES = ['CustomerProfileUpdated', 'DeviceTrustScoreUpdated', 'DeviceLinked'];

const COLUMNS = `e.id AS id, e.type AS type, e.customer_id AS customerId, e.customer_seq AS customerSeq,
  e.device_id AS deviceId, e.device_seq AS deviceSeq,
  CASE WHEN e.type IN $payloadTypes THEN e.payload END AS payload,
  e.occurred_at.epochSeconds AS s, e.occurred_at.nanosecond AS ns`;

const CYPHER = {
  now: 'RETURN datetime.realtime().epochSeconds AS s, datetime.realtime().nanosecond AS ns',
  after: `
    MATCH (e:Event) WHERE e.occurred_at > datetime({epochSeconds: $sinceS, nanosecond: $sinceNs})
    WITH e ORDER BY e.occurred_at, e.seq LIMIT $limit
    RETURN ${COLUMNS}`,
  count: `
    MATCH (e:Event)
    WHERE e.occurred_at > datetime({epochSeconds: $fromS, nanosecond: $fromNs})
      AND e.occurred_at <= datetime({epochSeconds: $toS, nanosecond: $toNs})
    RETURN count(e) AS n`,
  between: `
    MATCH (e:Event)
    WHERE e.occurred_at > datetime({epochSeconds: $fromS, nanosecond: $fromNs})
      AND e.occurred_at <= datetime({epochSeconds: $toS, nanosecond: $toNs})
    RETURN ${COLUMNS}
    ORDER BY e.occurred_at, e.seq`,
} as const;

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

function nsOf(s: unknown, ns: unknown): bigint {
  return BigInt(String(s)) * NS_PER_S + BigInt(String(ns));
}

function timeParams(prefix: string, at: bigint): Record<string, unknown> {
  const s = at / NS_PER_S;
  return { [`${prefix}S`]: neo4j.int(s.toString()), [`${prefix}Ns`]: neo4j.int((at - s * NS_PER_S).toString()) };
}

const toNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

interface Tailed extends CacheEvent {
  id: string;
  at: bigint;
}

export interface TailerStats {
  polls: number;
  failures: number;
  /** Events read by sweeps that the fast polls had missed. */
  caughtBySweep: number;
}

export class ChangeTailer {
  /** id → stamp of every event seen within the sweep's reach. */
  private readonly seen = new Map<string, bigint>();
  /** The newest stamp seen (ns since the epoch, Neo4j's clock); null before the first poll. */
  private newest: bigint | null = null;
  /** Neo4j's clock at the first poll: the sweep never looks before it (the cache was empty then). */
  private origin: bigint | null = null;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastSweep = 0;
  private lastWarned = 0;
  readonly stats: TailerStats = { polls: 0, failures: 0, caughtBySweep: 0 };

  constructor(
    private readonly graph: Graph,
    private readonly cache: ReadCache,
    private readonly settings: TailerSettings,
    private readonly logger: Logger,
  ) {}

  /** When start() was called (0: never): the tail's age before its first poll. */
  startedAt = 0;

  start(): void {
    this.startedAt = Date.now();
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const startedAt = Date.now();
    try {
      await this.poll();
      if (startedAt - this.lastSweep >= this.settings.sweepMs) {
        await this.sweep();
        this.lastSweep = startedAt;
      }
      this.stats.polls++;
      this.cache.polled(startedAt);
      this.schedule(this.settings.pollMs);
    } catch (err) {
      this.stats.failures++;
      if (startedAt - this.lastWarned >= 60_000) {
        this.lastWarned = startedAt;
        this.logger.warn(
          { err },
          'the read cache cannot tail the event log: hits are served only from Neo4j until it can (said once a minute)',
        );
      }
      this.schedule(Math.max(this.settings.pollMs, 500));
    }
  }

  /** Reads the events after (newest − overlap), page by page, and applies the unseen ones. */
  async poll(): Promise<void> {
    const limit = this.settings.pageSize ?? 2000;
    const overlap = BigInt(this.settings.overlapMs) * NS_PER_MS;
    if (this.newest === null) {
      const r = (await leaderReadTx(this.graph, (tx) => tx.run(CYPHER.now))).records[0];
      this.newest = nsOf(r?.get('s'), r?.get('ns'));
      this.origin = this.newest;
    }
    // The first page reaches back by the overlap; a full page is followed from its last stamp on
    // (that stamp included: events one statement appends can share it), not from the overlap
    // again, so a busy stretch is read once and the loop always moves forward.
    let since = this.newest - overlap;
    for (;;) {
      const rows = await leaderReadTx(this.graph, (tx) =>
        this.rows(tx, CYPHER.after, { ...timeParams('since', since), limit: neo4j.int(limit) }),
      );
      this.take(rows);
      if (rows.length < limit) return;
      const first = rows[0] as Tailed;
      const last = rows[rows.length - 1] as Tailed;
      // A whole page on one stamp (never in practice) would repeat: step past it; the sweep reads it.
      since = last.at === first.at ? last.at : last.at - 1n;
    }
  }

  /** Counts the stretch the fast poll no longer reads; reads it again when an event was missed. */
  async sweep(): Promise<void> {
    if (this.newest === null) return;
    const to = this.newest - BigInt(this.settings.overlapMs) * NS_PER_MS;
    const back = this.newest - BigInt(this.settings.lagMs) * NS_PER_MS;
    const from = this.origin !== null && this.origin > back ? this.origin : back;
    for (const [id, at] of this.seen) if (at <= from) this.seen.delete(id);
    if (to <= from) return;
    const window = { ...timeParams('from', from), ...timeParams('to', to) };
    const counted = await leaderReadTx(this.graph, async (tx) =>
      Number((await tx.run(CYPHER.count, window)).records[0]?.get('n') ?? 0),
    );
    let known = 0;
    for (const at of this.seen.values()) if (at > from && at <= to) known++;
    if (counted === known) return;
    const rows = await leaderReadTx(this.graph, (tx) => this.rows(tx, CYPHER.between, window));
    const missed = rows.filter((r) => !this.seen.has(r.id));
    this.stats.caughtBySweep += missed.length;
    if (missed.length > 0)
      this.logger.info({ events: missed.length }, 'read cache: the sweep found events committed after the fast poll');
    // The stretch as it is now (an erasure deletes events): seen ids there are replaced by those
    // read, and only the missed ones are applied.
    for (const [id, at] of this.seen) if (at > from && at <= to) this.seen.delete(id);
    for (const r of rows) this.seen.set(r.id, r.at);
    if (missed.length > 0) this.cache.apply(missed, 'tail');
  }

  private async rows(tx: ManagedTransaction, cypher: string, params: Record<string, unknown>): Promise<Tailed[]> {
    const res = await tx.run(cypher, { ...params, payloadTypes: PAYLOAD_TYPES });
    return res.records.map((r) => {
      const payload = r.get('payload') as string | null;
      return {
        id: r.get('id') as string,
        type: r.get('type') as string,
        customer_id: (r.get('customerId') as string | null) ?? null,
        customer_seq: toNumber(r.get('customerSeq')),
        ...(r.get('deviceId') ? { device_id: r.get('deviceId') as string } : {}),
        ...(r.get('deviceSeq') !== null ? { device_seq: toNumber(r.get('deviceSeq')) as number } : {}),
        payload: payload === null ? null : (JSON.parse(payload) as Record<string, unknown>),
        at: nsOf(r.get('s'), r.get('ns')),
      };
    });
  }

  private take(rows: Tailed[]): void {
    const fresh = rows.filter((r) => !this.seen.has(r.id));
    for (const r of rows) {
      this.seen.set(r.id, r.at);
      if (this.newest === null || r.at > this.newest) this.newest = r.at;
    }
    if (fresh.length > 0) this.cache.apply(fresh, 'tail');
  }
}
