/**
 * The erasure workflow on the time-skipping server, with fake activities: the wait for a pending
 * fraud review (through `fraudReviewsEnded`'s retries), ops' override, the graph's refusal, an
 * activity that fails for good, and the wait's deadline: overdue, naming what holds it, waiting on.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { ErasureResult } from '../../graph/erasure';
import { erasureRequestedSignal, erasureStatusQuery, erasureWorkflowId } from '../../temporal/erasure';
import { fraudOutcomeWorkflowId } from '../../temporal/fraud';
import { recoveryWorkflowId } from '../../temporal/recovery';
import { erasureWorkflow } from '../../workflows';
import { useWorkflowTestEnv } from '../support/temporal';
import { until } from '../support/wait';
import { personaOverdue } from '../../temporal/searchAttributes';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

interface Fakes {
  /** What each listing answers, in turn (the last one repeats). */
  listings: string[][];
  /** How many looks say the review still runs (Infinity: it never ends). */
  reviewLooks: number;
  erase: () => Promise<ErasureResult>;
  /** How many looks find a workflow with a history key still open (default 0); or a failure for good. */
  keyedOpenLooks?: number | 'fails';
  /** How often the recoveries refuse the cancel for now (a charge under way; default 0); or a failure for good. */
  recoveriesBusy?: number | 'fails';
  /** A recovery that refuses the stop while `busy` is true. */
  busyRecovery?: { busy: boolean };
  /** A keyed workflow that does not close while `open` is true (ops end it by setting it false). */
  stuck?: { open: boolean };
  /** What `whyErasureWaits` answers. */
  blockers?: { workflow_id: string; why: string }[];
}

const erased = (customerId: string): ErasureResult => ({
  customer_id: customerId,
  erased: true,
  deleted: { identifiers: 1, addresses: 0, payment_methods: 1, devices: 0, events_stripped: 3, history_keys: 2 },
});

async function run(f: Fakes, work: (taskQueue: string, customerId: string) => Promise<unknown>) {
  const taskQueue = `erasure-${randomUUID()}`;
  const customerId = randomUUID();
  const calls = { listings: 0, looks: 0, keyedLooks: 0, erased: 0, stops: 0, whys: 0, awaited: [] as string[] };
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: {
      async listRunningCustomerWorkflows(): Promise<string[]> {
        return f.listings[Math.min(calls.listings++, f.listings.length - 1)] ?? [];
      },
      async fraudReviewsEnded(): Promise<void> {
        if (++calls.looks <= f.reviewLooks)
          throw ApplicationFailure.retryable('fraud reviews still running', 'ReviewsPending');
      },
      async stopRecoveries(req: { workflow_ids: string[] }): Promise<string[]> {
        if (f.recoveriesBusy === 'fails') throw ApplicationFailure.nonRetryable('Temporal refused us', 'Broken');
        if (++calls.stops <= (f.recoveriesBusy ?? 0) || f.busyRecovery?.busy)
          throw ApplicationFailure.retryable('a charge of pm-1 is under way', 'RecoveriesBusy');
        return req.workflow_ids;
      },
      async awaitWorkflowsClosed(req: { workflow_ids: string[] }): Promise<string[]> {
        calls.awaited.push(...req.workflow_ids);
        return [];
      },
      async historyWorkflowsClosed(): Promise<void> {
        calls.keyedLooks++;
        if (f.keyedOpenLooks === 'fails') throw ApplicationFailure.nonRetryable('visibility is gone', 'Broken');
        if (calls.keyedLooks <= (f.keyedOpenLooks ?? 0) || f.stuck?.open)
          throw ApplicationFailure.retryable('still open: payment-recovery-x', 'WorkflowsOpen');
      },
      async whyErasureWaits(): Promise<{ workflow_id: string; why: string }[]> {
        calls.whys++;
        return f.blockers ?? [];
      },
      eraseCustomer: () => {
        calls.erased++;
        return f.erase();
      },
    },
  });
  const result = await worker.runUntil(work(taskQueue, customerId));
  return { result, calls, customerId };
}

const start = (taskQueue: string, customerId: string, waitDeadline?: string) =>
  env.client.workflow.start(erasureWorkflow, {
    taskQueue,
    workflowId: erasureWorkflowId(customerId),
    args: [{ customer_id: customerId, ...(waitDeadline ? { wait_deadline: waitDeadline } : {}) }],
  });

const hours = (from: string, to: string): number => (Date.parse(to) - Date.parse(from)) / 3_600_000;

