/**
 * The issue's scenario through the real api, worker, Temporal and Neo4j: an account is taken
 * over and suspended, and the customer's own token (which the attacker holds) can read the
 * profile and history but cannot export, erase or change the wallet; ops can, with a reason
 * that is recorded; an erasure waits for the pending fraud review, and only ops' override with a
 * reason erases at once (cancelling the review).
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPaymentMethod, getCustomer, listCustomerEvents, removePaymentMethod } from '../../graph';
import { createErasureActivities } from '../../activities/erasure';
import { eraseCustomer } from '../../graph/erasure';
import { ERASURE_WORKFLOW_TYPE, erasureWorkflowId, type ErasureOutcome } from '../../temporal/erasure';
import { fraudOutcomeWorkflowId, type FraudOutcomeStatus } from '../../temporal/fraud';
import { startHarness, type Harness } from '../support/api';
import { takenOverCustomer } from '../support/builders';
import { cardInput } from '../support/graph';
import { send } from '../support/http';
import { customerWithCards } from '../support/recovery';
import { until } from '../support/wait';

let h: Harness;
let ops: string;
let chimera: string;
beforeAll(async () => {
  h = await startHarness();
  ops = await h.token('ops');
  chimera = await h.token('fraud:report');
});
afterAll(() => h?.close());

const call = (method: string, path: string, token: string, options: { body?: unknown; reason?: string } = {}) =>
  send(h.app, method, path, {
    token,
    body: options.body,
    headers: options.reason === undefined ? {} : { 'persona-reason': options.reason },
    empty: {},
  });

const newCard = () => cardInput({ token: `tok_visa_${randomUUID()}`, expiry_year: 2036 });

/** A customer with a card and a trusted device, taken over: suspended, its review pending. */
async function takenOver() {
  const taken = await takenOverCustomer(h);
  expect((await getCustomer(h.graph, taken.customerId))?.status).toBe('suspended');
  return taken;
}

const eventsOf = async (customerId: string, type: string) =>
  (await listCustomerEvents(h.graph, customerId, { limit: 500 })).filter((e) => e.type === type);

