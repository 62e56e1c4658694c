/**
 * Authentication and authorisation for the api (REST and, later, gRPC).
 *
 * A request carries `Authorization: Bearer <JWT>`, verified with jose: HS256 with
 * PERSONA_JWT_SECRET, or a JWKS (RS256/ES256/EdDSA) when PERSONA_JWKS_URL is set. The `scope`
 * claim is space-separated; `ops` may do everything; a customer's own token (`sub` = customer
 * id, scope `self`) reaches only routes that allow `self`, and only for its own id.
 */
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTHeaderParameters,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { DependencyUnavailableError } from '../runtime/dependencies';

export const SCOPES = [
  'onboarding:write',
  'customers:read',
  'customers:write',
  'context:read',
  'payments:report',
  'fraud:report',
  'devices:write',
  'events:read',
  'identity:verify',
  'identity:merge',
  'interactions:write',
  'ltv:write',
  'ops',
  'self',
] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  subject: string | null;
  scopes: ReadonlySet<string>;
  /** The token's `auth_time` (seconds since the epoch): when the person last signed in; null without one. */
  authTime?: number | null;
}

export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
    /** Extra for the answer: a problem type slug and a `WWW-Authenticate` challenge. */
    readonly hint: { type?: string; challenge?: string } = {},
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface AuthSettings {
  jwtSecret: string;
  PERSONA_JWKS_URL?: string | undefined;
  PERSONA_JWT_ISSUER?: string | undefined;
  PERSONA_JWT_AUDIENCE?: string | undefined;
  /** The longest a token may live (exp - iat) and the oldest its iat may be (default 24 h). */
  PERSONA_JWT_MAX_AGE_SECONDS?: number | undefined;
  /** The least time between two fetches of the JWKS (a token with an unknown `kid` asks again); 30 s by default. */
  jwksCooldownMs?: number;
}

/** How far the issuer's clock may be ahead of (or behind) ours, for iat, nbf and exp. */
export const CLOCK_SKEW_SECONDS = 60;
export const DEFAULT_JWT_MAX_AGE_SECONDS = 86_400;

/** Why a token was refused, in words a caller can act on. */
function refusal(err: unknown): string {
  if (err instanceof joseErrors.JWTClaimValidationFailed || err instanceof joseErrors.JWTExpired) {
    if (err.reason === 'missing')
      return `the token has no "${err.claim}" claim (every token needs exp and iat${
        ['iss', 'aud'].includes(err.claim) ? `, and here ${err.claim} too` : ''
      })`;
    if (err.claim === 'exp') return 'the token has expired';
    if (err.claim === 'nbf') return 'the token is not valid yet ("nbf")';
    if (err.claim === 'iss') return 'the token is from another issuer ("iss")';
    if (err.claim === 'aud') return 'the token is for another audience ("aud")';
    return `the token's "${err.claim}" claim is not acceptable`;
  }
  return 'the token is not valid';
}

export type Authenticator = ((authorization: string | undefined) => Promise<Principal>) & {
  /**
   * Whether this token was seen valid and has not expired, or is being checked now: its client's
   * address does not pay for checking it (again).
   */
  verified?: (authorization: string) => boolean;
};

/** The `typ` header values of an access token (RFC 7519, RFC 9068); absent is accepted too. */
const ACCESS_TOKEN_TYPES = new Set(['jwt', 'at+jwt', 'application/at+jwt']);

/** The JWKS could not be fetched or read (a timeout, a network error, a 5xx, garbage). */
function keysUnavailable(err: unknown): boolean {
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return true;
  // jose rethrows fetch's own failures (a refused connection, a non-200 answer) as they are.
  return err instanceof TypeError || (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC');
}

/**
 * The JWKS, backing off while it cannot be fetched: after a failed fetch the next one waits 1 s,
 * then 2, 4 … up to 30 s — a flood of tokens during an identity provider's outage never becomes a
 * flood of fetches against it. Meanwhile a key set fetched before and still fresh answers the
 * tokens it holds keys for (jose's cache); only a token that would need a fetch is answered 503
 * at once. One failed fetch counts once, however many tokens waited on it.
 */
function jwksWithBackoff(url: URL, cooldownMs: number | undefined, now: () => number = Date.now): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(url, {
    ...(cooldownMs !== undefined ? { cooldownDuration: cooldownMs } : {}),
    timeoutDuration: 5000,
  });
  let waitMs = 0;
  let until = 0;
  return async (header, token) => {
    const startedAt = now();
    if (startedAt < until && !remote.fresh)
      throw new DependencyUnavailableError(
        'identity-provider',
        `its keys could not be fetched; the next try is in ${Math.ceil((until - now()) / 1000)} s`,
        Math.ceil((until - now()) / 1000),
      );
    try {
      const key = await remote(header, token);
      waitMs = 0;
      return key;
    } catch (err) {
      // Tokens that waited on the same fetch fail together: the first to get here counts it.
      if (keysUnavailable(err) && until <= startedAt) {
        waitMs = Math.min(Math.max(1000, waitMs * 2), 30_000);
        until = now() + waitMs;
      }
      throw err;
    }
  };
}

