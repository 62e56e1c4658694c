/**
 * A payment-gateway simulator that behaves like a card processor's test mode:
 *   POST /v1/charges (Idempotency-Key header; {token, amount, currency, customer_id})
 *     200 {id, status: "succeeded"} | 402 {error: {code: "card_declined", decline_code}} | 503
 *     — a token containing `decline_<code>` declines with that code, one containing
 *       `unavailable` answers 503, one containing `revoked` is refused as a request (400
 *       `token_revoked`: no charge, and no retry can help), anything else succeeds;
 *     — a repeated Idempotency-Key returns the first answer and creates no new charge.
 *   GET /v1/charges?customer_id=  every charge attempt of a customer.
 *   PUT /_sim/faults {latency_ms?, fail_next?}  latency and failure injection for tests.
 *   GET /_sim/faults  the faults in force, and `in_flight`: charge requests received, not yet answered.
 * Records are appended to a JSON-lines file, so a restart loses nothing.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { declineCodeInToken } from '../../payments/declines';

export interface ChargeRecord {
  id: string;
  idempotency_key: string;
  customer_id: string;
  amount: number;
  currency: string;
  status: 'succeeded' | 'declined';
  decline_code: string | null;
  created_at: string;
}

interface StoredAnswer {
  record: ChargeRecord;
  http_status: 200 | 402;
}

const chargeBody = z.strictObject({
  token: z.string().min(1),
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/),
  customer_id: z.string().min(1),
});

export function createGatewaySimulator(dataFile: string) {
  mkdirSync(path.dirname(dataFile), { recursive: true });
  const byKey = new Map<string, StoredAnswer>();
  if (existsSync(dataFile)) {
    for (const line of readFileSync(dataFile, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const answer = JSON.parse(line) as StoredAnswer;
      byKey.set(answer.record.idempotency_key, answer);
    }
  }
  const faults = { latency_ms: 0, fail_next: 0 };
  /** Charge requests received and not yet answered (a test waits on it instead of on the clock). */
  let inFlight = 0;

  const answer = (a: StoredAnswer) =>
    a.http_status === 200
      ? { status: 200 as const, body: { id: a.record.id, status: 'succeeded' } }
      : {
          status: 402 as const,
          body: { error: { code: 'card_declined', decline_code: a.record.decline_code, charge: a.record.id } },
        };

  const app = new Hono();
  app.post('/v1/charges', async (c) => {
    inFlight++;
    try {
      return await charge(c);
    } finally {
      inFlight--;
    }
  });
  const charge = async (c: Context) => {
    if (faults.latency_ms > 0) await sleep(faults.latency_ms);
    const key = c.req.header('idempotency-key');
    if (!key)
      return c.json({ error: { code: 'missing_idempotency_key', message: 'Idempotency-Key header required' } }, 400);
    const prior = byKey.get(key);
    if (prior) {
      const a = answer(prior);
      c.header('idempotent-replayed', 'true');
      return c.json(a.body, a.status);
    }
    if (faults.fail_next > 0) {
      faults.fail_next--;
      return c.json({ error: { code: 'simulated_failure' } }, 503);
    }
    const parsed = chargeBody.safeParse(await c.req.json().catch(() => null));
    if (!parsed.success)
      return c.json({ error: { code: 'invalid_request', message: parsed.error.issues[0]?.message } }, 400);
    const { token, amount, currency, customer_id } = parsed.data;
    if (token.includes('unavailable')) return c.json({ error: { code: 'gateway_unavailable' } }, 503);
    if (token.includes('revoked'))
      return c.json({ error: { code: 'token_revoked', message: 'the token was revoked by its issuer' } }, 400);
    const declineCode = declineCodeInToken(token);
    const stored: StoredAnswer = {
      http_status: declineCode ? 402 : 200,
      record: {
        id: `ch_${randomUUID().replace(/-/g, '')}`,
        idempotency_key: key,
        customer_id,
        amount,
        currency,
        status: declineCode ? 'declined' : 'succeeded',
        decline_code: declineCode,
        created_at: new Date().toISOString(),
      },
    };
    appendFileSync(dataFile, `${JSON.stringify(stored)}\n`);
    byKey.set(key, stored);
    const a = answer(stored);
    return c.json(a.body, a.status);
  };

  app.get('/v1/charges', (c) => {
    const customerId = c.req.query('customer_id');
    const data = [...byKey.values()].map((a) => a.record).filter((r) => !customerId || r.customer_id === customerId);
    return c.json({ data });
  });

  app.put('/_sim/faults', async (c) => {
    const body = z
      .strictObject({ latency_ms: z.number().int().min(0).optional(), fail_next: z.number().int().min(0).optional() })
      .safeParse(await c.req.json());
    if (!body.success) return c.json({ error: { code: 'invalid_request' } }, 400);
    Object.assign(faults, body.data);
    return c.json(faults);
  });
  app.get('/_sim/faults', (c) => c.json({ ...faults, in_flight: inFlight }));
  app.get('/healthz', (c) => c.json({ status: 'ok', charges: byKey.size }));
  return app;
}
