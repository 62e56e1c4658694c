/**
 * A workflow's status while no worker polls its task queue (a deploy, a crash), on the real
 * Temporal dev server and Neo4j: a recovery is answered from the charge ledger (marked so), every
 * other status 503 with Retry-After, each within the request deadline — never a 500.
 *
 * "No worker" is a task queue nobody polls (the api below starts its workflows there), a second
 * harness whose worker is shut down, and a worker that cannot run its workflow tasks and then stops.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NativeConnection, Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { createCustomer } from '../../graph';
import { loadSettings } from '../../config/env';
import { erasureWorkflowId } from '../../temporal/erasure';
import { fraudOutcomeWorkflowId } from '../../temporal/fraud';
import { RECOVERY_WORKFLOW_TYPE, recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { oneTaskQueue } from '../../temporal/taskQueues';
import { nativeConnectionOptions } from '../../temporal/transport';
import { startHarness, testWorkflowCode, type Harness } from '../support/api';
import { customerWithTrustedDevice } from '../support/builders';
import { send, type Reply } from '../support/http';
import { cardIdentity, customerWithCards, paymentId } from '../support/recovery';
import { until } from '../support/wait';

/** The api's request deadline here: production's default (the tests' own is 10 s). */
const DEADLINE_MS = 2000;
/** Room past the deadline for the api's own work (the net under it answers 503 at deadline + 500 ms). */
const WITHIN_MS = DEADLINE_MS + 500;

let h: Harness;
/** The api, starting every workflow on a task queue no worker polls, with the tests' generous deadline. */
let starts: Harness['app'];
/** The same, with production's deadline: the status reads under test. */
let unpolled: Harness['app'];
const started: string[] = [];
const { PendingWorkflowTaskState } = temporal.api.enums.v1;

beforeAll(async () => {
  h = await startHarness();
  const taskQueues = oneTaskQueue(`nobody-polls-${randomUUID()}`);
  starts = h.withDeps((d) => ({ ...d, temporal: { ...d.temporal, taskQueues } }));
  unpolled = h.withDeps((d) => ({
    ...d,
    temporal: { ...d.temporal, taskQueues },
    limits: { ...d.limits, requestDeadlineMs: DEADLINE_MS },
  }));
});
afterAll(async () => {
  for (const id of started)
    await h?.client.workflow
      .getHandle(id)
      .terminate('test clean-up')
      .catch(() => undefined);
  await h?.close();
});

/** A call to `app`, with how long it took. */
async function timed(app: Harness['app'], method: string, path: string, token: string, body?: unknown) {
  const start = Date.now();
  const reply = await send(app, method, path, { token, body });
  return { ...reply, ms: Date.now() - start };
}

/** What a status route must answer without a worker and without a durable record: 503, Retry-After, in time. */
function expectUnavailable(reply: Reply & { ms: number }) {
  expect({ status: reply.status, body: reply.json }).toMatchObject({
    status: 503,
    body: { type: '/problems/unavailable', dependency: 'worker', detail: expect.stringMatching(/no worker/i) },
  });
  expect(reply.headers.get('content-type')).toContain('application/problem+json');
  expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(reply.ms).toBeLessThan(WITHIN_MS);
}

const failure = (customerId: string, card: string, decline_code: string) => ({
  payment_id: paymentId(),
  customer_id: customerId,
  payment_method_id: card,
  amount: 2599,
  currency: 'EUR',
  decline_code,
});

