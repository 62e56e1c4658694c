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
 * is never broken. `retryParkedEvents` (an Update) queues a retry of parked events, served
 * between pages. The run continues as new after `pages_per_run` pages or when Temporal suggests
 * it, with every handler finished.
 *
 * Where the events go, and the secret they are signed with, are the delivering worker's own
 * configuration (PERSONA_EVENTS_WEBHOOK_URL, PERSONA_EVENTS_WEBHOOK_SECRET), never this workflow's
 * input: a relay started by anyone else delivers nowhere new. Its pacing (lag, page size, poll
 * interval, pages per run) is input, and a worker that starts with other settings applies its
 * own with the `reconfigureRelay` Update, from the next page on. A page that fails for good (a
 * checkpoint the graph cannot read) never ends the relay: it says so in its status and tries
 * again from the checkpoint a minute later.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { EventActivities } from '../activities/events';
import {
  eventRelayStatusQuery,
  reconfigureRelayUpdate,
  retryParkedUpdate,
  type EventRelayInput,
  type EventRelaySettings,
  type EventRelayRunStatus,
  type RetryParkedRequest,
  type RetryParkedResult,
} from '../temporal/eventRelay';
import { activitiesWithSummaries, subscriberDelivery } from './activityOptions';
import { countEventRelayed } from './metrics';
import { autoUpgrade } from './versioning';

interface QueuedRetry {
  id: number;
  request: RetryParkedRequest;
}

/** What the run's handlers and its loop share: its status and the retries of parked events asked for. */
interface RelayRun {
  checkpointId: string;
  status: EventRelayRunStatus;
  queue: QueuedRetry[];
  answers: Map<number, RetryParkedResult | { error: string }>;
  nextRetry: number;
}

autoUpgrade(eventRelayWorkflow);
export async function eventRelayWorkflow(input: EventRelayInput): Promise<void> {
  const checkpointId = input.checkpoint_id ?? workflowInfo().workflowId;
  const { relayPage, retryParkedEvents } = relayActivities();

  const run: RelayRun = {
    checkpointId,
    status: firstStatus(input, checkpointId),
    queue: [],
    answers: new Map(),
    nextRetry: 0,
  };
  const { queue } = run;
  for (const request of input.carry?.retries ?? []) enqueue(run, request);
  setHandlers(run);
  report(run);

  for (;;) {
    await serveRetries(run, retryParkedEvents);
    const { settings } = run.status;
    let page;
    try {
      page = await relayPage({
        checkpoint_id: checkpointId,
        page_size: settings.page_size,
        lag_ms: settings.lag_ms,
      });
    } catch (err) {
      // Only a failure the activity marks for good ends up here (a subscriber away is retried
      // inside it; a checkpoint the graph cannot read, say): the relay never stops for it; it says
      // so and tries again from the checkpoint in a minute, serving retries meanwhile.
      if (!(err instanceof ActivityFailure)) throw err;
      run.status = { ...run.status, last_error: err.cause?.message ?? err.message };
      log.warn('relaying a page failed for good; trying again in a minute', { error: run.status.last_error });
      report(run);
      if (workflowInfo().continueAsNewSuggested) break;
      await condition(() => queue.length > 0 || run.status.settings !== settings, '1 minute', {
        summary: 'Relaying failed for good: try again from the checkpoint in a minute, or with new settings',
      });
      continue;
    }
    countEventRelayed(page.delivered);
    run.status = {
      ...run.status,
      last_error: null,
      pages_this_run: run.status.pages_this_run + 1,
      delivered_this_run: run.status.delivered_this_run + page.delivered,
      parked_this_run: run.status.parked_this_run + page.parked,
      last_page_at: new Date().toISOString(),
      subscriber: page.subscriber,
    };
    if (page.parked > 0) log.warn('events parked: the subscriber refused them for good', { parked: page.parked });
    report(run);
    if (run.status.pages_this_run >= run.status.settings.pages_per_run || workflowInfo().continueAsNewSuggested) break;
    if (page.read < settings.page_size)
      await condition(() => queue.length > 0, run.status.settings.poll_interval, {
        summary:
          `Nothing new in the feed: look again in ${run.status.settings.poll_interval} ` +
          '(at once for a retry of parked events)',
      });
  }

  // Every waiting retry is answered before the run hands over; requests that arrive meanwhile too.
  for (;;) {
    await serveRetries(run, retryParkedEvents);
    if (queue.length === 0 && allHandlersFinished()) break;
    await condition(() => queue.length > 0 || allHandlersFinished());
  }
  await continueAsNew<typeof eventRelayWorkflow>({
    ...run.status.settings,
    ...(input.checkpoint_id ? { checkpoint_id: input.checkpoint_id } : {}),
    carry: { runs: run.status.runs, retries: queue.map((q) => q.request) },
  });
}

