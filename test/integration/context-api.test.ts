import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpChimeraClient } from '../../clients/chimera';
import { addPaymentMethod, listCustomerEvents, updateCustomer, type OnboardingRequest } from '../../graph';
import { trustedDeviceWorkflowId } from '../../temporal/trustedDevice';
import { startHarness, type Harness } from '../support/api';
import { onboardInGraph } from '../support/builders';
import { send } from '../support/http';
import { cardInput } from '../support/graph';
import { freePort } from '../support/processes';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const card = cardInput;

/** A customer with a default card and one device at the given trust score. */
const customerWithDevice = (harness: Harness, trust: number, extra: Partial<OnboardingRequest> = {}) =>
  onboardInGraph(
    harness.graph,
    {
      customer: { segment: 'Subscriber', ltv: '250' },
      payment_method: card(),
      device: { fingerprint: `fp-${randomUUID()}` },
      ...extra,
    },
    { trust },
  );

/** A call with a token of `scope` (ops by default) unless one is given; it always says its body is JSON. */
const call = async (
  harness: Harness,
  method: string,
  path: string,
  opts: { token?: string; scope?: string; body?: unknown } = {},
) =>
  send(harness.app, method, path, {
    token: opts.token ?? (await harness.token(opts.scope ?? 'ops')),
    body: opts.body,
    headers: { 'content-type': 'application/json' },
  });

describe('GET /api/v1/customers/{id}/context', () => {
  it('answers the context of a known customer', async () => {
    const { customerId, deviceId } = await customerWithDevice(h, 0.9);
    const second = await addPaymentMethod(h.graph, customerId, card({ brand: 'amex', last_four: '0005' }));
    const inactive = await addPaymentMethod(h.graph, customerId, card({ status: 'inactive' }));
    const { status, json } = await call(h, 'GET', `/api/v1/customers/${customerId}/context`, { scope: 'context:read' });
    expect(status).toBe(200);
    expect(json).toMatchObject({
      customer_id: customerId,
      status: 'active',
      segment: 'Subscriber',
      is_vip: false,
      ltv: '250.00',
      ltv_currency: 'USD',
      predicted_ltv: null,
    });
    expect(json.trusted_devices).toEqual([
      { device_id: deviceId, fingerprint: expect.stringMatching(/^fp-/), trust_score: 0.9 },
    ]);
    expect((json.active_payment_methods as string[]).sort()).toEqual(
      [json.default_payment_method_id as string, second.id].sort(),
    );
    expect(json.active_payment_methods).not.toContain(inactive.id);
  });

  it('applies the VIP and trust thresholds', async () => {
    const { customerId } = await customerWithDevice(h, 0.69);
    const before = await call(h, 'GET', `/api/v1/customers/${customerId}/context`);
    expect(before.json).toMatchObject({ is_vip: false, trusted_devices: [] });
    // The threshold is 10000 (major units of the reporting currency): in minor units, exactly.
    await updateCustomer(h.graph, customerId, { ltv_minor: 999_999 });
    expect((await call(h, 'GET', `/api/v1/customers/${customerId}/context`)).json).toMatchObject({
      is_vip: false,
      ltv: '9999.99',
      ltv_currency: 'USD',
    });
    await updateCustomer(h.graph, customerId, { ltv_minor: 1_000_000 });
    expect((await call(h, 'GET', `/api/v1/customers/${customerId}/context`)).json.is_vip).toBe(true);
    await updateCustomer(h.graph, customerId, { ltv_minor: 1, segment: 'VIP' });
    expect((await call(h, 'GET', `/api/v1/customers/${customerId}/context`)).json.is_vip).toBe(true);
  });

  it('answers 404, 400, 401 and 403 as problem+json', async () => {
    expect((await call(h, 'GET', `/api/v1/customers/${randomUUID()}/context`)).status).toBe(404);
    const invalid = await call(h, 'GET', '/api/v1/customers/123/context');
    expect(invalid).toMatchObject({ status: 400, json: { field: 'id' } });
    const { customerId } = await customerWithDevice(h, 0.5);
    expect((await call(h, 'GET', `/api/v1/customers/${customerId}/context`, { token: 'not-a-jwt' })).status).toBe(401);
    expect((await call(h, 'GET', `/api/v1/customers/${customerId}/context`, { scope: 'customers:read' })).status).toBe(
      403,
    );
    const self = await h.token('self', customerId);
    expect((await call(h, 'GET', `/api/v1/customers/${customerId}/context`, { token: self })).status).toBe(403);
  });

  it('reflects a device-level trust signal and a deactivation in the very next read', async () => {
    // The customer earned 0.95 on the device; the device's own trust (Chimera's signal) caps it.
    const { customerId, deviceId } = await customerWithDevice(h, 0.95);
    const trusted = async () =>
      (await call(h, 'GET', `/api/v1/customers/${customerId}/context`)).json.trusted_devices as unknown[];
    expect(await trusted()).toMatchObject([{ device_id: deviceId, trust_score: 0.95 }]);
    const put = (trust_score: number) =>
      call(h, 'PUT', `/api/v1/devices/${deviceId}/trust-score`, {
        scope: 'devices:write',
        body: { trust_score, reason: 'chargeback seen on this device' },
      });
    expect(await put(0.2)).toMatchObject({
      status: 200,
      json: { device_id: deviceId, trust_score: 0.2, previous_trust_score: 1 },
    });
    expect(await trusted()).toEqual([]);
    // Raised again, the device caps at 0.9: the customer's trust there is the lower of the two.
    expect((await put(0.9)).status).toBe(200);
    expect(await trusted()).toMatchObject([{ device_id: deviceId, trust_score: 0.9 }]);
    const events = await listCustomerEvents(h.graph, customerId, { type: 'DeviceTrustScoreUpdated' });
    // Who moved it, as a code: every customer of the device reads this, never the agent's words.
    expect(events.map((e) => e.payload)).toEqual([
      { device_id: deviceId, from: 0.2, to: 0.9, reason: 'set by an agent' },
      { device_id: deviceId, from: 1, to: 0.2, reason: 'set by an agent' },
    ]);
    const ctx = await call(h, 'GET', `/api/v1/customers/${customerId}/context`);

    const defaultId = ctx.json.default_payment_method_id as string;
    const off = await call(h, 'POST', `/api/v1/payment-methods/${defaultId}/inactivate`, {
      scope: 'fraud:report',
      body: { reason: 'card reported lost' },
    });
    expect(off).toMatchObject({ status: 200, json: { id: defaultId, status: 'inactive', customer_id: customerId } });
    const after = await call(h, 'GET', `/api/v1/customers/${customerId}/context`);
    expect(after.json).toMatchObject({ default_payment_method_id: null, active_payment_methods: [] });
    const changed = await listCustomerEvents(h.graph, customerId, { type: 'PaymentMethodStatusChanged' });
    expect(changed[0]?.payload).toMatchObject({
      payment_method_id: defaultId,
      to: 'inactive',
      reason: 'card reported lost',
    });
  });

  it('refuses a trust score outside 0–1 or a missing reason, naming the field', async () => {
    const { deviceId } = await customerWithDevice(h, 0.5);
    expect(
      await call(h, 'PUT', `/api/v1/devices/${deviceId}/trust-score`, { body: { trust_score: 1.5 } }),
    ).toMatchObject({
      status: 400,
      json: { field: 'trust_score' },
    });
    expect(
      (await call(h, 'PUT', `/api/v1/devices/${randomUUID()}/trust-score`, { body: { trust_score: 0.5 } })).status,
    ).toBe(404);
    expect(await call(h, 'POST', `/api/v1/payment-methods/${randomUUID()}/inactivate`, { body: {} })).toMatchObject({
      status: 400,
      json: { field: 'reason' },
    });
  });
});

