/**
 * Event relay — workflow id `persona-event-relay`, started by the worker when
 * PERSONA_EVENTS_WEBHOOK_URL is set. Delivers the change feed to the subscriber in order, a page
 * per activity (`relayPage`), from a checkpoint kept in the graph (graph/relay.ts): the cursor,
 * what was delivered, what the relay is blocked on, and the parked events. So the workflow's
 * own state stays a few counters whatever the backlog, and a relay terminated and started again
 * resumes where the graph says.
 *
 * A refusal for good (a 4xx other than 408/429) parks that event and the relay goes on; "not
 * now" (5xx, 408, 429, no answer) blocks the relay at that event, retried with backoff, so order
 * is never broken. `retryParkedEvents` (an Update; the `retryParked` signal too) queues a retry
 * of parked events, served between pages. The run continues as new after `pages_per_run` pages
 * or when Temporal suggests it, with every handler finished.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { EventActivities } from '../activities/events';
import {
  eventRelayStatusQuery,
  retryParkedSignal,
  retryParkedUpdate,
  type EventRelayInput,
  type EventRelayRunStatus,
  type RetryParkedRequest,
  type RetryParkedResult,
} from '../temporal/eventRelay';
import { activitiesWithSummaries, graphWriteUntilDone, subscriberDelivery } from './activityOptions';
import { eventRelayBeforeCheckpoint } from './eventRelayBeforeCheckpoint';
import { countEventRelayed } from './metrics';
import { autoUpgrade } from './versioning';

/** Runs from this version on keep their checkpoint in the graph and deliver a page per activity. */
export const RELAY_CHECKPOINT_IN_GRAPH = 'relay-checkpoint-in-graph';

interface QueuedRetry {
  id: number;
  request: RetryParkedRequest;
}