describe('a payment recovery whose workflow no worker answers', () => {
  it('is answered from the charge ledger, marked so with as_of, within the request deadline', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    const reported = await send(starts, 'POST', '/api/v1/payment-failures', {
      token: await h.token('payments:report'),
      body: f,
    });
    expect(reported.status).toBe(202);
    started.push(recoveryWorkflowId(f.payment_id));

    const res = await timed(unpolled, 'GET', `/api/v1/payment-recoveries/${f.payment_id}`, await h.token('ops'));
    expect({ status: res.status, body: res.json }).toMatchObject({
      status: 200,
      // Reserved in the ledger, never started: no worker ran its first step.
      body: { state: 'waiting', attempts: [], recovered_with: null, source: 'ledger' },
    });
    // How old the answer is: the ledger's last change, the report.
    expect(Date.parse(res.json.as_of as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(res.ms).toBeLessThan(WITHIN_MS);
  });

  it('is answered from the ledger with its charges after every worker of its queue stopped (a deploy)', async () => {
    // A second worker runs the recovery until it dunning (its other card declined too), then stops;
    // nobody else polls its queue.
    const other = await startHarness();
    let payment: string;
    let declined: string;
    try {
      const { customerId, cards } = await customerWithCards(other.graph, [
        `tok_decline_insufficient_funds_card-${cardIdentity()}`,
        `tok_decline_insufficient_funds_card-${cardIdentity()}`,
      ]);
      const f = failure(customerId, cards[0] as string, 'insufficient_funds');
      payment = f.payment_id;
      declined = cards[1] as string;
      const token = await other.token('payments:report');
      expect((await send(other.app, 'POST', '/api/v1/payment-failures', { token, body: f })).status).toBe(202);
      started.push(recoveryWorkflowId(payment));
      await until(async () => {
        const s = await send<RecoveryStatus>(other.app, 'GET', `/api/v1/payment-recoveries/${payment}`, { token });
        return s.json.state === 'dunning';
      });
    } finally {
      await other.close();
    }

    const res = await timed(unpolled, 'GET', `/api/v1/payment-recoveries/${payment}`, await h.token('ops'));
    expect({ status: res.status, body: res.json }).toMatchObject({
      status: 200,
      body: {
        // Started and not ended: the ledger does not say whether it charges or waits for its next round.
        state: 'recovering',
        attempts: [{ payment_method_id: declined, outcome: 'declined', decline_code: 'insufficient_funds' }],
        next_retry_at: null,
        source: 'ledger',
      },
    });
    const attempt = (res.json.attempts as { at: string }[])[0];
    expect(Date.parse(res.json.as_of as string)).toBeGreaterThanOrEqual(Date.parse(attempt?.at ?? ''));
    expect(res.ms).toBeLessThan(WITHIN_MS);
  }, 120_000);

  it('is 503 with Retry-After when the ledger has nothing of it either', async () => {
    // A recovery started around the api (the ledger never heard of it), on a queue nobody polls.
    const payment = paymentId();
    const { customerId } = await customerWithCards(h.graph, []);
    await h.deps.payloads.provision(recoveryWorkflowId(payment), customerId);
    await h.client.workflow.start(RECOVERY_WORKFLOW_TYPE, {
      workflowId: recoveryWorkflowId(payment),
      taskQueue: `nobody-polls-${randomUUID()}`,
      args: [{}],
    });
    started.push(recoveryWorkflowId(payment));
    expectUnavailable(await timed(unpolled, 'GET', `/api/v1/payment-recoveries/${payment}`, await h.token('ops')));
  });
});

describe('every other workflow status without a worker', () => {
  it('answers a fraud outcome, an identity merge, an expiry scan and an erasure 503 with Retry-After', async () => {
    const ops = await h.token('ops');
    // A fraud outcome.
    const c = await customerWithTrustedDevice(h.graph);
    const outcomeId = `cp-${randomUUID()}`;
    const reported = await timed(starts, 'POST', '/api/v1/fraud-outcomes', ops, {
      outcome_id: outcomeId,
      customer_id: c.customerId,
      outcome: 'challenge_passed',
      device_id: c.deviceId,
    });
    expect(reported.status).toBe(202);
    started.push(fraudOutcomeWorkflowId(outcomeId));
    expectUnavailable(await timed(unpolled, 'GET', `/api/v1/fraud-outcomes/${outcomeId}`, ops));

    // An identity merge: proposed (its first status is what it starts with), then asked for.
    const [a, b] = [await createCustomer(h.graph, {}), await createCustomer(h.graph, {})];
    const proposed = await timed(unpolled, 'POST', '/api/v1/identity-merges', ops, {
      survivor_id: a.id,
      merged_id: b.id,
      consent: false,
    });
    expect(proposed.status).toBe(202);
    expect(proposed.ms).toBeLessThan(WITHIN_MS);
    const mergeId = proposed.json.merge_id as string;
    started.push(mergeId);
    expectUnavailable(await timed(unpolled, 'GET', `/api/v1/identity-merges/${mergeId}`, ops));

    // An expiry scan of a day of its own (a scan's id is its day).
    const digit = (from: number, n: number) => from + Math.floor(Math.random() * n);
    const day = `19${digit(70, 30)}-0${digit(1, 9)}-1${digit(0, 9)}`;
    const scan = await timed(starts, 'POST', '/api/v1/admin/expiry-scan', ops, {
      as_of: day,
      reason: 'a scan no worker answers',
    });
    expect(scan.status).toBe(202);
    const scanId = scan.json.workflow_id as string;
    started.push(scanId);
    expectUnavailable(await timed(unpolled, 'GET', `/api/v1/admin/expiry-scans/${scanId}`, ops));

    // An erasure, asked for by the customer.
    const erased = await customerWithTrustedDevice(h.graph);
    const self = await h.token('self', erased.customerId);
    expect((await timed(starts, 'DELETE', `/api/v1/customers/${erased.customerId}`, self)).status).toBe(202);
    started.push(erasureWorkflowId(erased.customerId));
    expectUnavailable(await timed(unpolled, 'GET', `/api/v1/customers/${erased.customerId}/erasure`, ops));
  }, 120_000);

  it('answers a workflow whose task failed on a worker that then stopped 503, not 500', async () => {
    // A worker without the payload codec cannot read the workflow's input: its workflow task fails.
    const taskQueue = `failing-${randomUUID()}`;
    const failing = h.withDeps((d) => ({ ...d, temporal: { ...d.temporal, taskQueues: oneTaskQueue(taskQueue) } }));
    const connection = await NativeConnection.connect(nativeConnectionOptions(loadSettings()));
    const worker = await Worker.create({ connection, taskQueue, ...testWorkflowCode({}) });
    const running = worker.run();
    const c = await customerWithTrustedDevice(h.graph);
    const outcomeId = `cp-${randomUUID()}`;
    const ops = await h.token('ops');
    const handle = h.client.workflow.getHandle(fraudOutcomeWorkflowId(outcomeId));
    try {
      const reported = await timed(failing, 'POST', '/api/v1/fraud-outcomes', ops, {
        outcome_id: outcomeId,
        customer_id: c.customerId,
        outcome: 'challenge_passed',
        device_id: c.deviceId,
      });
      expect(reported.status).toBe(202);
      started.push(fraudOutcomeWorkflowId(outcomeId));
      await until(async () => ((await handle.describe()).raw.pendingWorkflowTask?.attempt ?? 0) > 1);
    } finally {
      worker.shutdown();
      await running;
      await connection.close();
    }
    // The attempt the worker held times out (10 s): the task waits, failing, for a worker to take it again.
    await until(async () => {
      const task = (await handle.describe()).raw.pendingWorkflowTask;
      return task?.state === PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED && (task.attempt ?? 0) > 1;
    }, 60_000);
    const res = await timed(unpolled, 'GET', `/api/v1/fraud-outcomes/${outcomeId}`, ops);
    expect({ status: res.status, body: res.json }).toMatchObject({
      status: 503,
      body: { dependency: 'worker', detail: expect.stringMatching(/workflow task/i) },
    });
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.ms).toBeLessThan(WITHIN_MS);
  }, 120_000);
});
