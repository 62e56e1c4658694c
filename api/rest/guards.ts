/**
 * What every REST answer gets and every /api call passes before its route: headers that keep
 * personal data out of caches and stop content sniffing, and the per-caller rate limit.
 */
import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { problemResponse, problemType } from '../../runtime/problem';
import type { ApiDeps } from '../deps';
import { callerAddress } from '../clientAddress';
import { admitCall, RateLimitedError } from '../rateLimit';
import { routeCost } from '../routeWeights';

/**
 * Every answer (problem+json too): no cache keeps it, no browser guesses its type. Set on the
 * answer's own headers: `c.header()` after the route has answered makes Hono copy the whole
 * response (with the Node server, a full web Response and its body stream) on every request.
 */
export function noStore(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    // The console's and the API reference's scripts and styles hold nothing personal: a browser may keep them.
    const shared = /^\/(console|docs)\/static\//.test(c.req.path) && c.res.status === 200;
    c.res.headers.set('Cache-Control', shared ? 'public, max-age=300' : 'no-store');
    c.res.headers.set('X-Content-Type-Options', 'nosniff');
  };
}

/**
 * The headers of a page of our own (the console, the API reference): its Content-Security-Policy,
 * no framing, no referrer leaving the page, its own browsing context, no camera, microphone or place.
 */
export function pageHeaders(csp: string): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.res.headers.set('Content-Security-Policy', csp);
    c.res.headers.set('X-Frame-Options', 'DENY');
    c.res.headers.set('Referrer-Policy', 'no-referrer');
    c.res.headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    c.res.headers.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
  };
}

/** The socket's peer address (never X-Forwarded-For, which any caller can write), or `unknown`. */
export function clientAddress(c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? 'unknown';
}

/** The client's address for the rate limit of a request (see callerAddress). */
export function requestCallerAddress(c: Context, proxies: BlockList): string {
  return callerAddress(clientAddress(c), c.req.header('x-forwarded-for'), proxies);
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** /readyz detail: for a caller on this host (a kubelet's exec probe, ops on the box) or with an `ops` token. */
export function readinessDetail(): (c: Context) => Promise<boolean> {
  return (c) => {
    if (LOOPBACK.test(clientAddress(c))) return Promise.resolve(true);
    // readinessLimit checked the token, if there was one.
    const identity = c.get('identity');
    return Promise.resolve(!!identity && 'principal' in identity && identity.principal.scopes.has('ops'));
  };
}

/**
 * Where a request's credentials come from, as an `Authorization` value: the header itself, unless
 * a route says otherwise (the codec server also takes the console's session cookie).
 */
export type Credentials = (c: Context) => string | undefined;

export const authorizationHeader: Credentials = (c) => c.req.header('authorization');

/**
 * /api/*, /codec/*: the call's cost from the caller's bucket (more for a route that reaches
 * Temporal, routeWeights.ts), or 429 problem+json with Retry-After.
 */
export function rateLimit(deps: ApiDeps, credentials: Credentials = authorizationHeader): MiddlewareHandler {
  return async (c, next) => {
    let identity;
    try {
      identity = await admitCall(deps, credentials(c), requestCallerAddress(c, deps.trustedProxies), {
        transport: 'rest',
        cost: routeCost(c.req.method, c.req.path),
      });
    } catch (err) {
      if (!(err instanceof RateLimitedError)) throw err;
      return rateLimitedProblem(c, err);
    }
    // The route's `access` takes it from here instead of authenticating a second time.
    c.set('identity', identity.principal ? { principal: identity.principal } : { authError: identity.authError });
    await next();
  };
}

/**
 * /readyz with a token: paid for like any call (a token's check is work), or 429. Without one the
 * answer is the status alone, and the checks are shared between probes (runtime/health.ts).
 */
export function readinessLimit(deps: ApiDeps): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.header('authorization') === undefined) return next();
    return rateLimit(deps)(c, next);
  };
}

/** 429 problem+json with Retry-After: a caller's bucket is empty, or a per-customer quota is reached. */
export function rateLimitedProblem(c: Context, err: RateLimitedError): Response {
  c.header('Retry-After', String(err.retryAfterSeconds));
  return problemResponse(c, {
    type: problemType('rate-limited'),
    title: 'Too many requests',
    status: 429,
    detail: err.message,
  });
}