/** The relay's activities: a page to the subscriber, and a retry of parked events (5 attempts). */
function relayActivities() {
  const { relayPage } = activitiesWithSummaries<Pick<EventActivities, 'relayPage'>>(subscriberDelivery, {
    relayPage: (req) =>
      `Deliver up to ${req.page_size} events after the checkpoint to the subscriber, in order, ` +
      'and move the checkpoint',
  });
  const { retryParkedEvents } = activitiesWithSummaries<Pick<EventActivities, 'retryParkedEvents'>>(
    { ...subscriberDelivery, retry: { ...subscriberDelivery.retry, maximumAttempts: 5 } },
    {
      retryParkedEvents: (req) =>
        req.event_id
          ? `Try the parked event ${req.event_id} again at the subscriber`
          : 'Try the oldest parked events again at the subscriber',
    },
  );
  return { relayPage, retryParkedEvents };
}

/** Queues a retry of parked events; answers its id, under which its answer is kept. */
function enqueue(run: RelayRun, request: RetryParkedRequest): number {
  const id = run.nextRetry++;
  run.queue.push({ id, request });
  run.status = { ...run.status, retries_waiting: run.queue.length };
  return id;
}

function report(run: RelayRun): void {
  setCurrentDetails(relayDetails(run.status));
}

/** The query and the Updates, registered before the workflow's first await. */
function setHandlers(run: RelayRun): void {
  const { answers } = run;
  setHandler(eventRelayStatusQuery, () => run.status);
  setHandler(
    reconfigureRelayUpdate,
    (settings) => {
      log.info('event relay reconfigured: the next page uses the new settings', {
        before: run.status.settings,
        settings,
      });
      run.status = { ...run.status, settings };
      report(run);
      return settings;
    },
    { validator: validSettings },
  );
  setHandler(
    retryParkedUpdate,
    async (request) => {
      const id = enqueue(run, request);
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
}

/** Serves the queued retry requests: one pass over all parked events covers every request for one. */
async function serveRetries(
  run: RelayRun,
  retryParkedEvents: ReturnType<typeof relayActivities>['retryParkedEvents'],
): Promise<void> {
  const { queue, answers } = run;
  while (queue.length > 0) {
    const batch = queue.splice(0);
    run.status = { ...run.status, retries_waiting: queue.length };
    const all = batch.some((q) => !q.request.event_id);
    const targets = all ? [undefined] : [...new Set(batch.map((q) => q.request.event_id))];
    const outcome = new Map<string | undefined, RetryParkedResult | { error: string }>();
    for (const eventId of targets) {
      try {
        const result = await retryParkedEvents({
          checkpoint_id: run.checkpointId,
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
}

/** The run's status as it starts, from its input and what the last run carried. */
function firstStatus(input: EventRelayInput, checkpointId: string): EventRelayRunStatus {
  return {
    checkpoint_id: checkpointId,
    runs: (input.carry?.runs ?? 0) + 1,
    pages_this_run: 0,
    delivered_this_run: 0,
    parked_this_run: 0,
    retries_waiting: 0,
    last_page_at: null,
    settings: {
      lag_ms: input.lag_ms,
      page_size: input.page_size,
      poll_interval: input.poll_interval,
      pages_per_run: input.pages_per_run,
    },
    subscriber: null,
    last_error: null,
  };
}

/** What the UI shows of the run (its current details). */
function relayDetails(status: EventRelayRunStatus): string {
  return (
    `**Event relay** to ${status.subscriber ?? 'the subscriber'} ` +
    `(checkpoint \`${status.checkpoint_id}\` in the graph; run ${status.runs}): ` +
    `${status.delivered_this_run} delivered and ${status.parked_this_run} parked in this run; ` +
    `last page ${status.last_page_at ?? 'not yet'}; ${status.settings.page_size} events a page, ` +
    `${status.settings.lag_ms} ms behind the feed. Parked events and what the relay is blocked on: ` +
    '`GET /api/v1/admin/event-relay`.' +
    (status.last_error ? ` Last page failed for good (trying again): ${status.last_error}` : '')
  );
}

/** Settings a relay can run with: anything else is refused before it reaches the history. */
function validSettings(s: EventRelaySettings | undefined): void {
  const whole = (n: unknown, min: number, max: number): boolean =>
    typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;
  if (!whole(s?.lag_ms, 0, 3_600_000)) throw new Error('lag_ms must be a whole number of milliseconds up to an hour');
  if (!whole(s?.page_size, 1, 10_000)) throw new Error('page_size must be between 1 and 10000');
  if (!whole(s?.pages_per_run, 1, 100_000)) throw new Error('pages_per_run must be between 1 and 100000');
  if (typeof s?.poll_interval !== 'string' || !/^\d+ ?(milliseconds?|seconds?|minutes?|ms|s|m)$/.test(s.poll_interval))
    throw new Error('poll_interval must be a duration such as "2 seconds"');
}
