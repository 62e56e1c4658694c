/**
 * The event relay on the real Temporal and Neo4j, delivering to a local receiver that fails on
 * purpose: one event refused for good (4xx: parked at once, the rest go on), one answered "not
 * now" (503) until the test lets it through (the relay blocks there, in order, and ops see what it
 * is blocked on). Ops retry the parked event through the api; retry requests queue.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPaymentMethod, createCustomer } from '../../graph';
import { readFeed } from '../../graph/feed';
import { adoptRelayState } from '../../graph/relay';
import type { EventRelayView } from '../../api/services/relay';
import { EVENT_RELAY_WORKFLOW_ID, retryParkedUpdate, type EventRelayRunStatus } from '../../temporal/eventRelay';
import type { eventRelayWorkflow } from '../../workflows/eventRelay';
import { SIGNATURE_HEADER } from '../../activities/events';
import { startHarness, TEST_WEBHOOK_SECRET, type Harness } from '../support/api';
import { until } from '../support/wait';
import { metricValue, parseMetrics } from '../support/observability';
import { cardInput, feedCursorAtNow, uniqueEmail } from '../support/graph';

interface Received {
  id: string;
  type: string;
  customer_id: string;
  status: number;
}

let h: Harness;
let receiver: Server;
let url: string;
const received: Received[] = [];
/** Decides the answer to each delivery: customer + type → status codes in turn (the last repeats). */
const answers = new Map<string, number[]>();
/** Deliveries whose signature did not verify (none may). */
const unsigned: string[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const e = JSON.parse(body) as Received;
      // Every delivery is signed: the HMAC of its time and the body as received, under the shared secret.
      const signature = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers[SIGNATURE_HEADER] ?? ''));
      const expected = signature
        ? createHmac('sha256', TEST_WEBHOOK_SECRET).update(`${signature[1]}.${body}`).digest('hex')
        : null;
      if (!signature || expected !== signature[2] || Math.abs(Date.now() / 1000 - Number(signature[1])) > 300)
        unsigned.push(e.type);
      const planned = answers.get(`${e.customer_id}:${e.type}`) ?? [204];
      const status = planned.length > 1 ? (planned.shift() as number) : (planned[0] as number);
      received.push({ id: String(req.headers['idempotency-key']), type: e.type, customer_id: e.customer_id, status });
      res.writeHead(status).end(status >= 300 ? 'not now' : '');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
  // The worker's own subscriber: where its relay delivers (never a workflow's input).
  h = await startHarness({ eventsWebhookUrl: url });
  try {
    await h.client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID).terminate('test set-up');
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError) && !/not running|already completed/i.test(String(err))) throw err;
  }
});
afterAll(async () => {
  await h.client.workflow
    .getHandle(EVENT_RELAY_WORKFLOW_ID)
    .terminate('test over')
    .catch(() => undefined);
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  await h?.close();
});

