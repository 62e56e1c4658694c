/**
 * Money at the edges of a recovery, on the real services (Temporal's dev server, Neo4j, the
 * api and a worker) and a gateway simulator of the file's own, whose faults each test plans per
 * payment and which sees when every charge request arrives:
 *   - a stop is a stop: once the payment's owner's stop is accepted, no charge request is sent
 *     again; the charge in flight is settled with the gateway, never re-sent;
 *   - one charge per payment, whatever runs the recovery: a reset, two runs at once, a new run
 *     after a terminate — the ledger refuses a new key while another is open and the run resolves
 *     that one first;
 *   - a recovery terminated by hand is found, a new report of it is told so, and ops settle it;
 *     one that ended while a report of it (or of a look-alike) was being answered is not stranded;
 *   - a refused charge retried by ops once its cause is fixed (one, or a batch) can succeed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecoveryLedger, reserveRecovery, startRecovery, writeBackRecovery } from '../../graph/chargeLedger';
import { createAttemptTx, recordAttemptAnswerTx } from '../../graph/chargeAttempts';
import { addPaymentMethod } from '../../graph';
import { writeTx } from '../../graph/graph';
import { HttpPaymentGateway } from '../../clients/paymentGateway';
import { settleStrandedRecoveries } from '../../activities/strandedRecoveries';
import {
  paymentFailedSignal,
  RECOVERY_WORKFLOW_TYPE,
  recoveryWorkflowId,
  retryAttentionSignal,
  type OwnerStopAnswer,
  type PaymentFailure,
  type RecoveryStatus,
} from '../../temporal/recovery';
import { personaCustomerId } from '../../temporal/searchAttributes';
import { taskQueueFor } from '../../temporal/taskQueues';
import type { Harness } from '../support/api';
import { send } from '../support/http';
import { harnessOnPrivateGateway, strandedDeps, type PrivateGateway } from '../support/privateGateway';
import { cardIdentity, customerWithCards, forgetWorkflow, paymentId } from '../support/recovery';
import { until } from '../support/wait';

/** Who settles stranded recoveries in these tests, and why (the ledger records both). */
const SETTLING = { by: 'ops-money-edges', reason: 'the gateway is back after INC-7' };
let h: Harness;
let gw: PrivateGateway;
/** Seconds, not production's minutes: "the gateway has no charge" is believed 2 s after the last request. */
const SETTLE_MS = 2_000;

let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ h, gw, close } = await harnessOnPrivateGateway(SETTLE_MS));
});
afterAll(() => close?.());

const card = (kind: 'pays' | 'declines') =>
  `tok_visa_card-${cardIdentity()}${kind === 'declines' ? '_decline_insufficient_funds' : ''}`;

/** A customer whose first card's payment failed and whose second card pays. */
async function customerWithAGoodCard() {
  const { customerId, cards } = await customerWithCards(h.graph, [card('declines'), card('pays')]);
  const f: PaymentFailure = {
    payment_id: paymentId(),
    customer_id: customerId,
    payment_method_id: cards[0] as string,
    amount: 4200,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  };
  return { customerId, cards, f, good: cards[1] as string };
}

async function report(f: PaymentFailure) {
  return send(h.app, 'POST', '/api/v1/payment-failures', { token: await h.token('payments:report'), body: f });
}

async function status(payment: string) {
  return send<RecoveryStatus & Record<string, unknown>>(h.app, 'GET', `/api/v1/payment-recoveries/${payment}`, {
    token: await h.token('payments:report'),
  });
}

async function noLongerOwed(payment: string, wait: boolean) {
  return send<OwnerStopAnswer & Record<string, unknown>>(
    h.app,
    'POST',
    `/api/v1/payment-recoveries/${payment}/no-longer-owed${wait ? '?wait=true' : ''}`,
    { token: await h.token('payments:report'), body: { reason: 'settled_elsewhere', note: 'paid by bank transfer' } },
  );
}

/** What the gateway charged for a payment, by its own records. */
async function chargesOf(payment: string) {
  return new HttpPaymentGateway(gw.url, 5_000).chargesByReference(payment);
}
const succeeded = async (payment: string) => (await chargesOf(payment)).filter((c) => c.status === 'succeeded');

