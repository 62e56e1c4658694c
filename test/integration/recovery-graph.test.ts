import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addPaymentMethod,
  addRelationship,
  createCustomer,
  getPaymentMethodsByCustomer,
  linkDevice,
  listCustomerEvents,
} from '../../graph';
import {
  listRecoveryCandidates,
  recordRecovery,
  recordRecoveryFailed,
  reserveChargeAttempt,
} from '../../graph/recovery';
import { openTestGraph, type TestGraph, cardInput } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

const card = cardInput;

describe('recovery in the graph', () => {
  it(
    'lists candidates: trusted-device methods first, then the most recently used; ' +
      'never expired, inactive or excluded',
    async () => {
      const c = await createCustomer(g, {});
      const failed = await addPaymentMethod(g, c.id, card());
      const old = await addPaymentMethod(g, c.id, card());
      const recent = await addPaymentMethod(g, c.id, card());
      const onTrusted = await addPaymentMethod(g, c.id, card());
      await addPaymentMethod(g, c.id, card({ expiry_month: 1, expiry_year: 2020 }));
      await addPaymentMethod(g, c.id, card({ status: 'inactive' }));
      const pmRef = (id: string) => ({ label: 'PaymentMethod', id }) as const;
      await addRelationship(g, { label: 'Customer', id: c.id }, pmRef(old.id), 'HAS_PAYMENT_METHOD', {
        last_used: '2024-01-01T00:00:00Z',
      });
      await addRelationship(g, { label: 'Customer', id: c.id }, pmRef(recent.id), 'HAS_PAYMENT_METHOD', {
        last_used: '2025-06-01T00:00:00Z',
      });
      await addRelationship(g, { label: 'Customer', id: c.id }, pmRef(onTrusted.id), 'HAS_PAYMENT_METHOD', {
        last_used: '2023-01-01T00:00:00Z',
      });
      const device = await linkDevice(g, c.id, { fingerprint: `fp-${randomUUID()}`, trust_score: 0.9 });
      await addRelationship(g, pmRef(onTrusted.id), { label: 'Device', id: device.id }, 'USED_ON', {
        last_use: '2023-01-01T00:00:00Z',
      });

      const candidates = await listRecoveryCandidates(g, c.id, [failed.id], 0.7);
      expect(candidates.map((x) => x.payment_method_id)).toEqual([onTrusted.id, recent.id, old.id]);
      expect(candidates[0]?.used_on_trusted_device).toBe(true);
    },
  );

  it(
    'allows 15 charges of a method in 30 days across recoveries, ' + 'counts a retried key once, forgets old ones',
    async () => {
      const c = await createCustomer(g, {});
      const pm = await addPaymentMethod(g, c.id, card());
      const longAgo = new Date(Date.now() - 40 * 24 * 60 * 60 * 1000);
      for (let i = 0; i < 15; i++) expect(await reserveChargeAttempt(g, pm.id, `old-${i}`, 15, longAgo)).toBe(true);
      expect(await reserveChargeAttempt(g, pm.id, 'old-16', 15, longAgo)).toBe(false);
      // Forty days later those no longer count.
      for (let i = 0; i < 15; i++)
        expect(await reserveChargeAttempt(g, pm.id, `pay-${i % 3}:${pm.id}:r${i}`, 15)).toBe(true);
      expect(await reserveChargeAttempt(g, pm.id, `pay-9:${pm.id}`, 15)).toBe(false);
      // A retried activity carries the same key: the same attempt, still allowed.
      expect(await reserveChargeAttempt(g, pm.id, `pay-0:${pm.id}:r0`, 15)).toBe(true);
      const [row] = await g.query<{ n: number }>(
        'MATCH (p:PaymentMethod {id: $id}) RETURN size(p.charge_attempt_keys) AS n',
        { id: pm.id },
      );
      expect(row?.n).toBe(15);
    },
  );

  it('records a recovery once: new default and PaymentRecovered in one transaction', async () => {
    const c = await createCustomer(g, {});
    const first = await addPaymentMethod(g, c.id, card());
    const second = await addPaymentMethod(g, c.id, card());
    const rec = {
      payment_id: `pay_${randomUUID()}`,
      customer_id: c.id,
      payment_method_id: second.id,
      charge_id: 'ch_1',
      amount: 500,
      currency: 'EUR',
    };
    await recordRecovery(g, rec);
    await recordRecovery(g, rec);
    const wallet = await getPaymentMethodsByCustomer(g, c.id);
    expect(wallet.filter((p) => p.is_default).map((p) => p.id)).toEqual([second.id]);
    expect(wallet.find((p) => p.id === second.id)?.last_used).not.toBeNull();
    const events = await listCustomerEvents(g, c.id);
    expect(events.filter((e) => e.type === 'PaymentRecovered').map((e) => e.payload)).toEqual([
      { payment_id: rec.payment_id, payment_method_id: second.id, charge_id: 'ch_1', amount: 500, currency: 'EUR' },
    ]);
    expect(events.filter((e) => e.type === 'DefaultPaymentMethodChanged')[0]?.payload).toMatchObject({
      from: first.id,
      to: second.id,
    });

    const failed = {
      payment_id: `pay_${randomUUID()}`,
      customer_id: c.id,
      attempts: 3,
      reason: 'all payment methods failed',
    };
    await recordRecoveryFailed(g, failed);
    await recordRecoveryFailed(g, failed);
    expect(await listCustomerEvents(g, c.id, { type: 'PaymentRecoveryFailed' })).toHaveLength(1);
  });
});
