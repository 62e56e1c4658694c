import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecoveryActivities, recoveryInteractionId } from '../../activities/recovery';
import type { PaymentGateway } from '../../clients/paymentGateway';
import { profileRules } from '../../config/env';
import {
  addPaymentMethod,
  addRelationship,
  createCustomer,
  getPaymentMethodsByCustomer,
  linkDevice,
  listCustomerEvents,
} from '../../graph';
import { getCustomerContext } from '../../graph/context';
import {
  listRecoveryCandidates,
  recordRecovery,
  recordRecoveryFailed,
  recoveriesThatCharged,
  reserveChargeAttempt,
} from '../../graph/recovery';
import { eraseCustomer } from '../../graph/erasure';
import { updatePaymentMethodStatus } from '../../graph/paymentMethods';
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
      const reserve = (key: string, at?: Date) =>
        reserveChargeAttempt(g, { customer_id: c.id, payment_method_id: pm.id, key, max: 15 }, at);
      for (let i = 0; i < 15; i++) expect(await reserve(`old-${i}`, longAgo)).toBe('allowed');
      expect(await reserve('old-16', longAgo)).toBe('limited');
      // Forty days later those no longer count.
      for (let i = 0; i < 15; i++) expect(await reserve(`pay-${i % 3}:${pm.id}:r${i}`)).toBe('allowed');
      expect(await reserve(`pay-9:${pm.id}`)).toBe('limited');
      // A retried activity carries the same key: the same attempt, still allowed.
      expect(await reserve(`pay-0:${pm.id}:r0`)).toBe('allowed');
      const [row] = await g.query<{ n: number }>(
        'MATCH (p:PaymentMethod {id: $id}) RETURN size(p.charge_attempt_keys) AS n',
        { id: pm.id },
      );
      expect(row?.n).toBe(15);
    },
  );

  it('never reserves a charge for a suspended or erased customer, or a method gone from the wallet', async () => {
    const c = await createCustomer(g, {});
    const pm = await addPaymentMethod(g, c.id, card());
    const other = await addPaymentMethod(g, c.id, card());
    const reserve = (payment_method_id: string, customer_id = c.id) =>
      reserveChargeAttempt(g, { customer_id, payment_method_id, key: `k-${randomUUID()}`, max: 15 });
    expect(await reserve(pm.id)).toBe('allowed');
    // Another customer's method is not this customer's to charge.
    const stranger = await createCustomer(g, {});
    expect(await reserve(pm.id, stranger.id)).toBe('method_unavailable');
    await updatePaymentMethodStatus(g, other.id, 'compromised', { reason: 'test' });
    expect(await reserve(other.id)).toBe('method_unavailable');
    const charged = `k-${randomUUID()}`;
    expect(await reserveChargeAttempt(g, { customer_id: c.id, payment_method_id: pm.id, key: charged, max: 15 })).toBe(
      'allowed',
    );
    await g.query("MATCH (c:Customer {id: $id}) SET c.status = 'suspended'", { id: c.id });
    expect(await reserve(pm.id)).toBe('customer_suspended');
    // A charge already reserved (its answer lost, the activity retried) is the same charge: it
    // goes to the gateway again, which answers what it did the first time.
    expect(await reserveChargeAttempt(g, { customer_id: c.id, payment_method_id: pm.id, key: charged, max: 15 })).toBe(
      'allowed',
    );
    // Nothing was reserved for the refusals (the compromised method was never charged).
    const rows = await g.query<{ n: number }>(
      'MATCH (p:PaymentMethod {id: $id}) RETURN size(coalesce(p.charge_attempt_keys, [])) AS n',
      { id: other.id },
    );
    expect(rows.map((r) => Number(r.n))).toEqual([0]);
    // A suspended customer is erased at ops' request (graph/erasure.ts), which carries a reason.
    await eraseCustomer(g, c.id, { audit: { reason: 'test', requested_by: null, override_fraud_review: false } });
    expect(await reserve(pm.id)).toBe('customer_erased');
    expect(await reserve(pm.id, randomUUID())).toBe('customer_erased');
  });

  it('names the recoveries that reserved a charge for a customer, from the graph (what an erasure stops)', async () => {
    const c = await createCustomer(g, {});
    const [a, b] = [await addPaymentMethod(g, c.id, card()), await addPaymentMethod(g, c.id, card())];
    const other = await createCustomer(g, {});
    const theirs = await addPaymentMethod(g, other.id, card());
    const reserve = (customer_id: string, payment_method_id: string, key: string) =>
      reserveChargeAttempt(g, { customer_id, payment_method_id, key, max: 15 });
    await reserve(c.id, a.id, `pay_one:${a.id}`);
    await reserve(c.id, b.id, `pay_one:${b.id}`);
    await reserve(c.id, b.id, `pay:with:colons:${b.id}:r2`);
    await reserve(other.id, theirs.id, `pay_theirs:${theirs.id}`);
    expect((await recoveriesThatCharged(g, c.id)).sort()).toEqual(['pay:with:colons', 'pay_one']);
    expect(await recoveriesThatCharged(g, randomUUID())).toEqual([]);
  });

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

