/**
 * The read cache's metrics on the api's /metrics (api/readCache.ts, api/invalidations.ts): its
 * hits, misses, stale answers, invalidations, holes and resets as counters, and its size, the
 * tail's age and the read breaker as gauges. Each reads the cache's figures at each scrape, from
 * the view api/deps.ts sets once it has built the cache (nothing is shown before that).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** What the read cache's metrics show (api/readCache.ts, api/invalidations.ts). */
export interface ReadCacheView {
  hits: number;
  misses: Record<'absent' | 'behind_token' | 'tail_behind' | 'expired', number>;
  stale: number;
  applied: number;
  invalidated: { local: number; tail: number };
  entries: number;
  bytes: number;
  breaker: 'closed' | 'open' | 'half-open';
  /** Seconds since the log was last known drained and taken whole by the tail (Infinity before the first). */
  tailAgeSeconds: number;
  /** Holes in the invalidations read from Neo4j, and the events they held. */
  holes: number;
  holeEvents: number;
  /** Times the cache was emptied (a hole too wide to read, or the log numbered back). */
  resets: number;
  /** Invalidation messages dropped: not sealed under this deployment's payload keys, or malformed. */
  refused: number;
}

/** Where the read cache's metrics read its figures: set by api/deps.ts once it has built the cache. */
export interface ReadCacheSource {
  view?: () => ReadCacheView;
}

/**
 * The read cache's counters, registered in this order: hits, misses by reason, stale answers,
 * events applied, holes, hole events, refused messages, resets, invalidations by source. The
 * cache keeps its own running totals, so each counter is set to the cache's figure at each scrape.
 */
export function readCacheCounters(registry: Registry, readCache: ReadCacheSource): void {
  // Counters that mirror the cache's own: set to its figure at each scrape.
  const mirror = (name: string, help: string, value: (v: ReadCacheView) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const view = readCache.view?.();
        if (!view) return;
        this.reset();
        this.inc(value(view));
      },
    });
  mirror('persona_read_cache_hits_total', 'Context and checkout reads answered from the read cache', (v) => v.hits);
  readCacheMissesCounter(registry, readCache);
  mirror(
    'persona_read_cache_stale_answers_total',
    'Reads answered from the cache marked stale because Neo4j could not answer',
    (v) => v.stale,
  );
  mirror('persona_read_cache_applied_total', 'Events applied to cached customers in place', (v) => v.applied);
  mirror(
    'persona_read_cache_holes_total',
    'Holes in the invalidations (a message lost or crossed) the tail read from Neo4j',
    (v) => v.holes,
  );
  mirror('persona_read_cache_hole_events_total', 'Events the tail read from Neo4j to fill holes', (v) => v.holeEvents);
  mirror(
    'persona_read_cache_refused_messages_total',
    "Invalidation messages dropped: not sealed under this deployment's payload keys, or malformed",
    (v) => v.refused,
  );
  mirror(
    'persona_read_cache_resets_total',
    'Times the read cache was emptied: a hole wider than PERSONA_READ_CACHE_MAX_GAP, or the log numbered back',
    (v) => v.resets,
  );
  readCacheInvalidationsCounter(registry, readCache);
}

/** Reads that went to Neo4j, by why the cache could not answer: set to the cache's tallies at each scrape. */
function readCacheMissesCounter(registry: Registry, readCache: ReadCacheSource): Counter<'reason'> {
  return new Counter({
    name: 'persona_read_cache_misses_total',
    help: 'Context and checkout reads that went to Neo4j, by why (absent, behind_token, tail_behind, expired)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const view = readCache.view?.();
      if (!view) return;
      this.reset();
      for (const [reason, count] of Object.entries(view.misses)) this.inc({ reason }, count);
    },
  });
}

/**
 * Cached customers dropped by an event, by where the event came from (this api's own commit, or
 * the tail of the event log): set to the cache's tallies at each scrape.
 */
function readCacheInvalidationsCounter(registry: Registry, readCache: ReadCacheSource): Counter<'source'> {
  return new Counter({
    name: 'persona_read_cache_invalidations_total',
    help: 'Cached customers dropped by an event, by where the event came from (local commit or the tail)',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      const view = readCache.view?.();
      if (!view) return;
      this.reset();
      this.inc({ source: 'local' }, view.invalidated.local);
      this.inc({ source: 'tail' }, view.invalidated.tail);
    },
  });
}

/**
 * The read cache's gauges, registered in this order: entries, bytes, the tail's age and the read
 * breaker. Each shows the cache's figure at each scrape; alerts watch the tail's age and the
 * breaker (ops/prometheus/alerts.yml).
 */
export function readCacheGauges(registry: Registry, readCache: ReadCacheSource): void {
  // Gauges that show the cache's figure at each scrape.
  const gauge = (name: string, help: string, value: (v: ReadCacheView) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const view = readCache.view?.();
        if (view) this.set(value(view));
      },
    });
  gauge('persona_read_cache_entries', 'Customers held by the read cache', (v) => v.entries);
  gauge('persona_read_cache_bytes', 'Estimated memory of the read cache entries', (v) => v.bytes);
  gauge(
    'persona_read_cache_tail_age_seconds',
    'Seconds since the read cache last tailed the event log successfully, or since the tail started ' +
      'before its first poll (hits stop past PERSONA_READ_CACHE_FRESH_MS; -1 when the cache is off)',
    (v) => (Number.isFinite(v.tailAgeSeconds) ? v.tailAgeSeconds : -1),
  );
  gauge(
    'persona_read_breaker_open',
    'The read breaker: 0 closed, 1 open (reads fail fast or are served stale), 0.5 half-open (probing)',
    (v) => (v.breaker === 'closed' ? 0 : v.breaker === 'open' ? 1 : 0.5),
  );
}
