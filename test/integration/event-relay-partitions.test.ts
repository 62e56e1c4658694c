/**
 * The event relay delivering customers side by side, on the real Temporal and Neo4j: a receiver
 * that answers some customers slowly (so answers come back out of the feed's order) and one
 * customer "not now" twice. Every customer's events arrive in that customer's order, none before
 * the one ahead of it was taken, while the posts of different customers overlap.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../graph/feed';
import { adoptRelayState, readRelayCheckpoint } from '../../graph/relay';
import type { eventRelayWorkflow } from '../../workflows/eventRelay';
import { startHarness, type Harness } from '../support/api';
import { until } from '../support/wait';

const CUSTOMERS = 40;
const PER_CUSTOMER = 25;
const TOTAL = CUSTOMERS * PER_CUSTOMER;
const prefix = `partitions-${randomUUID().slice(0, 8)}`;
const relayId = `persona-event-relay-${prefix}`;
/** Seeded events sort before anything real: stamped in 2003, a millisecond apart, customers interleaved. */
const BASE = Date.parse('2003-01-01T00:00:00Z');
/** The customer answered "not now" twice on its tenth event. */
const FLAKY = 7;
const FLAKY_EVENT = `${prefix}-c${FLAKY}-9`;

let h: Harness;
let receiver: Server;
/** Per customer: the index of the next event it must get (its order), and what broke it. */
const next = new Map<number, number>();
const violations: string[] = [];
const attempts = new Map<string, number>();
/** Arrivals of first deliveries, in the order the receiver took them (event index in the feed). */
const arrivals: number[] = [];
let inFlight = 0;
let maxInFlight = 0;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const key = String(req.headers['idempotency-key']);
    req.resume();
    req.on('end', () => {
      if (!key.startsWith(prefix)) return void res.writeHead(204).end();
      const [, c, j] = /-c(\d+)-(\d+)$/.exec(key) ?? [];
      const customer = Number(c);
      const index = Number(j);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const tries = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, tries);
      // Every third customer answers slowly, by a different amount each time: out of the feed's order.
      const delay = customer % 3 === 0 ? 5 + ((index * 7 + customer) % 20) : 0;
      setTimeout(() => {
        inFlight--;
        if (key === FLAKY_EVENT && tries <= 2) return void res.writeHead(503).end('not now');
        const expected = next.get(customer) ?? 0;
        if (index > expected) violations.push(`${key} arrived before event ${expected} of its customer`);
        if (index === expected) {
          next.set(customer, expected + 1);
          arrivals.push(index * CUSTOMERS + customer);
        }
        res.writeHead(204).end();
      }, delay);
    });
  });
  receiver.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
  h = await startHarness({ eventsWebhookUrl: url });
  await h.graph.query(
    `UNWIND range(0, toInteger($total) - 1) AS i
     WITH i, i % toInteger($customers) AS c, i / toInteger($customers) AS j
     CREATE (:Event {id: $prefix + '-c' + toString(c) + '-' + toString(j), type: 'CustomerUpdated',
                     customer_id: $prefix + '-c' + toString(c),
                     occurred_at: datetime({epochMillis: toInteger($base) + i}), seq: 0, payload: '{"changes":{}}'})`,
    { total: TOTAL, customers: CUSTOMERS, prefix, base: BASE },
  );
  await adoptRelayState(h.graph, relayId, {
    cursor: encodeCursor({ t: '2002-12-31T23:59:59Z', s: -1, id: '' }),
    delivered: 0,
    parked: [],
  });
}, 120_000);

afterAll(async () => {
  await h?.client.workflow
    .getHandle(relayId)
    .terminate('test over')
    .catch(() => undefined);
  await h?.graph.query('MATCH (e:Event) WHERE e.id STARTS WITH $prefix DETACH DELETE e', { prefix });
  await h?.graph.query('MATCH (r:RelayCheckpoint {id: $id}) DETACH DELETE r', { id: relayId });
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  await h?.close();
}, 120_000);

describe('the event relay by customer', () => {
  it('keeps each customer in order while customers go side by side, with slow and "not now" answers', async () => {
    const handle = await h.client.workflow.start<typeof eventRelayWorkflow>('eventRelayWorkflow', {
      workflowId: relayId,
      taskQueue: h.taskQueue,
      args: [{ lag_ms: 1000, page_size: 250, poll_interval: '1 second', pages_per_run: 500, checkpoint_id: relayId }],
    });
    await until(async () => arrivals.length === TOTAL, 120_000);
    expect(violations).toEqual([]);
    for (let c = 0; c < CUSTOMERS; c++) expect(next.get(c)).toBe(PER_CUSTOMER);
    // The flaky customer's event was answered "not now" twice, then taken; its next one only after.
    expect(attempts.get(FLAKY_EVENT)).toBe(3);
    // Customers really went side by side: posts overlapped and answers came out of the feed's order.
    expect(maxInFlight).toBeGreaterThan(1);
    expect(arrivals).not.toEqual([...arrivals].sort((x, y) => x - y));
    // Nothing went out twice but the flaky customer's retried event: the others' were kept as `ahead`.
    const resent = [...attempts].filter(([key, n]) => n > 1 && key !== FLAKY_EVENT);
    expect(resent).toEqual([]);
    await until(async () => (await readRelayCheckpoint(h.graph, relayId)).blocked === null);
    await handle.terminate('test over');
  }, 180_000);
});
