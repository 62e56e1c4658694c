/**
 * Export and erasure end to end: the api, a real worker, the real Temporal and Neo4j — including
 * an erasure while the customer's payment recovery is dunning.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addAddress,
  findCustomerByDigitalId,
  getPaymentMethodsByCustomer,
  linkDevice,
  listCustomerEvents,
} from '../../graph';
import type { ErasureOutcome } from '../../temporal/erasure';
import { recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { startHarness, type Harness } from '../support/api';
import { send } from '../support/http';
import { until } from '../support/wait';
import { customerWithCards, paymentId } from '../support/recovery';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const call = (method: string, path: string, token: string) => send(h.app, method, path, { token, read: 'text' });

describe('export and erasure', () => {
  it(
    'exports everything but tokens; erasure stops a running recovery, deletes personal data, ' +
      'keeps a tombstone, and is idempotent',
    async () => {
      const token = `tok_decline_insufficient_funds_${randomUUID().slice(0, 8)}`;
      const { customerId, cards } = await customerWithCards(h.graph, [token, 'tok_decline_insufficient_funds_z']);
      const fingerprint = `fp-${randomUUID()}`;
      await linkDevice(h.graph, customerId, { fingerprint });
      await addAddress(h.graph, customerId, {
        street1: '1 Erasure Lane',
        city: 'Gone',
        zip_code: '00000',
        country: 'GB',
        type: 'shipping',
      });
      // Who the person is (optional personal data): exported, and erased with the rest.
      await h.graph.query(
        'MATCH (c:Customer {id: $id}) SET c.given_name = $given, c.family_name = $family, c.birth_date = $born',
        { id: customerId, given: 'Erasa', family: 'Goneaway', born: '1970-05' },
      );
      const [identifier] = await h.graph.query<{ value: string }>(
        'MATCH (:Customer {id: $id})-[:HAS_DIGITAL_IDENTIFIER]->(d) RETURN d.value AS value',
        { id: customerId },
      );
      const email = identifier?.value as string;
      const self = await h.token('self', customerId);

      // The export: everything, in the customer's own words, never a token.
      const exported = await call('GET', `/api/v1/customers/${customerId}/export`, self);
      expect(exported.status).toBe(200);
      const body = JSON.parse(exported.text) as Record<string, unknown>;
      expect(exported.text).not.toContain(token);
      expect(exported.text).not.toMatch(/"token"|t2\.[A-Za-z0-9_.-]{20,}/);
      expect(body).toMatchObject({
        profile: {
          customer_id: customerId,
          digital_identifiers: [{ type: 'email', value: email }],
          person: { given_name: 'Erasa', family_name: 'Goneaway', birth_date: '1970-05' },
        },
        payment_methods: [expect.objectContaining({ id: cards[0] }), expect.objectContaining({ id: cards[1] })],
        devices: [expect.objectContaining({ fingerprint })],
        addresses: [expect.objectContaining({ street1: '1 Erasure Lane' })],
      });
      expect((body.events as { type: string }[]).map((e) => e.type)).toContain('PaymentMethodAdded');
      expect(
        (await call('GET', `/api/v1/customers/${customerId}/export`, await h.token('self', randomUUID()))).status,
      ).toBe(403);

      // A recovery is dunning for this customer.
      const payment = paymentId();
      const failure = {
        payment_id: payment,
        customer_id: customerId,
        payment_method_id: cards[0],
        amount: 999,
        currency: 'EUR',
        decline_code: 'insufficient_funds',
      };
      const reported = await h.app.request('/api/v1/payment-failures', {
        method: 'POST',
        headers: { authorization: `Bearer ${await h.token('payments:report')}`, 'content-type': 'application/json' },
        body: JSON.stringify(failure),
      });
      expect(reported.status).toBe(202);
      const recovery = h.client.workflow.getHandle(recoveryWorkflowId(payment));
      await until(async () => (await recovery.query<RecoveryStatus>('recoveryStatus')).state === 'dunning');
      await until(async () => {
        const list = h.client.workflow.list({
          query: `PersonaCustomerId = '${customerId}' AND ExecutionStatus = 'Running'`,
        });
        for await (const wf of list) if (wf.workflowId === recoveryWorkflowId(payment)) return true;
        return false;
      });

      // Erase, twice at once: one workflow.
      const [first, again] = await Promise.all([
        call('DELETE', `/api/v1/customers/${customerId}`, self),
        call('DELETE', `/api/v1/customers/${customerId}`, self),
      ]);
      expect([first.status, again.status]).toEqual([202, 202]);
      expect(JSON.parse(first.text)).toEqual({ workflow_id: `erasure-${customerId}` });
      const outcome = (await h.client.workflow.getHandle(`erasure-${customerId}`).result()) as ErasureOutcome;
      expect(outcome).toMatchObject({
        erased: true,
        cancelled: [recoveryWorkflowId(payment)],
        deleted: { identifiers: 1, addresses: 1, payment_methods: 2, devices: 1 },
      });
      // Stopped with its cancel Update (taken only at a safe point, never mid-charge), and ended with
      // a final state; what it said about the customer went with the customer (its history key destroyed).
      expect((await recovery.describe()).status.name).toBe('COMPLETED');
      const { events: recoveryEvents } = await recovery.fetchHistory();
      expect(
        recoveryEvents?.map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name),
      ).toContain('cancel');
      await expect(recovery.result()).rejects.toThrow(/history key of customer .* is gone/);

      // Nothing personal is left to read, search or match.
      expect(await findCustomerByDigitalId(h.graph, 'email', email)).toBeNull();
      expect(await getPaymentMethodsByCustomer(h.graph, customerId)).toEqual([]);
      const [left] = await h.graph.query<{ props: Record<string, unknown>; edges: number }>(
        'MATCH (c:Customer {id: $id}) RETURN properties(c) AS props, COUNT { (c)--() } AS edges',
        { id: customerId },
      );
      // The tombstone keeps the event counter: CustomerErased and anything later continue the sequence.
      expect(Object.keys(left?.props ?? {}).sort()).toEqual([
        'created_at',
        'erased_at',
        'event_seq',
        'id',
        'status',
        'updated_at',
      ]);
      expect(left).toMatchObject({ props: { status: 'erased' }, edges: 0 });
      expect(await h.graph.query('MATCH (d:Device {fingerprint: $fp}) RETURN d', { fp: fingerprint })).toEqual([]);
      const events = await listCustomerEvents(h.graph, customerId, { limit: 1000 });
      expect(events[0]?.type).toBe('CustomerErased');
      expect(events.slice(1).every((e) => Object.keys(e.payload).length === 0)).toBe(true);
      const context = await call('GET', `/api/v1/customers/${customerId}/context`, await h.token('context:read'));
      expect(JSON.parse(context.text)).toMatchObject({
        status: 'erased',
        trusted_devices: [],
        active_payment_methods: [],
        default_payment_method_id: null,
      });
      // Onboarding with the same email now makes a new customer: nothing matches the erased one.
      const onboarding = await h.app.request('/api/v1/onboarding?wait=true', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await h.token('onboarding:write')}`,
          'idempotency-key': randomUUID(),
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          customer: { segment: 'New', ltv: '0' },
          digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
        }),
      });
      const onboarded = (await onboarding.json()) as { customer_id: string; outcome: string };
      expect(onboarded.outcome).toBe('created');
      expect(onboarded.customer_id).not.toBe(customerId);

      // Erasing again changes nothing.
      const repeat = await call('DELETE', `/api/v1/customers/${customerId}`, await h.token('ops'));
      expect(repeat.status).toBe(202);
      const second = (await h.client.workflow.getHandle(`erasure-${customerId}`).result()) as ErasureOutcome;
      expect(second).toMatchObject({ erased: false, cancelled: [] });
      expect(await listCustomerEvents(h.graph, customerId, { limit: 1000 })).toHaveLength(events.length);
    },
  );

  it('answers 404 for a customer it does not know', async () => {
    expect((await call('DELETE', `/api/v1/customers/${randomUUID()}`, await h.token('ops'))).status).toBe(404);
  });
});
