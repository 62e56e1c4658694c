/**
 * The Kafka publisher workflow on the time-skipping server, with a fake activity: it publishes
 * batch after batch, waits when the feed is caught up, continues as new after its batches per run
 * carrying the run count; an activity that fails for good never ends it — the failure is in its
 * status and its UI details, and it tries again from the checkpoint.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { KafkaPublisherActivities } from '../../activities/kafkaPublisher';
import {
  kafkaCheckpointId,
  kafkaPublisherStatusQuery,
  type KafkaPublisherInput,
  type PublishRequest,
} from '../../temporal/kafkaPublisher';
import { kafkaPublisherWorkflow } from '../../workflows';
import { useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

const input: KafkaPublisherInput = {
  topic: 'persona.events.v1',
  page_size: 100,
  budget_ms: 20_000,
  poll_interval: '1 second',
  batches_per_run: 3,
};

describe('kafkaPublisherWorkflow', () => {
  it('publishes from its checkpoint batch after batch, and continues as new carrying its run count', async () => {
    const taskQueue = `kafka-publisher-${randomUUID()}`;
    const asked: PublishRequest[] = [];
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: {
        publishEvents: async (req: PublishRequest) => {
          asked.push(req);
          return { published: 100, pages: 1, caught_up: asked.length % 2 === 0 };
        },
      } satisfies KafkaPublisherActivities,
    });
    const handle = await env.client.workflow.start(kafkaPublisherWorkflow, {
      taskQueue,
      workflowId: `kafka-publisher-test-${randomUUID()}`,
      args: [input],
    });
    await worker.runUntil(async () => {
      // Two runs of three batches, then the third run's first.
      while (asked.length < 7) await env.sleep('1 second');
      const status = await handle.query(kafkaPublisherStatusQuery);
      expect(status).toMatchObject({ topic: input.topic, runs: 3, last_error: null });
    });
    expect(asked[0]).toEqual({
      checkpoint_id: kafkaCheckpointId(input.topic),
      topic: input.topic,
      page_size: 100,
      budget_ms: 20_000,
    });
    const described = await handle.describe();
    expect(described.status.name).toBe('RUNNING');
    await handle.terminate('test over');
  });

  it('does not end when the activity fails for good: says so, and tries again', async () => {
    const taskQueue = `kafka-publisher-${randomUUID()}`;
    let calls = 0;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: {
        publishEvents: async () => {
          calls++;
          if (calls === 1)
            throw ApplicationFailure.create({
              type: 'TopicAuthorizationFailed',
              message: 'not authorised to write persona.events.v1',
              nonRetryable: true,
            });
          return { published: 0, pages: 0, caught_up: true };
        },
      } satisfies KafkaPublisherActivities,
    });
    const handle = await env.client.workflow.start(kafkaPublisherWorkflow, {
      taskQueue,
      workflowId: `kafka-publisher-test-${randomUUID()}`,
      args: [input],
    });
    await worker.runUntil(async () => {
      while (calls < 1) await env.sleep('1 second');
      // Failed for good: the run goes on, the failure in its status (and its current details in the UI).
      let status = await handle.query(kafkaPublisherStatusQuery);
      while (status.last_error === null && calls === 1) status = await handle.query(kafkaPublisherStatusQuery);
      expect(status.last_error).toBe('not authorised to write persona.events.v1');
      expect((await handle.describe()).status.name).toBe('RUNNING');
      // A minute later it tries again from the checkpoint; the failure is cleared once a batch goes.
      while (calls < 2) await env.sleep('30 seconds');
      status = await handle.query(kafkaPublisherStatusQuery);
      while (status.last_error !== null) status = await handle.query(kafkaPublisherStatusQuery);
      expect(status.last_error).toBeNull();
    });
    await handle.terminate('test over');
  });
});
