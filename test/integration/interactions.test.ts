/**
 * Interactions recorded through the real api (REST and gRPC) into the real Neo4j: each item
 * answered in order, each recorded exactly once, and what it changes on the customer.
 */
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDepsFromConfig } from '../../api/deps';
import { createGrpcServer, listen } from '../../api/grpc/server';
import { listCustomerEvents } from '../../graph';
import { customerContext } from '../support/graph';
import { lockNode } from '../../graph/graph';
import { eraseCustomer } from '../../graph/erasure';
import { recordInteractions as recordInGraph, type Interaction } from '../../graph/interactions';
import { fromMinorUnits } from '../../payments/money';
import type { PersonaAgentClient } from '../../proto/generated/persona/v1/PersonaAgent';
import { createLogger } from '../../runtime/logger';
import { createApiMetrics } from '../../api/observability';
import { laneOf } from '../../api/services/interactions';
import { startHarness, type Harness } from '../support/api';
import { seedCustomer } from '../support/builders';
import { send, type Requestable } from '../support/http';
import { bearer, call, personaClient } from '../support/grpc';
import { metricValue, parseMetrics } from '../support/observability';
import { until } from '../support/wait';

let h: Harness;
let server: grpc.Server;
let client: PersonaAgentClient;
const created: string[] = [];
const fingerprints: string[] = [];

beforeAll(async () => {
  h = await startHarness();
  const deps = apiDepsFromConfig(h.graph.config, {
    logger: createLogger('interactions-test', 'silent'),
    readiness: [],
    graph: h.graph,
    client: h.client,
    requests: h.requests,
    taskQueue: h.taskQueue,
  });
  server = createGrpcServer(deps).server;
  client = personaClient(`127.0.0.1:${await listen(server, '127.0.0.1', 0)}`);
});

afterAll(async () => {
  client?.close();
  await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
  if (h) {
    // Everything these tests made: their customers with what hangs off them, their devices
    // (unique fingerprints), their interaction claims and events.
    await h.graph.query(
      `MATCH (c:Customer) WHERE c.id IN $ids
       OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD|HAS_DIGITAL_IDENTIFIER|SHIPPED_TO]->(n)
       DETACH DELETE n, c`,
      { ids: created },
    );
    await h.graph.query('MATCH (d:Device) WHERE d.fingerprint IN $fps DETACH DELETE d', { fps: fingerprints });
    await h.graph.query('MATCH (i:Interaction) WHERE i.customer_id IN $ids DELETE i', { ids: created });
    await h.graph.query('MATCH (e:Event) WHERE e.customer_id IN $ids DETACH DELETE e', { ids: created });
    await h.close();
  }
});

const currency = () => h.graph.policy.reportingCurrency;

/** A customer with one card (LTV in minor units of the reporting currency). */
async function customer(options: { segment?: string; ltvMinor?: number } = {}) {
  const c = await seedCustomer(h.graph, {
    segment: options.segment ?? 'New',
    ltvMinor: options.ltvMinor ?? 0,
    emailTag: 'interactions',
    cards: 1,
  });
  created.push(c.customerId);
  return { customerId: c.customerId, cardId: c.cardId };
}

function fingerprint(): string {
  const fp = `fp-${randomUUID()}`;
  fingerprints.push(fp);
  return fp;
}

const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();

function payment(
  who: { customerId: string; cardId: string },
  amount: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id: `pay-${randomUUID()}`,
    type: 'payment',
    customer_id: who.customerId,
    occurred_at: at(10),
    payment_method_id: who.cardId,
    amount,
    currency: currency(),
    outcome: 'succeeded',
    ...extra,
  };
}

interface Answer {
  id: string | null;
  result: string;
  field?: string;
  problem?: string;
}

async function post(body: unknown, scope = 'interactions:write', to: Requestable = h.app) {
  return send<{ data: Answer[]; field?: string }>(to, 'POST', '/api/v1/interactions', {
    token: await h.token(scope),
    body,
  });
}

async function record(items: Record<string, unknown>[], scope = 'interactions:write'): Promise<Answer[]> {
  const res = await post({ data: items }, scope);
  expect(res.status).toBe(200);
  return res.json.data;
}

async function ltvMinor(customerId: string): Promise<number> {
  const [row] = await h.graph.query<{ ltv: number }>('MATCH (c:Customer {id: $id}) RETURN c.ltv AS ltv', {
    id: customerId,
  });
  return row?.ltv as number;
}

