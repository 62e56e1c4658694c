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
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import { LRUCache } from 'lru-cache';
import { readCustomerSnapshot, trustOnDevice, type CustomerSnapshot, type SnapshotDevice } from '../graph/context';
import { InvalidStateError } from '../graph/errors';
import type { CommittedEvent, Graph } from '../graph/graph';
import type { Logger } from '../runtime/logger';
import { DependencyUnavailableError, unavailableDependency, withDeadline } from '../runtime/dependencies';
import type { ConsistencyToken } from './consistency';

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

/** A tailed or committed event, as much of it as the cache reads. */
export type CacheEvent = Pick<CommittedEvent, 'type' | 'customer_id' | 'customer_seq' | 'device_id' | 'device_seq'> & {
  /** Present on the types applied in place (CustomerProfileUpdated, DeviceTrustScoreUpdated, DeviceLinked). */
  payload?: Record<string, unknown> | null;
  /** The event's cache hint (graph/events.ts NewEvent.cache): a new link's device. */
  cache?: Record<string, unknown> | undefined;
};

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

interface Fill {
  customerId: string;
  promise: Promise<CustomerSnapshot>;
  /** An event about the customer arrived while the read ran: answer it, do not keep it. */
  overtaken: boolean;
}

/** Events that change nothing a snapshot holds: in sequence, they only move its number. */
const NEUTRAL = new Set([
  'CustomerCreated',
  'DigitalIdentifierAdded',
  'AddressAdded',
  'PaymentRecoveryFailed',
  'CustomerNotified',
  'PossibleMatchFound',
  'BehavioralProfileRequested',
  'TrustedDeviceReported',
  'PaymentMethodUsedOnDevice',
]);

