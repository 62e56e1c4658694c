import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayRejectedError, GatewayUnavailableError, HttpPaymentGateway } from '../../clients/paymentGateway';
import { createGatewaySimulator, fingerprintOfToken, networkOfToken, type ChargeRecord } from './app';

const file = path.join(mkdtempSync(path.join(tmpdir(), 'gateway-sim-')), 'charges.jsonl');
let server: ServerType;
let base: string;

beforeAll(async () => {
  await new Promise<void>((resolve) => {
    server = serve({ fetch: createGatewaySimulator(file).fetch, hostname: '127.0.0.1', port: 0 }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const charge = (token: string, key: string, customer = 'cust-1') => ({
  idempotency_key: key,
  token,
  amount: 1999,
  currency: 'EUR',
  customer_id: customer,
  initiator: 'mit' as const,
});
const listed = async (customer: string) =>
  ((await (await fetch(`${base}/v1/charges?customer_id=${customer}`)).json()) as { data: ChargeRecord[] }).data;

describe('the gateway simulator through the PaymentGateway client', () => {
  const gateway = () => new HttpPaymentGateway(base, 1000);

  it('succeeds, and answers a repeated key with the first answer without a new charge', async () => {
    const first = await gateway().charge(charge('tok_visa', 'pay-1:pm-1', 'c-a'));
    expect(first).toMatchObject({ outcome: 'succeeded', charge_id: expect.stringMatching(/^ch_/) });
    expect(await gateway().charge(charge('tok_visa', 'pay-1:pm-1', 'c-a'))).toEqual(first);
    expect(await listed('c-a')).toMatchObject([
      { idempotency_key: 'pay-1:pm-1', status: 'succeeded', amount: 1999, currency: 'EUR' },
    ]);
  });

  it('declines with the code in the token, as a business outcome', async () => {
    expect(await gateway().charge(charge('tok_decline_insufficient_funds_7', 'pay-2:pm-1', 'c-b'))).toMatchObject({
      outcome: 'declined',
      decline_code: 'insufficient_funds',
    });
    expect(await listed('c-b')).toMatchObject([{ status: 'declined', decline_code: 'insufficient_funds' }]);
  });

  it('is unavailable for tokens containing "unavailable", and on injected faults: transient errors', async () => {
    await expect(gateway().charge(charge('tok_unavailable', 'pay-3:pm-1', 'c-c'))).rejects.toBeInstanceOf(
      GatewayUnavailableError,
    );
    await fetch(`${base}/_sim/faults`, { method: 'PUT', body: JSON.stringify({ fail_next: 1 }) });
    await expect(gateway().charge(charge('tok_visa', 'pay-3:pm-2', 'c-c'))).rejects.toBeInstanceOf(
      GatewayUnavailableError,
    );
    expect(await gateway().charge(charge('tok_visa', 'pay-3:pm-2', 'c-c'))).toMatchObject({ outcome: 'succeeded' });
    expect((await listed('c-c')).map((r) => r.status)).toEqual(['succeeded']);
  });

  it('refuses a revoked token as a request, for good, without a charge', async () => {
    await expect(gateway().charge(charge('tok_revoked_1', 'pay-5:pm-1', 'c-e'))).rejects.toBeInstanceOf(
      GatewayRejectedError,
    );
    expect(await listed('c-e')).toEqual([]);
  });

  it('times out as a transient error when the gateway is slow', async () => {
    await fetch(`${base}/_sim/faults`, { method: 'PUT', body: JSON.stringify({ latency_ms: 1500 }) });
    const inFlight = async () =>
      ((await (await fetch(`${base}/_sim/faults`)).json()) as { in_flight: number }).in_flight;
    try {
      expect(await inFlight()).toBe(0);
      const slow = gateway().charge(charge('tok_visa', 'pay-4:pm-1', 'c-d'));
      await expect(slow).rejects.toBeInstanceOf(GatewayUnavailableError);
      // The simulator still holds the request the client gave up on: a test can wait on that.
      expect(await inFlight()).toBe(1);
    } finally {
      await fetch(`${base}/_sim/faults`, { method: 'PUT', body: JSON.stringify({ latency_ms: 0 }) });
    }
  });

  it('refuses a malformed request without a charge', async () => {
    await expect(
      gateway().charge({ ...charge('tok_visa', 'pay-5:pm-1', 'c-e'), currency: 'euro' }),
    ).rejects.toBeInstanceOf(GatewayRejectedError);
    expect(await listed('c-e')).toEqual([]);
  });

  it('declines a pays_after_<N> card its first N charges, then pays, counting across a restart', async () => {
    const token = 'tok_visa_card-topped-up_decline_insufficient_funds_pays_after_2';
    const outcomes = async (keys: string[]) =>
      Promise.all(keys.map(async (k) => (await gateway().charge(charge(token, k, 'c-t'))).outcome));
    expect(await outcomes(['pay-t:1'])).toEqual(['declined']);
    // A repeated key is the same charge: it does not count again.
    expect(await outcomes(['pay-t:1', 'pay-t:2'])).toEqual(['declined', 'declined']);
    const restarted = createGatewaySimulator(file);
    const res = await restarted.request('/v1/charges', {
      method: 'POST',
      headers: { 'idempotency-key': 'pay-t:3', 'content-type': 'application/json' },
      body: JSON.stringify({ token, amount: 1999, currency: 'EUR', customer_id: 'c-t', initiator: 'mit' }),
    });
    expect(res.status).toBe(200);
  });

  it('keeps its records across a restart', async () => {
    await gateway().charge(charge('tok_visa', 'pay-6:pm-1', 'c-f'));
    const restarted = createGatewaySimulator(file);
    const res = await restarted.request('/v1/charges?customer_id=c-f');
    expect(((await res.json()) as { data: ChargeRecord[] }).data).toHaveLength(1);
    const replay = await restarted.request('/v1/charges', {
      method: 'POST',
      headers: { 'idempotency-key': 'pay-6:pm-1', 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'tok_visa', amount: 1999, currency: 'EUR', customer_id: 'c-f', initiator: 'mit' }),
    });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });

  it('lists its charges a page at a time, in the order made, and answers one by id', async () => {
    const since = new Date().toISOString();
    const made = [];
    for (let n = 0; n < 5; n++) made.push(await gateway().charge(charge('tok_visa', `pay-7-${n}:pm-1`, 'c-g')));
    const ids = made.map((m) => (m.outcome === 'succeeded' ? m.charge_id : ''));
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const page = await gateway().listCharges({ created_gte: since, starting_after: after, limit: 2 });
      pages++;
      seen.push(...page.data.map((c) => c.id));
      after = page.data.at(-1)?.id ?? null;
      if (!page.has_more) break;
    }
    // In order, each once (a charge of the test before, made in the same millisecond, may lead the list).
    expect(seen.slice(-5)).toEqual(ids);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil(seen.length / 2));
    expect(await gateway().getCharge(ids[0] ?? '')).toMatchObject({ id: ids[0], idempotency_key: 'pay-7-0:pm-1' });
    expect(await gateway().getCharge('ch_missing')).toBeNull();
  });

  it("answers each token's standing: revoked by name, or by the issuer later (kept across a restart)", async () => {
    expect(await gateway().tokenStatuses(['tok_a', 'tok_revoked_2', 'tok_b'])).toEqual(['active', 'revoked', 'active']);
    await fetch(`${base}/_sim/revoke`, { method: 'PUT', body: JSON.stringify({ token: 'tok_b' }) });
    expect(await gateway().tokenStatuses(['tok_a', 'tok_b'])).toEqual(['active', 'revoked']);
    const restarted = createGatewaySimulator(file);
    const res = await restarted.request('/v1/payment_methods/status', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tokens: ['tok_b'] }),
    });
    expect(await res.json()).toEqual({
      data: [{ status: 'revoked', network: 'visa', fingerprint: fingerprintOfToken('tok_b') }],
    });
  });
});

