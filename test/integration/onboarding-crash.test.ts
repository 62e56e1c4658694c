import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDevicesByCustomer, getPaymentMethodsByCustomer, listCustomerEvents } from '../../graph';
import { startHarness, type Harness } from '../support/api';
import { uniqueEmail } from '../support/graph';

/**
 * The worker dies after each side effect has happened but before Temporal heard of it: the
 * activity's completion is lost and Temporal runs it again. Every effect must still happen once.
 */
let h: Harness;
const lost = { onboard: 0, profile: 0 };

beforeAll(async () => {
  h = await startHarness({
    wrapActivities: (real) => ({
      ...real,
      onboardCustomer: async (...args) => {
        const result = await real.onboardCustomer(...args);
        if (lost.onboard++ === 0) throw new Error('worker died after the graph write committed');
        return result;
      },
      requestBehavioralProfile: async (...args) => {
        const result = await real.requestBehavioralProfile(...args);
        if (lost.profile++ === 0) throw new Error('worker died after Chimera was asked');
        return result;
      },
    }),
  });
});
afterAll(() => h?.close());

describe('a worker that dies mid-activity', () => {
  it('still onboards once: one customer, one card, one login, one profile request', async () => {
    const email = uniqueEmail();
    const res = await h.app.request('/api/v1/onboarding?wait=true', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await h.token('onboarding:write identity:verify')}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        payment_method: {
          type: 'card',
          token: `tok_${randomUUID()}`,
          brand: 'visa',
          last_four: '4242',
          expiry_month: 1,
          expiry_year: 2033,
        },
        device: { fingerprint: `fp-${randomUUID()}` },
        digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { customer_id: string; outcome: string; workflow_id: string };
    // A naive retry would have found the email it had just written and answered "matched".
    expect(body.outcome).toBe('created');
    // The answer comes once the customer is written; the profile request follows it.
    await h.client.workflow.getHandle(body.workflow_id).result();
    expect(lost).toEqual({ onboard: 2, profile: 2 });

    const events = await listCustomerEvents(h.graph, body.customer_id);
    const count = (type: string) => events.filter((e) => e.type === type).length;
    expect(count('CustomerCreated')).toBe(1);
    expect(count('CustomerOnboarded')).toBe(1);
    expect(count('BehavioralProfileRequested')).toBe(1);
    expect(await getPaymentMethodsByCustomer(h.graph, body.customer_id)).toHaveLength(1);
    expect(await getDevicesByCustomer(h.graph, body.customer_id)).toMatchObject([{ login_count: 1 }]);
  });
});
