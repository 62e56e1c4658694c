/**
 * The agents' read cache (api/readCache.ts) against the real services, across processes: an
 * in-process api (A, the harness, with its own worker), two api processes (B tails the event log
 * at its defaults; C polls only every 5 minutes, so its cache goes stale on purpose) and a worker
 * process on B's task queue. Each test proves the cache was in play (hits on /metrics, or an
 * answer older than the graph), so it fails if the cache were removed or never invalidated.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { addPaymentMethod, createCustomer, linkDevice, setCustomerStatusTx, writeTx, type Graph } from '../../graph';
import { status as grpcStatus } from '@grpc/grpc-js';
import { startHarness, type Harness } from '../support/api';
import { bearer, call, personaClient } from '../support/grpc';
import { cardInput } from '../support/graph';
import { metricValue, scrape } from '../support/observability';
import {
  startApiProcess,
  startWorkerProcess,
  stopProcess,
  type ApiProcess,
  type WorkerProcess,
} from '../support/processes';
import { until } from '../support/wait';

/**
 * How stale a cached answer may be after a write of another process (PERSONA_READ_CACHE_FRESH_MS
 * and the sweep's interval are 1 s; the poll is 50 ms), plus what two busy cores add to a poll.
 */
const BOUND_MS = 1000;
const SLACK_MS = 2000;
/** B's poll reads back this far (PERSONA_READ_CACHE_OVERLAP_MS's default). */
const OVERLAP_MS = 300;

/** Neo4j's clock, the one events are stamped by. */
const neo4jNowMs = async (tx: ManagedTransaction) =>
  Number((await tx.run('RETURN datetime.realtime().epochMillis AS ms')).records[0]?.get('ms'));

let h: Harness;
let b: ApiProcess;
let c: ApiProcess;
let worker: WorkerProcess;
let agent: string;
const taskQueue = `read-cache-${randomUUID()}`;

