/**
 * The gateway simulator's charges: `POST /v1/charges` as a processor answers it (the
 * Idempotency-Key kept, one request per key at a time, faults injected, charges that settle
 * later), and the charge records read back as they stand (`GET /v1/charges`, which may lag behind
 * commits, and `GET /v1/charges/{id}`). The API is described in ./app.ts.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { declineCodeInToken } from '../../payments/declines';
import { fingerprintOfToken, networkDecline, networkOfToken } from './cards';
import {
  asItStands,
  isListed,
  liveAnswer,
  MAX_DELAY_MS,
  now,
  store,
  type ChargeAbout,
  type ChargeFault,
  type ChargeRecord,
  type GatewayState,
  type StoredAnswer,
} from './state';

const chargeBody = z.strictObject({
  token: z.string().min(1),
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/),
  customer_id: z.string().min(1),
  initiator: z.enum(['cit', 'mit']),
  reference: z.string().min(1).max(200).optional(),
});
type ChargeBody = z.infer<typeof chargeBody>;

const listQuery = z.object({
  customer_id: z.string().optional(),
  reference: z.string().optional(),
  created_gte: z.iso.datetime({ offset: true }).optional(),
  starting_after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(1000),
});

/** Adds the charge routes to the simulator's app. */
export function chargeRoutes(app: Hono, s: GatewayState) {
  app.post('/v1/charges', async (c) => {
    s.inFlight++;
    try {
      return await charge(s, c);
    } finally {
      s.inFlight--;
    }
  });
  app.get('/v1/charges', (c) => listCharges(s, c));
  app.get('/v1/charges/:id', (c) => {
    const at = s.byId.get(c.req.param('id'));
    if (at === undefined) return c.json({ error: { code: 'resource_missing' } }, 404);
    return c.json(asItStands(s, s.records[at] as ChargeRecord));
  });
}

/**
 * The key's answer as its charge stands at `at`: 200 `processing` until a charge that settles
 * later settles, then the answer it settled to (as it would have been answered at once).
 */
function answer(s: GatewayState, { http_status, record: r }: StoredAnswer, at = now(s)) {
  const card = { network: r.network, fingerprint: r.fingerprint };
  if (asItStands(s, r, at).status === 'processing')
    return { status: 200 as const, body: { id: r.id, status: 'processing', ...card } };
  return http_status === 200
    ? { status: 200 as const, body: { id: r.id, status: 'succeeded', ...card } }
    : {
        status: 402 as const,
        body: {
          error: {
            code: 'card_declined',
            decline_code: r.decline_code,
            charge: r.id,
            ...card,
            network_response_code: r.network_response_code ?? null,
            category: r.category ?? null,
            advice_code: r.advice_code ?? null,
          },
        },
      };
}

/** The fault for a request: the HTTP counters first (new charges only), then the in-process hook. */
function faultFor(s: GatewayState, makesNewCharge: boolean, req: ChargeAbout): ChargeFault | null {
  const { faults } = s;
  if (makesNewCharge) {
    if (faults.fail_next > 0) {
      faults.fail_next--;
      return { kind: 'fail_before' };
    }
    if (faults.fail_after_commit_next > 0) {
      faults.fail_after_commit_next--;
      return { kind: 'fail_after_commit' };
    }
    if (faults.lose_answer_next > 0) {
      faults.lose_answer_next--;
      return { kind: 'lose_answer' };
    }
    if (faults.processing_next > 0) {
      faults.processing_next--;
      return { kind: 'processing', ms: faults.processing_ms };
    }
  }
  return s.options.fault?.(req) ?? null;
}

/** A delay a test chose (ms), refused before anything is charged when it is not within its bounds. */
function bounded(ms: number, min: number, what: string): number {
  if (!Number.isInteger(ms) || ms < min || ms > MAX_DELAY_MS)
    throw new Error(`${what} must be an integer from ${min} to ${MAX_DELAY_MS} ms, not ${ms}`);
  return ms;
}

