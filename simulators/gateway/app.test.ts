import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  GatewayInFlightError,
  GatewayRejectedError,
  GatewayUnavailableError,
  HttpPaymentGateway,
} from '../../clients/paymentGateway';
import {
  createGatewaySimulator,
  fingerprintOfToken,
  MAX_DELAY_MS,
  networkOfToken,
  type ChargeFault,
  type ChargeRecord,
  type SimulatorOptions,
} from './app';

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

/** A charge request; its reference is the payment id, the key's part before `:`. */
const charge = (token: string, key: string, customer = 'cust-1') => ({
  idempotency_key: key,
  token,
  amount: 1999,
  currency: 'EUR',
  customer_id: customer,
  initiator: 'mit' as const,
  reference: key.split(':')[0] as string,
});
const listed = async (customer: string) =>
  ((await (await fetch(`${base}/v1/charges?customer_id=${customer}`)).json()) as { data: ChargeRecord[] }).data;
const simulatorFaults = async (at = base) =>
  (await (await fetch(`${at}/_sim/faults`)).json()) as {
    in_flight: number;
    fail_next: number;
    fail_after_commit_next: number;
    lose_answer_next: number;
  };
const setFaults = async (faults: Record<string, number>, at = base) =>
  expect((await fetch(`${at}/_sim/faults`, { method: 'PUT', body: JSON.stringify(faults) })).status).toBe(200);
