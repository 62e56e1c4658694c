/** The event relay's contract: delivers the change feed to a subscriber's webhook. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PersonaEvent } from '../graph/events';

export const EVENT_RELAY_WORKFLOW_TYPE = 'eventRelayWorkflow';
/** One relay per deployment: the worker starts it when PERSONA_EVENTS_WEBHOOK_URL is set. */
export const EVENT_RELAY_WORKFLOW_ID = 'persona-event-relay';

export interface EventRelayInput {
  webhook_url: string;
  /** The feed's lag (PERSONA_EVENTS_FEED_LAG_MS). */
  lag_ms: number;
  /** Events per activity: the relay checkpoints at least this often. */
  page_size: number;
  /** How long to wait when the feed has nothing new. */
  poll_interval: string;
  /** Pages per workflow run before it continues as new (or sooner, when Temporal suggests it). */
  pages_per_run: number;
  /** The graph checkpoint this relay keeps (default: its workflow id). */
  checkpoint_id?: string;
  /** Runs started before the checkpoint moved to the graph: delivery attempts before parking. */
  max_attempts?: number;
  /** Runs started before the checkpoint moved to the graph carry their state here; adopted once. */
  state?: EventRelayStateBeforeCheckpoint;
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
}

/** The relay's state before its checkpoint moved to the graph (kept in the workflow). */
export interface ParkedEventBeforeCheckpoint {
  event: PersonaEvent;
  error: string;
  attempts: number;
  parked_at: string;
}

export interface EventRelayStateBeforeCheckpoint {
  cursor: string | null;
  delivered: number;
  parked: ParkedEventBeforeCheckpoint[];
  runs: number;
  last_delivery_at: string | null;
}

/**
 * Queues a retry of parked events and answers once the relay has tried them (the validator
 * refuses an event id that is not one). Requests queue: none replaces another.
 */
export const retryParkedUpdate = defineUpdate<RetryParkedResult, [RetryParkedRequest]>('retryParkedEvents');
/** The same as a signal (what the api sent before the Update existed); queued alike. */
export const retryParkedSignal = defineSignal<[RetryParkedRequest]>('retryParked');
export const eventRelayStatusQuery = defineQuery<EventRelayRunStatus | EventRelayStateBeforeCheckpoint>(
  'eventRelayStatus',
);
