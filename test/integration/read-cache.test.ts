/**
 * The agents' read cache (api/readCache.ts) against the real services, across processes: an
 * in-process api (A, the harness, with its own worker and the event sequencer, which sends the
 * invalidations to this run's topic on the stack's Kafka), three api processes (B reads the
 * invalidation topic; D, without Kafka, polls the numbered log; C polls only every 5 minutes, so
 * its cache goes stale on purpose) and a worker process on B's task queue. Each test proves the
 * cache was in play (hits on /metrics, or an answer older than the graph), so it fails if the
 * cache were removed or never invalidated.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { readTx, setCustomerStatusTx, writeTx, type Graph } from '../../graph';
import { readCustomerSnapshot, type CustomerSnapshot } from '../../graph/context';
import { status as grpcStatus } from '@grpc/grpc-js';
import { startHarness, type Harness } from '../support/api';
import { seedCustomer } from '../support/builders';
import { overHttp, send } from '../support/http';
import { bearer, call, personaClient } from '../support/grpc';
import { metricValue, scrape } from '../support/observability';
import {
  startApiProcess,
  startWorkerProcess,
  stopProcess,
  type ApiProcess,
  type WorkerProcess,
} from '../support/processes';
import { until } from '../support/wait';
import { createKafkaProducer, type KafkaProducer } from '../../clients/kafka';
import { FEED_LAG_MARGIN_MS, loadSettings, WRITE_TX_TIMEOUT_MS } from '../../config/env';
import { localKafkaBrokers } from '../../stack/install';
import { topicsForTest } from '../support/kafka';

/** The feed's lag of every api here, the least config accepts: a reader by stamp passes what commits later. */
const FEED_LAG_MS = WRITE_TX_TIMEOUT_MS + FEED_LAG_MARGIN_MS;

/**
 * How stale a cached answer may be after a write of another process (PERSONA_READ_CACHE_FRESH_MS
 * is 1 s; the sequencer numbers every 20 ms), plus what two busy cores add.
 */
const BOUND_MS = 1000;
const SLACK_MS = 2000;

/** Neo4j's clock, the one events are stamped by. */
const neo4jNowMs = async (tx: ManagedTransaction) =>
  Number((await tx.run('RETURN datetime.realtime().epochMillis AS ms')).records[0]?.get('ms'));

let h: Harness;
let b: ApiProcess;
let c: ApiProcess;
let d: ApiProcess;
let worker: WorkerProcess;
let agent: string;
let producer: KafkaProducer;
const taskQueue = `read-cache-${randomUUID()}`;
const apiEnv = { TEMPORAL_TASK_QUEUE: taskQueue, PERSONA_EVENTS_FEED_LAG_MS: String(FEED_LAG_MS) };

