import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../runtime/dependencies';
import type { Counter } from 'prom-client';
import { AuthError, type Authenticator } from './auth';
import { admitCall, RateLimitedError, RateLimiter, rateClassOf, TEMPORAL_CALL_COST, type RateClass } from './rateLimit';

const limits = (perSecond: number, burst: number): Record<RateClass, { perSecond: number; burst: number }> => ({
  anonymous: { perSecond, burst },
  self: { perSecond, burst },
  staff: { perSecond, burst },
  agent: { perSecond, burst },
  ops: { perSecond, burst },
  verify: { perSecond, burst },
});

/** A counter that counts nothing (the limiter's refusals are what these tests look at). */
const counter = { inc: () => undefined } as unknown as Counter<'class' | 'transport'>;

function refusal(limiter: RateLimiter, key: string): RateLimitedError | null {
  try {
    limiter.take({ key, rateClass: 'self' });
    return null;
  } catch (err) {
    if (err instanceof RateLimitedError) return err;
    throw err;
  }
}

describe('RateLimiter', () => {
  it('serves a burst, refuses the next with the seconds until a request is back, and refills', () => {
    let now = 0;
    const limiter = new RateLimiter({ limits: limits(0.5, 2), maxKeys: 10, now: () => now });
    expect(refusal(limiter, 'a')).toBeNull();
    expect(refusal(limiter, 'a')).toBeNull();
    expect(refusal(limiter, 'a')?.retryAfterSeconds).toBe(2);
    expect(refusal(limiter, 'b')).toBeNull();
    now += 1000;
    expect(refusal(limiter, 'a')?.retryAfterSeconds).toBe(1);
    now += 1000;
    expect(refusal(limiter, 'a')).toBeNull();
  });

  it('forgets the caller idle longest when full, never growing past maxKeys per class', () => {
    let now = 0;
    const limiter = new RateLimiter({ limits: limits(0.001, 1), maxKeys: 2, now: () => now });
    expect(refusal(limiter, 'a')).toBeNull();
    now += 1;
    expect(refusal(limiter, 'b')).toBeNull();
    now += 1;
    expect(refusal(limiter, 'a')).not.toBeNull(); // a is now the most recent
    expect(refusal(limiter, 'c')).toBeNull(); // b, idle longest, goes
    expect(limiter.size).toBe(2);
    expect(refusal(limiter, 'a')).not.toBeNull(); // a was kept
    // A flood of anonymous callers from many addresses evicts only anonymous buckets.
    for (let n = 0; n < 1000; n++) limiter.take({ key: `flood-${n}`, rateClass: 'anonymous' });
    expect(limiter.size).toBe(4);
    expect(refusal(limiter, 'a')).not.toBeNull(); // a's empty bucket survived the flood
  });

  it('counts a token the identity provider could not vouch for against the address, like a refused one', async () => {
    const down = new DependencyUnavailableError('identity-provider', 'keys out of reach', 5);
    const limiter = new RateLimiter({ limits: limits(1 / 3600, 1), maxKeys: 10 });
    const authenticate: Authenticator = () => Promise.reject(down);
    const deps = { authenticate, rateLimiter: limiter, metrics: { rateLimited: counter } };
    const who = await admitCall(deps, 'Bearer whatever', '2001:db8:1:2::77', { transport: 'rest' });
    expect(who).toMatchObject({ principal: null, authError: down });
    // The /64's anonymous bucket (of 1) is spent: the next call from it is refused, whatever token it brings.
    await expect(admitCall(deps, undefined, '2001:db8:1:2::99', { transport: 'rest' })).rejects.toMatchObject({
      rateClass: 'anonymous',
    });
  });

  it('charges the address for a token before it is verified, never again for one verified already', async () => {
    let checked = 0;
    const known = new Set<string>();
    const authenticate: Authenticator = Object.assign(
      async (authorization: string | undefined) => {
        checked++;
        if (authorization === 'Bearer good') {
          known.add(authorization);
          return { subject: 'agent-1', scopes: new Set(['context:read']) };
        }
        throw new AuthError(401, 'Unauthenticated: the token is not valid.');
      },
      { verified: (authorization: string) => known.has(authorization) },
    );
    const limiter = new RateLimiter({
      limits: { ...limits(1 / 3600, 1000), verify: { perSecond: 1 / 3600, burst: 2 } },
      maxKeys: 10,
    });
    const deps = { authenticate, rateLimiter: limiter, metrics: { rateLimited: counter } };
    const call = (token: string) => admitCall(deps, `Bearer ${token}`, '192.0.2.7', { transport: 'rest' });
    expect((await call('good')).principal?.subject).toBe('agent-1');
    expect((await call('forged-1')).authError).toBeInstanceOf(AuthError);
    // The address's two verifications are spent: a third new token is refused before it is checked.
    await expect(call('forged-2')).rejects.toMatchObject({ rateClass: 'verify' });
    expect(checked).toBe(2);
    // The token verified already costs no verification.
    expect((await call('good')).principal?.subject).toBe('agent-1');
  });

  it('takes what a call costs: a call that reaches Temporal empties a bucket a graph read does not', () => {
    const limiter = new RateLimiter({ limits: limits(1 / 3600, TEMPORAL_CALL_COST + 1), maxKeys: 10 });
    const caller = { key: 'staff-1', rateClass: 'staff' as const };
    limiter.take(caller, TEMPORAL_CALL_COST);
    expect(() => limiter.take(caller, TEMPORAL_CALL_COST)).toThrow(RateLimitedError);
    limiter.take(caller);
    expect(() => limiter.take(caller)).toThrow(RateLimitedError);
    // A call dearer than a whole bucket still goes once the bucket is full.
    const small = new RateLimiter({ limits: limits(1, 2), maxKeys: 10 });
    small.take({ key: 'k', rateClass: 'self' }, TEMPORAL_CALL_COST);
    expect(() => small.take({ key: 'k', rateClass: 'self' })).toThrow(RateLimitedError);
  });

  it('classes a token by the scopes Persona knows only', () => {
    const p = (...scopes: string[]) => ({ subject: 's', scopes: new Set(scopes) });
    expect(rateClassOf(p('ops', 'self'))).toBe('ops');
    expect(rateClassOf(p('context:read'))).toBe('agent');
    expect(rateClassOf(p('context:read', 'customers:read'))).toBe('agent');
    expect(rateClassOf(p('self'))).toBe('self');
    // An identity provider's own scopes add nothing: a customer stays a customer.
    expect(rateClassOf(p('self', 'openid', 'profile', 'email'))).toBe('self');
    // Support staff go at people's pace, whatever else their token carries that Persona does not know.
    expect(rateClassOf(p('customers:read'))).toBe('staff');
    expect(rateClassOf(p('customers:read', 'openid', 'offline_access'))).toBe('staff');
    expect(rateClassOf(p('openid'))).toBe('anonymous');
    expect(rateClassOf(p())).toBe('anonymous');
  });
});
