import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../runtime/dependencies';
import { actsAsSelf, AuthError, authorize, createAuthenticator, requireRecentAuth } from './auth';
import { until } from '../test/support/wait';

const secret = 'a-test-secret-that-is-long-enough-for-hs256';
const auth = createAuthenticator({ jwtSecret: secret });
const sign = (claims: Record<string, unknown>, key = secret, exp = '5m') =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(key));

describe('authentication', () => {
  it('reads scopes and subject from a valid token', async () => {
    const p = await auth(`Bearer ${await sign({ scope: 'customers:read  context:read', sub: 'abc' })}`);
    expect([...p.scopes]).toEqual(['customers:read', 'context:read']);
    expect(p.subject).toBe('abc');
  });

  it.each([
    ['no header', undefined],
    ['not bearer', 'Basic Zm9vOmJhcg=='],
  ])('refuses %s with 401', async (_n, header) => {
    await expect(auth(header)).rejects.toMatchObject({ status: 401 });
  });

  it('refuses a token signed with another secret, or expired', async () => {
    await expect(
      auth(`Bearer ${await sign({ scope: 'ops' }, 'another-secret-that-is-also-long-enough!!')}`),
    ).rejects.toMatchObject({ status: 401 });
    await expect(auth(`Bearer ${await sign({ scope: 'ops' }, secret, '-1m')}`)).rejects.toThrow(/expired/);
  });
});

describe('what the rate limiter is told of a token', () => {
  it('checks a token once for the calls that bring it at once, and knows it was valid until it expires', async () => {
    const fresh = createAuthenticator({ jwtSecret: secret });
    const token = `Bearer ${await sign({ scope: 'context:read', sub: 'agent-1' })}`;
    expect(fresh.verified?.(token)).toBe(false);
    const calls = Array.from({ length: 50 }, () => fresh(token));
    // Under way: the calls that arrive meanwhile wait on the one check, and pay nothing for it.
    expect(fresh.verified?.(token)).toBe(true);
    const principals = await Promise.all(calls);
    expect(new Set(principals).size).toBe(1);
    expect(fresh.verified?.(token)).toBe(true);
    // A refused token is never known.
    const forged = `Bearer ${await sign({ scope: 'ops' }, 'another-secret-that-is-also-long-enough!!')}`;
    await expect(fresh(forged)).rejects.toMatchObject({ status: 401 });
    expect(fresh.verified?.(forged)).toBe(false);
  });
});

describe('authorisation', () => {
  const principal = (scopes: string, subject: string | null = null) => ({
    subject,
    scopes: new Set(scopes.split(' ')),
  });

  it('lets ops do everything, and a listed scope do its route', () => {
    expect(() => authorize(principal('ops'), { scopes: ['customers:write'] })).not.toThrow();
    expect(() => authorize(principal('customers:read'), { scopes: ['customers:read'] })).not.toThrow();
  });

  it('refuses a missing scope with 403', () => {
    expect(() => authorize(principal('context:read'), { scopes: ['customers:read'] })).toThrow(AuthError);
    expect(() => authorize(principal('context:read'), { scopes: ['customers:read'] })).toThrow(/customers:read/);
  });

  it('lets a customer token reach only its own id, and only where self is allowed', () => {
    const me = principal('self', 'cust-1');
    expect(() => authorize(me, { scopes: ['customers:read'], self: true }, 'cust-1')).not.toThrow();
    expect(() => authorize(me, { scopes: ['customers:read'], self: true }, 'cust-2')).toThrow(/own data/);
    expect(() => authorize(me, { scopes: ['customers:read'] }, 'cust-1')).toThrow(AuthError);
  });
});

describe('the verified-token cache', () => {
  it('never outlives the token', async () => {
    // Expired 58 s ago: still inside the 60 s grace for clock skew, for another 2 s.
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ scope: 'ops', iat: now - 100, exp: now - 58 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret));
    expect((await auth(`Bearer ${token}`)).scopes.has('ops')).toBe(true);
    await new Promise((r) => setTimeout(r, 2100));
    await expect(auth(`Bearer ${token}`)).rejects.toThrow(/expired/);
  });
});

