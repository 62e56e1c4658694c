/**
 * Fraud outcomes end to end: the api, a real worker on the real Temporal, the real Neo4j and the
 * gateway simulator. Each test builds its own customers.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowNotFoundError } from '@temporalio/client';
import {
  addPaymentMethod,
  getDevicesByCustomer,
  getPaymentMethodsByCustomer,
  linkDevice,
  listCustomerEvents,
  type PersonaEvent,
} from '../../graph';
import { fraudOutcomeWorkflowId, type FraudOutcomeStatus } from '../../temporal/fraud';
import { registerOpenProcess } from '../../graph/openProcesses';
import { createFraudActivities } from '../../activities/fraud';
import {
  cancelRecoveryUpdate,
  RECOVERY_WORKFLOW_TYPE,
  recoveryWorkflowId,
  type RecoveryStatus,
} from '../../temporal/recovery';
import { personaCustomerId } from '../../temporal/searchAttributes';
import { startHarness, type Harness } from '../support/api';
import { customerWithTrustedDevice } from '../support/builders';
import { send } from '../support/http';
import { uniquePerson } from '../support/graph';
import { until } from '../support/wait';
import { cardIdentity, customerWithCards, paymentId, simulatorCharges } from '../support/recovery';

let h: Harness;
let ops: string;
let chimera: string;
beforeAll(async () => {
  h = await startHarness();
  // A person: ops' decisions carry their subject (a resend is told apart from another's by it).
  ops = await h.token('ops', 'ops-reviewer');
  chimera = await h.token('fraud:report context:read');
});
afterAll(() => h?.close());

/** A call's status and JSON, nothing more (a test compares two answers whole). */
async function request(method: string, path: string, token: string, body?: unknown) {
  const res = await send(h.app, method, path, { token, body });
  return { status: res.status, json: res.json };
}

const report = (body: Record<string, unknown>) => request('POST', '/api/v1/fraud-outcomes', chimera, body);
const context = async (customerId: string) =>
  (await request('GET', `/api/v1/customers/${customerId}/context`, chimera)).json;

async function statusOf(outcomeId: string): Promise<FraudOutcomeStatus> {
  return (await request('GET', `/api/v1/fraud-outcomes/${outcomeId}`, chimera)).json as unknown as FraudOutcomeStatus;
}

/** A customer with a verified email, cards for the given tokens, and a trusted device (0.9). */
const customer = (tokens?: string[]) => customerWithTrustedDevice(h.graph, tokens);

/** A customer whose card Chimera reported as confirmed fraud: suspended, the outcome awaiting review. */
async function suspendedForFraud() {
  const c = await customer();
  const card = c.cards[0] as string;
  const fraudId = `cf-${randomUUID()}`;
  await report({
    outcome_id: fraudId,
    customer_id: c.customerId,
    outcome: 'confirmed_fraud',
    payment_method_id: card,
    device_id: c.deviceId,
  });
  await until(async () => (await statusOf(fraudId)).state === 'awaiting_review');
  return { c, card, fraudId };
}

/** Reports an outcome about the customer's device; its id. */
async function reportOnDevice(c: { customerId: string; deviceId: string }, outcome: string): Promise<string> {
  const outcomeId = `${outcome}-${randomUUID()}`;
  await report({ outcome_id: outcomeId, customer_id: c.customerId, outcome, device_id: c.deviceId });
  return outcomeId;
}

const deviceTrust = async (deviceId: string) =>
  (
    await h.graph.query<{ trust: number }>('MATCH (d:Device {id: $id}) RETURN d.trust_score AS trust', { id: deviceId })
  )[0]?.trust;

const fraudEvents = async (customerId: string): Promise<PersonaEvent[]> =>
  (await listCustomerEvents(h.graph, customerId, { limit: 200 })).filter((e) =>
    [
      'PaymentMethodStatusChanged',
      'DeviceTrustScoreUpdated',
      'CustomerSuspended',
      'CustomerReinstated',
      'FraudOutcomeApplied',
      'FraudOutcomeReversed',
      'FraudReviewResolved',
      'CustomerNotified',
    ].includes(e.type),
  );

