/**
 * The routes through which ops decide for a customer (a recovery that needs attention, a fraud
 * review) or drive the event relay, read as an attacker would: no token, the customer's own
 * token, a suspended customer's own token, a token of another agent, and bad input. Only `ops`
 * passes; bad input is refused naming the field; nothing reaches a workflow or the graph.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustomer } from '../../graph';
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

const routes = (paymentId: string, outcomeId: string) =>
  [
    ['POST', `/api/v1/payment-recoveries/${paymentId}/attention`, { action: 'skip', since: '2026-11-28T10:00:00Z' }],
    ['POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, { decision: 'reinstate' }],
    ['GET', '/api/v1/admin/event-relay', undefined],
    ['POST', '/api/v1/admin/event-relay/retry', {}],
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
    for (const [method, path, body] of routes(paymentId, outcomeId)) {
      expect((await send(h.app, method, path, { body })).status, `${method} ${path} without a token`).toBe(401);
      for (const [who, token] of Object.entries(tokens)) {
        const res = await send(h.app, method, path, { token, body });
        expect(res.status, `${method} ${path} as ${who}`).toBe(403);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
      }
    }
    // Nothing was started by any of them.
    for (const id of [recoveryWorkflowId(paymentId), fraudOutcomeWorkflowId(outcomeId)])
      await expect(h.client.workflow.getHandle(id).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('refuse bad input with ops too, naming the field, before anything is asked of a workflow', async () => {
    const ops = await h.token('ops');
    const paymentId = newPaymentId();
    const outcomeId = `o-${randomUUID()}`;
    const bad = [
      ['POST', `/api/v1/payment-recoveries/${paymentId}/attention`, { action: 'refund' }, 'action'],
      ['POST', `/api/v1/payment-recoveries/${paymentId}/attention`, { action: 'retry', since: 'yesterday' }, 'since'],
      // Without the attention it answers, a decision could land on a later problem (another card's charge).
      ['POST', `/api/v1/payment-recoveries/${paymentId}/attention`, { action: 'retry' }, 'since'],
      ['POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, { decision: 'maybe' }, 'decision'],
      ['POST', '/api/v1/admin/event-relay/retry', { event_id: 'not-an-id' }, 'event_id'],
    ] as const;
    for (const [method, path, body, field] of bad) {
      const res = await send(h.app, method, path, { token: ops, body });
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(res.json.field).toBe(field);
    }
    for (const id of [recoveryWorkflowId(paymentId), fraudOutcomeWorkflowId(outcomeId)])
      await expect(h.client.workflow.getHandle(id).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });
});