describe('erasureWorkflow', () => {
  it('waits through fraudReviewsEnded’s retries while a review runs, then erases', async () => {
    const review = fraudOutcomeWorkflowId(`o-${randomUUID()}`);
    const { result, calls } = await run(
      { listings: [[review], []], reviewLooks: 3, erase: async () => erased('c') },
      async (tq, id) => (await start(tq, id)).result(),
    );
    expect(result).toMatchObject({ erased: true, waited_for: [review], request: null, overdue: false });
    // One activity whose retries were the polling: three "still running", then ended.
    expect(calls.looks).toBe(4);
    // Within its deadline: nothing looked at why.
    expect(calls.whys).toBe(0);
  });

  it('waits through stopRecoveries’ retries while a recovery cannot stop yet, then waits for it to end', async () => {
    const recovery = recoveryWorkflowId(`pay-${randomUUID()}`);
    const { result, calls } = await run(
      { listings: [[recovery]], reviewLooks: 0, recoveriesBusy: 2, erase: async () => erased('c') },
      async (tq, id) => (await start(tq, id)).result(),
    );
    expect(result).toMatchObject({ erased: true, cancelled: [recovery] });
    // Refused twice (a charge under way), taken the third time; then waited for.
    expect(calls.stops).toBe(3);
    expect(calls.awaited).toEqual([recovery]);
  });

  it('ends the wait at once on ops’ override, and records the reason', async () => {
    const review = fraudOutcomeWorkflowId(`o-${randomUUID()}`);
    const { result } = await run(
      // The review is gone from the listing after the override (the real cancel is the integration test's).
      { listings: [[review], []], reviewLooks: Number.POSITIVE_INFINITY, erase: async () => erased('c') },
      async (tq, id) => {
        const handle = await start(tq, id);
        await until(async () => (await handle.query(erasureStatusQuery)).state === 'waiting_for_fraud_review');
        const request = { reason: 'court order 7', requested_by: 'ops-1', override_fraud_review: true };
        await handle.signal(erasureRequestedSignal, request);
        return handle.result();
      },
    );
    expect(result).toMatchObject({
      erased: true,
      request: { reason: 'court order 7', override_fraud_review: true },
    });
  });

  it('ends refused, erasing nothing, when the graph refuses a suspended customer’s own request', async () => {
    const { result } = await run(
      {
        listings: [[]],
        reviewLooks: 0,
        erase: () =>
          Promise.reject(
            ApplicationFailure.create({
              type: 'InvalidStateError',
              message: 'customer is suspended: only ops (with a reason) may erase it now',
              nonRetryable: true,
              details: [{ code: 'invalid_state' }],
            }),
          ),
      },
      async (tq, id) => (await start(tq, id)).result(),
    );
    expect(result).toMatchObject({ erased: false, refused: expect.stringMatching(/suspended/) as unknown });
  });

  it('fails, for ops to see, when eraseCustomer fails for good', async () => {
    await run(
      {
        listings: [[]],
        reviewLooks: 0,
        erase: () => Promise.reject(ApplicationFailure.nonRetryable('Neo4j is gone', 'Neo4jDown')),
      },
      async (tq, id) => {
        await expect((await start(tq, id)).result()).rejects.toBeInstanceOf(WorkflowFailedError);
      },
    );
  });

  it('destroys history keys only once the customer’s keyed workflows have closed: waits through retries', async () => {
    const { result, calls } = await run(
      { listings: [[]], reviewLooks: 0, keyedOpenLooks: 2, erase: async () => erased('c') },
      async (tq, id) => (await start(tq, id)).result(),
    );
    expect(calls.keyedLooks).toBe(3);
    expect(calls.erased).toBe(1);
    expect(result).toMatchObject({ erased: true, deleted: { history_keys: 2 } });
  });

  it('fails without erasing, for ops to see, when the keyed workflows cannot be checked at all', async () => {
    const { calls } = await run(
      { listings: [[]], reviewLooks: 0, keyedOpenLooks: 'fails', erase: async () => erased('c') },
      async (tq, id) => {
        await expect((await start(tq, id)).result()).rejects.toBeInstanceOf(WorkflowFailedError);
      },
    );
    expect(calls.erased).toBe(0);
  });

  it('fails without erasing, for ops to see, when the recoveries cannot be told to stop at all', async () => {
    const recovery = recoveryWorkflowId(`pay-${randomUUID()}`);
    const { calls } = await run(
      { listings: [[recovery]], reviewLooks: 0, recoveriesBusy: 'fails', erase: async () => erased('c') },
      async (tq, id) => {
        await expect((await start(tq, id)).result()).rejects.toBeInstanceOf(WorkflowFailedError);
      },
    );
    expect(calls.erased).toBe(0);
  });
});