beforeAll(async () => {
  h = await startHarness();
  agent = await h.token('context:read devices:write fraud:report customers:write');
  // Each is kept as it comes up, so that one failing to start leaves none of the others running.
  const started = await Promise.allSettled([
    startApiProcess({ TEMPORAL_TASK_QUEUE: taskQueue }).then((p) => (b = p)),
    startApiProcess({
      TEMPORAL_TASK_QUEUE: taskQueue,
      PERSONA_READ_CACHE_POLL_MS: '300000',
      PERSONA_READ_CACHE_FRESH_MS: '900000',
    }).then((p) => (c = p)),
    startWorkerProcess({ TEMPORAL_TASK_QUEUE: taskQueue }).then((p) => (worker = p)),
  ]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
}, 180_000);

afterAll(async () => {
  await Promise.all([b, c, worker].filter(Boolean).map((p) => stopProcess(p)));
  await h?.close();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  token: string | null;
}

/** A request to the in-process api (A) or an api process. */
async function send(
  to: Harness | ApiProcess,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const init = {
    method,
    headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json', ...options.headers },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  };
  const res = 'app' in to ? await to.app.request(path, init) : await fetch(`${to.url}${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    token: res.headers.get('x-persona-consistency'),
  };
}

const context = (to: Harness | ApiProcess, id: string, token?: string) =>
  send(to, 'GET', `/api/v1/customers/${id}/context`, token ? { headers: { 'x-persona-consistency': token } } : {});

const hits = async (p: ApiProcess) => metricValue(await scrape(p.url), 'persona_read_cache_hits_total');
const caughtBySweep = async (p: ApiProcess) =>
  metricValue(await scrape(p.url), 'persona_read_cache_sweep_caught_total');
/** When the last successful poll of p's tail began, at the latest (this machine's clock). */
const lastPollBegan = async (p: ApiProcess) => {
  const before = Date.now();
  return before - metricValue(await scrape(p.url), 'persona_read_cache_tail_age_seconds') * 1000;
};

/**
 * An active customer with two active cards (the first the default) and a device they earned 0.99
 * on, whose own trust (a device-level signal) caps them at 0.5: raising the device's trust is what
 * makes it one of their trusted devices.
 */
async function customer(g: Graph = h.graph) {
  const customerId = randomUUID();
  await createCustomer(g, { id: customerId, segment: 'Subscriber' });
  const first = await addPaymentMethod(g, customerId, cardInput());
  const second = await addPaymentMethod(g, customerId, cardInput());
  const device = await linkDevice(g, customerId, { fingerprint: `fp-${randomUUID()}`, trust_score: 0.99 });
  await writeTx(g, (tx) => tx.run('MATCH (d:Device {id: $id}) SET d.trust_score = 0.5', { id: device.id }));
  return { customerId, cards: [first.id, second.id], deviceId: device.id };
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

    const trust = await send(h, 'PUT', `/api/v1/devices/${deviceId}/trust-score`, { body: { trust_score: 0.95 } });
    expect(trust.status).toBe(200);
    const after = await context(h, customerId);
    expect(after.body.trusted_devices).toMatchObject([{ device_id: deviceId, trust_score: 0.95 }]);

    const off = await send(h, 'POST', `/api/v1/payment-methods/${cards[1]}/inactivate`, {
      body: { reason: 'read-after-write test' },
    });
    expect(off.status).toBe(200);
    expect((await context(h, customerId)).body.active_payment_methods).toEqual([cards[0]]);
    const checkout = await send(h, 'GET', `/api/v1/customers/${customerId}/checkout-options`);
    expect((checkout.body.data as { id: string }[]).map((m) => m.id)).toEqual([cards[0]]);
  });

  it('hears of another api’s write within the bound', async () => {
    const { customerId, cards } = await customer();
    await warm(b, customerId);
    const off = await send(h, 'POST', `/api/v1/payment-methods/${cards[0]}/inactivate`, {
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
    const reported = await send(b, 'POST', '/api/v1/fraud-outcomes', {
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

  it('catches on its sweep an event committed long after it was stamped', async () => {
    const { customerId } = await customer();
    const marker = (await customer()).customerId;
    await warm(b, customerId);
    const caughtBefore = await caughtBySweep(b);
    // B's fast poll moves past a fresh event: the marker's suspension commits, and a poll of B's
    // that began after that commit succeeds.
    const markerStamp = await writeTx(h.graph, async (tx) => {
      await setCustomerStatusTx(tx, marker, 'suspended', 'CustomerSuspended', { reason: 'moves the tail on' });
      return neo4jNowMs(tx);
    });
    const markerCommitted = Date.now();
    await until(async () => (await lastPollBegan(b)) > markerCommitted);
    // The suspension then commits stamped as a transaction that had run 2 s longer would have
    // stamped it (graph/events.ts stamps an event when it is appended, not when it commits):
    // older than B's newest by more than the poll's overlap, so the fast poll, which reads from
    // (newest − overlap), never reads it; only the sweep can. (Holding a real transaction open
    // that long raced the write timeout on a busy machine.)
    await writeTx(h.graph, async (tx) => {
      await setCustomerStatusTx(tx, customerId, 'suspended', 'CustomerSuspended', { reason: 'late commit test' });
      await tx.run(
        `MATCH (e:Event {customer_id: $id, type: 'CustomerSuspended'})
         WITH e ORDER BY e.customer_seq DESC LIMIT 1
         SET e.occurred_at = datetime({epochMillis: $at})`,
        { id: customerId, at: neo4j.int(markerStamp - OVERLAP_MS - 2000) },
      );
    });
    const committed = Date.now();
    await until(async () => (await context(b, customerId)).body.status === 'suspended', BOUND_MS + SLACK_MS);
    console.log(`api B saw the late commit ${Date.now() - committed} ms after it committed`);
    // The read that saw it may have missed the cache (an entry B evicted): the sweep still finds it.
    await until(async () => (await caughtBySweep(b)) > caughtBefore, BOUND_MS + SLACK_MS);
  });

  it('honours a write’s consistency token on another api whose cache is behind', async () => {
    const { customerId, deviceId } = await customer();
    await warm(c, customerId);
    const trust = await send(h, 'PUT', `/api/v1/devices/${deviceId}/trust-score`, { body: { trust_score: 0.97 } });
    expect(trust.token).toMatch(/^d:/);
    // C polls every 5 minutes: without the token it still answers from its older copy.
    const behind = await context(c, customerId);
    expect(behind.body.trusted_devices).toEqual([]);
    const caught = await context(c, customerId, trust.token as string);
    expect(caught.body.trusted_devices).toMatchObject([{ device_id: deviceId, trust_score: 0.97 }]);

    const { cards } = { cards: (behind.body.active_payment_methods as string[]).slice() };
    const off = await send(h, 'POST', `/api/v1/payment-methods/${cards[0]}/inactivate`, {
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
