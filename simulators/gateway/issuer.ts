/**
 * The gateway simulator's answers about cards, from their issuer and network: a token's standing
 * (`POST /v1/payment_methods/status`), the account updater (`/v1/account_updater/lookups`), and a
 * token the issuer revokes (`PUT /_sim/revoke`). The API is described in ./app.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { cardIdentity, digest, fingerprintOfToken, networkOfToken } from './cards';
import { now, store, type GatewayState, type StoredLine, type UpdaterLookup } from './state';

const statusBody = z.strictObject({ tokens: z.array(z.string().min(1)).min(1).max(100) });

/** Adds the issuer's and network's routes to the simulator's app. */
export function issuerRoutes(app: Hono, s: GatewayState) {
  app.post('/v1/payment_methods/status', async (c) => {
    const body = statusBody.safeParse(await c.req.json().catch(() => null));
    if (!body.success)
      return c.json({ error: { code: 'invalid_request', message: body.error.issues[0]?.message } }, 400);
    const data = body.data.tokens.map((t) => ({
      status: t.includes('revoked') || s.revoked.has(t) ? 'revoked' : 'active',
      network: networkOfToken(t),
      fingerprint: fingerprintOfToken(t),
    }));
    return c.json({ data });
  });
  app.post('/v1/account_updater/lookups', (c) => lookUp(s, c));
  app.get('/v1/account_updater/lookups', (c) => {
    const fingerprint = c.req.query('fingerprint');
    return c.json({ data: s.lookups.filter((l) => fingerprint === undefined || l.fingerprint === fingerprint) });
  });
  app.put('/_sim/revoke', async (c) => {
    const body = z.strictObject({ token: z.string().min(1) }).safeParse(await c.req.json().catch(() => null));
    if (!body.success) return c.json({ error: { code: 'invalid_request' } }, 400);
    const line: StoredLine = { revoked_token: body.data.token };
    store(s, line);
    return c.json({ revoked: true });
  });
}

/** `POST /v1/account_updater/lookups`: what the network's account updater knows of a card, recorded. */
async function lookUp(s: GatewayState, c: Context) {
  const body = z.strictObject({ token: z.string().min(1) }).safeParse(await c.req.json().catch(() => null));
  if (!body.success) return c.json({ error: { code: 'invalid_request', message: body.error.issues[0]?.message } }, 400);
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
    at: new Date(now(s)).toISOString(),
  };
  store(s, { lookup });
  return c.json({ id: lookup.id, ...found });
}
