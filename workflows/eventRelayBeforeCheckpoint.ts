/**
 * The event relay as it ran before its checkpoint moved to the graph: the cursor and the parked
 * events lived in the workflow's state, one activity per event. A run started then replays
 * through this code (the relay's `patched('relay-checkpoint-in-graph')` is false for it) until
 * it continues as new; the next run adopts its state into the graph and goes on as
 * workflows/eventRelay.ts. Remove this file, with `deprecatePatch`, once no such run is left
 * (and its recorded history with it).
 */
import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import type { EventActivities } from '../activities/events';
import type { PersonaEvent } from '../graph/events';
import {
  eventRelayStatusQuery,
  retryParkedSignal,
  type EventRelayInput,
  type EventRelayStateBeforeCheckpoint as EventRelayState,
} from '../temporal/eventRelay';
import { activitiesWithSummaries, graphWrite } from './activityOptions';
import { countEventRelayed } from './metrics';

const feed = activitiesWithSummaries<Pick<EventActivities, 'readEventFeed'>>(graphWrite, {
  readEventFeed: (req) =>
    `Read up to ${req.limit} events of the change feed ${req.after ? 'after the checkpoint' : 'from its beginning'}`,
});

export async function eventRelayBeforeCheckpoint(input: EventRelayInput): Promise<void> {
  const state: EventRelayState = input.state ?? {
    cursor: null,
    delivered: 0,
    parked: [],
    runs: 0,
    last_delivery_at: null,
  };
  state.runs++;
  let retry: { event_id?: string } | null = null;
  setHandler(eventRelayStatusQuery, () => state);
  setHandler(retryParkedSignal, (r) => {
    retry = r;
  });
  const delivery = {
    startToCloseTimeout: '30 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '5 minutes',
      maximumAttempts: input.max_attempts ?? 10,
    },
  } as const;
  const { deliverEvent } = activitiesWithSummaries<Pick<EventActivities, 'deliverEvent'>>(delivery, {
    deliverEvent: (req) =>
      `POST ${req.event.type} ${req.event.id} to ${new URL(req.webhook_url).host} (Idempotency-Key: the event id)`,
  });

  /** Delivers one event; the reason when it had to be given up for now, else null. */
  const deliver = async (event: PersonaEvent): Promise<string | null> => {
    try {
      await deliverEvent({ webhook_url: input.webhook_url, event });
      state.delivered++;
      countEventRelayed();
      state.last_delivery_at = new Date().toISOString();
      return null;
    } catch (err) {
      const cause =
        err instanceof ActivityFailure && err.cause
          ? err.cause.message
          : err instanceof Error
            ? err.message
            : String(err);
      return cause;
    }
  };

  const retryParked = async (): Promise<void> => {
    const request = retry;
    retry = null;
    if (!request) return;
    const still: typeof state.parked = [];
    for (const p of state.parked) {
      if (request.event_id && p.event.id !== request.event_id) {
        still.push(p);
        continue;
      }
      const error = await deliver(p.event);
      if (error) still.push({ ...p, error, attempts: p.attempts + (input.max_attempts ?? 10) });
      else log.info('parked event delivered', { eventId: p.event.id });
    }
    state.parked = still;
  };

  const report = (): void =>
    setCurrentDetails(
      `**Event relay** to ${new URL(input.webhook_url).host}: ` +
        `${state.delivered} delivered, ${state.parked.length} parked` +
        (state.parked.length ? ` (retry with the \`retryParked\` signal)` : '') +
        `; last delivery ${state.last_delivery_at ?? 'never'}`,
    );
  report();

  for (let page = 0; page < input.pages_per_run; page++) {
    await retryParked();
    const { data, next_cursor } = await feed.readEventFeed({
      after: state.cursor,
      limit: input.page_size,
      lag_ms: input.lag_ms,
    });
    for (const event of data) {
      const error = await deliver(event);
      if (error) {
        log.warn('event parked: the subscriber keeps failing it', { eventId: event.id, type: event.type, error });
        state.parked.push({ event, error, attempts: input.max_attempts ?? 10, parked_at: new Date().toISOString() });
      }
    }
    state.cursor = next_cursor;
    report();
    if (data.length === 0)
      await condition(() => retry !== null, input.poll_interval, {
        summary: `Nothing new in the feed: look again in ${input.poll_interval} (or at once on retryParked)`,
      });
  }
  await retryParked();
  await condition(allHandlersFinished);
  // The next run is the current relay, which adopts this state into the graph.
  await continueAsNew<(input: EventRelayInput) => Promise<void>>({ ...input, state });
}
