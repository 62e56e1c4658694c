/**
 * Persona's Temporal Schedules, and applying them: created when missing, brought up to date
 * when present (keeping whether ops paused it and their note). The worker applies them at
 * start-up; `npm run schedules:apply` does it on its own. Running either twice changes nothing.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { UnreadablePayloadError } from './payloadCodec';
import { EXPIRY_SCAN_SCHEDULE_ID, EXPIRY_SCAN_WORKFLOW_TYPE, type ExpiryScanInput } from './expiry';
import {
  GATEWAY_RECONCILIATION_SCHEDULE_ID,
  GATEWAY_RECONCILIATION_WORKFLOW_TYPE,
  type GatewayReconciliationInput,
} from './reconciliation';
import {
  INTERACTION_PRUNE_SCHEDULE_ID,
  INTERACTION_PRUNE_WORKFLOW_TYPE,
  type InteractionPruneInput,
} from './interactionPrune';
import { EVENT_PRUNE_SCHEDULE_ID, EVENT_PRUNE_WORKFLOW_TYPE, type EventPruneInput } from './eventPrune';
import { taskQueueFor, taskQueuesOf } from './taskQueues';

export interface ScheduleSettings {
  /** The base the queues are named from: every schedule starts its workflow on the bulk queue. */
  TEMPORAL_TASK_QUEUE: string;
  PERSONA_EXPIRY_SCAN_AT: string;
  PERSONA_EXPIRY_SCAN_TIMEZONE: string;
  PERSONA_EXPIRY_BATCH_SIZE: number;
  PERSONA_EXPIRY_BATCHES_PER_RUN: number;
  PERSONA_EXPIRY_SCAN_LANES: number;
  PERSONA_INTERACTION_ID_WINDOW_HOURS: number;
  PERSONA_INTERACTION_PRUNE_AT: string;
  PERSONA_INTERACTION_PRUNE_BATCH_SIZE: number;
  PERSONA_EVENTS_PRUNE_EVERY_MINUTES: number;
  PERSONA_EVENTS_PRUNE_SAFETY_MINUTES: number;
  PERSONA_EVENTS_PRUNE_CAP_HOURS: number;
  PERSONA_EVENTS_PRUNE_BATCH_SIZE: number;
  PERSONA_EVENTS_HISTORY_DAYS: number;
  PERSONA_GATEWAY_RECONCILE_AT: string;
  PERSONA_GATEWAY_RECONCILE_LOOKBACK_HOURS: number;
  PERSONA_GATEWAY_RECONCILE_LANES: number;
}

/** The scan settings every expiry scan starts with, scheduled or on demand. */
export function expiryScanSettings(s: ScheduleSettings): Omit<ExpiryScanInput, 'as_of' | 'progress'> {
  return {
    time_zone: s.PERSONA_EXPIRY_SCAN_TIMEZONE,
    batch_size: s.PERSONA_EXPIRY_BATCH_SIZE,
    batches_per_run: s.PERSONA_EXPIRY_BATCHES_PER_RUN,
    lanes: s.PERSONA_EXPIRY_SCAN_LANES,
  };
}

/** The daily card-expiry scan: at PERSONA_EXPIRY_SCAN_AT in PERSONA_EXPIRY_SCAN_TIMEZONE. */
export function expiryScanSchedule(s: ScheduleSettings): ScheduleOptions {
  const [hour, minute] = s.PERSONA_EXPIRY_SCAN_AT.split(':').map(Number) as [number, number];
  return {
    scheduleId: EXPIRY_SCAN_SCHEDULE_ID,
    spec: {
      calendars: [{ hour, minute, comment: `daily at ${s.PERSONA_EXPIRY_SCAN_AT}` }],
      timezone: s.PERSONA_EXPIRY_SCAN_TIMEZONE,
    },
    action: {
      type: 'startWorkflow',
      workflowType: EXPIRY_SCAN_WORKFLOW_TYPE,
      workflowId: EXPIRY_SCAN_SCHEDULE_ID,
      taskQueue: taskQueueFor(taskQueuesOf(s.TEMPORAL_TASK_QUEUE), EXPIRY_SCAN_WORKFLOW_TYPE),
      args: [expiryScanSettings(s)],
      staticSummary:
        'Daily card-expiry scan: warns customers 60, 30 and 7 days before their default card expires, ' +
        'and marks expired cards',
    },
    // A scan still running at the next day's time is not doubled, and the next day is not
    // dropped either: it waits and runs after (BUFFER_ONE; the scan is idempotent). A run
    // missed while Temporal was down is caught up within six hours.
    policies: { overlap: ScheduleOverlapPolicy.BUFFER_ONE, catchupWindow: '6 hours' },
  };
}

