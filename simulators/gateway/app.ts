/**
 * A payment-gateway simulator that behaves like a card processor's test mode:
 *   POST /v1/charges (Idempotency-Key header; {token, amount, currency, customer_id, initiator, reference?})
 *     `initiator` is `cit` (the cardholder is present) or `mit` (merchant-initiated: a recovery);
 *     `reference` (optional, 1–200 characters) is what the charge is for (Persona sends the
 *     payment id): it is kept on the charge record, and the listing can be filtered by it;
 *     200 {id, status: "succeeded", network, fingerprint}
 *     | 402 {error: {code: "card_declined", decline_code, charge, network, fingerprint,
 *                  network_response_code, category (Visa), advice_code (Mastercard)}} | 503
 *     — the token names the card (test tokens spell it out):
 *         network      `visa`, `mastercard`, `amex` or `discover` in the token, else visa;
 *         identity     `card-<id>` in the token, else the token itself: the fingerprint, which
 *                      stays the same when a card is tokenised again;
 *         `decline_<code>` declines with that code (with `pays_after_<N>`, only the card's
 *                      first N charges: then it pays, a balance topped up); Visa declines carry the response code and
 *                      category of the network-rule table (config/network-rules), Mastercard
 *                      ones `mac_<NN>` from the token as their Merchant Advice Code;
 *       `unavailable` answers 503, `revoked` is refused as a request (400 `token_revoked`: no
 *       charge, and no retry can help), anything else succeeds;
 *     — the Idempotency-Key, as a processor keeps it:
 *         a repeated key returns the first answer exactly (same status and body, with the header
 *           `idempotent-replayed: true`) and creates no new charge; a repeated key asking for
 *           another charge (amount, currency, customer, card, or reference when both have one)
 *           is refused: 400 `idempotency_key_in_use`;
 *         while a request with a key is being processed (from its arrival until its answer,
 *           injected latency included), another request with that key is answered at once
 *           409 `idempotency_key_in_flight`, and charges nothing;
 *         the processor forgets a key `keyTtlMs` (default 24 h) after the request that made its
 *           charge arrived, by the simulator's clock: the key is then new again, and makes a
 *           new charge (the old record stays listed).
 *   POST /v1/account_updater/lookups {token}  the network's account updater, asked about a card:
 *     `au_expiry_<MM>_<YYYY>` in the token → {status: "updated", expiry_month, expiry_year};
 *     `au_replaced` → {status: "replaced", token, expiry_month, expiry_year} (a new token of the
 *     same card identity, which charges; the same answer each time); `au_closed` →
 *     {status: "closed"}; else "no_change".
 *     Every lookup is recorded: GET /v1/account_updater/lookups?fingerprint= lists them.
 *   GET /v1/charges?customer_id=&reference=&created_gte=&starting_after=&limit=
 *     charge records in the order they were made, a page at a time ({data, has_more}; `limit`
 *     1–1000, default 1000; `starting_after` a charge id of the previous page) — reconciliation
 *     pages through a day of them, and a test asks what one payment (`reference`) was charged;
 *   GET /v1/charges/{id}  one charge record, or 404;
 *   POST /v1/payment_methods/status {tokens: [...]}  each token's standing at the issuer, in order:
 *     `revoked` (contains "revoked", or revoked since through /_sim/revoke), else `active`; with
 *     its network and fingerprint;
 *   PUT /_sim/revoke {token}  the issuer revokes a token after it was stored (a lost card).
 *   PUT /_sim/clock {advance_ms}  moves the simulator's clock on (it only goes forward): records'
 *     `created_at` and the keys' expiry go by it; GET /_sim/clock answers {now, offset_ms}.
 *   PUT /_sim/faults {latency_ms?, fail_next?, fail_after_commit_next?, lose_answer_next?}
 *     fault injection for tests: `latency_ms` holds every charge request that long (its key in
 *     flight meanwhile); the counters each take the next N charge requests that would make a new
 *     charge (not replays, nor requests refused): `fail_next` answers 503 before anything is
 *     charged, `fail_after_commit_next` makes the charge then answers 503, `lose_answer_next`
 *     makes the charge then drops the connection without an answer (the client sees a network
 *     error). A retry with the same key replays the committed charge.
 *   GET /_sim/faults  the faults in force, and `in_flight`: charge requests received, not yet answered.
 *   In process, `options.fault` (randomized tests) is asked once for each charge request that
 *   would make a new charge or replay one, when no counter applies: the same faults, and latency.
 * Records are appended to a JSON-lines file, so a restart loses nothing (the keys' expiry included).
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { declineCodeInToken } from '../../payments/declines';
import type { RuleTable } from '../../payments/networkRules';
import { loadRuleTable } from '../../payments/ruleTables';

export interface ChargeRecord {
  id: string;
  idempotency_key: string;
  customer_id: string;
  amount: number;
  currency: string;
  status: 'succeeded' | 'declined';
  decline_code: string | null;
  created_at: string;
  /** What the charge is for (Persona sends the payment id); null when the request named nothing. */
  reference: string | null;
  /** Absent on records written before the simulator spoke like a processor. */
  network?: string;
  fingerprint?: string;
  initiator?: 'cit' | 'mit';
  network_response_code?: string | null;
  category?: number | null;
  advice_code?: string | null;
}

