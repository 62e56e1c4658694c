/**
 * Per-principal rate limits, one limiter for REST and gRPC. A caller is counted by who it is:
 * a token's subject (or, for a token without one, its `client_id`/`azp` claim, else a hash of
 * the token itself); a call without a valid token by the client's address (api/rest/guards.ts:
 * the socket's peer, or behind trusted proxies the client they name). Each caller has a token
 * bucket of its scope class (anonymous, self, agent, ops; a person's console session that is an
 * agent's scope is `console`, at people's pace): `perSecond` sustained,
 * `burst` at once. Buckets live in this process's memory — the limits hold per api replica —
 * in a map of at most `maxKeys` callers: past it the caller idle longest is forgotten (its
 * bucket had refilled by then in all but a flood, where forgetting it only gives it a full
 * bucket again), so a flood of distinct keys cannot grow the map.
 */
import { createHash } from 'node:crypto';
import type { Counter } from 'prom-client';
import { decodeJwt } from 'jose';
import { AuthError, type Authenticator, type Principal } from './auth';
import { DependencyUnavailableError } from '../runtime/dependencies';
import { addressKey } from './clientAddress';

export const RATE_CLASSES = ['anonymous', 'self', 'agent', 'ops', 'console'] as const;
export type RateClass = (typeof RATE_CLASSES)[number];

export interface RateLimit {
  /** Requests per second, sustained. */
  perSecond: number;
  /** Requests at once (the bucket's size). */
  burst: number;
}

export interface RateLimiterOptions {
  limits: Record<RateClass, RateLimit>;
  /** The most callers remembered at once. */
  maxKeys: number;
  now?: () => number;
}

/** A call refused: the caller may try again after `retryAfterSeconds`. */
export class RateLimitedError extends Error {
  constructor(
    readonly rateClass: RateClass,
    readonly retryAfterSeconds: number,
  ) {
    super(`Too many requests: retry after ${retryAfterSeconds} s.`);
    this.name = 'RateLimitedError';
  }
}

/**
 * A per-customer quota reached (merge proposals a day): answered as a rate limit (429 with
 * Retry-After; gRPC RESOURCE_EXHAUSTED) with its own words.
 */
export class QuotaReachedError extends RateLimitedError {
  constructor(what: string, retryAfterSeconds: number) {
    super('self', retryAfterSeconds);
    this.message = `Too many requests: ${what}.`;
    this.name = 'QuotaReachedError';
  }
}

export interface Caller {
  key: string;
  rateClass: RateClass;
}

export class RateLimiter {
  /**
   * One map per class, each bounded by maxKeys (idle longest first out): a flood of anonymous
   * callers from many addresses evicts only anonymous buckets, never an agent's or a person's.
   */
  private readonly classes = new Map<RateClass, Map<string, { tokens: number; at: number }>>();
  private readonly now: () => number;

  constructor(private readonly options: RateLimiterOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** How many callers are remembered now (bounded by maxKeys per class). */
  get size(): number {
    let n = 0;
    for (const buckets of this.classes.values()) n += buckets.size;
    return n;
  }

  /** Takes one request from the caller's bucket; throws RateLimitedError when it is empty. */
  take(caller: Caller): void {
    const { perSecond, burst } = this.options.limits[caller.rateClass];
    const now = this.now();
    let buckets = this.classes.get(caller.rateClass);
    if (!buckets) this.classes.set(caller.rateClass, (buckets = new Map<string, { tokens: number; at: number }>()));
    const key = caller.key;
    const bucket = buckets.get(key);
    let tokens = burst;
    if (bucket) {
      tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
      // Delete and set again: the map's order stays "idle longest first".
      buckets.delete(key);
    } else if (buckets.size >= this.options.maxKeys) {
      const idlest = buckets.keys().next().value;
      if (idlest !== undefined) buckets.delete(idlest);
    }
    if (tokens < 1) {
      buckets.set(key, { tokens, at: now });
      throw new RateLimitedError(caller.rateClass, Math.max(1, Math.ceil((1 - tokens) / perSecond)));
    }
    buckets.set(key, { tokens: tokens - 1, at: now });
  }
}

/**
 * ops > agent (any scope other than `self`) > self (a customer's own token); a token with no
 * scope at all may do nothing, and gets the anonymous limit (under its own identity).
 */
export function rateClassOf(principal: Principal): RateClass {
  if (principal.scopes.has('ops')) return 'ops';
  if ([...principal.scopes].some((s) => s !== 'self')) return 'agent';
  return principal.scopes.has('self') ? 'self' : 'anonymous';
}

function tokenIdentity(principal: Principal, authorization: string): string {
  if (principal.subject) return `sub:${principal.subject}`;
  const token = authorization.replace(/^Bearer\s+/i, '');
  try {
    const claims = decodeJwt(token);
    const client = claims.client_id ?? claims.azp;
    if (typeof client === 'string' && client) return `client:${client}`;
  } catch {
    // verified already; a token jose cannot decode again is keyed by its hash below
  }
  return `token:${createHash('sha256').update(token).digest('base64url').slice(0, 22)}`;
}

const callers = new WeakMap<Principal, Caller>();

/**
 * Who is calling, for the limiter: the principal when the token is valid, else the address.
 * Returns the principal too (or the AuthError), so the caller authenticates only once.
 */
export async function identify(
  authenticate: Authenticator,
  authorization: string | undefined,
  address: string,
): Promise<
  | { caller: Caller; principal: Principal; authError: null }
  | { caller: Caller; principal: null; authError: AuthError | DependencyUnavailableError }
> {
  try {
    const principal = await authenticate(authorization);
    // The authenticator hands back the same principal for a token it verified already: its
    // caller is worked out once (decoding the token again for its client id cost every call).
    let caller = callers.get(principal);
    if (!caller) {
      caller = { key: tokenIdentity(principal, authorization ?? ''), rateClass: rateClassOf(principal) };
      callers.set(principal, caller);
    }
    return { caller, principal, authError: null };
  } catch (err) {
    // A token not verified (refused, or the identity provider's keys out of reach) counts against
    // the address: the same token sent again and again never reaches past the anonymous bucket.
    if (!(err instanceof AuthError || err instanceof DependencyUnavailableError)) throw err;
    return { caller: { key: `addr:${addressKey(address)}`, rateClass: 'anonymous' }, principal: null, authError: err };
  }
}

/** Takes one request, counting a refusal in `persona_rate_limited_total`. */
export function admit(
  limiter: RateLimiter,
  counter: Counter<'class' | 'transport'>,
  caller: Caller,
  transport: 'rest' | 'grpc',
): void {
  try {
    limiter.take(caller);
  } catch (err) {
    if (err instanceof RateLimitedError) counter.inc({ class: err.rateClass, transport });
    throw err;
  }
}
