/**
 * History keys off the hot path, and the customers' open processes (graph/historyKeys.ts,
 * graph/openProcesses.ts): the api and a real worker (whose codec knows only what it decodes),
 * the real Temporal and Neo4j.
 */
import { randomUUID } from 'node:crypto';
import type { Driver } from 'neo4j-driver';
import type proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFraudActivities } from '../../activities/fraud';
import type { Graph } from '../../graph/graph';
import {
  graphHistoryKeys,
  processWorkflowCustomers,
  provisionHistoryKey,
  WorkflowCustomers,
} from '../../graph/historyKeys';
import { onboardingWorkflowId } from '../../temporal/workflowIds';
import { RequestContext } from '../../runtime/requestContext';
import { reserveRecovery } from '../../graph/chargeLedger';
import { registerOpenProcess } from '../../graph/openProcesses';
import { createErasureActivities } from '../../activities/erasure';
import { mergeCustomers } from '../../graph/identityMerge';
import type { ErasureOutcome } from '../../temporal/erasure';
import { payloadCodecFromConfig } from '../../temporal/payloadCodec';
import { payloadKeyId } from '../../temporal/payloadEnvelope';
import { cancelRecoveryUpdate, recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { startHarness, type Harness } from '../support/api';
import { onboardingBody, onboardThroughApi } from '../support/builders';
import { uniqueEmail } from '../support/graph';
import { paymentId } from '../support/recovery';
import { until } from '../support/wait';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

type RawPayload = proto.temporal.api.common.v1.IPayload;

async function onboard(): Promise<{ customerId: string; workflowId: string; email: string; cardId: string }> {
  const email = uniqueEmail();
  const res = await onboardThroughApi<{ customer_id: string; workflow_id: string }>(
    h.app,
    await h.token('onboarding:write'),
    onboardingBody({ digital_identifiers: [{ type: 'email', value: email, is_verified: true }] }),
  );
  expect([200, 201]).toContain(res.status);
  const body = res.json;
  await h.client.workflow.getHandle(body.workflow_id).result();
  const [card] = await h.graph.query<{ id: string }>(
    'MATCH (:Customer {id: $id})-[:HAS_PAYMENT_METHOD]->(p) RETURN p.id AS id',
    { id: body.customer_id },
  );
  return { customerId: body.customer_id, workflowId: body.workflow_id, email, cardId: card?.id ?? '' };
}

/** A failed payment reported through the api; waits until its recovery is dunning (it has run activities). */
async function reportFailure(customerId: string, cardId: string): Promise<string> {
  const payment = paymentId();
  const res = await h.app.request('/api/v1/payment-failures', {
    method: 'POST',
    headers: { authorization: `Bearer ${await h.token('payments:report')}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      payment_id: payment,
      customer_id: customerId,
      payment_method_id: cardId,
      amount: 999,
      currency: 'EUR',
      decline_code: 'insufficient_funds',
    }),
  });
  expect(res.status).toBe(202);
  const workflowId = recoveryWorkflowId(payment);
  await until(async () =>
    ['dunning', 'failed'].includes(
      (await h.client.workflow.getHandle(workflowId).query<RecoveryStatus>('recoveryStatus')).state,
    ),
  );
  return workflowId;
}

async function rawPayloads(workflowId: string): Promise<RawPayload[]> {
  const res = await h.client.connection.workflowService.getWorkflowExecutionHistory({
    namespace: h.client.options.namespace,
    execution: { workflowId },
  });
  return (res.history?.events ?? []).flatMap((e) => [
    ...(e.workflowExecutionStartedEventAttributes?.input?.payloads ?? []),
    ...(e.workflowExecutionSignaledEventAttributes?.input?.payloads ?? []),
    ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []),
    ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
  ]);
}

const asPayload = (p: RawPayload) => ({ metadata: p.metadata ?? {}, data: p.data ?? new Uint8Array() });
const text = (payloads: { data?: Uint8Array | null }[]) =>
  payloads.map((p) => Buffer.from(p.data ?? []).toString()).join('\n');

const openProcessesOf = async (customerId: string) =>
  (
    await h.graph.query<{ id: string }>(
      'MATCH (:Customer {id: $id})-[:HAS_OPEN_PROCESS]->(p:OpenProcess) RETURN p.id AS id ORDER BY id',
      { id: customerId },
    )
  ).map((r) => r.id);

/** The graph, with every session it opens counted by access mode. */
function countingSessions(g: Graph): { graph: Graph; modes: string[] } {
  const modes: string[] = [];
  const driver = new Proxy(g.driver, {
    get(target, prop, receiver) {
      if (prop !== 'session') return Reflect.get(target, prop, receiver) as unknown;
      return (config: Parameters<Driver['session']>[0]) => {
        modes.push(config?.defaultAccessMode ?? 'WRITE');
        return target.session(config);
      };
    },
  });
  return { graph: { ...g, driver }, modes };
}

describe('a history key made for two callers at once', () => {
  it('is made even when the caller that began making it was answered 503 meanwhile', async () => {
    // As the api's graph: a write commits only while its request still waits for it.
    const requests = new RequestContext();
    const store = graphHistoryKeys(
      { ...h.graph, limits: { mayCommit: () => !requests.abandoned } },
      h.graph.config.payloadKeys,
      { maxEntries: 0, ttlMs: 0, decodes: false },
    );
    const keyId = onboardingWorkflowId(`joined-${randomUUID()}`);
    // The first request begins the key and runs out of time; its retry (the same Idempotency-Key)
    // arrives while the key is being made and joins it.
    const first = requests.run({ requestId: 'first' }, () => {
      const asked = store.keyFor(keyId, { create: true });
      requests.abandon();
      return asked;
    });
    const retry = requests.run({ requestId: 'retry' }, () => store.keyFor(keyId, { create: true }));
    const [a, b] = await Promise.allSettled([first, retry]);
    expect(b).toMatchObject({ status: 'fulfilled', value: expect.any(Buffer) });
    expect(a).toEqual(b);
    expect(await store.keyFor(keyId, { create: false })).toEqual((b as PromiseFulfilledResult<Buffer>).value);
  });
});

describe('history keys per customer, and its open processes', () => {
  it('starts a customer’s workflows with no graph write nor key of their own; a fresh process reads them', async () => {
    const ada = await onboard();
    const first = await reportFailure(ada.customerId, ada.cardId);
    // The customer's first workflow made its key; the next starts only read (no session opened for writing).
    const counted = countingSessions(h.graph);
    await provisionHistoryKey(
      counted.graph,
      h.graph.config.payloadKeys,
      `fraud-outcome-${randomUUID()}`,
      ada.customerId,
      new WorkflowCustomers(),
    );
    expect(counted.modes).toEqual(['READ']);
    const second = await reportFailure(ada.customerId, ada.cardId);
    const keys = await h.graph.query<{ id: string }>(
      'MATCH (:Customer {id: $id})-[:HAS_HISTORY_KEY]->(k:HistoryKey) RETURN k.id AS id ORDER BY id',
      { id: ada.customerId },
    );
    expect(keys.map((k) => k.id).sort()).toEqual([`customer:${ada.customerId}`, ada.workflowId].sort());
    expect(
      await h.graph.query('MATCH (k:HistoryKey) WHERE k.id IN $ids RETURN k.id', { ids: [first, second] }),
    ).toEqual([]);
    // Every payload of both recoveries is under the customer's key.
    const payloads = [...(await rawPayloads(first)), ...(await rawPayloads(second))];
    expect(new Set(payloads.map((p) => payloadKeyId(asPayload(p))))).toEqual(
      new Set([`history:customer:${ada.customerId}`]),
    );

    // A fresh process (no cache, knows no workflow) reads them, then writes the recovery's next payload.
    const fresh = payloadCodecFromConfig(h.graph.config, h.graph, 'none', new WorkflowCustomers());
    expect(text(await fresh.decode((await rawPayloads(first)).map(asPayload)))).toContain('insufficient_funds');
    const context = { type: 'workflow' as const, namespace: 'default', workflowId: first };
    const [next] = await fresh.encode([{ metadata: {}, data: Buffer.from('"next"') }], context);
    expect(payloadKeyId(next!)).toBe(`history:customer:${ada.customerId}`);
    // One that decoded nothing finds the customer among the open processes (a read).
    const blank = payloadCodecFromConfig(h.graph.config, h.graph, 'none', new WorkflowCustomers());
    const [late] = await blank.encode([{ metadata: {}, data: Buffer.from('"late"') }], {
      ...context,
      workflowId: second,
    });
    expect(payloadKeyId(late!)).toBe(`history:customer:${ada.customerId}`);
  });

  it(
    'keeps the open processes: a recovery joins when it is reserved, leaves when it closes; ' +
      'a terminated one is dropped by the next listing',
    async () => {
      const ada = await onboard();
      expect(await openProcessesOf(ada.customerId)).toEqual([]);
      const cancelled = await reportFailure(ada.customerId, ada.cardId);
      const terminated = await reportFailure(ada.customerId, ada.cardId);
      expect(await openProcessesOf(ada.customerId)).toEqual([cancelled, terminated].sort());

      // Closed by its own code: the worker removes it.
      await h.client.workflow.getHandle(cancelled).executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'test' }] });
      await h.client.workflow.getHandle(cancelled).result();
      await until(async () => !(await openProcessesOf(ada.customerId)).includes(cancelled));

      // Terminated (as a worker that never ran its end): the entry stays until someone lists the set.
      await h.client.workflow.getHandle(terminated).terminate('test: no code of it runs again');
      expect(await openProcessesOf(ada.customerId)).toEqual([terminated]);
      const fraud = createFraudActivities({ graph: h.graph, temporal: h.client });
      expect(await fraud.listRunningRecoveries({ customer_id: ada.customerId })).toEqual([]);
      expect(await openProcessesOf(ada.customerId)).toEqual([]);
    },
  );

  it(
    'a recovery joins its customer’s open processes when reserved, before it starts, and holds the erasure; ' +
      'another customer’s report of its id is refused and leaves no binding behind',
    async () => {
      const ada = await onboard();
      const bob = await onboard();
      const payment = paymentId();
      const workflowId = recoveryWorkflowId(payment);
      const failure = {
        payment_id: payment,
        customer_id: ada.customerId,
        payment_method_id: ada.cardId,
        amount: 999,
        currency: 'EUR',
        decline_code: 'insufficient_funds',
      };
      // Reserved, never started (the api died in between): in the set at once, before any activity.
      await reserveRecovery(h.graph, failure, workflowId);
      expect(await openProcessesOf(ada.customerId)).toEqual([workflowId]);
      // An erasure now waits for it (its start may be on its way) rather than destroy the key under it.
      const erasure = createErasureActivities({ graph: h.graph, temporal: h.client });
      await expect(
        erasure.historyWorkflowsClosed({ customer_id: ada.customerId, except: '', cancel_reviews: false }),
      ).rejects.toThrow(new RegExp(`still open: ${workflowId}`));
      // Nobody can register it for another customer.
      await expect(registerOpenProcess(h.graph, workflowId, bob.customerId)).rejects.toThrow(/another customer/);

      // Another customer's report of the same payment id: refused by the open process (409), unbound.
      const token = await h.token('payments:report');
      const report = (customerId: string, cardId: string) =>
        h.app.request('/api/v1/payment-failures', {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ ...failure, customer_id: customerId, payment_method_id: cardId }),
        });
      expect((await report(bob.customerId, bob.cardId)).status).toBe(409);
      expect(processWorkflowCustomers.get(workflowId)).toBeUndefined();
      // Even when the set no longer names it (a stale entry dropped), the reservation refuses it and
      // this process forgets the binding its provision made: nothing of it goes under bob's key.
      await h.graph.query('MATCH (p:OpenProcess {id: $id}) DETACH DELETE p', { id: workflowId });
      expect((await report(bob.customerId, bob.cardId)).status).toBe(409);
      expect(processWorkflowCustomers.get(workflowId)).toBeUndefined();
      // Ada's own report starts it, under her key.
      expect((await report(ada.customerId, ada.cardId)).status).toBe(202);
      expect(processWorkflowCustomers.get(workflowId)).toBe(ada.customerId);
      await until(async () => (await rawPayloads(workflowId)).length > 0);
      expect(new Set((await rawPayloads(workflowId)).map((p) => payloadKeyId(asPayload(p))))).toEqual(
        new Set([`history:customer:${ada.customerId}`]),
      );
      await h.client.workflow.getHandle(workflowId).terminate('test: done');
    },
  );

  it('erases every payload of the customer: its recoveries’, its onboarding’s, a merged record’s', async () => {
    const ada = await onboard();
    const away = await onboard();
    const adaRecovery = await reportFailure(ada.customerId, ada.cardId);
    const awayRecovery = await reportFailure(away.customerId, away.cardId);
    await h.client.workflow.getHandle(awayRecovery).executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'test' }] });
    await mergeCustomers(h.graph, {
      merge_id: `test-${randomUUID()}`,
      survivor_id: ada.customerId,
      merged_id: away.customerId,
      decided_by: 'ops',
      requested_by: null,
      reason: 'test',
    });
    const grace = await onboard();
    const graceRecovery = await reportFailure(grace.customerId, grace.cardId);

    const erase = await h.app.request(`/api/v1/customers/${ada.customerId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await h.token('ops')}`, 'persona-reason': 'test' },
    });
    expect(erase.status).toBe(202);
    const outcome = (await h.client.workflow.getHandle(`erasure-${ada.customerId}`).result()) as ErasureOutcome;
    expect(outcome).toMatchObject({ erased: true });
    expect((await h.client.workflow.getHandle(adaRecovery).describe()).status.name).toBe('COMPLETED');

    // Not even a fresh process, nor the api's codec server, reads any of them; Grace's still read.
    const fresh = payloadCodecFromConfig(h.graph.config, h.graph, 'none', new WorkflowCustomers());
    for (const workflowId of [ada.workflowId, adaRecovery, away.workflowId, awayRecovery]) {
      const payloads = (await rawPayloads(workflowId)).map(asPayload);
      expect(payloads.length).toBeGreaterThan(0);
      const read = await fresh.decodeWhereReadable(payloads);
      expect(read.unreadable).toHaveLength(payloads.length);
      expect(text(await h.deps.payloads.codec.decodeWhereReadable(payloads).then((r) => r.payloads))).not.toContain(
        'insufficient_funds',
      );
    }
    expect(text(await fresh.decode((await rawPayloads(graceRecovery)).map(asPayload)))).toContain('insufficient_funds');
    // Nothing of the erased customers is left in the open processes, and no key can be made again.
    expect(await openProcessesOf(ada.customerId)).toEqual([]);
    expect(await openProcessesOf(away.customerId)).toEqual([]);
    await expect(h.deps.payloads.provision(`fraud-outcome-${randomUUID()}`, ada.customerId)).rejects.toThrow(
      /is erased/,
    );
  });

  it('removes an onboarding’s own key once the namespace no longer keeps its history', async () => {
    const expired = `onboarding-expired-${randomUUID()}`;
    const customerKey = `customer:expired-${randomUUID()}`;
    const days = h.graph.config.PERSONA_HISTORY_RETENTION_DAYS + 1;
    await h.graph.query(
      `CREATE (:HistoryKey {id: $expired, kind: 'onboarding', wrapped: 'x', wrapped_by: 'k',
                            created_at: datetime() - duration({days: $days})})
       CREATE (:HistoryKey {id: $customerKey, kind: 'customer', wrapped: 'x', wrapped_by: 'k',
                            created_at: datetime() - duration({days: $days})})`,
      { expired, customerKey, days },
    );
    // Each new onboarding key removes up to two expired ones: the older ones go first.
    for (let i = 0; i < 5; i++) {
      if ((await h.graph.query('MATCH (k:HistoryKey {id: $expired}) RETURN k', { expired })).length === 0) break;
      await onboard();
    }
    expect(await h.graph.query('MATCH (k:HistoryKey {id: $expired}) RETURN k', { expired })).toEqual([]);
    // A customer's key is not an onboarding's: it stays however old.
    expect(await h.graph.query('MATCH (k:HistoryKey {id: $customerKey}) RETURN k.id AS id', { customerKey })).toEqual([
      { id: customerKey },
    ]);
    await h.graph.query('MATCH (k:HistoryKey {id: $customerKey}) DELETE k', { customerKey });
  });
});