describe('the gateway simulator speaks like a processor', () => {
  const gateway = () => new HttpPaymentGateway(base, 1000);

  it('declines with the network, its response code and Visa category from the rule table', async () => {
    expect(await gateway().charge(charge('tok_visa_decline_lost_card', 'pay-n1:pm-1', 'c-n'))).toEqual({
      outcome: 'declined',
      decline_code: 'lost_card',
      charge_id: expect.stringMatching(/^ch_/),
      network: 'visa',
      fingerprint: fingerprintOfToken('tok_visa_decline_lost_card'),
      network_response_code: '41',
      category: 1,
      advice_code: null,
    });
    // No network named: a Visa card; a code the table has not: category 4 (generic), response 05.
    expect(await gateway().charge(charge('tok_decline_insufficient_funds_9', 'pay-n2:pm-1', 'c-n'))).toMatchObject({
      network: 'visa',
      category: 2,
      network_response_code: '51',
    });
  });

  it('gives Mastercard declines the advice code the token asks for, and none otherwise', async () => {
    const token = 'tok_mastercard_decline_insufficient_funds_mac_25';
    expect(await gateway().charge(charge(token, 'pay-n3:pm-1', 'c-n'))).toMatchObject({
      network: 'mastercard',
      advice_code: '25',
      category: null,
    });
    const plain = await gateway().charge(charge('tok_mastercard_decline_do_not_honor', 'pay-n4:pm-1', 'c-n'));
    expect(plain).toMatchObject({ network: 'mastercard', advice_code: null });
  });

  it('records the initiator of each charge and refuses a request without one', async () => {
    await gateway().charge({ ...charge('tok_amex_1', 'pay-n5:pm-1', 'c-i'), initiator: 'cit' });
    expect(await listed('c-i')).toMatchObject([{ initiator: 'cit', network: 'amex', status: 'succeeded' }]);
    const res = await fetch(`${base}/v1/charges`, {
      method: 'POST',
      headers: { 'idempotency-key': 'pay-n6:pm-1', 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'tok_visa', amount: 100, currency: 'EUR', customer_id: 'c-i' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'invalid_request' } });
    expect(await listed('c-i')).toHaveLength(1);
  });

  it('charges once for two requests with one key at once, and refuses the key for another charge', async () => {
    const body = (amount: number) =>
      JSON.stringify({ token: 'tok_visa', amount, currency: 'EUR', customer_id: 'c-k', initiator: 'mit' });
    const post = (amount: number) =>
      fetch(`${base}/v1/charges`, {
        method: 'POST',
        headers: { 'idempotency-key': 'pay-k:pm-1', 'content-type': 'application/json' },
        body: body(amount),
      });
    const [a, b] = await Promise.all([post(500), post(500)]);
    const [first, second] = [(await a.json()) as { id: string }, (await b.json()) as { id: string }];
    expect(first.id).toBe(second.id);
    expect(await listed('c-k')).toHaveLength(1);
    const other = await post(501);
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ error: { code: 'idempotency_key_in_use' } });
    expect(await listed('c-k')).toHaveLength(1);
  });

  it('reads test tokens by their parts: the network, the advice code, a code followed by the card', async () => {
    expect(networkOfToken('tok_amex_card-visa01')).toBe('amex');
    const mac = await gateway().charge(charge('tok_mastercard_decline_do_not_honor_mac_240', 'pay-t1:pm-1', 'c-t'));
    expect(mac).toMatchObject({ outcome: 'declined', advice_code: null });
    expect(
      await gateway().charge(charge('tok_mastercard_decline_expired_card-42', 'pay-t2:pm-1', 'c-t')),
    ).toMatchObject({
      outcome: 'declined',
      decline_code: 'expired_card',
      fingerprint: fingerprintOfToken('tok_card-42'),
    });
  });

  it('gives every token of one card identity the same fingerprint, and different cards different ones', () => {
    expect(fingerprintOfToken('tok_visa_card-abc_1')).toBe(fingerprintOfToken('tok_visa_card-abc_2'));
    expect(fingerprintOfToken('tok_visa_card-abc_1')).not.toBe(fingerprintOfToken('tok_visa_card-abd_1'));
    expect(fingerprintOfToken('tok_x')).not.toBe(fingerprintOfToken('tok_y'));
  });

  it('answers account-updater lookups as the token asks, the same each time, and records them', async () => {
    expect(await gateway().lookup('tok_visa_card-u1_au_expiry_09_2031')).toEqual({
      status: 'updated',
      expiry_month: 9,
      expiry_year: 2031,
    });
    const replaced = await gateway().lookup('tok_mastercard_decline_expired_card_au_replaced');
    expect(replaced).toMatchObject({ status: 'replaced', expiry_month: 12 });
    expect(await gateway().lookup('tok_mastercard_decline_expired_card_au_replaced')).toEqual(replaced);
    const newToken = (replaced as { token: string }).token;
    // The new token is the same card (its fingerprint), charges, and is itself not replaced again.
    expect(fingerprintOfToken(newToken)).toBe(fingerprintOfToken('tok_mastercard_decline_expired_card_au_replaced'));
    expect(await gateway().charge(charge(newToken, 'pay-n7:pm-1', 'c-u'))).toMatchObject({
      outcome: 'succeeded',
      network: 'mastercard',
    });
    expect(await gateway().lookup(newToken)).toEqual({ status: 'no_change' });
    expect(await gateway().lookup('tok_visa_au_closed')).toEqual({ status: 'closed' });

    const fingerprint = fingerprintOfToken('tok_visa_card-u1_au_expiry_09_2031');
    const listLookups = async (app: { request: (p: string) => Response | Promise<Response> }) =>
      (
        (await (await app.request(`/v1/account_updater/lookups?fingerprint=${fingerprint}`)).json()) as {
          data: { status: string; fingerprint: string }[];
        }
      ).data;
    expect(await listLookups({ request: (p) => fetch(`${base}${p}`) })).toMatchObject([
      { status: 'updated', fingerprint },
    ]);
    // Kept across a restart, and never the token itself.
    expect(await listLookups(createGatewaySimulator(file))).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).not.toContain('au_expiry_09_2031');
  });
});
