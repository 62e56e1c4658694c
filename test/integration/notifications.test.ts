import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotificationActivities } from '../../activities/notifications';
import { WebhookNotificationSink, type Notification, type NotificationSink } from '../../clients/notifications';
import { createCustomer, listCustomerEvents } from '../../graph';
import { openTestGraph, uniqueEmail, type TestGraph } from '../support/graph';

let g: TestGraph;
let server: Server;
let url: string;
const received: { key: string | undefined; body: Notification }[] = [];

beforeAll(async () => {
  g = openTestGraph();
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({
        key: req.headers['idempotency-key'] as string | undefined,
        body: JSON.parse(body) as Notification,
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await g.close();
});

describe('notifyCustomer', () => {
  it('sends once per key through the webhook and records one CustomerNotified event', async () => {
    const customer = await createCustomer(g, {
      digital_identifiers: [{ type: 'email', value: uniqueEmail(), is_verified: true }],
    });
    const activities = createNotificationActivities({ graph: g, notifications: new WebhookNotificationSink(url) });
    const notifyCustomer = (r: Parameters<typeof activities.notifyCustomer>[0]) => activities.notifyCustomer(r);
    const key = `payment-recovery-${randomUUID()}:recovered`;
    const req = { customer_id: customer.id, kind: 'payment_recovered', key, data: { payment_id: 'p1' } };
    expect(await notifyCustomer(req)).toEqual({ sent: true, channel: 'email' });
    // A retried activity: the same key again.
    expect(await notifyCustomer(req)).toEqual({ sent: false, channel: 'email' });
    expect(received.filter((r) => r.key === key)).toHaveLength(1);
    expect(received.find((r) => r.key === key)?.body).toMatchObject({
      customer_id: customer.id,
      kind: 'payment_recovered',
      channel: 'email',
    });
    const events = await listCustomerEvents(g, customer.id, { type: 'CustomerNotified' });
    expect(events.map((e) => e.payload)).toEqual([{ kind: 'payment_recovered', channel: 'email' }]);
  });

  it('prefers a verified phone over an unverified email, and records a customer it cannot reach', async () => {
    const sent: Notification[] = [];
    const sink: NotificationSink = { send: async (n) => void sent.push(n) };
    const activities = createNotificationActivities({ graph: g, notifications: sink });
    const notifyCustomer = (r: Parameters<typeof activities.notifyCustomer>[0]) => activities.notifyCustomer(r);
    const phoneOnly = await createCustomer(g, {
      digital_identifiers: [
        { type: 'email', value: uniqueEmail(), is_verified: false },
        { type: 'phone_number', value: `+4479${String(Date.now()).slice(-8)}`, is_verified: true },
      ],
    });
    expect(
      await notifyCustomer({ customer_id: phoneOnly.id, kind: 'dunning_reminder', key: `k-${randomUUID()}` }),
    ).toEqual({ sent: true, channel: 'sms' });
    const unreachable = await createCustomer(g, {});
    expect(
      await notifyCustomer({ customer_id: unreachable.id, kind: 'dunning_reminder', key: `k-${randomUUID()}` }),
    ).toEqual({ sent: false, channel: null });
    expect(sent).toHaveLength(1);
    expect((await listCustomerEvents(g, unreachable.id, { type: 'CustomerNotified' })).map((e) => e.payload)).toEqual([
      { kind: 'dunning_reminder', channel: null },
    ]);
  });
});
