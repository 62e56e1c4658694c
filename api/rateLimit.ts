/**
 * Per-principal rate limits, one limiter for REST, gRPC and the console. A caller is counted by
 * who it is: a token's subject (or, for a token without one, its `client_id`/`azp` claim, else a
 * hash of the token itself); a call without a valid token by the client's address (api/rest/guards.ts:
 * the socket's peer, or behind trusted proxies the client they name). Each caller has a token
 * bucket of its class, from the scopes Persona knows (an unknown scope adds nothing): `ops`;
 * `agent` (a service: any scope but a person's); `staff` (support people with `customers:read`,
 * and every console session that is not ops' or a customer's); `self` (a customer's own token);
 * `anonymous`. People go at people's pace on every surface. Before a token is verified — a
 * signature check, perhaps a key fetch — the client's address pays for it from its `verify`
 * bucket (a token verified already, cached by the authenticator, costs nothing there); a call
 * that reaches Temporal costs `TEMPORAL_CALL_COST` from the caller's bucket, a graph read one.
 * Each bucket holds `perSecond` sustained, `burst` at once. Buckets live in this process's
 * memory — the limits hold per api replica — in a map of at most `maxKeys` callers: past it the
 * caller idle longest is forgotten (its bucket had refilled by then in all but a flood, where
 * forgetting it only gives it a full bucket again), so a flood of distinct keys cannot grow the map.
 */
import { createHash } from 'node:crypto';
import type { Counter } from 'prom-client';
import { decodeJwt } from 'jose';
import { AuthError, SCOPES, type Authenticator, type Principal } from './auth';
import { DependencyUnavailableError } from '../runtime/dependencies';
import { addressKey } from './clientAddress';

export const RATE_CLASSES = ['anonymous', 'self', 'staff', 'agent', 'ops', 'verify'] as const;
export type RateClass = (typeof RATE_CLASSES)[number];

/** What a call that reaches Temporal (starts, signals, updates, queries or describes a workflow) costs; a read 1. */
export const TEMPORAL_CALL_COST = 5;

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

  /** Takes `cost` requests from the caller's bucket; throws RateLimitedError when it holds fewer. */
  take(caller: Caller, cost = 1): void {
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
    // A call dearer than the whole bucket still goes through once it is full.
    const needs = Math.min(cost, burst);
    if (tokens < needs) {
      buckets.set(key, { tokens, at: now });
      throw new RateLimitedError(caller.rateClass, Math.max(1, Math.ceil((needs - tokens) / perSecond)));
    }
    buckets.set(key, { tokens: tokens - needs, at: now });
  }
}

const KNOWN_SCOPES: ReadonlySet<string> = new Set(SCOPES);
/** The scopes people hold: a customer's own, support staff's, ops'. Any other known scope is a service's. */
const PEOPLE_SCOPES: ReadonlySet<string> = new Set(['self', 'customers:read', 'ops']);

/**
 * ops > agent (a service's scope) > staff (`customers:read`) > self (a customer's own token), from
 * the scopes Persona knows only: `openid` or any other scope it does not use adds nothing, and a
 * token with none it knows may do nothing and gets the anonymous limit (under its own identity).
 */
export function rateClassOf(principal: Principal): RateClass {
  const known = [...principal.scopes].filter((s) => KNOWN_SCOPES.has(s));
  if (known.includes('ops')) return 'ops';
  if (known.some((s) => !PEOPLE_SCOPES.has(s))) return 'agent';
  if (known.includes('customers:read')) return 'staff';
  return known.includes('self') ? 'self' : 'anonymous';
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

/** What `admitCall` needs: who verifies tokens, the buckets, and where a refusal is counted. */
export interface Admission {
  authenticate: Authenticator;
  rateLimiter: RateLimiter;
  metrics: { rateLimited: Counter<'class' | 'transport'> };
}

export interface CallAdmission {
  transport: 'rest' | 'grpc';
  /** What the call costs from the caller's bucket (TEMPORAL_CALL_COST for a call that reaches Temporal). */
  cost?: number;
  /** The class a surface holds its callers to instead (the console: an agent's scope at people's pace). */
  reclass?: (rateClass: RateClass) => RateClass;
}

/**
 * Who is calling, charged to their bucket: the principal when the token is valid, else the
 * address. A token the authenticator has not verified yet is paid for first from the address's
 * `verify` bucket, so a flood of new or forged tokens is refused before any is checked. Returns
 * the principal (or the AuthError), so the caller authenticates only once; throws
 * RateLimitedError (counted in `persona_rate_limited_total`) when a bucket is empty.
 */
export async function admitCall(
  deps: Admission,
  authorization: string | undefined,
  address: string,
  call: CallAdmission,
): Promise<
  { principal: Principal; authError: null } | { principal: null; authError: AuthError | DependencyUnavailableError }
> {
  const take = (caller: Caller, cost = 1): void =>
    admit(deps.rateLimiter, deps.metrics.rateLimited, caller, call.transport, cost);
  const byAddress = `addr:${addressKey(address)}`;
  if (authorization !== undefined && !deps.authenticate.verified?.(authorization))
    take({ key: byAddress, rateClass: 'verify' });
  try {
    const principal = await deps.authenticate(authorization);
    // The authenticator hands back the same principal for a token it verified already: its
    // caller is worked out once (decoding the token again for its client id cost every call).
    let caller = callers.get(principal);
    if (!caller) {
      caller = { key: tokenIdentity(principal, authorization ?? ''), rateClass: rateClassOf(principal) };
      callers.set(principal, caller);
    }
    take(call.reclass ? { ...caller, rateClass: call.reclass(caller.rateClass) } : caller, call.cost);
    return { principal, authError: null };
  } catch (err) {
    // A token not verified (refused, or the identity provider's keys out of reach) counts against
    // the address: the same token sent again and again never reaches past the anonymous bucket.
    if (!(err instanceof AuthError || err instanceof DependencyUnavailableError)) throw err;
    take({ key: byAddress, rateClass: 'anonymous' });
    return { principal: null, authError: err };
  }
}

/** `admitCall`, answering a refusal (`limited`) instead of throwing it. */
export async function admitOrLimited(
  ...args: Parameters<typeof admitCall>
): Promise<Awaited<ReturnType<typeof admitCall>> | { limited: RateLimitedError }> {
  try {
    return await admitCall(...args);
  } catch (err) {
    if (err instanceof RateLimitedError) return { limited: err };
    throw err;
  }
}

/** People go at people's pace: a person's session with a service's scope (the console) is staff's. */
export const atPeoplesPace = (rateClass: RateClass): RateClass => (rateClass === 'agent' ? 'staff' : rateClass);

/** A person's call (a console session), at people's pace: `admitOrLimited` over REST. */
export const admitPerson = (deps: Admission, authorization: string | undefined, address: string, cost: number) =>
  admitOrLimited(deps, authorization, address, { transport: 'rest', cost, reclass: atPeoplesPace });

/** Takes `cost` requests, counting a refusal in `persona_rate_limited_total`. */
export function admit(
  limiter: RateLimiter,
  counter: Counter<'class' | 'transport'>,
  caller: Caller,
  transport: 'rest' | 'grpc',
  cost = 1,
): void {
  try {
    limiter.take(caller, cost);
  } catch (err) {
    if (err instanceof RateLimitedError) counter.inc({ class: err.rateClass, transport });
    throw err;
  }
}
