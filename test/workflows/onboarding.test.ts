import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { Activities } from '../../activities';
import type { BehavioralProfileRequest } from '../../clients/chimera';
import type { OnboardingResult } from '../../graph/onboarding';
import type { OnboardingPlan } from '../../graph/onboardingRequest';
import { customerWrittenUpdate, onboardingSummary } from '../../temporal/onboarding';
import { domainFailureOf } from '../../temporal/failures';
import { personaCustomerId } from '../../temporal/searchAttributes';
import { onboardingWorkflow } from '../../workflows';
import { NO_OPEN_PROCESS_SINKS, useWorkflowTestEnv } from '../support/temporal';
import { until } from '../support/wait';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;

useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

const plan: OnboardingPlan = {
  customer: { segment: 'New', ltv_minor: 0 },
  payment_method: null,
  device: null,
  address: null,
  digital_identifiers: [{ type: 'email', value: 'ada@acme.io', is_verified: true }],
  person: null,
  ignored: [],
};

interface Calls {
  onboard: { onboardingId: string; customerId: string }[];
  profile: BehavioralProfileRequest[];
}

/** Runs the workflow on a real Worker with the activities replaced. */
async function run(activities: {
  onboard: (ids: { onboardingId: string; customerId: string }, attempt: number) => Promise<OnboardingResult>;
  profile?: (attempt: number) => Promise<{ reference: string }>;
}) {
  const calls: Calls = { onboard: [], profile: [] };
  const taskQueue = `onboarding-${randomUUID()}`;
  const fakes: Pick<Activities, 'onboardCustomer' | 'requestBehavioralProfile'> = {
    onboardCustomer: async (_plan, ids) => {
      calls.onboard.push(ids);
      return activities.onboard(ids, calls.onboard.length);
    },
    requestBehavioralProfile: async (req) => {
      calls.profile.push(req);
      return (activities.profile ?? (async () => ({ reference: 'ref-1' })))(calls.profile.length);
    },
  };
  const worker = await Worker.create({
    sinks: NO_OPEN_PROCESS_SINKS,
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: fakes,
  });
  const workflowId = `onboarding-${randomUUID()}`;
  const outcome = await worker.runUntil(async () => {
    const handle = await env.client.workflow.start(onboardingWorkflow, {
      args: [{ plan }],
      taskQueue,
      workflowId,
      staticSummary: onboardingSummary(plan),
    });
    try {
      return { result: await handle.result(), description: await handle.describe() };
    } catch (error) {
      return { error, description: await handle.describe() };
    }
  });
  return { ...outcome, calls, workflowId };
}

const created = (ids: { customerId: string }): Promise<OnboardingResult> =>
  Promise.resolve({ customer_id: ids.customerId, outcome: 'created', possible_matches: [] });