const handleOf = (payment: string) => h.client.workflow.getHandle(recoveryWorkflowId(payment));

/** The recovery's input as the api starts it. */
function recoveryInput() {
  return {
    dunningSchedule: h.deps.recovery.dunningSchedule,
    chargeRetryFor: h.deps.recovery.chargeRetryFor,
    attentionDeadline: h.deps.recovery.attentionDeadline,
    settleFor: h.deps.recovery.settleFor,
  };
}

/**
 * A second run of a payment's recovery started by hand beside (or after) the api's, as ops could
 * from the CLI: its own workflow id, or the same one once the first closed.
 */
async function startRunByHand(f: PaymentFailure, workflowId: string) {
  await h.deps.payloads.provision(workflowId, f.customer_id);
  return h.client.workflow.signalWithStart(RECOVERY_WORKFLOW_TYPE, {
    workflowId,
    taskQueue: taskQueueFor(h.deps.temporal.taskQueues, RECOVERY_WORKFLOW_TYPE),
    args: [recoveryInput()],
    signal: paymentFailedSignal,
    signalArgs: [f],
    typedSearchAttributes: [{ key: personaCustomerId, value: f.customer_id }],
  });
}

/**
 * The first charge of the good card goes through at the gateway but its answer is lost, and every
 * request under its key after that fails before the gateway (a 503) while `held`: the recovery
 * does not know whether it charged, and retries under the same key.
 */
function loseTheFirstAnswer(f: PaymentFailure, good: string) {
  const state = { held: true };
  const key = `${f.payment_id}:${good}`;
  gw.plan(f.payment_id, (req) => {
    if (req.key !== key) return null;
    if (req.nOfKey === 0) return { kind: 'lose_answer' };
    return state.held ? { kind: 'fail_before' } : null;
  });
  return state;
}

/**
 * A recovery whose charge of the good card went through with its answer lost (its outcome unknown
 * to the run, retried under its key while `faults.held`), and a newer card added since: a run
 * started now tries the newer card first.
 */
async function openChargeAndANewerCard() {
  const { customerId, f, good } = await customerWithAGoodCard();
  const faults = loseTheFirstAnswer(f, good);
  expect((await report(f)).status).toBe(202);
  await until(async () => gw.requestsFor(f.payment_id).length >= 2);
  await addPaymentMethod(h.graph, customerId, {
    type: 'card',
    token: card('pays'),
    brand: 'visa',
    last_four: '9999',
    expiry_month: 12,
    expiry_year: 2035,
  });
  return { f, good, faults };
}

describe('a stop is a stop', () => {
  it('sends nothing once the owner’s stop is taken: a charge that never reached the gateway is settled', async () => {
    const { f } = await customerWithAGoodCard();
    // The gateway is away for the first three requests (503 before anything is charged).
    gw.plan(f.payment_id, (req) => (req.n < 3 ? { kind: 'fail_before' } : null));
    expect((await report(f)).status).toBe(202);
    await until(async () => gw.requestsFor(f.payment_id).length >= 1);
    // Answered once it stopped (200), or as stopping when that takes longer than the answer waits (202).
    const taken = await noLongerOwed(f.payment_id, false);
    const acceptedAt = Date.now();
    expect(taken.json.outcome).toBe(taken.status === 200 ? 'stopped' : 'stopping');
    const result = (await handleOf(f.payment_id).result()) as RecoveryStatus;
    const after = gw.requestsFor(f.payment_id).filter((r) => r.at > acceptedAt);
    expect(after, 'charge requests sent after the stop was accepted').toEqual([]);
    expect(await succeeded(f.payment_id)).toEqual([]);
    expect(result).toMatchObject({ state: 'stopped', recovered_with: null });
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery.state).toBe('stopped');
    // The owner's word again: answered from what happened, nothing charged.
    expect((await noLongerOwed(f.payment_id, true)).json).toMatchObject({ outcome: 'stopped', charge: null });
  }, 90_000);

  it('answers a stop after a charge went through (its answer lost) with that charge, sending nothing', async () => {
    const { f, good } = await customerWithAGoodCard();
    const faults = loseTheFirstAnswer(f, good);
    expect((await report(f)).status).toBe(202);
    await until(async () => gw.requestsFor(f.payment_id).length >= 2);
    // Answered at once (200, recovered: the gateway lists the charge) or once it settles (202).
    const taken = await noLongerOwed(f.payment_id, false);
    expect([200, 202]).toContain(taken.status);
    const acceptedAt = Date.now();
    faults.held = false;
    const result = (await handleOf(f.payment_id).result()) as RecoveryStatus;
    expect(gw.requestsFor(f.payment_id).filter((r) => r.at > acceptedAt)).toEqual([]);
    const charged = await succeeded(f.payment_id);
    expect(charged).toHaveLength(1);
    expect(result).toMatchObject({ state: 'recovered', recovered_with: good });
    expect((await noLongerOwed(f.payment_id, true)).json).toMatchObject({
      outcome: 'recovered',
      charge: { payment_method_id: good, charge_id: charged[0]?.id },
    });
  }, 90_000);
});