export function interactionPruneInput(s: ScheduleSettings): InteractionPruneInput {
  return { window_hours: s.PERSONA_INTERACTION_ID_WINDOW_HOURS, batch_size: s.PERSONA_INTERACTION_PRUNE_BATCH_SIZE };
}

/** The daily prune of interaction ids past the retention: at PERSONA_INTERACTION_PRUNE_AT, UTC. */
export function interactionPruneSchedule(s: ScheduleSettings): ScheduleOptions {
  const [hour, minute] = s.PERSONA_INTERACTION_PRUNE_AT.split(':').map(Number) as [number, number];
  return {
    scheduleId: INTERACTION_PRUNE_SCHEDULE_ID,
    spec: {
      calendars: [{ hour, minute, comment: `daily at ${s.PERSONA_INTERACTION_PRUNE_AT}` }],
      timezone: 'UTC',
    },
    action: {
      type: 'startWorkflow',
      workflowType: INTERACTION_PRUNE_WORKFLOW_TYPE,
      workflowId: INTERACTION_PRUNE_SCHEDULE_ID,
      taskQueue: taskQueueFor(taskQueuesOf(s.TEMPORAL_TASK_QUEUE), INTERACTION_PRUNE_WORKFLOW_TYPE),
      args: [interactionPruneInput(s)],
      staticSummary:
        `Daily prune of interaction ids recorded more than ${s.PERSONA_INTERACTION_ID_WINDOW_HOURS} hours ago ` +
        '(a redelivery of one after that records again)',
    },
    // As the expiry scan: a run still going at the next day's time delays that one, never doubles
    // it (deleting is idempotent anyway); a run missed while Temporal was down is caught up.
    policies: { overlap: ScheduleOverlapPolicy.BUFFER_ONE, catchupWindow: '6 hours' },
  };
}

export function eventPruneInput(s: ScheduleSettings): EventPruneInput {
  return {
    safety_minutes: s.PERSONA_EVENTS_PRUNE_SAFETY_MINUTES,
    cap_hours: s.PERSONA_EVENTS_PRUNE_CAP_HOURS,
    history_days: s.PERSONA_EVENTS_HISTORY_DAYS,
    batch_size: s.PERSONA_EVENTS_PRUNE_BATCH_SIZE,
  };
}

/** The prune of the events every consumer has (graph/eventPrune.ts): every PERSONA_EVENTS_PRUNE_EVERY_MINUTES. */
export function eventPruneSchedule(s: ScheduleSettings): ScheduleOptions {
  return {
    scheduleId: EVENT_PRUNE_SCHEDULE_ID,
    spec: { intervals: [{ every: `${s.PERSONA_EVENTS_PRUNE_EVERY_MINUTES} minutes` }] },
    action: {
      type: 'startWorkflow',
      workflowType: EVENT_PRUNE_WORKFLOW_TYPE,
      workflowId: EVENT_PRUNE_SCHEDULE_ID,
      taskQueue: taskQueueFor(taskQueuesOf(s.TEMPORAL_TASK_QUEUE), EVENT_PRUNE_WORKFLOW_TYPE),
      args: [eventPruneInput(s)],
      staticSummary:
        `Prune of the events every consumer has had for ${s.PERSONA_EVENTS_PRUNE_SAFETY_MINUTES} minutes ` +
        `(a customer's history after ${s.PERSONA_EVENTS_HISTORY_DAYS} days): Kafka keeps the log`,
    },
    // A run still going when the next is due: the next is skipped (the one running deletes what it
    // would have); one missed while Temporal was down is not worth catching up, the next run does it.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
  };
}

