import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecoveryActivities, recoveryInteractionId } from '../../activities/recovery';
import type { PaymentGateway } from '../../clients/paymentGateway';
import { profileRules } from '../../config/env';
import {
  addPaymentMethod,
  createCustomer,
  getPaymentMethodsByCustomer,
  linkDevice,
  listCustomerEvents,
} from '../../graph';
import { customerContext } from '../support/graph';
import {
  listRecoveryCandidates,
  recordRecovery,
  recordRecoveryFailed,
  recordRecoveryStopped,
} from '../../graph/recovery';
import { reserveGovernedCharge } from '../../graph/chargeReservation';
import { readAttempt } from '../../graph/chargeAttempts';
import { readRecoveryLedger, recoveriesOfCustomers } from '../../graph/chargeLedger';
import { mergeCustomers } from '../../graph/identityMerge';
import { eraseCustomer } from '../../graph/erasure';
import { removePaymentMethod } from '../../graph/paymentMethods';
import { updatePaymentMethodStatus } from '../../graph/walletDefaults';
import { openTestGraph, relate, type TestGraph, cardInput } from '../support/graph';

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
      await relate(g, { label: 'Customer', id: c.id }, pmRef(old.id), 'HAS_PAYMENT_METHOD', {
        last_used: '2024-01-01T00:00:00Z',
      });
      await relate(g, { label: 'Customer', id: c.id }, pmRef(recent.id), 'HAS_PAYMENT_METHOD', {
        last_used: '2025-06-01T00:00:00Z',
      });
      await relate(g, { label: 'Customer', id: c.id }, pmRef(onTrusted.id), 'HAS_PAYMENT_METHOD', {
        last_used: '2023-01-01T00:00:00Z',
      });
      const device = await linkDevice(g, c.id, { fingerprint: `fp-${randomUUID()}`, trust_score: 0.9 });
      await relate(g, pmRef(onTrusted.id), { label: 'Device', id: device.id }, 'USED_ON', {
        last_use: '2023-01-01T00:00:00Z',
      });

      const candidates = await listRecoveryCandidates(g, c.id, [failed.id], 0.7);
      expect(candidates.map((x) => x.payment_method_id)).toEqual([onTrusted.id, recent.id, old.id]);
      expect(candidates[0]?.used_on_trusted_device).toBe(true);
    },
  );

  /** Reserves a charge as the activity does, answering the verdict. */
  const reserveAt = async (
    customer_id: string,
    payment_method_id: string,
    key: string,
    at?: Date,
    payment_id = key.split(':')[0] as string,
  ) =>
    (
      await reserveGovernedCharge(
        g,
        { payment_id, customer_id, payment_method_id, key, amount: 1999, currency: 'USD', initiator: 'mit', max: 15 },
        at,
      )
    ).verdict;

  it(
    'allows 15 charges of a method in 30 days across recoveries (counted in the charge ledger), ' +
      'answers a retried key as the same charge, forgets old ones',
    async () => {
      const c = await createCustomer(g, {});
      const pm = await addPaymentMethod(g, c.id, card());
      const longAgo = new Date(Date.now() - 40 * 24 * 60 * 60 * 1000);
      const reserve = (key: string, at?: Date) => reserveAt(c.id, pm.id, key, at);
      const run = randomUUID();
      for (let i = 0; i < 15; i++) expect(await reserve(`old-${run}-${i}:${pm.id}`, longAgo)).toBe('allowed');
      expect(await reserve(`old-${run}-16:${pm.id}`, longAgo)).toBe('limited');
      // Forty days later those no longer count.
      // (Each a payment of its own: a payment's second key waits while its first is open.)
      for (let i = 0; i < 15; i++) expect(await reserve(`pay-${run}-${i}:${pm.id}:r${i}`)).toBe('allowed');
      expect(await reserve(`pay-${run}-99:${pm.id}`)).toBe('limited');
      // A retried activity carries the same key: the same attempt, known to the ledger.
      expect(await reserve(`pay-${run}-0:${pm.id}:r0`)).toBe('known');
      const [row] = await g.query<{ n: number; recent: number }>(
        `MATCH (a:ChargeAttempt {payment_method_id: $id})
         RETURN count(a) AS n, count(CASE WHEN a.created_at > datetime() - duration('P30D') THEN 1 END) AS recent`,
        { id: pm.id },
      );
      expect({ n: Number(row?.n), recent: Number(row?.recent) }).toEqual({ n: 30, recent: 15 });
    },
  );

  it('never reserves a charge for a suspended or erased customer, or a method gone from the wallet', async () => {
    const c = await createCustomer(g, {});
    const pm = await addPaymentMethod(g, c.id, card());
    const other = await addPaymentMethod(g, c.id, card());
    const reserve = (payment_method_id: string, customer_id = c.id) =>
      reserveAt(customer_id, payment_method_id, `k-${randomUUID()}`);
    expect(await reserve(pm.id)).toBe('allowed');
    // Another customer's method is not this customer's to charge.
    const stranger = await createCustomer(g, {});
    expect(await reserve(pm.id, stranger.id)).toBe('method_unavailable');
    await updatePaymentMethodStatus(g, other.id, 'compromised', { reason: 'test' });
    expect(await reserve(other.id)).toBe('method_unavailable');
    const charged = `k-${randomUUID()}`;
    expect(await reserveAt(c.id, pm.id, charged)).toBe('allowed');
    await g.query("MATCH (c:Customer {id: $id}) SET c.status = 'suspended'", { id: c.id });
    expect(await reserve(pm.id)).toBe('customer_suspended');
    // A charge already reserved (its answer lost, the activity retried) is the same charge: the
    // ledger has it, whatever changed since.
    expect(await reserveAt(c.id, pm.id, charged)).toBe('known');
    // Nothing was reserved for the refusals (the compromised method was never charged).
    const rows = await g.query<{ n: number }>('MATCH (a:ChargeAttempt {payment_method_id: $id}) RETURN count(a) AS n', {
      id: other.id,
    });
    expect(rows.map((r) => Number(r.n))).toEqual([0]);
    // A suspended customer is erased at ops' request (graph/erasure.ts), which carries a reason.
    await eraseCustomer(g, c.id, { audit: { reason: 'test', requested_by: null, override_fraud_review: false } });
    expect(await reserve(pm.id)).toBe('customer_erased');
    expect(await reserve(pm.id, randomUUID())).toBe('customer_erased');
  });

  it('charges nothing more for a payment whose recovery has ended', async () => {
    const c = await createCustomer(g, {});
    const pm = await addPaymentMethod(g, c.id, card());
    const payment = `pay_${randomUUID()}`;
    expect(await reserveAt(c.id, pm.id, `${payment}:${pm.id}`)).toBe('allowed');
    await recordRecoveryFailed(g, { payment_id: payment, customer_id: c.id, attempts: 1, reason: 'test' });
    expect(await reserveAt(c.id, pm.id, `${payment}:${pm.id}:r1`)).toBe('recovery_ended');
    // The key charged before is still the same charge.
    expect(await reserveAt(c.id, pm.id, `${payment}:${pm.id}`)).toBe('known');
  });

  it('names the recoveries of customers from the charge ledger (what an erasure and a merge stop)', async () => {
    const c = await createCustomer(g, {});
    const [a, b] = [await addPaymentMethod(g, c.id, card()), await addPaymentMethod(g, c.id, card())];
    const other = await createCustomer(g, {});
    const theirs = await addPaymentMethod(g, other.id, card());
    const one = `pay_${randomUUID()}`;
    const colons = `pay:with:colons:${randomUUID()}`;
    await reserveAt(c.id, a.id, `${one}:${a.id}`, undefined, one);
    await reserveAt(c.id, b.id, `${one}:${b.id}`, undefined, one);
    await reserveAt(c.id, b.id, `${colons}:${b.id}:r2`, undefined, colons);
    await reserveAt(other.id, theirs.id, `pay_theirs_${randomUUID()}:${theirs.id}`);
    expect((await recoveriesOfCustomers(g, [c.id])).sort()).toEqual([one, colons].sort());
    await recordRecoveryStopped(g, { payment_id: one, customer_id: c.id, reason: 'test' });
    expect(await recoveriesOfCustomers(g, [c.id])).toEqual([colons]);
    expect((await recoveriesOfCustomers(g, [c.id], { all: true })).sort()).toEqual([one, colons].sort());
    expect(await recoveriesOfCustomers(g, [randomUUID()])).toEqual([]);
  });

  it(
    'keeps every charge attempt, with its request as first sent, through a card removal, a merge and ' +
      'an erasure (which strips the token and the card only)',
    async () => {
      const c = await createCustomer(g, {});
      const pm = await addPaymentMethod(g, c.id, card({ token: 'tok_visa_ledger' }));
      const payment = `pay_${randomUUID()}`;
      const key = `${payment}:${pm.id}`;
      expect(await reserveAt(c.id, pm.id, key)).toBe('allowed');
      await removePaymentMethod(g, c.id, pm.id);
      const kept = await readAttempt(g, key);
      expect(kept).toMatchObject({
        key,
        payment_id: payment,
        customer_id: c.id,
        payment_method_id: pm.id,
        amount: 1999,
        currency: 'USD',
        initiator: 'mit',
        reference: payment,
        state: 'sent',
        sends: 1,
      });
      // The token as first sent, sealed, still opens with the method's id.
      expect(g.tokens.decrypt(kept?.sealed as string, pm.id)).toBe('tok_visa_ledger');
      // Merged into another record: the attempt is not rewritten.
      const survivor = await createCustomer(g, {});
      await mergeCustomers(g, {
        survivor_id: survivor.id,
        merged_id: c.id,
        merge_id: `m-${randomUUID()}`,
        reason: 'test',
        requested_by: null,
        decided_by: 'ops',
      });
      expect(await readAttempt(g, key)).toEqual(kept);
      await eraseCustomer(g, survivor.id);
      const erased = await readAttempt(g, key);
      expect(erased).toMatchObject({ key, amount: 1999, currency: 'USD', state: 'sent', sealed: null, card: null });
      expect(erased?.erased_at).not.toBeNull();
      expect((await readRecoveryLedger(g, payment))?.attempts.map((a) => a.key)).toEqual([key]);
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

describe("a recovery's charge in the customer's profile (the recordRecovery activity)", () => {
  /** These activities only record: a charge here would be a mistake. */
  const noGateway: PaymentGateway = {
    charge: () => Promise.reject(new Error('recording a recovery must not charge')),
    chargesByReference: () => Promise.reject(new Error('recording a recovery must not ask the gateway')),
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
    const context = await customerContext(g, customerId, {
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
    // Ids, the field and the problem beside what the SDK adds of the activity (its ids, type, queue,
    // attempt), nothing else: no record or result whose fields may grow a token.
    const sdk = new Set(['activityId', 'activityType', 'attempt', 'isLocal', 'namespace', 'sdkComponent']);
    for (const k of ['taskQueue', 'taskToken', 'workflowId', 'workflowRunId', 'workflowType']) sdk.add(k);
    expect(
      Object.keys(logged[0]?.meta ?? {})
        .filter((k) => !sdk.has(k))
        .sort(),
    ).toEqual(['customerId', 'field', 'paymentId', 'problem']);
    expect(JSON.stringify(logged.map((e) => [e.message, e.meta]))).not.toContain(token);
  });
});
