import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carriedBookmarks, getPaymentMethodsByCustomer, listCustomerEvents } from '../../graph';
import { readRecoveryLedger, reserveRecovery } from '../../graph/chargeLedger';
import { InvalidStateError, NotFoundError } from '../../graph/errors';
import { cancelRecovery } from '../../api/services/recovery';
import type { OwnerStopAnswer, RecoveryStatus } from '../../temporal/recovery';
import { recoveryWorkflowId } from '../../temporal/recovery';
import { personaCustomerId } from '../../temporal/searchAttributes';
import { startHarness, type Harness } from '../support/api';
import { send } from '../support/http';
import { fromMinorUnits, toMinorUnits } from '../../payments/money';
import { until } from '../support/wait';
import { cardIdentity, customerWithCards, forgetWorkflow, paymentId, simulatorCharges } from '../support/recovery';

let h: Harness;
let gatewayUrl: string;
/**
 * A test token for a card of its own (`card-<id>`): the networks' caps count a card's charges
 * across customers and runs, so a fixed token shared by every run reaches them on the shared stack.
 */
const oneCard = (token: string) => `${token}_card-${cardIdentity()}`;
/** Charges held before they go, by customer: a recovery kept busy charging, on demand. */
const gates = new Map<string, { started: boolean; opened: Promise<void>; open: () => void }>();
function hold(customerId: string) {
  let open = () => undefined as void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const gate = { started: false, opened, open };
  gates.set(customerId, gate);
  return gate;
}
/** The bookmarks each customer's last charge ran inside (graph/bookmarks.ts), from its workflow's header. */
const chargedWithin = new Map<string, readonly string[]>();
beforeAll(async () => {
  h = await startHarness({
    wrapActivities: (real) => ({
      ...real,
      async chargePaymentMethod(a) {
        chargedWithin.set(a.customer_id, carriedBookmarks());
        const gate = gates.get(a.customer_id);
        if (gate) {
          gate.started = true;
          await gate.opened;
        }
        return real.chargePaymentMethod(a);
      },
    }),
  });
  gatewayUrl = h.graph.config.PERSONA_GATEWAY_URL;
});
afterAll(() => h?.close());

/** Reports a failed payment as Synapse does: the answer's status and JSON, nothing more (tests compare both). */
async function report(body: Record<string, unknown>) {
  const res = await send(h.app, 'POST', '/api/v1/payment-failures', { token: await h.token('payments:report'), body });
  return { status: res.status, json: res.json };
}

async function status(payment: string): Promise<RecoveryStatus> {
  const res = await send<RecoveryStatus>(h.app, 'GET', `/api/v1/payment-recoveries/${payment}`, {
    token: await h.token('payments:report'),
  });
  return res.json;
}

const failure = (customerId: string, pm: string, decline_code: string, payment = paymentId()) => ({
  payment_id: payment,
  customer_id: customerId,
  payment_method_id: pm,
  amount: 2599,
  currency: 'EUR',
  decline_code,
});

/** Adds a card through the wallet route, as the customer. */
/** Adds a card as the customer (or, with `scope`, as an agent holding it). */
async function addCard(customerId: string, token: string, query = '', scope?: string) {
  return send(h.app, 'POST', `/api/v1/customers/${customerId}/payment-methods${query}`, {
    token: scope ? await h.token(scope) : await h.token('self', customerId),
    body: { type: 'card', token, brand: 'visa', last_four: '4242', expiry_month: 8, expiry_year: 2033 },
  });
}

/** Until visibility lists these recoveries as running: the wallet route finds them by search. */
async function untilListed(paymentIds: string[]) {
  await until(async () => {
    let n = 0;
    for await (const wf of h.client.workflow.list({
      query:
        `WorkflowId IN (${paymentIds.map((p) => `'${recoveryWorkflowId(p)}'`).join(', ')})` +
        " AND ExecutionStatus = 'Running'",
    }))
      if (wf) n++;
    return n === paymentIds.length;
  });
}

