/**
 * Brings other processes' writes to the read cache (api/readCache.ts), in the event log's commit
 * order (graph/sequencer.ts): every numbered event, none skipped, however late its transaction
 * committed.
 *
 * Two sources, one rule:
 *   - with Kafka (KAFKA_BROKERS), the invalidation topic the sequencers write
 *     (workers/eventSequencer.ts): every api replica reads the same messages, and Neo4j is asked
 *     only for a hole — so the leader's load does not grow with replicas;
 *   - without Kafka, a poll of the log by number every PERSONA_READ_CACHE_POLL_MS (one process, a
 *     laptop: each replica would poll the leader).
 *
 * The rule: the tail knows the next number it needs. A message that starts past it, or says the
 * log is numbered past it (`through`), is a hole: the tail reads the hole from Neo4j by number
 * (`readSequenced`) before it goes on, so an event whose message was lost (a sequencer that died
 * between its commit and its send, two sequencers' sends crossing) is read, never passed. A message
 * behind it was seen. A hole wider than PERSONA_READ_CACHE_MAX_GAP (a replica cut off from Kafka
 * for long) empties the cache instead: cheaper than reading it. A new epoch (a restore from a
 * backup, numbered again from the backup's) empties it too.
 *
 * The cache serves hits only while the log was lately known drained (`drained_at`: nothing committed
 * was waiting for a number) and the tail has every number up to then, so a tail or sequencer that
 * stops turns hits into reads within PERSONA_READ_CACHE_FRESH_MS.
 */
import { randomUUID } from 'node:crypto';
import {
  Consumer,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  stringDeserializers,
  type Message,
  type MessagesStream,
} from '@platformatic/kafka';
import { closeConsumer, kafkaConnection, type KafkaConnectionSettings } from '../clients/kafka';
import type { Graph } from '../graph/graph';
import { openInvalidation, type InvalidationMessage } from '../graph/invalidationMessage';
import { readSequenced, type SequencedRead } from '../graph/sequencer';
import type { KeyRing } from '../config/keyRing';
import type { Logger } from '../runtime/logger';
import type { ReadCache } from './readCache';

export interface InvalidationSettings {
  /** A hole wider than this empties the cache instead of being read. */
  maxGap: number;
  /** Most events one read of a hole returns; a wider hole is read page by page. */
  pageSize: number;
}

export interface InvalidationStats {
  messages: number;
  /** Holes read from Neo4j, and the events they held. */
  holes: number;
  holeEvents: number;
  /** Times the cache was emptied (a hole too wide, or the log numbered back). */
  resets: number;
  /** Messages dropped: not sealed under this deployment's payload keys, or not a message. */
  refused: number;
  failures: number;
}

export class InvalidationTail {
  /** The next number the tail needs; null before its first message (or poll). */
  private next: number | null = null;
  private epoch = 0;
  /** One message (or poll) at a time, in order. */
  private turn: Promise<unknown> = Promise.resolve();
  readonly stats: InvalidationStats = { messages: 0, holes: 0, holeEvents: 0, resets: 0, refused: 0, failures: 0 };

  constructor(
    graph: Graph,
    private readonly cache: Pick<ReadCache, 'apply' | 'polled' | 'reset'>,
    private readonly settings: InvalidationSettings,
    private readonly logger: Logger,
    /** How numbered events are read from Neo4j (a unit test's log replaces it). */
    private readonly read: (from: number, to: number, limit: number) => Promise<SequencedRead> = (from, to, limit) =>
      readSequenced(graph, from, to, limit),
  ) {}

  /** The next number the tail needs (null: not started). */
  get position(): number | null {
    return this.next;
  }

  /** Takes one message: in order after every message before it. */
  receive(message: InvalidationMessage): Promise<void> {
    return this.inTurn(() => this.take(message));
  }

  /** Without Kafka: reads the log by number from the graph, as if the sequencer had sent it. */
  poll(): Promise<void> {
    return this.inTurn(async () => {
      if (this.next === null) {
        const placedAt = Date.now();
        const { state } = await this.read(1, 0, 1);
        this.place(state.through, state.epoch, placedAt);
        return;
      }
      const read = await this.read(this.next, Number.MAX_SAFE_INTEGER, this.settings.pageSize);
      const { epoch, through, drainedAt } = read.state;
      await this.take({ epoch, through, drained_at: drainedAt, events: read.events });
    });
  }

  /** Runs `work` after everything taken before it, whether that failed or not. */
  private inTurn(work: () => Promise<void>): Promise<void> {
    const mine = this.turn.catch(() => undefined).then(work);
    this.turn = mine;
    return mine;
  }

  private async take(m: InvalidationMessage): Promise<void> {
    this.stats.messages++;
    if (this.next === null) {
      this.place(m.through, m.epoch, Date.now());
      return;
    }
    if (m.epoch !== this.epoch) {
      // A message of the epoch before the restore, sent late, says nothing of this one.
      if (m.epoch < this.epoch) return;
      this.epoch = m.epoch;
      this.resetTo(m.through + 1, `the graph was restored (epoch ${m.epoch}): the log is numbered again`);
      return;
    }
    // A message behind the tail (two sequencers' sends crossed) brings nothing new; its drain
    // still holds: everything committed before it was numbered at or below what the tail has.
    for (const ev of m.events) {
      if (ev.log_seq < this.next) continue;
      if (ev.log_seq > this.next) await this.readHole(ev.log_seq - 1);
      this.cache.apply([ev], 'tail');
      this.next = ev.log_seq + 1;
    }
    if (m.through >= this.next) await this.readHole(m.through);
    if (m.drained_at !== null) this.cache.polled(Math.min(Date.now(), m.drained_at));
  }

