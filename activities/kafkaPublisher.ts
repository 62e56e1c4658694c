/**
 * The Kafka publisher's activity: publishes stretches of the change feed to the events topic,
 * page by page, from the graph checkpoint, and moves the checkpoint after each page Kafka has
 * acknowledged (every in-sync replica). At least once: a worker that dies between the produce and
 * the checkpoint publishes that page again, and consumers drop what they saw by the `event-id`
 * header. In order per customer: the message key is the customer id (a device-level event's is
 * its device id), a page goes out as one produce request of the idempotent producer, and a page
 * is sent only after the one before it was acknowledged. Each customer's payload is sealed under
 * the customer's key (graph/eventCipher.ts), so an erasure reaches what the topic retains.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { KAFKA_HEADERS, type KafkaProducer } from '../clients/kafka';
import { sealEvent } from '../graph/eventCipher';
import { publishedPayload } from '../graph/eventSchemas';
import type { HistoryKeyStore } from '../graph/historyKeys';
import type { PersonaEvent } from '../graph/events';
import { decodeCursor, encodeCursor } from '../graph/feed';
import { numberAtPosition, readNumberedEvents, type NumberedEvent } from '../graph/sequencer';
import type { Graph } from '../graph/graph';
import { ensureRelayCheckpoint, readRelayCheckpoint, recordRelayProgress } from '../graph/relay';
import type { PublishRequest, PublishResult } from '../temporal/kafkaPublisher';

/** The partition key: one customer's events (or one device's) stay in order on one partition. */
export function eventKey(event: PersonaEvent): string {
  return event.customer_id ?? event.device_id ?? event.id;
}

/** The running activity's context, or null when called directly (a test). */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/**
 * The producer and the keys a publish to `topic` needs, or the failure that says why this worker
 * cannot publish there.
 */
function publisherFor(
  deps: {
    kafka?: KafkaProducer | undefined;
    eventKeys?: HistoryKeyStore | undefined;
    publishesTo?: ((topic: string) => boolean) | undefined;
  },
  topic: string,
): { kafka: KafkaProducer; eventKeys: HistoryKeyStore } {
  const { kafka, eventKeys, publishesTo } = deps;
  if (!kafka)
    throw ApplicationFailure.create({
      type: 'KafkaOff',
      message: 'this worker has no KAFKA_BROKERS: it cannot publish (set it, or terminate the publisher)',
      nonRetryable: false,
    });
  // Where the feed goes is the worker's configuration: a publisher whose settings name another
  // topic fails the batch for good, and waits for a worker's start to bring its settings to the
  // configuration (the reconfigure Update), trying again every minute.
  if (!publishesTo?.(topic))
    throw ApplicationFailure.create({
      type: 'KafkaTopicNotConfigured',
      message:
        `this worker publishes the feed only to its own PERSONA_KAFKA_EVENTS_TOPIC, not to ${topic}: ` +
        "restart a worker with PERSONA_SCHEDULES=apply to bring the publisher's settings to the configuration",
      nonRetryable: true,
    });
  // Never a customer's payload in clear on a log erasure cannot reach.
  if (!eventKeys)
    throw ApplicationFailure.create({
      type: 'KafkaKeysOff',
      message: "this worker has no customers' keys to seal payloads with: it cannot publish",
      nonRetryable: true,
    });
  return { kafka, eventKeys };
}

/**
 * Sends one page to `topic` as one produce request, each payload sealed under its customer's key;
 * `heartbeat` beats while the send waits. Kafka not taking the page fails retryably (KafkaUnavailable).
 */