/**
 * The principal of a token whose signature and standard claims jose accepted, once Persona's own
 * rules hold: an access token's `typ`, an `iat` not in the future nor older than `maxAge`, and a
 * lifetime within it. AuthError naming the rule otherwise.
 */
function acceptedClaims(
  header: JWTHeaderParameters,
  payload: JWTPayload,
  maxAge: number,
): { principal: Principal; exp: number; iat: number } {
  // An access token: another kind of JWT from the same issuer (a logout token, a DPoP proof) is not one.
  if (header.typ !== undefined && !ACCESS_TOKEN_TYPES.has(header.typ.toLowerCase()))
    throw new AuthError(401, `Unauthenticated: the token's "typ" is ${header.typ}, not an access token's (JWT).`);
  const exp = payload.exp as number;
  const iat = payload.iat as number;
  const now = Math.floor(Date.now() / 1000);
  const why =
    iat > now + CLOCK_SKEW_SECONDS
      ? 'the token was issued in the future ("iat" is ahead of our clock)'
      : now - iat > maxAge
        ? `the token was issued more than ${maxAge} s ago (the maximum token age)`
        : exp - iat > maxAge
          ? `the token lives ${exp - iat} s (exp - iat), longer than the maximum of ${maxAge} s`
          : null;
  if (why) throw new AuthError(401, `Unauthenticated: ${why}.`);
  const scope =
    typeof payload.scope === 'string'
      ? payload.scope.split(/\s+/)
      : Array.isArray(payload.scp)
        ? (payload.scp as string[])
        : [];
  const principal: Principal = {
    subject: payload.sub ?? null,
    scopes: new Set(scope.filter(Boolean)),
    authTime: typeof payload.auth_time === 'number' ? payload.auth_time : null,
  };
  return { principal, exp, iat };
}

/** Sets `key` in a map of at most `max` entries, the one set longest ago going first when full. */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