async function restContext(customerId: string) {
  const res = await h.app.request(`/api/v1/customers/${customerId}/context`, {
    headers: { authorization: `Bearer ${await h.token('context:read')}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { is_vip: boolean; ltv: string; predicted_ltv: string | null; segment: string };
}

describe('POST /api/v1/interactions', () => {
  it('a batch with one invalid item records the others and answers each item in order', async () => {
    const a = await customer({ ltvMinor: 500 });
    const other = await customer();
    const fp = fingerprint();
    const items = [
      payment(a, 1000),
      payment(a, 700, { currency: currency() === 'EUR' ? 'GBP' : 'EUR' }),
      {
        id: `login-${randomUUID()}`,
        type: 'login',
        customer_id: a.customerId,
        occurred_at: at(5),
        device: { fingerprint: fp },
      },
      payment(a, 12.5),
      payment({ customerId: a.customerId, cardId: other.cardId }, 300),
      payment({ customerId: randomUUID(), cardId: a.cardId }, 300),
    ];
    const answers = await record(items);
    expect(answers.map((x) => [x.id, x.result, x.field ?? null])).toEqual([
      [items[0]?.id, 'recorded', null],
      [items[1]?.id, 'invalid', 'data[1].currency'],
      [items[2]?.id, 'recorded', null],
      [items[3]?.id, 'invalid', 'data[3].amount'],
      [items[4]?.id, 'invalid', 'data[4].payment_method_id'],
      [items[5]?.id, 'invalid', 'data[5].customer_id'],
    ]);
    expect(answers[1]?.problem).toContain('exchange rate');
    // Only the valid ones wrote anything: LTV moved by the first payment alone, two ids claimed.
    expect(await ltvMinor(a.customerId)).toBe(1500);
    const claims = await h.graph.query<{ n: number }>('MATCH (i:Interaction {customer_id: $id}) RETURN count(i) AS n', {
      id: a.customerId,
    });
    expect(claims[0]?.n).toBe(2);
    expect(await ltvMinor(other.customerId)).toBe(0);
  });

  it('the same batch twice changes LTV once, and a repeat inside one batch is a duplicate', async () => {
    const a = await customer();
    const first = payment(a, 2500);
    const items = [first, payment(a, 400), { ...first }];
    expect((await record(items)).map((x) => x.result)).toEqual(['recorded', 'recorded', 'duplicate']);
    expect((await record(items)).map((x) => x.result)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    expect(await ltvMinor(a.customerId)).toBe(2900);
    const updates = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(updates).toHaveLength(1);
    expect(updates[0]?.payload).toMatchObject({ changes: { ltv_minor: { from: 0, to: 2900 } } });
  });

  it('a batch retried after a timeout whose write committed anyway is counted once', async () => {
    const a = await customer();
    const batch = [payment(a, 1100), payment(a, 220)];
    // The write commits, but its answer is held past the request's deadline: the caller gets 503.
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const driver = h.graph.driver;
    const slowDriver = new Proxy(driver, {
      get(target, prop) {
        if (prop !== 'session') {
          const value = Reflect.get(target, prop) as unknown;
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        }
        return (config: Parameters<typeof driver.session>[0]) => {
          const session = target.session(config);
          const write = session.executeWrite.bind(session);
          session.executeWrite = async (work, options) => {
            const result = await write(work, options);
            await held;
            return result;
          };
          return session;
        };
      },
    });
    const slow = h.withDeps((deps) => ({
      ...deps,
      graph: { ...deps.graph, driver: slowDriver },
      limits: { ...deps.limits, requestDeadlineMs: 1500 },
    }));
    try {
      const timedOut = await slow.request('/api/v1/interactions', {
        method: 'POST',
        headers: { authorization: `Bearer ${await h.token('interactions:write')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ data: batch }),
      });
      expect(timedOut.status).toBe(503);
      // It committed all the same (the sender cannot know): wait for it, then retry the same batch.
      await until(async () => (await ltvMinor(a.customerId)) === 1320);
      expect((await record(batch)).map((x) => x.result)).toEqual(['duplicate', 'duplicate']);
    } finally {
      release();
    }
    expect(await ltvMinor(a.customerId)).toBe(1320);
  });

  it('a batch over two lanes, one of them stuck, is answered 503 and counted once on retry', async () => {
    // Two customers in different lanes of two.
    const a = await customer();
    let b = await customer();
    while (laneOf(b.customerId, 2) === laneOf(a.customerId, 2)) b = await customer();
    const batch = [payment(a, 700), payment(b, 90)];
    const metrics = createApiMetrics();
    const lanes = h.withDeps((deps) => ({
      ...deps,
      metrics,
      limits: { ...deps.limits, interactionWriteLanes: 2, requestDeadlineMs: 1500 },
    }));
    const queued = async (customerId: string) =>
      metricValue(parseMetrics(await metrics.registry.metrics()), 'persona_interactions_queued_items', {
        lane: String(laneOf(customerId, 2)),
      });
    const write = async (items: Record<string, unknown>[]) => {
      const res = await post({ data: items }, 'interactions:write', lanes);
      return { status: res.status, body: res.json };
    };
    // Another writer holds b's lock: b's lane waits on it past the request's deadline, a's lane commits.
    const session = h.graph.driver.session({ database: h.graph.database });
    const holder = await session.beginTransaction();
    try {
      await holder.run(`MATCH (c:Customer {id: $id}) ${lockNode('c')}`, { id: b.customerId });
      expect((await write(batch)).status).toBe(503);
      await until(async () => (await ltvMinor(a.customerId)) === 700);
      expect(await ltvMinor(b.customerId)).toBe(0);
      // A login for b queues behind the stuck write, and ops see it on /metrics.
      const behind = write([
        {
          id: `login-${randomUUID()}`,
          type: 'login',
          customer_id: b.customerId,
          occurred_at: at(5),
          device: { fingerprint: fingerprint() },
        },
      ]);
      await until(async () => (await queued(b.customerId)) === 1);
      expect(await queued(a.customerId)).toBe(0);
      void behind.catch(() => undefined);
    } finally {
      await holder.rollback();
      await session.close();
    }
    // The retry: a's item was recorded by the first attempt; b's by whichever of the two gets there first.
    // Each write waits behind the group b's lane is finishing: on a starved machine it may still be 503,
    // and is then sent again (the same ids: nothing counts twice).
    const answered = async (items: Record<string, unknown>[]) => {
      let res = await write(items);
      await until(async () => res.status === 200 || (res = await write(items)).status === 200);
      return res;
    };
    const retried = await answered(batch);
    expect(retried.body.data[0]?.result).toBe('duplicate');
    expect(['recorded', 'duplicate']).toContain(retried.body.data[1]?.result);
    // A later batch down b's lane is written after everything queued before it.
    const laterAnswer = await answered([payment(b, 5)]);
    expect(['recorded', 'duplicate']).toContain(laterAnswer.body.data[0]?.result);
    expect(await ltvMinor(a.customerId)).toBe(700);
    expect(await ltvMinor(b.customerId)).toBe(95);
  });

  it('two lanes meeting on the same devices in crossed order all answer, each item counted once', async () => {
    const a = await customer();
    let b = await customer();
    while (laneOf(b.customerId, 2) === laneOf(a.customerId, 2)) b = await customer();
    const [d1, d2] = [fingerprint(), fingerprint()];
    const login = (who: { customerId: string }, fp: string) => ({
      id: `login-${randomUUID()}`,
      type: 'login',
      customer_id: who.customerId,
      occurred_at: at(5),
      device: { fingerprint: fp },
    });
    // a logs in on d2 and pays on d1; b logs in on d1 and pays on d2: each lane needs both devices.
    const batches = Array.from({ length: 6 }, () => [
      login(a, d2),
      payment(a, 10, { device: { fingerprint: d1 } }),
      login(b, d1),
      payment(b, 20, { device: { fingerprint: d2 } }),
    ]);
    const lanes = h.withDeps((deps) => ({ ...deps, limits: { ...deps.limits, interactionWriteLanes: 2 } }));
    const token = await h.token('interactions:write');
    const answers = await Promise.all(
      batches.map(async (items) => {
        const res = await lanes.request('/api/v1/interactions', {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ data: items }),
        });
        expect(res.status).toBe(200);
        return ((await res.json()) as { data: Answer[] }).data.map((x) => x.result);
      }),
    );
    expect(answers.flat().every((r) => r === 'recorded')).toBe(true);
    expect(await ltvMinor(a.customerId)).toBe(60);
    expect(await ltvMinor(b.customerId)).toBe(120);
  });

  it('concurrent batches for one customer sum exactly, redelivered items among them counted once', async () => {
    const a = await customer();
    const batches = Array.from({ length: 4 }, (_, b) =>
      Array.from({ length: 25 }, (_, i) => payment(a, 100 * b + i + 1)),
    );
    // Every batch also redelivers the first item of the batch before it.
    const sent = batches.map((batch, b) => [...batch, batches[(b + 3) % 4]?.[0] as Record<string, unknown>]);
    const expected = batches.flat().reduce((sum, p) => sum + (p.amount as number), 0);
    const answers = await Promise.all(sent.map((items) => record(items)));
    const counts = answers
      .flat()
      .reduce<Record<string, number>>((n, x) => ({ ...n, [x.result]: (n[x.result] ?? 0) + 1 }), {});
    expect(counts).toEqual({ recorded: 100, duplicate: 4 });
    expect(await ltvMinor(a.customerId)).toBe(expected);
  });

  it('concurrent graph writes for one customer sum exactly: each locks the customer before it reads', async () => {
    // Straight at the graph: the api's write lanes send one customer's batches one at a time, so
    // only here do two transactions for one customer meet.
    const a = await customer();
    const batches = Array.from({ length: 8 }, (_, b) =>
      Array.from({ length: 5 }, (_, i) => payment(a, 100 * b + i + 1) as unknown as Interaction),
    );
    const expected = batches.flat().reduce((sum, p) => sum + (p as { amount: number }).amount, 0);
    const rules = {
      vipLtvMinor: Number.MAX_SAFE_INTEGER,
      vipBasis: 'measured' as const,
      subscriberAfterPayments: h.graph.config.PERSONA_SUBSCRIBER_AFTER_PAYMENTS,
    };
    const answers = await Promise.all(batches.map((items) => recordInGraph(h.graph, items, rules)));
    expect(answers.flat().filter((x) => x.result !== 'recorded')).toEqual([]);
    expect(await ltvMinor(a.customerId)).toBe(expected);
  });

  it('an out-of-order occurred_at keeps first and last right (logins and card use)', async () => {
    const a = await customer();
    const fp = fingerprint();
    const login = (minutesAgo: number, ip: string) => ({
      id: `login-${randomUUID()}`,
      type: 'login',
      customer_id: a.customerId,
      occurred_at: at(minutesAgo),
      device: { fingerprint: fp, ip, user_agent: `agent ${ip}` },
    });
    const later = login(5, '10.0.0.2');
    const earlier = login(60, '10.0.0.1');
    const middle = login(30, '10.0.0.3');
    await record([later, payment(a, 100, { occurred_at: later.occurred_at })]);
    await record([earlier, payment(a, 100, { occurred_at: earlier.occurred_at })]);
    await record([middle]);
    const [edge] = await h.graph.query<Record<string, unknown>>(
      `MATCH (:Customer {id: $id})-[r:LOGGED_IN_FROM]->(:Device {fingerprint: $fp})
       RETURN r.login_count AS count, r.first_login AS first, r.last_login AS last,
              r.last_seen_ip AS ip, r.last_seen_user_agent AS agent`,
      { id: a.customerId, fp },
    );
    expect(edge).toMatchObject({ count: 3, ip: '10.0.0.2', agent: 'agent 10.0.0.2' });
    expect(Date.parse(edge?.first as string)).toBe(Date.parse(earlier.occurred_at));
    expect(Date.parse(edge?.last as string)).toBe(Date.parse(later.occurred_at));
    const [use] = await h.graph.query<Record<string, unknown>>(
      `MATCH (:Customer {id: $id})-[r:HAS_PAYMENT_METHOD]->(:PaymentMethod {id: $pm})
       RETURN r.first_used AS first, r.last_used AS last`,
      { id: a.customerId, pm: a.cardId },
    );
    expect(Date.parse(use?.last as string)).toBe(Date.parse(later.occurred_at));
    expect(Date.parse(use?.first as string)).toBe(Date.parse(earlier.occurred_at));
  });

  it('a refund or a chargeback takes LTV back', async () => {
    const a = await customer({ ltvMinor: 100 });
    const paid = payment(a, 5000);
    await record([paid, payment(a, 1200)]);
    expect(await ltvMinor(a.customerId)).toBe(6300);
    await record([
      payment(a, 5000, { outcome: 'refunded', transaction_id: 'tx-1' }),
      payment(a, 1200, { outcome: 'charged_back' }),
      payment(a, 999, { outcome: 'declined', decline_code: 'insufficient_funds' }),
    ]);
    expect(await ltvMinor(a.customerId)).toBe(100);
    const context = await restContext(a.customerId);
    expect(context.ltv).toBe(fromMinorUnits(100, currency()));
  });

  it('a login from a new device links it and counts', async () => {
    const a = await customer();
    const fp = fingerprint();
    const login = () => ({
      id: `login-${randomUUID()}`,
      type: 'login',
      customer_id: a.customerId,
      occurred_at: at(1),
      device: { fingerprint: fp, ip: '192.0.2.7' },
    });
    await record([login()]);
    const [first] = await h.graph.query<Record<string, unknown>>(
      `MATCH (:Customer {id: $id})-[r:LOGGED_IN_FROM]->(d:Device {fingerprint: $fp})
       RETURN d.id AS id, d.trust_score AS trust, r.login_count AS count, d.last_seen_ip AS deviceIp`,
      { id: a.customerId, fp },
    );
    expect(first).toMatchObject({ count: 1, deviceIp: null });
    expect(first?.trust).toBeGreaterThan(0);
    await record([login(), login()]);
    const [again] = await h.graph.query<{ count: number }>(
      'MATCH (:Customer {id: $id})-[r:LOGGED_IN_FROM]->(:Device {fingerprint: $fp}) RETURN r.login_count AS count',
      { id: a.customerId, fp },
    );
    expect(again?.count).toBe(3);
    // Linked once: one event for the new link, not one per login.
    const linked = await listCustomerEvents(h.graph, a.customerId, { type: 'DeviceLinked' });
    expect(linked.map((e) => e.payload)).toEqual([{ device_id: first?.id, new_device: true, login_count: 1 }]);
  });

  it('a payment on a device records the card used on it, once per link', async () => {
    const a = await customer();
    const fp = fingerprint();
    await record([payment(a, 100, { device: { fingerprint: fp } }), payment(a, 200, { device: { fingerprint: fp } })]);
    await record([payment(a, 300, { device: { fingerprint: fp }, outcome: 'declined' })]);
    const [used] = await h.graph.query<{ count: number; device: string }>(
      `MATCH (:PaymentMethod {id: $pm})-[u:USED_ON]->(d:Device {fingerprint: $fp})
       RETURN u.use_count AS count, d.id AS device`,
      { pm: a.cardId, fp },
    );
    expect(used?.count).toBe(3);
    const events = await listCustomerEvents(h.graph, a.customerId, { type: 'PaymentMethodUsedOnDevice' });
    expect(events.map((e) => e.payload)).toEqual([
      { payment_method_id: a.cardId, device_id: used?.device, new_device: true },
    ]);
  });

  it('a shipment to a new address adds it once, and matches it however it is written', async () => {
    const a = await customer();
    const street = `${Math.floor(Math.random() * 9000) + 100} Elm Street`;
    const shipment = (address: Record<string, unknown>, minutesAgo: number) => ({
      id: `ship-${randomUUID()}`,
      type: 'shipment',
      customer_id: a.customerId,
      occurred_at: at(minutesAgo),
      address,
    });
    const address = { street1: street, city: 'Springfield', zip_code: 'AB1 2CD', country: 'GB' };
    await record([shipment(address, 30), shipment({ ...address, street1: ` ${street.toUpperCase()} ` }, 40)]);
    await record([shipment({ ...address, zip_code: 'ab1 2cd' }, 10)]);
    const rows = await h.graph.query<Record<string, unknown>>(
      `MATCH (:Customer {id: $id})-[s:SHIPPED_TO]->(a:Address)
       RETURN a.street1 AS street1, s.first_shipped AS first, s.last_shipped AS last`,
      { id: a.customerId },
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.street1).toBe(street);
    expect(Date.parse(rows[0]?.last as string) - Date.parse(rows[0]?.first as string)).toBeGreaterThanOrEqual(
      29 * 60_000,
    );
    expect(await listCustomerEvents(h.graph, a.customerId, { type: 'AddressAdded' })).toHaveLength(1);
  });

  it('segment New becomes Subscriber after the configured number of succeeded payments; VIP is kept', async () => {
    const n = h.graph.config.PERSONA_SUBSCRIBER_AFTER_PAYMENTS;
    const a = await customer();
    const vip = await customer({ segment: 'VIP' });
    await record(Array.from({ length: n - 1 }, () => payment(a, 10)));
    expect((await restContext(a.customerId)).segment).toBe('New');
    await record([
      payment(a, 10, { outcome: 'declined' }),
      payment(a, 10),
      ...Array.from({ length: n }, () => payment(vip, 10)),
    ]);
    expect((await restContext(a.customerId)).segment).toBe('Subscriber');
    expect((await restContext(vip.customerId)).segment).toBe('VIP');
    const [update] = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(update?.payload).toMatchObject({ changes: { segment: { from: 'New', to: 'Subscriber' } } });
    expect(update?.payload.reason).toContain(`Subscriber after ${n} succeeded payments`);
  });

  it('ltv_feedback sets predicted_ltv apart from the measured LTV; the latest prediction wins', async () => {
    const a = await customer({ ltvMinor: 700 });
    const feedback = (value: string, minutesAgo: number) => ({
      id: `oracle-${randomUUID()}`,
      type: 'ltv_feedback',
      customer_id: a.customerId,
      occurred_at: at(minutesAgo),
      predicted_ltv: value,
    });
    // Only The Oracle's scope (or ops) may set a prediction: it can make a customer VIP.
    const oracle = 'interactions:write ltv:write';
    expect(await record([feedback('250.5', 5)])).toEqual([
      expect.objectContaining({ result: 'invalid', field: 'data[0].type' }),
    ]);
    const answers = await record([feedback('250.5', 5), feedback('12.345', 1)], oracle);
    expect(answers.map((x) => [x.result, x.field ?? null])).toEqual([
      ['recorded', null],
      ['invalid', 'data[1].predicted_ltv'],
    ]);
    // An older prediction arriving late does not replace the newer one.
    await record([feedback('999', 30)], oracle);
    // A time in the future would pin "the latest prediction" for good: refused.
    expect(await record([feedback('5000', -60)], oracle)).toEqual([
      expect.objectContaining({ result: 'invalid', field: 'data[0].occurred_at' }),
    ]);
    const [row] = await h.graph.query<{ ltv: number; predicted: number }>(
      'MATCH (c:Customer {id: $id}) RETURN c.ltv AS ltv, c.predicted_ltv AS predicted',
      { id: a.customerId },
    );
    expect(row).toEqual({ ltv: 700, predicted: 25050 });
    // Both transports show it beside the measured LTV, never added to it.
    const context = await restContext(a.customerId);
    expect(context).toMatchObject({
      ltv: fromMinorUnits(700, currency()),
      predicted_ltv: fromMinorUnits(25050, currency()),
    });
    const md = bearer(await h.token('context:read'));
    const overGrpc = await call(client, 'GetCustomerContext', { customer_id: a.customerId }, md);
    expect(overGrpc.res).toMatchObject({ ltv: context.ltv, predicted_ltv: context.predicted_ltv });
    const updates = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(updates.map((e) => e.payload.changes)).toEqual([
      {
        predicted_ltv_minor: { from: null, to: 25050 },
        predicted_ltv: { from: null, to: fromMinorUnits(25050, currency()) },
      },
    ]);
  });

  it('refuses an erased customer per item, and a bad envelope or scope as a whole', async () => {
    const a = await customer();
    await eraseCustomer(h.graph, a.customerId);
    expect((await record([payment(a, 100)]))[0]).toMatchObject({ result: 'invalid', field: 'data[0].customer_id' });
    expect(await ltvMinor(a.customerId)).toBeNull();
    expect((await post({ data: [] })).json.field).toBe('data');
    expect((await post({ data: Array.from({ length: 501 }, () => 1) })).status).toBe(400);
    expect((await post({ items: [] })).status).toBe(400);
    expect((await post({ data: [payment(a, 1)] }, 'context:read')).status).toBe(403);
    expect((await post({ data: [payment(a, 1)] }, 'ops')).status).toBe(200);
  });

  it('takes a full batch of 500 items with devices and addresses, larger than any other body may be', async () => {
    const a = await customer();
    const fp = fingerprint();
    const items = Array.from({ length: 500 }, (_, k) =>
      payment(a, 1, {
        transaction_id: `txn-${randomUUID()}`,
        device: { fingerprint: fp, ip: '203.0.113.7', user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Persona-test' },
        shipping_address: {
          street1: `${k % 3} Long Street`,
          city: 'Springfield',
          zip_code: '12345',
          country: 'US',
          type: 'shipping',
        },
      }),
    );
    const body = JSON.stringify({ data: items });
    let limits = { maxBodyBytes: 0, maxInteractionsBodyBytes: 0 };
    h.withDeps((deps) => {
      limits = deps.limits;
      return deps;
    });
    // Bigger than every other route takes, within the interactions' own limit.
    expect(body.length).toBeGreaterThan(limits.maxBodyBytes);
    expect(body.length).toBeLessThan(limits.maxInteractionsBodyBytes);
    const answers = await record(items);
    expect(answers.filter((x) => x.result === 'recorded')).toHaveLength(500);
    expect(await ltvMinor(a.customerId)).toBe(500);
    // The same size anywhere else is refused before it is read, naming the body.
    const elsewhere = await h.app.request(`/api/v1/customers/${a.customerId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${await h.token('ops')}`, 'content-type': 'application/json' },
      body,
    });
    expect(elsewhere.status).toBe(413);
    expect(((await elsewhere.json()) as { field: string }).field).toBe('body');
    // And past its own limit, a batch is refused too.
    const huge = JSON.stringify({ data: items, pad: 'x'.repeat(limits.maxInteractionsBodyBytes) });
    expect((await post(JSON.parse(huge))).status).toBe(413);
  });

  it('refuses the ids Persona records its own recovery charges under, except from ops', async () => {
    const a = await customer();
    const answers = await record([payment(a, 5, { id: 'recovery:pay-1' }), payment(a, 7, { id: 'Recovery:pay-2' })]);
    expect(answers.map((x) => [x.result, x.field])).toEqual([
      ['invalid', 'data[0].id'],
      ['invalid', 'data[1].id'],
    ]);
    expect(await ltvMinor(a.customerId)).toBe(0);
    // Ops may, to count a recovery whose record was skipped (docs/runbook.md); once, like any id.
    const byOps = await post({ data: [payment(a, 5, { id: 'recovery:pay-1' })] }, 'ops');
    expect(byOps.json.data).toEqual([
      {
        id: 'recovery:pay-1',
        result: 'recorded',
        consistency_token: expect.stringMatching(new RegExp(`^c:${a.customerId}:\\d+$`)),
      },
    ]);
    expect(await ltvMinor(a.customerId)).toBe(5);
  });

  it('the history says what changed in words; the LTV moving alone is in the log, not the history', async () => {
    const a = await customer();
    // The third succeeded payment makes a New customer a Subscriber: a change the history keeps.
    await record([payment(a, 1000), payment(a, 1000), payment(a, 2200)]);
    await record([payment(a, 500)]);
    const res = await h.app.request(`/api/v1/customers/${a.customerId}/events`, {
      headers: { authorization: `Bearer ${await h.token('ops')}` },
    });
    const history = (await res.json()) as { data: { type: string; summary: string }[] };
    const updates = history.data.filter((e) => e.type === 'CustomerProfileUpdated');
    const money = (minor: number) => `${fromMinorUnits(minor, currency())} ${currency()}`;
    expect(updates).toHaveLength(1);
    expect(updates[0]?.summary).toContain(`lifetime value ${money(0)} → ${money(4200)}`);
    expect(updates[0]?.summary).toContain('3 succeeded payments recorded');
    expect(updates[0]?.summary).toContain('Subscriber');
    // Both are in the log (the feed, Kafka): the second is transient, pruned once every consumer has it.
    const logged = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(logged.map((e) => e.payload.changes)).toEqual([
      expect.not.objectContaining({ segment: expect.anything() }),
      expect.objectContaining({ segment: { from: 'New', to: 'Subscriber' } }),
    ]);
  });
});

