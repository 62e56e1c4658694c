/**
 * The interaction-claims prune workflow on the time-skipping server, with a fake activity: it
 * asks for the claims older than the retention and answers the activity's count; an activity
 * that fails for good fails the run with a message that says what failed and what happens next.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { InteractionPruneActivities } from '../../activities/interactionPrune';
import { INTERACTION_PRUNE_FAILED, type PruneClaimsRequest } from '../../temporal/interactionPrune';
import { interactionClaimsPruneWorkflow } from '../../workflows';
import { claimsPrune } from '../../workflows/activityOptions';
import { useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

const HOUR_MS = 60 * 60 * 1000;

async function prune(activities: InteractionPruneActivities, windowHours = 24) {
  const taskQueue = `prune-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities,
  });
  const handle = await env.client.workflow.start(interactionClaimsPruneWorkflow, {
    taskQueue,
    workflowId: `interaction-prune-test-${randomUUID()}`,
    args: [{ window_hours: windowHours, batch_size: 10_000 }],
  });
  const outcome = await worker.runUntil(
    handle.result().then(
      (result) => ({ result, error: null }),
      (error: unknown) => ({ result: null, error }),
    ),
  );
  return { ...outcome, started: (await handle.describe()).startTime };
}

describe('interactionClaimsPruneWorkflow', () => {
  it('deletes the claims older than the retention and answers how many', async () => {
    const asked: PruneClaimsRequest[] = [];
    const { result, started } = await prune(
      {
        pruneInteractionClaims: async (req) => {
          asked.push(req);
          return { deleted: 1234, cutoff: req.cutoff };
        },
      },
      30,
    );
    expect(asked).toHaveLength(1);
    expect(asked[0]?.batch_size).toBe(10_000);
    expect(result).toEqual({ deleted: 1234, cutoff: asked[0]?.cutoff });
    // 30 hours before the run (the workflow's clock reads its first task's time, within moments of its start).
    const cutoff = Date.parse(result?.cutoff ?? '');
    expect(Math.abs(cutoff - (started.getTime() - 30 * HOUR_MS))).toBeLessThan(60_000);
  });

  it('fails the run, saying what failed and what comes next, when the activity fails for good', async () => {
    let attempts = 0;
    const { error } = await prune({
      pruneInteractionClaims: async () => {
        attempts++;
        throw new Error('Neo4j is unavailable');
      },
    });
    // Every attempt of the profile (its backoff skipped by the test server), then the run fails.
    expect(attempts).toBe(claimsPrune.retry?.maximumAttempts);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({ type: INTERACTION_PRUNE_FAILED, nonRetryable: true });
    expect(cause?.message).toMatch(/^pruning interaction claims recorded before \S+ failed after every retry /);
    expect(cause?.message).toMatch(/\(Neo4j is unavailable\); .*the next day's run tries again$/);
  });
});