describe('one charge per payment, whatever runs the recovery', () => {
  it('a reset to the first workflow task, a newer card in the wallet, resolves the open charge first', async () => {
    const { f, good, faults } = await openChargeAndANewerCard();
    const handle = handleOf(f.payment_id);
    const history = await handle.fetchHistory();
    const firstTask = history.events?.find((e) => e.workflowTaskCompletedEventAttributes)?.eventId;
    const { runId } = await h.client.workflowService.resetWorkflowExecution({
      namespace: h.client.options.namespace,
      workflowExecution: { workflowId: handle.workflowId },
      workflowTaskFinishEventId: firstTask,
      reason: 'test: a reset after a bad deploy',
      requestId: randomUUID(),
    });
    const resetAt = Date.now();
    await until(async () => gw.requestsFor(f.payment_id).some((r) => r.at > resetAt));
    faults.held = false;
    const newRun = h.client.workflow.getHandle(handle.workflowId, runId ?? undefined);
    const result = (await newRun.result()) as RecoveryStatus;
    expect((await succeeded(f.payment_id)).length, 'successful charges at the gateway').toBe(1);
    expect(result).toMatchObject({ state: 'recovered', recovered_with: good });
    const ledger = await readRecoveryLedger(h.graph, f.payment_id);
    expect(ledger?.recovery).toMatchObject({ state: 'recovered', recovered_with: good });
  }, 120_000);

  it('a batch reset by build id (a bad deploy undone) resolves the open charge first', async () => {
    const { f, good, faults } = await openChargeAndANewerCard();
    const handle = handleOf(f.payment_id);
    const before = await handle.describe();
    // The build that ran the workflow's tasks: undone as a bad deploy's would be, for every workflow
    // it touched (here: those the query finds), back to before its first task.
    const events = (await handle.fetchHistory()).events ?? [];
    const buildId = events.find((e) => e.workflowTaskCompletedEventAttributes?.workerVersion?.buildId)
      ?.workflowTaskCompletedEventAttributes?.workerVersion?.buildId as string;
    const jobId = `reset-by-build-${randomUUID()}`;
    await h.client.workflowService.startBatchOperation({
      namespace: h.client.options.namespace,
      jobId,
      reason: 'test: a bad deploy undone',
      visibilityQuery: `WorkflowId = '${handle.workflowId}' AND ExecutionStatus = 'Running'`,
      resetOperation: { identity: 'test', options: { buildId } },
    });
    await until(async () => {
      const job = await h.client.workflowService.describeBatchOperation({
        namespace: h.client.options.namespace,
        jobId,
      });
      return Number(job.completeOperationCount ?? 0) + Number(job.failureOperationCount ?? 0) >= 1;
    }, 60_000);
    const after = await handle.describe();
    expect(after.runId, 'the batch reset the run').not.toBe(before.runId);
    const resetAt = Date.now();
    await until(async () => gw.requestsFor(f.payment_id).some((r) => r.at > resetAt));
    faults.held = false;
    const result = (await h.client.workflow.getHandle(handle.workflowId, after.runId).result()) as RecoveryStatus;
    expect((await succeeded(f.payment_id)).length, 'successful charges at the gateway').toBe(1);
    expect(result).toMatchObject({ state: 'recovered', recovered_with: good });
  }, 120_000);

  it('two runs at once charge once: the second finds the first one’s charge open and resolves it', async () => {
    const { f, good, faults } = await openChargeAndANewerCard();
    const second = await startRunByHand(f, `${recoveryWorkflowId(f.payment_id)}-second`);
    const startedAt = Date.now();
    await until(async () => gw.requestsFor(f.payment_id).some((r) => r.at > startedAt));
    faults.held = false;
    const [first, other] = (await Promise.all([handleOf(f.payment_id).result(), second.result()])) as [
      RecoveryStatus,
      RecoveryStatus,
    ];
    expect((await succeeded(f.payment_id)).length, 'successful charges at the gateway').toBe(1);
    expect(first).toMatchObject({ state: 'recovered', recovered_with: good });
    expect(other).toMatchObject({ state: 'recovered', recovered_with: good });
  }, 120_000);
});

