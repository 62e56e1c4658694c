/**
 * The agents' read path from memory: one snapshot per customer (graph/context.ts
 * CustomerSnapshot), from which both the context and the checkout options are served, kept
 * current by the graph's own events.
 *
 * - A write this process commits reaches the cache before its answer (`Graph.changes`).
 * - Writes of other processes (the worker, other api replicas) arrive through the invalidation
 *   tail (api/invalidations.ts), in the order the event sequencer numbered them.
 * - A hit is served only while the tail is current (it last knew the log drained and taken whole
 *   less than PERSONA_READ_CACHE_FRESH_MS ago) and the entry is younger than PERSONA_READ_CACHE_TTL_MS (the
 *   backstop for writes that append no event); otherwise the read goes to Neo4j.
 * - An event the snapshot already reflects (its customer sequence at or below the snapshot's) is
 *   skipped; the next one in sequence is applied in place when it only moves LTV, segment, the
 *   prediction or a method's `last_used` (every recorded payment does), or moves nothing the
 *   snapshot holds; anything else (a status change, a method's, a gap in the sequence) drops the
 *   entry. A device's trust change reaches every cached customer on the device the same way.
 * - A fill (one per customer at a time) that an event overtakes is answered but not kept: its read
 *   may have begun before the event's commit. A fill is two plain reads that agree, without a lock
 *   (graph/context.ts); one whose reads never agreed (`unconfirmed`) is answered, never kept.
 * - When Neo4j fails or is slower than the read's budget, or the breaker is open, a customer the
 *   cache holds is answered from it, marked stale with the time it was last known current; any
 *   other read fails fast with 503 / UNAVAILABLE. A read that names a consistency token the entry
 *   does not reach goes to Neo4j's leader, and is never answered stale.
 * - The id of a merged customer (a tombstone, graph/identityMerge.ts) is answered with its survivor's
 *   snapshot (the fill follows it: graph/context.ts). That snapshot is kept under the survivor's
 *   own id, never under the tombstone's — the survivor's events, which keep it current, name the
 *   survivor — and the tombstone's id is only an alias of that very entry (see `aliases`).
 */
import { LRUCache } from 'lru-cache';
import { readCustomerSnapshot, trustOnDevice, type CustomerSnapshot } from '../graph/context';
import type { Graph } from '../graph/graph';
import type { Logger } from '../runtime/logger';
import { unavailableDependency } from '../runtime/dependencies';
import { snapshotReaches, TokenNotMetError, type ConsistencyToken } from './consistency';
import { applyInPlace, linkedDeviceOf, type CacheEvent } from './readCacheEvents';
import { SnapshotFills, type Fill } from './readCacheFills';
import { DeviceIndex, SeenSequences } from './readCacheGuards';

export interface ReadCacheSettings {
  /** false: every read goes to Neo4j (the breaker and fail-fast still apply). */
  enabled: boolean;
  maxEntries: number;
  maxBytes: number;
  ttlMs: number;
  /** A hit is served only while the tail last knew the log drained and taken less than this ago. */
  freshMs: number;
  /** Consecutive failed reads that open the breaker. */
  breakerFailures: number;
  /** How long the breaker stays open before one read probes Neo4j again. */
  breakerHalfOpenMs: number;
  /** The oldest a cached copy may be (since last known current) to be answered stale. */
  staleMaxMs: number;
}

export interface CachedRead {
  snapshot: CustomerSnapshot;
  /** Where the answer came from: memory (a hit, or a stale copy) or a read of Neo4j. */
  from: 'memory' | 'neo4j';
  /** Set when Neo4j could not answer and this is the cached copy: when it was last known current. */
  staleAsOf?: Date;
}

interface Entry {
  snap: CustomerSnapshot;
  /** When the read that filled it began (Date.now()). */
  filledAt: number;
}

/**
 * Bytes an entry takes in the heap, for the cache's size bound: the snapshot, the cache's own slot,
 * the device index's share and the sequence guards. Calibrated by `npm run bench:cache-memory`,
 * which fills a cache with real snapshots and weighs the heap after a full collection (1,690 bytes
 * an entry on the seeded graph, 1.6 devices and 1.3 active methods a customer on average); slightly
 * over, so that the bound is a bound.
 */
export function sizeOf(snap: CustomerSnapshot): number {
  return 560 + 240 * snap.devices.length + 640 * snap.methods.length;
}

/**
 * Why a read went to Neo4j: the customer is not held (never read, evicted or dropped by an event),
 * the caller's consistency token is past the entry, the tail is not current, or the entry outlived
 * its TTL.
 */
export type MissReason = 'absent' | 'behind_token' | 'tail_behind' | 'expired';

