/** The event relay's contract: delivers the change feed to a subscriber's webhook. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { PersonaEvent } from '../graph/events';

export const EVENT_RELAY_WORKFLOW_TYPE = 'eventRelayWorkflow';
/** One relay per deployment: the worker starts it when PERSONA_EVENTS_WEBHOOK_URL is set. */
export const EVENT_RELAY_WORKFLOW_ID = 'persona-event-relay';

export interface ParkedEvent {
  event: PersonaEvent;
  error: string;
  attempts: number;
  parked_at: string;
}

export interface EventRelayInput {
  webhook_url: string;
  /** The feed's lag (PERSONA_EVENTS_FEED_LAG_MS). */
  lag_ms: number;
  page_size: number;
  /** How long to wait when the feed has nothing new. */
  poll_interval: string;
  /** Delivery attempts (with backoff) before an event is parked. */
  max_attempts: number;
  /** Pages per workflow run before it continues as new. */
  pages_per_run: number;
  /** Carried across continue-as-new. */
  state?: EventRelayState;
}

export interface EventRelayState {
  /** Where the relay resumes in the feed (the checkpoint). */
  cursor: string | null;
  delivered: number;
  parked: ParkedEvent[];
  runs: number;
  last_delivery_at: string | null;
}

export const retryParkedSignal = defineSignal<[{ event_id?: string }]>('retryParked');
export const eventRelayStatusQuery = defineQuery<EventRelayState>('eventRelayStatus');
