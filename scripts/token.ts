/**
 * Prints a locally signed JWT for trying the api:
 *   npm run token -- --scope "onboarding:write customers:read" [--sub <customer id>] [--ttl 1h]
 *                    [--auth-time now|<seconds since the epoch>]
 * Signed HS256 with PERSONA_JWT_SECRET (or the stack's local secret), with iat and exp (the
 * api refuses a token without them, or one living longer than PERSONA_JWT_MAX_AGE_SECONDS), and
 * the iss/aud of PERSONA_JWT_ISSUER/PERSONA_JWT_AUDIENCE when set. `--auth-time now` says the
 * person just signed in: a customer's own token needs that for export and erasure.
 */
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { SCOPES } from '../api/auth';
import { ConfigError, loadConfig } from '../config/env';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scope: { type: 'string' },
      sub: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      'auth-time': { type: 'string' },
    },
  });
  const usage =
    'usage: npm run token -- --scope "<scopes>" [--sub <customer id>] [--ttl 1h] [--auth-time now|<epoch seconds>]';
  if (!values.scope) {
    console.error(`${usage}\nscopes: ${SCOPES.join(' ')}`);
    process.exit(2);
  }
  const authTimeArg = values['auth-time'];
  const authTime =
    authTimeArg === undefined
      ? undefined
      : authTimeArg === 'now'
        ? Math.floor(Date.now() / 1000)
        : /^\d{9,11}$/.test(authTimeArg)
          ? Number(authTimeArg)
          : null;
  if (authTime === null) {
    console.error(`--auth-time: expected "now" or seconds since the epoch\n${usage}`);
    process.exit(2);
  }
  const unknown = values.scope.split(/\s+/).filter((s) => s && !(SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    console.error(`unknown scope(s): ${unknown.join(', ')}; known: ${SCOPES.join(' ')}`);
    process.exit(2);
  }
  const config = loadConfig();
  if (config.PERSONA_JWKS_URL) {
    console.error('PERSONA_JWKS_URL is set: tokens come from your identity provider, not from this script.');
    process.exit(2);
  }
  let jwt = new SignJWT({ scope: values.scope, ...(authTime === undefined ? {} : { auth_time: authTime }) })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(values.ttl ?? '1h');
  if (values.sub) jwt = jwt.setSubject(values.sub);
  if (config.PERSONA_JWT_ISSUER) jwt = jwt.setIssuer(config.PERSONA_JWT_ISSUER);
  if (config.PERSONA_JWT_AUDIENCE) jwt = jwt.setAudience(config.PERSONA_JWT_AUDIENCE);
  console.log(await jwt.sign(new TextEncoder().encode(config.jwtSecret)));
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
