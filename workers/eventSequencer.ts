/**
 * The sequencer's loop (every worker runs one; the lease holder numbers, graph/sequencer.ts): a round
 * every PERSONA_EVENT_SEQUENCER_POLL_MS (at once after a full one), and after each round one
 * message on the invalidation topic with the numbered events (as much of each as a cache needs) and
 * where the numbering stands, which every api replica reads (api/invalidations.ts). With nothing
 * numbered, a message goes at most every PERSONA_EVENT_SEQUENCER_TICK_MS: the replicas' sign that
 * the log is drained and the sequencer alive.
 *
 * The numbering never waits for Kafka: one send at a time, and what a round numbers while a send is
 * under way goes in the next. A send that fails is not sent again: the next message's `through`
 * tells every replica of the hole, and each reads it from Neo4j.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KafkaProducer } from '../clients/kafka';
import type { Graph } from '../graph/graph';
import type { KeyRing } from '../config/keyRing';
import {
  MAX_EVENTS_PER_MESSAGE,
  minimalPayload,
  sealInvalidation,
  type InvalidationMessage,
} from '../graph/invalidationMessage';
import { sequenceEvents, type SequencedEvent, type SequencerState } from '../graph/sequencer';
import type { Logger } from '../runtime/logger';

export interface SequencerSettings {
  pollMs: number;
  tickMs: number;
  /** Most events one round numbers. */
  batch: number;
  /**
   * Where the invalidations go, sealed under the payload keys (graph/invalidationMessage.ts); none:
   * numbering only, for readers that poll the graph.
   */
  kafka?: { producer: KafkaProducer; topic: string; keys: KeyRing };
}

/** Most events one send carries (in messages of MAX_EVENTS_PER_MESSAGE); past it the replicas read a hole. */
const MAX_EVENTS_PER_SEND = 10_000;

/** How long a sequencer's lease lasts; the others look twice a second whether it lapsed. */
const LEASE_MS = 3_000;
const STANDBY_MS = 500;

export interface SequencerStats {
  rounds: number;
  /** Rounds in which another sequencer held the lease. */
  standby: number;
  numbered: number;
  sent: number;
  failures: number;
}

export class EventSequencer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private running: Promise<void> = Promise.resolve();
  private pending: SequencedEvent[] = [];
  private state: SequencerState | null = null;
  private sending: Promise<void> | null = null;
  private lastSent = 0;
  private lastWarned = 0;
  readonly stats: SequencerStats = { rounds: 0, standby: 0, numbered: 0, sent: 0, failures: 0 };
  /** This sequencer's name in the lease. */
  private readonly me = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  constructor(
    private readonly graph: Graph,
    private readonly settings: SequencerSettings,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops after the round under way, and waits for its send. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.sending;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round();
    }, ms);
    this.timer.unref();
  }

  /** One round: numbers what waits, hands it to the send. Public for tests. */
  async round(): Promise<void> {
    let full = false;
    let standby = false;
    try {
      const batch = await sequenceEvents(this.graph, this.settings.batch, { me: this.me, ms: LEASE_MS });
      if (batch.standby) {
        this.stats.standby++;
        standby = true;
        this.schedule(STANDBY_MS);
        return;
      }
      this.stats.rounds++;
      this.stats.numbered += batch.events.length;
      full = batch.events.length >= this.settings.batch;
      this.pending.push(...batch.events);
      this.state = { epoch: batch.epoch, through: batch.through, drainedAt: batch.drainedAt };
      this.flush();
    } catch (err) {
      this.warn(err, 'the event sequencer cannot number events: caches serve no hits until it can');
    }
    if (!standby) this.schedule(full ? 0 : this.settings.pollMs);
  }

  private flush(): void {
    const kafka = this.settings.kafka;
    if (!kafka || this.sending || !this.state) return;
    if (this.pending.length === 0 && Date.now() - this.lastSent < this.settings.tickMs) return;
    // In messages of at most MAX_EVENTS_PER_MESSAGE, in order, each saying how far it goes; the
    // last says where the numbering stands. Past MAX_EVENTS_PER_SEND the events stay out and the
    // replicas read them as a hole.
    const { epoch, through, drainedAt } = this.state;
    const events = (this.pending.length > MAX_EVENTS_PER_SEND ? [] : this.pending).map((e) => ({
      ...e,
      payload: minimalPayload(e.type, e.payload),
    }));
    const messages: InvalidationMessage[] = [];
    for (let i = 0; i + MAX_EVENTS_PER_MESSAGE < events.length; i += MAX_EVENTS_PER_MESSAGE) {
      const part = events.slice(i, i + MAX_EVENTS_PER_MESSAGE);
      messages.push({ epoch, through: part.at(-1)?.log_seq ?? through, drained_at: null, events: part });
    }
    messages.push({
      epoch,
      through,
      drained_at: drainedAt,
      events: events.slice(messages.length * MAX_EVENTS_PER_MESSAGE),
    });
    this.pending = [];
    this.lastSent = Date.now();
    this.sending = kafka.producer
      .send({
        messages: messages.map((m) => ({ topic: kafka.topic, key: 'persona', value: sealInvalidation(kafka.keys, m) })),
      })
      .then(
        () => {
          this.stats.sent++;
        },
        (err: unknown) => this.warn(err, 'the event sequencer could not send invalidations: replicas read the hole'),
      )
      .finally(() => {
        this.sending = null;
        if (this.pending.length > 0 && !this.stopped) this.flush();
      });
  }

  private warn(err: unknown, text: string): void {
    this.stats.failures++;
    if (Date.now() - this.lastWarned < 60_000) return;
    this.lastWarned = Date.now();
    this.logger.warn({ err }, `${text} (said once a minute)`);
  }
}