describe('required claims and the maximum token age', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const raw = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
  const short = createAuthenticator({ jwtSecret: secret, PERSONA_JWT_MAX_AGE_SECONDS: 3600 });

  it('refuses a token without exp, or without iat, saying which claim is missing', async () => {
    await expect(auth(`Bearer ${await raw({ scope: 'ops', iat: now() })}`)).rejects.toThrow(/no "exp" claim/);
    await expect(auth(`Bearer ${await raw({ scope: 'ops', exp: now() + 60 })}`)).rejects.toThrow(/no "iat" claim/);
    await expect(auth(`Bearer ${await raw({ scope: 'ops', iat: now(), exp: now() + 60 })}`)).resolves.toBeDefined();
  });

  it('refuses a token issued longer ago than the maximum age, even before it expires', async () => {
    const old = await raw({ scope: 'ops', iat: now() - 3700, exp: now() + 60 });
    await expect(short(`Bearer ${old}`)).rejects.toMatchObject({ status: 401, message: /more than 3600 s ago/ });
  });

  it('refuses a token meant to live longer than the maximum age (exp - iat)', async () => {
    const long = await raw({ scope: 'ops', iat: now(), exp: now() + 7200 });
    await expect(short(`Bearer ${long}`)).rejects.toThrow(/lives 7200 s .* maximum of 3600 s/);
    // The default maximum is 24 h.
    await expect(auth(`Bearer ${await raw({ scope: 'ops', iat: now(), exp: now() + 86_401 })}`)).rejects.toThrow(
      /maximum of 86400 s/,
    );
  });

  it('refuses an iat in the future beyond the clock skew, and accepts a small skew', async () => {
    await expect(auth(`Bearer ${await raw({ scope: 'ops', iat: now() + 600, exp: now() + 900 })}`)).rejects.toThrow(
      /issued in the future/,
    );
    await expect(
      auth(`Bearer ${await raw({ scope: 'ops', iat: now() + 20, exp: now() + 900 })}`),
    ).resolves.toBeDefined();
  });

  it('refuses another issuer or audience when they are configured, naming the claim', async () => {
    const strict = createAuthenticator({
      jwtSecret: secret,
      PERSONA_JWT_ISSUER: 'persona',
      PERSONA_JWT_AUDIENCE: 'api',
    });
    const claims = { scope: 'ops', iat: now(), exp: now() + 60 };
    await expect(strict(`Bearer ${await raw({ ...claims, iss: 'persona', aud: 'api' })}`)).resolves.toBeDefined();
    await expect(strict(`Bearer ${await raw({ ...claims, iss: 'other', aud: 'api' })}`)).rejects.toThrow(/"iss"/);
    await expect(strict(`Bearer ${await raw({ ...claims, iss: 'persona', aud: 'else' })}`)).rejects.toThrow(/"aud"/);
    await expect(strict(`Bearer ${await raw({ ...claims, aud: 'api' })}`)).rejects.toThrow(/no "iss" claim/);
  });

  it('never serves a cached token past its maximum age', async () => {
    const tiny = createAuthenticator({ jwtSecret: secret, PERSONA_JWT_MAX_AGE_SECONDS: 60 });
    // Issued 59 s ago (and valid for another hour by exp, which the lifetime rule refuses anyway):
    // a lifetime within the rule, iat about to reach the maximum age.
    const token = await raw({ scope: 'ops', iat: now() - 59, exp: now() + 1 });
    expect((await tiny(`Bearer ${token}`)).scopes.has('ops')).toBe(true);
    await new Promise((r) => setTimeout(r, 2100));
    await expect(tiny(`Bearer ${token}`)).rejects.toThrow(/expired|more than 60 s ago/);
  });

  it('reads auth_time into the principal', async () => {
    const t = now() - 10;
    const p = await auth(`Bearer ${await raw({ scope: 'self', sub: 'c', iat: now(), exp: now() + 60, auth_time: t })}`);
    expect(p.authTime).toBe(t);
  });
});

