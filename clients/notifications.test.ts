import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../runtime/logger';
import { createNotificationSink, WebhookNotificationSink, type Notification } from './notifications';

/** A receiver that keeps each request's body as received and its headers. */
let server: Server;
let url: string;
const received: { body: string; headers: Record<string, string | string[] | undefined> }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ body, headers: req.headers });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const secret = 'notify-secret-'.padEnd(40, 'x');
const consent: Notification = {
  customer_id: 'c-1',
  kind: 'merge_consent_requested',
  channel: 'email',
  key: 'merge-1:c-1:consent',
  data: { merge_id: 'merge-1', code: '493817' },
};

/**
 * Whether a request verifies as docs/events.md tells a receiver to verify the events webhook's:
 * `Persona-Signature: t=<unix seconds>,v1=<hex>`, the HMAC-SHA256 under the secret of
 * `<t>.<the body as received>`, with `t` within five minutes.
 */
function verifies(r: (typeof received)[number], key: string): boolean {
  const signature = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(r.headers['persona-signature'] ?? ''));
  if (!signature) return false;
  const expected = createHmac('sha256', key).update(`${signature[1]}.${r.body}`).digest('hex');
  return expected === signature[2] && Math.abs(Date.now() / 1000 - Number(signature[1])) <= 300;
}

describe('the notification webhook', () => {
  it('signs every request with its secret as the events webhook does: the receiver can verify it', async () => {
    received.length = 0;
    await new WebhookNotificationSink(url, 2000, secret).send(consent);
    expect(received).toHaveLength(1);
    const [r] = received;
    expect(JSON.parse(r!.body)).toEqual(consent);
    expect(r!.headers['idempotency-key']).toBe(consent.key);
    expect(verifies(r!, secret)).toBe(true);
    // Not under another secret, nor over another body (a consent code changed on the way).
    expect(verifies(r!, 'another-secret-'.padEnd(40, 'y'))).toBe(false);
    expect(verifies({ ...r!, body: r!.body.replace('493817', '000000') }, secret)).toBe(false);
  });

  it("signs with the worker's secret (PERSONA_NOTIFY_WEBHOOK_SECRET), and sends no signature without one", async () => {
    received.length = 0;
    const logger = {} as Logger;
    await createNotificationSink(url, logger, { webhookSecret: secret }).send(consent);
    await createNotificationSink(url, logger).send(consent);
    expect(received).toHaveLength(2);
    expect(verifies(received[0]!, secret)).toBe(true);
    expect(received[1]!.headers['persona-signature']).toBeUndefined();
  });
});