  /**
   * The first message (or poll) places the tail after what it says is numbered. The cache is empty,
   * and it keeps no fill that began before now (ReadCache.polled: its origin): every write
   * committed after now is numbered by a round that ends later, after `through`, so the tail hears
   * of it. (Not the message's drain: a write committed after it may be numbered at or below `through`.)
   */
  private place(through: number, epoch: number, now: number): void {
    this.next = through + 1;
    this.epoch = epoch;
    this.cache.polled(now);
  }

  /** Reads the numbers from the next one through `to` from Neo4j and applies them. */
  private async readHole(to: number): Promise<void> {
    const from = this.next as number;
    if (to - from + 1 > this.settings.maxGap) {
      this.resetTo(to + 1, `${to - from + 1} events were missed (more than PERSONA_READ_CACHE_MAX_GAP)`);
      return;
    }
    this.stats.holes++;
    while ((this.next as number) <= to) {
      const read = await this.read(this.next as number, to, this.settings.pageSize);
      this.stats.holeEvents += read.events.length;
      if (read.events.length > 0) this.cache.apply(read.events, 'tail');
      // The leader has not numbered what a sequencer said it had: never passed, asked again.
      if (read.coveredThrough < (this.next as number))
        throw new Error(`the leader has no event numbered ${String(this.next)} yet`);
      this.next = read.coveredThrough + 1;
    }
  }

  private resetTo(next: number, why: string): void {
    this.stats.resets++;
    this.cache.reset();
    this.next = next;
    this.logger.warn({ next }, `read cache emptied: ${why}`);
  }
}

type Msg = Message<string, string, string, string>;
type Stream = MessagesStream<string, string, string, string>;

export interface FeedSettings {
  /**
   * The invalidation topic, its brokers, and the payload keys its messages are sealed under
   * (graph/invalidationMessage.ts); absent: the graph is polled.
   */
  kafka?: { connection: KafkaConnectionSettings; topic: string; keys: KeyRing };
  /** Without Kafka, how often the graph is polled. */
  pollMs: number;
}

/**
 * Feeds the tail: the invalidation topic read from its end, each replica on its own (a group of
 * one, nothing committed: a restarted replica starts empty), started again a second after it
 * failed or ended (the tail keeps its place, so what came meanwhile is read as a hole); or,
 * without Kafka, polls of the graph.
 */
export class InvalidationFeed {
  /** When start() was called (0: never): how long the tail has been behind before its first message. */
  startedAt = 0;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private consumer: { stream: Stream | null; consumer: Consumer<string, string, string, string> } | null = null;
  private lastWarned = 0;

  constructor(
    readonly tail: InvalidationTail,
    private readonly settings: FeedSettings,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.startedAt = Date.now();
    this.later(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.close();
  }

  private later(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.step(), ms);
    this.timer.unref();
  }

  private async step(): Promise<void> {
    const kafka = this.settings.kafka;
    if (!kafka) {
      await this.tail.poll().catch((err: unknown) => this.failed(err, 'cannot read the event log'));
      this.later(this.settings.pollMs);
      return;
    }
    try {
      await this.subscribe(kafka.connection, kafka.topic, kafka.keys);
    } catch (err) {
      this.failed(err, 'cannot read the invalidation topic');
      await this.close();
      this.later(1000);
    }
  }

  private async subscribe(connection: KafkaConnectionSettings, topic: string, keys: KeyRing): Promise<void> {
    const consumer = new Consumer({
      clientId: 'persona-api-cache',
      groupId: `persona-cache-${randomUUID()}`,
      ...kafkaConnection(connection),
      deserializers: stringDeserializers,
    });
    // A group operation that failed for good is reported by the consumer itself, not its stream:
    // unheard, that 'error' would end the api. The feed starts again a second later.
    consumer.on('error', (err: unknown) => {
      if (this.stopped || this.consumer?.consumer !== consumer) return;
      this.failed(err, 'the invalidation topic failed');
      void this.close().then(() => this.later(1000));
    });
    this.consumer = { consumer, stream: null };
    const stream = await consumer.consume({
      topics: [topic],
      autocommit: false,
      mode: MessagesStreamModes.LATEST,
      fallbackMode: MessagesStreamFallbackModes.LATEST,
      maxWaitTime: 100,
    });
    this.consumer.stream = stream;
    stream.on('data', (m: Msg) => {
      // Not a sequencer's of this deployment: dropped (a real one's `through` covers what it said).
      const message = openInvalidation(keys, m.value);
      if (!message) {
        this.tail.stats.refused++;
        return;
      }
      this.tail
        .receive(message)
        .catch((err: unknown) => this.failed(err, 'a hole in the invalidations could not be read'));
    });
    const restart = (err?: unknown) => {
      if (this.stopped || this.consumer?.stream !== stream) return;
      if (err) this.failed(err, 'the invalidation topic failed');
      void this.close().then(() => this.later(1000));
    };
    stream.on('error', restart);
    stream.on('close', () => restart());
  }

  private async close(): Promise<void> {
    const c = this.consumer;
    this.consumer = null;
    if (!c) return;
    await c.stream?.close().catch(() => undefined);
    await closeConsumer(c.consumer, this.logger);
  }

  private failed(err: unknown, what: string): void {
    this.tail.stats.failures++;
    if (Date.now() - this.lastWarned < 60_000) return;
    this.lastWarned = Date.now();
    this.logger.warn({ err }, `read cache: ${what}; hits are served only from Neo4j until it can (said once a minute)`);
  }
}