describe('the VIP rule on the predicted LTV (PERSONA_VIP_BASIS)', () => {
  const feedback = (customerId: string, value: string) => ({
    id: `oracle-${randomUUID()}`,
    type: 'ltv_feedback' as const,
    customer_id: customerId,
    occurred_at: at(0),
    predicted_ltv: value,
  });
  const threshold = () => h.graph.config.vipLtvMinor;
  const rules = (vipBasis: 'measured' | 'predicted' | 'either') => ({
    vipLtvMinor: threshold(),
    vipBasis,
    subscriberAfterPayments: h.graph.config.PERSONA_SUBSCRIBER_AFTER_PAYMENTS,
  });
  const policy = (vipBasis: 'measured' | 'predicted' | 'either') => ({
    trustThreshold: h.graph.config.PERSONA_TRUST_THRESHOLD,
    vipLtvMinor: threshold(),
    vipBasis,
  });

  it('with basis predicted, a prediction at the threshold makes the customer VIP, and says so', async () => {
    const a = await customer({ ltvMinor: 0 });
    const atThreshold = fromMinorUnits(threshold(), currency());
    const [answer] = await recordInGraph(h.graph, [feedback(a.customerId, atThreshold)], rules('predicted'));
    expect(answer).toEqual({ result: 'recorded' });
    expect((await customerContext(h.graph, a.customerId, policy('predicted'))).is_vip).toBe(true);
    expect((await customerContext(h.graph, a.customerId, policy('either'))).is_vip).toBe(true);
    // The measured rule does not see a prediction: the two values are never mixed.
    expect((await customerContext(h.graph, a.customerId, policy('measured'))).is_vip).toBe(false);
    const [update] = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(update?.payload).toMatchObject({ changes: { is_vip: { from: false, to: true } } });
    expect(update?.payload.reason).toContain('predicted lifetime value reached the VIP threshold');
  });

  it('with basis measured, a prediction moves no VIP flag; paying past the threshold does', async () => {
    const a = await customer({ ltvMinor: 0 });
    const high = fromMinorUnits(threshold() * 2, currency());
    await recordInGraph(h.graph, [feedback(a.customerId, high)], rules('measured'));
    const [first] = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(first?.payload.changes).not.toHaveProperty('is_vip');
    const pay = payment(a, threshold()) as unknown as Interaction;
    await recordInGraph(h.graph, [pay], rules('measured'));
    expect((await customerContext(h.graph, a.customerId, policy('measured'))).is_vip).toBe(true);
  });

  it('with basis either, one batch of a payment and a prediction reports one VIP change', async () => {
    const a = await customer({ ltvMinor: 0 });
    const pay = payment(a, threshold()) as unknown as Interaction;
    const high = fromMinorUnits(threshold(), currency());
    await recordInGraph(h.graph, [pay, feedback(a.customerId, high)], rules('either'));
    const updates = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(updates).toHaveLength(1);
    expect(updates[0]?.payload).toMatchObject({
      changes: { is_vip: { from: false, to: true }, ltv_minor: { from: 0, to: threshold() } },
    });
  });
});

