/**
 * Prints a locally signed JWT for trying the api:
 *   npm run token -- --scope "onboarding:write customers:read" [--sub <customer id>] [--ttl 1h]
 * Signed HS256 with PERSONA_JWT_SECRET (or the stack's local secret).
 */
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { SCOPES } from '../api/auth';
import { ConfigError, loadConfig } from '../config/env';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { scope: { type: 'string' }, sub: { type: 'string' }, ttl: { type: 'string', default: '1h' } },
  });
  if (!values.scope) {
    console.error(
      `usage: npm run token -- --scope "<scopes>" [--sub <customer id>] [--ttl 1h]\nscopes: ${SCOPES.join(' ')}`,
    );
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
  let jwt = new SignJWT({ scope: values.scope })
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
