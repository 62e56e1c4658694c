import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayInFlightError, GatewayUnavailableError, HttpPaymentGateway } from './paymentGateway';

/** A local stand-in for a processor that answers whatever the test queues next (status and body). */
let server: Server;
let baseUrl: string;
const answers: { status: number; body: unknown }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const next = answers.shift() ?? { status: 500, body: {} };
      res.writeHead(next.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(next.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const request = {
  idempotency_key: 'pay-1:pm-1',
  token: 'tok_secret_visa',
  amount: 1999,
  currency: 'EUR',
  customer_id: 'c-1',
  initiator: 'mit' as const,
  reference: 'pay-1',
};
const gateway = () => new HttpPaymentGateway(baseUrl, 2000);

describe('HttpPaymentGateway', () => {
  it('lists a charge in a status it does not know as processing: not ended, never "charged nothing"', async () => {
    const listed = (id: string, status: string) => ({
      id,
      idempotency_key: `pay-1:pm-1:${id}`,
      customer_id: 'c-1',
      amount: 1999,
      currency: 'EUR',
      status,
      decline_code: null,
      created_at: '2026-11-29T10:00:00Z',
      reference: 'pay-1',
    });
    const statuses = ['succeeded', 'declined', 'processing', 'pending', 'requires_capture', 'canceled'];
    answers.push({ status: 200, body: { data: statuses.map((s, i) => listed(`ch_${i}`, s)), has_more: false } });
    const charges = await gateway().chargesByReference('pay-1');
    expect(charges.map((c) => c.status)).toEqual([
      'succeeded',
      'declined',
      'processing',
      'processing',
      'processing',
      'processing',
    ]);
    answers.push({ status: 200, body: listed('ch_9', 'pending') });
    expect((await gateway().getCharge('ch_9'))?.status).toBe('processing');
  });

  it('takes a charge still processing as an outcome not known yet: neither a success nor a decline', async () => {
    answers.push({ status: 200, body: { id: 'ch_1', status: 'processing', network: 'visa', fingerprint: 'fp_1' } });
    const processing = gateway().charge(request);
    await expect(processing).rejects.toBeInstanceOf(GatewayUnavailableError);
    await expect(processing).rejects.not.toBeInstanceOf(GatewayInFlightError);
    await expect(processing).rejects.toThrow(/processing/);
    await expect(processing).rejects.not.toThrow(/tok_secret/);
  });

  it('takes only a 200 saying succeeded as a success; a status it does not know leaves it unknown', async () => {
    answers.push({ status: 200, body: { id: 'ch_2', status: 'succeeded', network: 'visa', fingerprint: 'fp_2' } });
    expect(await gateway().charge(request)).toEqual({
      outcome: 'succeeded',
      charge_id: 'ch_2',
      network: 'visa',
      fingerprint: 'fp_2',
    });
    for (const body of [{ id: 'ch_3', status: 'requires_action' }, { id: 'ch_4' }]) {
      answers.push({ status: 200, body });
      await expect(gateway().charge(request)).rejects.toBeInstanceOf(GatewayUnavailableError);
    }
  });
});