describe('onboarding workflow', () => {
  it('writes once with the workflow id as onboarding id, tags the customer, asks Chimera', async () => {
    const { result, description, calls, workflowId } = await run({ onboard: created });
    const customerId = calls.onboard[0]?.customerId;
    expect(customerId).toMatch(/^[0-9a-f-]{36}$/);
    expect(calls.onboard).toEqual([{ onboardingId: workflowId, customerId }]);
    expect(result).toEqual({
      customer_id: customerId,
      outcome: 'created',
      possible_matches: [],
      workflow_id: workflowId,
      behavioral_profile_requested: true,
    });
    expect(description.typedSearchAttributes.get(personaCustomerId)).toBe(customerId);
    expect(calls.profile).toEqual([
      { customer_id: customerId, onboarding_id: workflowId, request_id: `${workflowId}:behavioral-profile` },
    ]);
  });

  it('reports a match and tags the matched customer', async () => {
    const matched = randomUUID();
    const { result, description } = await run({
      onboard: async () => ({ customer_id: matched, outcome: 'matched', possible_matches: [] }),
    });
    expect(result).toMatchObject({ customer_id: matched, outcome: 'matched' });
    expect(description.typedSearchAttributes.get(personaCustomerId)).toBe(matched);
  });

  it('keeps why a link was refused to itself: counted, never in the result', async () => {
    const other = randomUUID();
    const { result } = await run({
      onboard: async (ids) => ({
        customer_id: ids.customerId,
        outcome: 'created',
        possible_matches: [{ customer_id: other, probability: 0.4 }],
        link_refused: 'proof_conflicts',
      }),
    });
    expect(result).toMatchObject({ outcome: 'created', possible_matches: [{ customer_id: other }] });
    expect(result).not.toHaveProperty('link_refused');
  });

  it('retries a graph write that fails transiently, with the same ids', async () => {
    const { result, calls } = await run({
      onboard: async (ids, attempt) => {
        if (attempt < 3) throw new Error('Neo4j unavailable');
        return created(ids);
      },
    });
    expect(result?.outcome).toBe('created');
    expect(calls.onboard).toHaveLength(3);
    expect(new Set(calls.onboard.map((c) => c.customerId)).size).toBe(1);
  });

  it('writes locally a few times, then as an ordinary activity: the first workflow task is not held open', async () => {
    const { result, calls, workflowId } = await run({
      onboard: async (ids, attempt) => {
        if (attempt < 5) throw new Error('Neo4j unavailable');
        return created(ids);
      },
    });
    expect(result?.outcome).toBe('created');
    // Three local attempts, then the activity's (its first fails too, its second writes).
    expect(calls.onboard).toHaveLength(5);
    expect(new Set(calls.onboard.map((c) => c.customerId)).size).toBe(1);
    const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const local = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
    const scheduled = events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'onboardCustomer',
    );
    expect([local.length, scheduled.length]).toEqual([1, 1]);
  });

  it('fails at once, without retrying, on input the graph refuses', async () => {
    const { error, calls } = await run({
      onboard: async () => {
        throw ApplicationFailure.create({
          type: 'InvalidInputError',
          message: 'payment_method.token: looks like a card number',
          nonRetryable: true,
        });
      },
    });
    expect(error).toBeInstanceOf(WorkflowFailedError);
    // The activity's own failure, in the chain (a local activity's arrives as itself, not wrapped).
    const chain: unknown[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) chain.push(e);
    expect(chain.find((e): e is ApplicationFailure => e instanceof ApplicationFailure)?.type).toBe('InvalidInputError');
    expect(calls.onboard).toHaveLength(1);
    expect(calls.profile).toHaveLength(0);
  });

  it('still onboards when Chimera keeps failing: retried, then given up on', async () => {
    const { result, calls, description } = await run({
      onboard: created,
      profile: async () => {
        throw new Error('Chimera unreachable');
      },
    });
    expect(result).toMatchObject({ outcome: 'created', behavioral_profile_requested: false });
    expect(calls.profile).toHaveLength(5);
    expect(description.status.name).toBe('COMPLETED');
  });

  it('does not retry a request Chimera refused', async () => {
    const { result, calls } = await run({
      onboard: created,
      profile: async () => {
        throw ApplicationFailure.create({ type: 'ChimeraRejectedError', message: 'refused', nonRetryable: true });
      },
    });
    expect(result).toMatchObject({ behavioral_profile_requested: false });
    expect(calls.profile).toHaveLength(1);
  });

  it('carries a readable summary for the Temporal UI', async () => {
    const { description } = await run({ onboard: created });
    expect(await description.staticSummary()).toBe('Onboard a New customer with verified email');
  });
});

