/**
 * What a write hands to `Graph.changes` and names in its answer (issue 19): only the committed
 * attempt's events, with the sequence numbers the log stored; a device's own sequence; a payment
 * that moves a method's `last_used` is never silent; and the consistency tokens of the write
 * answers, against the real Neo4j.
 */
import { randomUUID } from 'node:crypto';
import { Neo4jError } from 'neo4j-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDeviceTrustScore } from '../../graph/fraud';
import { CONSISTENCY_HEADER, parseToken } from '../../api/consistency';
import {
  appendEvent,
  getPaymentMethodsByCustomer,
  linkDevice,
  listCustomerEvents,
  writeTx,
  type CommittedEvent,
  type Graph,
} from '../../graph';
import { recordInteractions as recordInGraph, type Interaction } from '../../graph/interactions';
import { profileRules } from '../../config/env';
import { startHarness, type Harness } from '../support/api';
import { seedCustomer } from '../support/builders';
import { send } from '../support/http';
import { cardInput } from '../support/graph';

let h: Harness;
const created: string[] = [];
const fingerprints: string[] = [];

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  if (!h) return;
  await h.graph.query(
    `MATCH (c:Customer) WHERE c.id IN $ids
     OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD|HAS_DIGITAL_IDENTIFIER|SHIPPED_TO]->(n)
     DETACH DELETE n, c`,
    { ids: created },
  );
  const devices = await h.graph.query<{ id: string }>(
    'MATCH (d:Device) WHERE d.fingerprint IN $fps RETURN d.id AS id',
    {
      fps: fingerprints,
    },
  );
  await h.graph.query('MATCH (e:Event) WHERE e.device_id IN $ids DELETE e', { ids: devices.map((d) => d.id) });
  await h.graph.query('MATCH (d:Device) WHERE d.fingerprint IN $fps DETACH DELETE d', { fps: fingerprints });
  await h.graph.query('MATCH (i:Interaction) WHERE i.customer_id IN $ids DELETE i', { ids: created });
  await h.graph.query('MATCH (e:Event) WHERE e.customer_id IN $ids DETACH DELETE e', { ids: created });
  await h.close();
});

/** The harness's graph with a `changes` hook that keeps what it is handed. */
function observed(): { g: Graph; reported: CommittedEvent[] } {
  const reported: CommittedEvent[] = [];
  return { g: { ...h.graph, changes: (events) => reported.push(...events) }, reported };
}

async function customer() {
  const c = await seedCustomer(h.graph, { segment: 'New', ltvMinor: 0, emailTag: 'commits', cards: 1 });
  created.push(c.customerId);
  return { customerId: c.customerId, cardId: c.cardId };
}

async function device(customerId: string) {
  const fingerprint = `fp-${randomUUID()}`;
  fingerprints.push(fingerprint);
  return (await linkDevice(h.graph, customerId, { fingerprint })).id;
}

async function eventSeq(label: 'Customer' | 'Device', id: string): Promise<number> {
  const [row] = await h.graph.query<{ seq: number | null }>(`MATCH (n:${label} {id: $id}) RETURN n.event_seq AS seq`, {
    id,
  });
  return row?.seq ?? 0;
}

async function storedEvent(id: string) {
  const [row] = await h.graph.query<{ customer_seq: number | null; device_seq: number | null; type: string }>(
    'MATCH (e:Event {id: $id}) RETURN e.customer_seq AS customer_seq, e.device_seq AS device_seq, e.type AS type',
    { id },
  );
  return row;
}

