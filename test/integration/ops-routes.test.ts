/**
 * The routes through which ops decide for a customer (a recovery that needs attention, a fraud
 * review, a reset of its monthly auto-link count) or drive the event relay, read as an attacker
 * would: no token, the customer's own token, a suspended customer's own token, a token of another
 * agent, and bad input. Only `ops` passes; bad input is refused naming the field; nothing reaches a
 * workflow or the graph.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustomer, listCustomerEvents } from '../../graph';
import { eraseCustomer } from '../../graph/erasure';
import { fraudOutcomeWorkflowId } from '../../temporal/fraud';
import { recoveryWorkflowId } from '../../temporal/recovery';
import { startHarness, type Harness } from '../support/api';
import { send } from '../support/http';
import { paymentId as newPaymentId } from '../support/recovery';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const REASON = { reason: 'spent by a squatter' };

const routes = (paymentId: string, outcomeId: string, customerId: string) =>
  [
    ['POST', `/api/v1/payment-recoveries/${paymentId}/attention`, { action: 'skip', since: '2026-11-28T10:00:00Z' }],
    ['POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, { decision: 'reinstate' }],
    ['GET', '/api/v1/admin/event-relay', undefined],
    ['POST', '/api/v1/admin/event-relay/retry', {}],
    ['POST', `/api/v1/customers/${customerId}/auto-links/reset`, REASON],
  ] as const;

describe('ops-only routes', () => {
  it('refuse no token (401), the customer’s own token even when suspended, and other agents (403)', async () => {
    const customer = await createCustomer(h.graph, {});
    const suspended = await createCustomer(h.graph, { status: 'suspended' });
    const paymentId = newPaymentId();
    const outcomeId = `o-${randomUUID()}`;
    const tokens = {
      self: await h.token('self', customer.id),
      suspendedSelf: await h.token('self', suspended.id),
      payments: await h.token('payments:report'),
      fraud: await h.token('fraud:report'),
      reader: await h.token('customers:read'),
    };
    await h.graph.query('MATCH (c:Customer {id: $id}) SET c.auto_linked_at = [datetime()]', { id: customer.id });
    for (const [method, path, body] of routes(paymentId, outcomeId, customer.id)) {
      expect((await send(h.app, method, path, { body })).status, `${method} ${path} without a token`).toBe(401);
      for (const [who, token] of Object.entries(tokens)) {
        const res = await send(h.app, method, path, { token, body });
        expect(res.status, `${method} ${path} as ${who}`).toBe(403);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
      }
    }
    // Nothing was started by any of them, and the customer's auto-link count is as it was.
    for (const id of [recoveryWorkflowId(paymentId), fraudOutcomeWorkflowId(outcomeId)])
      await expect(h.client.workflow.getHandle(id).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    expect(await autoLinks(customer.id)).toBe(1);
  });

  it('refuse bad input with ops too, naming the field, before anything is asked of a workflow', async () => {
    const ops = await h.token('ops');
    const customer = await createCustomer(h.graph, {});
    await h.graph.query('MATCH (c:Customer {id: $id}) SET c.auto_linked_at = [datetime()]', { id: customer.id });
    const paymentId = newPaymentId();
    const outcomeId = `o-${randomUUID()}`;
    const bad = [
      ['POST', `/api/v1/payment-recoveries/${paymentId}/attention`, { action: 'refund' }, 'action'],
      ['POST', `/api/v1/payment-recoveries/${paymentId}/attention`, { action: 'retry', since: 'yesterday' }, 'since'],
      // Without the attention it answers, a decision could land on a later problem (another card's charge).
      ['POST', `/api/v1/payment-recoveries/${paymentId}/attention`, { action: 'retry' }, 'since'],
      ['POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, { decision: 'maybe' }, 'decision'],
      ['POST', '/api/v1/admin/event-relay/retry', { event_id: 'not-an-id' }, 'event_id'],
      ['POST', `/api/v1/customers/${customer.id}/auto-links/reset`, {}, 'reason'],
      ['POST', `/api/v1/customers/${customer.id}/auto-links/reset`, { reason: ' ' }, 'reason'],
      ['POST', `/api/v1/customers/${customer.id}/auto-links/reset`, { reason: 'card 4111 1111 1111 1111' }, 'reason'],
      ['POST', '/api/v1/customers/not-a-customer/auto-links/reset', REASON, 'id'],
    ] as const;
    for (const [method, path, body, field] of bad) {
      const res = await send(h.app, method, path, { token: ops, body });
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(res.json.field).toBe(field);
    }
    for (const id of [recoveryWorkflowId(paymentId), fraudOutcomeWorkflowId(outcomeId)])
      await expect(h.client.workflow.getHandle(id).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    expect(await autoLinks(customer.id)).toBe(1);
  });

  it('reset a customer’s auto-link count for ops, with the reason on its history; 404 and 409 as named', async () => {
    const ops = await h.token('ops', 'ops-7');
    const customer = await createCustomer(h.graph, {});
    await h.graph.query('MATCH (c:Customer {id: $id}) SET c.auto_linked_at = [datetime(), datetime()]', {
      id: customer.id,
    });
    const path = `/api/v1/customers/${customer.id}/auto-links/reset`;
    const res = await send(h.app, 'POST', path, { token: ops, body: REASON });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ customer_id: customer.id, cleared: 2 });
    expect(res.headers.get('x-persona-consistency')).toMatch(new RegExp(`^c:${customer.id}:\\d+$`));
    expect(await autoLinks(customer.id)).toBe(0);
    const resets = async () =>
      (await listCustomerEvents(h.graph, customer.id)).filter((e) => e.type === 'OpsActionRecorded');
    const [event] = await resets();
    expect(event?.payload).toMatchObject({ action: 'reset_auto_links', reason: REASON.reason, cleared: 2 });
    expect(event?.payload.actor).toBe('ops-7');
    // A repeat clears nothing, records nothing and names no place in the history.
    const again = await send(h.app, 'POST', path, { token: ops, body: REASON });
    expect(again.json).toEqual({ customer_id: customer.id, cleared: 0 });
    expect(again.headers.get('x-persona-consistency')).toBeNull();
    expect(await resets()).toHaveLength(1);

    const unknown = await send(h.app, 'POST', `/api/v1/customers/${randomUUID()}/auto-links/reset`, {
      token: ops,
      body: REASON,
    });
    expect(unknown.status).toBe(404);
    const erased = await createCustomer(h.graph, {});
    await eraseCustomer(h.graph, erased.id);
    const gone = await send(h.app, 'POST', `/api/v1/customers/${erased.id}/auto-links/reset`, {
      token: ops,
      body: REASON,
    });
    expect(gone.status).toBe(409);
    expect(gone.headers.get('content-type')).toContain('application/problem+json');
  });
});

/** The auto-links a customer holds (`auto_linked_at`, graph/proofCheck.ts). */
async function autoLinks(id: string): Promise<number> {
  const [row] = await h.graph.query<{ n: number }>(
    'MATCH (c:Customer {id: $id}) RETURN size(coalesce(c.auto_linked_at, [])) AS n',
    { id },
  );
  return Number(row?.n);
}
