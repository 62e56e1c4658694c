/**
 * The daily Schedules (card-expiry scan, interaction-id prune) on the real Temporal dev server:
 * created or updated in place, with the configured time and zone, never doubled, and a pause by
 * ops survives a re-apply; a run that starts late scans (or prunes) as of when it was due. Ends
 * by applying the default configuration again.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleOverlapPolicy, type Client, type Connection } from '@temporalio/client';
import { loadSettings } from '../../config/env';
import { connectTemporal } from '../../temporal/connection';
import { EXPIRY_SCAN_SCHEDULE_ID, EXPIRY_SCAN_WORKFLOW_TYPE, type ExpiryScanProgress } from '../../temporal/expiry';
import { startHarness } from '../support/api';
import { until } from '../support/wait';
import { openTestGraph, testPayloadCodec, type TestGraph } from '../support/graph';
import { applySchedules } from '../../temporal/schedules';
import {
  GATEWAY_RECONCILIATION_SCHEDULE_ID,
  GATEWAY_RECONCILIATION_WORKFLOW_TYPE,
} from '../../temporal/reconciliation';
import {
  INTERACTION_PRUNE_SCHEDULE_ID,
  INTERACTION_PRUNE_WORKFLOW_TYPE,
  type InteractionPruneResult,
} from '../../temporal/interactionPrune';
import { EVENT_PRUNE_SCHEDULE_ID, EVENT_PRUNE_WORKFLOW_TYPE } from '../../temporal/eventPrune';
import { taskQueuesOf } from '../../temporal/taskQueues';

const settings = loadSettings();
let client: Client;
let connection: Connection;
let graph: TestGraph;
beforeAll(async () => {
  // With the codec the worker applies the Schedules with: a Schedule a worker applied before (its
  // summary encrypted) is read like any other.
  graph = openTestGraph();
  ({ client, connection } = await connectTemporal(settings, { payloadCodec: testPayloadCodec(graph) }));
});
afterAll(async () => {
  for (const id of [EXPIRY_SCAN_SCHEDULE_ID, INTERACTION_PRUNE_SCHEDULE_ID])
    await client.schedule.getHandle(id).unpause('restored by the schedules test');
  await applySchedules(client, settings);
  await connection.close();
  await graph.close();
});

describe('applySchedules', () => {
  it('creates or updates persona-expiry-scan at the configured time, idempotently, keeping a pause', async () => {
    const berlin = {
      ...settings,
      PERSONA_EXPIRY_SCAN_AT: '05:30',
      PERSONA_EXPIRY_SCAN_TIMEZONE: 'Europe/Berlin',
      PERSONA_EXPIRY_BATCH_SIZE: 750,
    };
    const [first] = await applySchedules(client, berlin);
    expect(first).toMatchObject({ scheduleId: EXPIRY_SCAN_SCHEDULE_ID });
    const handle = client.schedule.getHandle(EXPIRY_SCAN_SCHEDULE_ID);
    let d = await handle.describe();
    expect(d.spec.timezone).toBe('Europe/Berlin');
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 5, end: 5 }], minute: [{ start: 30, end: 30 }] });
    expect(d.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: EXPIRY_SCAN_WORKFLOW_TYPE,
      taskQueue: taskQueuesOf(settings.TEMPORAL_TASK_QUEUE).bulk,
    });
    expect(d.action.args).toEqual([
      {
        time_zone: 'Europe/Berlin',
        batch_size: 750,
        batches_per_run: settings.PERSONA_EXPIRY_BATCHES_PER_RUN,
        lanes: settings.PERSONA_EXPIRY_SCAN_LANES,
      },
    ]);
    expect(d.policies.overlap).toBe('BUFFER_ONE');
    expect(d.action.staticSummary).toMatch(/card-expiry scan/i);

    // Ops pause it; workers starting at once re-apply a new time: still one schedule, still paused.
    await handle.pause('paused by ops during a migration');
    const later = { ...berlin, PERSONA_EXPIRY_SCAN_AT: '07:15' };
    const results = await Promise.all([applySchedules(client, later), applySchedules(client, later)]);
    expect(results.flat().map((r) => r.outcome)).toEqual(Array(8).fill('updated'));
    d = await handle.describe();
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 7, end: 7 }], minute: [{ start: 15, end: 15 }] });
    expect(d.state).toMatchObject({ paused: true, note: 'paused by ops during a migration' });
  });

  it('creates or updates persona-event-prune: every few minutes, with its safety window, cap, retention', async () => {
    const custom = {
      ...settings,
      PERSONA_EVENTS_PRUNE_EVERY_MINUTES: 5,
      PERSONA_EVENTS_PRUNE_SAFETY_MINUTES: 30,
      PERSONA_EVENTS_PRUNE_CAP_HOURS: 48,
      PERSONA_EVENTS_HISTORY_DAYS: 90,
      PERSONA_EVENTS_PRUNE_BATCH_SIZE: 1000,
    };
    const applied = await applySchedules(client, custom);
    expect(applied.find((a) => a.scheduleId === EVENT_PRUNE_SCHEDULE_ID)?.when).toBe('every 5 minutes');
    const d = await client.schedule.getHandle(EVENT_PRUNE_SCHEDULE_ID).describe();
    expect(d.spec.intervals?.[0]?.every).toBe(5 * 60_000);
    expect(d.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: EVENT_PRUNE_WORKFLOW_TYPE,
      workflowId: EVENT_PRUNE_SCHEDULE_ID,
      taskQueue: taskQueuesOf(settings.TEMPORAL_TASK_QUEUE).bulk,
    });
    expect(d.action.args).toEqual([{ safety_minutes: 30, cap_hours: 48, history_days: 90, batch_size: 1000 }]);
    expect(d.policies.overlap).toBe('SKIP');
    await applySchedules(client, settings);
  });

  it('creates or updates persona-interaction-prune: daily at the configured UTC time, with the retention', async () => {
    const custom = {
      ...settings,
      PERSONA_INTERACTION_PRUNE_AT: '02:45',
      PERSONA_INTERACTION_ID_WINDOW_HOURS: 45,
      PERSONA_INTERACTION_PRUNE_BATCH_SIZE: 2500,
    };
    const applied = await applySchedules(client, custom);
    expect(applied.map((a) => a.scheduleId)).toEqual([
      EXPIRY_SCAN_SCHEDULE_ID,
      INTERACTION_PRUNE_SCHEDULE_ID,
      EVENT_PRUNE_SCHEDULE_ID,
      GATEWAY_RECONCILIATION_SCHEDULE_ID,
    ]);
    expect(applied[1]?.when).toBe('daily at 02:45 (UTC)');
    const handle = client.schedule.getHandle(INTERACTION_PRUNE_SCHEDULE_ID);
    let d = await handle.describe();
    expect(d.spec.timezone).toBe('UTC');
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 2, end: 2 }], minute: [{ start: 45, end: 45 }] });
    expect(d.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: INTERACTION_PRUNE_WORKFLOW_TYPE,
      workflowId: INTERACTION_PRUNE_SCHEDULE_ID,
      taskQueue: taskQueuesOf(settings.TEMPORAL_TASK_QUEUE).bulk,
    });
    expect(d.action.args).toEqual([{ window_hours: 45, batch_size: 2500 }]);
    expect(d.policies.overlap).toBe('BUFFER_ONE');
    expect(d.action.staticSummary).toMatch(/prune of interaction ids recorded more than 45 hours ago/);

    // Paused by ops: a re-apply with the defaults keeps the pause and brings the rest back.
    await handle.pause('paused by ops: keeping ids longer during an incident');
    await applySchedules(client, settings);
    d = await handle.describe();
    expect(d.action.args).toEqual([
      {
        window_hours: settings.PERSONA_INTERACTION_ID_WINDOW_HOURS,
        batch_size: settings.PERSONA_INTERACTION_PRUNE_BATCH_SIZE,
      },
    ]);
    expect(d.state).toMatchObject({ paused: true, note: 'paused by ops: keeping ids longer during an incident' });
  });

  it('creates or updates persona-gateway-reconciliation: daily at the set time, lookback and lanes', async () => {
    const applied = await applySchedules(client, {
      ...settings,
      PERSONA_GATEWAY_RECONCILE_AT: '05:10',
      PERSONA_GATEWAY_RECONCILE_LOOKBACK_HOURS: 30,
      PERSONA_GATEWAY_RECONCILE_LANES: 6,
    });
    expect(applied[3]).toMatchObject({ scheduleId: GATEWAY_RECONCILIATION_SCHEDULE_ID, when: 'daily at 05:10 (UTC)' });
    const d = await client.schedule.getHandle(GATEWAY_RECONCILIATION_SCHEDULE_ID).describe();
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 5, end: 5 }], minute: [{ start: 10, end: 10 }] });
    expect(d.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: GATEWAY_RECONCILIATION_WORKFLOW_TYPE,
      workflowId: GATEWAY_RECONCILIATION_SCHEDULE_ID,
      taskQueue: taskQueuesOf(settings.TEMPORAL_TASK_QUEUE).bulk,
    });
    expect(d.action.args).toEqual([{ lookback_hours: 30, grace_minutes: 30, page_size: 200, lanes: 6 }]);
    expect(d.policies.overlap).toBe('BUFFER_ONE');
    await applySchedules(client, settings);
  });
});

describe('a scheduled interaction prune', () => {
  it('prunes as of when it was due, however late it starts (a backfilled run of 2001-07-01)', async () => {
    const h = await startHarness();
    // Under the real schedule's id: its runs read what was written for it (temporal/payloadCodec.ts).
    const scheduleId = `${INTERACTION_PRUNE_SCHEDULE_ID}-test-${randomUUID()}`;
    // A claim from June 29 (older than 24 hours before the due time) and one from June 30, 12:00 (not).
    const [old, kept] = [`test-prune:${randomUUID()}`, `test-prune:${randomUUID()}`];
    await h.graph.query(
      `UNWIND [[$old, '2001-06-29T00:00:00Z'], [$kept, '2001-06-30T12:00:00Z']] AS claim
       CREATE (:Interaction {id: claim[0], customer_id: 'test-prune', type: 'login', recorded_at: datetime(claim[1])})`,
      { old, kept },
    );
    try {
      const schedule = await client.schedule.create({
        scheduleId,
        spec: { calendars: [{ hour: 3, minute: 0 }], timezone: 'UTC' },
        action: {
          type: 'startWorkflow',
          workflowType: INTERACTION_PRUNE_WORKFLOW_TYPE,
          taskQueue: h.taskQueue,
          args: [{ window_hours: 24, batch_size: 100 }],
        },
        policies: { overlap: ScheduleOverlapPolicy.BUFFER_ONE },
        state: { paused: true },
      });
      // Due on 2001-07-01 at 03:00, started today.
      await schedule.backfill({
        start: new Date('2001-07-01T00:00:00Z'),
        end: new Date('2001-07-01T23:00:00Z'),
        overlap: ScheduleOverlapPolicy.ALLOW_ALL,
      });
      let workflowId = '';
      await until(async () => {
        workflowId = (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId ?? '';
        return workflowId !== '';
      });
      const result = (await h.client.workflow.getHandle(workflowId).result()) as InteractionPruneResult;
      expect(result.cutoff).toBe('2001-06-30T03:00:00.000Z');
      expect(result.deleted).toBeGreaterThanOrEqual(1);
      const left = await h.graph.query<{ id: string }>(
        'MATCH (i:Interaction) WHERE i.id IN [$old, $kept] RETURN i.id AS id',
        { old, kept },
      );
      expect(left.map((r) => r.id)).toEqual([kept]);
    } finally {
      await client.schedule.getHandle(scheduleId).delete();
      await h.graph.query('MATCH (i:Interaction) WHERE i.id IN [$old, $kept] DELETE i', { old, kept });
      await h.close();
    }
  });
});

describe('a scheduled expiry scan', () => {
  it('scans as of the day it was due, however late it starts (a backfilled run of 2001-01-01)', async () => {
    const h = await startHarness();
    const scheduleId = `${EXPIRY_SCAN_SCHEDULE_ID}-test-${randomUUID()}`;
    try {
      const schedule = await client.schedule.create({
        scheduleId,
        spec: { calendars: [{ hour: 6, minute: 0 }], timezone: 'UTC' },
        action: {
          type: 'startWorkflow',
          workflowType: EXPIRY_SCAN_WORKFLOW_TYPE,
          taskQueue: h.taskQueue,
          args: [{ time_zone: 'UTC', batch_size: 50, batches_per_run: 10, lanes: 1 }],
        },
        policies: { overlap: ScheduleOverlapPolicy.BUFFER_ONE },
        state: { paused: true },
      });
      // Due on 2001-01-01 at 06:00, started today.
      await schedule.backfill({
        start: new Date('2001-01-01T00:00:00Z'),
        end: new Date('2001-01-01T23:00:00Z'),
        overlap: ScheduleOverlapPolicy.ALLOW_ALL,
      });
      let workflowId = '';
      await until(async () => {
        workflowId = (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId ?? '';
        return workflowId !== '';
      });
      const progress = (await h.client.workflow.getHandle(workflowId).result()) as ExpiryScanProgress;
      expect(progress).toMatchObject({ as_of: '2001-01-01', state: 'done' });
    } finally {
      await client.schedule.getHandle(scheduleId).delete();
      await h.close();
    }
  });
});