describe('a taken-over, suspended account', () => {
  it(
    'the customer’s own token reads profile and history but cannot export, erase or change the wallet; ' +
      'ops can with a recorded reason; erasure waits for the review until ops override it',
    async () => {
      const { customerId, cards, outcomeId, review } = await takenOver();
      const self = await h.token('self', customerId); // signed in just now: only the status stops it
      const base = `/api/v1/customers/${customerId}`;

      // What the attacker holding the customer's token can still do: read.
      expect((await call('GET', `${base}/profile`, self)).json).toMatchObject({ status: 'suspended' });
      expect((await call('GET', `${base}/events`, self)).status).toBe(200);
      expect((await call('GET', `${base}/payment-methods`, self)).status).toBe(200);
      // And what it cannot: 403 naming the status.
      for (const [method, path, body] of [
        ['GET', `${base}/export`, undefined],
        ['DELETE', base, undefined],
        ['POST', `${base}/payment-methods`, newCard()],
        ['DELETE', `${base}/payment-methods/${cards[0]}`, undefined],
      ] as const) {
        const res = await call(method, path, self, { body });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.json).toMatchObject({ type: '/problems/customer-not-active' });
        expect(res.json.detail).toMatch(/customer is suspended/);
      }
      await expect(h.client.workflow.getHandle(erasureWorkflowId(customerId)).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
      expect((await call('GET', `${base}/payment-methods`, ops)).json.data).toHaveLength(1);

      // Ops: a reason is required, and recorded.
      const noReason = await call('GET', `${base}/export`, ops);
      expect([noReason.status, noReason.json.field]).toEqual([400, 'persona-reason']);
      const exportReason = `customer called in, ticket ${randomUUID()}`;
      const exported = await call('GET', `${base}/export`, ops, { reason: exportReason });
      expect(exported.status).toBe(200);
      expect((exported.json.profile as { customer_id: string }).customer_id).toBe(customerId);
      const cardReason = `replacement card, ticket ${randomUUID()}`;
      expect((await call('POST', `${base}/payment-methods`, ops, { body: newCard() })).status).toBe(400);
      expect((await call('POST', `${base}/payment-methods`, ops, { body: newCard(), reason: cardReason })).status).toBe(
        201,
      );
      // Whoever holds the customer's token reads its history without what fraud checks found or
      // what support wrote: no outcome kind, no ops' reasons (staff read both).
      const ownWords = JSON.stringify((await call('GET', `${base}/events`, self)).json);
      const staffWords = JSON.stringify((await call('GET', `${base}/events`, ops)).json);
      for (const secret of ['takeover', 'account_takeover', cardReason, exportReason, outcomeId]) {
        expect(ownWords, secret).not.toContain(secret);
      }
      expect(ownWords).toContain('Account suspended while we review it');
      expect(staffWords).toMatch(/account takeover/);
      expect(staffWords).toContain(cardReason);
      const audit = (await eventsOf(customerId, 'OpsActionRecorded')).map((e) => e.payload);
      expect(audit).toEqual(
        expect.arrayContaining([
          { action: 'export', reason: exportReason, actor: null, customer_status: 'suspended' },
          { action: 'add_payment_method', reason: cardReason, actor: null, customer_status: 'suspended' },
        ]),
      );

      // Ops' erasure without an override waits for the review, and never cancels it.
      const eraseReason = `customer asked by phone, ticket ${randomUUID()}`;
      expect((await call('DELETE', base, ops)).json.field).toBe('persona-reason');
      expect((await call('DELETE', base, ops, { reason: eraseReason })).status).toBe(202);
      await until(async () => {
        const s = await call('GET', `${base}/erasure`, ops);
        return s.status === 200 && s.json.state === 'waiting_for_fraud_review';
      });
      expect((await call('GET', `${base}/erasure`, ops)).json).toMatchObject({
        running: true,
        waiting_for: [fraudOutcomeWorkflowId(outcomeId)],
        request: { reason: eraseReason, override_fraud_review: false },
      });
      expect((await review.query<FraudOutcomeStatus>('fraudOutcomeStatus')).state).toBe('awaiting_review');
      expect((await getCustomer(h.graph, customerId))?.status).toBe('suspended');
      // The customer's own token cannot override; an override needs a reason.
      expect((await call('DELETE', `${base}?override=fraud_review`, self)).status).toBe(403);
      const bare = await call('DELETE', `${base}?override=fraud_review`, ops);
      expect([bare.status, bare.json.field]).toEqual([400, 'persona-reason']);

      // With ops' override and its reason the erasure proceeds, cancels the review, records the reason.
      const overrideReason = `legal request, ticket ${randomUUID()}`;
      expect((await call('DELETE', `${base}?override=fraud_review`, ops, { reason: overrideReason })).status).toBe(202);
      const outcome = (await h.client.workflow.getHandle(erasureWorkflowId(customerId)).result()) as ErasureOutcome;
      expect(outcome).toMatchObject({
        erased: true,
        cancelled: [fraudOutcomeWorkflowId(outcomeId)],
        waited_for: [fraudOutcomeWorkflowId(outcomeId)],
        request: { reason: overrideReason, requested_by: null, override_fraud_review: true },
      });
      expect((await review.describe()).status.name).toBe('CANCELLED');
      const [erased] = await eventsOf(customerId, 'CustomerErased');
      // The erasure's record outlives the customer (it is published in clear): the kind of request, never the words.
      expect(erased?.payload.request).toEqual({
        reason_code: 'ops_request',
        requested_by: null,
        override_fraud_review: true,
      });
      expect(JSON.stringify(erased?.payload)).not.toContain(overrideReason);
    },
  );

  it('an erasure waits for the review and erases once ops decide it, the review’s decision recorded', async () => {
    const { customerId, cards, outcomeId, review } = await takenOver();
    const base = `/api/v1/customers/${customerId}`;
    const reason = `customer asked by letter, ticket ${randomUUID()}`;
    expect((await call('DELETE', base, ops, { reason })).status).toBe(202);
    await until(async () => (await call('GET', `${base}/erasure`, ops)).json.state === 'waiting_for_fraud_review');
    // While it runs no new recovery of the customer starts (its history key would be destroyed
    // under it); nothing was written for it.
    const payment = `pay-${randomUUID()}`;
    const failure = await call('POST', '/api/v1/payment-failures', await h.token('payments:report'), {
      body: {
        payment_id: payment,
        customer_id: customerId,
        payment_method_id: cards[0],
        amount: 500,
        currency: 'EUR',
        decline_code: 'insufficient_funds',
      },
    });
    expect(failure.status).toBe(409);
    expect(failure.json.detail).toMatch(/being erased/);
    expect(
      await h.graph.query('MATCH (k:HistoryKey {id: $id}) RETURN k', { id: `payment-recovery-${payment}` }),
    ).toEqual([]);

    // The wait is one activity whose retries look again: no worker slot held between looks.
    const erasure = h.client.workflow.getHandle(erasureWorkflowId(customerId));
    await until(async () =>
      ((await erasure.describe()).raw.pendingActivities ?? []).some(
        (a) => a.activityType?.name === 'fraudReviewsEnded' && (a.attempt ?? 0) >= 2,
      ),
    );
    const decided = await call('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, ops, {
      body: { decision: 'confirm' },
    });
    expect(decided.status).toBe(200);
    const outcome = (await erasure.result()) as ErasureOutcome;
    const { events } = await erasure.fetchHistory();
    const looks = (events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'fraudReviewsEnded',
    );
    expect(looks).toHaveLength(1);
    expect(outcome).toMatchObject({
      erased: true,
      cancelled: [],
      waited_for: [fraudOutcomeWorkflowId(outcomeId)],
      request: { reason, override_fraud_review: false },
    });
    expect(await eventsOf(customerId, 'FraudReviewResolved')).toHaveLength(1);
    // The review ended, and with the customer its history's payloads went (their key destroyed).
    expect((await review.describe()).status.name).toBe('COMPLETED');
    await expect(review.result()).rejects.toThrow(/history key of customer .* is gone/);
  });

  it('finds a review visibility does not list yet: the graph names it and Temporal is asked directly', async () => {
    const { customerId, outcomeId, review } = await takenOver();
    // Visibility lagging as far as it can: it lists nothing at all.
    const blind = new Proxy(h.client.workflow, {
      get: (target, prop, receiver) =>
        prop === 'list'
          ? () => (async function* () {})()
          : (Reflect.get(target, prop, receiver) as unknown as (...a: unknown[]) => unknown).bind(target),
    });
    const temporal = new Proxy(h.client, {
      get: (target, prop, receiver): unknown => (prop === 'workflow' ? blind : Reflect.get(target, prop, receiver)),
    });
    const looking = createErasureActivities({ graph: h.graph, temporal });
    expect(await looking.listRunningCustomerWorkflows({ customer_id: customerId, except: 'none' })).toEqual([
      fraudOutcomeWorkflowId(outcomeId),
    ]);
    await review.terminate('test over');
  });

  it('refuses, once the customer is suspended, an erasure that was not ops’, emptying nothing of it', async () => {
    const { customerId, outcomeId, review } = await takenOver();
    // As the customer's own request would have started it just before the takeover was caught: no reason.
    const erasure = await h.client.workflow.start(ERASURE_WORKFLOW_TYPE, {
      workflowId: erasureWorkflowId(customerId),
      taskQueue: h.taskQueue,
      args: [{ customer_id: customerId }],
    });
    const base = `/api/v1/customers/${customerId}`;
    await until(async () => (await call('GET', `${base}/erasure`, ops)).json.state === 'waiting_for_fraud_review');
    const decided = await call('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, ops, {
      body: { decision: 'confirm' },
    });
    expect(decided.status).toBe(200);
    const outcome = (await erasure.result()) as ErasureOutcome;
    expect(outcome).toMatchObject({ erased: false, waited_for: [fraudOutcomeWorkflowId(outcomeId)], request: null });
    expect(outcome.refused).toMatch(/suspended/);
    expect((await call('GET', `${base}/erasure`, ops)).json).toMatchObject({ state: 'refused', running: false });
    expect((await getCustomer(h.graph, customerId))?.status).toBe('suspended');
    // The evidence is whole: the outcome's event still says what it changed.
    const [applied] = await eventsOf(customerId, 'FraudOutcomeApplied');
    expect(applied?.payload).toMatchObject({ outcome_id: outcomeId, suspended: true });
    expect(((await review.result()) as FraudOutcomeStatus).state).toBe('confirmed');
  });
});

