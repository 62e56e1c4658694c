import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPaymentMethodsByCustomer, listCustomerEvents } from '../../graph';
import type { RecoveryStatus } from '../../temporal/recovery';
import { recoveryWorkflowId } from '../../temporal/recovery';
import { personaCustomerId } from '../../temporal/searchAttributes';
import { startHarness, type Harness } from '../support/api';
import { fromMinorUnits, toMinorUnits } from '../../payments/money';
import { until } from '../support/wait';
import { customerWithCards, paymentId, simulatorCharges } from '../support/recovery';

let h: Harness;
let gatewayUrl: string;
beforeAll(async () => {
  h = await startHarness();
  gatewayUrl = h.graph.config.PERSONA_GATEWAY_URL;
});
afterAll(() => h?.close());

async function report(body: Record<string, unknown>) {
  const res = await h.app.request('/api/v1/payment-failures', {
    method: 'POST',
    headers: { authorization: `Bearer ${await h.token('payments:report')}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function status(payment: string): Promise<RecoveryStatus> {
  const res = await h.app.request(`/api/v1/payment-recoveries/${payment}`, {
    headers: { authorization: `Bearer ${await h.token('payments:report')}` },
  });
  return (await res.json()) as RecoveryStatus;
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
  const bearer = scope ? await h.token(scope) : await h.token('self', customerId);
  const res = await h.app.request(`/api/v1/customers/${customerId}/payment-methods${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'card', token, brand: 'visa', last_four: '4242', expiry_month: 8, expiry_year: 2033 }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
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
      'tok_decline_insufficient_funds_1',
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
      'tok_decline_insufficient_funds_4',
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
      'tok_decline_generic_decline_1',
      'tok_decline_do_not_honor_2',
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
    const { customerId, cards } = await customerWithCards(h.graph, ['tok_decline_generic_decline_5']);
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
    const { customerId, cards } = await customerWithCards(h.graph, ['tok_decline_generic_decline_6']);
    const f = failure(customerId, cards[0] as string, 'generic_decline');
    await report(f);
    await until(async () => (await status(f.payment_id)).state === 'dunning');
    await untilListed([f.payment_id]);
    const pending = await addCard(customerId, 'tok_decline_do_not_honor_7');
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
    const declined = await addCard(customerId, 'tok_decline_insufficient_funds_8', '?wait=true');
    expect(declined.status).toBe(201);
    expect((declined.json as { recoveries: unknown[] }).recoveries).toEqual([
      expect.objectContaining({ outcome: 'declined', decline_code: null }),
    ]);
    // An agent adding a card for the customer reads the reason.
    await until(async () => (await status(f.payment_id)).state === 'dunning');
    const byAgent = await addCard(customerId, 'tok_decline_insufficient_funds_9', '?wait=true', 'customers:write');
    expect((byAgent.json as { recoveries: unknown[] }).recoveries).toEqual([
      expect.objectContaining({ outcome: 'declined', decline_code: 'insufficient_funds' }),
    ]);
    await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).cancel();
  });

  it('ignores duplicate reports: one recovery, one charge', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      'tok_decline_insufficient_funds_3',
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
      'tok_decline_insufficient_funds_4',
      `tok_visa_${randomUUID()}`,
    ]);
    const f = failure(customerId, cards[0] as string, 'insufficient_funds');
    expect((await report(f)).status).toBe(202);
    const handle = h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id));
    await handle.result();
    // Temporal forgets the closed run, as its namespace retention does after 30 days.
    await h.client.workflowService.deleteWorkflowExecution({
      namespace: h.graph.config.TEMPORAL_NAMESPACE,
      workflowExecution: { workflowId: recoveryWorkflowId(f.payment_id) },
    });
    // The dev server deletes in the background (seconds to tens of seconds on a busy machine).
    await until(
      async () =>
        await handle.describe().then(
          () => false,
          () => true,
        ),
      120_000,
    );
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