describe('Graph.changes', () => {
  it('hears only the attempt that committed: a retried attempt never leaks its events', async () => {
    const a = await customer();
    const { g, reported } = observed();
    let attempts = 0;
    await writeTx(g, async (tx) => {
      attempts += 1;
      await appendEvent(tx, 'CustomerProfileUpdated', a.customerId, {
        changes: { segment: { from: 'New', to: `attempt-${attempts}` } },
      });
      if (attempts === 1)
        throw new Neo4jError(
          'a deadlock, made up by the test',
          'Neo.TransientError.Transaction.DeadlockDetected',
          '50N42',
          'error: general processing exception - a deadlock made up by the test',
        );
    });
    expect(attempts).toBe(2);
    expect(reported).toHaveLength(1);
    const [event] = reported as [CommittedEvent];
    expect(event).toMatchObject({
      type: 'CustomerProfileUpdated',
      customer_id: a.customerId,
      payload: { changes: { segment: { from: 'New', to: 'attempt-2' } } },
    });
    // The first attempt's event rolled back; the reported one is the stored one, with its number.
    const updates = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(updates.map((e) => e.id)).toEqual([event.id]);
    expect((await storedEvent(event.id))?.customer_seq).toBe(event.customer_seq);
    expect(event.customer_seq).toBe(await eventSeq('Customer', a.customerId));
  });

  it('is not called for a write that failed, and a throwing hook does not fail the write', async () => {
    const a = await customer();
    const { g, reported } = observed();
    await expect(
      writeTx(g, async (tx) => {
        await appendEvent(tx, 'CustomerProfileUpdated', a.customerId, { changes: {} });
        throw new Error('the work fails');
      }),
    ).rejects.toThrow('the work fails');
    expect(reported).toEqual([]);
    const throwing: Graph = {
      ...h.graph,
      changes: () => {
        throw new Error('a broken hook');
      },
    };
    await expect(
      writeTx(throwing, (tx) => appendEvent(tx, 'CustomerProfileUpdated', a.customerId, { changes: {} })),
    ).resolves.toBeUndefined();
  });

  it('numbers a device’s trust changes 1, 2, … one per change, as stored', async () => {
    const a = await customer();
    const deviceId = await device(a.customerId);
    const { g, reported } = observed();
    const before = await eventSeq('Device', deviceId);
    await setDeviceTrustScore(g, deviceId, 0.91, { reason: 'test', reportedBy: 'agent' });
    await setDeviceTrustScore(g, deviceId, 0.92, { reason: 'test', reportedBy: 'agent' });
    // The same score again changes nothing: no event, no number.
    await setDeviceTrustScore(g, deviceId, 0.92, { reason: 'test', reportedBy: 'agent' });
    expect(reported.map((e) => [e.type, e.device_id, e.device_seq, e.customer_seq])).toEqual([
      ['DeviceTrustScoreUpdated', deviceId, before + 1, null],
      ['DeviceTrustScoreUpdated', deviceId, before + 2, null],
    ]);
    expect(await eventSeq('Device', deviceId)).toBe(before + 2);
    for (const e of reported) expect((await storedEvent(e.id))?.device_seq).toBe(e.device_seq);
    const history = await listCustomerEvents(h.graph, a.customerId, { type: 'DeviceTrustScoreUpdated' });
    expect(history.map((e) => e.device_seq)).toEqual([before + 2, before + 1]);
  });

  it('hears a payment that only moved last_used: CustomerProfileUpdated with payment_methods_used', async () => {
    const a = await customer();
    const { g, reported } = observed();
    const occurred = new Date(Date.now() - 60_000).toISOString();
    const pay = (outcome: string): Interaction =>
      ({
        id: `pay-${randomUUID()}`,
        type: 'payment',
        customer_id: a.customerId,
        occurred_at: occurred,
        payment_method_id: a.cardId,
        amount: 500,
        currency: h.graph.policy.reportingCurrency,
        outcome,
      }) as Interaction;
    // A payment and its refund in one batch: the LTV does not move, last_used does.
    const results = await recordInGraph(g, [pay('succeeded'), pay('refunded')], profileRules(h.graph.config));
    expect(results.map((r) => r.result)).toEqual(['recorded', 'recorded']);
    const [card] = await getPaymentMethodsByCustomer(h.graph, a.customerId);
    expect(card?.last_used).toBe(occurred);
    const [update] = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(update?.payload).toMatchObject({
      changes: {},
      payment_methods_used: [{ payment_method_id: a.cardId, last_used: occurred }],
    });
    expect(reported.map((e) => [e.id, e.customer_seq])).toEqual([[update?.id, update?.customer_seq]]);
    // The same payment time again moves nothing: no event.
    await recordInGraph(g, [pay('succeeded'), pay('refunded')], profileRules(h.graph.config));
    expect(reported).toHaveLength(1);
  });
});