beforeAll(async () => {
  const brokers = localKafkaBrokers(loadSettings());
  const topics = await topicsForTest(brokers);
  producer = createKafkaProducer({ kafkaBrokers: brokers }, 'read-cache-sequencer');
  vi.stubEnv('PERSONA_EVENTS_FEED_LAG_MS', apiEnv.PERSONA_EVENTS_FEED_LAG_MS);
  h = await startHarness({ invalidations: { producer, topic: topics.PERSONA_KAFKA_INVALIDATIONS_TOPIC as string } });
  agent = await h.token('context:read devices:write fraud:report customers:write');
  const { kafkaBrokers: _, ...topicEnv } = topics;
  const kafkaEnv = {
    KAFKA_BROKERS: brokers.join(','),
    ...Object.fromEntries(Object.entries(topicEnv).map(([k, v]) => [k, String(v)])),
  };
  // Each is kept as it comes up, so that one failing to start leaves none of the others running.
  const started = await Promise.allSettled([
    startApiProcess({ ...apiEnv, ...kafkaEnv }).then((p) => (b = p)),
    startApiProcess({
      ...apiEnv,
      PERSONA_READ_CACHE_POLL_MS: '300000',
      PERSONA_READ_CACHE_FRESH_MS: '900000',
    }).then((p) => (c = p)),
    startApiProcess(apiEnv).then((p) => (d = p)),
    // The harness numbers the log and sends the invalidations: this worker only runs workflows.
    startWorkerProcess({ TEMPORAL_TASK_QUEUE: taskQueue, PERSONA_EVENT_SEQUENCER: 'off' }).then((p) => (worker = p)),
  ]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
}, 180_000);

afterAll(async () => {
  await Promise.all([b, c, d, worker].filter(Boolean).map((p) => stopProcess(p)));
  await h?.close();
  await producer?.close();
  vi.unstubAllEnvs();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  token: string | null;
}

/** A request to the in-process api (A) or an api process, as the agent; it always says its body is JSON. */
async function rest(
  to: Harness | ApiProcess,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await send('app' in to ? to.app : overHttp(to.url), method, path, {
    token: agent,
    body: options.body,
    headers: { 'content-type': 'application/json', ...options.headers },
    empty: {},
  });
  return { status: res.status, body: res.json, token: res.headers.get('x-persona-consistency') };
}

const context = (to: Harness | ApiProcess, id: string, token?: string) =>
  rest(to, 'GET', `/api/v1/customers/${id}/context`, token ? { headers: { 'x-persona-consistency': token } } : {});

const hits = async (p: ApiProcess) => metricValue(await scrape(p.url), 'persona_read_cache_hits_total');

/**
 * An active customer with two active cards (the first the default) and a device they earned 0.99
 * on, whose own trust (a device-level signal) caps them at 0.5: raising the device's trust is what
 * makes it one of their trusted devices.
 */
async function customer(g: Graph = h.graph) {
  const { customerId, cards, deviceId } = await seedCustomer(g, {
    segment: 'Subscriber',
    cards: 2,
    device: { trust_score: 0.99 },
  });
  await writeTx(g, (tx) => tx.run('MATCH (d:Device {id: $id}) SET d.trust_score = 0.5', { id: deviceId }));
  return { customerId, cards, deviceId };
}

/** Reads until the cache answers (a hit moved the counter), so what follows reads a cached entry. */
async function warm(p: ApiProcess, id: string): Promise<Answer> {
  const first = await context(p, id);
  expect(first.status).toBe(200);
  await until(async () => {
    const before = await hits(p);
    await context(p, id);
    return (await hits(p)) > before;
  }, 20_000);
  return first;
}

describe('the read cache', () => {
  it('answers a write through the same api at once, from memory', async () => {
    const { customerId, cards, deviceId } = await customer();
    expect((await context(h, customerId)).body.active_payment_methods).toHaveLength(2);
    // The first fill may be overtaken by the tail bringing the customer's own creation: not kept.
    await until(async () => {
      const before = h.deps.readCache.stats.hits;
      expect((await context(h, customerId)).status).toBe(200);
      return h.deps.readCache.stats.hits === before + 1;
    }, 20_000);

    const trust = await rest(h, 'PUT', `/api/v1/devices/${deviceId}/trust-score`, { body: { trust_score: 0.95 } });
    expect(trust.status).toBe(200);
    const after = await context(h, customerId);
    expect(after.body.trusted_devices).toMatchObject([{ device_id: deviceId, trust_score: 0.95 }]);

    const off = await rest(h, 'POST', `/api/v1/payment-methods/${cards[1]}/inactivate`, {
      body: { reason: 'read-after-write test' },
    });
    expect(off.status).toBe(200);
    expect((await context(h, customerId)).body.active_payment_methods).toEqual([cards[0]]);
    const checkout = await rest(h, 'GET', `/api/v1/customers/${customerId}/checkout-options`);
    expect((checkout.body.data as { id: string }[]).map((m) => m.id)).toEqual([cards[0]]);
  });

  it('adds a device an interaction linked in place, as a fill reads it, here and on a topic reader', async () => {
    const { customerId, cards } = await customer();
    const writer = await h.token('interactions:write');
    await warm(b, customerId);
    await until(async () => (await h.deps.readCache.read(customerId, 1000)).from === 'memory', 20_000);
    const before = await scrape(b.url);
    const [appliedHere, appliedB, droppedB] = [
      h.deps.readCache.stats.applied,
      metricValue(before, 'persona_read_cache_applied_total'),
      metricValue(before, 'persona_read_cache_invalidations_total'),
    ];
    const fingerprints = [`fp-${randomUUID()}`, `fp-${randomUUID()}`];
    const at = new Date().toISOString();
    const recorded = await h.app.request('/api/v1/interactions', {
      method: 'POST',
      headers: { authorization: `Bearer ${writer}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        data: [
          {
            id: `login-${randomUUID()}`,
            type: 'login',
            customer_id: customerId,
            occurred_at: at,
            device: { fingerprint: fingerprints[0] },
          },
          {
            id: `pay-${randomUUID()}`,
            type: 'payment',
            customer_id: customerId,
            occurred_at: at,
            payment_method_id: cards[0],
            amount: 1250,
            currency: h.graph.policy.reportingCurrency,
            outcome: 'succeeded',
            device: { fingerprint: fingerprints[1] },
          },
        ],
      }),
    });
    expect(recorded.status).toBe(200);
    // Here (this api's own commit): from memory, the same as Neo4j's answer now.
    const held = await h.deps.readCache.read(customerId, 1000);
    expect(held.from).toBe('memory');
    const graph = await readCustomerSnapshot(h.graph, customerId);
    const byId = (s: CustomerSnapshot) => [...s.devices].sort((x, y) => x.device_id.localeCompare(y.device_id));
    // The login linked its device; a payment's device is the card's (USED_ON), not a login edge.
    expect(graph.devices.map((d) => d.fingerprint)).toContain(fingerprints[0]);
    expect(graph.devices).toHaveLength(2);
    expect(graph.ltvMinor).toBe(1250);
    expect(byId(held.snapshot)).toEqual(byId(graph));
    expect(held.snapshot.seq).toBe(graph.seq);
    expect(h.deps.readCache.stats.applied).toBeGreaterThan(appliedHere);
    // The device rode in the event's cache hint, never in its payload (the feed, history, export).
    const [link] = await h.graph.query<{ payload: string; cache: string }>(
      `MATCH (e:Event {customer_id: $id, type: 'DeviceLinked'}) WHERE e.payload CONTAINS $deviceId
       RETURN e.payload AS payload, e.cache AS cache`,
      { id: customerId, deviceId: held.snapshot.devices.find((d) => d.fingerprint === fingerprints[0])?.device_id },
    );
    expect(link?.payload).not.toContain(fingerprints[0]);
    expect(link?.cache).toContain(fingerprints[0]);
    // B heard of it from the topic and applied it too: its next read is a hit, not a fill.
    await until(
      async () => metricValue(await scrape(b.url), 'persona_read_cache_applied_total') >= appliedB + 2,
      BOUND_MS + SLACK_MS,
    );
    const [hitsBefore, missesBefore] = [
      await hits(b),
      metricValue(await scrape(b.url), 'persona_read_cache_misses_total'),
    ];
    expect((await context(b, customerId)).status).toBe(200);
    expect(await hits(b)).toBe(hitsBefore + 1);
    expect(metricValue(await scrape(b.url), 'persona_read_cache_invalidations_total')).toBe(droppedB);
    expect(metricValue(await scrape(b.url), 'persona_read_cache_misses_total')).toBe(missesBefore);
  });

  it('hears of another api’s write within the bound', async () => {
    const { customerId, cards } = await customer();
    await warm(b, customerId);
    const off = await rest(h, 'POST', `/api/v1/payment-methods/${cards[0]}/inactivate`, {
      body: { reason: 'cross-process test' },
    });
    expect(off.status).toBe(200);
    const answered = Date.now();
    await until(async () => {
      const methods = (await context(b, customerId)).body.active_payment_methods as string[];
      return !methods.includes(cards[0] as string);
    }, BOUND_MS + SLACK_MS);
    console.log(`api B dropped the inactivated card ${Date.now() - answered} ms after api A answered`);
  });

  it('never serves a suspension by the worker stale past the bound', async () => {
    const { customerId, deviceId } = await customer();
    await warm(b, customerId);
    // A reader hammers B throughout; each answer is kept with the time its request began.
    const answers: { at: number; status: string }[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const at = Date.now();
        const res = await context(b, customerId);
        if (res.status === 200) answers.push({ at, status: res.body.status as string });
      }
    })();
    const reported = await rest(b, 'POST', '/api/v1/fraud-outcomes', {
      body: {
        outcome_id: `ato-${randomUUID()}`,
        outcome: 'account_takeover',
        customer_id: customerId,
        device_id: deviceId,
      },
    });
    expect(reported.status).toBe(202);
    // The moment the test sees the suspension committed (its own read of the graph).
    let committedBy = 0;
    await until(async () => {
      const rows = await h.graph.query('MATCH (c:Customer {id: $id}) RETURN c.status AS s', { id: customerId });
      committedBy = Date.now();
      return rows[0]?.s === 'suspended';
    }, 60_000);
    await until(async () => answers.some((a) => a.at > committedBy && a.status === 'suspended'), BOUND_MS + SLACK_MS);
    await sleep(BOUND_MS);
    reading = false;
    await reader;
    const staleLate = answers.filter((a) => a.at > committedBy + BOUND_MS && a.status !== 'suspended');
    expect(staleLate).toEqual([]);
    const firstSuspended = answers.find((a) => a.status === 'suspended');
    console.log(
      `api B answered suspended ${(firstSuspended?.at ?? NaN) - committedBy} ms after the test saw the commit ` +
        `(${answers.length} reads)`,
    );
    expect(answers.filter((a) => a.at < committedBy - 1000).every((a) => a.status === 'active')).toBe(true);
  });

  // An event is stamped when it is appended, not when its transaction commits, and Neo4j checks
  // timeouts only every 2 s and never interrupts a commit: a reader going by the stamp would pass
  // this one. Held open past the change feed's lag (12 s here), it is still numbered when it commits.
  it('hears of a write whose transaction stayed open past the feed’s lag, by topic and by poll', async () => {
    const { customerId } = await customer();
    await Promise.all([warm(b, customerId), warm(d, customerId)]);
    const session = h.graph.driver.session({ database: h.graph.database, defaultAccessMode: neo4j.session.WRITE });
    try {
      const tx = session.beginTransaction({ timeout: 120_000 });
      await setCustomerStatusTx(tx as unknown as ManagedTransaction, customerId, 'suspended', 'CustomerSuspended', {
        reason: 'held transaction test',
      });
      const stamped = await neo4jNowMs(tx as unknown as ManagedTransaction);
      // Meanwhile other writes are numbered and sent, and the caches keep answering from memory.
      const other = await customer();
      await until(async () => (await readTx(h.graph, neo4jNowMs)) > stamped + FEED_LAG_MS + 1000, 60_000);
      // Both still hold the customer (read until each answers from memory), as it was.
      for (const p of [b, d]) expect((await warm(p, customerId)).body.status).toBe('active');
      expect((await context(b, other.customerId)).status).toBe(200);
      await tx.commit();
    } finally {
      await session.close();
    }
    const committed = Date.now();
    await Promise.all(
      [b, d].map((p) =>
        until(async () => (await context(p, customerId)).body.status === 'suspended', BOUND_MS + SLACK_MS),
      ),
    );
    console.log(`api B (topic) and D (poll) saw the late commit within ${Date.now() - committed} ms`);
  });

  it('honours a write’s consistency token on another api whose cache is behind', async () => {
    const { customerId, deviceId } = await customer();
    await warm(c, customerId);
    const trust = await rest(h, 'PUT', `/api/v1/devices/${deviceId}/trust-score`, { body: { trust_score: 0.97 } });
    expect(trust.token).toMatch(/^d:/);
    // C polls every 5 minutes: without the token it still answers from its older copy.
    const behind = await context(c, customerId);
    expect(behind.body.trusted_devices).toEqual([]);
    const caught = await context(c, customerId, trust.token as string);
    expect(caught.body.trusted_devices).toMatchObject([{ device_id: deviceId, trust_score: 0.97 }]);

    const { cards } = { cards: (behind.body.active_payment_methods as string[]).slice() };
    const off = await rest(h, 'POST', `/api/v1/payment-methods/${cards[0]}/inactivate`, {
      body: { reason: 'token test' },
    });
    expect(off.token).toMatch(new RegExp(`^c:${customerId}:\\d+$`));
    expect((await context(c, customerId, off.token as string)).body.active_payment_methods).not.toContain(cards[0]);
    // gRPC: min_version, the same rule.
    const client = personaClient(c.grpcAddress);
    try {
      const viaGrpc = await call(
        client,
        'GetCustomerContext',
        { customer_id: customerId, min_version: trust.token },
        bearer(agent),
      );
      expect(viaGrpc.res?.trusted_devices).toMatchObject([{ device_id: deviceId, trust_score: 0.97 }]);
      const badGrpc = await call(
        client,
        'GetCustomerContext',
        { customer_id: customerId, min_version: 'latest' },
        bearer(agent),
      );
      expect(badGrpc).toMatchObject({ code: grpcStatus.INVALID_ARGUMENT, field: 'min_version' });
      // A token names its customer: another's is refused, not compared with this one's writes.
      const other = await customer();
      const foreignGrpc = await call(
        client,
        'GetCustomerContext',
        { customer_id: other.customerId, min_version: off.token },
        bearer(agent),
      );
      expect(foreignGrpc.code).toBe(grpcStatus.FAILED_PRECONDITION);
    } finally {
      client.close();
    }
    // A token is checked like any field.
    const bad = await context(c, customerId, 'c:latest');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('x-persona-consistency');
    const stranger = await customer();
    const foreign = await context(c, stranger.customerId, off.token as string);
    expect(foreign.status).toBe(409);
    expect(JSON.stringify(foreign.body)).toContain('does not reach this consistency token');
    expect(JSON.stringify(foreign.body)).not.toContain(customerId);
    // One ahead of every write the customer has is refused too, never answered with what is behind it.
    const [seq] = await h.graph.query<{ seq: number }>('MATCH (c:Customer {id: $id}) RETURN c.event_seq AS seq', {
      id: customerId,
    });
    const ahead = await context(c, customerId, `c:${customerId}:${(seq?.seq ?? 0) + 1000}`);
    expect(ahead.status).toBe(409);
    expect(JSON.stringify(ahead.body)).toContain('does not reach this consistency token');
  });
});
