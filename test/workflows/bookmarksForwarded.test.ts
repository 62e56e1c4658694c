/**
 * The `persona-bookmarks` header through a workflow's life (workflows/interceptors.ts), on the
 * time-skipping server with the worker's interceptors: the start's messages and a signal's reach
 * every activity the workflow calls, its child's and its continue-as-new run's. The signatures are
 * the activity interceptor's to check (workers/logging.ts); here only what is carried is read.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { bookmarksOf, type SignedBookmarks } from '../../temporal/bookmarks';
import { messageHeadersInterceptor } from '../../temporal/connection';
import { createFixtureActivities } from '../fixtures/activities';
import { bookmarkCarrier, carrySignal } from '../fixtures/workflows';
import { useWorkflowTestEnv } from '../support/temporal';
import { until } from '../support/wait';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;

useWorkflowTestEnv(
  (e, b) => {
    env = e;
    bundle = b;
  },
  fileURLToPath(new URL('../fixtures/workflows.ts', import.meta.url)),
);

/** A message of the header's shape (its MAC is not checked on this path). */
const message = (bookmark: string): SignedBookmarks => ({
  epoch: 0,
  bookmarks: [bookmark],
  kid: 'k1',
  mac: 'A'.repeat(43),
});

describe('the bookmarks header', () => {
  it('reaches every activity: the workflow’s, after a signal, its child’s and its continue-as-new run’s', async () => {
    const taskQueue = `bookmarks-${randomUUID()}`;
    const seen = new Map<string, string[]>();
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: createFixtureActivities([]),
      interceptors: {
        activity: [
          () => ({
            inbound: {
              execute: (input, next) => {
                const calledFor = String(input.args[0]);
                seen.set(
                  calledFor,
                  (bookmarksOf(input.headers) ?? []).flatMap((m) => m.bookmarks),
                );
                return next(input);
              },
            },
          }),
        ],
      },
    });
    // What the client's interceptor puts on the next start or signal.
    let carried = [message('start-bookmark')];
    const client = new Client({
      connection: env.connection,
      interceptors: { workflow: [messageHeadersInterceptor({ bookmarks: () => Promise.resolve(carried) })] },
    });
    const workflowId = `carrier-${randomUUID()}`;
    await worker.runUntil(async () => {
      const handle = await client.workflow.start(bookmarkCarrier, { args: [0], taskQueue, workflowId });
      // The first activity ran with the start's message alone; then a signal brings a second.
      await until(() => Promise.resolve(seen.has(`${workflowId}:0`)));
      carried = [message('signal-bookmark')];
      await handle.signal(carrySignal);
      await handle.result();
    });
    expect(seen.get(`${workflowId}:0`)).toEqual(['start-bookmark']);
    expect(seen.get(`${workflowId}-child:2`)).toEqual(['start-bookmark', 'signal-bookmark']);
    expect(seen.get(`${workflowId}:1`)).toEqual(['start-bookmark', 'signal-bookmark']);
  });
});