describe("a recovery's charge in the customer's profile (the recordRecovery activity)", () => {
  /** These activities only record: a charge here would be a mistake. */
  const noGateway: PaymentGateway = {
    charge: () => Promise.reject(new Error('recording a recovery must not charge')),
  };
  const activities = () =>
    createRecoveryActivities({
      graph: g,
      gateway: noGateway,
      trustThreshold: g.config.PERSONA_TRUST_THRESHOLD,
      profileRules: profileRules(g.config),
    });

  /** Runs the activity as a worker would (in an activity context), keeping what it logged. */
  async function runRecordRecovery(rec: Parameters<ReturnType<typeof activities>['recordRecovery']>[0]) {
    const logged: LogEntry[] = [];
    const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('WARN', (entry) => logged.push(entry)) });
    await env.run((r: typeof rec) => activities().recordRecovery(r), rec);
    return logged;
  }

  /** What the context read says, and the counters it does not show. */
  async function profile(customerId: string) {
    const context = await getCustomerContext(g, customerId, {
      trustThreshold: g.config.PERSONA_TRUST_THRESHOLD,
      vipLtvMinor: g.config.vipLtvMinor,
      vipBasis: g.config.PERSONA_VIP_BASIS,
    });
    const [row] = await g.query<{ succeeded: number | null }>(
      'MATCH (c:Customer {id: $id}) RETURN c.succeeded_payments AS succeeded',
      { id: customerId },
    );
    return { ltv_minor: context.ltv_minor, succeeded: Number(row?.succeeded ?? 0) };
  }

  async function recovered(currency: string) {
    const c = await createCustomer(g, {});
    await addPaymentMethod(g, c.id, card());
    const token = `tok_${randomUUID()}`;
    const second = await addPaymentMethod(g, c.id, card({ token }));
    const rec = {
      payment_id: `pay_${randomUUID()}`,
      customer_id: c.id,
      payment_method_id: second.id,
      charge_id: `ch_${randomUUID()}`,
      amount: 4250,
      currency,
    };
    return { customerId: c.id, token, rec, before: await profile(c.id) };
  }

  it('adds the charged amount to LTV once and counts one succeeded payment, however often it runs', async () => {
    const { customerId, rec, before } = await recovered(g.policy.reportingCurrency);
    // The first attempt, run through; then its retry (a worker died before reporting it done).
    expect(await runRecordRecovery(rec)).toEqual([]);
    expect(await runRecordRecovery(rec)).toEqual([]);
    expect(await profile(customerId)).toEqual({
      ltv_minor: before.ltv_minor + 4250,
      succeeded: before.succeeded + 1,
    });
    const [claim] = await g.query<{ type: string }>('MATCH (i:Interaction {id: $id}) RETURN i.type AS type', {
      id: `${customerId}:${recoveryInteractionId(rec.payment_id)}`,
    });
    expect(claim).toEqual({ type: 'payment' });
    const events = await listCustomerEvents(g, customerId);
    expect(events.filter((e) => e.type === 'PaymentRecovered')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'CustomerProfileUpdated').map((e) => e.payload.changes)).toEqual([
      expect.objectContaining({ ltv_minor: { from: before.ltv_minor, to: before.ltv_minor + 4250 } }),
    ]);
  });

  it('records the charge on the retry of an attempt that died between its two writes, once', async () => {
    const { customerId, rec, before } = await recovered(g.policy.reportingCurrency);
    // The first attempt wrote PaymentRecovered and the worker died before the interaction.
    await recordRecovery(g, rec);
    expect(await profile(customerId)).toEqual(before);
    await runRecordRecovery(rec);
    await runRecordRecovery(rec);
    expect(await profile(customerId)).toEqual({
      ltv_minor: before.ltv_minor + 4250,
      succeeded: before.succeeded + 1,
    });
    expect(await listCustomerEvents(g, customerId, { type: 'PaymentRecovered' })).toHaveLength(1);
  });

  it('records a recovery in another currency and succeeds, leaving LTV as it was, with a warning', async () => {
    const other = g.policy.reportingCurrency === 'EUR' ? 'GBP' : 'EUR';
    const { customerId, token, rec, before } = await recovered(other);
    const logged = await runRecordRecovery(rec);
    expect(await profile(customerId)).toEqual(before);
    expect(await listCustomerEvents(g, customerId, { type: 'PaymentRecovered' })).toHaveLength(1);
    const wallet = await getPaymentMethodsByCustomer(g, customerId);
    expect(wallet.filter((p) => p.is_default).map((p) => p.id)).toEqual([rec.payment_method_id]);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      level: 'WARN',
      meta: { paymentId: rec.payment_id, customerId, field: 'currency' },
    });
    expect(String(logged[0]?.meta?.problem)).toContain(g.policy.reportingCurrency);
    expect(JSON.stringify(logged.map((e) => [e.message, e.meta]))).not.toContain(token);
  });
});
