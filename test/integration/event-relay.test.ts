/**
 * The event relay on the real Temporal and Neo4j, delivering to a local receiver that fails on
 * purpose: once for good (that event is parked, the rest go on), twice and then not (retried
 * with backoff, delivered once). Ops see the parked event and retry it through the api.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPaymentMethod, createCustomer, listCustomerEvents } from '../../graph';
import { EVENT_RELAY_WORKFLOW_ID, type EventRelayState } from '../../temporal/eventRelay';
import type { eventRelayWorkflow } from '../../workflows/eventRelay';
import { startHarness, type Harness } from '../support/api';
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

beforeAll(async () => {
  h = await startHarness();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const e = JSON.parse(body) as Received;
      const planned = answers.get(`${e.customer_id}:${e.type}`) ?? [204];
      const status = planned.length > 1 ? (planned.shift() as number) : (planned[0] as number);
      received.push({ id: String(req.headers['idempotency-key']), type: e.type, customer_id: e.customer_id, status });
      res.writeHead(status).end(status >= 300 ? 'not now' : '');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
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
    'delivers in order, retries, parks what keeps failing without blocking the rest, ' + 'and retries it on demand',
    async () => {
      const handle = await h.client.workflow.start<typeof eventRelayWorkflow>('eventRelayWorkflow', {
        workflowId: EVENT_RELAY_WORKFLOW_ID,
        taskQueue: h.taskQueue,
        args: [
          {
            webhook_url: url,
            lag_ms: 1000,
            page_size: 3,
            poll_interval: '300 milliseconds',
            max_attempts: 3,
            pages_per_run: 4,
            state: {
              cursor: await feedCursorAtNow(h.graph),
              delivered: 0,
              parked: [],
              runs: 0,
              last_delivery_at: null,
            },
          },
        ],
      });

      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      // The receiver refuses B's new card for good, and C's creation twice before taking it.
      answers.set(`${b}:PaymentMethodAdded`, [500]);
      answers.set(`${c}:CustomerCreated`, [503, 503, 204]);
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

      const eventsOf = async (id: string) => (await listCustomerEvents(h.graph, id, { limit: 100 })).reverse();
      const [ea, eb, ec] = [await eventsOf(a), await eventsOf(b), await eventsOf(c)];
      const parkedEvent = eb.find((e) => e.type === 'PaymentMethodAdded');
      const ok = (id: string) => received.filter((r) => r.customer_id === id && r.status < 300).map((r) => r.id);

      await until(
        async () => ok(a).length === ea.length && ok(c).length === ec.length && ok(b).length === eb.length - 1,
        45_000,
      );
      // In each customer's order; the parked event did not hold back B's next one.
      expect(ok(a)).toEqual(ea.map((e) => e.id));
      expect(ok(c)).toEqual(ec.map((e) => e.id));
      expect(ok(b)).toEqual(eb.filter((e) => e.id !== parkedEvent?.id).map((e) => e.id));
      // C's first event failed twice, then went through: three attempts, one delivery, same key.
      const cCreated = ec[0]?.id;
      expect(received.filter((r) => r.id === cCreated).map((r) => r.status)).toEqual([503, 503, 204]);
      // B's PaymentMethodAdded: tried max_attempts times, then parked, visible to ops.
      expect(received.filter((r) => r.id === parkedEvent?.id).map((r) => r.status)).toEqual([500, 500, 500]);
      const ops = await h.token('ops');
      const status = (await (
        await h.app.request('/api/v1/admin/event-relay', { headers: { authorization: `Bearer ${ops}` } })
      ).json()) as EventRelayState;
      expect(status.parked).toMatchObject([
        {
          event: { id: parkedEvent?.id, type: 'PaymentMethodAdded' },
          attempts: 3,
          error: expect.stringContaining('500'),
        },
      ]);
      // What the alert PersonaEventRelayParked reads: the api's gauge, from the relay's own state.
      const parkedGauge = async () =>
        metricValue(parseMetrics(await (await h.app.request('/metrics')).text()), 'persona_event_relay_parked_events', {
          workflow_id: EVENT_RELAY_WORKFLOW_ID,
        });
      expect(await parkedGauge()).toBe(1);

      // The subscriber is fixed; ops retry the parked event.
      answers.set(`${b}:PaymentMethodAdded`, [204]);
      const retry = await h.app.request('/api/v1/admin/event-relay/retry', {
        method: 'POST',
        headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
        body: JSON.stringify({ event_id: parkedEvent?.id }),
      });
      expect(retry.status).toBe(202);
      await until(async () => ok(b).length === eb.length, 45_000);
      await until(async () => (await handle.query<EventRelayState>('eventRelayStatus')).parked.length === 0, 45_000);
      expect(await parkedGauge()).toBe(0);

      // Small runs: the relay has continued as new, cursor and counts intact.
      await until(async () => (await handle.query<EventRelayState>('eventRelayStatus')).runs >= 2, 45_000);
      const later = await handle.query<EventRelayState>('eventRelayStatus');
      expect(later.delivered).toBeGreaterThanOrEqual(ea.length + eb.length + ec.length);
      expect((await handle.describe()).runId).not.toBe(handle.firstExecutionRunId);
    },
  );
});
