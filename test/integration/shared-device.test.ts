/**
 * A device shared by thousands (issue 17, item 4), end to end on the real api, worker, Temporal
 * and Neo4j: a confirmed fraud on a device 10,000 customers use is one device-level event, which
 * each customer's history, export and the feed show as the device's trust change — never as the
 * caught customer's fraud outcome; onboarding on the device reads a handful of its customers,
 * not all of them. The figures (10,000 and 100,000) are in docs/performance.md
 * (`npm run bench:shared-device`).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkDevice, listCustomerEvents, type PersonaEvent } from '../../graph';
import { readFeed } from '../../graph/feed';
import { DEVICE_CUSTOMERS } from '../../graph/onboarding';
import type { FraudOutcomeStatus } from '../../temporal/fraud';
import { startHarness, type Harness } from '../support/api';
import { customerWithTrustedDevice } from '../support/builders';
import { send } from '../support/http';
import { feedCursorAtNow, uniqueEmail } from '../support/graph';
import { removeDeviceCustomers, seedDeviceCustomers } from '../support/sharedDevice';
import { until } from '../support/wait';

const SHARED = 10_000;

let h: Harness;
let chimera: string;
let caught: { customerId: string; card: string; deviceId: string; fingerprint: string };
let others: string[] = [];
const late: string[] = [];

beforeAll(async () => {
  h = await startHarness();
  chimera = await h.token('fraud:report context:read');
  const c = await customerWithTrustedDevice(h.graph, undefined, { fingerprint: `fp-shared-${randomUUID()}` });
  caught = { customerId: c.customerId, card: c.cards[0] as string, deviceId: c.deviceId, fingerprint: c.fingerprint };
  others = await seedDeviceCustomers(h.graph, c.deviceId, SHARED);
});

afterAll(async () => {
  if (h && caught) await removeDeviceCustomers(h.graph, caught.deviceId, [...others, ...late]);
  await h?.close();
});

const request = (method: string, path: string, token: string, body?: unknown) =>
  send(h.app, method, path, { token, body, read: 'text' });

const trustEvents = async (customerId: string): Promise<PersonaEvent[]> =>
  listCustomerEvents(h.graph, customerId, { type: 'DeviceTrustScoreUpdated', limit: 100 });

describe('a device shared by 10,000 customers', () => {
  it('makes a confirmed fraud ONE device-level event, seen by each customer as the device’s change only', async () => {
    const cursor = await feedCursorAtNow(h.graph);
    const outcomeId = `cf-shared-${randomUUID()}`;
    const started = Date.now();
    const res = await request('POST', '/api/v1/fraud-outcomes', chimera, {
      outcome_id: outcomeId,
      customer_id: caught.customerId,
      outcome: 'confirmed_fraud',
      payment_method_id: caught.card,
      device_id: caught.deviceId,
    });
    expect(res.status).toBe(202);
    const status = async () =>
      JSON.parse((await request('GET', `/api/v1/fraud-outcomes/${outcomeId}`, chimera)).text) as FraudOutcomeStatus;
    await until(async () => ['awaiting_review', 'not_applied'].includes((await status()).state), 120_000);
    expect((await status()).state).toBe('awaiting_review');
    console.log(`confirmed fraud on a device shared by ${SHARED} customers: applied in ${Date.now() - started} ms`);

    // One event, about the device, with nothing of the caught customer in it.
    const onDevice = await h.graph.query<{ type: string; customer: string | null; payload: string }>(
      'MATCH (e:Event {device_id: $deviceId}) RETURN e.type AS type, e.customer_id AS customer, e.payload AS payload',
      { deviceId: caught.deviceId },
    );
    expect(onDevice.map((e) => ({ ...e, payload: JSON.parse(e.payload) as unknown }))).toEqual([
      {
        type: 'DeviceTrustScoreUpdated',
        customer: null,
        payload: { device_id: caught.deviceId, from: 1, to: 0, reason: 'fraud signal' },
      },
    ]);
    const [perCustomer] = await h.graph.query<{ n: number }>(
      // occurred_at named so each id is one seek of the (customer_id, occurred_at) index.
      `UNWIND $ids AS id MATCH (e:Event {customer_id: id}) WHERE e.occurred_at IS NOT NULL
       AND e.type = 'DeviceTrustScoreUpdated' RETURN count(e) AS n`,
      { ids: [caught.customerId, ...others] },
    );
    expect(perCustomer?.n).toBe(0);

    // The caught customer has the details in its own FraudOutcomeApplied, and sees the device too.
    const own = await listCustomerEvents(h.graph, caught.customerId, { limit: 100 });
    expect(own.find((e) => e.type === 'FraudOutcomeApplied')?.payload).toMatchObject({
      outcome_id: outcomeId,
      changes: expect.arrayContaining([
        { entity: 'device', id: caught.deviceId, field: 'trust_score', from: 1, to: 0 },
      ]) as unknown,
    });
    expect((await trustEvents(caught.customerId)).map((e) => e.device_id)).toEqual([caught.deviceId]);

    // Every other customer on the device: its history (graph and api) and its export show the
    // device's change, through the device, and nothing of the outcome.
    for (const other of [others[0], others[SHARED / 2], others.at(-1)] as string[]) {
      const seen = await trustEvents(other);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({
        customer_id: null,
        device_id: caught.deviceId,
        payload: { device_id: caught.deviceId, from: 1, to: 0, reason: 'fraud signal' },
      });
      expect(seen[0]?.payload).not.toHaveProperty('fraud_outcome_id');

      const history = await request('GET', `/api/v1/customers/${other}/events`, await h.token('self', other));
      expect(history.status).toBe(200);
      const items = (JSON.parse(history.text) as { data: { type: string; summary: string }[] }).data;
      expect(items).toContainEqual(
        expect.objectContaining({
          type: 'DeviceTrustScoreUpdated',
          summary: 'A device’s trust changed from 1 to 0',
        }),
      );
      expect(history.text).not.toContain(outcomeId);
      expect(history.text).not.toContain(caught.customerId);

      const exported = await request('GET', `/api/v1/customers/${other}/export`, await h.token('ops'));
      expect(exported.status).toBe(200);
      expect(exported.text).toContain('fraud signal');
      expect(exported.text).not.toContain(outcomeId);
      expect(exported.text).not.toContain(caught.customerId);
    }

    // The feed carries the one device-level event (customer_id null, device_id set).
    const fed: PersonaEvent[] = [];
    let after = cursor;
    for (;;) {
      const page = await readFeed(h.graph, { after, limit: 1000, lagMs: 0 });
      fed.push(...page.data.filter((e) => e.device_id === caught.deviceId || e.customer_id === caught.customerId));
      if (page.data.length < 1000) break;
      after = page.next_cursor as string;
    }
    const fedTrust = fed.filter((e) => e.type === 'DeviceTrustScoreUpdated');
    expect(fedTrust).toHaveLength(1);
    expect(fedTrust[0]).toMatchObject({ customer_id: null, device_id: caught.deviceId });
  }, 180_000);

  it('shows a customer the device’s changes from its first login on, with who moved the device’s trust', async () => {
    // Joins after the fraud and after this change (so that the test stands alone): sees none of them.
    const earlier = await request(
      'PUT',
      `/api/v1/devices/${caught.deviceId}/trust-score`,
      await h.token('devices:write'),
      {
        trust_score: 0.4,
        reason: 'device reviewed',
      },
    );
    expect(earlier.status).toBe(200);
    const newcomer = randomUUID();
    await h.graph.query(
      `CREATE (:Customer {id: $id, status: 'active', segment: 'New', ltv: 0,
                          created_at: datetime.realtime(), updated_at: datetime.realtime()})`,
      { id: newcomer },
    );
    late.push(newcomer);
    const before = (await trustEvents(others[0] as string)).length;
    await linkDevice(h.graph, newcomer, { fingerprint: caught.fingerprint });
    expect(await trustEvents(newcomer)).toEqual([]);

    const put = await request('PUT', `/api/v1/devices/${caught.deviceId}/trust-score`, await h.token('devices:write'), {
      trust_score: 0.35,
      reason: 'device reviewed',
    });
    expect(put.status).toBe(200);
    const mine = await trustEvents(newcomer);
    expect(mine.map((e) => e.payload)).toEqual([
      { device_id: caught.deviceId, from: expect.any(Number) as unknown, to: 0.35, reason: 'set by an agent' },
    ]);
    // A customer there all along sees this one too, newest first.
    const theirs = await trustEvents(others[0] as string);
    expect(theirs).toHaveLength(before + 1);
    expect(theirs[0]?.id).toBe(mine[0]?.id);
  });

  it('reads a per-customer trust event from before as the device’s change only', async () => {
    // What the graph holds from before: the caught customer's outcome copied to another customer.
    const other = others[1] as string;
    const foreign = `cf-legacy-${randomUUID()}`;
    const cursor = await feedCursorAtNow(h.graph);
    const eventId = randomUUID();
    await h.graph.query(
      `CREATE (:Event {id: $id, type: 'DeviceTrustScoreUpdated', customer_id: $customerId, seq: 0,
                       occurred_at: datetime.realtime(), payload: $payload})`,
      {
        id: eventId,
        customerId: other,
        payload: JSON.stringify({
          device_id: caught.deviceId,
          from: 0.8,
          to: 0,
          reason: `fraud outcome ${foreign}: confirmed_fraud`,
          fraud_outcome_id: foreign,
        }),
      },
    );
    try {
      const seen = (await trustEvents(other)).find((e) => e.id === eventId);
      expect(seen?.payload).toEqual({ device_id: caught.deviceId, from: 0.8, to: 0, reason: 'fraud signal' });
      const history = await request('GET', `/api/v1/customers/${other}/events`, await h.token('self', other));
      // The customer's own view leaves out why (whoever set a device's trust wrote it for staff).
      expect(history.text).toContain('A device’s trust changed from 0.8 to 0');
      expect(history.text).not.toContain('fraud signal');
      const exported = await request('GET', `/api/v1/customers/${other}/export`, await h.token('ops'));
      expect(exported.text).toContain(eventId);
      const fed = (await readFeed(h.graph, { after: cursor, limit: 1000, lagMs: 0 })).data.find(
        (e) => e.id === eventId,
      );
      expect(fed?.payload).toEqual(seen?.payload);
      for (const text of [history.text, exported.text, JSON.stringify(fed)]) expect(text).not.toContain(foreign);
    } finally {
      await h.graph.query('MATCH (e:Event {id: $id}) DELETE e', { id: eventId });
    }
  });

  it('onboards on the device reading at most limit + 1 of its customers, with no possible match', async () => {
    const res = await h.app.request('/api/v1/onboarding?wait=true', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await h.token('onboarding:write')}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        customer: { segment: 'New', ltv: '0' },
        device: { fingerprint: caught.fingerprint },
        digital_identifiers: [{ type: 'email', value: uniqueEmail('shared'), is_verified: true }],
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { customer_id: string; outcome: string; possible_match_count: number };
    late.push(body.customer_id);
    expect(body).toMatchObject({ outcome: 'created', possible_match_count: 0 });

    // What the onboarding transaction reads of the device: a handful of rows, whatever its size.
    const limit = h.graph.policy.sharedDeviceLimit;
    const profiled = await h.graph.driver.executeQuery(
      `PROFILE ${DEVICE_CUSTOMERS}`,
      { fingerprint: caught.fingerprint, cap: limit + 1 },
      { database: h.graph.database },
    );
    expect(profiled.records[0]?.get('customerIds')).toHaveLength(limit + 1);
    const hits = (p: { dbHits: number; children: unknown[] }): number =>
      p.dbHits + p.children.reduce<number>((n, c) => n + hits(c as typeof p), 0);
    const dbHits = hits(profiled.summary.profile as unknown as { dbHits: number; children: unknown[] });
    console.log(`onboarding's shared-device read on ${SHARED} customers: ${dbHits} db hits`);
    expect(dbHits).toBeLessThan(200);
  });

  it('reads a customer’s device-level events by a seek of the (device_id, occurred_at) index', async () => {
    // The shape of the device branch of graph/feed.ts history() and graph/events.ts listForCustomer.
    const plan = await h.graph.driver.executeQuery(
      `EXPLAIN MATCH (:Customer {id: $customerId})-[r:LOGGED_IN_FROM]->(d:Device)
       MATCH (e:Event {device_id: d.id}) WHERE e.occurred_at >= coalesce(r.first_login, datetime({epochMillis: 0}))
       RETURN e ORDER BY e.occurred_at DESC LIMIT 50`,
      { customerId: others[0] },
      { database: h.graph.database },
    );
    const ops: string[] = [];
    const walk = (p: { operatorType: string; arguments: { Details?: string }; children: unknown[] }) => {
      ops.push(`${p.operatorType} ${p.arguments.Details ?? ''}`);
      p.children.forEach((c) => walk(c as typeof p));
    };
    walk(plan.summary.plan as never);
    expect(ops.join('\n')).toMatch(/NodeIndexSeek.*Event\(device_id, occurred_at\)/);
  });
});
