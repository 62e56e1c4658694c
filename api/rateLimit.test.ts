import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../runtime/dependencies';
import { identify, RateLimitedError, RateLimiter, rateClassOf, type RateClass } from './rateLimit';

const limits = (perSecond: number, burst: number): Record<RateClass, { perSecond: number; burst: number }> => ({
  anonymous: { perSecond, burst },
  self: { perSecond, burst },
  agent: { perSecond, burst },
  ops: { perSecond, burst },
  console: { perSecond, burst },
});

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
    const who = await identify(
      async () => {
        throw down;
      },
      'Bearer whatever',
      '2001:db8:1:2::77',
    );
    expect(who).toMatchObject({ principal: null, authError: down });
    expect(who.caller).toEqual({ key: 'addr:2001:db8:1:2::/64', rateClass: 'anonymous' });
  });

  it('classes a token by its scopes', () => {
    const p = (...scopes: string[]) => ({ subject: 's', scopes: new Set(scopes) });
    expect(rateClassOf(p('ops', 'self'))).toBe('ops');
    expect(rateClassOf(p('context:read'))).toBe('agent');
    expect(rateClassOf(p('self'))).toBe('self');
    expect(rateClassOf(p())).toBe('anonymous');
  });
});