describe('GET /api/v1/customers/{id}/checkout-options', () => {
  it('lists active, unexpired methods, the default first; none once the customer is suspended', async () => {
    const { customerId } = await customerWithDevice(h, 0.5);
    const now = new Date();
    const thisMonth = await addPaymentMethod(
      h.graph,
      customerId,
      card({ expiry_month: now.getUTCMonth() + 1, expiry_year: now.getUTCFullYear() }),
    );
    const expired = await addPaymentMethod(
      h.graph,
      customerId,
      card({ expiry_month: 1, expiry_year: now.getUTCFullYear() - 1 }),
    );
    const res = await call(h, 'GET', `/api/v1/customers/${customerId}/checkout-options`, { scope: 'context:read' });
    const ids = (res.json.data as { id: string; is_default: boolean }[]).map((p) => p.id);
    expect(ids).toHaveLength(2);
    expect((res.json.data as { is_default: boolean }[])[0]?.is_default).toBe(true);
    expect(ids).toContain(thisMonth.id);
    expect(ids).not.toContain(expired.id);
    expect(res.json.trusted_device).toBe(false);

    await updateCustomer(h.graph, customerId, { status: 'suspended' });
    expect((await call(h, 'GET', `/api/v1/customers/${customerId}/checkout-options`)).json.data).toEqual([]);
  });

  it('tells Chimera once a day, through a workflow, when the device is trusted', async () => {
    const { customerId, deviceId } = await customerWithDevice(h, 0.8);
    const self = await h.token('self', customerId);
    for (let i = 0; i < 3; i++) {
      const res = await call(h, 'GET', `/api/v1/customers/${customerId}/checkout-options?deviceId=${deviceId}`, {
        token: self,
      });
      expect(res.json.trusted_device).toBe(true);
    }
    const workflowId = trustedDeviceWorkflowId({
      customer_id: customerId,
      device_id: deviceId,
      seen_on: new Date().toISOString().slice(0, 10),
    });
    await waitFor(async () => (await h.client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED');
    expect(await listCustomerEvents(h.graph, customerId, { type: 'TrustedDeviceReported' })).toHaveLength(1);
  });
});

describe('checkout while Chimera is unreachable', () => {
  let down: Harness;
  beforeAll(async () => {
    const port = await freePort();
    down = await startHarness({ chimera: () => new HttpChimeraClient(`http://127.0.0.1:${port}`, 500) });
  });
  afterAll(() => down?.close());

  it('still answers at once, and the report keeps retrying in Temporal', async () => {
    const { customerId, deviceId } = await customerWithDevice(down, 0.9);
    const started = Date.now();
    const res = await call(down, 'GET', `/api/v1/customers/${customerId}/checkout-options?deviceId=${deviceId}`);
    expect(res.status).toBe(200);
    expect(res.json.trusted_device).toBe(true);
    expect((res.json.data as unknown[]).length).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);

    const workflowId = trustedDeviceWorkflowId({
      customer_id: customerId,
      device_id: deviceId,
      seen_on: new Date().toISOString().slice(0, 10),
    });
    await waitFor(async () => {
      const d = await down.client.workflow.getHandle(workflowId).describe();
      return (d.raw.pendingActivities?.[0]?.attempt ?? 0) >= 2;
    });
    const d = await down.client.workflow.getHandle(workflowId).describe();
    expect(d.status.name).toBe('RUNNING');
    await down.client.workflow.getHandle(workflowId).terminate('test done');
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(200);
  }
}