describe('onboarding with a waiting caller (Update-with-Start)', () => {
  const fakes = (onboard: () => Promise<OnboardingResult>, profile: () => Promise<{ reference: string }>) => ({
    onboardCustomer: onboard,
    requestBehavioralProfile: profile,
  });
  const startWithUpdate = (taskQueue: string, workflowId: string) =>
    env.client.workflow.executeUpdateWithStart(customerWrittenUpdate, {
      startWorkflowOperation: new WithStartWorkflowOperation(onboardingWorkflow, {
        args: [{ plan }],
        taskQueue,
        workflowId,
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    });

  it('answers with the customer as soon as it is written, while Chimera is still being asked', async () => {
    let release: () => void = () => undefined;
    const chimeraAnswers = new Promise<void>((resolve) => (release = resolve));
    let asked = false;
    const taskQueue = `onboarding-${randomUUID()}`;
    const workflowId = `onboarding-${randomUUID()}`;
    const worker = await Worker.create({
      sinks: NO_OPEN_PROCESS_SINKS,
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: fakes(
        async () => ({ customer_id: 'c-written', outcome: 'created', possible_matches: [] }),
        async () => {
          asked = true;
          await chimeraAnswers;
          return { reference: 'ref' };
        },
      ),
    });
    const { written, runningThen, result } = await worker.runUntil(async () => {
      const written = await startWithUpdate(taskQueue, workflowId);
      // Answered before Chimera was: the workflow is still running.
      const runningThen = (await env.client.workflow.getHandle(workflowId).describe()).status.name;
      await until(async () => asked);
      release();
      return { written, runningThen, result: await env.client.workflow.getHandle(workflowId).result() };
    });
    expect(written).toEqual({
      customer_id: 'c-written',
      outcome: 'created',
      possible_matches: [],
      workflow_id: workflowId,
    });
    expect(runningThen).toBe('RUNNING');
    expect(result).toMatchObject({ customer_id: 'c-written', behavioral_profile_requested: true });
  });

  it('answers the waiting caller without why a link was refused', async () => {
    const taskQueue = `onboarding-${randomUUID()}`;
    const workflowId = `onboarding-${randomUUID()}`;
    const other = randomUUID();
    const worker = await Worker.create({
      sinks: NO_OPEN_PROCESS_SINKS,
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: fakes(
        async () => ({
          customer_id: 'c-refused',
          outcome: 'created',
          possible_matches: [{ customer_id: other, probability: 0.4 }],
          link_refused: 'proof_conflicts',
        }),
        async () => ({ reference: 'ref-1' }),
      ),
    });
    const written = await worker.runUntil(async () => {
      const answer = await startWithUpdate(taskQueue, workflowId);
      await env.client.workflow.getHandle(workflowId).result();
      return answer;
    });
    expect(written).toEqual({
      customer_id: 'c-refused',
      outcome: 'created',
      possible_matches: [{ customer_id: other, probability: 0.4 }],
      workflow_id: workflowId,
    });
  });

  it('answers a second caller of the same onboarding from a worker that replays it (written locally)', async () => {
    // The customer is written in a local activity: its result is a marker in the history. A caller
    // that comes while Chimera is being asked, to a worker without the workflow cached, must hear
    // the same customer from the replay, and nothing is written again.
    let asked = false;
    let writes = 0;
    const taskQueue = `onboarding-${randomUUID()}`;
    const workflowId = `onboarding-${randomUUID()}`;
    const worker = (chimera: () => Promise<{ reference: string }>) =>
      Worker.create({
        sinks: NO_OPEN_PROCESS_SINKS,
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: bundle,
        activities: fakes(async () => {
          writes++;
          return { customer_id: 'c-replayed', outcome: 'created', possible_matches: [] };
        }, chimera),
        maxCachedWorkflows: 0,
      });
    // The first worker's Chimera is down: the request waits for its retry when the worker stops.
    const first = await (
      await worker(async () => {
        asked = true;
        throw new Error('Chimera unreachable');
      })
    ).runUntil(async () => {
      const written = await startWithUpdate(taskQueue, workflowId);
      await until(async () => asked);
      return written;
    });
    const { second, result } = await (
      await worker(async () => ({ reference: 'ref' }))
    ).runUntil(async () => ({
      second: await startWithUpdate(taskQueue, workflowId),
      result: await env.client.workflow.getHandle(workflowId).result(),
    }));
    expect(first).toMatchObject({ customer_id: 'c-replayed', outcome: 'created', workflow_id: workflowId });
    expect(second).toEqual(first);
    expect(writes).toBe(1);
    expect(result).toMatchObject({ customer_id: 'c-replayed', behavioral_profile_requested: true });
  });

  it('fails the Update with the graph’s refusal, its field in the details, before the workflow fails', async () => {
    const taskQueue = `onboarding-${randomUUID()}`;
    const workflowId = `onboarding-${randomUUID()}`;
    const worker = await Worker.create({
      sinks: NO_OPEN_PROCESS_SINKS,
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: fakes(
        async () => {
          throw ApplicationFailure.create({
            type: 'InvalidInputError',
            message: 'payment_method.token: looks like a card number',
            nonRetryable: true,
            details: [{ code: 'invalid_input', field: 'payment_method.token', reason: 'looks like a card number' }],
          });
        },
        async () => ({ reference: 'never' }),
      ),
    });
    const error = await worker.runUntil(
      startWithUpdate(taskQueue, workflowId).then(
        () => null,
        (e: unknown) => e,
      ),
    );
    expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(domainFailureOf(error)).toMatchObject({ code: 'invalid_input', field: 'payment_method.token' });
  });
});