describe('payment recovery end to end', () => {
  it('recovers a soft decline with the second method: one successful charge, new default, customer told', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_insufficient_funds'),
      `tok_visa_${randomUUID()}`,
    ]);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    const res = await report(f);
    expect(res).toEqual({ status: 202, json: { workflow_id: recoveryWorkflowId(f.payment_id) } });
    const result = (await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result()) as RecoveryStatus;
    expect(result).toMatchObject({ state: 'recovered', recovered_with: cards[1] });

    const charges = await simulatorCharges(gatewayUrl, customerId);
    expect(charges).toMatchObject([
      { idempotency_key: `${f.payment_id}:${cards[1]}`, status: 'succeeded', amount: 2599, currency: 'EUR' },
    ]);
    // The charge read the wallet at or past the api's writes: their bookmarks came with the report.
    expect(chargedWithin.get(customerId)?.length).toBeGreaterThan(0);
    const wallet = await getPaymentMethodsByCustomer(h.graph, customerId);
    expect(wallet.filter((p) => p.is_default).map((p) => p.id)).toEqual([cards[1]]);
    const types = (await listCustomerEvents(h.graph, customerId)).map((e) => e.type);
    expect(types.filter((t) => t === 'PaymentRecovered')).toHaveLength(1);
    expect(types).toContain('DefaultPaymentMethodChanged');
    const notified = await listCustomerEvents(h.graph, customerId, { type: 'CustomerNotified' });
    expect(notified.map((e) => e.payload)).toEqual([{ kind: 'payment_recovered', channel: 'email' }]);
    expect(await status(f.payment_id)).toMatchObject({ state: 'recovered', recovered_with: cards[1] });
    const described = await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).describe();
    expect(described.typedSearchAttributes.get(personaCustomerId)).toBe(customerId);
    expect(await described.staticSummary()).toBe(
      `Recover payment ${f.payment_id} of 25.99 EUR after a declined charge (insufficient_funds)`,
    );
  });

  it('counts a recovered payment in the reporting currency in LTV once, as the next context read shows', async () => {
    const currency = h.graph.policy.reportingCurrency;
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_insufficient_funds'),
      `tok_visa_${randomUUID()}`,
    ]);
    const context = async () => {
      const res = await h.app.request(`/api/v1/customers/${customerId}/context`, {
        headers: { authorization: `Bearer ${await h.token('context:read')}` },
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { ltv: string; ltv_currency: string };
    };
    const before = await context();
    expect(before.ltv_currency).toBe(currency);
    const f = { ...failure(customerId, cards[0] as string, 'insufficient_funds'), amount: 12345, currency };
    expect((await report(f)).status).toBe(202);
    const result = (await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result()) as RecoveryStatus;
    expect(result).toMatchObject({ state: 'recovered', recovered_with: cards[1] });

    expect((await context()).ltv).toBe(fromMinorUnits(toMinorUnits(before.ltv, currency) + 12345, currency));
    const [row] = await h.graph.query<{ succeeded: number }>(
      'MATCH (c:Customer {id: $id}) RETURN c.succeeded_payments AS succeeded',
      { id: customerId },
    );
    expect(Number(row?.succeeded)).toBe(1);
    const updates = await listCustomerEvents(h.graph, customerId, { type: 'CustomerProfileUpdated' });
    expect(updates.map((e) => e.payload.reason)).toEqual([expect.stringContaining('1 succeeded payment recorded')]);
  });

  it('stops at a fraud-hard decline: the method is compromised and nothing is charged', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      `tok_visa_${randomUUID()}`,
      `tok_visa_${randomUUID()}`,
    ]);
    const f = failure(customerId, cards[0] as string, 'stolen_card');
    await report(f);
    expect(await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result()).toMatchObject({
      state: 'stopped',
    });
    expect(await simulatorCharges(gatewayUrl, customerId)).toEqual([]);
    const wallet = await getPaymentMethodsByCustomer(h.graph, customerId);
    expect(wallet.find((p) => p.id === cards[0])?.status).toBe('compromised');
    const notified = await listCustomerEvents(h.graph, customerId, { type: 'CustomerNotified' });
    expect(notified.map((e) => e.payload.kind)).toEqual(['card_compromised']);
  });

  it('dunns when every method fails, visibly, and a card added to the wallet retries at once', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_generic_decline'),
      oneCard('tok_decline_do_not_honor'),
    ]);
    const f = failure(customerId, cards[0] as string, 'generic_decline');
    await report(f);
    await until(async () => (await status(f.payment_id)).state === 'dunning');
    const dunning = await status(f.payment_id);
    expect(dunning.next_retry_at).not.toBeNull();
    expect(dunning.attempts.map((a) => [a.payment_method_id, a.decline_code])).toEqual([
      [cards[0], 'generic_decline'],
      [cards[1], 'do_not_honor'],
    ]);
    // The recovery must be visible to the wallet route's search before the card arrives.
    await until(async () => {
      for await (const wf of h.client.workflow.list({
        query: `WorkflowId = '${recoveryWorkflowId(f.payment_id)}' AND ExecutionStatus = 'Running'`,
      }))
        if (wf) return true;
      return false;
    });
    const added = await h.app.request(`/api/v1/customers/${customerId}/payment-methods`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.token('self', customerId)}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'card',
        token: `tok_visa_${randomUUID()}`,
        brand: 'mastercard',
        last_four: '5454',
        expiry_month: 8,
        expiry_year: 2033,
      }),
    });
    const newCard = ((await added.json()) as { id: string }).id;
    const result = (await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result()) as RecoveryStatus;
    expect(result).toMatchObject({ state: 'recovered', recovered_with: newCard });
    const succeeded = (await simulatorCharges(gatewayUrl, customerId)).filter((c) => c.status === 'succeeded');
    expect(succeeded.map((c) => c.idempotency_key)).toEqual([`${f.payment_id}:${newCard}:r1`]);
  });

  it('answers a card added while two recoveries dunn with each one’s outcome, the first started first', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [oneCard('tok_decline_generic_decline')]);
    const first = failure(customerId, cards[0] as string, 'generic_decline');
    const second = failure(customerId, cards[0] as string, 'generic_decline');
    await report(first);
    await until(async () => (await status(first.payment_id)).state === 'dunning');
    await report(second);
    await until(async () => (await status(second.payment_id)).state === 'dunning');
    await untilListed([first.payment_id, second.payment_id]);

    const added = await addCard(customerId, `tok_visa_${randomUUID()}`, '?wait=true');
    expect(added.status).toBe(201);
    const body = added.json as { id: string; recoveries: Record<string, unknown>[] };
    expect(body.recoveries).toEqual([
      {
        payment_id: first.payment_id,
        workflow_id: recoveryWorkflowId(first.payment_id),
        offered: 1,
        outcome: 'recovered',
        decline_code: null,
        state: 'recovered',
        status_url: `/api/v1/payment-recoveries/${first.payment_id}`,
      },
      expect.objectContaining({ payment_id: second.payment_id, offered: 2, outcome: 'recovered' }),
    ]);
    // Each payment charged once on the new card, each under its own key.
    const succeeded = (await simulatorCharges(gatewayUrl, customerId)).filter((c) => c.status === 'succeeded');
    expect(succeeded.map((c) => c.idempotency_key).sort()).toEqual(
      [`${first.payment_id}:${body.id}:r1`, `${second.payment_id}:${body.id}:r1`].sort(),
    );
    expect(await status(first.payment_id)).toMatchObject({
      recovered_with: body.id,
      recovered_by: 'customer_added_card',
    });
  });

  it('answers 202 and where to read the outcome to a caller who does not wait; a decline is said so', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [oneCard('tok_decline_generic_decline')]);
    const f = failure(customerId, cards[0] as string, 'generic_decline');
    await report(f);
    await until(async () => (await status(f.payment_id)).state === 'dunning');
    await untilListed([f.payment_id]);
    const pending = await addCard(customerId, oneCard('tok_decline_do_not_honor'));
    expect(pending.status).toBe(202);
    expect((pending.json as { recoveries: unknown[] }).recoveries).toEqual([
      expect.objectContaining({
        offered: 1,
        outcome: 'pending',
        status_url: `/api/v1/payment-recoveries/${f.payment_id}`,
      }),
    ]);
    // The declined card, offered with a wait: the customer is told it declined, not the issuer's
    // reason (a live decline code per card added would help a card tester); the recovery dunns on.
    await until(async () => (await status(f.payment_id)).state === 'dunning');
    const declined = await addCard(customerId, oneCard('tok_decline_insufficient_funds'), '?wait=true');
    expect(declined.status).toBe(201);
    expect((declined.json as { recoveries: unknown[] }).recoveries).toEqual([
      expect.objectContaining({ outcome: 'declined', decline_code: null }),
    ]);
    // An agent adding a card for the customer reads the reason.
    await until(async () => (await status(f.payment_id)).state === 'dunning');
    const byAgent = await addCard(
      customerId,
      oneCard('tok_decline_insufficient_funds'),
      '?wait=true',
      'customers:write',
    );
    expect((byAgent.json as { recoveries: unknown[] }).recoveries).toEqual([
      expect.objectContaining({ outcome: 'declined', decline_code: 'insufficient_funds' }),
    ]);
    await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).cancel();
  });

  it('ignores duplicate reports: one recovery, one charge', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_insufficient_funds'),
      `tok_visa_${randomUUID()}`,
    ]);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    await Promise.all([report(f), report(f), report(f)]);
    await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result();
    const again = await report(f);
    expect(again.status).toBe(202);
    await sleep(500);
    expect(await simulatorCharges(gatewayUrl, customerId)).toHaveLength(1);
    const runs: string[] = [];
    for await (const wf of h.client.workflow.list({ query: `WorkflowId = '${recoveryWorkflowId(f.payment_id)}'` }))
      runs.push(wf.runId);
    expect(runs).toHaveLength(1);
  });

  it('recovers a payment once, whatever Temporal remembers: after its retention a replay starts nothing', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_insufficient_funds'),
      `tok_visa_${randomUUID()}`,
    ]);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    expect((await report(f)).status).toBe(202);
    const handle = h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id));
    await handle.result();
    // Temporal forgets the closed run, as its namespace retention does after 30 days.
    await forgetWorkflow(h.client, h.graph.config.TEMPORAL_NAMESPACE, recoveryWorkflowId(f.payment_id));
    // Synapse replays the failure: the ledger has the payment recovered, so nothing starts.
    expect(await report(f)).toEqual({ status: 202, json: { workflow_id: recoveryWorkflowId(f.payment_id) } });
    await expect(handle.describe()).rejects.toThrow();
    expect((await simulatorCharges(gatewayUrl, customerId)).filter((c) => c.status === 'succeeded')).toHaveLength(1);
    // Its status is the ledger's now.
    expect(await status(f.payment_id)).toMatchObject({ state: 'recovered', recovered_with: cards[1] });
  }, 180_000);

  it('refuses bad reports naming the field, and a method that is not the customer’s', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    expect(await report({ ...failure(customerId, cards[0] as string, 'generic_decline'), amount: -5 })).toMatchObject({
      status: 400,
      json: { field: 'amount' },
    });
    expect(
      await report({ ...failure(customerId, cards[0] as string, 'generic_decline'), currency: 'eur' }),
    ).toMatchObject({ status: 400, json: { field: 'currency' } });
    expect(
      await report({ ...failure(customerId, cards[0] as string, 'generic_decline'), advice_code: '3' }),
    ).toMatchObject({ status: 400, json: { field: 'advice_code' } });
    expect((await report(failure(customerId, randomUUID(), 'generic_decline'))).status).toBe(404);
    expect(
      (
        await h.app.request(`/api/v1/payment-recoveries/${paymentId()}`, {
          headers: { authorization: `Bearer ${await h.token('ops')}` },
        })
      ).status,
    ).toBe(404);
  });
});