export interface SimulatorOptions {
  /** The simulator's clock (ms since epoch); default Date.now. `PUT /_sim/clock` adds an offset to it. */
  now?: () => number;
  /** How long the processor remembers an idempotency key, measured from the key's first request (default 24 h). */
  keyTtlMs?: number;
  /**
   * In-process fault injection (randomized tests): asked once per charge request that would make a
   * new charge or replay one; null = no fault.
   */
  fault?: (req: { idempotency_key: string; reference: string | null; customer_id: string }) => ChargeFault | null;
}

export type ChargeFault =
  | { kind: 'fail_before' } // 503 before anything is committed
  | { kind: 'fail_after_commit' } // the charge is committed (recorded), then 503 is answered
  | { kind: 'lose_answer' } // the charge is committed, then the connection is dropped with no answer
  /** The request is held this long before it is processed (its key is in flight meanwhile). */
  | { kind: 'latency'; ms: number };

/** One question to the account updater, as recorded. */
export interface UpdaterLookup {
  id: string;
  fingerprint: string;
  status: 'no_change' | 'updated' | 'replaced' | 'closed';
  at: string;
}

const NETWORKS = ['mastercard', 'visa', 'amex', 'discover'] as const;

/** The network a test token names (a `_`-separated part of it: `tok_amex_card-visa01` is Amex); else visa. */
export function networkOfToken(token: string): string {
  return token.split('_').find((part): part is (typeof NETWORKS)[number] => NETWORKS.includes(part as never)) ?? 'visa';
}

const digest = (s: string) => createHash('sha256').update(s).digest('hex');

/** The card a token stands for: `card-<id>` when the token names one, else a digest of the token. */
const cardIdentity = (token: string) => /card-([A-Za-z0-9]+)/.exec(token)?.[1] ?? digest(token).slice(0, 16);

/** The card's fingerprint: the same for every token of one card identity (it survives re-tokenisation). */
export function fingerprintOfToken(token: string): string {
  return `fp_${digest(cardIdentity(token)).slice(0, 24)}`;
}

/** What the network adds to a decline: Visa's response code and category, Mastercard's advice code. */
function networkDecline(table: RuleTable, network: string, token: string, code: string) {
  if (network === 'visa') {
    const entry = table.visa_categories.codes[code];
    return { network_response_code: entry?.response_code ?? '05', category: entry?.category ?? 4, advice_code: null };
  }
  const mac = network === 'mastercard' ? (/mac_(\d{2})(?!\d)/.exec(token)?.[1] ?? null) : null;
  return { network_response_code: null, category: null, advice_code: mac };
}

interface StoredAnswer {
  record: ChargeRecord;
  http_status: 200 | 402;
  /**
   * When the request that made the charge arrived (the key's first request, by the simulator's
   * clock): the key is forgotten `keyTtlMs` later. Absent on older lines: the record's created_at.
   */
  key_first_at?: string;
}

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

const statusBody = z.strictObject({ tokens: z.array(z.string().min(1)).min(1).max(100) });

