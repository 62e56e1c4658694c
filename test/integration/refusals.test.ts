/**
 * Durable processes when the world says no, end to end: the real api, a real worker, the real
 * Temporal and Neo4j and gateway simulator, with a notification webhook that refuses everything
 * (403 to every request, over HTTP) and Chimera unreachable (nothing listens at its address).
 * A recovery still recovers and charges once, a dunning recovery shows its whole state, an
 * account takeover still reaches review, two ops deciding the same review get one 200 and one
 * 409, a waited onboarding answers with the customer while Chimera is being retried, and an erasure
 * during a charge either records the charge or never makes it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpChimeraClient } from '../../clients/chimera';
import { WebhookNotificationSink } from '../../clients/notifications';
import { linkDevice, listCustomerEvents } from '../../graph';
import { readRecoveryLedger } from '../../graph/chargeLedger';
import type { ErasureOutcome } from '../../temporal/erasure';
import { fraudOutcomeWorkflowId, type FraudOutcomeStatus } from '../../temporal/fraud';
import { cancelRecoveryUpdate, recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { startHarness, type Harness } from '../support/api';
import { send } from '../support/http';
import { freePort } from '../support/processes';
import { customerWithCards, paymentId, simulatorCharges } from '../support/recovery';
import { until } from '../support/wait';

let h: Harness;
let webhook: Server;
let refused = 0;
/** Charges of these customers wait here until the test opens the gate. */
const gates = new Map<string, { started: boolean; open: () => void; opened: Promise<void> }>();