describe('a wallet under the customer’s lock', () => {
  it('never changes once the customer is erased, whoever asks', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    await eraseCustomer(h.graph, customerId);
    const added = (await eventsOf(customerId, 'PaymentMethodAdded')).length;
    const self = await h.token('self', customerId);
    const base = `/api/v1/customers/${customerId}/payment-methods`;
    const bySelf = await call('POST', base, self, { body: newCard() });
    const byOps = await call('POST', base, ops, { body: newCard(), reason: `ticket ${randomUUID()}` });
    expect([bySelf.status, byOps.status]).toEqual([409, 409]);
    expect((await call('DELETE', `${base}/${cards[0]}`, ops, { reason: 'ticket' })).status).toBe(409);
    expect(await eventsOf(customerId, 'PaymentMethodAdded')).toHaveLength(added);
    expect((await getCustomer(h.graph, customerId))?.status).toBe('erased');
  });

  it('refuses, under the lock, a write its own token started while active once the customer is suspended', async () => {
    const { customerId, cards } = await takenOver();
    // The guard's read happened before the suspension; the write commits after it.
    await expect(addPaymentMethod(h.graph, customerId, newCard(), { allowStatuses: ['active'] })).rejects.toThrow(
      /suspended/,
    );
    await expect(removePaymentMethod(h.graph, customerId, cards[0]!, { allowStatuses: ['active'] })).rejects.toThrow(
      /suspended/,
    );
    // Ops (with the reason the guard asks for) may.
    await expect(addPaymentMethod(h.graph, customerId, newCard())).resolves.toMatchObject({ status: 'active' });
  });
});

describe('an erased customer', () => {
  it('takes no fraud outcome: its tombstone is never suspended again', async () => {
    const { customerId } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    await eraseCustomer(h.graph, customerId);
    const reported = await call('POST', '/api/v1/fraud-outcomes', chimera, {
      body: { outcome_id: `ato-${randomUUID()}`, customer_id: customerId, outcome: 'account_takeover' },
    });
    expect(reported.status).toBe(409);
    expect((await getCustomer(h.graph, customerId))?.status).toBe('erased');
  });
});