const faultsBody = z.strictObject({
  latency_ms: z.number().int().min(0).optional(),
  fail_next: z.number().int().min(0).optional(),
  fail_after_commit_next: z.number().int().min(0).optional(),
  lose_answer_next: z.number().int().min(0).optional(),
});

/** A line of the records file: a charge's first answer, a token the issuer revoked, an updater lookup. */
type StoredLine = StoredAnswer | { revoked_token: string } | { lookup: UpdaterLookup };

const DAY_MS = 24 * 60 * 60 * 1000;

export function createGatewaySimulator(
  dataFile: string,
  rules: RuleTable = loadRuleTable(),
  options: SimulatorOptions = {},
) {
  mkdirSync(path.dirname(dataFile), { recursive: true });
  const keyTtlMs = options.keyTtlMs ?? DAY_MS;
  const clock = options.now ?? Date.now;
  /** What `PUT /_sim/clock` has moved the clock on by. */
  let offsetMs = 0;
  const now = () => clock() + offsetMs;
  /** Each key's answer, with when its first request arrived (ms): the key is forgotten keyTtlMs later. */
  const byKey = new Map<string, { answer: StoredAnswer; firstAt: number }>();
  /** Every charge record in the order it was made (the listing's order). */
  const records: ChargeRecord[] = [];
  const byId = new Map<string, number>();
  const revoked = new Set<string>();
  const lookups: UpdaterLookup[] = [];
  /** How many charges each card (fingerprint) has had: `pays_after_<N>` declines the first N. */
  const chargesOfCard = new Map<string, number>();
  const remember = (line: StoredLine) => {
    if ('revoked_token' in line) {
      revoked.add(line.revoked_token);
      return;
    }
    if ('lookup' in line) {
      lookups.push(line.lookup);
      return;
    }
    // Lines written before references were kept have none.
    line.record.reference ??= null;
    // A later line for the same key is a charge made after the key expired: the key now means it.
    byKey.set(line.record.idempotency_key, {
      answer: line,
      firstAt: Date.parse(line.key_first_at ?? line.record.created_at),
    });
    byId.set(line.record.id, records.length);
    records.push(line.record);
    const fp = line.record.fingerprint;
    if (fp !== undefined) chargesOfCard.set(fp, (chargesOfCard.get(fp) ?? 0) + 1);
  };
  if (existsSync(dataFile)) {
    for (const line of readFileSync(dataFile, 'utf8').split('\n')) {
      if (line.trim()) remember(JSON.parse(line) as StoredLine);
    }
  }
  /** The key's answer while the processor still remembers it, else null (never used, or expired). */
  const liveAnswer = (key: string): StoredAnswer | null => {
    const known = byKey.get(key);
    return known && now() - known.firstAt < keyTtlMs ? known.answer : null;
  };
  const faults = { latency_ms: 0, fail_next: 0, fail_after_commit_next: 0, lose_answer_next: 0 };
  /** Keys whose request is being processed: another request with one is answered 409 at once. */
  const keysInFlight = new Set<string>();
  /** Charge requests received and not yet answered (a test waits on it instead of on the clock). */
  let inFlight = 0;

  const answer = ({ http_status, record: r }: StoredAnswer) => {
    const card = { network: r.network, fingerprint: r.fingerprint };
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
  };

  /** The fault for a request: the HTTP counters first (new charges only), then the in-process hook. */
  const faultFor = (
    makesNewCharge: boolean,
    req: { idempotency_key: string; reference: string | null; customer_id: string },
  ): ChargeFault | null => {
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
    }
    return options.fault?.(req) ?? null;
  };

  /** Drops the request's connection without an answer (the charge, if any, is already committed). */
  const dropConnection = (c: Context) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    if (!incoming?.socket)
      throw new Error('lose_answer needs the Node server (@hono/node-server serve()): there is no connection to drop');
    incoming.socket.destroy();
    // Never delivered: the socket is gone.
    return c.body(null, 503);
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
    const arrivedAt = now();
    const key = c.req.header('idempotency-key');
    if (!key)
      return c.json({ error: { code: 'missing_idempotency_key', message: 'Idempotency-Key header required' } }, 400);
    // One request per key at a time, as processors do: a second one while the first is being
    // processed is refused at once (two at once must not charge twice), and charges nothing.
    if (keysInFlight.has(key))
      return c.json(
        {
          error: {
            code: 'idempotency_key_in_flight',
            message: 'a request with this Idempotency-Key is being processed; retry once it is answered',
          },
        },
        409,
      );
    keysInFlight.add(key);
    try {
      if (faults.latency_ms > 0) await sleep(faults.latency_ms);
      return await chargeOnce(c, key, arrivedAt);
    } finally {
      keysInFlight.delete(key);
    }
  };

  /** What a request would do: be refused (an answer), replay the key's answer, or make a new charge. */
  const decide = (
    c: Context,
    key: string,
    parsed: ReturnType<typeof chargeBody.safeParse>,
  ): { refused: Response } | { replay: StoredAnswer } | { make: ChargeBody } => {
    const prior = liveAnswer(key);
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
  };

  /** Makes the charge and records it (file, then memory): from here on, the key means it. */
  const commit = (key: string, arrivedAt: number, body: ChargeBody): StoredAnswer => {
    const { token, amount, currency, customer_id, initiator } = body;
    const paysAfter = /pays_after_(\d+)/.exec(token);
    const declineCode =
      paysAfter && (chargesOfCard.get(fingerprintOfToken(token)) ?? 0) >= Number(paysAfter[1])
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
        created_at: new Date(now()).toISOString(),
        reference: body.reference ?? null,
        network,
        fingerprint: fingerprintOfToken(token),
        initiator,
        ...(declineCode
          ? networkDecline(rules, network, token, declineCode)
          : { network_response_code: null, category: null, advice_code: null }),
      },
      key_first_at: new Date(arrivedAt).toISOString(),
    };
    appendFileSync(dataFile, `${JSON.stringify(stored)}\n`);
    remember(stored);
    return stored;
  };

  const chargeOnce = async (c: Context, key: string, arrivedAt: number) => {
    const parsed = chargeBody.safeParse(await c.req.json().catch(() => null));
    let decision = decide(c, key, parsed);
    if ('refused' in decision) return decision.refused;
    const about =
      'make' in decision
        ? { customer_id: decision.make.customer_id, reference: decision.make.reference ?? null }
        : { customer_id: decision.replay.record.customer_id, reference: decision.replay.record.reference };
    const fault = faultFor('make' in decision, { idempotency_key: key, ...about });
    if (fault?.kind === 'latency') {
      // Held, the key in flight; then processed as it stands by then (the key may have expired meanwhile).
      await sleep(fault.ms);
      decision = decide(c, key, parsed);
      if ('refused' in decision) return decision.refused;
    }
    if (fault?.kind === 'fail_before') return c.json({ error: { code: 'simulated_failure' } }, 503);
    const stored = 'make' in decision ? commit(key, arrivedAt, decision.make) : decision.replay;
    if (fault?.kind === 'fail_after_commit')
      return c.json({ error: { code: 'simulated_failure', message: 'the charge was made, its answer was not' } }, 503);
    if (fault?.kind === 'lose_answer') return dropConnection(c);
    const a = answer(stored);
    if ('replay' in decision) c.header('idempotent-replayed', 'true');
    return c.json(a.body, a.status);
  };

  app.get('/v1/charges', (c) => {
    const q = listQuery.safeParse(c.req.query());
    if (!q.success) return c.json({ error: { code: 'invalid_request', message: q.error.issues[0]?.message } }, 400);
    const { customer_id, reference, created_gte, starting_after, limit } = q.data;
    let from = 0;
    if (starting_after !== undefined) {
      const at = byId.get(starting_after);
      if (at === undefined)
        return c.json({ error: { code: 'invalid_request', message: 'unknown starting_after' } }, 400);
      from = at + 1;
    }
    const since = created_gte === undefined ? null : Date.parse(created_gte);
    const data: ChargeRecord[] = [];
    let i = from;
    for (; i < records.length && data.length < limit; i++) {
      const r = records[i] as ChargeRecord;
      if (customer_id !== undefined && r.customer_id !== customer_id) continue;
      if (reference !== undefined && r.reference !== reference) continue;
      if (since !== null && Date.parse(r.created_at) < since) continue;
      data.push(r);
    }
    return c.json({ data, has_more: i < records.length && data.length === limit });
  });
  app.get('/v1/charges/:id', (c) => {
    const at = byId.get(c.req.param('id'));
    if (at === undefined) return c.json({ error: { code: 'resource_missing' } }, 404);
    return c.json(records[at]);
  });
  app.post('/v1/payment_methods/status', async (c) => {
    const body = statusBody.safeParse(await c.req.json().catch(() => null));
    if (!body.success)
      return c.json({ error: { code: 'invalid_request', message: body.error.issues[0]?.message } }, 400);
    const data = body.data.tokens.map((t) => ({
      status: t.includes('revoked') || revoked.has(t) ? 'revoked' : 'active',
      network: networkOfToken(t),
      fingerprint: fingerprintOfToken(t),
    }));
    return c.json({ data });
  });
  app.post('/v1/account_updater/lookups', async (c) => {
    const body = z.strictObject({ token: z.string().min(1) }).safeParse(await c.req.json().catch(() => null));
    if (!body.success)
      return c.json({ error: { code: 'invalid_request', message: body.error.issues[0]?.message } }, 400);
    const { token } = body.data;
    const expiry = /au_expiry_(\d{2})_(\d{4})/.exec(token);
    const found = expiry
      ? { status: 'updated' as const, expiry_month: Number(expiry[1]), expiry_year: Number(expiry[2]) }
      : token.includes('au_replaced')
        ? {
            status: 'replaced' as const,
            // The same answer every time it is asked, and the same card identity (so the same fingerprint).
            token: `tok_${networkOfToken(token)}_card-${cardIdentity(token)}_r${digest(token).slice(0, 12)}`,
            expiry_month: 12,
            expiry_year: new Date().getUTCFullYear() + 3,
          }
        : token.includes('au_closed')
          ? { status: 'closed' as const }
          : { status: 'no_change' as const };
    const lookup: UpdaterLookup = {
      id: `aul_${randomUUID().replace(/-/g, '')}`,
      fingerprint: fingerprintOfToken(token),
      status: found.status,
      at: new Date(now()).toISOString(),
    };
    appendFileSync(dataFile, `${JSON.stringify({ lookup } satisfies StoredLine)}\n`);
    remember({ lookup });
    return c.json({ id: lookup.id, ...found });
  });
  app.get('/v1/account_updater/lookups', (c) => {
    const fingerprint = c.req.query('fingerprint');
    return c.json({ data: lookups.filter((l) => fingerprint === undefined || l.fingerprint === fingerprint) });
  });
  app.put('/_sim/revoke', async (c) => {
    const body = z.strictObject({ token: z.string().min(1) }).safeParse(await c.req.json().catch(() => null));
    if (!body.success) return c.json({ error: { code: 'invalid_request' } }, 400);
    const line: StoredLine = { revoked_token: body.data.token };
    appendFileSync(dataFile, `${JSON.stringify(line)}\n`);
    remember(line);
    return c.json({ revoked: true });
  });

  app.put('/_sim/faults', async (c) => {
    const body = faultsBody.safeParse(await c.req.json().catch(() => null));
    if (!body.success) return c.json({ error: { code: 'invalid_request' } }, 400);
    Object.assign(faults, body.data);
    return c.json(faults);
  });
  app.get('/_sim/faults', (c) => c.json({ ...faults, in_flight: inFlight }));
  const clockNow = () => ({ now: new Date(now()).toISOString(), offset_ms: offsetMs });
  app.put('/_sim/clock', async (c) => {
    const body = z
      .strictObject({ advance_ms: z.number().int().min(0) })
      .safeParse(await c.req.json().catch(() => null));
    if (!body.success)
      return c.json({ error: { code: 'invalid_request', message: body.error.issues[0]?.message } }, 400);
    offsetMs += body.data.advance_ms;
    return c.json(clockNow());
  });
  app.get('/_sim/clock', (c) => c.json(clockNow()));
  app.get('/healthz', (c) => c.json({ status: 'ok', charges: records.length }));
  return app;
}