describe('a recovery terminated by hand', () => {
  it('is told to a new report of its payment, and settled by ops with the charge the gateway made', async () => {
    const { f, good } = await customerWithAGoodCard();
    const faults = loseTheFirstAnswer(f, good);
    expect((await report(f)).status).toBe(202);
    await until(async () => gw.requestsFor(f.payment_id).length >= 2);
    await handleOf(f.payment_id).terminate('test: terminated by hand');
    faults.held = false;
    // Reported again: nothing runs it, and the answer says so (not 202 and silence).
    const again = await report(f);
    expect(again.status).toBe(409);
    expect(String(again.json.detail)).toMatch(/recovering.*no workflow runs it/);
    const settled = await settleStrandedRecoveries(strandedDeps(h, gw, SETTLE_MS), {
      paymentIds: [f.payment_id],
      requested: SETTLING,
    });
    expect(settled).toMatchObject({ recovered: [f.payment_id], stopped: [], unknown: [] });
    const charged = await succeeded(f.payment_id);
    expect(charged).toHaveLength(1);
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery).toMatchObject({
      state: 'recovered',
      recovered_with: good,
      charge_id: charged[0]?.id,
    });
    expect((await report(f)).status).toBe(202);
  }, 90_000);

  it('is settled as stopped when the gateway charged nothing, once the settle window has passed', async () => {
    const { f } = await customerWithAGoodCard();
    const state = { held: true };
    gw.plan(f.payment_id, () => (state.held ? { kind: 'fail_before' } : null));
    expect((await report(f)).status).toBe(202);
    await until(async () => gw.requestsFor(f.payment_id).length >= 1);
    await handleOf(f.payment_id).terminate('test: terminated by hand');
    state.held = false;
    const deps = strandedDeps(h, gw, SETTLE_MS);
    await until(async () => {
      const settled = await settleStrandedRecoveries(deps, { paymentIds: [f.payment_id], requested: SETTLING });
      return settled.stopped.includes(f.payment_id);
    });
    expect(await chargesOf(f.payment_id)).toEqual([]);
    // Who settled it and why, in the ledger's record of the stop and the end.
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery).toMatchObject({
      state: 'stopped',
      stop_request: expect.stringContaining(`settled by ${SETTLING.by} (${SETTLING.reason})`) as unknown,
      reason: expect.stringContaining(`settled by ${SETTLING.by} (${SETTLING.reason})`) as unknown,
    });
    // Never without a reason (a dry run aside).
    await expect(settleStrandedRecoveries(deps, { paymentIds: [f.payment_id] })).rejects.toMatchObject({
      field: 'reason',
    });
  }, 90_000);
  it('is not settled stopped while its ledger has a charge answered succeeded that the gateway lacks', async () => {
    const { customerId, f, good } = await customerWithAGoodCard();
    await reserveRecovery(h.graph, f);
    await startRecovery(h.graph, f);
    // The gateway answered this charge succeeded (recorded), yet its listing by reference lacks it (a lag).
    const key = `${f.payment_id}:${good}`;
    await writeTx(h.graph, async (tx) => {
      const request = { ...f, payment_method_id: good, customer_id: customerId, reference: f.payment_id };
      await createAttemptTx(
        tx,
        { ...request, key, sealed: 'sealed-by-the-test', card: null, initiator: 'mit' },
        new Date(),
      );
      await recordAttemptAnswerTx(tx, key, { state: 'succeeded', charge_id: 'ch_unlisted' }, new Date());
    });
    const settled = await settleStrandedRecoveries(strandedDeps(h, gw, SETTLE_MS), {
      paymentIds: [f.payment_id],
      requested: SETTLING,
      now: () => new Date(Date.now() + 3_600_000),
    });
    expect(settled).toMatchObject({ recovered: [], stopped: [], unknown: [f.payment_id] });
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery.state).toBe('recovering');
  });

  it('takes the owner’s stop of one a restore wrote back: recorded, 409 naming ops, then settled', async () => {
    const { f, good } = await customerWithAGoodCard();
    const faults = loseTheFirstAnswer(f, good);
    expect((await report(f)).status).toBe(202);
    await until(async () => gw.requestsFor(f.payment_id).length >= 2);
    const handle = handleOf(f.payment_id);
    const { startTime } = await handle.describe();
    await handle.terminate('test: terminated by hand');
    faults.held = false;
    await forgetWorkflow(h.client, h.graph.config.TEMPORAL_NAMESPACE, recoveryWorkflowId(f.payment_id));
    // A restore from a backup taken before the recovery began: the ledger lost it and its attempts,
    // and the restore writes it back as it began — no attempt recorded, the gateway's charge unknown to it.
    await writeTx(h.graph, (tx) =>
      tx.run('MATCH (r:Recovery {id: $id}) OPTIONAL MATCH (r)-[:ATTEMPTED]->(a) DETACH DELETE r, a', {
        id: f.payment_id,
      }),
    );
    await writeBackRecovery(h.graph, {
      payment_id: f.payment_id,
      customer_id: f.customer_id,
      started_at: startTime.toISOString(),
      payment_method_id: f.payment_method_id,
      amount: f.amount,
      currency: f.currency,
      decline_code: f.decline_code,
      reason: 'test: lost in a restore',
    });
    // Not answered `stopped` on the ledger's word: the gateway may hold a charge the ledger never heard of.
    const stop = await noLongerOwed(f.payment_id, true);
    expect(stop.status).toBe(409);
    expect(String(stop.json.detail)).toMatch(/stop is recorded.*ops:settle-recoveries/);
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery).toMatchObject({
      state: 'recovering',
      stop_requested_by: 'owner',
    });
    const settled = await settleStrandedRecoveries(strandedDeps(h, gw, SETTLE_MS), {
      paymentIds: [f.payment_id],
      requested: SETTLING,
    });
    expect(settled).toMatchObject({ recovered: [f.payment_id], stopped: [], unknown: [] });
    const charged = await succeeded(f.payment_id);
    expect(charged).toHaveLength(1);
    expect((await noLongerOwed(f.payment_id, true)).json).toMatchObject({
      outcome: 'recovered',
      charge: { payment_method_id: good, charge_id: charged[0]?.id },
    });
  }, 180_000);
});