describe('recent authentication', () => {
  const nowMs = Date.UTC(2026, 10, 23, 12, 0, 0);
  const self = (authTime: number | null) => ({ subject: 'c', scopes: new Set(['self']), authTime });

  it('passes a sign-in within the window, refuses an older one or none with a step-up challenge', () => {
    expect(() => requireRecentAuth(self(nowMs / 1000 - 299), 300, nowMs)).not.toThrow();
    for (const stale of [self(nowMs / 1000 - 301), self(null), self(nowMs / 1000 + 3600)]) {
      try {
        requireRecentAuth(stale, 300, nowMs);
        expect.unreachable();
      } catch (err) {
        expect(err).toMatchObject({ status: 401, message: /fresh sign-in is needed/ });
        expect((err as AuthError).hint.challenge).toMatch(/insufficient_user_authentication.*max_age=300/);
      }
    }
  });

  it('knows a customer’s own token from ops and from a platform scope', () => {
    expect(actsAsSelf(self(null), ['customers:write'])).toBe(true);
    expect(actsAsSelf({ subject: null, scopes: new Set(['ops']) })).toBe(false);
    expect(actsAsSelf({ subject: 'c', scopes: new Set(['self', 'customers:write']) }, ['customers:write'])).toBe(false);
  });
});

describe('an identity provider’s keys (JWKS, RS256)', () => {
  /** A JWKS endpoint serving whatever keys the test puts in `keys`. */
  async function jwksServer(): Promise<{ url: string; keys: JWK[]; server: Server }> {
    const keys: JWK[] = [];
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`, keys, server };
  }
  const rsa = async (kid: string) => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    return { kid, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256' } };
  };
  const signed = (key: Awaited<ReturnType<typeof rsa>>, header: Record<string, unknown> = {}) =>
    new SignJWT({ scope: 'context:read', sub: 'agent' })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key.privateKey);

  /** A JWKS endpoint publishing one key while healthy, answering 503 while not; it counts its fetches. */
  async function flakyJwks(jwk: JWK, healthy: boolean) {
    let up = healthy;
    let fetches = 0;
    const server = createServer((_req, res) => {
      fetches++;
      res.writeHead(up ? 200 : 503, { 'content-type': 'application/json' });
      res.end(up ? JSON.stringify({ keys: [jwk] }) : '{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    return { url, server, fetches: () => fetches, heal: (to: boolean) => void (up = to) };
  }

  it('accepts a token of a published key, then one of a rotated kid; refuses an unknown kid with 401', async () => {
    const idp = await jwksServer();
    try {
      const [first, second, stranger] = [await rsa('k1'), await rsa('k2'), await rsa('k3')];
      idp.keys.push(first.jwk);
      const verify = createAuthenticator({ jwtSecret: secret, PERSONA_JWKS_URL: idp.url, jwksCooldownMs: 0 });
      expect((await verify(`Bearer ${await signed(first)}`)).subject).toBe('agent');
      // The provider rotates: k2 published, k1 withdrawn. A token of k2 makes the set be fetched again.
      idp.keys.splice(0, 1, second.jwk);
      expect((await verify(`Bearer ${await signed(second)}`)).subject).toBe('agent');
      await expect(verify(`Bearer ${await signed(stranger)}`)).rejects.toMatchObject({ status: 401 });
      // An HS256 token (the local secret's) is no RS256 token.
      await expect(verify(`Bearer ${await sign({ scope: 'ops' })}`)).rejects.toMatchObject({ status: 401 });
    } finally {
      idp.server.close();
    }
  });

  it('answers an outage of the provider as unavailable (503), not as a bad token (401)', async () => {
    const idp = await jwksServer();
    const key = await rsa('k1');
    idp.keys.push(key.jwk);
    await new Promise<void>((resolve) => idp.server.close(() => resolve()));
    const verify = createAuthenticator({ jwtSecret: secret, PERSONA_JWKS_URL: idp.url, jwksCooldownMs: 0 });
    const err = await verify(`Bearer ${await signed(key)}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyUnavailableError);
    expect(err).toMatchObject({ dependency: 'identity-provider' });
  });

  it('backs off while the provider fails: a flood of tokens is one fetch, and it recovers by itself', async () => {
    const key = await rsa('k1');
    const idp = await flakyJwks(key.jwk, false);
    try {
      const verify = createAuthenticator({ jwtSecret: secret, PERSONA_JWKS_URL: idp.url, jwksCooldownMs: 0 });
      const token = `Bearer ${await signed(key)}`;
      const answers = [];
      for (let i = 0; i < 20; i++) answers.push(await verify(token).catch((e: unknown) => e));
      expect(answers.every((e) => e instanceof DependencyUnavailableError)).toBe(true);
      expect(idp.fetches()).toBe(1);
      // The provider is back: a try after the backoff fetches the keys, and the token passes.
      idp.heal(true);
      await until(async () => (await verify(token).catch(() => null)) !== null, 10_000);
      expect((await verify(token)).subject).toBe('agent');
    } finally {
      idp.server.close();
    }
  });

  it('verifies tokens of keys it holds while the provider is down: unknown kids lock nobody out', async () => {
    const key = await rsa('k1');
    const idp = await flakyJwks(key.jwk, true);
    try {
      const verify = createAuthenticator({ jwtSecret: secret, PERSONA_JWKS_URL: idp.url, jwksCooldownMs: 0 });
      expect((await verify(`Bearer ${await signed(key)}`)).subject).toBe('agent');
      idp.heal(false);
      // Tokens of kids nobody published, all at once: each needs a fetch, which fails.
      const strangers = await Promise.all([1, 2, 3, 4, 5, 6].map(async (n) => signed(await rsa(`x${n}`))));
      const refused = await Promise.all(strangers.map((t) => verify(`Bearer ${t}`).catch((e: unknown) => e)));
      expect(refused.every((e) => e instanceof DependencyUnavailableError)).toBe(true);
      // A new token of the key already held is verified from the cached set, no fetch needed.
      const fresh = await new SignJWT({ scope: 'context:read', sub: 'agent-2' })
        .setProtectedHeader({ alg: 'RS256', kid: key.kid })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key.privateKey);
      expect((await verify(`Bearer ${fresh}`)).subject).toBe('agent-2');
    } finally {
      idp.server.close();
    }
  });

  it('refuses a JWT of another kind by its typ; takes JWT and at+jwt', async () => {
    const idp = await jwksServer();
    try {
      const key = await rsa('k1');
      idp.keys.push(key.jwk);
      const verify = createAuthenticator({ jwtSecret: secret, PERSONA_JWKS_URL: idp.url });
      for (const typ of ['JWT', 'at+jwt', 'application/at+JWT'])
        expect((await verify(`Bearer ${await signed(key, { typ })}`)).subject, typ).toBe('agent');
      await expect(verify(`Bearer ${await signed(key, { typ: 'logout+jwt' })}`)).rejects.toThrow(
        /"typ" is logout\+jwt/,
      );
    } finally {
      idp.server.close();
    }
  });
});

describe('clock skew', () => {
  it('gives exp and nbf the same grace as iat (60 s), no more', async () => {
    const now = Math.floor(Date.now() / 1000);
    const at = (claims: Record<string, number>) =>
      new SignJWT({ scope: 'ops', ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(secret));
    const verify = createAuthenticator({ jwtSecret: secret });
    await expect(verify(`Bearer ${await at({ iat: now - 300, exp: now - 30 })}`)).resolves.toBeTruthy();
    await expect(verify(`Bearer ${await at({ iat: now - 300, exp: now - 120 })}`)).rejects.toThrow(/expired/);
    await expect(verify(`Bearer ${await at({ iat: now, nbf: now + 30, exp: now + 300 })}`)).resolves.toBeTruthy();
    await expect(verify(`Bearer ${await at({ iat: now, nbf: now + 120, exp: now + 300 })}`)).rejects.toThrow(/nbf/);
  });
});
