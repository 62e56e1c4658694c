/**
 * The event relay workflow on the time-skipping server, with fake activities: a page that fails
 * for good (a checkpoint the graph cannot read, say) never ends the relay — the failure is in its
 * status and its UI details, and it tries again from the checkpoint a minute later.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { EventActivities, RelayPageRequest } from '../../activities/events';
import { eventRelayStatusQuery, type EventRelayInput } from '../../temporal/eventRelay';
import { eventRelayWorkflow } from '../../workflows';
import { useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

const input: EventRelayInput = { lag_ms: 0, page_size: 100, poll_interval: '1 second', pages_per_run: 1000 };

describe('eventRelayWorkflow', () => {
  it('does not end when a page fails for good: says so, and tries again from the checkpoint', async () => {
    const taskQueue = `event-relay-${randomUUID()}`;
    const asked: RelayPageRequest[] = [];
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: {
        relayPage: async (req: RelayPageRequest) => {
          asked.push(req);
          if (asked.length === 1)
            throw ApplicationFailure.create({
              type: 'InvalidCursor',
              message: 'the relay checkpoint holds a cursor the feed cannot read',
              nonRetryable: true,
            });
          return { read: 0, delivered: 0, parked: 0, subscriber: 'subscriber.example' };
        },
        retryParkedEvents: async () => ({ retried: 0, delivered: 0, still_parked: 0 }),
      } satisfies Pick<EventActivities, 'relayPage' | 'retryParkedEvents'>,
    });
    const workflowId = `event-relay-test-${randomUUID()}`;
    const handle = await env.client.workflow.start(eventRelayWorkflow, { taskQueue, workflowId, args: [input] });
    await worker.runUntil(async () => {
      // Failed for good: the run goes on, the failure in its status and its UI details.
      let status = await handle.query(eventRelayStatusQuery);
      while (status.last_error === null && asked.length <= 1) status = await handle.query(eventRelayStatusQuery);
      expect(status.last_error).toBe('the relay checkpoint holds a cursor the feed cannot read');
      expect(status.pages_this_run).toBe(0);
      const described = await handle.describe();
      expect(described.status.name).toBe('RUNNING');
      // A minute later it tries again from the same checkpoint; the failure is cleared once a page goes.
      while (asked.length < 2) await env.sleep('30 seconds');
      while (status.last_error !== null) status = await handle.query(eventRelayStatusQuery);
      expect(status).toMatchObject({ last_error: null, subscriber: 'subscriber.example' });
      expect(status.pages_this_run).toBeGreaterThanOrEqual(1);
    });
    expect(asked[0]).toEqual({ checkpoint_id: workflowId, page_size: 100, lag_ms: 0 });
    expect(asked[1]).toEqual(asked[0]);
    await handle.terminate('test over');
  });
});