/**
 * How a new charge is delayed: when it settles, if it settles later (a `processing` fault), and
 * how long after its commit it is listed (`listing_lag_ms` when set, else the in-process hook).
 */
function delaysFor(s: GatewayState, fault: ChargeFault | null, req: ChargeAbout) {
  const lag = s.faults.listing_lag_ms > 0 ? s.faults.listing_lag_ms : (s.options.listingLag?.(req) ?? 0);
  return {
    settleMs: fault?.kind === 'processing' ? bounded(fault.ms, 1, 'a processing fault') : 0,
    lagMs: bounded(lag, 0, 'a listing lag'),
  };
}

/** Drops the request's connection without an answer (the charge, if any, is already committed). */
function dropConnection(c: Context) {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming?.socket)
    throw new Error('lose_answer needs the Node server (@hono/node-server serve()): there is no connection to drop');
  incoming.socket.destroy();
  // Never delivered: the socket is gone.
  return c.body(null, 503);
}

async function charge(s: GatewayState, c: Context) {
  const arrivedAt = now(s);
  const key = c.req.header('idempotency-key');
  if (!key)
    return c.json({ error: { code: 'missing_idempotency_key', message: 'Idempotency-Key header required' } }, 400);
  // One request per key at a time, as processors do: a second one while the first is being
  // processed is refused at once (two at once must not charge twice), and charges nothing.
  if (s.keysInFlight.has(key))
    return c.json(
      {
        error: {
          code: 'idempotency_key_in_flight',
          message: 'a request with this Idempotency-Key is being processed; retry once it is answered',
        },
      },
      409,
    );
  s.keysInFlight.add(key);
  try {
    if (s.faults.latency_ms > 0) await sleep(s.faults.latency_ms);
    return await chargeOnce(s, c, key, arrivedAt);
  } finally {
    s.keysInFlight.delete(key);
  }
}

/** What a request would do: be refused (an answer), replay the key's answer, or make a new charge. */
function decide(
  s: GatewayState,
  c: Context,
  key: string,
  parsed: ReturnType<typeof chargeBody.safeParse>,
): { refused: Response } | { replay: StoredAnswer } | { make: ChargeBody } {
  const prior = liveAnswer(s, key);
  if (prior) {
    // The same key is the same charge: a request that asks for another one is refused, as processors do.
    const r = prior.record;
    if (
      parsed.success &&
      (parsed.data.amount !== r.amount ||
        parsed.data.currency !== r.currency ||
        parsed.data.customer_id !== r.customer_id ||
        (r.fingerprint !== undefined && fingerprintOfToken(parsed.data.token) !== r.fingerprint) ||
        (parsed.data.reference !== undefined && r.reference !== null && parsed.data.reference !== r.reference))
    )
      return {
        refused: c.json(
          {
            error: {
              code: 'idempotency_key_in_use',
              message: 'this Idempotency-Key was used for a charge with other parameters',
            },
          },
          400,
        ),
      };
    return { replay: prior };
  }
  if (!parsed.success)
    return {
      refused: c.json({ error: { code: 'invalid_request', message: parsed.error.issues[0]?.message } }, 400),
    };
  const { token } = parsed.data;
  if (token.includes('unavailable')) return { refused: c.json({ error: { code: 'gateway_unavailable' } }, 503) };
  if (token.includes('revoked'))
    return {
      refused: c.json({ error: { code: 'token_revoked', message: 'the token was revoked by its issuer' } }, 400),
    };
  return { make: parsed.data };
}

/**
 * Makes the charge and records it (file, then memory): from here on, the key means it. Its outcome
 * is decided now; a charge that settles later is answered `processing` until `settleMs` from now.
 */
