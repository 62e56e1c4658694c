/**
 * The event prune workflow on the time-skipping server, with a fake activity: it passes its
 * settings to the activity and answers what it deleted; a consumer past the cap is named in the
 * run's details (where ops see it); an activity that fails for good fails the run with a message
 * that says what failed and what happens next.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { EventPruneActivities } from '../../activities/eventPrune';
import { EVENT_PRUNE_FAILED, type EventPruneInput } from '../../temporal/eventPrune';
import { eventPruneWorkflow } from '../../workflows';
import { eventsPrune } from '../../workflows/activityOptions';
import { useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

const INPUT: EventPruneInput = { safety_minutes: 60, cap_hours: 72, history_days: 400, batch_size: 5_000 };

async function prune(activities: EventPruneActivities) {
  const taskQueue = `event-prune-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities,
  });
  const handle = await env.client.workflow.start(eventPruneWorkflow, {
    taskQueue,
    workflowId: `event-prune-test-${randomUUID()}`,
    args: [INPUT],
  });
  const outcome = await worker.runUntil(async () => {
    const ended = await handle.result().then(
      (result) => ({ result, error: null }),
      (error: unknown) => ({ result: null, error }),
    );
    // What ops read in the UI: the run's current details, as it left them (a query replays it).
    const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    return { ...ended, details: meta.currentDetails ?? '' };
  });
  return outcome;
}

describe('eventPruneWorkflow', () => {
  it('prunes with its settings, answers the counts and names a consumer past the cap', async () => {
    const asked: EventPruneInput[] = [];
    const result = {
      horizon: '2026-11-27T01:00:00.000Z',
      history_cutoff: '2025-10-23T01:00:00.000Z',
      deleted: { transient: 900, history: 12 },
      consumers: [
        { id: 'kafka:persona.events.v1', position: '2026-11-27T02:00:00.000Z', behind_cap: false, holds_back: true },
        { id: 'persona-event-relay', position: '2026-11-20T00:00:00.000Z', behind_cap: true, holds_back: false },
      ],
    };
    const run = await prune({
      pruneEvents: async (req) => {
        asked.push(req);
        return result;
      },
    });
    expect(asked).toEqual([INPUT]);
    expect(run.result).toEqual(result);
    // The counts, and the consumer no longer holding pruning back (the other is not named).
    expect(run.details).toContain('900 transient events before 2026-11-27T01:00:00.000Z');
    expect(run.details).toContain('12 before 2025-10-23T01:00:00.000Z');
    expect(run.details).toContain('**Past the cap**');
    expect(run.details).toContain(
      'persona-event-relay at 2026-11-20T00:00:00.000Z (no longer holding pruning back: what it had not read is ' +
        'gone from the graph, Kafka has it)',
    );
    expect(run.details).not.toContain('kafka:persona.events.v1');
  });

  it('fails the run, saying what failed and what comes next, when the activity fails for good', async () => {
    let attempts = 0;
    const { error } = await prune({
      pruneEvents: async () => {
        attempts++;
        throw new Error('Neo4j is unavailable');
      },
    });
    expect(attempts).toBe(eventsPrune.retry?.maximumAttempts);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({ type: EVENT_PRUNE_FAILED, nonRetryable: true });
    expect(cause?.message).toMatch(/^pruning the events every consumer has failed after every retry /);
    expect(cause?.message).toMatch(/\(Neo4j is unavailable\); .*the next run tries again$/);
  });
});