describe('the event relay', () => {
  it(
    'delivers each customer in order, blocks on "not now" instead of reordering, parks a refusal without blocking, ' +
      'and retries it on demand',
    async () => {
      // A fresh checkpoint at the feed's present: this relay delivers only what the test writes.
      await h.graph.query('MATCH (r:RelayCheckpoint {id: $id}) DETACH DELETE r', { id: EVENT_RELAY_WORKFLOW_ID });
      const start = await feedCursorAtNow(h.graph);
      await adoptRelayState(h.graph, EVENT_RELAY_WORKFLOW_ID, { cursor: start, delivered: 0, parked: [] });

      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      // The receiver refuses B's new card for good, and answers C's creation "not now" until told.
      answers.set(`${b}:PaymentMethodAdded`, [422]);
      answers.set(`${c}:CustomerCreated`, [503]);
      for (const [id, tag] of [
        [a, 'relay-a'],
        [b, 'relay-b'],
        [c, 'relay-c'],
      ] as const) {
        await createCustomer(h.graph, {
          id,
          digital_identifiers: [{ type: 'email', value: uniqueEmail(tag), is_verified: true }],
        });
        await addPaymentMethod(h.graph, id, cardInput());
      }
      // The feed's order of what the test wrote (nothing else writes while it runs).
      const feed = (await readFeed(h.graph, { after: start, limit: 1000, lagMs: 0 })).data.filter((e) =>
        ([a, b, c] as string[]).includes(e.customer_id ?? ''),
      );
      const eb = feed.filter((e) => e.customer_id === b);
      const ec = feed.filter((e) => e.customer_id === c);
      const parkedEvent = eb.find((e) => e.type === 'PaymentMethodAdded');
      const blocking = ec.find((e) => e.type === 'CustomerCreated');
      const delivered = () => received.filter((r) => r.status < 300).map((r) => r.id);
      /** Event ids by customer, each customer's in the order given. */
      const customerOf = new Map(feed.map((e) => [e.id, e.customer_id ?? '']));
      const byCustomer = (ids: string[]) =>
        [a, b, c].map((customer) => ids.filter((id) => customerOf.get(id) === customer));

      const handle = await h.client.workflow.start<typeof eventRelayWorkflow>('eventRelayWorkflow', {
        workflowId: EVENT_RELAY_WORKFLOW_ID,
        taskQueue: h.taskQueue,
        args: [{ lag_ms: 1000, page_size: 3, poll_interval: '300 milliseconds', pages_per_run: 4 }],
      });
      const ops = await h.token('ops');
      const status = async () =>
        (await (
          await h.app.request('/api/v1/admin/event-relay', { headers: { authorization: `Bearer ${ops}` } })
        ).json()) as EventRelayView;
      const gauge = async (name: string) =>
        metricValue(parseMetrics(await (await h.app.request('/metrics')).text()), name, {
          workflow_id: EVENT_RELAY_WORKFLOW_ID,
        });

      // Blocked at C's creation, retried with backoff: ops see it, and nothing after it went out.
      await until(async () => {
        const s = await status();
        return s.blocked?.event_id === blocking?.id && (s.blocked?.attempts ?? 0) >= 2;
      }, 45_000);
      const before = feed.slice(0, feed.indexOf(blocking as (typeof feed)[number]));
      // Customers are delivered side by side: each one's events in its order, nothing past the block.
      expect(byCustomer(delivered())).toEqual(byCustomer(before.filter((e) => e !== parkedEvent).map((e) => e.id)));
      const blocked = await status();
      expect(blocked).toMatchObject({ running: true, blocked: { error: expect.stringContaining('503') } });
      expect(await gauge('persona_event_relay_blocked_seconds')).toBeGreaterThan(0);

      // The receiver takes it now: everything goes out, in each customer's order, but the parked one
      // (counted over the test's customers: other suites' events go through the same relay).
      answers.set(`${c}:CustomerCreated`, [204]);
      await until(async () => byCustomer(delivered()).flat().length === feed.length - 1, 45_000);
      expect(byCustomer(delivered())).toEqual(byCustomer(feed.filter((e) => e !== parkedEvent).map((e) => e.id)));
      // Each delivery, first tries and retries alike, carried a signature the receiver verified.
      expect(unsigned).toEqual([]);
      // C's creation: answered "not now" at least twice, delivered once, always under its own key.
      const tries = received.filter((r) => r.id === blocking?.id).map((r) => r.status);
      expect(tries.filter((t) => t === 503).length).toBeGreaterThanOrEqual(2);
      expect(tries.filter((t) => t < 300)).toEqual([204]);
      // B's refused card: one attempt, parked at once, visible to ops and to the alert's gauge.
      expect(received.filter((r) => r.id === parkedEvent?.id).map((r) => r.status)).toEqual([422]);
      await until(async () => (await status()).blocked === null);
      const after = await status();
      expect(after).toMatchObject({
        parked_count: 1,
        parked: [{ event: { id: parkedEvent?.id, type: 'PaymentMethodAdded' }, attempts: 1 }],
      });
      expect(after.parked[0]?.error).toContain('422');
      expect(await gauge('persona_event_relay_parked_events')).toBe(1);
      expect(await gauge('persona_event_relay_blocked_seconds')).toBe(0);

      // Two retry requests at once are both served (one no longer replaces the other); the
      // subscriber still refuses, so the event stays parked with its new error.
      const [r1, r2] = await Promise.all([
        handle.executeUpdate(retryParkedUpdate, { args: [{}] }),
        handle.executeUpdate(retryParkedUpdate, { args: [{ event_id: parkedEvent?.id }] }),
      ]);
      for (const r of [r1, r2]) expect(r).toMatchObject({ delivered: 0, still_parked: 1 });
      expect((await status()).parked[0]?.attempts).toBeGreaterThanOrEqual(2);

      // The subscriber is fixed; ops retry the parked event through the api.
      answers.set(`${b}:PaymentMethodAdded`, [204]);
      const retry = await h.app.request('/api/v1/admin/event-relay/retry', {
        method: 'POST',
        headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
        body: JSON.stringify({ event_id: parkedEvent?.id }),
      });
      expect(retry.status).toBe(202);
      await until(async () => (await status()).parked_count === 0, 45_000);
      expect(delivered().filter((id) => id === parkedEvent?.id)).toHaveLength(1);
      expect(await gauge('persona_event_relay_parked_events')).toBe(0);

      // Small runs: the relay has continued as new, its checkpoint in the graph intact.
      await until(async () => (await handle.query<EventRelayRunStatus>('eventRelayStatus')).runs >= 2, 45_000);
      expect((await handle.describe()).runId).not.toBe(handle.firstExecutionRunId);
      expect((await status()).delivered).toBe(feed.length);
    },
  );
});