export function gatewayReconciliationInput(s: ScheduleSettings): GatewayReconciliationInput {
  return {
    lookback_hours: s.PERSONA_GATEWAY_RECONCILE_LOOKBACK_HOURS,
    grace_minutes: 30,
    page_size: 200,
    lanes: s.PERSONA_GATEWAY_RECONCILE_LANES,
  };
}

/** The daily reconciliation with the gateway's records: at PERSONA_GATEWAY_RECONCILE_AT, UTC. */
export function gatewayReconciliationSchedule(s: ScheduleSettings): ScheduleOptions {
  const [hour, minute] = s.PERSONA_GATEWAY_RECONCILE_AT.split(':').map(Number) as [number, number];
  return {
    scheduleId: GATEWAY_RECONCILIATION_SCHEDULE_ID,
    spec: {
      calendars: [{ hour, minute, comment: `daily at ${s.PERSONA_GATEWAY_RECONCILE_AT}` }],
      timezone: 'UTC',
    },
    action: {
      type: 'startWorkflow',
      workflowType: GATEWAY_RECONCILIATION_WORKFLOW_TYPE,
      workflowId: GATEWAY_RECONCILIATION_SCHEDULE_ID,
      taskQueue: taskQueueFor(taskQueuesOf(s.TEMPORAL_TASK_QUEUE), GATEWAY_RECONCILIATION_WORKFLOW_TYPE),
      args: [gatewayReconciliationInput(s)],
      staticSummary:
        `Daily reconciliation of the last ${s.PERSONA_GATEWAY_RECONCILE_LOOKBACK_HOURS} hours of charges with the ` +
        "gateway's records: repairs what is safe, flags the rest for ops",
    },
    // As the other daily runs: never doubled, a missed one caught up (its repairs are idempotent).
    policies: { overlap: ScheduleOverlapPolicy.BUFFER_ONE, catchupWindow: '6 hours' },
  };
}

export function persistentSchedules(s: ScheduleSettings): ScheduleOptions[] {
  return [expiryScanSchedule(s), interactionPruneSchedule(s), eventPruneSchedule(s), gatewayReconciliationSchedule(s)];
}

export interface AppliedSchedule {
  scheduleId: string;
  /**
   * `replaced`: the schedule held what Persona's codec did not write (set straight at Temporal):
   * deleted and created again as Persona's, ops' pause and note not kept.
   */
  outcome: 'created' | 'updated' | 'replaced';
  /** When it runs, in words (`daily at 06:00`, with its time zone). */
  when: string;
}

const when = (o: ScheduleOptions): string =>
  o.spec.intervals
    ? o.spec.intervals.map((i) => `every ${String(i.every)}`).join(', ')
    : `${o.spec.calendars?.map((c) => c.comment).join(', ') ?? ''} (${o.spec.timezone ?? 'UTC'})`;

/** Creates or updates every schedule; safe to run from several workers at once. */
export async function applySchedules(client: Client, s: ScheduleSettings): Promise<AppliedSchedule[]> {
  const applied: AppliedSchedule[] = [];
  for (const desired of persistentSchedules(s)) {
    try {
      await client.schedule.create(desired);
      applied.push({ scheduleId: desired.scheduleId, outcome: 'created', when: when(desired) });
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      const handle = client.schedule.getHandle(desired.scheduleId);
      try {
        await handle.update((previous) => ({
          spec: desired.spec,
          action: desired.action,
          policies: desired.policies,
          // Paused by ops stays paused, with their note.
          state: {
            paused: previous.state.paused,
            note: previous.state.note,
            remainingActions: previous.state.remainingActions,
          },
        }));
      } catch (unreadable) {
        // A schedule whose arguments Persona's codec did not write (or cannot read) would stop
        // every worker's start here: it is replaced by Persona's own.
        if (!(unreadable instanceof UnreadablePayloadError)) throw unreadable;
        await handle.delete();
        await client.schedule.create(desired);
        applied.push({ scheduleId: desired.scheduleId, outcome: 'replaced', when: when(desired) });
        continue;
      }
      applied.push({ scheduleId: desired.scheduleId, outcome: 'updated', when: when(desired) });
    }
  }
  return applied;
}