describe('a report racing the end of a recovery', () => {
  /**
   * The api as it runs, except that asking Temporal about `payment`'s workflow first lets that
   * recovery finish (`end`): its run records its end in the ledger and closes after the api read the
   * ledger and before Temporal answers, as a resent report racing its own recovery can see it.
   */
  function apiWhereTheRunEndsFirst(payment: string, end: () => Promise<void>) {
    const asked = { times: 0 };
    const app = h.withDeps((deps) => {
      const workflows = deps.temporal.client.workflow;
      const getHandle = ((workflowId: string, ...rest: [string?]) => {
        const handle = workflows.getHandle(workflowId, ...rest);
        if (workflowId !== recoveryWorkflowId(payment)) return handle;
        const describe = async () => {
          asked.times++;
          await end();
          return handle.describe();
        };
        return Object.assign(Object.create(handle) as typeof handle, { describe });
      }) as typeof workflows.getHandle;
      const workflow = Object.assign(Object.create(workflows) as typeof workflows, { getHandle });
      const client = Object.assign(Object.create(deps.temporal.client) as typeof deps.temporal.client, { workflow });
      // The run's end (a charge retry's backoff away) is waited for inside the request: a budget for it.
      const limits = { ...deps.limits, requestDeadlineMs: 120_000 };
      return { ...deps, limits, temporal: { ...deps.temporal, client } };
    });
    return { app, asked };
  }

  /** A recovery running with its charge of the good card failing before the gateway while `held`. */
  async function heldRecovery() {
    const { f, good } = await customerWithAGoodCard();
    const held = { held: true };
    gw.plan(f.payment_id, () => (held.held ? { kind: 'fail_before' } : null));
    expect((await report(f)).status).toBe(202);
    await until(async () => gw.requestsFor(f.payment_id).length >= 1);
    const release = async () => {
      held.held = false;
      await handleOf(f.payment_id).result();
    };
    return { f, good, release };
  }

  it('answers a resent report as the duplicate it is, not as stranded, when its recovery ended meanwhile', async () => {
    const { f, good, release } = await heldRecovery();
    const { app, asked } = apiWhereTheRunEndsFirst(f.payment_id, release);
    const again = await send(app, 'POST', '/api/v1/payment-failures', {
      token: await h.token('payments:report'),
      body: f,
    });
    expect(asked.times, 'the api asked Temporal whether the recovery runs').toBe(1);
    expect(again).toMatchObject({ status: 202, json: { workflow_id: recoveryWorkflowId(f.payment_id) } });
    expect(await handleOf(f.payment_id).result()).toMatchObject({ state: 'recovered', recovered_with: good });
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery).toMatchObject({
      state: 'recovered',
      recovered_with: good,
    });
    expect(await succeeded(f.payment_id)).toHaveLength(1);
  }, 90_000);

  it('takes a new payment beside a recovery of its amount that ended meanwhile', async () => {
    const { f, good, release } = await heldRecovery();
    const { app, asked } = apiWhereTheRunEndsFirst(f.payment_id, release);
    const next = { ...f, payment_id: paymentId() };
    const res = await send(app, 'POST', '/api/v1/payment-failures', {
      token: await h.token('payments:report'),
      body: next,
    });
    expect(asked.times, 'the api asked Temporal whether the look-alike runs').toBe(1);
    expect(res).toMatchObject({ status: 202, json: { workflow_id: recoveryWorkflowId(next.payment_id) } });
    expect(await handleOf(f.payment_id).result()).toMatchObject({ state: 'recovered', recovered_with: good });
    expect(await handleOf(next.payment_id).result()).toMatchObject({ state: 'recovered' });
    for (const p of [f.payment_id, next.payment_id]) expect(await succeeded(p)).toHaveLength(1);
  }, 90_000);
});

