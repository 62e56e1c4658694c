/**
 * Authentication and authorisation for the api (REST and, later, gRPC).
 *
 * A request carries `Authorization: Bearer <JWT>`, verified with jose: HS256 with
 * PERSONA_JWT_SECRET, or a JWKS (RS256/ES256/EdDSA) when PERSONA_JWKS_URL is set. The `scope`
 * claim is space-separated; `ops` may do everything; a customer's own token (`sub` = customer
 * id, scope `self`) reaches only routes that allow `self`, and only for its own id.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';

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
  'ops',
  'self',
] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  subject: string | null;
  scopes: ReadonlySet<string>;
}

export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
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
}

export type Authenticator = (authorization: string | undefined) => Promise<Principal>;

export function createAuthenticator(s: AuthSettings): Authenticator {
  const jwks: JWTVerifyGetKey | null = s.PERSONA_JWKS_URL ? createRemoteJWKSet(new URL(s.PERSONA_JWKS_URL)) : null;
  const secret = new TextEncoder().encode(s.jwtSecret);
  const options = {
    algorithms: jwks ? ['RS256', 'ES256', 'PS256', 'EdDSA'] : ['HS256'],
    ...(s.PERSONA_JWT_ISSUER ? { issuer: s.PERSONA_JWT_ISSUER } : {}),
    ...(s.PERSONA_JWT_AUDIENCE ? { audience: s.PERSONA_JWT_AUDIENCE } : {}),
  };
  // Agents send the same token with every call of the hot read path: a verified token is
  // remembered until it expires (at most a minute), so its signature is checked once, not per call.
  const verified = new Map<string, { principal: Principal; until: number }>();
  return async (authorization) => {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match?.[1]) throw new AuthError(401, 'A bearer token is required (Authorization: Bearer <JWT>).');
    const token = match[1];
    const cached = verified.get(token);
    if (cached && cached.until > Date.now()) return cached.principal;
    try {
      const { payload } = jwks ? await jwtVerify(token, jwks, options) : await jwtVerify(token, secret, options);
      const scope =
        typeof payload.scope === 'string'
          ? payload.scope.split(/\s+/)
          : Array.isArray(payload.scp)
            ? (payload.scp as string[])
            : [];
      const principal: Principal = { subject: payload.sub ?? null, scopes: new Set(scope.filter(Boolean)) };
      if (verified.size >= 10_000) verified.clear();
      verified.set(token, { principal, until: Math.min((payload.exp ?? 0) * 1000, Date.now() + 60_000) });
      return principal;
    } catch (err) {
      const why = err instanceof joseErrors.JWTExpired ? 'the token has expired' : 'the token is not valid';
      throw new AuthError(401, `Unauthenticated: ${why}.`);
    }
  };
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