/** The owner's word, as Synapse sends it (`payments:report` unless another token is given). */
async function noLongerOwed(payment: string, body: unknown, options: { token?: string; wait?: boolean } = {}) {
  const res = await send<OwnerStopAnswer & Record<string, unknown>>(
    h.app,
    'POST',
    `/api/v1/payment-recoveries/${payment}/no-longer-owed${options.wait === false ? '' : '?wait=true'}`,
    { token: options.token ?? (await h.token('payments:report')), body },
  );
  return { status: res.status, json: res.json };
}

/** A recovery whose every method declines, between dunning rounds. */
async function dunningRecovery() {
  const { customerId, cards } = await customerWithCards(h.graph, [
    oneCard('tok_decline_generic_decline'),
    oneCard('tok_decline_do_not_honor'),
  ]);
  const f = failure(customerId, cards[0] as string, 'generic_decline');
  expect((await report(f)).status).toBe(202);
  await until(async () => (await status(f.payment_id)).state === 'dunning');
  return { customerId, cards, f };
}

describe('the payment’s owner stops a recovery', () => {
  it('stops a dunning recovery: nothing charged, the ledger says stopped, the word again the same', async () => {
    const { customerId, f } = await dunningRecovery();
    const stopped = await noLongerOwed(f.payment_id, { reason: 'settled_elsewhere', note: 'paid by bank transfer' });
    expect(stopped).toMatchObject({
      status: 200,
      json: {
        payment_id: f.payment_id,
        outcome: 'stopped',
        charge: null,
        state: 'stopped',
        status_url: `/api/v1/payment-recoveries/${f.payment_id}`,
      },
    });
    const result = (await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result()) as RecoveryStatus;
    expect(result.state).toBe('stopped');
    expect((await simulatorCharges(gatewayUrl, customerId)).filter((c) => c.status === 'succeeded')).toEqual([]);
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery.state).toBe('stopped');
    // Resent once the recovery ended: answered from the ledger, the same outcome.
    expect(await noLongerOwed(f.payment_id, { reason: 'settled_elsewhere' })).toMatchObject({
      status: 200,
      json: { outcome: 'stopped', charge: null, state: 'stopped' },
    });
  });

  it('answers a recovery that recovered first with the charge Persona made, never hiding it', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_insufficient_funds'),
      `tok_visa_${randomUUID()}`,
    ]);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    expect((await report(f)).status).toBe(202);
    await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result();
    const [charge] = (await simulatorCharges(gatewayUrl, customerId)).filter((c) => c.status === 'succeeded');
    expect(await noLongerOwed(f.payment_id, { reason: 'settled_elsewhere' })).toEqual({
      status: 200,
      json: {
        payment_id: f.payment_id,
        outcome: 'recovered',
        charge: { payment_method_id: cards[1], charge_id: charge?.id, amount: 2599, currency: 'EUR' },
        unknown_charge: null,
        state: 'recovered',
        stop_reason: null,
        status_url: `/api/v1/payment-recoveries/${f.payment_id}`,
      },
    });
  });

  it('takes the word during a charge whose request has not gone: nothing is sent, it stops', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_insufficient_funds'),
      `tok_visa_${randomUUID()}`,
    ]);
    const gate = hold(customerId);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    expect((await report(f)).status).toBe(202);
    await until(async () => gate.started);
    // Before the charge's request: taken, written to the ledger, answered as stopping to a caller who does not wait.
    const taken = await noLongerOwed(f.payment_id, { reason: 'not_owed' }, { wait: false });
    expect(taken).toMatchObject({ status: 202, json: { outcome: 'stopping', charge: null, state: null } });
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery).toMatchObject({
      state: 'recovering',
      stop_requested_by: 'owner',
      stop_request: "the payment's owner says it is no longer owed (not_owed)",
    });
    gate.open();
    // The same word again waits for the stop's answer: the held charge found the stop and sent nothing.
    expect(await noLongerOwed(f.payment_id, { reason: 'not_owed' })).toMatchObject({
      status: 200,
      json: { outcome: 'stopped', charge: null, state: 'stopped' },
    });
    await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result();
    expect(await simulatorCharges(gatewayUrl, customerId)).toEqual([]);
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery.state).toBe('stopped');
  });

  it('refuses bad words naming the field, and writes nothing', async () => {
    const { f } = await dunningRecovery();
    for (const [body, field] of [
      [{ reason: 'paid' }, 'reason'],
      [{}, 'reason'],
      [{ reason: 'not_owed', note: 'x'.repeat(501) }, 'note'],
      [{ reason: 'not_owed', note: 'card 4242 4242 4242 4242' }, 'note'],
      [{ reason: 'not_owed', amount: 5 }, 'amount'],
    ] as const) {
      const refused = await noLongerOwed(f.payment_id, body);
      expect([refused.status, refused.json.field], JSON.stringify(body)).toEqual([400, field]);
    }
    expect((await noLongerOwed('not a payment id', { reason: 'not_owed' })).status).toBe(400);
    expect((await status(f.payment_id)).state).toBe('dunning');
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery.state).toBe('recovering');
    await h.client.workflow
      .getHandle(recoveryWorkflowId(f.payment_id))
      .executeUpdate('cancel', { args: [{ reason: 'test over' }] });
  });

  it('refuses all but the owner (payments:report): the customer’s own token, a reader, another agent', async () => {
    const { customerId, f } = await dunningRecovery();
    // (ops, who may do anything an agent may, reach it as they reach every route)
    for (const token of [
      await h.token('self', customerId),
      await h.token('customers:read'),
      await h.token('context:read'),
      await h.token('fraud:report'),
    ])
      expect((await noLongerOwed(f.payment_id, { reason: 'not_owed' }, { token })).status).toBe(403);
    const anonymous = await h.app.request(`/api/v1/payment-recoveries/${f.payment_id}/no-longer-owed`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'not_owed' }),
    });
    expect(anonymous.status).toBe(401);
    expect((await status(f.payment_id)).state).toBe('dunning');
    await h.client.workflow
      .getHandle(recoveryWorkflowId(f.payment_id))
      .executeUpdate('cancel', { args: [{ reason: 'test over' }] });
  });

  it('takes the stop only from the service that reported the payment, or ops: another one is refused', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [oneCard('tok_decline_generic_decline')]);
    const f = failure(customerId, cards[0] as string, 'generic_decline');
    const reporter = await h.token('payments:report', `synapse-${randomUUID()}`);
    const reported = await send(h.app, 'POST', '/api/v1/payment-failures', { token: reporter, body: f });
    expect(reported.status).toBe(202);
    await until(async () => (await status(f.payment_id)).state === 'dunning');
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery.reported_by).toMatch(/^synapse-/);
    // Another holder of payments:report (another service, or one without a subject): 403, nothing written.
    for (const token of [await h.token('payments:report', 'another-service'), await h.token('payments:report')]) {
      const refused = await noLongerOwed(f.payment_id, { reason: 'not_owed' }, { token });
      expect(refused.status).toBe(403);
      expect(String(refused.json.detail)).toContain('reported by another service');
    }
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery.stop_requested_at).toBeNull();
    expect((await status(f.payment_id)).state).toBe('dunning');
    // The reporter's own word stops it.
    expect(await noLongerOwed(f.payment_id, { reason: 'not_owed' }, { token: reporter })).toMatchObject({
      status: 200,
      json: { outcome: 'stopped' },
    });
    // Ops may stop any: a second recovery, reported by the same service, stopped by ops.
    const other = await dunningRecovery();
    const ops = await h.token('ops', 'ops-9');
    expect(await noLongerOwed(other.f.payment_id, { reason: 'settled_elsewhere' }, { token: ops })).toMatchObject({
      status: 200,
      json: { outcome: 'stopped' },
    });
  });

  it('records the stop in the ledger for a payment reserved whose recovery never started: none starts', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    // The api died between the reservation and the start: the ledger has it, Temporal does not.
    await reserveRecovery(h.graph, f);
    expect(await noLongerOwed(f.payment_id, { reason: 'settled_elsewhere' })).toMatchObject({
      status: 200,
      json: { outcome: 'stopped', charge: null, state: 'stopped' },
    });
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery).toMatchObject({
      state: 'stopped',
      reason: "the payment's owner says it is no longer owed (settled_elsewhere)",
    });
    // The report sent again (it would have started the reserved recovery) starts nothing now.
    expect((await report(f)).status).toBe(202);
    await expect(h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).describe()).rejects.toThrow(
      /not found/i,
    );
    expect(await simulatorCharges(gatewayUrl, customerId)).toEqual([]);
  });

  it('answers 404 for a payment never reported', async () => {
    expect(await noLongerOwed(paymentId(), { reason: 'not_owed' })).toMatchObject({
      status: 404,
      json: { status: 404 },
    });
  });
});