export function createAuthenticator(s: AuthSettings): Authenticator {
  const jwks: JWTVerifyGetKey | null = s.PERSONA_JWKS_URL
    ? jwksWithBackoff(new URL(s.PERSONA_JWKS_URL), s.jwksCooldownMs)
    : null;
  const secret = new TextEncoder().encode(s.jwtSecret);
  const maxAge = s.PERSONA_JWT_MAX_AGE_SECONDS ?? DEFAULT_JWT_MAX_AGE_SECONDS;
  const options = {
    algorithms: jwks ? ['RS256', 'ES256', 'PS256', 'EdDSA'] : ['HS256'],
    // jose refuses a token without these; exp and nbf get the same grace for clock skew as iat.
    requiredClaims: ['exp', 'iat'],
    clockTolerance: CLOCK_SKEW_SECONDS,
    ...(s.PERSONA_JWT_ISSUER ? { issuer: s.PERSONA_JWT_ISSUER } : {}),
    ...(s.PERSONA_JWT_AUDIENCE ? { audience: s.PERSONA_JWT_AUDIENCE } : {}),
  };
  // Agents send the same token with every call of the hot read path: a verified token is
  // remembered until it expires or grows too old (at most a minute), so its signature and
  // claims are checked once, not per call; nothing it allows outlives the rules above.
  const verified = new Map<string, { principal: Principal; until: number }>();
  // Tokens seen valid, until they expire (or grow too old): the rate limiter does not charge their
  // client's address for checking them again (api/rateLimit.ts, the `verify` bucket).
  const seen = new Map<string, number>();
  // A check under way, shared by the calls that bring the same token meanwhile: checked once.
  const pending = new Map<string, Promise<Principal>>();
  const bearer = (authorization: string | undefined): string | undefined =>
    /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  const check = async (token: string): Promise<Principal> => {
    let payload;
    let header;
    try {
      ({ payload, protectedHeader: header } = jwks
        ? await jwtVerify(token, jwks, options)
        : await jwtVerify(token, secret, options));
    } catch (err) {
      if (err instanceof DependencyUnavailableError) throw err;
      // The identity provider's keys could not be fetched: not the caller's fault, and not for ever.
      if (jwks && keysUnavailable(err))
        throw new DependencyUnavailableError('identity-provider', err instanceof Error ? err.message : String(err), 5);
      throw new AuthError(401, `Unauthenticated: ${refusal(err)}.`);
    }
    const { principal, exp, iat } = acceptedClaims(header, payload, maxAge);
    // Remembered no longer than jose would accept it: before exp, and before iat + maxAge.
    const valid = Math.min(exp * 1000, (iat + maxAge) * 1000);
    remember(verified, token, { principal, until: Math.min(valid, Date.now() + 60_000) }, 10_000);
    remember(seen, token, valid, 100_000);
    return principal;
  };
  const authenticate: Authenticator = async (authorization) => {
    const token = bearer(authorization);
    if (!token) throw new AuthError(401, 'A bearer token is required (Authorization: Bearer <JWT>).');
    const cached = verified.get(token);
    if (cached && cached.until > Date.now()) return cached.principal;
    let checking = pending.get(token);
    if (!checking) {
      checking = check(token).finally(() => pending.delete(token));
      pending.set(token, checking);
    }
    return checking;
  };
  authenticate.verified = (authorization) => {
    const token = bearer(authorization);
    return token !== undefined && (pending.has(token) || (seen.get(token) ?? 0) > Date.now());
  };
  return authenticate;
}

/**
 * What a route needs: any of `scopes` (ops always passes), or — when `self` is allowed — a
 * customer token whose subject is the customer the route is about.
 */
export interface AccessRule {
  scopes: Scope[];
  self?: boolean;
}

export function authorize(principal: Principal, rule: AccessRule, customerId?: string): void {
  if (principal.scopes.has('ops')) return;
  if (rule.scopes.some((s) => principal.scopes.has(s))) return;
  if (rule.self && principal.scopes.has('self')) {
    if (customerId !== undefined && principal.subject === customerId) return;
    throw new AuthError(403, "Forbidden: a customer's token reaches only that customer's own data.");
  }
  throw new AuthError(
    403,
    `Forbidden: this needs the scope ${rule.scopes.join(' or ')}` +
      `${rule.self ? ' (or the customer’s own token)' : ''}.`,
  );
}

/** Whether the principal reaches a route only as the customer's own token (not ops, none of its scopes). */
export function actsAsSelf(principal: Principal, routeScopes: readonly Scope[] = []): boolean {
  if (principal.scopes.has('ops') || routeScopes.some((s) => principal.scopes.has(s))) return false;
  return principal.scopes.has('self');
}

/**
 * A step that banks ask for again (export, erasure): the customer's own token needs an
 * `auth_time` no older than `windowSeconds`. Otherwise 401 with an RFC 9470 step-up challenge
 * (`error="insufficient_user_authentication"`, `max_age`), so the client signs the person in
 * again and retries with the new token.
 */
export function requireRecentAuth(principal: Principal, windowSeconds: number, nowMs = Date.now()): void {
  const authTime = principal.authTime ?? null;
  const age = authTime === null ? null : Math.floor(nowMs / 1000) - authTime;
  if (age !== null && age <= windowSeconds && age >= -CLOCK_SKEW_SECONDS) return;
  const why =
    age === null
      ? 'the token has no "auth_time" claim'
      : age < 0
        ? '"auth_time" is in the future'
        : `the last sign-in was ${age} s ago`;
  throw new AuthError(
    401,
    `A fresh sign-in is needed: ${why}; this step needs a sign-in within the last ${windowSeconds} s ` +
      '(a token whose "auth_time" is that recent).',
    {
      type: 'fresh-sign-in-required',
      challenge:
        `Bearer error="insufficient_user_authentication", ` +
        `error_description="A fresh sign-in is needed", max_age=${windowSeconds}`,
    },
  );
}
