/** The event prune's contract: ids, input, result, the activity's request (graph/eventPrune.ts). */
import type { EventConsumer, PruneCount } from '../graph/eventPrune';

export const EVENT_PRUNE_WORKFLOW_TYPE = 'eventPruneWorkflow';

/** The Schedule; the runs it starts are `persona-event-prune-<scheduled time>`. */
export const EVENT_PRUNE_SCHEDULE_ID = 'persona-event-prune';

export interface EventPruneInput {
  /** PERSONA_EVENTS_PRUNE_SAFETY_MINUTES: how long after every consumer has an event it stays. */
  safety_minutes: number;
  /** PERSONA_EVENTS_PRUNE_CAP_HOURS: a consumer further behind no longer holds pruning back. */
  cap_hours: number;
  /** PERSONA_EVENTS_HISTORY_DAYS: how long a customer's history is kept. */
  history_days: number;
  /** PERSONA_EVENTS_PRUNE_BATCH_SIZE: events deleted per write transaction. */
  batch_size: number;
}

export interface EventPruneResult {
  /** RFC 3339: transient events stamped before it were deleted. */
  horizon: string;
  /** RFC 3339: every event stamped before it was deleted (a parked one excepted). */
  history_cutoff: string;
  /** Events deleted by this run (at least: a worker that died may have deleted a few more it never reported). */
  deleted: PruneCount;
  /** The consumers, and which are past the cap (alerted: they no longer hold pruning back). */
  consumers: EventConsumer[];
}

/** What the activity heartbeats after each batch: on a retry it goes on counting from there. */
export interface PruneEventsProgress {
  deleted: PruneCount;
}

/** The failure type of a run whose activity failed for good. */
export const EVENT_PRUNE_FAILED = 'EventPruneFailed';
