/**
 * The daily expiry-scan Schedule on the real Temporal dev server: created or updated in place,
 * with the configured time and zone, never doubled, and a pause by ops survives a re-apply;
 * a run that starts late scans as of the day it was due. Ends by applying the default
 * configuration again.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleOverlapPolicy, type Client, type Connection } from '@temporalio/client';
import { loadSettings } from '../../config/env';
import { connectTemporal } from '../../temporal/connection';
import { EXPIRY_SCAN_SCHEDULE_ID, EXPIRY_SCAN_WORKFLOW_TYPE, type ExpiryScanProgress } from '../../temporal/expiry';
import { startHarness } from '../support/api';
import { until } from '../support/wait';
import { applySchedules } from '../../temporal/schedules';

const settings = loadSettings();
let client: Client;
let connection: Connection;
beforeAll(async () => {
  ({ client, connection } = await connectTemporal(settings));
});
afterAll(async () => {
  const handle = client.schedule.getHandle(EXPIRY_SCAN_SCHEDULE_ID);
  await handle.unpause('restored by the schedules test');
  await applySchedules(client, settings);
  await connection.close();
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
      taskQueue: settings.TEMPORAL_TASK_QUEUE,
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
    expect(results.flat().map((r) => r.outcome)).toEqual(['updated', 'updated']);
    d = await handle.describe();
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 7, end: 7 }], minute: [{ start: 15, end: 15 }] });
    expect(d.state).toMatchObject({ paused: true, note: 'paused by ops during a migration' });
  });
});

describe('a scheduled expiry scan', () => {
  it('scans as of the day it was due, however late it starts (a backfilled run of 2001-01-01)', async () => {
    const h = await startHarness();
    const scheduleId = `test-expiry-scan-${randomUUID()}`;
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