describe('POST /api/v1/fraud-outcomes', () => {
  it('refuses bad reports naming the field, and changes nothing', async () => {
    const a = await customer();
    const b = await customer();
    const before = await fraudEvents(a.customerId);
    const cases: [Record<string, unknown>, number, string | undefined][] = [
      [{ outcome: 'stolen_cookie' }, 400, 'outcome'],
      [{ outcome: 'confirmed_fraud', payment_method_id: b.cards[0] }, 400, 'payment_method_id'],
      [{ outcome: 'account_takeover', device_id: b.deviceId }, 400, 'device_id'],
      [{ outcome: 'challenge_passed' }, 400, 'device_id'],
      [{ outcome: 'confirmed_fraud' }, 400, 'payment_method_id'],
      [{ outcome: 'account_takeover', device_id: 'not-a-uuid' }, 400, 'device_id'],
      [{ outcome: 'account_takeover', customer_id: randomUUID() }, 404, undefined],
    ];
    for (const [fields, status, field] of cases) {
      const outcomeId = `bad-${randomUUID()}`;
      const res = await report({ outcome_id: outcomeId, customer_id: a.customerId, ...fields });
      expect([res.status, res.json.field]).toEqual([status, field]);
      await expect(h.client.workflow.getHandle(fraudOutcomeWorkflowId(outcomeId)).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    }
    expect(await fraudEvents(a.customerId)).toEqual(before);
    expect((await context(a.customerId)).status).toBe('active');
    expect(
      (
        await request('POST', '/api/v1/fraud-outcomes', await h.token('context:read'), {
          outcome_id: 'x',
          customer_id: a.customerId,
          outcome: 'false_positive',
        })
      ).status,
    ).toBe(403);
  });

  it('challenge_passed raises the customer’s trust on the device one step, once however often reported', async () => {
    const c = await customer();
    await linkDevice(h.graph, c.customerId, { fingerprint: `fp-${randomUUID()}` }); // another device, untouched
    const fingerprint = `fp-${randomUUID()}`;
    const fresh = await linkDevice(h.graph, c.customerId, { fingerprint, trust_score: 0.65 });
    const outcomeId = `cp-${randomUUID()}`;
    const body = { outcome_id: outcomeId, customer_id: c.customerId, outcome: 'challenge_passed', device_id: fresh.id };
    const [first, again] = [await report(body), await report(body)];
    expect(first).toEqual({ status: 202, json: { workflow_id: `fraud-outcome-${outcomeId}` } });
    expect(again).toEqual(first);
    const result = (await h.client.workflow.getHandle(`fraud-outcome-${outcomeId}`).result()) as FraudOutcomeStatus;
    expect(result.state).toBe('done');
    // The customer's own event: what they earned on the device, never the device's trust for others.
    const events = await listCustomerEvents(h.graph, c.customerId, { limit: 200 });
    expect(events.filter((e) => e.type === 'DeviceTrustScoreUpdated')).toEqual([]);
    expect(
      events
        .filter((e) => e.type === 'DeviceTrustEarned')
        .map((e) => ({ customer_id: e.customer_id, device_id: e.device_id ?? null, payload: e.payload })),
    ).toEqual([
      {
        customer_id: c.customerId,
        device_id: null,
        payload: { device_id: fresh.id, from: 0.65, to: 0.75, reason: 'fraud signal' },
      },
    ]);
    // Now above the trusted threshold (0.7): the context lists it, with the customer's figure.
    expect((await context(c.customerId)).trusted_devices).toContainEqual({
      device_id: fresh.id,
      fingerprint,
      trust_score: 0.75,
    });
    // The device's own trust did not move: it caps no one.
    expect(await deviceTrust(fresh.id)).toBe(1);

    // Another account presenting the same fingerprint starts from the beginning: no trust inherited,
    // in its context, its checkout, or its console page.
    const other = await customer();
    await linkDevice(h.graph, other.customerId, { fingerprint });
    expect(
      ((await context(other.customerId)).trusted_devices as { device_id: string }[]).map((d) => d.device_id),
    ).not.toContain(fresh.id);
    const checkout = await request(
      'GET',
      `/api/v1/customers/${other.customerId}/checkout-options?deviceId=${fresh.id}`,
      chimera,
    );
    expect(checkout.json).toMatchObject({ trusted_device: false });
    const mine = await request(
      'GET',
      `/api/v1/customers/${c.customerId}/checkout-options?deviceId=${fresh.id}`,
      chimera,
    );
    expect(mine.json).toMatchObject({ trusted_device: true });
    const devices = await getDevicesByCustomer(h.graph, other.customerId);
    expect(devices.find((d) => d.id === fresh.id)?.trust_score).toBe(0.5);
  });
});

describe('confirmed fraud', () => {
  it(
    'compromises the method, distrusts the device, suspends the customer, ' +
      'and a running recovery never charges the method again',
    async () => {
      // The failed card and the card the cascade tries next both soft-decline: the recovery dunns.
      // Cards of their own: the networks' cap counts a card's charges across runs on the shared stack.
      const c = await customer([
        `tok_decline_insufficient_funds_card-${cardIdentity()}`,
        `tok_decline_insufficient_funds_card-${cardIdentity()}`,
      ]);
      const [failed, stolen] = c.cards as [string, string];
      const payment = paymentId();
      const failure = {
        payment_id: payment,
        customer_id: c.customerId,
        payment_method_id: failed,
        amount: 1999,
        currency: 'EUR',
        decline_code: 'insufficient_funds',
      };
      expect(
        (await request('POST', '/api/v1/payment-failures', await h.token('payments:report'), failure)).status,
      ).toBe(202);
      const recovery = h.client.workflow.getHandle(recoveryWorkflowId(payment));
      await until(async () => (await recovery.query<RecoveryStatus>('recoveryStatus')).state === 'dunning');
      const chargedBefore = (await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, c.customerId)).filter((ch) =>
        ch.idempotency_key.includes(stolen),
      );
      expect(chargedBefore).toHaveLength(1);

      const outcomeId = `cf-${randomUUID()}`;
      const res = await report({
        outcome_id: outcomeId,
        customer_id: c.customerId,
        outcome: 'confirmed_fraud',
        payment_method_id: stolen,
        device_id: c.deviceId,
      });
      expect(res.status).toBe(202);
      await until(async () => (await statusOf(outcomeId)).state === 'awaiting_review');
      const status = await statusOf(outcomeId);
      expect(status.recoveries_blocked).toEqual([recoveryWorkflowId(payment)]);

      // What the agents read now.
      const ctx = await context(c.customerId);
      // Should it differ, the message says what the graph and the log held then.
      const [graphNow] = await h.graph.query<{ status: string; seq: number }>(
        'MATCH (c:Customer {id: $id}) RETURN c.status AS status, c.event_seq AS seq',
        { id: c.customerId },
      );
      const log = (await listCustomerEvents(h.graph, c.customerId, { limit: 200 })).map(
        (e) => `${e.customer_seq ?? '-'} ${e.type} ${e.occurred_at}`,
      );
      const held = `graph: ${JSON.stringify(graphNow)}; cache stats: ${JSON.stringify(h.deps.readCache.stats)}`;
      expect(ctx, `${held}; log:\n${log.join('\n')}`).toMatchObject({
        status: 'suspended',
        trusted_devices: [],
        active_payment_methods: [failed],
      });
      const checkout = await request(
        'GET',
        `/api/v1/customers/${c.customerId}/checkout-options?deviceId=${c.deviceId}`,
        chimera,
      );
      expect(checkout.json).toMatchObject({ data: [], trusted_device: false });
      const events = await fraudEvents(c.customerId);
      expect(
        events.find((e) => e.type === 'PaymentMethodStatusChanged' && e.payload.to === 'compromised')?.payload,
      ).toMatchObject({ payment_method_id: stolen, from: 'active', fraud_outcome_id: outcomeId });
      expect(events.find((e) => e.type === 'DeviceTrustScoreUpdated')?.payload).toMatchObject({
        device_id: c.deviceId,
        from: 1,
        to: 0,
      });
      expect(events.find((e) => e.type === 'CustomerSuspended')?.payload).toMatchObject({
        from: 'active',
        to: 'suspended',
        fraud_outcome_id: outcomeId,
      });

      // The customer adds a good card: the recovery retries at once — but a suspended customer is not
      // charged (the graph says so right before the charge), and the compromised card is never touched.
      const good = await addPaymentMethod(h.graph, c.customerId, {
        type: 'card',
        token: `tok_visa_${randomUUID()}`,
        brand: 'visa',
        last_four: '4242',
        expiry_month: 12,
        expiry_year: 2035,
      });
      await recovery.signal('paymentMethodAdded', { payment_method_id: good.id });
      await until(async () =>
        (await recovery.query<RecoveryStatus>('recoveryStatus')).attempts.some(
          (a) => a.decline_code === 'customer_suspended',
        ),
      );
      const charges = await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, c.customerId);
      expect(charges.filter((ch) => ch.idempotency_key.includes(stolen))).toHaveLength(1);
      expect(charges.filter((ch) => ch.idempotency_key.includes(good.id))).toEqual([]);
      await recovery.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'test over' }] });
      expect(((await recovery.result()) as RecoveryStatus).state).toBe('stopped');

      // Ops confirm the suspension; the customer stays suspended.
      expect(
        (await request('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, chimera, { decision: 'confirm' })).status,
      ).toBe(403);
      const decided = await request('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, ops, { decision: 'confirm' });
      expect(decided.status).toBe(200);
      expect(
        ((await h.client.workflow.getHandle(fraudOutcomeWorkflowId(outcomeId)).result()) as FraudOutcomeStatus).state,
      ).toBe('confirmed');
      expect((await context(c.customerId)).status).toBe('suspended');
      const again = await request('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, ops, { decision: 'reinstate' });
      expect(again.status).toBe(409);
      // The same decision sent again by the same ops (their answer lost) is told what was decided.
      const resent = await request('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, ops, { decision: 'confirm' });
      expect([resent.status, resent.json]).toEqual([200, decided.json]);
      // A token without a subject cannot be told from another caller: its words are judged afresh.
      const anonymous = await request('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, await h.token('ops'), {
        decision: 'confirm',
      });
      expect(anonymous.status).toBe(409);
    },
  );

  it('once ops decided a review, an agent’s false positive is recorded, changes nothing; ops’ reverses', async () => {
    const { c, fraudId } = await suspendedForFraud();
    expect(
      (await request('POST', `/api/v1/fraud-outcomes/${fraudId}/review`, ops, { decision: 'confirm' })).status,
    ).toBe(200);
    await until(async () => (await statusOf(fraudId)).state === 'confirmed');

    // Chimera (an agent) says false positive: recorded, answered with what happened, nothing changed.
    const agentFp = `fp-${randomUUID()}`;
    expect((await report({ outcome_id: agentFp, customer_id: c.customerId, outcome: 'false_positive' })).status).toBe(
      202,
    );
    const refused = (await h.client.workflow.getHandle(fraudOutcomeWorkflowId(agentFp)).result()) as FraudOutcomeStatus;
    expect(refused).toMatchObject({
      state: 'not_applied',
      reversal: { reversed_outcome_id: null, restored: [], refused: { outcome_id: fraudId, decision: 'confirm' } },
    });
    expect(refused.problem).toMatch(/only ops may reverse it/);
    expect(await statusOf(agentFp)).toMatchObject({ state: 'not_applied' });
    expect((await context(c.customerId)).status).toBe('suspended');
    expect((await getPaymentMethodsByCustomer(h.graph, c.customerId))[0]?.status).toBe('compromised');
    expect((await fraudEvents(c.customerId)).find((e) => e.type === 'FraudOutcomeReversed')?.payload).toMatchObject({
      outcome_id: agentFp,
      reported_by: 'agent',
      reversed_outcome_id: null,
      refused: { outcome_id: fraudId, decision: 'confirm' },
    });

    // Ops' own false positive (an ops token) reverses what ops decided.
    const opsFp = `fp-${randomUUID()}`;
    const byOps = await request('POST', '/api/v1/fraud-outcomes', ops, {
      outcome_id: opsFp,
      customer_id: c.customerId,
      outcome: 'false_positive',
    });
    expect(byOps.status).toBe(202);
    const reversed = (await h.client.workflow.getHandle(fraudOutcomeWorkflowId(opsFp)).result()) as FraudOutcomeStatus;
    expect(reversed).toMatchObject({ state: 'done', reversal: { reversed_outcome_id: fraudId } });
    expect((await context(c.customerId)).status).toBe('active');
    expect((await getPaymentMethodsByCustomer(h.graph, c.customerId))[0]?.status).toBe('active');
  });

  it('no detour around ops’ confirmation: a second suspension’s reversal, a passed challenge', async () => {
    const { c, fraudId } = await suspendedForFraud();
    await request('POST', `/api/v1/fraud-outcomes/${fraudId}/review`, ops, { decision: 'confirm' });
    await until(async () => (await statusOf(fraudId)).state === 'confirmed');

    // The agent reports a takeover of the suspended customer, then calls that one a false positive.
    const takeover = await reportOnDevice(c, 'account_takeover');
    await until(async () => (await statusOf(takeover)).state === 'awaiting_review');
    const fp = `fp-${randomUUID()}`;
    await report({ outcome_id: fp, customer_id: c.customerId, outcome: 'false_positive' });
    expect(
      ((await h.client.workflow.getHandle(fraudOutcomeWorkflowId(fp)).result()) as FraudOutcomeStatus).reversal,
    ).toMatchObject({ reversed_outcome_id: takeover });
    // The takeover's review ends reinstated — to the status from before it: suspended, as ops decided.
    await until(async () => (await statusOf(takeover)).state === 'reinstated');
    expect((await context(c.customerId)).status).toBe('suspended');

    // A passed challenge does not raise the customer's trust there, which ops' confirmed outcome zeroed.
    const challenge = await reportOnDevice(c, 'challenge_passed');
    const passed = (await h.client.workflow
      .getHandle(fraudOutcomeWorkflowId(challenge))
      .result()) as FraudOutcomeStatus;
    expect(passed).toMatchObject({ state: 'not_applied' });
    expect(passed.problem).toMatch(/ops confirmed on review/);
    expect(await deviceTrust(c.deviceId)).toBe(0);
    const earned = async () =>
      (await getDevicesByCustomer(h.graph, c.customerId)).find((d) => d.id === c.deviceId)?.trust_score;
    expect(await earned()).toBe(0);

    // Nor does an agent's device-level signal raise it (409); ops may.
    const raise = (token: string) =>
      request('PUT', `/api/v1/devices/${c.deviceId}/trust-score`, token, { trust_score: 0.9, reason: 'looks fine' });
    const byAgent = await raise(await h.token('devices:write'));
    expect(byAgent.status).toBe(409);
    expect(JSON.stringify(byAgent.json)).toMatch(/ops confirmed on review/);
    expect(await deviceTrust(c.deviceId)).toBe(0);
    expect((await raise(ops)).status).toBe(200);
    expect(await deviceTrust(c.deviceId)).toBe(0.9);
    // Ops lifted the device for everyone else on it; the customer ops confirmed as fraud stays at 0 there.
    expect(await earned()).toBe(0);
  });

  it('an agent’s false positive does not raise a device ops decided about in another review', async () => {
    // Two customers on one device. An agent's takeover of the first zeroes the device (1 → 0); then
    // ops confirm a fraud of the second on the same device (already 0); then the agent calls the
    // first takeover a false positive: the customer comes back, the device stays where ops left it.
    const a = await customer();
    const takeover = await reportOnDevice(a, 'account_takeover');
    await until(async () => (await statusOf(takeover)).state === 'awaiting_review');
    expect(await deviceTrust(a.deviceId)).toBe(0);
    const fingerprint = (await getDevicesByCustomer(h.graph, a.customerId))[0]?.fingerprint as string;
    const b = await customer();
    await linkDevice(h.graph, b.customerId, { fingerprint });
    const fraudId = `cf-${randomUUID()}`;
    await report({
      outcome_id: fraudId,
      customer_id: b.customerId,
      outcome: 'confirmed_fraud',
      payment_method_id: b.cards[0],
      device_id: a.deviceId,
    });
    await until(async () => (await statusOf(fraudId)).state === 'awaiting_review');
    await request('POST', `/api/v1/fraud-outcomes/${fraudId}/review`, ops, { decision: 'confirm' });
    await until(async () => (await statusOf(fraudId)).state === 'confirmed');

    const fp = `fp-${randomUUID()}`;
    await report({ outcome_id: fp, customer_id: a.customerId, outcome: 'false_positive' });
    const reversal = ((await h.client.workflow.getHandle(fraudOutcomeWorkflowId(fp)).result()) as FraudOutcomeStatus)
      .reversal;
    expect(reversal).toMatchObject({ reversed_outcome_id: takeover });
    expect(reversal?.restored.map((r) => r.entity)).toEqual(['customer_device', 'customer']);
    expect(reversal?.skipped.map((r) => r.entity)).toEqual(['device']);
    expect(await deviceTrust(a.deviceId)).toBe(0);
    expect((await context(a.customerId)).status).toBe('active');
  });

  it('zeroes again, when ops confirm, a device trust an agent raised while the review waited', async () => {
    const { c, fraudId } = await suspendedForFraud();
    const trustOf = () => deviceTrust(c.deviceId);
    // What the customer earned there (their edge), under the device's cap the reads apply.
    const earned = async () =>
      (
        await h.graph.query<{ trust: number }>(
          'MATCH (:Customer {id: $c})-[l:LOGGED_IN_FROM]->(:Device {id: $d}) RETURN l.trust_score AS trust',
          { c: c.customerId, d: c.deviceId },
        )
      )[0]?.trust;
    const put = await request('PUT', `/api/v1/devices/${c.deviceId}/trust-score`, await h.token('devices:write'), {
      trust_score: 0.8,
      reason: 'chimera: device looks clean',
    });
    expect(put.status).toBe(200);
    expect(await trustOf()).toBe(0.8);
    // And a challenge the customer passed there meanwhile (their own trust: 0 → one step).
    const challenge = await reportOnDevice(c, 'challenge_passed');
    await until(async () => (await statusOf(challenge)).state === 'done');
    expect(await earned()).toBeGreaterThan(0);
    await request('POST', `/api/v1/fraud-outcomes/${fraudId}/review`, ops, { decision: 'confirm' });
    await until(async () => (await statusOf(fraudId)).state === 'confirmed');
    expect(await trustOf()).toBe(0);
    expect(await earned()).toBe(0);
    const resolved = (await fraudEvents(c.customerId)).find((e) => e.type === 'FraudReviewResolved');
    expect(resolved?.payload).toMatchObject({
      decision: 'confirm',
      reapplied: [
        { entity: 'device', id: c.deviceId, to: 0 },
        { entity: 'customer_device', id: c.deviceId, to: 0 },
      ],
    });
  });

  it('a false positive puts back the method, the device’s trust and the customer, with events', async () => {
    const { c, card, fraudId } = await suspendedForFraud();
    expect((await context(c.customerId)).status).toBe('suspended');

    const fpId = `fp-${randomUUID()}`;
    expect((await report({ outcome_id: fpId, customer_id: c.customerId, outcome: 'false_positive' })).status).toBe(202);
    const fp = (await h.client.workflow.getHandle(fraudOutcomeWorkflowId(fpId)).result()) as FraudOutcomeStatus;
    expect(fp.reversal).toMatchObject({ reversed_outcome_id: fraudId, skipped: [] });
    expect(fp.reversal?.restored.map((r) => [r.entity, r.to])).toEqual([
      ['payment_method', 'active'],
      ['device', 1],
      ['customer_device', 0.9],
      ['customer', 'active'],
    ]);
    // The earlier outcome's review is over: the customer is back.
    expect(
      ((await h.client.workflow.getHandle(fraudOutcomeWorkflowId(fraudId)).result()) as FraudOutcomeStatus).state,
    ).toBe('reinstated');

    expect(await context(c.customerId)).toMatchObject({
      status: 'active',
      active_payment_methods: [card],
      default_payment_method_id: card,
    });
    expect(((await context(c.customerId)).trusted_devices as { device_id: string }[]).map((d) => d.device_id)).toEqual([
      c.deviceId,
    ]);
    const events = await fraudEvents(c.customerId);
    expect(events.find((e) => e.type === 'CustomerReinstated')?.payload).toMatchObject({
      from: 'suspended',
      to: 'active',
      fraud_outcome_id: fpId,
    });
    expect(events.find((e) => e.type === 'FraudOutcomeReversed')?.payload).toMatchObject({
      outcome_id: fpId,
      reversed_outcome_id: fraudId,
    });
    expect((await getPaymentMethodsByCustomer(h.graph, c.customerId))[0]?.status).toBe('active');
  });
});

