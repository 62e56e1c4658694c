import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDepsFromConfig, type ApiDeps } from '../../api/deps';
import { reportPaymentFailure } from '../../api/services/recovery';
import { loadSettings } from '../../config/env';
import { createLogger } from '../../runtime/logger';
import { RequestContext } from '../../runtime/requestContext';
import { connectTemporal } from '../../temporal/connection';
import { paymentMethodAddedSignal, recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { addPaymentMethod } from '../../graph';
import { readAttempt } from '../../graph/chargeAttempts';
import { readRecoveryLedger } from '../../graph/chargeLedger';
import { removePaymentMethod } from '../../graph/paymentMethods';
import { openTestGraph, type TestGraph, testPayloadCodec } from '../support/graph';
import { noticeDeadWorkerIn, startWorkerProcess, type RunningProcess } from '../support/processes';
import { customerWithCards, paymentId, simulatorCharges } from '../support/recovery';
import { until } from '../support/wait';

/**
 * The real worker process is SIGKILLed while a charge is in flight at the gateway; a new worker
 * process takes over. The gateway must have exactly one successful charge for the payment — also
 * when the answer is lost and the wallet changes while no worker runs (an unknown outcome).
 */
let graph: TestGraph;
let connection: Connection;
let client: Client;
let deps: ApiDeps;
const taskQueue = `crash-${randomUUID()}`;
const workers: RunningProcess[] = [];

async function startWorker(env: Record<string, string> = {}, source = false): Promise<RunningProcess> {
  const proc = await startWorkerProcess({ TEMPORAL_TASK_QUEUE: taskQueue, ...env }, { source });
  workers.push(proc);
  return proc;
}

async function simulatorFaults(): Promise<{ in_flight: number }> {
  return (await (await fetch(`${graph.config.PERSONA_GATEWAY_URL}/_sim/faults`)).json()) as { in_flight: number };
}

async function faults(body: Record<string, number>): Promise<void> {
  // (latency_ms, fail_next, fail_after_commit_next, lose_answer_next: simulators/gateway/app.ts)
  await fetch(`${graph.config.PERSONA_GATEWAY_URL}/_sim/faults`, { method: 'PUT', body: JSON.stringify(body) });
}

beforeAll(async () => {
  graph = openTestGraph();
  const requests = new RequestContext();
  ({ connection, client } = await connectTemporal(loadSettings(), {
    requestId: () => requests.requestId,
    payloadCodec: testPayloadCodec(graph),
  }));
  // Starts on the queues the worker processes poll, as an api of their configuration would.
  deps = apiDepsFromConfig(
    { ...graph.config, TEMPORAL_TASK_QUEUE: taskQueue },
    { logger: createLogger('crash-test', 'silent'), readiness: [], graph, client, requests },
  );
});
afterAll(async () => {
  await faults({ latency_ms: 0 });
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await connection?.close();
  await graph?.close();
});

describe('a worker killed while a charge is in flight', () => {
  it('charges exactly once, and the recovery completes on the next worker', async () => {
    const { customerId, cards } = await customerWithCards(graph, [
      'tok_decline_insufficient_funds_9',
      `tok_visa_${randomUUID()}`,
    ]);
    const payment = paymentId();
    // This worker bundles the workflow source as it starts (as `npm run dev`'s does).
    const first = await startWorker({}, true);

    // The gateway takes 4 s to answer: long enough to kill the worker mid-charge.
    await faults({ latency_ms: 4000 });
    await reportPaymentFailure(deps, {
      payment_id: payment,
      customer_id: customerId,
      payment_method_id: cards[0] as string,
      amount: 4200,
      currency: 'USD',
      decline_code: 'insufficient_funds',
    });
    const handle = client.workflow.getHandle(recoveryWorkflowId(payment));
    // The charge request is at the gateway (which holds it for 4 s): kill the worker now.
    await until(async () => (await simulatorFaults()).in_flight > 0, 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    await noticeDeadWorkerIn(client, recoveryWorkflowId(payment), 'chargePaymentMethod', 3);

    // The gateway finishes the charge the dead worker asked for.
    const succeeded = async () =>
      (await simulatorCharges(graph.config.PERSONA_GATEWAY_URL, customerId)).filter((c) => c.status === 'succeeded');
    await until(async () => (await simulatorFaults()).in_flight === 0, 30_000);
    await faults({ latency_ms: 0 });
    expect(await succeeded()).toHaveLength(1);

    // The next worker runs the workflow code from the prebuilt bundle (as the image does; the one
    // the integration setup built): it takes over the history the first worker began from the
    // source, and finishes it.
    const second = await startWorker();
    const result = (await handle.result()) as RecoveryStatus;
    expect(result).toMatchObject({ state: 'recovered', recovered_with: cards[1] });
    const charges = await simulatorCharges(graph.config.PERSONA_GATEWAY_URL, customerId);
    expect(charges).toMatchObject([{ idempotency_key: `${payment}:${cards[1]}`, status: 'succeeded', amount: 4200 }]);
    second.child.kill('SIGTERM');
    await second.exited;
  });

  it(
    'an answer lost with the worker, the card removed and another added meanwhile: one charge, recorded on ' +
      'the removed card, never the new one',
    async () => {
      const { customerId, cards } = await customerWithCards(graph, [
        'tok_decline_insufficient_funds_9',
        `tok_visa_${randomUUID()}`,
      ]);
      const payment = paymentId();
      const first = await startWorker();
      // The gateway holds the charge 8 s, then makes it, and the answer never comes back.
      await faults({ latency_ms: 8000, lose_answer_next: 1 });
      await reportPaymentFailure(deps, {
        payment_id: payment,
        customer_id: customerId,
        payment_method_id: cards[0] as string,
        amount: 4200,
        currency: 'USD',
        decline_code: 'insufficient_funds',
      });
      const handle = client.workflow.getHandle(recoveryWorkflowId(payment));
      await until(async () => (await simulatorFaults()).in_flight > 0, 30_000);
      first.child.kill('SIGKILL');
      await first.exited;
      await noticeDeadWorkerIn(client, recoveryWorkflowId(payment), 'chargePaymentMethod', 3);
      // While no worker runs: the customer removes the card that was being charged, and adds another.
      await removePaymentMethod(graph, customerId, cards[1] as string);
      const added = await addPaymentMethod(graph, customerId, {
        type: 'card',
        token: `tok_visa_${randomUUID()}`,
        brand: 'visa',
        last_four: '4343',
        expiry_month: 12,
        expiry_year: 2035,
      });
      await handle.signal(paymentMethodAddedSignal, { payment_method_id: added.id });
      // The ledger kept the charge, as first sent, for the removed card.
      expect(await readAttempt(graph, `${payment}:${cards[1]}`)).toMatchObject({
        state: 'sent',
        payment_method_id: cards[1],
        customer_id: customerId,
      });
      // The next worker may meet the gateway still holding the charge (409 "in flight"), then its answer.
      const second = await startWorker();
      const result = (await handle.result()) as RecoveryStatus;
      await faults({ latency_ms: 0 });
      expect(result).toMatchObject({ state: 'recovered', recovered_with: cards[1] });
      const charges = await simulatorCharges(graph.config.PERSONA_GATEWAY_URL, customerId);
      expect(charges.filter((c) => c.status === 'succeeded')).toMatchObject([
        { idempotency_key: `${payment}:${cards[1]}`, amount: 4200 },
      ]);
      expect(charges.map((c) => c.idempotency_key)).not.toContain(`${payment}:${added.id}`);
      const ledger = await readRecoveryLedger(graph, payment);
      expect(ledger?.recovery).toMatchObject({ state: 'recovered', recovered_with: cards[1] });
      expect(ledger?.recovery.charge_id).toBe(charges.find((c) => c.status === 'succeeded')?.id);
      second.child.kill('SIGTERM');
      await second.exited;
    },
    120_000,
  );
});
