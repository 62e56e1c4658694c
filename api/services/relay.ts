/**
 * The event relay from ops' side: its state, read from its checkpoint in the graph (so it answers
 * while Temporal is down, and after the relay was terminated), and retrying what is parked.
 * These take the graph and the Temporal client alone (not the api's deps), so the deps can build
 * the relay's gauges from them without an import circle.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateStage, type Client } from '@temporalio/client';
import { InvalidInputError, NotFoundError } from '../../graph/errors';
import { feedBacklog } from '../../graph/feed';
import type { Graph } from '../../graph/graph';
import { listParkedEvents, readRelayCheckpoint, type ParkedEvent, type RelayBlock } from '../../graph/relay';
import { EVENT_RELAY_WORKFLOW_ID, retryParkedUpdate } from '../../temporal/eventRelay';
import { kafkaCheckpointId } from '../../temporal/kafkaPublisher';
import { orNotFound } from './refusals';

/** How many parked events the status lists (oldest first); `parked_count` has them all. */
export const PARKED_LISTED = 100;

export interface EventRelayView {
  workflow_id: string;
  /** Whether the relay's workflow runs now (null: Temporal did not answer in time). */
  running: boolean | null;
  /** Where the relay resumes in the feed (null: from its beginning). */
  cursor: string | null;
  delivered: number;
  parked_count: number;
  /** The oldest parked events (up to PARKED_LISTED), with the subscriber's answer. */
  parked: ParkedEvent[];
  /** The event the relay waits on while the subscriber answers "not now" (null: not blocked). */
  blocked: RelayBlock | null;
  last_delivery_at: string | null;
  updated_at: string | null;
}

async function isRunning(client: Client, timeoutMs: number): Promise<boolean | null> {
  try {
    const d = await client.connection.withDeadline(Date.now() + timeoutMs, () =>
      client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID).describe(),
    );
    return d.status.name === 'RUNNING';
  } catch (err) {
    return err instanceof WorkflowNotFoundError ? false : null;
  }
}

export async function relayStatus(graph: Graph, client: Client): Promise<EventRelayView> {
  const [checkpoint, parked, running] = await Promise.all([
    readRelayCheckpoint(graph, EVENT_RELAY_WORKFLOW_ID),
    listParkedEvents(graph, EVENT_RELAY_WORKFLOW_ID, { limit: PARKED_LISTED }),
    isRunning(client, 2000),
  ]);
  if (running === false && checkpoint.updated_at === null)
    throw new NotFoundError('EventRelay', EVENT_RELAY_WORKFLOW_ID);
  return {
    workflow_id: EVENT_RELAY_WORKFLOW_ID,
    running,
    cursor: checkpoint.cursor,
    delivered: checkpoint.delivered,
    parked_count: checkpoint.parked,
    parked,
    blocked: checkpoint.blocked,
    last_delivery_at: checkpoint.last_delivery_at,
    updated_at: checkpoint.updated_at,
  };
}

/**
 * Queues a retry of parked events (all, or one) with the relay's Update, and answers once the
 * relay has accepted it.
 */
export async function retryParked(client: Client, eventId: string | undefined): Promise<{ workflow_id: string }> {
  const handle = client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID);
  const request = eventId ? { event_id: eventId } : {};
  await orNotFound('EventRelay', EVENT_RELAY_WORKFLOW_ID, () =>
    handle
      .startUpdate(retryParkedUpdate, { args: [request], waitForStage: WorkflowUpdateStage.ACCEPTED })
      .catch((err: unknown) => {
        if (err instanceof WorkflowUpdateFailedError) {
          const why = err.cause?.message ?? err.message;
          if (/event_id/.test(why)) throw new InvalidInputError('event_id', 'must be the id of a parked event');
        }
        throw err;
      }),
  );
  return { workflow_id: EVENT_RELAY_WORKFLOW_ID };
}

/** `read`'s answer, or null when it fails or does not come within `timeoutMs` (a scrape never waits longer). */
async function withinOrNull<T>(read: () => Promise<T | null>, timeoutMs: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  try {
    return await Promise.race([read(), timeout]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The relay's gauges now, from its graph checkpoint: parked events, and for how long it has been
 * blocked on one event (0 when it is not). Null when it never ran or the graph does not answer
 * within `timeoutMs`.
 */
export function relayGauges(
  graph: Graph,
  timeoutMs = 2000,
): Promise<{ parked: number; blocked_seconds: number } | null> {
  return withinOrNull(async () => {
    const c = await readRelayCheckpoint(graph, EVENT_RELAY_WORKFLOW_ID);
    if (c.updated_at === null) return null;
    return {
      parked: c.parked,
      blocked_seconds: c.blocked ? Math.max(0, (Date.now() - Date.parse(c.blocked.since)) / 1000) : 0,
    };
  }, timeoutMs);
}

/** Events counted behind the Kafka publisher at most (a scrape stays cheap on a huge backlog). */
export const PUBLISHER_BACKLOG_CAP = 100_000;

/**
 * The Kafka publisher's lag now, from its graph checkpoint: the events after it (up to
 * PUBLISHER_BACKLOG_CAP) and the age of the oldest of them (0 when it is at the end of the log).
 * Null when the publisher never ran or the graph does not answer within `timeoutMs`.
 */
export function publisherGauges(
  graph: Graph,
  topic: string,
  timeoutMs = 2000,
): Promise<{ behind_events: number; behind_seconds: number } | null> {
  return withinOrNull(async () => {
    const c = await readRelayCheckpoint(graph, kafkaCheckpointId(topic));
    if (c.updated_at === null) return null;
    const backlog = await feedBacklog(graph, { after: c.cursor, cap: PUBLISHER_BACKLOG_CAP });
    return {
      behind_events: backlog.events,
      behind_seconds: backlog.oldest_at ? Math.max(0, (Date.now() - Date.parse(backlog.oldest_at)) / 1000) : 0,
    };
  }, timeoutMs);
}