function commit(
  s: GatewayState,
  key: string,
  arrivedAt: number,
  body: ChargeBody,
  { settleMs, lagMs }: { settleMs: number; lagMs: number },
): StoredAnswer {
  const { token, amount, currency, customer_id, initiator } = body;
  const at = now(s);
  const paysAfter = /pays_after_(\d+)/.exec(token);
  const declineCode =
    paysAfter && (s.chargesOfCard.get(fingerprintOfToken(token)) ?? 0) >= Number(paysAfter[1])
      ? null
      : declineCodeInToken(token);
  const network = networkOfToken(token);
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
      created_at: new Date(at).toISOString(),
      reference: body.reference ?? null,
      network,
      fingerprint: fingerprintOfToken(token),
      initiator,
      ...(declineCode
        ? networkDecline(s.rules, network, token, declineCode)
        : { network_response_code: null, category: null, advice_code: null }),
    },
    key_first_at: new Date(arrivedAt).toISOString(),
    ...(settleMs > 0 ? { settles_at: new Date(at + settleMs).toISOString() } : {}),
    ...(lagMs > 0 ? { listed_at: new Date(at + lagMs).toISOString() } : {}),
  };
  store(s, stored);
  return stored;
}

async function chargeOnce(s: GatewayState, c: Context, key: string, arrivedAt: number) {
  const parsed = chargeBody.safeParse(await c.req.json().catch(() => null));
  let decision = decide(s, c, key, parsed);
  if ('refused' in decision) return decision.refused;
  const about =
    'make' in decision
      ? { customer_id: decision.make.customer_id, reference: decision.make.reference ?? null }
      : { customer_id: decision.replay.record.customer_id, reference: decision.replay.record.reference };
  const fault = faultFor(s, 'make' in decision, { idempotency_key: key, ...about });
  if (fault?.kind === 'latency') {
    // Held, the key in flight; then processed as it stands by then (the key may have expired meanwhile).
    await sleep(fault.ms);
    decision = decide(s, c, key, parsed);
    if ('refused' in decision) return decision.refused;
  }
  if (fault?.kind === 'fail_before') return c.json({ error: { code: 'simulated_failure' } }, 503);
  const stored =
    'make' in decision
      ? commit(s, key, arrivedAt, decision.make, delaysFor(s, fault, { idempotency_key: key, ...about }))
      : decision.replay;
  if (fault?.kind === 'fail_after_commit')
    return c.json({ error: { code: 'simulated_failure', message: 'the charge was made, its answer was not' } }, 503);
  if (fault?.kind === 'lose_answer') return dropConnection(c);
  // A new charge is answered as it stood when it was made (a charge that settles later: processing).
  const a = answer(s, stored, 'make' in decision ? Date.parse(stored.record.created_at) : now(s));
  if ('replay' in decision) c.header('idempotent-replayed', 'true');
  return c.json(a.body, a.status);
}

/** `GET /v1/charges`: the records in the order they were made, filtered, a page at a time. */
function listCharges(s: GatewayState, c: Context) {
  const q = listQuery.safeParse(c.req.query());
  if (!q.success) return c.json({ error: { code: 'invalid_request', message: q.error.issues[0]?.message } }, 400);
  const { customer_id, reference, created_gte, starting_after, limit } = q.data;
  let from = 0;
  if (starting_after !== undefined) {
    const at = s.byId.get(starting_after);
    if (at === undefined) return c.json({ error: { code: 'invalid_request', message: 'unknown starting_after' } }, 400);
    from = at + 1;
  }
  const since = created_gte === undefined ? null : Date.parse(created_gte);
  const data: ChargeRecord[] = [];
  let i = from;
  for (; i < s.records.length && data.length < limit; i++) {
    const r = s.records[i] as ChargeRecord;
    if (customer_id !== undefined && r.customer_id !== customer_id) continue;
    if (reference !== undefined && r.reference !== reference) continue;
    if (since !== null && Date.parse(r.created_at) < since) continue;
    // Listings lag behind commits (as processors' search is eventually consistent).
    if (!isListed(s, r)) continue;
    data.push(asItStands(s, r));
  }
  return c.json({ data, has_more: i < s.records.length && data.length === limit });
}