describe('erasureWorkflow: every wait has a deadline', () => {
  it('past its deadline a stuck workflow makes it overdue, named with why; ops terminate it, it erases', async () => {
    const stuck = { open: true };
    const seen = { erased: 0 };
    const blocker = {
      workflow_id: 'identity-merge-a-b',
      why: 'identityMergeWorkflow does not close (running since …)',
    };
    const { result, calls } = await run(
      {
        listings: [[]],
        reviewLooks: 0,
        stuck,
        blockers: [blocker],
        erase: async () => (seen.erased++, erased('c')),
      },
      async (tq, id) => {
        const handle = await start(tq, id, '2h');
        await until(async () => (await handle.query(erasureStatusQuery)).wait?.on === 'workflows_closing');
        const before = await handle.query(erasureStatusQuery);
        expect(before).toMatchObject({ state: 'erasing', overdue: false, wait: { overdue: false, blocked_by: [] } });
        expect(hours(before.wait?.since ?? '', before.wait?.due_at ?? '')).toBe(2);
        await env.sleep('3 hours');
        await until(async () => (await handle.query(erasureStatusQuery)).wait?.blocked_by.length === 1);
        expect(await handle.query(erasureStatusQuery)).toMatchObject({
          overdue: true,
          wait: { on: 'workflows_closing', overdue: true, blocked_by: [blocker] },
        });
        // It waits on: nothing is erased while a workflow is open (its history key would go).
        expect(seen.erased).toBe(0);
        // Found among everything overdue while it is.
        const overdue = async () => (await handle.describe()).typedSearchAttributes.get(personaOverdue);
        await until(async () => (await overdue()) === 'erasure');
        // Ops terminate the stuck workflow: the next look finds it closed, and the erasure goes on.
        stuck.open = false;
        const result = await handle.result();
        // Its wait over, it is no longer listed as overdue.
        expect(await overdue()).toBeUndefined();
        return result;
      },
    );
    expect(result).toMatchObject({ erased: true, overdue: true });
    expect(calls.erased).toBe(1);
    expect(calls.whys).toBeGreaterThanOrEqual(1);
  });

  it('a fraud review past the deadline makes it overdue, naming the review; ops’ override still erases', async () => {
    const review = fraudOutcomeWorkflowId(`o-${randomUUID()}`);
    const blocker = { workflow_id: review, why: "fraud review awaits ops' decision (resolveReview) until …" };
    const { result } = await run(
      {
        listings: [[review], []],
        reviewLooks: Number.POSITIVE_INFINITY,
        blockers: [blocker],
        erase: async () => erased('c'),
      },
      async (tq, id) => {
        const handle = await start(tq, id, '60m');
        await until(async () => (await handle.query(erasureStatusQuery)).state === 'waiting_for_fraud_review');
        expect((await handle.query(erasureStatusQuery)).wait).toMatchObject({
          on: 'fraud_review',
          overdue: false,
          blocked_by: [{ workflow_id: review, why: null }],
        });
        await env.sleep('2 hours');
        await until(async () => (await handle.query(erasureStatusQuery)).wait?.blocked_by[0]?.why !== null);
        expect(await handle.query(erasureStatusQuery)).toMatchObject({
          state: 'waiting_for_fraud_review',
          overdue: true,
          wait: { on: 'fraud_review', overdue: true, blocked_by: [blocker] },
        });
        const request = { reason: 'court order 9', requested_by: 'ops-1', override_fraud_review: true };
        await handle.signal(erasureRequestedSignal, request);
        return handle.result();
      },
    );
    expect(result).toMatchObject({ erased: true, overdue: true, request: { override_fraud_review: true } });
  });

  it('a recovery that cannot stop past the deadline makes it overdue; it erases once the recovery stops', async () => {
    const recovery = recoveryWorkflowId(`pay-${randomUUID()}`);
    const blocker = { workflow_id: recovery, why: 'payment recovery waits for ops: a charge of unknown outcome (k)' };
    const busyRecovery = { busy: true };
    const seen = { erased: 0 };
    const { result } = await run(
      {
        listings: [[recovery]],
        reviewLooks: 0,
        busyRecovery,
        blockers: [blocker],
        erase: async () => (seen.erased++, erased('c')),
      },
      async (tq, id) => {
        const handle = await start(tq, id, '1h');
        await env.sleep('2 hours');
        await until(async () => (await handle.query(erasureStatusQuery)).wait?.blocked_by[0]?.why !== null);
        expect(await handle.query(erasureStatusQuery)).toMatchObject({
          overdue: true,
          wait: { on: 'recoveries_stopping', overdue: true, blocked_by: [blocker] },
        });
        expect(seen.erased).toBe(0);
        busyRecovery.busy = false;
        return handle.result();
      },
    );
    expect(result).toMatchObject({ erased: true, overdue: true, cancelled: [recovery] });
  });
});