describe('ops cancel a recovery', () => {
  it('takes it while a charge is being made: the ledger first, the held charge sends nothing, it stops', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_generic_decline'),
      `tok_visa_${randomUUID()}`,
    ]);
    const gate = hold(customerId);
    const f = failure(customerId, cards[0] as string, 'generic_decline');
    expect((await report(f)).status).toBe(202);
    await until(async () => gate.started);
    const cancelled = cancelRecovery(h.deps, f.payment_id, 'customer disputes it', 120_000);
    await until(async () => (await readRecoveryLedger(h.graph, f.payment_id))?.recovery.stop_requested_by === 'ops');
    gate.open();
    expect(await cancelled).toMatchObject({
      outcome: 'cancelled',
      status: { state: 'stopped', stop_reason: 'cancelled: customer disputes it' },
    });
    expect(await simulatorCharges(gatewayUrl, customerId)).toEqual([]);
  });

  it('refuses a recovery that has ended with 409 saying so, and an unknown payment with 404', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      oneCard('tok_decline_insufficient_funds'),
      `tok_visa_${randomUUID()}`,
    ]);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    expect((await report(f)).status).toBe(202);
    await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result();
    const ended = cancelRecovery(h.deps, f.payment_id, 'too late');
    await expect(ended).rejects.toBeInstanceOf(InvalidStateError);
    await expect(ended).rejects.toThrow(`payment recovery ${f.payment_id} has ended`);
    await expect(cancelRecovery(h.deps, paymentId(), 'nothing')).rejects.toBeInstanceOf(NotFoundError);
  });
});