export interface ReadCacheStats {
  hits: number;
  misses: Record<MissReason, number>;
  stale: number;
  /** Entries dropped by events, by where the event came from. */
  invalidated: { local: number; tail: number };
  /** Entries updated in place by events. */
  applied: number;
  /** Reads of Neo4j whose answer was behind the caller's consistency token (each read once more). */
  behindToken: number;
}

export class ReadCache {
  private readonly lru: LRUCache<string, Entry>;
  /** Where a device's event goes: the cached customers on it. */
  private readonly byDevice = new DeviceIndex();
  /** The reads of Neo4j under way, one per customer, through the breaker. */
  private readonly fills: SnapshotFills;
  /** The sequences events have shown: a snapshot below them is never kept. */
  private readonly seen: SeenSequences;
  /**
   * A merged customer's id → the entry of its survivor that a fill of the merged id found (kept
   * under the survivor's id). Served only while the survivor's entry is that same object: any
   * event that drops or refills the survivor's entry (a merge, an unmerge, a status change…)
   * ends the alias with it, while the events applied in place (a payment, a profile change) reach
   * both ids at once. Any event of the merged id itself (CustomersUnmerged, on both customers'
   * logs) deletes its alias; a merge of the survivor into a third record appends CustomersMerged
   * to the survivor's log, which drops the survivor's entry, so an alias never outlives a
   * re-pointed tombstone. Nothing is ever cached under a tombstone's own id.
   */
  private readonly aliases: LRUCache<string, Entry>;
  /** Customer events applied so far: a fill notes the count when it begins. */
  private eventCount = 0;
  /**
   * The count at each customer's latest event (bounded): a fill that followed a merge to a survivor
   * whose event came while it ran is not kept (an event marks overtaken only the fills of its own
   * customer, and such a fill is registered under the merged id).
   */
  private readonly movedAt: LRUCache<string, number>;
  /** When the tail was placed: fills that began earlier are not kept. */
  private tailOrigin = 0;
  /** When the tail last knew everything committed before it taken (0: never, so no hit is fresh). */
  private polledAt = 0;
  readonly stats: ReadCacheStats = {
    hits: 0,
    misses: { absent: 0, behind_token: 0, tail_behind: 0, expired: 0 },
    stale: 0,
    invalidated: { local: 0, tail: 0 },
    applied: 0,
    behindToken: 0,
  };

  constructor(
    graph: Graph,
    readonly settings: ReadCacheSettings,
    logger: Logger,
    fillDeadlineMs: number,
    /** How a snapshot is read from Neo4j (a unit test's stand-in replaces it). */
    readSnapshot: typeof readCustomerSnapshot = readCustomerSnapshot,
  ) {
    this.lru = new LRUCache<string, Entry>({
      max: Math.max(1, settings.maxEntries),
      maxSize: Math.max(1, settings.maxBytes),
      sizeCalculation: (e) => sizeOf(e.snap),
      dispose: (e, customerId) => this.byDevice.remove(customerId, e.snap.devices),
    });
    this.seen = new SeenSequences(Math.max(1000, settings.maxEntries));
    this.aliases = new LRUCache<string, Entry>({ max: Math.max(1000, settings.maxEntries) });
    this.movedAt = new LRUCache<string, number>({ max: Math.max(1000, settings.maxEntries) });
    this.fills = new SnapshotFills(
      graph,
      { ...settings, fillDeadlineMs, readSnapshot, onAnswer: (fill, snap) => this.answered(fill, snap) },
      logger,
    );
  }

