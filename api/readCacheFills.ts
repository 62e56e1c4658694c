/**
 * The read cache's reads of Neo4j (api/readCache.ts): one snapshot read per customer at a time,
 * shared by the callers that come while it runs, each waiting at most its own budget, through a
 * breaker that fails reads fast while Neo4j keeps failing. An event marks the reads it may have
 * overtaken (`overtake`): they are answered, and the cache does not keep them.
 */
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { readCustomerSnapshot, CustomerSnapshot } from '../graph/context';
import type { Graph } from '../graph/graph';
import type { Logger } from '../runtime/logger';
import { DependencyUnavailableError, unavailableDependency, withDeadline } from '../runtime/dependencies';

/** A read of one customer's snapshot under way. */
export interface Fill {
  customerId: string;
  promise: Promise<CustomerSnapshot>;
  /** An event about the customer arrived while the read ran: answer it, do not keep it. */
  overtaken: boolean;
  /** When it began (Date.now()). */
  startedAt: number;
  /** The cache's count of customer events when it began. */
  startedCount: number;
}

export interface FillOptions {
  /** Consecutive failed reads that open the breaker. */
  breakerFailures: number;
  /** How long the breaker stays open before one read probes Neo4j again. */
  breakerHalfOpenMs: number;
  /** The least a read of Neo4j is given, whatever its first caller's budget. */
  fillDeadlineMs: number;
  /** How a snapshot is read from Neo4j (a unit test's stand-in replaces it). */
  readSnapshot: typeof readCustomerSnapshot;
  /** Each answer as it arrives, before any caller has it: whether to keep it is the cache's. */
  onAnswer: (fill: Fill, snap: CustomerSnapshot) => void;
}

export class SnapshotFills {
  /** The fill each customer's reads share (a leader read runs on its own, in `inFlight` only). */
  private readonly shared = new Map<string, Fill>();
  /** Every fill under way, shared or not: an event marks those of its customer overtaken. */
  private readonly inFlight = new Set<Fill>();
  private readonly breaker: CircuitBreakerPolicy;

  constructor(
    private readonly graph: Graph,
    private readonly options: FillOptions,
    logger: Logger,
  ) {
    this.breaker = circuitBreaker(
      handleWhen((err) => unavailableDependency(err) !== undefined),
      { halfOpenAfter: options.breakerHalfOpenMs, breaker: new ConsecutiveBreaker(options.breakerFailures) },
    );
    this.breaker.onBreak(() => logger.warn('read breaker open: Neo4j is failing reads; serving from the cache'));
    this.breaker.onReset(() => logger.info('read breaker closed: Neo4j answers reads again'));
  }

  /** closed, open (reads fail fast or are served stale) or half-open (one probe is let through). */
  get breakerState(): 'closed' | 'open' | 'half-open' {
    const s = this.breaker.state;
    return s === CircuitState.Closed ? 'closed' : s === CircuitState.HalfOpen ? 'half-open' : 'open';
  }

  /** Marks overtaken the reads of `customerId` under way, or every one (a device's event, a reset). */
  overtake(customerId?: string): void {
    for (const fill of this.inFlight)
      if (customerId === undefined || fill.customerId === customerId) fill.overtaken = true;
  }

  /**
   * Reads the snapshot from Neo4j: one read per customer at a time (a `leader` read, for a
   * consistency token the cache does not reach, runs on its own), each caller waiting at most its
   * own budget, through the breaker. `startedCount` is noted on a new read.
   */
  read(
    customerId: string,
    budgetMs: number,
    leader: boolean,
    tokenDeviceId: string | undefined,
    startedCount: number,
  ): Promise<CustomerSnapshot> {
    // A fill an event overtook is not joined: its answer may be older than the event.
    const own = leader || tokenDeviceId !== undefined;
    const shared = own ? undefined : this.shared.get(customerId);
    const running = shared?.overtaken ? undefined : shared;
    if (running) return withDeadline('neo4j', budgetMs, () => running.promise);
    const fill = { customerId, overtaken: false, startedAt: Date.now(), startedCount } as Fill;
    const read = this.breaker
      .execute(() =>
        withDeadline('neo4j', Math.max(budgetMs, this.options.fillDeadlineMs), () =>
          this.options.readSnapshot(this.graph, customerId, { leader, ...(tokenDeviceId ? { tokenDeviceId } : {}) }),
        ),
      )
      .catch((err: unknown) => {
        if (err instanceof BrokenCircuitError)
          throw new DependencyUnavailableError('neo4j', 'read breaker open after repeated Neo4j failures', 1);
        throw err;
      });
    const done = () => {
      if (this.shared.get(customerId) === fill) this.shared.delete(customerId);
      this.inFlight.delete(fill);
    };
    fill.promise = read.then(
      (snap) => {
        done();
        this.options.onAnswer(fill, snap);
        return snap;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
    if (!own) this.shared.set(customerId, fill);
    this.inFlight.add(fill);
    return withDeadline('neo4j', budgetMs, () => fill.promise);
  }
}