/** Waits (polling) until the condition holds. */
async function until(condition: () => Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
/** Serves a simulator of its own (with its own records file and options) over real HTTP. */
async function ownSimulator(
  options: SimulatorOptions,
  dataFile = path.join(mkdtempSync(path.join(tmpdir(), 'gateway-sim-')), 'charges.jsonl'),
) {
  let own: ServerType | undefined;
  await new Promise<void>((resolve) => {
    own = serve(
      { fetch: createGatewaySimulator(dataFile, undefined, options).fetch, hostname: '127.0.0.1', port: 0 },
      () => resolve(),
    );
  });
  const server = own as ServerType;
  const at = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base: at,
    dataFile,
    gateway: new HttpPaymentGateway(at, 2000),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

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

  it('answers 409 to a second request with a key while the first runs, charges once, refuses reuse', async () => {
    const body = (amount: number, reference?: string) =>
      JSON.stringify({ token: 'tok_visa', amount, currency: 'EUR', customer_id: 'c-k', initiator: 'mit', reference });
    const post = (amount: number, reference?: string) =>
      fetch(`${base}/v1/charges`, {
        method: 'POST',
        headers: { 'idempotency-key': 'pay-k:pm-1', 'content-type': 'application/json' },
        body: body(amount, reference),
      });
    // A request of an earlier test may still be held: start from none.
    await until(async () => (await simulatorFaults()).in_flight === 0);
    await setFaults({ latency_ms: 300 });
    let first: Response;
    try {
      const held = post(500, 'pay-k');
      await until(async () => (await simulatorFaults()).in_flight === 1);
      const second = await post(500, 'pay-k');
      expect(second.status).toBe(409);
      expect(await second.json()).toMatchObject({ error: { code: 'idempotency_key_in_flight' } });
      // Through the client: a transient error of its own kind.
      const client = gateway().charge({ ...charge('tok_visa', 'pay-k:pm-1', 'c-k'), amount: 500, reference: 'pay-k' });
      await expect(client).rejects.toBeInstanceOf(GatewayInFlightError);
      await expect(client).rejects.toBeInstanceOf(GatewayUnavailableError);
      first = await held;
    } finally {
      await setFaults({ latency_ms: 0 });
    }
    expect(first.status).toBe(200);
    const { id } = (await first.json()) as { id: string };
    expect(await listed('c-k')).toMatchObject([{ id, reference: 'pay-k' }]);
    // Once answered, the key replays (a request naming no reference is the same charge too).
    const again = await post(500);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toMatchObject({ id });
    for (const other of [post(501, 'pay-k'), post(500, 'pay-other')]) {
      const res = await other;
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'idempotency_key_in_use' } });
    }
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

describe('the gateway simulator keeps idempotency keys as a processor does', () => {
  const gateway = () => new HttpPaymentGateway(base, 1000);
  const rawCharge = (at: string, key: string, fields: Record<string, unknown> = {}) =>
    fetch(`${at}/v1/charges`, {
      method: 'POST',
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({
        token: 'tok_visa',
        amount: 1999,
        currency: 'EUR',
        customer_id: 'c-x',
        initiator: 'mit',
        ...fields,
      }),
    });

  it('keeps the reference on the record, and lists the charges of one reference, alone or with filters', async () => {
    const a = await gateway().charge(charge('tok_visa', 'pay-r1:pm-1', 'c-r'));
    await gateway().charge(charge('tok_visa', 'pay-r2:pm-1', 'c-r'));
    const b = await gateway().charge(charge('tok_decline_do_not_honor', 'pay-r1:pm-2', 'c-r2'));
    const ids = [a, b].map((r) => r.charge_id);
    const byReference = await gateway().chargesByReference('pay-r1');
    expect(byReference.map((c) => c.id)).toEqual(ids);
    expect(byReference).toMatchObject([
      { reference: 'pay-r1', idempotency_key: 'pay-r1:pm-1', status: 'succeeded', customer_id: 'c-r' },
      { reference: 'pay-r1', idempotency_key: 'pay-r1:pm-2', status: 'declined', customer_id: 'c-r2' },
    ]);
    expect(await gateway().chargesByReference('pay-none')).toEqual([]);
    expect(await gateway().getCharge(ids[0] as string)).toMatchObject({ reference: 'pay-r1' });
    // Combined with the customer, a page at a time.
    const page = async (q: string) =>
      (await (await fetch(`${base}/v1/charges?${q}`)).json()) as { data: ChargeRecord[]; has_more: boolean };
    expect((await page('reference=pay-r1&customer_id=c-r2')).data.map((c) => c.id)).toEqual([ids[1]]);
    const first = await page('reference=pay-r1&limit=1');
    expect(first).toMatchObject({ data: [{ id: ids[0] }], has_more: true });
    const second = await page(`reference=pay-r1&limit=1&starting_after=${ids[0]}`);
    expect(second.data.map((c) => c.id)).toEqual([ids[1]]);
    // A reference is 1–200 characters.
    expect((await rawCharge(base, 'pay-r3:pm-1', { reference: '' })).status).toBe(400);
    expect((await rawCharge(base, 'pay-r3:pm-1', { reference: 'r'.repeat(201) })).status).toBe(400);
  });

  it('fail_after_commit_next: the client sees a transient error, the charge is made, a retry replays it', async () => {
    await setFaults({ fail_after_commit_next: 1 });
    const request = charge('tok_visa_secret-token-fac', 'pay-fac:pm-1', 'c-fac');
    const failed = gateway().charge(request);
    await expect(failed).rejects.toBeInstanceOf(GatewayUnavailableError);
    await expect(failed).rejects.not.toBeInstanceOf(GatewayInFlightError);
    await expect(failed).rejects.toThrow(/503/);
    expect((await simulatorFaults()).fail_after_commit_next).toBe(0);
    const made = await gateway().chargesByReference('pay-fac');
    expect(made).toMatchObject([{ status: 'succeeded', idempotency_key: 'pay-fac:pm-1' }]);
    expect(await gateway().charge(request)).toMatchObject({ outcome: 'succeeded', charge_id: made[0]?.id });
    expect(await gateway().chargesByReference('pay-fac')).toHaveLength(1);
  });

  it('lose_answer_next: the connection drops without an answer, the charge is made, a retry replays it', async () => {
    await setFaults({ lose_answer_next: 1 });
    const request = charge('tok_visa_decline_insufficient_funds_secret-la', 'pay-la:pm-1', 'c-la');
    const lost = gateway().charge(request);
    await expect(lost).rejects.toBeInstanceOf(GatewayUnavailableError);
    // No HTTP answer at all: a network error, not a status.
    await expect(lost).rejects.toThrow(/no answer from the gateway/);
    // Never the token in an error.
    await expect(lost).rejects.not.toThrow(/secret-la/);
    expect(await simulatorFaults()).toMatchObject({ lose_answer_next: 0, in_flight: 0 });
    const made = await gateway().chargesByReference('pay-la');
    expect(made).toMatchObject([{ status: 'declined', decline_code: 'insufficient_funds' }]);
    expect(await gateway().charge(request)).toMatchObject({
      outcome: 'declined',
      decline_code: 'insufficient_funds',
      charge_id: made[0]?.id,
    });
    expect(await gateway().chargesByReference('pay-la')).toHaveLength(1);
    // The server goes on answering (over a new connection).
    expect(await gateway().charge(charge('tok_visa', 'pay-la2:pm-1', 'c-la'))).toMatchObject({ outcome: 'succeeded' });
  });

  it('lose_answer without a connection to drop (app.fetch called directly) throws, after the charge', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'gateway-sim-')), 'charges.jsonl');
    const app = createGatewaySimulator(file, undefined, { fault: () => ({ kind: 'lose_answer' }) });
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const res = await app.request('/v1/charges', {
        method: 'POST',
        headers: { 'idempotency-key': 'pay-ld:pm-1', 'content-type': 'application/json' },
        body: JSON.stringify({ token: 'tok_visa', amount: 1, currency: 'EUR', customer_id: 'c', initiator: 'mit' }),
      });
      expect(res.status).toBe(500);
      expect(quiet).toHaveBeenCalled();
    } finally {
      quiet.mockRestore();
    }
    expect(((await (await app.request('/v1/charges')).json()) as { data: unknown[] }).data).toHaveLength(1);
  });

  it('asks the in-process fault hook once per request that charges or replays; a held key is in flight', async () => {
    const asked: { idempotency_key: string; reference: string | null; customer_id: string }[] = [];
    let heard = () => {};
    const hookAsked = new Promise<void>((resolve) => (heard = resolve));
    const plan: (ChargeFault | null)[] = [{ kind: 'latency', ms: 300 }, null, { kind: 'fail_before' }, null];
    const sim = await ownSimulator({
      fault: (req) => {
        asked.push(req);
        heard();
        return plan.shift() ?? null;
      },
    });
    try {
      const request = { ...charge('tok_visa', 'pay-h:pm-1', 'c-h'), amount: 700 };
      const held = sim.gateway.charge(request);
      await hookAsked;
      // While the first is held, the key is in flight: refused at once, and the hook is not asked.
      await expect(sim.gateway.charge(request)).rejects.toBeInstanceOf(GatewayInFlightError);
      const first = await held;
      expect(first).toMatchObject({ outcome: 'succeeded' });
      // A replay asks the hook too (null: replayed); then fail_before answers 503 without a replay.
      expect(await sim.gateway.charge(request)).toEqual(first);
      await expect(sim.gateway.charge(request)).rejects.toBeInstanceOf(GatewayUnavailableError);
      expect(await sim.gateway.charge(request)).toEqual(first);
      // A refused request is not asked.
      await expect(sim.gateway.charge({ ...request, amount: 701 })).rejects.toBeInstanceOf(GatewayRejectedError);
      expect(asked).toEqual(Array(4).fill({ idempotency_key: 'pay-h:pm-1', reference: 'pay-h', customer_id: 'c-h' }));
      expect(await sim.gateway.chargesByReference('pay-h')).toHaveLength(1);
    } finally {
      await sim.close();
    }
  });

  it('fail_before from the hook charges nothing; the retry makes the charge', async () => {
    const plan: (ChargeFault | null)[] = [{ kind: 'fail_before' }];
    const sim = await ownSimulator({ fault: () => plan.shift() ?? null });
    try {
      const request = charge('tok_visa', 'pay-fb:pm-1', 'c-fb');
      await expect(sim.gateway.charge(request)).rejects.toBeInstanceOf(GatewayUnavailableError);
      expect(await sim.gateway.chargesByReference('pay-fb')).toEqual([]);
      expect(await sim.gateway.charge(request)).toMatchObject({ outcome: 'succeeded' });
      expect(await sim.gateway.chargesByReference('pay-fb')).toHaveLength(1);
    } finally {
      await sim.close();
    }
  });

  it('forgets a key keyTtlMs after its first request: the key makes a new charge (kept over a restart)', async () => {
    let t = Date.parse('2030-01-01T00:00:00.000Z');
    const options = { keyTtlMs: 1000, now: () => t };
    const sim = await ownSimulator(options);
    let restarted: Awaited<ReturnType<typeof ownSimulator>> | undefined;
    try {
      const request = charge('tok_visa', 'pay-e:pm-1', 'c-e1');
      const first = await sim.gateway.charge(request);
      t += 999;
      expect(await sim.gateway.charge(request)).toEqual(first);
      const replay = await rawCharge(sim.base, 'pay-e:pm-1', { customer_id: 'c-e1', reference: 'pay-e' });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(await sim.gateway.chargesByReference('pay-e')).toHaveLength(1);
      t += 1;
      const second = await sim.gateway.charge(request);
      expect(second).toMatchObject({ outcome: 'succeeded' });
      expect(second.charge_id).not.toBe(first.charge_id);
      const both = await sim.gateway.chargesByReference('pay-e');
      expect(both.map((c) => c.id)).toEqual([first.charge_id, second.charge_id]);
      expect(both.map((c) => c.created_at)).toEqual(['2030-01-01T00:00:00.000Z', '2030-01-01T00:00:01.000Z']);
      // The key now means the new charge, its TTL counted from the new first request.
      t += 999;
      expect(await sim.gateway.charge(request)).toEqual(second);
      // An expired key is a new request: other parameters are no reason to refuse it.
      t += 1;
      expect(await sim.gateway.charge({ ...request, amount: 5 })).toMatchObject({ outcome: 'succeeded' });
      const three = await sim.gateway.chargesByReference('pay-e');
      expect(three.map((c) => c.amount)).toEqual([1999, 1999, 5]);

      // After a restart the key still means the latest charge, and still expires on time.
      restarted = await ownSimulator(options, sim.dataFile);
      t += 500;
      expect(await restarted.gateway.charge({ ...request, amount: 5 })).toMatchObject({
        charge_id: three[2]?.id,
      });
      await expect(restarted.gateway.charge(request)).rejects.toMatchObject({
        status: 400,
        code: 'idempotency_key_in_use',
      });
      t += 500;
      expect(await restarted.gateway.charge(request)).toMatchObject({ outcome: 'succeeded' });
      expect(await restarted.gateway.chargesByReference('pay-e')).toHaveLength(4);
    } finally {
      await sim.close();
      await restarted?.close();
    }
  });

  it('moves its clock on with PUT /_sim/clock: records are dated by it, and keys expire by it', async () => {
    const t = Date.parse('2031-06-01T12:00:00.000Z');
    const sim = await ownSimulator({ keyTtlMs: 60_000, now: () => t });
    try {
      const clock = async (advance?: unknown) =>
        fetch(`${sim.base}/_sim/clock`, {
          method: advance === undefined ? 'GET' : 'PUT',
          body: advance === undefined ? null : JSON.stringify(advance),
        });
      expect(await (await clock()).json()).toEqual({ now: '2031-06-01T12:00:00.000Z', offset_ms: 0 });
      const request = charge('tok_visa', 'pay-c:pm-1', 'c-c1');
      const first = await sim.gateway.charge(request);
      const advanced = await clock({ advance_ms: 59_999 });
      expect(await advanced.json()).toEqual({ now: '2031-06-01T12:00:59.999Z', offset_ms: 59_999 });
      expect(await sim.gateway.charge(request)).toEqual(first);
      await clock({ advance_ms: 1 });
      expect(await (await clock()).json()).toEqual({ now: '2031-06-01T12:01:00.000Z', offset_ms: 60_000 });
      const second = await sim.gateway.charge(request);
      expect(second.charge_id).not.toBe(first.charge_id);
      expect((await sim.gateway.chargesByReference('pay-c')).map((c) => c.created_at)).toEqual([
        '2031-06-01T12:00:00.000Z',
        '2031-06-01T12:01:00.000Z',
      ]);
      // The clock only goes forward.
      expect((await clock({ advance_ms: -1 })).status).toBe(400);
      expect((await clock({ advance_ms: 1.5 })).status).toBe(400);
    } finally {
      await sim.close();
    }
  });

  it('reloads its records with their references, and loads older lines that have none', async () => {
    await gateway().charge(charge('tok_visa', 'pay-rl:pm-1', 'c-rl'));
    const restarted = createGatewaySimulator(file);
    const res = await restarted.request('/v1/charges?reference=pay-rl');
    expect(((await res.json()) as { data: ChargeRecord[] }).data).toMatchObject([
      { reference: 'pay-rl', idempotency_key: 'pay-rl:pm-1', customer_id: 'c-rl' },
    ]);

    const old = path.join(mkdtempSync(path.join(tmpdir(), 'gateway-sim-')), 'charges.jsonl');
    const created_at = new Date().toISOString();
    const record = {
      id: 'ch_old1',
      idempotency_key: 'pay-old:pm-1',
      customer_id: 'c-old',
      amount: 1999,
      currency: 'EUR',
      status: 'succeeded',
      decline_code: null,
      created_at,
    };
    writeFileSync(old, `${JSON.stringify({ record, http_status: 200 })}\n`);
    const sim = await ownSimulator({}, old);
    try {
      expect(await sim.gateway.getCharge('ch_old1')).toMatchObject({ id: 'ch_old1', reference: null });
      // Its key lives from the record's creation: a retry replays it, whatever reference it names.
      expect(await sim.gateway.charge(charge('tok_visa', 'pay-old:pm-1', 'c-old'))).toMatchObject({
        outcome: 'succeeded',
        charge_id: 'ch_old1',
      });
    } finally {
      await sim.close();
    }
  });

  it('refuses a key reused for another charge with a GatewayRejectedError carrying the status and code', async () => {
    const request = charge('tok_visa_secret-iu', 'pay-iu:pm-1', 'c-iu');
    await gateway().charge(request);
    const refused = gateway().charge({ ...request, amount: 1 });
    await expect(refused).rejects.toBeInstanceOf(GatewayRejectedError);
    await expect(refused).rejects.toMatchObject({
      name: 'GatewayRejectedError',
      status: 400,
      code: 'idempotency_key_in_use',
    });
    await expect(refused).rejects.not.toThrow(/secret-iu/);
    const malformed = gateway().charge({ ...charge('tok_visa', 'pay-iu:pm-2', 'c-iu'), currency: 'euro' });
    await expect(malformed).rejects.toMatchObject({ status: 400, code: 'invalid_request' });
  });

  it("bounds a charge by the caller's signal and its own timeout", async () => {
    await until(async () => (await simulatorFaults()).in_flight === 0);
    await setFaults({ latency_ms: 300 });
    try {
      const timedOut = gateway().charge(charge('tok_visa', 'pay-s:pm-1', 'c-s'), { timeoutMs: 50 });
      await expect(timedOut).rejects.toBeInstanceOf(GatewayUnavailableError);
      await expect(timedOut).rejects.toThrow(/TimeoutError/);
      const controller = new AbortController();
      const aborted = gateway().charge(charge('tok_visa', 'pay-s:pm-2', 'c-s'), { signal: controller.signal });
      controller.abort();
      await expect(aborted).rejects.toBeInstanceOf(GatewayUnavailableError);
      await expect(gateway().chargesByReference('pay-s', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
        GatewayUnavailableError,
      );
    } finally {
      await until(async () => (await simulatorFaults()).in_flight === 0);
      await setFaults({ latency_ms: 0 });
    }
  });
});

