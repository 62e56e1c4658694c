/**
 * No message wedges a workflow: every signal and Update Persona's workflows handle, sent by hand
 * with the Temporal CLI and no input (a payload the codec never sees), is dropped or refused —
 * never a workflow task failed again and again — and the workflow goes on answering. The api and
 * a real worker on the real Temporal and Neo4j; each workflow in a state where its handlers run.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../config/env';
import { stackPaths } from '../../stack/install';
import { erasureWorkflowId } from '../../temporal/erasure';
import { EVENT_RELAY_WORKFLOW_TYPE } from '../../temporal/eventRelay';
import { fraudOutcomeWorkflowId } from '../../temporal/fraud';
import { KAFKA_PUBLISHER_WORKFLOW_TYPE } from '../../temporal/kafkaPublisher';
import { SIGNAL_SHAPES, UPDATE_SHAPES } from '../../temporal/messageShapes';
import { recoveryWorkflowId } from '../../temporal/recovery';
import { startHarness, type Harness } from '../support/api';
import { customerWithTrustedDevice, seedCustomer } from '../support/builders';
import { send } from '../support/http';
import { cardIdentity, customerWithCards, paymentId } from '../support/recovery';
import { until } from '../support/wait';

const EventType = proto.temporal.api.enums.v1.EventType;
const settings = loadSettings();
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const call = async (method: string, path: string, scope: string, body?: unknown, headers?: Record<string, string>) =>
  send(h.app, method, path, { token: await h.token(scope), body, ...(headers ? { headers } : {}) });

/** The Temporal CLI, as ops run it: no codec, so no payload it sends is sealed; none here at all. */
async function cli(...args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      stackPaths(settings.PERSONA_STACK_DIR).temporalBin,
      [...args, '--address', settings.TEMPORAL_ADDRESS, '--namespace', h.client.options.namespace],
      { timeout: 60_000 },
    );
    return { ok: true, out: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}${e.message}` };
  }
}

async function history(workflowId: string) {
  const res = await h.client.connection.workflowService.getWorkflowExecutionHistory({
    namespace: h.client.options.namespace,
    execution: { workflowId },
  });
  return res.history?.events ?? [];
}

/** Until every signal in the history has been taken by a workflow task that completed or failed. */
async function untilSignalsTaken(workflowId: string): Promise<void> {
  await until(async () => {
    const events = await history(workflowId);
    const lastSignal = events.findLastIndex((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED);
    return events
      .slice(lastSignal + 1)
      .some(
        (e) =>
          e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED ||
          e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
      );
  }, 60_000);
}

/** Until the workflow's query answers what `ready` wants; on a timeout, says what it answered last. */
async function untilAnswers<T>(workflowId: string, query: string, ready: (status: T) => boolean): Promise<void> {
  let last: T | undefined;
  try {
    await until(async () => ready((last = await h.client.workflow.getHandle(workflowId).query<T>(query))));
  } catch (err) {
    throw new Error(`${workflowId} never got there; ${query} answered ${JSON.stringify(last)}`, { cause: err });
  }
}

/** Which running workflow handles each message, and the query it answers. */
interface Target {
  workflowId: string;
  query: string;
  signals: string[];
  updates: string[];
}

/** A recovery in dunning: a card declined, the next round days away. */
async function dunningRecovery(): Promise<Target> {
  const { customerId, cards } = await customerWithCards(h.graph, [
    `tok_decline_generic_decline_card-${cardIdentity()}`,
  ]);
  const payment = paymentId();
  const reported = await call('POST', '/api/v1/payment-failures', 'payments:report', {
    payment_id: payment,
    customer_id: customerId,
    payment_method_id: cards[0],
    amount: 2599,
    currency: 'EUR',
    decline_code: 'generic_decline',
  });
  expect(reported.status).toBe(202);
  const workflowId = recoveryWorkflowId(payment);
  await untilAnswers<{ state: string }>(workflowId, 'recoveryStatus', (status) => status.state === 'dunning');
  return {
    workflowId,
    query: 'recoveryStatus',
    signals: [
      'paymentFailed',
      'paymentMethodAdded',
      'paymentMethodBlocked',
      'customerMerged',
      'graphRestored',
      'retryAttention',
    ],
    updates: ['cancel', 'paymentNoLongerOwed', 'resolveAttention', 'offerPaymentMethod'],
  };
}

/** A confirmed fraud: the customer suspended, the outcome awaiting ops' review. */
async function fraudUnderReview(): Promise<Target & { customerId: string }> {
  const c = await customerWithTrustedDevice(h.graph);
  const outcomeId = `cf-${randomUUID()}`;
  const reported = await call('POST', '/api/v1/fraud-outcomes', 'fraud:report', {
    outcome_id: outcomeId,
    customer_id: c.customerId,
    outcome: 'confirmed_fraud',
    payment_method_id: c.cards[0],
    device_id: c.deviceId,
  });
  expect(reported.status).toBe(202);
  const workflowId = fraudOutcomeWorkflowId(outcomeId);
  await untilAnswers<{ state: string }>(
    workflowId,
    'fraudOutcomeStatus',
    (status) => status.state === 'awaiting_review',
  );
  return {
    customerId: c.customerId,
    workflowId,
    query: 'fraudOutcomeStatus',
    signals: ['reviewResolved', 'graphRestored', 'customerMerged'],
    updates: ['resolveReview'],
  };
}

/** A merge a customer proposed: both records asked for consent. */
async function mergeAwaitingConsent(): Promise<Target> {
  const [a, b] = await Promise.all([
    seedCustomer(h.graph, { emailTag: 'user' }),
    seedCustomer(h.graph, { emailTag: 'user' }),
  ]);
  const proposed = await send(h.app, 'POST', '/api/v1/identity-merges', {
    token: await h.token('self', b.customerId),
    body: { survivor_id: a.customerId, merged_id: b.customerId, consent: false },
  });
  expect(proposed.status).toBe(202);
  const workflowId = String(proposed.json.merge_id);
  await untilAnswers<{ state: string }>(
    workflowId,
    'identityMergeStatus',
    (status) => status.state === 'awaiting_consent',
  );
  return {
    workflowId,
    query: 'identityMergeStatus',
    signals: [],
    updates: ['confirmMerge', 'declineMerge', 'undoMerge'],
  };
}

/** An erasure of the suspended customer: it waits for the fraud review. */
async function erasureWaiting(customerId: string): Promise<Target> {
  const erased = await call('DELETE', `/api/v1/customers/${customerId}`, 'ops', undefined, {
    'persona-reason': 'the customer asked',
  });
  expect(erased.status).toBe(202);
  const workflowId = erasureWorkflowId(customerId);
  await untilAnswers<{ state: string }>(
    workflowId,
    'erasureStatus',
    (status) => status.state === 'waiting_for_fraud_review',
  );
  return { workflowId, query: 'erasureStatus', signals: ['erasureRequested'], updates: [] };
}

/** The event relay and the Kafka publisher, on this test's queue: no subscriber, no Kafka, so they wait and retry. */
async function feedWorkflows(): Promise<Target[]> {
  const relayId = `relay-guards-${randomUUID()}`;
  await h.client.workflow.start(EVENT_RELAY_WORKFLOW_TYPE, {
    workflowId: relayId,
    taskQueue: h.taskQueue,
    args: [
      {
        lag_ms: 0,
        page_size: 10,
        poll_interval: '1 second',
        pages_per_run: 100,
        checkpoint_id: relayId,
      },
    ],
  });
  const publisherId = `publisher-guards-${randomUUID()}`;
  await h.client.workflow.start(KAFKA_PUBLISHER_WORKFLOW_TYPE, {
    workflowId: publisherId,
    taskQueue: h.taskQueue,
    args: [
      {
        topic: `guards-${randomUUID()}`,
        page_size: 10,
        budget_ms: 1000,
        poll_interval: '1 second',
        batches_per_run: 10,
      },
    ],
  });
  return [
    { workflowId: relayId, query: 'eventRelayStatus', signals: [], updates: ['retryParkedEvents', 'reconfigureRelay'] },
    { workflowId: publisherId, query: 'kafkaPublisherStatus', signals: [], updates: ['reconfigurePublisher'] },
  ];
}

describe('messages sent with nothing', () => {
  it('are dropped or refused by every workflow, which goes on answering: no workflow task fails', async () => {
    const fraud = await fraudUnderReview();
    const targets = [
      await dunningRecovery(),
      fraud,
      await mergeAwaitingConsent(),
      await erasureWaiting(fraud.customerId),
      ...(await feedWorkflows()),
    ];
    // Every message that takes a payload is sent to a workflow that handles it.
    const sent = (kind: 'signals' | 'updates') => new Set(targets.flatMap((t) => t[kind]));
    for (const [name, shape] of Object.entries(SIGNAL_SHAPES))
      if (shape !== 'none') expect(sent('signals')).toContain(name);
    for (const [name, shape] of Object.entries(UPDATE_SHAPES))
      if (shape !== 'none') expect(sent('updates')).toContain(name);

    for (const t of targets) {
      for (const name of t.signals) {
        const signalled = await cli('workflow', 'signal', '--workflow-id', t.workflowId, '--name', name);
        expect(signalled, `${name} to ${t.workflowId}`).toMatchObject({ ok: true });
        await untilSignalsTaken(t.workflowId);
      }
      for (const name of t.updates) {
        const updated = await cli('workflow', 'update', 'execute', '--workflow-id', t.workflowId, '--name', name);
        // Refused before it is accepted: the CLI says why, and nothing reaches the history.
        expect(updated.ok, `${name} to ${t.workflowId}: ${updated.out}`).toBe(false);
        expect(updated.out, name).toContain('the payload is missing');
      }
      const events = await history(t.workflowId);
      const failedTasks = events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
      expect(
        failedTasks.map((e) => e.workflowTaskFailedEventAttributes?.failure?.message),
        t.workflowId,
      ).toEqual([]);
      expect(
        events.some((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
        t.workflowId,
      ).toBe(false);
      // Still answering, with the CLI too (a query takes no payload).
      const queried = await cli('workflow', 'query', '--workflow-id', t.workflowId, '--type', t.query);
      expect(queried, `${t.query} of ${t.workflowId}`).toMatchObject({ ok: true });
    }
    // Each is still where it was: the recovery in dunning, the review awaited, consent awaited.
    const [recovery, review, merge] = targets;
    expect(
      await h.client.workflow.getHandle(recovery!.workflowId).query<{ state: string }>('recoveryStatus'),
    ).toMatchObject({
      state: 'dunning',
    });
    expect(
      await h.client.workflow.getHandle(review!.workflowId).query<{ state: string }>('fraudOutcomeStatus'),
    ).toMatchObject({
      state: 'awaiting_review',
    });
    expect(
      await h.client.workflow.getHandle(merge!.workflowId).query<{ state: string }>('identityMergeStatus'),
    ).toMatchObject({ state: 'awaiting_consent' });
    for (const t of targets)
      await h.client.workflow
        .getHandle(t.workflowId)
        .terminate('test over')
        .catch(() => undefined);
  });
});
