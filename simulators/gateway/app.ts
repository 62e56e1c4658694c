/**
 * A payment-gateway simulator that behaves like a card processor's test mode:
 *   POST /v1/charges (Idempotency-Key header; {token, amount, currency, customer_id, initiator, reference?})
 *     `initiator` is `cit` (the cardholder is present) or `mit` (merchant-initiated: a recovery);
 *     `reference` (optional, 1–200 characters) is what the charge is for (Persona sends the
 *     payment id): it is kept on the charge record, and the listing can be filtered by it;
 *     200 {id, status: "succeeded", network, fingerprint}
 *     | 402 {error: {code: "card_declined", decline_code, charge, network, fingerprint,
 *                  network_response_code, category (Visa), advice_code (Mastercard)}} | 503
 *     | 200 {id, status: "processing", network, fingerprint}: the charge is made and its outcome
 *       not known yet (a `processing` fault, below); it settles later, by the simulator's clock,
 *       to the outcome it would have been answered at once (succeeded, or declined with its code
 *       and the network's facts). Until then its record, the listing and a replay of its key say
 *       `processing` (no decline code nor network facts yet); after, they say its outcome, and a
 *       replay answers the outcome's answer as any replay does;
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
 *     charge records as they stand, in the order they were made, a page at a time ({data,
 *     has_more}; `limit` 1–1000, default 1000; `starting_after` a charge id of the previous page)
 *     — reconciliation pages through a day of them, and a test asks what one payment
 *     (`reference`) was charged. A charge made while a listing lag is set is listed only that long
 *     after it was made (a processor's search is eventually consistent);
 *   GET /v1/charges/{id}  one charge record as it stands (whatever the listing's lag), or 404;
 *   POST /v1/payment_methods/status {tokens: [...]}  each token's standing at the issuer, in order:
 *     `revoked` (contains "revoked", or revoked since through /_sim/revoke), else `active`; with
 *     its network and fingerprint;
 *   PUT /_sim/revoke {token}  the issuer revokes a token after it was stored (a lost card).
 *   PUT /_sim/clock {advance_ms}  moves the simulator's clock on (it only goes forward, a restart
 *     included): records' `created_at`, the keys' expiry, when charges settle and when they are
 *     listed go by it; GET /_sim/clock answers {now, offset_ms}.
 *   PUT /_sim/faults {latency_ms?, fail_next?, fail_after_commit_next?, lose_answer_next?,
 *                     processing_next?, processing_ms?, listing_lag_ms?}
 *     fault injection for tests: `latency_ms` holds every charge request that long (its key in
 *     flight meanwhile); the counters each take the next N charge requests that would make a new
 *     charge (not replays, nor requests refused), in this order: `fail_next` answers 503 before
 *     anything is charged, `fail_after_commit_next` makes the charge then answers 503,
 *     `lose_answer_next` makes the charge then drops the connection without an answer (the client
 *     sees a network error), `processing_next` makes a charge that settles `processing_ms`
 *     (1 ms to 24 h, default 60 000) after it was made and answers 200 `processing`. A retry with
 *     the same key replays the committed charge. `listing_lag_ms` (0 to 24 h; 0, the default, is
 *     none) lists every charge made while it is set that long after it was made.
 *   GET /_sim/faults  the faults in force, and `in_flight`: charge requests received, not yet answered.
 *   In process, `options.fault` (randomized tests) is asked once for each charge request that
 *   would make a new charge or replay one, when no counter applies: the same faults, latency, and
 *   `{kind: "processing", ms}` (for a new charge; a replay is answered as its charge stands);
 *   `options.listingLag` is asked once for each new charge, when `listing_lag_ms` is 0, how long
 *   after it is made it is listed. A delay out of its bounds fails the request, charging nothing.
 * Records are appended to a JSON-lines file, so a restart loses nothing: the keys' expiry, the
 * clock's moves, when each charge settles and is listed (one that settled while the simulator was
 * down is settled when it is back).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { RuleTable } from '../../payments/networkRules';
import { loadRuleTable } from '../../payments/ruleTables';
import { chargeRoutes } from './charges';
import { issuerRoutes } from './issuer';
import { MAX_DELAY_MS, now, openGatewayState, store, type GatewayState, type SimulatorOptions } from './state';

export { fingerprintOfToken, networkOfToken } from './cards';
export { MAX_DELAY_MS } from './state';
export type { ChargeAbout, ChargeFault, ChargeRecord, SimulatorOptions, UpdaterLookup } from './state';

const faultsBody = z.strictObject({
  latency_ms: z.number().int().min(0).optional(),
  fail_next: z.number().int().min(0).optional(),
  fail_after_commit_next: z.number().int().min(0).optional(),
  lose_answer_next: z.number().int().min(0).optional(),
  processing_next: z.number().int().min(0).optional(),
  processing_ms: z.number().int().min(1).max(MAX_DELAY_MS).optional(),
  listing_lag_ms: z.number().int().min(0).max(MAX_DELAY_MS).optional(),
});

export function createGatewaySimulator(
  dataFile: string,
  rules: RuleTable = loadRuleTable(),
  options: SimulatorOptions = {},
) {
  const s = openGatewayState(dataFile, rules, options);
  const app = new Hono();
  chargeRoutes(app, s);
  issuerRoutes(app, s);
  simulatorRoutes(app, s);
  return app;
}

/** Adds the routes that steer the simulator (faults, clock) and its health check. */
function simulatorRoutes(app: Hono, s: GatewayState) {
  app.put('/_sim/faults', async (c) => {
    const body = faultsBody.safeParse(await c.req.json().catch(() => null));
    if (!body.success) return c.json({ error: { code: 'invalid_request' } }, 400);
    Object.assign(s.faults, body.data);
    return c.json(s.faults);
  });
  app.get('/_sim/faults', (c) => c.json({ ...s.faults, in_flight: s.inFlight }));
  const clockNow = () => ({ now: new Date(now(s)).toISOString(), offset_ms: s.offsetMs });
  app.put('/_sim/clock', async (c) => {
    const body = z
      .strictObject({ advance_ms: z.number().int().min(0) })
      .safeParse(await c.req.json().catch(() => null));
    if (!body.success)
      return c.json({ error: { code: 'invalid_request', message: body.error.issues[0]?.message } }, 400);
    s.offsetMs += body.data.advance_ms;
    // Kept in the records file: a restart does not take the clock back.
    if (body.data.advance_ms > 0) store(s, { clock_offset_ms: s.offsetMs });
    return c.json(clockNow());
  });
  app.get('/_sim/clock', (c) => c.json(clockNow()));
  app.get('/healthz', (c) => c.json({ status: 'ok', charges: s.records.length }));
}