describe('a charge the gateway refused', () => {
  it('succeeds when ops retry it once its cause is fixed: one by the Update, another by the batch', async () => {
    const runs = await Promise.all([customerWithAGoodCard(), customerWithAGoodCard()]);
    const fixed = { done: false };
    for (const { f, good } of runs)
      gw.plan(f.payment_id, (req) =>
        req.key === `${f.payment_id}:${good}` && !fixed.done
          ? { kind: 'refuse', status: 401, code: 'invalid_api_key' }
          : null,
      );
    for (const { f } of runs) expect((await report(f)).status).toBe(202);
    const attentionOf = async (payment: string) => (await status(payment)).json.attention;
    for (const { f } of runs) await until(async () => (await attentionOf(f.payment_id))?.kind === 'charge_refused');
    const waitingSince = new Map<string, string | undefined>();
    for (const { f } of runs) waitingSince.set(f.payment_id, (await attentionOf(f.payment_id))?.since);
    // The cause fixed (the gateway's credentials rotated): ops retry.
    fixed.done = true;
    const [one, batch] = runs;
    const since = waitingSince.get(one.f.payment_id);
    const retried = await send(h.app, 'POST', `/api/v1/payment-recoveries/${one.f.payment_id}/attention`, {
      token: await h.token('ops'),
      body: { action: 'retry', since, note: 'gateway credentials rotated' },
    });
    expect(retried.status).toBe(200);
    await handleOf(batch.f.payment_id).signal(retryAttentionSignal);
    for (const { f, good } of runs) {
      // Ended, or waiting for ops again: either way the retry is over.
      await until(async () => {
        const s = (await status(f.payment_id)).json;
        return (
          s.state === 'recovered' ||
          (s.state === 'needs_attention' && s.attention?.since !== waitingSince.get(f.payment_id))
        );
      });
      expect((await status(f.payment_id)).json).toMatchObject({ state: 'recovered', recovered_with: good });
      expect(await succeeded(f.payment_id)).toHaveLength(1);
    }
  }, 90_000);
});
