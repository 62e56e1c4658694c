/**
 * An erasure's wait has a deadline, on the real api, worker, Temporal and Neo4j: held by a fraud
 * review past its deadline, the erasure says it is overdue and names the review and why (read
 * from the review itself), erases nothing meanwhile, and goes on by itself once ops end what
 * holds it — here by terminating the review's workflow.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCustomer } from '../../graph';
import {
  ERASURE_WORKFLOW_TYPE,
  erasureRequestedSignal,
  erasureWorkflowId,
  type ErasureOutcome,
  type ErasureStatus,
} from '../../temporal/erasure';
import { fraudOutcomeWorkflowId } from '../../temporal/fraud';
import { personaCustomerId } from '../../temporal/searchAttributes';
import { startHarness, type Harness } from '../support/api';
import { takenOverCustomer } from '../support/builders';
import { send } from '../support/http';
import { until } from '../support/wait';

let h: Harness;
let ops: string;
beforeAll(async () => {
  h = await startHarness();
  ops = await h.token('ops');
});
afterAll(() => h?.close());

const call = (method: string, path: string, token: string) => send(h.app, method, path, { token, empty: {} });

describe('an erasure past its wait deadline', () => {
  it('is overdue naming the review holding it and why, erases nothing, erases once ops terminate it', async () => {
    // A customer taken over: suspended, its review pending (it would wait 30 days).
    const { customerId, outcomeId, review } = await takenOverCustomer(h);

    // Ops' erasure (with a reason, as DELETE sends it), with a deadline of seconds.
    const reason = `court order, ticket ${randomUUID()}`;
    const erasure = await h.client.workflow.signalWithStart(ERASURE_WORKFLOW_TYPE, {
      workflowId: erasureWorkflowId(customerId),
      taskQueue: h.taskQueue,
      args: [{ customer_id: customerId, wait_deadline: '2s' }],
      signal: erasureRequestedSignal,
      signalArgs: [{ reason, requested_by: 'ops-1', override_fraud_review: false }],
      typedSearchAttributes: [{ key: personaCustomerId, value: customerId }],
    });
    const base = `/api/v1/customers/${customerId}`;
    await until(async () => {
      const s = (await call('GET', `${base}/erasure`, ops)).json as unknown as ErasureStatus;
      return s.overdue && (s.wait?.blocked_by[0]?.why ?? null) !== null;
    }, 60_000);
    const status = (await call('GET', `${base}/erasure`, ops)).json as unknown as ErasureStatus;
    expect(status).toMatchObject({
      state: 'waiting_for_fraud_review',
      overdue: true,
      wait: { on: 'fraud_review', overdue: true },
    });
    expect(status.wait?.blocked_by).toEqual([
      {
        workflow_id: fraudOutcomeWorkflowId(outcomeId),
        why: expect.stringMatching(/fraud review awaits ops' decision \(resolveReview\) until 20\d\d-/) as unknown,
      },
    ]);
    expect(Date.parse(status.wait?.due_at ?? '') - Date.parse(status.wait?.since ?? '')).toBe(2000);
    // Nothing erased while it waits.
    expect((await getCustomer(h.graph, customerId))?.status).toBe('suspended');

    // The way out: ops end what holds it; the erasure's next look finds it closed and erases.
    await review.terminate('stuck: ops let the erasure go on');
    const outcome = (await erasure.result()) as ErasureOutcome;
    expect(outcome).toMatchObject({
      erased: true,
      overdue: true,
      waited_for: [fraudOutcomeWorkflowId(outcomeId)],
      request: { reason },
    });
    expect((await getCustomer(h.graph, customerId))?.status).toBe('erased');
    expect((await call('GET', `${base}/erasure`, ops)).json).toMatchObject({ state: 'done', overdue: true });
  }, 180_000);
});
