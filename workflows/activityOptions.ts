/**
 * Named activity-option profiles. Every profile sets a start-to-close timeout and an explicit
 * retry policy; domain errors a retry cannot fix arrive as non-retryable failures.
 */
import type { ActivityFunction } from '@temporalio/common';
import {
  ActivityCancellationType,
  proxyActivities,
  proxyLocalActivities,
  type ActivityInterfaceFor,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';

/** One graph transaction: quick, retried with backoff while Neo4j is unavailable. */
export const graphWrite: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};

/**
 * One graph transaction a person waits on, run as a local activity: by the worker running the
 * workflow's task, within that task (recorded as a marker), so the answer needs no round trip
 * through the server's task queues. A few quick attempts (1 s, 2 s apart), so that the task is
 * not held open through an outage: the workflow then goes on with the ordinary activity
 * (`graphWrite`). A worker that dies during it loses the workflow task, and the worker that takes
 * the task over runs it again: it must be idempotent.
 */
export const graphWriteLocal: LocalActivityOptions = {
  startToCloseTimeout: graphWrite.startToCloseTimeout,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
};

/**
 * A graph write that must happen (a recovery after money moved, a fraud outcome's suspension):
 * retried while Neo4j is unavailable for as long as it takes; only a domain error a retry
 * cannot fix ends it, and the workflow then asks ops instead of failing.
 */
export const graphWriteUntilDone: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

/** A call to another agent: retried a few times, and the caller decides what a failure means. */
export const agentCall: ActivityOptions = {
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
};

/** A notification that must reach another agent eventually: retried with backoff for a day. */
export const agentNotify: ActivityOptions = {
  startToCloseTimeout: '15 seconds',
  scheduleToCloseTimeout: '24 hours',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes' },
};

/**
 * A charge at the payment gateway (activities/recovery.ts `chargePaymentMethod`): the idempotency
 * key makes a retry the same charge, so 5xx answers, timeouts, 429s and unknown outcomes are retried
 * with backoff for `retryFor` (hours: PERSONA_CHARGE_RETRY_HOURS) before ops are asked; a decline
 * is a result, not an error. Its start-to-close covers the activity's worst case (a processor
 * naming two cards, the account updater, the reservation, the charge, a listing by reference —
 * each call at most the client's 10 s, and the activity ends its calls 5 s before this runs out),
 * so an attempt is over before the next begins; it heartbeats every 2 s, so a worker that died
 * mid-charge is noticed within the heartbeat timeout and the retry, same key, is the same charge.
 */
export function gatewayCharge(retryFor: string): ActivityOptions {
  return {
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '20 seconds',
    scheduleToCloseTimeout: retryFor,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
  };
}

/**
 * Learning what became of a charge of unknown outcome when nothing more may be charged (the
 * recovery was cancelled, the customer is being erased): asked of the gateway, never sent again,
 * for as long as it takes — the answer decides whether the payment was recovered. The recovery
 * counts it overdue past `settleFor` (PERSONA_SETTLE_DEADLINE_HOURS: a metric, an alert,
 * PersonaOverdue) and asks on.
 */
export const gatewaySettle: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes' },
};

/**
 * One batch of the expiry scan: a page of reads plus its writes and notifications. Heartbeats
 * show progress and let a dead worker's batch be retried within 20 seconds; the batch is
 * idempotent, so a retry redoes only what did not happen.
 */
export const expiryBatch: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 30 },
};

/**
 * The daily prune of interaction claims: one activity deleting batch after batch, heartbeating
 * the count after each (a dead worker's run is taken over within a minute, and goes on from the
 * count it heartbeat). Retried for about an hour (12 attempts), then the run fails (the UI shows it
 * Failed) and the next day's run tries again; deleting is idempotent, so nothing is lost.
 */
export const claimsPrune: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 12 },
};

/** The event prune: like the claims prune, batches of deletes heartbeating their counts. */
export const eventsPrune: ActivityOptions = {
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 8 },
};

/**
 * A stretch of the change feed delivered to the subscriber, in order. "Not now" from the
 * subscriber fails the attempt at the event it stopped on (checkpointed), and it is retried with
 * backoff for as long as it takes: the relay blocks rather than reorder. Heartbeats as it goes
 * (every half second), so a dead worker's page is taken over within half a minute.
 */
export const subscriberDelivery: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  // A relay cancelled (stopped) mid-page closes only once the page has recorded its progress: a
  // relay started again at once never runs beside a page still delivering.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

/**
 * Publishing to Kafka: a batch of pages heartbeating after each (a dead worker's batch is taken
 * over within half a minute), retried with backoff for as long as Kafka is away — the publisher
 * waits rather than skip or reorder.
 */
export const kafkaPublishing: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

/** A one-line summary, in words, of each activity of a group: what ops read beside it in the UI. */
export type ActivitySummaries<A> = {
  [K in keyof A]: A[K] extends (...args: infer P) => Promise<unknown> ? (...args: P) => string : never;
};

/**
 * Like `proxyActivities`, but every call carries the summary its arguments give, so each
 * activity in a workflow's history says what it does. The type demands a summary for every
 * activity of the group; `executeWithOptions` keeps the summary unless the options bring one.
 */
export function activitiesWithSummaries<A extends Record<keyof A, ActivityFunction>>(
  options: ActivityOptions,
  summaries: ActivitySummaries<A>,
): ActivityInterfaceFor<A> {
  return withSummaries(proxyActivities<Record<string, ActivityFunction>>(options), options, summaries);
}

/** `activitiesWithSummaries` for local activities (the summary is on the marker in the history). */
export function localActivitiesWithSummaries<A extends Record<keyof A, ActivityFunction>>(
  options: LocalActivityOptions,
  summaries: ActivitySummaries<A>,
): ActivityInterfaceFor<A> {
  return withSummaries(proxyLocalActivities<Record<string, ActivityFunction>>(options), options, summaries);
}

function withSummaries<A, O extends ActivityOptions | LocalActivityOptions>(
  proxy: ActivityInterfaceFor<Record<string, ActivityFunction>>,
  options: O,
  summaries: ActivitySummaries<A>,
): ActivityInterfaceFor<A> {
  const entries = Object.entries(summaries as Record<string, (...args: unknown[]) => string>).map(
    ([name, summarize]) => {
      const target = proxy[name] as ActivityInterfaceFor<Record<string, ActivityFunction>>[string];
      const withOptions = (o: O, args: unknown[]): Promise<unknown> =>
        target.executeWithOptions({ summary: summarize(...args), ...o }, args);
      const call = (...args: unknown[]): Promise<unknown> => withOptions(options, args);
      return [name, Object.assign(call, { executeWithOptions: withOptions })] as const;
    },
  );
  return Object.fromEntries(entries) as unknown as ActivityInterfaceFor<A>;
}

/**
 * One page of the gateway reconciliation: a listing (or a lookup per recovery) at the gateway and
 * the graph reads and idempotent repairs for it. A page is retried whole (nothing repairs twice);
 * after the last attempt the run fails and the next day's run covers the same window again.
 */
export const reconciliationPage: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  // Beats after every charge, token batch and lookup: a dead worker's page is taken over in a minute.
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10 },
};