autoUpgrade(eventRelayWorkflow);
export async function eventRelayWorkflow(input: EventRelayInput): Promise<void> {
  if (!patched(RELAY_CHECKPOINT_IN_GRAPH)) return eventRelayBeforeCheckpoint(input);

  const checkpointId = input.checkpoint_id ?? workflowInfo().workflowId;
  const host = new URL(input.webhook_url).host;
  const { relayPage } = activitiesWithSummaries<Pick<EventActivities, 'relayPage'>>(subscriberDelivery, {
    relayPage: (req) =>
      `Deliver up to ${req.page_size} events after the checkpoint to ${host}, in order, and move the checkpoint`,
  });
  const { retryParkedEvents } = activitiesWithSummaries<Pick<EventActivities, 'retryParkedEvents'>>(
    { ...subscriberDelivery, retry: { ...subscriberDelivery.retry, maximumAttempts: 5 } },
    {
      retryParkedEvents: (req) =>
        req.event_id
          ? `Try the parked event ${req.event_id} again at ${host}`
          : `Try the oldest parked events again at ${host}`,
    },
  );
  const { adoptRelayState } = activitiesWithSummaries<Pick<EventActivities, 'adoptRelayState'>>(graphWriteUntilDone, {
    adoptRelayState: (req) =>
      `Move the relay's earlier state (cursor and ${req.parked.length} parked events) into the graph checkpoint`,
  });

  let status: EventRelayRunStatus = {
    checkpoint_id: checkpointId,
    runs: (input.carry?.runs ?? input.state?.runs ?? 0) + 1,
    pages_this_run: 0,
    delivered_this_run: 0,
    parked_this_run: 0,
    retries_waiting: 0,
    last_page_at: null,
  };
  const queue: QueuedRetry[] = [];
  const answers = new Map<number, RetryParkedResult | { error: string }>();
  let nextRetry = 0;
  const enqueue = (request: RetryParkedRequest): number => {
    const id = nextRetry++;
    queue.push({ id, request });
    status = { ...status, retries_waiting: queue.length };
    return id;
  };
  for (const request of input.carry?.retries ?? []) enqueue(request);

  setHandler(eventRelayStatusQuery, () => status);
  setHandler(retryParkedSignal, (request) => void enqueue(request ?? {}));
  setHandler(
    retryParkedUpdate,
    async (request) => {
      const id = enqueue(request);
      await condition(() => answers.has(id));
      const answer = answers.get(id) as RetryParkedResult | { error: string };
      answers.delete(id);
      if ('error' in answer)
        throw ApplicationFailure.create({ type: 'RetryParkedFailed', message: answer.error, nonRetryable: true });
      return answer;
    },
    {
      validator: (request: RetryParkedRequest | undefined) => {
        const id: unknown = request?.event_id;
        if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 200))
          throw new Error('event_id must be the id of a parked event');
      },
    },
  );

  const report = (): void =>
    setCurrentDetails(
      `**Event relay** to ${host} (checkpoint \`${checkpointId}\` in the graph; run ${status.runs}): ` +
        `${status.delivered_this_run} delivered and ${status.parked_this_run} parked in this run; ` +
        `last page ${status.last_page_at ?? 'not yet'}. Parked events and what the relay is blocked on: ` +
        '`GET /api/v1/admin/event-relay`.',
    );

  /** Serves the queued retry requests: one pass over all parked events covers every request for one. */
  const serveRetries = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.splice(0);
      status = { ...status, retries_waiting: queue.length };
      const all = batch.some((q) => !q.request.event_id);
      const targets = all ? [undefined] : [...new Set(batch.map((q) => q.request.event_id))];
      const outcome = new Map<string | undefined, RetryParkedResult | { error: string }>();
      for (const eventId of targets) {
        try {
          const result = await retryParkedEvents({
            checkpoint_id: checkpointId,
            webhook_url: input.webhook_url,
            ...(eventId ? { event_id: eventId } : {}),
          });
          countEventRelayed(result.delivered);
          outcome.set(eventId, result);
        } catch (err) {
          const error = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
          log.warn('retrying parked events failed; they stay parked', { eventId, error });
          outcome.set(eventId, { error: `retrying parked events failed: ${error}` });
        }
      }
      for (const q of batch)
        answers.set(q.id, outcome.get(all ? undefined : q.request.event_id) as RetryParkedResult | { error: string });
    }
  };

  if (input.state) {
    // The run before this one kept its checkpoint in its own state: hand it to the graph once.
    await adoptRelayState({
      checkpoint_id: checkpointId,
      cursor: input.state.cursor,
      delivered: input.state.delivered,
      parked: input.state.parked,
    });
  }
  report();

  for (;;) {
    await serveRetries();
    const page = await relayPage({
      checkpoint_id: checkpointId,
      webhook_url: input.webhook_url,
      page_size: input.page_size,
      lag_ms: input.lag_ms,
    });
    countEventRelayed(page.delivered);
    status = {
      ...status,
      pages_this_run: status.pages_this_run + 1,
      delivered_this_run: status.delivered_this_run + page.delivered,
      parked_this_run: status.parked_this_run + page.parked,
      last_page_at: new Date().toISOString(),
    };
    if (page.parked > 0) log.warn('events parked: the subscriber refused them for good', { parked: page.parked });
    report();
    if (status.pages_this_run >= input.pages_per_run || workflowInfo().continueAsNewSuggested) break;
    if (page.read < input.page_size)
      await condition(() => queue.length > 0, input.poll_interval, {
        summary: `Nothing new in the feed: look again in ${input.poll_interval} (at once for a retry of parked events)`,
      });
  }

  // Every waiting retry is answered before the run hands over; requests that arrive meanwhile too.
  for (;;) {
    await serveRetries();
    if (queue.length === 0 && allHandlersFinished()) break;
    await condition(() => queue.length > 0 || allHandlersFinished());
  }
  await continueAsNew<typeof eventRelayWorkflow>({
    webhook_url: input.webhook_url,
    lag_ms: input.lag_ms,
    page_size: input.page_size,
    poll_interval: input.poll_interval,
    pages_per_run: input.pages_per_run,
    ...(input.checkpoint_id ? { checkpoint_id: input.checkpoint_id } : {}),
    carry: { runs: status.runs, retries: queue.map((q) => q.request) },
  });
}