describe('the gateway simulator settles charges later and lists them late, as processors do', () => {
  const T0 = Date.parse('2032-03-01T09:00:00.000Z');
  /** A charge request over HTTP, as the client sends it; its reference is the key's part before `:`. */
  const post = (at: string, token: string, key: string, customer = 'c-p') =>
    fetch(`${at}/v1/charges`, {
      method: 'POST',
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({
        token,
        amount: 1999,
        currency: 'EUR',
        customer_id: customer,
        initiator: 'mit',
        reference: key.split(':')[0],
      }),
    });
  const read = async (res: Response) => ({
    status: res.status,
    replayed: res.headers.get('idempotent-replayed'),
    body: (await res.json()) as Record<string, unknown> & { id?: string; error?: Record<string, unknown> },
  });
  const byId = async (at: string, id: string) => (await (await fetch(`${at}/v1/charges/${id}`)).json()) as ChargeRecord;
  const listing = async (at: string, q: string) =>
    ((await (await fetch(`${at}/v1/charges?${q}`)).json()) as { data: ChargeRecord[] }).data;
  const faultsOf = async (at: string) => (await (await fetch(`${at}/_sim/faults`)).json()) as Record<string, number>;
  /** What a charge record says of its outcome (what differs between two charges aside). */
  const outcomeOf = (r: ChargeRecord) => {
    const { id: _id, idempotency_key: _key, reference: _ref, created_at: _at, ...rest } = r;
    return rest;
  };
  const declining = 'tok_mastercard_card-p2_decline_insufficient_funds_mac_25';

  it('processing_next: answered processing, and said so everywhere until it settles by the clock', async () => {
    let t = T0;
    const sim = await ownSimulator({ now: () => t });
    try {
      // The outcomes as they are answered at once, to compare with (other keys, other payments).
      const paid = await read(await post(sim.base, 'tok_visa_card-p1', 'pay-p0:pm-1'));
      const declined = await read(await post(sim.base, declining, 'pay-p00:pm-1'));
      expect([paid.status, declined.status]).toEqual([200, 402]);

      await setFaults({ processing_next: 2, processing_ms: 5000 }, sim.base);
      const a = await read(await post(sim.base, 'tok_visa_card-p1', 'pay-p1:pm-1'));
      const b = await read(await post(sim.base, declining, 'pay-p2:pm-1'));
      const idA = a.body.id as string;
      const idB = b.body.id as string;
      expect(a).toEqual({
        status: 200,
        replayed: null,
        body: { id: idA, status: 'processing', network: 'visa', fingerprint: fingerprintOfToken('tok_visa_card-p1') },
      });
      expect(b).toEqual({
        status: 200,
        replayed: null,
        body: { id: idB, status: 'processing', network: 'mastercard', fingerprint: fingerprintOfToken(declining) },
      });
      // The counter took two new charges; the next one is answered at once.
      expect(await faultsOf(sim.base)).toMatchObject({ processing_next: 0, processing_ms: 5000 });
      expect((await read(await post(sim.base, 'tok_visa', 'pay-p3:pm-1'))).body).toMatchObject({ status: 'succeeded' });

      /** The charge as its record, the listing, a replay and the client say it. */
      const everywhere = async (token: string, key: string, id: string) => {
        const reference = key.split(':')[0] as string;
        const replay = await read(await post(sim.base, token, key));
        const client = await sim.gateway
          .charge({ ...charge(token, key, 'c-p'), reference })
          .catch((err: unknown) => err);
        return {
          record: await byId(sim.base, id),
          listed: await listing(sim.base, `reference=${reference}`),
          byReference: await sim.gateway.chargesByReference(reference),
          replay,
          client,
        };
      };
      const whileProcessing = async (token: string, key: string, id: string) => {
        const seen = await everywhere(token, key, id);
        expect(seen.record).toMatchObject({
          id,
          status: 'processing',
          decline_code: null,
          network_response_code: null,
          category: null,
          advice_code: null,
        });
        expect(seen.listed).toEqual([seen.record]);
        expect(seen.byReference).toMatchObject([{ id, status: 'processing' }]);
        expect(seen.replay).toEqual({
          status: 200,
          replayed: 'true',
          body: { id, status: 'processing', network: seen.record.network, fingerprint: seen.record.fingerprint },
        });
        // The client: an outcome not known yet, neither a success nor a decline.
        expect(seen.client).toBeInstanceOf(GatewayUnavailableError);
        expect(seen.client).not.toBeInstanceOf(GatewayInFlightError);
        expect(String(seen.client)).toMatch(/processing/);
      };
      await whileProcessing('tok_visa_card-p1', 'pay-p1:pm-1', idA);
      await whileProcessing(declining, 'pay-p2:pm-1', idB);
      t += 4999;
      await whileProcessing('tok_visa_card-p1', 'pay-p1:pm-1', idA);
      await whileProcessing(declining, 'pay-p2:pm-1', idB);

      t += 1;
      const settledA = await everywhere('tok_visa_card-p1', 'pay-p1:pm-1', idA);
      const settledB = await everywhere(declining, 'pay-p2:pm-1', idB);
      // Each replay answers what the charge would have been answered at once, as any replay does.
      expect(settledA.replay).toEqual({ status: 200, replayed: 'true', body: { ...paid.body, id: idA } });
      const declineBody = { error: { ...declined.body.error, charge: idB } };
      expect(settledB.replay).toEqual({ status: 402, replayed: 'true', body: declineBody });
      expect(declineBody.error).toMatchObject({ decline_code: 'insufficient_funds', advice_code: '25' });
      expect(settledA.client).toEqual({
        outcome: 'succeeded',
        charge_id: idA,
        network: 'visa',
        fingerprint: fingerprintOfToken('tok_visa_card-p1'),
      });
      expect(settledB.client).toMatchObject({ outcome: 'declined', charge_id: idB, advice_code: '25' });
      // The record and the listing say the outcome, the same as the charges answered at once.
      const [firstPaid, firstDeclined] = await listing(sim.base, 'customer_id=c-p&limit=2');
      expect(outcomeOf(settledA.record)).toEqual(outcomeOf(firstPaid as ChargeRecord));
      expect(outcomeOf(settledB.record)).toEqual(outcomeOf(firstDeclined as ChargeRecord));
      expect(settledA.listed).toEqual([settledA.record]);
      expect(settledB.listed).toEqual([settledB.record]);
      expect(settledB.byReference).toMatchObject([{ id: idB, status: 'declined', decline_code: 'insufficient_funds' }]);
      // Made once each: the replays made nothing.
      expect(await listing(sim.base, 'customer_id=c-p')).toHaveLength(5);
    } finally {
      await sim.close();
    }
  });

  it('keeps when a charge settles across a restart: settled while down is settled when back', async () => {
    let t = T0;
    const sim = await ownSimulator({ now: () => t });
    const restarts: Awaited<ReturnType<typeof ownSimulator>>[] = [];
    const restart = async () => {
      const again = await ownSimulator({ now: () => t }, sim.dataFile);
      restarts.push(again);
      return again;
    };
    try {
      await setFaults({ processing_next: 1, processing_ms: 10_000 }, sim.base);
      const { body } = await read(await post(sim.base, 'tok_visa', 'pay-pr:pm-1'));
      await sim.close();
      t += 9_999;
      const early = await restart();
      expect(await byId(early.base, body.id as string)).toMatchObject({ status: 'processing' });
      await early.close();
      // Down while it settles.
      t += 1;
      const late = await restart();
      expect(await byId(late.base, body.id as string)).toMatchObject({ status: 'succeeded' });
      expect((await read(await post(late.base, 'tok_visa', 'pay-pr:pm-1'))).body).toMatchObject({
        id: body.id,
        status: 'succeeded',
      });

      // By a clock moved on with PUT /_sim/clock: the move is kept, so what settled stays settled.
      await setFaults({ processing_next: 1, processing_ms: 60_000 }, late.base);
      const moved = await read(await post(late.base, 'tok_visa', 'pay-pc:pm-1'));
      const advance = await fetch(`${late.base}/_sim/clock`, {
        method: 'PUT',
        body: JSON.stringify({ advance_ms: 60_000 }),
      });
      expect(advance.status).toBe(200);
      expect(await byId(late.base, moved.body.id as string)).toMatchObject({ status: 'succeeded' });
      await late.close();
      const after = await restart();
      expect(await (await fetch(`${after.base}/_sim/clock`)).json()).toMatchObject({ offset_ms: 60_000 });
      expect(await byId(after.base, moved.body.id as string)).toMatchObject({ status: 'succeeded' });
    } finally {
      await sim.close().catch(() => undefined);
      for (const r of restarts) await r.close().catch(() => undefined);
    }
  });

  it('the in-process hook makes a new charge processing; a replay is answered as its charge stands', async () => {
    let t = T0;
    const plan: (ChargeFault | null)[] = [{ kind: 'processing', ms: 1000 }, { kind: 'processing', ms: 1 }, null];
    const sim = await ownSimulator({ now: () => t, fault: () => plan.shift() ?? null });
    try {
      const request = charge('tok_visa', 'pay-ph:pm-1', 'c-ph');
      await expect(sim.gateway.charge(request)).rejects.toThrow(/processing/);
      // The second `processing` comes with a replay: nothing new is made, it stays as it stands.
      await expect(sim.gateway.charge(request)).rejects.toBeInstanceOf(GatewayUnavailableError);
      t += 1000;
      expect(await sim.gateway.charge(request)).toMatchObject({ outcome: 'succeeded' });
      expect(await sim.gateway.chargesByReference('pay-ph')).toMatchObject([{ status: 'succeeded' }]);
    } finally {
      await sim.close();
    }
  });

  it('refuses a settling time or a listing lag out of bounds, charging nothing', async () => {
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    const plan: ChargeFault[] = [
      { kind: 'processing', ms: 0 },
      { kind: 'processing', ms: MAX_DELAY_MS + 1 },
      { kind: 'processing', ms: 2.5 },
    ];
    const lags = [0, 0, 0, -1, MAX_DELAY_MS + 1, Number.NaN];
    const sim = await ownSimulator({ fault: () => plan.shift() ?? null, listingLag: () => lags.shift() ?? 0 });
    try {
      for (let n = 0; n < 6; n++)
        expect((await post(sim.base, 'tok_visa', `pay-pb${n}:pm-1`, 'c-pb')).status).toBe(500);
      expect(await listing(sim.base, 'customer_id=c-pb')).toEqual([]);
      expect(await sim.gateway.charge(charge('tok_visa', 'pay-pb0:pm-1', 'c-pb'))).toMatchObject({
        outcome: 'succeeded',
      });
      for (const bad of [{ processing_ms: 0 }, { processing_ms: MAX_DELAY_MS + 1 }, { listing_lag_ms: -1 }]) {
        const res = await fetch(`${sim.base}/_sim/faults`, { method: 'PUT', body: JSON.stringify(bad) });
        expect(res.status).toBe(400);
      }
      expect(await faultsOf(sim.base)).toMatchObject({ processing_next: 0, processing_ms: 60_000, listing_lag_ms: 0 });
    } finally {
      quiet.mockRestore();
      await sim.close();
    }
  });

  it('listing_lag_ms: a charge is listed that long after it was made; by id and replays at once', async () => {
    let t = T0;
    const sim = await ownSimulator({ now: () => t });
    let restarted: Awaited<ReturnType<typeof ownSimulator>> | undefined;
    try {
      await setFaults({ listing_lag_ms: 3000 }, sim.base);
      const late = await sim.gateway.charge(charge('tok_visa', 'pay-ll1:pm-1', 'c-ll'));
      const since = `created_gte=${new Date(T0).toISOString()}`;
      for (const q of ['reference=pay-ll1', 'customer_id=c-ll', since]) expect(await listing(sim.base, q)).toEqual([]);
      expect(await sim.gateway.chargesByReference('pay-ll1')).toEqual([]);
      expect(await sim.gateway.getCharge(late.charge_id as string)).toMatchObject({ status: 'succeeded' });
      const replay = await post(sim.base, 'tok_visa', 'pay-ll1:pm-1', 'c-ll');
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      // Lifted: a charge made now is listed at once; the one made before keeps its lag.
      await setFaults({ listing_lag_ms: 0 }, sim.base);
      const prompt = await sim.gateway.charge(charge('tok_visa', 'pay-ll2:pm-1', 'c-ll'));
      t += 2999;
      expect((await listing(sim.base, 'customer_id=c-ll')).map((c) => c.id)).toEqual([prompt.charge_id]);
      // Kept over a restart.
      await sim.close();
      restarted = await ownSimulator({ now: () => t }, sim.dataFile);
      expect((await listing(restarted.base, since)).map((c) => c.id)).toEqual([prompt.charge_id]);
      t += 1;
      // Then listed, in the order the charges were made.
      expect((await listing(restarted.base, since)).map((c) => c.id)).toEqual([late.charge_id, prompt.charge_id]);
      expect(await restarted.gateway.chargesByReference('pay-ll1')).toMatchObject([{ id: late.charge_id }]);
    } finally {
      await sim.close().catch(() => undefined);
      await restarted?.close();
    }
  });

  it('asks the in-process listing lag once per new charge, and the HTTP lag goes first', async () => {
    let t = T0;
    const asked: string[] = [];
    const draws = [500, 0, 2000];
    const sim = await ownSimulator({
      now: () => t,
      listingLag: (req) => {
        asked.push(req.idempotency_key);
        return draws.shift() ?? 0;
      },
    });
    try {
      const ids: string[] = [];
      for (const n of [1, 2, 3]) {
        const made = await sim.gateway.charge(charge('tok_visa', `pay-lh${n}:pm-1`, 'c-lh'));
        ids.push(made.charge_id as string);
        // A replay, a refusal: not asked.
        await sim.gateway.charge(charge('tok_visa', `pay-lh${n}:pm-1`, 'c-lh'));
        await sim.gateway.charge({ ...charge('tok_visa', `pay-lh${n}:pm-1`, 'c-lh'), amount: 1 }).catch(() => null);
      }
      await setFaults({ listing_lag_ms: 10_000 }, sim.base);
      const fourth = await sim.gateway.charge(charge('tok_visa', 'pay-lh4:pm-1', 'c-lh'));
      expect(asked).toEqual(['pay-lh1:pm-1', 'pay-lh2:pm-1', 'pay-lh3:pm-1']);
      const listedIds = async () => (await listing(sim.base, 'customer_id=c-lh')).map((c) => c.id);
      expect(await listedIds()).toEqual([ids[1]]);
      t += 500;
      expect(await listedIds()).toEqual([ids[0], ids[1]]);
      t += 1500;
      expect(await listedIds()).toEqual(ids);
      t += 8000;
      expect(await listedIds()).toEqual([...ids, fourth.charge_id]);
    } finally {
      await sim.close();
    }
  });
});