  get size(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  /** closed, open (reads fail fast or are served stale) or half-open (one probe is let through). */
  get breakerState(): 'closed' | 'open' | 'half-open' {
    return this.fills.breakerState;
  }

  /**
   * The tail reports that everything committed before `startedAt` has been taken (the log drained
   * then); its first report places it (api/invalidations.ts).
   */
  polled(startedAt: number): void {
    if (this.tailOrigin === 0) this.tailOrigin = startedAt;
    if (startedAt > this.polledAt) this.polledAt = startedAt;
  }

  /**
   * Forgets every copy (the tail missed more than it reads, or the log was restored): what is held
   * may be behind a write the tail will never bring, and fills under way are not kept.
   */
  reset(): void {
    this.fills.overtake();
    this.lru.clear();
    this.byDevice.clear();
    this.aliases.clear();
    this.seen.clear();
  }

  /** When the tailer last polled successfully (0: never). */
  get lastPolledAt(): number {
    return this.polledAt;
  }

  /** True while hits may be served: the cache is on and its tailer current. */
  isCurrent(now = Date.now()): boolean {
    return this.settings.enabled && now - this.polledAt < this.settings.freshMs;
  }

  /**
   * One customer's snapshot: from memory when current and at or past `minVersion`, else from
   * Neo4j (within `budgetMs`), else, when Neo4j cannot answer, the cached copy marked stale.
   */
  async read(customerId: string, budgetMs: number, minVersion: ConsistencyToken | null = null): Promise<CachedRead> {
    const now = Date.now();
    const entry = this.lru.get(customerId) ?? this.aliased(customerId, true);
    const reaches = entry !== undefined && snapshotReaches(customerId, entry.snap, minVersion);
    const current = this.isCurrent(now);
    if (entry && reaches && current && now - entry.filledAt < this.settings.ttlMs) {
      this.stats.hits++;
      return { snapshot: answerFor(customerId, entry.snap), from: 'memory' };
    }
    this.stats.misses[!entry ? 'absent' : !reaches ? 'behind_token' : !current ? 'tail_behind' : 'expired']++;
    try {
      // A token the cache does not reach is read on the leader, which has every committed write.
      const onLeader = minVersion !== null && !reaches;
      const tokenDevice = minVersion?.kind === 'd' ? minVersion.deviceId : undefined;
      const snapshot = await this.fill(customerId, budgetMs, onLeader, tokenDevice);
      if (snapshotReaches(customerId, snapshot, minVersion)) return { snapshot, from: 'neo4j' };
      this.stats.behindToken++;
      // A copy that reached the token (expired, or its tail behind) was read again off the leader,
      // from a member that lags: once more from the leader.
      const again = onLeader ? snapshot : await this.fill(customerId, budgetMs, true, tokenDevice);
      if (snapshotReaches(customerId, again, minVersion)) return { snapshot: again, from: 'neo4j' };
      // The leader does not reach it either: a token of no write this answer holds (another
      // customer's, or made up). Refused, never answered with what is behind it.
      throw new TokenNotMetError(again.merged_into);
    } catch (err) {
      const unavailable = unavailableDependency(err);
      if (!unavailable) throw err;
      // The copy held now (an event may have dropped the one seen before the wait), only if it
      // reaches the caller's token, and only for so long: past that, a denying change this replica
      // cannot see may exist.
      const held = this.lru.peek(customerId) ?? this.aliased(customerId, false);
      const asOf = held ? Math.max(held.filledAt, this.polledAt) : 0;
      if (held && snapshotReaches(customerId, held.snap, minVersion) && Date.now() - asOf < this.settings.staleMaxMs) {
        this.stats.stale++;
        return { snapshot: answerFor(customerId, held.snap), from: 'memory', staleAsOf: new Date(asOf) };
      }
      throw unavailable;
    }
  }

  /** The survivor's entry a merged customer's id is an alias of, while it is still that entry. */
  private aliased(customerId: string, touch: boolean): Entry | undefined {
    const alias = this.aliases.peek(customerId);
    if (!alias) return undefined;
    const survivor = touch ? this.lru.get(alias.snap.customer_id) : this.lru.peek(alias.snap.customer_id);
    if (survivor === alias) return alias;
    this.aliases.delete(customerId);
    return undefined;
  }

  /** One customer's snapshot read from Neo4j (`SnapshotFills`), with the count of events so far. */
  private fill(customerId: string, budgetMs: number, leader: boolean, tokenDeviceId?: string) {
    return this.fills.read(customerId, budgetMs, leader, tokenDeviceId, this.eventCount);
  }

  /** A read's answer, before its callers have it: kept unless an event overtook it or it is unconfirmed. */
  private answered(fill: Fill, snap: CustomerSnapshot): void {
    if (fill.overtaken || snap.unconfirmed === true || !this.settings.enabled) return;
    // What was read for this caller's token only is not the customer's state; the cache keeps a
    // copy of its own (it updates entries in place, and the answer is the caller's).
    const { merged_seq: _mergedSeq, token_device: _tokenDevice, ...state } = structuredClone(snap);
    if (state.merged_into === undefined) this.keep(fill.customerId, state, fill.startedAt, fill.startedCount);
    else this.keepFollowed(fill.customerId, state, fill.startedAt, fill.startedCount);
  }

  private keep(customerId: string, snap: CustomerSnapshot, filledAt: number, startedCount: number): void {
    // Before the tail's first poll, events between this read and the tail's start are never read.
    if (this.tailOrigin === 0 || filledAt < this.tailOrigin) return;
    // An event of the customer came while the read ran: it may be older than the event.
    if ((this.movedAt.get(customerId) ?? 0) > startedCount) return;
    // An event already showed a later sequence: this read is behind it.
    if (this.seen.customer(customerId) > snap.seq) return;
    if (this.seen.anyDeviceAhead(snap.devices)) return;
    const known = this.lru.peek(customerId);
    // A slower fill must not replace what a newer one (or an event) already brought.
    if (known && known.snap.seq > snap.seq) return;
    this.lru.set(customerId, { snap, filledAt });
    if (!this.lru.has(customerId)) return; // larger than the whole cache
    this.byDevice.add(customerId, snap.devices);
  }

  /**
   * A merged customer's fill brought its survivor's snapshot: kept as the survivor's own (under the
   * survivor's id, by the same rules; an event of the survivor during the fill is seen by `keep`
   * through `movedAt`, so it refuses the fill), and the merged id made an alias of the
   * survivor's entry, whichever is current. An event of the merged id during the fill (an unmerge)
   * marked the fill overtaken, so it never gets here.
   */
  private keepFollowed(mergedId: string, snap: CustomerSnapshot, filledAt: number, startedCount: number): void {
    if (this.tailOrigin === 0 || filledAt < this.tailOrigin) return;
    const { merged_into: _followed, ...own } = snap;
    this.keep(own.customer_id, own, filledAt, startedCount);
    const survivor = this.lru.peek(own.customer_id);
    if (survivor) this.aliases.set(mergedId, survivor);
  }

  private drop(customerId: string, source: 'local' | 'tail'): void {
    if (this.lru.delete(customerId)) this.stats.invalidated[source]++;
  }

  /** Brings the cache up to date with events (a commit of this process, or tailed ones). */
  apply(events: readonly CacheEvent[], source: 'local' | 'tail'): void {
    for (const ev of events) {
      if (ev.customer_id) this.applyCustomerEvent(ev.customer_id, ev, source);
      else if (ev.device_id) this.applyDeviceEvent(ev.device_id, ev, source);
    }
  }

  private applyCustomerEvent(customerId: string, ev: CacheEvent, source: 'local' | 'tail'): void {
    this.fills.overtake(customerId);
    this.movedAt.set(customerId, ++this.eventCount);
    // A merged id's own log moves only when its merge is undone (or it is erased): where it leads may change.
    this.aliases.delete(customerId);
    this.seen.customerAt(customerId, ev.customer_seq);
    const entry = this.lru.peek(customerId);
    if (!entry) return;
    const snap = entry.snap;
    if (ev.customer_seq !== null && ev.customer_seq <= snap.seq) return; // already reflected
    if (ev.customer_seq === snap.seq + 1) {
      if (applyInPlace(snap, ev)) {
        snap.seq = ev.customer_seq;
        this.stats.applied++;
        return;
      }
      if (ev.type === 'DeviceLinked' && this.addLinkedDevice(customerId, entry, ev.customer_seq, ev, source)) return;
    }
    this.drop(customerId, source);
  }

  /**
   * A new link's device added to the customer's entry, as a fill would read it (the event's cache
   * hint carries it: graph/devices.ts LINKED_DEVICE). Not when the event lacks it, or an event of the device
   * already showed a later sequence than the link saw (its trust may have moved since). The entry
   * is replaced, not changed, so that its size is weighed again (and a merged id's alias, which
   * holds the old one, ends).
   */
  private addLinkedDevice(
    customerId: string,
    entry: Entry,
    seq: number,
    ev: CacheEvent,
    source: 'local' | 'tail',
  ): boolean {
    const device = linkedDeviceOf(ev.payload?.device_id, ev.cache?.device);
    if (!device) return false;
    // An event of the device came before this one (its sequence held, or forgotten into the floor).
    if (this.seen.deviceFloor(device.device_id) > device.seq) return false;
    const snap: CustomerSnapshot = { ...entry.snap, seq, devices: [...entry.snap.devices, device] };
    this.lru.set(customerId, { snap, filledAt: entry.filledAt });
    if (!this.lru.has(customerId)) {
      // Larger than the whole cache: gone, as a fill would be.
      this.stats.invalidated[source]++;
      return true;
    }
    this.stats.applied++;
    this.byDevice.add(customerId, snap.devices);
    return true;
  }

  private applyDeviceEvent(deviceId: string, ev: CacheEvent, source: 'local' | 'tail'): void {
    // A fill in flight may hold the device without the index knowing yet.
    this.fills.overtake();
    const seq = ev.device_seq ?? null;
    this.seen.deviceAt(deviceId, seq);
    const to = ev.payload?.to;
    for (const customerId of this.byDevice.customersOf(deviceId)) {
      const device = this.lru.peek(customerId)?.snap.devices.find((d) => d.device_id === deviceId);
      if (!device) continue;
      if (seq !== null && seq <= device.seq) continue; // already reflected
      if (ev.type === 'DeviceTrustScoreUpdated' && seq === device.seq + 1 && typeof to === 'number') {
        device.ceiling = to;
        device.trust_score = trustOnDevice(device.earned, to);
        device.seq = seq;
        this.stats.applied++;
      } else {
        this.drop(customerId, source);
      }
    }
  }
}

/** What a read of `askedId` answers from a survivor's snapshot: the same data, with `merged_into` when it followed. */
function answerFor(askedId: string, snap: CustomerSnapshot): CustomerSnapshot {
  return askedId === snap.customer_id ? snap : { ...snap, merged_into: snap.customer_id };
}
