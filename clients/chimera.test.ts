import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChimeraRejectedError, HttpChimeraClient } from './chimera';

/** A local stand-in for Chimera that answers with whatever status the test queues next. */
let server: Server;
let baseUrl: string;
const answers: number[] = [];
const seen: { headers: IncomingMessage['headers']; body: string; url?: string | undefined }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ headers: req.headers, body, url: req.url });
      const status = answers.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(status < 300 ? JSON.stringify({ reference: 'bp_123' }) : JSON.stringify({ error: 'nope' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const req = { customer_id: 'c-1', onboarding_id: 'onboarding-k', request_id: 'onboarding-k:behavioral-profile' };

describe('HttpChimeraClient', () => {
  it('posts the request with its idempotency key and returns Chimera’s reference', async () => {
    answers.push(201);
    expect(await new HttpChimeraClient(baseUrl).requestBehavioralProfile(req)).toEqual({ reference: 'bp_123' });
    const last = seen.at(-1);
    expect(last?.url).toBe('/v1/behavioral-profiles');
    expect(last?.headers['idempotency-key']).toBe(req.request_id);
    expect(JSON.parse(last?.body ?? '{}')).toEqual({ customer_id: 'c-1', onboarding_id: 'onboarding-k' });
  });

  it('treats a 4xx refusal as final and a 5xx or 429 as worth retrying', async () => {
    const client = new HttpChimeraClient(baseUrl);
    answers.push(422);
    await expect(client.requestBehavioralProfile(req)).rejects.toBeInstanceOf(ChimeraRejectedError);
    for (const status of [503, 429]) {
      answers.push(status);
      const attempt = client.requestBehavioralProfile(req);
      await expect(attempt).rejects.toThrow(`Chimera answered ${status}`);
      await expect(attempt).rejects.not.toBeInstanceOf(ChimeraRejectedError);
    }
  });

  it('gives up on a Chimera that does not answer in time', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      await expect(new HttpChimeraClient(url, 200).requestBehavioralProfile(req)).rejects.toThrow();
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
