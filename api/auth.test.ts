import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { AuthError, authorize, createAuthenticator } from './auth';

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
    const token = await sign({ scope: 'ops' }, secret, '2s');
    expect((await auth(`Bearer ${token}`)).scopes.has('ops')).toBe(true);
    await new Promise((r) => setTimeout(r, 2100));
    await expect(auth(`Bearer ${token}`)).rejects.toThrow(/expired/);
  });
});