async function sendPage(
  { kafka, eventKeys }: { kafka: KafkaProducer; eventKeys: HistoryKeyStore },
  topic: string,
  entries: NumberedEvent[],
  heartbeat: () => void,
): Promise<void> {
  // Sealed before the page is sent: a key made here (a customer's first) is in the graph first.
  const values = await Promise.all(
    entries.map(async ({ event }) =>
      JSON.stringify(await sealEvent(eventKeys, event, publishedPayload(event.type, event.payload))),
    ),
  );
  // While the send waits (on a broker that does not answer, with the client's retries), the
  // heartbeat goes on: the activity is not taken over by another worker because of it.
  const beat = setInterval(heartbeat, 5_000);
  try {
    // One page in flight per producer (clients/kafka.ts): a cancelled or timed-out attempt
    // still finishing its page goes before its retry's, never beside it.
    await kafka.send({
      messages: entries.map(({ event }, i) => ({
        topic,
        key: eventKey(event),
        value: values[i] as string,
        headers: { [KAFKA_HEADERS.eventId]: event.id, [KAFKA_HEADERS.eventType]: event.type },
      })),
    });
  } catch (err) {
    throw ApplicationFailure.create({
      type: 'KafkaUnavailable',
      message:
        `Kafka did not take ${entries.length} events after the checkpoint (${(err as Error).message}); ` +
        'the publisher sends them again with backoff, and nothing after them before',
      cause: err as Error,
    });
  } finally {
    clearInterval(beat);
  }
}

export function createKafkaPublisherActivities({
  graph,
  kafka,
  publishesTo,
  eventKeys,
}: {
  graph: Graph;
  /** The customers' history keys: each customer's payloads are sealed under theirs (graph/eventCipher.ts). */
  eventKeys?: HistoryKeyStore | undefined;
  kafka?: KafkaProducer | undefined;
  /** The topics this worker publishes the feed to: its own PERSONA_KAFKA_EVENTS_TOPIC (none without it). */
  publishesTo?: ((topic: string) => boolean) | undefined;
}) {
  return {
    async publishEvents(req: PublishRequest): Promise<PublishResult> {
      const publisher = publisherFor({ kafka, eventKeys, publishesTo }, req.topic);
      // Held back from now on, even while Kafka does not take the first page.
      await ensureRelayCheckpoint(graph, req.checkpoint_id);
      const ctx = activityContext();
      const started = Date.now();
      let published = 0;
      let pages = 0;
      for (;;) {
        const checkpoint = await readRelayCheckpoint(graph, req.checkpoint_id);
        const position = checkpoint.cursor ? decodeCursor(checkpoint.cursor, 'cursor') : null;
        // By number, in the order the events committed (graph/sequencer.ts): however long a
        // transaction stayed open, its events are numbered when it commits, after those published.
        const after = position === null ? 0 : (position.n ?? (await numberAtPosition(graph, position)));
        const read = await readNumberedEvents(graph, after + 1, req.page_size);
        const entries = read.events;
        const last = entries.at(-1);
        if (read.coveredThrough <= after) return { published, pages, caught_up: true };
        if (!last) {
          // Only pruned numbers: passed, where the checkpoint was in time.
          await recordRelayProgress(graph, req.checkpoint_id, {
            cursor: encodeCursor({ ...(position ?? { t: '1970-01-01T00:00Z', s: 0, id: '' }), n: read.coveredThrough }),
            delivered: 0,
            parked: [],
            blocked: null,
          });
          continue;
        }
        await sendPage(publisher, req.topic, entries, () => ctx?.heartbeat({ published, pages }));
        await recordRelayProgress(graph, req.checkpoint_id, {
          cursor: encodeCursor({ t: last.at, s: last.seq, id: last.event.id, n: read.coveredThrough }),
          delivered: entries.length,
          parked: [],
          blocked: null,
        });
        published += entries.length;
        pages++;
        ctx?.heartbeat({ published, pages });
        if (entries.length < req.page_size) return { published, pages, caught_up: true };
        if (Date.now() - started >= req.budget_ms || ctx?.cancellationSignal.aborted)
          return { published, pages, caught_up: false };
      }
    },
  };
}

export type KafkaPublisherActivities = ReturnType<typeof createKafkaPublisherActivities>;
