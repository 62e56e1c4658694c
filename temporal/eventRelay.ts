/** The event relay's contract: delivers the change feed to a subscriber's webhook. */
import { defineQuery, defineUpdate } from '@temporalio/workflow';

export const EVENT_RELAY_WORKFLOW_TYPE = 'eventRelayWorkflow';
/** One relay per deployment: the worker starts it when PERSONA_EVENTS_WEBHOOK_URL is set. */
export const EVENT_RELAY_WORKFLOW_ID = 'persona-event-relay';

/**
 * How the relay paces itself: the worker's configuration, compared with the running relay's at
 * every worker start and applied with the `reconfigureRelay` Update when they differ. Where
 * events go (PERSONA_EVENTS_WEBHOOK_URL) and how they are signed are never here: the delivering
 * activity reads them from its own worker's configuration.
 */
export interface EventRelaySettings {
  /** The feed's lag (PERSONA_EVENTS_FEED_LAG_MS). */
  lag_ms: number;
  /** Events per activity: the relay checkpoints at least this often. */
  page_size: number;
  /** How long to wait when the feed has nothing new. */
  poll_interval: string;
  /** Pages per workflow run before it continues as new (or sooner, when Temporal suggests it). */
  pages_per_run: number;
}

export interface EventRelayInput extends EventRelaySettings {
  /** The graph checkpoint this relay keeps (default: its workflow id). */
  checkpoint_id?: string;
  /** What a run hands to the next: a few counters and the retry requests not yet served. */
  carry?: EventRelayCarry;
}

export interface EventRelayCarry {
  runs: number;
  retries: RetryParkedRequest[];
}

/** Try parked events again: all of them, or the one named. */
export interface RetryParkedRequest {
  event_id?: string;
}

export interface RetryParkedResult {
  /** Parked events tried again. */
  retried: number;
  delivered: number;
  /** Tried again and still refused (they stay parked, with the new error). */
  still_parked: number;
}

/** The run's own view, for the UI and the query (the checkpoint itself is in the graph). */
export interface EventRelayRunStatus {
  checkpoint_id: string;
  runs: number;
  pages_this_run: number;
  delivered_this_run: number;
  parked_this_run: number;
  retries_waiting: number;
  last_page_at: string | null;
  /** What this run paces itself by. */
  settings: EventRelaySettings;
  /** The host the last page went to (the delivering worker's PERSONA_EVENTS_WEBHOOK_URL), null before one. */
  subscriber: string | null;
  /** Why the last page failed for good (the relay tries again from the checkpoint), null once one goes. */
  last_error: string | null;
}

/**
 * Queues a retry of parked events and answers once the relay has tried them (the validator
 * refuses an event id that is not one). Requests queue: none replaces another.
 */
export const retryParkedUpdate = defineUpdate<RetryParkedResult, [RetryParkedRequest]>('retryParkedEvents');
export const eventRelayStatusQuery = defineQuery<EventRelayRunStatus>('eventRelayStatus');
/** Applies new settings from the next page on; answers with the settings the relay now runs with. */
export const reconfigureRelayUpdate = defineUpdate<EventRelaySettings, [EventRelaySettings]>('reconfigureRelay');