describe('consistency tokens on write answers', () => {
  /** A call with a token of `scope`; it always says its body is JSON. */
  const call = async (method: string, path: string, scope: string, body?: unknown) =>
    send(h.app, method, path, {
      token: await h.token(scope),
      body,
      headers: { 'content-type': 'application/json' },
      read: 'text',
    });

  it('are described in the OpenAPI document on every write that answers one', async () => {
    type Doc = { paths: Record<string, Record<string, { responses: Record<string, { headers?: object }> }>> };
    const doc = (await (await h.app.request('/openapi.json')).json()) as Doc;
    const header = (path: string, method: string, code: string) =>
      doc.paths[path]?.[method]?.responses[code]?.headers ?? {};
    for (const [path, method, code] of [
      ['/api/v1/devices/{id}/trust-score', 'put', '200'],
      ['/api/v1/payment-methods/{id}/inactivate', 'post', '200'],
      ['/api/v1/customers/{id}/profile', 'put', '200'],
      ['/api/v1/customers/{id}/payment-methods', 'post', '201'],
      ['/api/v1/customers/{id}/payment-methods/{pmId}', 'delete', '204'],
    ] as const)
      expect(header(path, method, code), `${method} ${path}`).toHaveProperty(CONSISTENCY_HEADER);
  });

  it('PUT trust-score answers d:<device>:<device_seq>; the same score again, none', async () => {
    const a = await customer();
    const deviceId = await device(a.customerId);
    const res = await call('PUT', `/api/v1/devices/${deviceId}/trust-score`, 'devices:write', { trust_score: 0.2 });
    expect(res.status).toBe(200);
    const token = res.headers.get(CONSISTENCY_HEADER);
    expect(token).toBe(`d:${deviceId}:${await eventSeq('Device', deviceId)}`);
    expect(parseToken(token)).toEqual({ kind: 'd', deviceId, seq: await eventSeq('Device', deviceId) });
    const again = await call('PUT', `/api/v1/devices/${deviceId}/trust-score`, 'devices:write', { trust_score: 0.2 });
    expect(again.status).toBe(200);
    expect(again.headers.get(CONSISTENCY_HEADER)).toBeNull();
  });

  it('inactivate and the wallet and profile writes answer c:<the customer’s event_seq>', async () => {
    const a = await customer();
    const inactivate = await call('POST', `/api/v1/payment-methods/${a.cardId}/inactivate`, 'customers:write', {
      reason: 'lost card',
    });
    expect(inactivate.status).toBe(200);
    expect(inactivate.headers.get(CONSISTENCY_HEADER)).toBe(
      `c:${a.customerId}:${await eventSeq('Customer', a.customerId)}`,
    );

    const added = await call('POST', `/api/v1/customers/${a.customerId}/payment-methods`, 'customers:write', {
      ...cardInput(),
      make_default: true,
    });
    expect(added.status).toBe(201);
    expect(added.headers.get(CONSISTENCY_HEADER)).toBe(`c:${a.customerId}:${await eventSeq('Customer', a.customerId)}`);
    const { id: addedId } = added.json as { id: string };

    const removed = await call('DELETE', `/api/v1/customers/${a.customerId}/payment-methods/${addedId}`, 'ops');
    expect(removed.status).toBe(204);
    expect(removed.headers.get(CONSISTENCY_HEADER)).toBe(
      `c:${a.customerId}:${await eventSeq('Customer', a.customerId)}`,
    );

    const profile = await call('PUT', `/api/v1/customers/${a.customerId}/profile`, 'customers:write', {
      segment: 'Subscriber',
    });
    expect(profile.status).toBe(200);
    expect(profile.headers.get(CONSISTENCY_HEADER)).toBe(
      `c:${a.customerId}:${await eventSeq('Customer', a.customerId)}`,
    );
  });

  it('a recorded interaction carries its customer’s token, and the group commit still reports to changes', async () => {
    const a = await customer();
    const b = await customer();
    const reported: CommittedEvent[] = [];
    const app = h.withDeps((deps) => ({ ...deps, graph: { ...deps.graph, changes: (e) => reported.push(...e) } }));
    const pay = (who: { customerId: string; cardId: string }, id = `pay-${randomUUID()}`) => ({
      id,
      type: 'payment',
      customer_id: who.customerId,
      occurred_at: new Date(Date.now() - 60_000).toISOString(),
      payment_method_id: who.cardId,
      amount: 700,
      currency: h.graph.policy.reportingCurrency,
      outcome: 'succeeded',
    });
    const first = pay(a);
    const res = await app.request('/api/v1/interactions', {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.token('interactions:write')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ data: [first, pay(b), first, { id: 'x', type: 'payment' }] }),
    });
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: { result: string; consistency_token?: string }[] };
    expect(data.map((d) => d.result)).toEqual(['recorded', 'recorded', 'duplicate', 'invalid']);
    expect(data[0]?.consistency_token).toBe(`c:${a.customerId}:${await eventSeq('Customer', a.customerId)}`);
    expect(data[1]?.consistency_token).toBe(`c:${b.customerId}:${await eventSeq('Customer', b.customerId)}`);
    expect(data[2]).not.toHaveProperty('consistency_token');
    expect(data[3]).not.toHaveProperty('consistency_token');
    expect(new Set(reported.map((e) => e.customer_id))).toEqual(new Set([a.customerId, b.customerId]));
  });
});