describe('gRPC RecordInteractions', () => {
  it('a customer crossing the VIP threshold by paying is VIP in the next context read over gRPC and REST', async () => {
    const threshold = h.graph.config.vipLtvMinor;
    const a = await customer({ ltvMinor: 0 });
    const md = bearer(await h.token('interactions:write context:read'));
    const before = await call(client, 'GetCustomerContext', { customer_id: a.customerId }, md);
    expect(before.res?.is_vip).toBe(false);
    const item = payment(a, threshold);
    const recorded = await call(client, 'RecordInteractions', { data: [{ ...item, amount: String(threshold) }] }, md);
    expect(recorded.code).toBe(0);
    // Its token names the customer's write (api/consistency.ts).
    const [seq] = await h.graph.query<{ seq: number }>('MATCH (c:Customer {id: $id}) RETURN c.event_seq AS seq', {
      id: a.customerId,
    });
    expect(recorded.res?.data).toEqual([
      { id: item.id, result: 'recorded', field: '', problem: '', consistency_token: `c:${a.customerId}:${seq?.seq}` },
    ]);
    const after = await call(client, 'GetCustomerContext', { customer_id: a.customerId }, md);
    expect(after.res?.is_vip).toBe(true);
    expect((await restContext(a.customerId)).is_vip).toBe(true);
    const [update] = await listCustomerEvents(h.graph, a.customerId, { type: 'CustomerProfileUpdated' });
    expect(update?.payload).toMatchObject({ changes: { is_vip: { from: false, to: true } } });
  });

  it('answers an invalid item by its field and refuses an empty batch with INVALID_ARGUMENT', async () => {
    const a = await customer();
    const md = bearer(await h.token('interactions:write'));
    const bad = await call(
      client,
      'RecordInteractions',
      {
        data: [
          { ...payment(a, 1), amount: '1', outcome: 'lost' },
          { ...payment(a, 7), amount: '7' },
        ],
      },
      md,
    );
    expect(((bad.res as { data: Answer[] }).data ?? []).map((x) => [x.result, x.field])).toEqual([
      ['invalid', 'data[0].outcome'],
      ['recorded', ''],
    ]);
    expect(await ltvMinor(a.customerId)).toBe(7);
    const empty = await call(client, 'RecordInteractions', { data: [] }, md);
    expect(empty).toMatchObject({ code: 3, field: 'data' });
    const denied = await call(
      client,
      'RecordInteractions',
      { data: [payment(a, 1)] },
      bearer(await h.token('context:read')),
    );
    expect(denied.code).toBe(7);
  });
});