/** The CustomerProfileUpdated changes applied in place (`to` is absolute); any other drops the entry. */
const PROFILE_FIELDS = new Set(['ltv', 'ltv_minor', 'segment', 'predicted_ltv', 'predicted_ltv_minor', 'is_vip']);

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
  /** deviceId → the cached customers who logged in from it. */
  private readonly byDevice = new Map<string, Set<string>>();
  /** The fill each customer's reads share (a leader read runs on its own, in `inFlight` only). */
  private readonly fills = new Map<string, Fill>();
  /** Every fill under way, shared or not: an event marks those of its customer overtaken. */
  private readonly inFlight = new Set<Fill>();
  /**
   * The highest customer sequence an event has shown, per customer (bounded): a snapshot below it
   * is never kept, whatever read brought it (a fill that began before the event, a lagging
   * follower).
   */
  private readonly seenSeq: LRUCache<string, number>;
  /** The same for devices: a snapshot holding a device below it is never kept. */
  private readonly seenDeviceSeq: LRUCache<string, number>;
  /**
   * What `seenDeviceSeq` forgot to make room, folded by a hash of the device id: each slot holds
   * the highest sequence forgotten of any device hashed to it, a floor no device there is known to
   * be below. A link's device is added in place only at or past it (collisions refuse a few more).
   */
  private readonly forgottenDeviceSeq = new Float64Array(FORGOTTEN_SLOTS);
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
  private readonly breaker: CircuitBreakerPolicy;
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
    private readonly graph: Graph,
    readonly settings: ReadCacheSettings,
    private readonly logger: Logger,
    private readonly fillDeadlineMs: number,
    /** How a snapshot is read from Neo4j (a unit test's stand-in replaces it). */
    private readonly readSnapshot: typeof readCustomerSnapshot = readCustomerSnapshot,
  ) {
    this.lru = new LRUCache<string, Entry>({
      max: Math.max(1, settings.maxEntries),
      maxSize: Math.max(1, settings.maxBytes),
      sizeCalculation: (e) => sizeOf(e.snap),
      dispose: (e, customerId) => this.unindex(customerId, e.snap),
    });
    this.seenSeq = new LRUCache<string, number>({ max: Math.max(1000, settings.maxEntries) });
    this.seenDeviceSeq = new LRUCache<string, number>({
      max: Math.max(1000, settings.maxEntries),
      dispose: (seq, device, reason) => {
        if (reason !== 'evict') return;
        const slot = slotOf(device);
        if (seq > (this.forgottenDeviceSeq[slot] ?? 0)) this.forgottenDeviceSeq[slot] = seq;
      },
    });
    this.aliases = new LRUCache<string, Entry>({ max: Math.max(1000, settings.maxEntries) });
    this.movedAt = new LRUCache<string, number>({ max: Math.max(1000, settings.maxEntries) });
    this.breaker = circuitBreaker(
      handleWhen((err) => unavailableDependency(err) !== undefined),
      { halfOpenAfter: settings.breakerHalfOpenMs, breaker: new ConsecutiveBreaker(settings.breakerFailures) },
    );
    this.breaker.onBreak(() => this.logger.warn('read breaker open: Neo4j is failing reads; serving from the cache'));
    this.breaker.onReset(() => this.logger.info('read breaker closed: Neo4j answers reads again'));
  }

  get size(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  /** closed, open (reads fail fast or are served stale) or half-open (one probe is let through). */
  get breakerState(): 'closed' | 'open' | 'half-open' {
    const s = this.breaker.state;
    return s === CircuitState.Closed ? 'closed' : s === CircuitState.HalfOpen ? 'half-open' : 'open';
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
    for (const fill of this.inFlight) fill.overtaken = true;
    this.lru.clear();
    this.byDevice.clear();
    this.aliases.clear();
    this.seenSeq.clear();
    this.seenDeviceSeq.clear();
    this.forgottenDeviceSeq.fill(0);
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
    const reaches = entry !== undefined && this.reaches(customerId, entry.snap, minVersion);
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
      if (this.reaches(customerId, snapshot, minVersion)) return { snapshot, from: 'neo4j' };
      this.stats.behindToken++;
      // A copy that reached the token (expired, or its tail behind) was read again off the leader,
      // from a member that lags: once more from the leader.
      const again = onLeader ? snapshot : await this.fill(customerId, budgetMs, true, tokenDevice);
      if (this.reaches(customerId, again, minVersion)) return { snapshot: again, from: 'neo4j' };
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
      if (held && this.reaches(customerId, held.snap, minVersion) && Date.now() - asOf < this.settings.staleMaxMs) {
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

  /**
   * Whether a snapshot answering `askedId` reflects the write a token names. A customer's token is
   * compared with the snapshot's sequence only when it names the customer the snapshot is of; one
   * naming the id asked for when that id is a merge's tombstone is reached (its write came before
   * the merge, which the survivor's snapshot holds); any other customer's is never reached.
   */
  private reaches(askedId: string, snap: CustomerSnapshot, token: ConsistencyToken | null): boolean {
    if (token === null) return true;
    if (token.kind === 'c') {
      if (token.customerId === snap.customer_id) return snap.seq >= token.seq;
      // The merged id's own token: checked against the tombstone's own sequence, which only a
      // read of Neo4j that followed the merge brings (never a kept entry, never an alias).
      return token.customerId === askedId && snap.merged_seq !== undefined && snap.merged_seq >= token.seq;
    }
    // The device's own sequence, whether the customer uses it or not: the answer is the same
    // either way, so a token tells nothing of which devices a customer uses.
    const seq =
      snap.devices.find((d) => d.device_id === token.deviceId)?.seq ??
      (snap.token_device?.device_id === token.deviceId ? snap.token_device.seq : undefined);
    return seq !== undefined && seq >= token.seq;
  }

  /**
   * Reads the snapshot from Neo4j: one read per customer at a time (a `leader` read, for a
   * consistency token the cache does not reach, runs on its own), each caller waiting at most its
   * own budget, through the breaker.
   */
  private fill(
    customerId: string,
    budgetMs: number,
    leader: boolean,
    tokenDeviceId?: string,
  ): Promise<CustomerSnapshot> {
    // A fill an event overtook is not joined: its answer may be older than the event.
    const own = leader || tokenDeviceId !== undefined;
    const shared = own ? undefined : this.fills.get(customerId);
    const running = shared?.overtaken ? undefined : shared;
    if (running) return withDeadline('neo4j', budgetMs, () => running.promise);
    const startedAt = Date.now();
    const startedCount = this.eventCount;
    const fill = { customerId, overtaken: false } as Fill;
    const read = this.breaker
      .execute(() =>
        withDeadline('neo4j', Math.max(budgetMs, this.fillDeadlineMs), () =>
          this.readSnapshot(this.graph, customerId, { leader, ...(tokenDeviceId ? { tokenDeviceId } : {}) }),
        ),
      )
      .catch((err: unknown) => {
        if (err instanceof BrokenCircuitError)
          throw new DependencyUnavailableError('neo4j', 'read breaker open after repeated Neo4j failures', 1);
        throw err;
      });
    fill.promise = read.then(
      (snap) => {
        if (this.fills.get(customerId) === fill) this.fills.delete(customerId);
        this.inFlight.delete(fill);
        if (!fill.overtaken && snap.unconfirmed !== true && this.settings.enabled) {
          // What was read for this caller's token only is not the customer's state; the cache keeps a
          // copy of its own (it updates entries in place, and the answer is the caller's).
          const { merged_seq: _mergedSeq, token_device: _tokenDevice, ...state } = structuredClone(snap);
          if (state.merged_into === undefined) this.keep(customerId, state, startedAt, startedCount);
          else this.keepFollowed(customerId, state, startedAt, startedCount);
        }
        return snap;
      },
      (err: unknown) => {
        if (this.fills.get(customerId) === fill) this.fills.delete(customerId);
        this.inFlight.delete(fill);
        throw err;
      },
    );
    if (!own) this.fills.set(customerId, fill);
    this.inFlight.add(fill);
    return withDeadline('neo4j', budgetMs, () => fill.promise);
  }

  private keep(customerId: string, snap: CustomerSnapshot, filledAt: number, startedCount: number): void {
    // Before the tail's first poll, events between this read and the tail's start are never read.
    if (this.tailOrigin === 0 || filledAt < this.tailOrigin) return;
    // An event of the customer came while the read ran: it may be older than the event.
    if ((this.movedAt.get(customerId) ?? 0) > startedCount) return;
    // An event already showed a later sequence: this read is behind it.
    if ((this.seenSeq.get(customerId) ?? 0) > snap.seq) return;
    if (snap.devices.some((d) => (this.seenDeviceSeq.get(d.device_id) ?? 0) > d.seq)) return;
    const known = this.lru.peek(customerId);
    // A slower fill must not replace what a newer one (or an event) already brought.
    if (known && known.snap.seq > snap.seq) return;
    this.lru.set(customerId, { snap, filledAt });
    if (!this.lru.has(customerId)) return; // larger than the whole cache
    for (const d of snap.devices) {
      let customers = this.byDevice.get(d.device_id);
      if (!customers) this.byDevice.set(d.device_id, (customers = new Set()));
      customers.add(customerId);
    }
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

  private unindex(customerId: string, snap: CustomerSnapshot): void {
    for (const d of snap.devices) {
      const customers = this.byDevice.get(d.device_id);
      if (!customers) continue;
      customers.delete(customerId);
      if (customers.size === 0) this.byDevice.delete(d.device_id);
    }
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
    for (const fill of this.inFlight) if (fill.customerId === customerId) fill.overtaken = true;
    this.movedAt.set(customerId, ++this.eventCount);
    // A merged id's own log moves only when its merge is undone (or it is erased): where it leads may change.
    this.aliases.delete(customerId);
    if (ev.customer_seq !== null && ev.customer_seq > (this.seenSeq.get(customerId) ?? 0))
      this.seenSeq.set(customerId, ev.customer_seq);
    const entry = this.lru.peek(customerId);
    if (!entry) return;
    const snap = entry.snap;
    if (ev.customer_seq !== null && ev.customer_seq <= snap.seq) return; // already reflected
    if (ev.customer_seq === snap.seq + 1) {
      if (
        NEUTRAL.has(ev.type) ||
        (ev.type === 'CustomerProfileUpdated' && applyProfile(snap, ev.payload)) ||
        // Another login from (or payment on) a device the snapshot holds: only its count moved.
        (ev.type === 'DeviceLinked' && snap.devices.some((d) => d.device_id === ev.payload?.device_id))
      ) {
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
    const seen = Math.max(
      this.seenDeviceSeq.get(device.device_id) ?? 0,
      this.forgottenDeviceSeq[slotOf(device.device_id)] ?? 0,
    );
    if (seen > device.seq) return false;
    const snap: CustomerSnapshot = { ...entry.snap, seq, devices: [...entry.snap.devices, device] };
    this.lru.set(customerId, { snap, filledAt: entry.filledAt });
    if (!this.lru.has(customerId)) {
      // Larger than the whole cache: gone, as a fill would be.
      this.stats.invalidated[source]++;
      return true;
    }
    this.stats.applied++;
    for (const d of snap.devices) {
      let customers = this.byDevice.get(d.device_id);
      if (!customers) this.byDevice.set(d.device_id, (customers = new Set()));
      customers.add(customerId);
    }
    return true;
  }

  private applyDeviceEvent(deviceId: string, ev: CacheEvent, source: 'local' | 'tail'): void {
    // A fill in flight may hold the device without the index knowing yet.
    for (const fill of this.inFlight) fill.overtaken = true;
    const seq = ev.device_seq ?? null;
    if (seq !== null && seq > (this.seenDeviceSeq.get(deviceId) ?? 0)) this.seenDeviceSeq.set(deviceId, seq);
    const customers = this.byDevice.get(deviceId);
    if (!customers) return;
    const to = ev.payload?.to;
    for (const customerId of [...customers]) {
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

/**
 * A read's consistency token that even the leader's answer does not reach: a token of another
 * customer, ahead of every write of this one, or made up (409, FAILED_PRECONDITION). One text for
 * every case, so that a token tells nothing about the customer; `mergedInto` lets the route refuse
 * a merged record's own caller first, as it refuses any answer about its survivor.
 */
export class TokenNotMetError extends InvalidStateError {
  constructor(readonly mergedInto: string | undefined) {
    super(
      'x-persona-consistency (min_version): the data does not reach this consistency token; pass the ' +
        'token a write about this customer answered',
    );
    this.name = 'TokenNotMetError';
  }
}

/** What a read of `askedId` answers from a survivor's snapshot: the same data, with `merged_into` when it followed. */
function answerFor(askedId: string, snap: CustomerSnapshot): CustomerSnapshot {
  return askedId === snap.customer_id ? snap : { ...snap, merged_into: snap.customer_id };
}

/** Slots of the forgotten device sequences' floor (512 KB). */
const FORGOTTEN_SLOTS = 65_536;

/** A device id's slot in the floor (FNV-1a). */
function slotOf(deviceId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) h = Math.imul(h ^ deviceId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % FORGOTTEN_SLOTS;
}

/** A trust score: a number in [0, 1]. */
const isTrust = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1;

/** DeviceLinked's cache hint as a snapshot's device, or null when the event has none or it is malformed. */
function linkedDeviceOf(deviceId: unknown, hint: unknown): SnapshotDevice | null {
  if (typeof deviceId !== 'string' || typeof hint !== 'object' || hint === null) return null;
  const { seq, fingerprint, ceiling, earned } = hint as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0 || typeof fingerprint !== 'string') return null;
  if (!isTrust(ceiling) || !isTrust(earned)) return null;
  return {
    device_id: deviceId,
    fingerprint,
    trust_score: trustOnDevice(earned, ceiling),
    earned,
    ceiling,
    seq: seq as number,
  };
}

/**
 * Applies a CustomerProfileUpdated to a snapshot when everything it changes is held there as an
 * absolute value; false (the entry is then dropped) when it changes anything else.
 */
function applyProfile(snap: CustomerSnapshot, payload: Record<string, unknown> | null | undefined): boolean {
  if (!payload) return false;
  const changes = (payload.changes ?? {}) as Record<string, { to?: unknown } | undefined>;
  for (const key of Object.keys(changes)) if (!PROFILE_FIELDS.has(key)) return false;
  // The major-unit values ride beside the exact minor ones; one without the other is not applied.
  if ((changes.ltv && !changes.ltv_minor) || (changes.predicted_ltv && !changes.predicted_ltv_minor)) return false;
  const used = (payload.payment_methods_used ?? []) as { payment_method_id?: unknown; last_used?: unknown }[];
  if (!Array.isArray(used)) return false;
  const ltv = changes.ltv_minor?.to;
  const predicted = changes.predicted_ltv_minor?.to;
  const segment = changes.segment?.to;
  if (changes.ltv_minor && typeof ltv !== 'number') return false;
  if (changes.predicted_ltv_minor && predicted !== null && typeof predicted !== 'number') return false;
  if (changes.segment && typeof segment !== 'string') return false;
  if (typeof ltv === 'number') snap.ltvMinor = ltv;
  if (changes.predicted_ltv_minor) snap.predictedLtvMinor = predicted as number | null;
  if (typeof segment === 'string') snap.segment = segment;
  for (const u of used) {
    const method = snap.methods.find((m) => m.id === u.payment_method_id);
    // A method the snapshot does not hold is not active: its use changes nothing served.
    if (method && typeof u.last_used === 'string') method.last_used = u.last_used;
  }
  return true;
}