beforeAll(async () => {
  webhook = createServer((req, res) => {
    req.resume();
    refused++;
    res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"refused"}');
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  const webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/notify`;
  const nobody = `http://127.0.0.1:${await freePort()}`;
  h = await startHarness({
    notifications: () => new WebhookNotificationSink(webhookUrl, 2000),
    chimera: () => new HttpChimeraClient(nobody, 500),
    wrapActivities: (real) => ({
      ...real,
      async chargePaymentMethod(a) {
        const gate = gates.get(a.customer_id);
        if (gate) {
          gate.started = true;
          await gate.opened;
        }
        return real.chargePaymentMethod(a);
      },
    }),
  });
});
afterAll(async () => {
  await h?.close();
  await new Promise((resolve) => webhook?.close(resolve));
});

/** Every call says its body is JSON, even one without a body. */
const call = (method: string, path: string, token: string, body?: unknown) =>
  send(h.app, method, path, { token, body, headers: { 'content-type': 'application/json' } });

const failure = (customerId: string, pm: string) => ({
  payment_id: paymentId(),
  customer_id: customerId,
  payment_method_id: pm,
  amount: 4200,
  currency: 'EUR',
  decline_code: 'insufficient_funds',
});

async function recoveryStatus(payment: string): Promise<RecoveryStatus> {
  return (await call('GET', `/api/v1/payment-recoveries/${payment}`, await h.token('payments:report')))
    .json as unknown as RecoveryStatus;
}

describe('when the notification webhook refuses everything and Chimera is unreachable', () => {
  it('a recovery still recovers: one charge, recorded, the refused message noted, the workflow Completed', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      'tok_decline_insufficient_funds_r1',
      `tok_visa_${randomUUID()}`,
    ]);
    const f = failure(customerId, cards[0] as string);
    const before = refused;
    expect((await call('POST', '/api/v1/payment-failures', await h.token('payments:report'), f)).status).toBe(202);
    const handle = h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id));
    const result = (await handle.result()) as RecoveryStatus;
    expect(result).toMatchObject({ state: 'recovered', recovered_with: cards[1], undelivered: ['recovered'] });
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    expect(refused).toBeGreaterThan(before);
    const charges = await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, customerId);
    expect(charges.filter((c) => c.status === 'succeeded')).toHaveLength(1);
    const events = await listCustomerEvents(h.graph, customerId, { limit: 100 });
    expect(events.filter((e) => e.type === 'PaymentRecovered')).toHaveLength(1);
    // The same report again changes nothing: the id still rejects it.
    expect((await call('POST', '/api/v1/payment-failures', await h.token('payments:report'), f)).status).toBe(202);
    expect(await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, customerId)).toHaveLength(charges.length);
  });

  it('a dunning recovery with a refused reminder says dunning with its next retry, and goes on', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      'tok_decline_insufficient_funds_d1',
      'tok_decline_insufficient_funds_d2',
    ]);
    const f = failure(customerId, cards[0] as string);
    expect((await call('POST', '/api/v1/payment-failures', await h.token('payments:report'), f)).status).toBe(202);
    // Every status read on the way sees a whole state: dunning always comes with its next retry.
    const seen: RecoveryStatus[] = [];
    await until(async () => {
      const s = await recoveryStatus(f.payment_id);
      seen.push(s);
      return s.undelivered.includes('reminder-1');
    });
    for (const s of seen.filter((x) => x.state === 'dunning')) expect(s.next_retry_at).not.toBeNull();
    const now = await recoveryStatus(f.payment_id);
    expect(now).toMatchObject({ state: 'dunning', attention: null });
    expect(Date.parse(now.next_retry_at ?? '')).toBeGreaterThan(Date.now());
    const handle = h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id));
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'test over' }] });
    expect(((await handle.result()) as RecoveryStatus).state).toBe('stopped');
  });

  it('an account takeover still reaches review; two ops deciding at once get one 200 and one 409', async () => {
    const { customerId } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const device = await linkDevice(h.graph, customerId, { fingerprint: `fp-${randomUUID()}` });
    const outcomeId = `ato-${randomUUID()}`;
    const reported = await call('POST', '/api/v1/fraud-outcomes', await h.token('fraud:report'), {
      outcome_id: outcomeId,
      customer_id: customerId,
      outcome: 'account_takeover',
      device_id: device.id,
    });
    expect(reported.status).toBe(202);
    // An ops with a subject: a resend is told apart from another caller's decision by it.
    const ops = await h.token('ops', 'ops-on-call');
    const statusOf = async () =>
      (await call('GET', `/api/v1/fraud-outcomes/${outcomeId}`, ops)).json as unknown as FraudOutcomeStatus;
    await until(async () => (await statusOf()).undelivered.includes('alert'));
    expect(await statusOf()).toMatchObject({ state: 'awaiting_review', decision: null });

    const decisions = await Promise.all(
      (['reinstate', 'confirm'] as const).map((decision) =>
        call('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, ops, { decision }),
      ),
    );
    expect(decisions.map((d) => d.status).sort()).toEqual([200, 409]);
    const won = decisions.find((d) => d.status === 200)?.json as unknown as FraudOutcomeStatus;
    const lost = decisions.find((d) => d.status === 409)?.json as { detail: string };
    expect(lost.detail).toContain(`decided already: ${won.decision}`);
    expect(won.state).toBe(won.decision === 'reinstate' ? 'reinstated' : 'confirmed');
    const handle = h.client.workflow.getHandle(fraudOutcomeWorkflowId(outcomeId));
    expect(((await handle.result()) as FraudOutcomeStatus).decision).toBe(won.decision);
    // Decided: another decision, or the same one by another ops, is refused naming the state; the
    // same decision by the same ops is a resend (its answer was lost) and gets the first answer.
    const review = (token: string, decision: string | null) =>
      call('POST', `/api/v1/fraud-outcomes/${outcomeId}/review`, token, { decision });
    const other = won.decision === 'reinstate' ? 'confirm' : 'reinstate';
    const late = await review(ops, other);
    expect(late.status).toBe(409);
    expect((late.json as { detail: string }).detail).toContain(`fraud outcome ${outcomeId} has ended`);
    expect((await review(await h.token('ops', `other-ops-${randomUUID()}`), won.decision)).status).toBe(409);
    const resent = await review(ops, won.decision);
    expect(resent.status).toBe(200);
    expect(resent.json).toMatchObject({ decision: won.decision, state: won.state });
  });

  it('a waited onboarding answers 200 with the customer while Chimera (unreachable) is being retried', async () => {
    const res = await h.app.request('/api/v1/onboarding?wait=true', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await h.token('onboarding:write')}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        customer: { segment: 'New', ltv: '0' },
        digital_identifiers: [{ type: 'email', value: `chimera-down-${randomUUID()}@example.com`, is_verified: true }],
      }),
    });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { customer_id: string; outcome: string; workflow_id: string };
    expect(answer.outcome).toBe('created');
    // Chimera's request fails as a retryable failure and is retried in the background of the same
    // workflow (its retries running out, onboarding ends without a profile: test/workflows/onboarding.test.ts).
    const handle = h.client.workflow.getHandle(answer.workflow_id);
    await until(async () => {
      const { raw } = await handle.describe();
      const profile = raw.pendingActivities?.find((a) => a.activityType?.name === 'requestBehavioralProfile');
      return (profile?.attempt ?? 0) >= 2 && Boolean(profile?.lastFailure?.message);
    });
    await handle.terminate('the test has seen Chimera retried; its retries running out is a workflow test');
  });

  it('an erasure during a charge: the stop goes to the ledger first, nothing is charged, it is erased', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      'tok_decline_insufficient_funds_e1',
      `tok_visa_${randomUUID()}`,
    ]);
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const gate = { started: false, open, opened };
    gates.set(customerId, gate);
    const f = failure(customerId, cards[0] as string);
    expect((await call('POST', '/api/v1/payment-failures', await h.token('payments:report'), f)).status).toBe(202);
    await until(async () => gate.started);
    // Visibility must list the recovery for the erasure to stop it.
    await until(async () => {
      for await (const wf of h.client.workflow.list({
        query: `PersonaCustomerId = '${customerId}' AND ExecutionStatus = 'Running'`,
      }))
        if (wf.workflowId === recoveryWorkflowId(f.payment_id)) return true;
      return false;
    });

    expect((await call('DELETE', `/api/v1/customers/${customerId}`, await h.token('ops'))).status).toBe(202);
    const recovery = h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id));
    const erasure = h.client.workflow.getHandle(`erasure-${customerId}`);
    // The recovery takes the stop while its charge is held (the request not sent yet): the ledger has it first.
    await until(
      async () => (await readRecoveryLedger(h.graph, f.payment_id))?.recovery.stop_requested_by === 'erasure',
    );
    gate.open();

    const stopped = (await recovery.result()) as RecoveryStatus;
    const erased = (await erasure.result()) as ErasureOutcome;
    expect(erased).toMatchObject({ erased: true, cancelled: [recoveryWorkflowId(f.payment_id)] });
    expect(stopped).toMatchObject({ state: 'stopped', recovered_with: null });
    expect(stopped.stop_reason).toMatch(/being erased/);
    // The held charge found the stop in the ledger and sent nothing.
    const charges = await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, customerId);
    expect(charges).toEqual([]);
    const events = await listCustomerEvents(h.graph, customerId, { limit: 100 });
    expect(events.map((e) => e.type)).not.toContain('PaymentRecovered');
    expect(events[0]?.type).toBe('CustomerErased');
  });
});