describe('account takeover', () => {
  it(
    'suspends, distrusts the device, alerts through a verified identifier; ' +
      'ops reinstate; a matched onboarding never reactivates',
    async () => {
      const c = await customer();
      const outcomeId = `ato-${randomUUID()}`;
      await report({
        outcome_id: outcomeId,
        customer_id: c.customerId,
        outcome: 'account_takeover',
        device_id: c.deviceId,
      });
      await until(async () => (await statusOf(outcomeId)).state === 'awaiting_review');
      // The review opens first; the alert goes out beside it.
      await until(async () => (await fraudEvents(c.customerId)).some((e) => e.type === 'CustomerNotified'));
      const alert = (await fraudEvents(c.customerId)).find((e) => e.type === 'CustomerNotified');
      expect(alert?.payload).toMatchObject({ kind: 'account_takeover', channel: 'email', fraud_outcome_id: outcomeId });

      // While suspended, an onboarding that matches the customer's verified email (and birth date, as the
      // policy wants more than an email a family may share) leaves it suspended.
      const born = uniquePerson().birth_date;
      const identifiers = await h.graph.query<{ value: string }>(
        'MATCH (c:Customer {id: $id})-[:HAS_DIGITAL_IDENTIFIER]->(d:DigitalIdentifier) ' +
          'SET c.birth_date = $born RETURN d.value AS value',
        { id: c.customerId, born },
      );
      const onboarding = await h.app.request('/api/v1/onboarding?wait=true', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await h.token('onboarding:write identity:verify')}`,
          'idempotency-key': randomUUID(),
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          customer: { segment: 'New', ltv: '0' },
          digital_identifiers: [{ type: 'email', value: identifiers[0]?.value, is_verified: true }],
          person: { birth_date: born },
        }),
      });
      expect(await onboarding.json()).toMatchObject({ customer_id: c.customerId, outcome: 'matched' });
      expect((await context(c.customerId)).status).toBe('suspended');

      expect(
        (
          await request('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, ops, {
            decision: 'reinstate',
            note: 'verified by phone',
          })
        ).status,
      ).toBe(200);
      const result = (await h.client.workflow
        .getHandle(fraudOutcomeWorkflowId(outcomeId))
        .result()) as FraudOutcomeStatus;
      expect(result.state).toBe('reinstated');
      expect((await context(c.customerId)).status).toBe('active');
      const events = await fraudEvents(c.customerId);
      expect(events.find((e) => e.type === 'FraudReviewResolved')?.payload).toMatchObject({
        outcome_id: outcomeId,
        decision: 'reinstate',
        reinstated: true,
      });
      expect(events.find((e) => e.type === 'CustomerReinstated')?.payload).toMatchObject({
        from: 'suspended',
        to: 'active',
        fraud_outcome_id: outcomeId,
      });
      // Reinstating gives back the customer, not the device's trust: that stays at 0 until Chimera says otherwise.
      expect((await context(c.customerId)).trusted_devices).toEqual([]);
    },
  );

  it('does not alert a customer through an unverified identifier', async () => {
    const { customerId } = await customerWithCards(h.graph, []);
    await h.graph.query('MATCH (:Customer {id: $id})-[:HAS_DIGITAL_IDENTIFIER]->(d) SET d.is_verified = false', {
      id: customerId,
    });
    const outcomeId = `ato-${randomUUID()}`;
    await report({ outcome_id: outcomeId, customer_id: customerId, outcome: 'account_takeover' });
    await until(async () => (await statusOf(outcomeId)).state === 'awaiting_review');
    // The review opens first; the alert is recorded beside it.
    await until(async () => (await fraudEvents(customerId)).some((e) => e.type === 'CustomerNotified'));
    const alert = (await fraudEvents(customerId)).find((e) => e.type === 'CustomerNotified');
    expect(alert?.payload).toMatchObject({ kind: 'account_takeover', channel: null });
    await h.client.workflow.getHandle(fraudOutcomeWorkflowId(outcomeId)).terminate('test over');
  });

  it('finds the running recoveries to tell by the graph as well as by visibility, and no closed one', async () => {
    const { customerId } = await customerWithCards(h.graph, []);
    const idle = `persona-nobody-${randomUUID()}`; // no worker polls it: what starts there stays running
    const start = async (id: string, searchable: boolean) => {
      await h.deps.payloads.provision(id, customerId);
      const handle = await h.client.workflow.start(RECOVERY_WORKFLOW_TYPE, {
        taskQueue: idle,
        workflowId: id,
        args: [],
        ...(searchable ? { typedSearchAttributes: [{ key: personaCustomerId, value: customerId }] } : {}),
      });
      // What a worker's first activity of it does (workers/openProcesses.ts).
      if (!searchable) await registerOpenProcess(h.graph, id, customerId);
      return handle;
    };
    // Among the open processes only (no search attribute): what visibility has not indexed yet looks like this.
    const unindexed = await start(recoveryWorkflowId(paymentId()), false);
    const closed = await start(recoveryWorkflowId(paymentId()), false);
    await closed.terminate('test: a closed recovery is not told');
    // Found by visibility only (it has run no activity yet): not among the open processes.
    const before = await h.client.workflow.start(RECOVERY_WORKFLOW_TYPE, {
      taskQueue: idle,
      workflowId: recoveryWorkflowId(paymentId()),
      args: [],
      typedSearchAttributes: [{ key: personaCustomerId, value: customerId }],
    });
    const fraud = createFraudActivities({ graph: h.graph, temporal: h.client });
    await until(async () =>
      (await fraud.listRunningRecoveries({ customer_id: customerId })).includes(before.workflowId),
    );
    expect(await fraud.listRunningRecoveries({ customer_id: customerId })).toEqual(
      [unindexed.workflowId, before.workflowId].sort(),
    );
    await Promise.all([unindexed.terminate('test over'), before.terminate('test over')]);
  });
});
