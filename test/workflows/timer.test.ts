import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { createFixtureActivities } from '../fixtures/activities';
import { sleepThenWake } from '../fixtures/workflows';
import { useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;

useWorkflowTestEnv(
  (e, b) => {
    env = e;
    bundle = b;
  },
  fileURLToPath(new URL('../fixtures/workflows.ts', import.meta.url)),
);

describe('time-skipping environment with a real Worker', () => {
  it('runs a workflow through a timer of several days in seconds of wall-clock time', async () => {
    const calls: string[] = [];
    const taskQueue = `timer-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: createFixtureActivities(calls),
    });
    const workflowId = `sleep-${randomUUID()}`;
    const wallStart = Date.now();
    const result = await worker.runUntil(
      env.client.workflow.execute(sleepThenWake, { args: [3], taskQueue, workflowId }),
    );
    const wallMs = Date.now() - wallStart;

    const threeDaysMs = 3 * 24 * 60 * 60 * 1000;
    expect(result.wokeAt - result.startedAt).toBeGreaterThanOrEqual(threeDaysMs);
    // Three days of workflow time passed in under a minute of real time: the server skipped it.
    expect(wallMs).toBeLessThan(60_000);
    expect(result.note).toBe(`woke ${workflowId}`);
    expect(calls).toEqual([workflowId]);
  });
});
