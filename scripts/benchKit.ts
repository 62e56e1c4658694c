/**
 * What the benchmarks share besides randomness (scripts/random.ts): latency summaries, counting,
 * number formatting for their tables, and a bearer token the api accepts.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Config } from '../config/env';

export interface Latencies {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

/** Nearest-rank percentiles, mean and max of the samples (NaN when there are none). */
export function summarise(samples: number[]): Latencies {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  let sum = 0;
  for (const x of sorted) sum += x;
  return {
    count: sorted.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    mean: sum / sorted.length,
    max: sorted.at(-1) ?? NaN,
  };
}

/** Counts one more of `key`. */
export const tally = (m: Map<string, number>, key: string): void => void m.set(key, (m.get(key) ?? 0) + 1);

/** Two decimals, or `—` for nothing to show. */
export const f2 = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(2) : '—');

/** A whole number with thousands separators, or `—`. */
export const f0 = (n: number | undefined): string =>
  n !== undefined && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';

/** A bearer JWT with `scope` for a benchmark client, signed as the api expects (iss/aud when configured). */
export async function benchToken(config: Config, scope: string, client: string, ttl: string): Promise<string> {
  let jwt = new SignJWT({ scope, client_id: client })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(ttl);
  if (config.PERSONA_JWT_ISSUER) jwt = jwt.setIssuer(config.PERSONA_JWT_ISSUER);
  if (config.PERSONA_JWT_AUDIENCE) jwt = jwt.setAudience(config.PERSONA_JWT_AUDIENCE);
  return jwt.sign(new TextEncoder().encode(config.jwtSecret));
}

/** An onboarding request for a new customer: a verified email at `domain`, a card and a device. */
export function newCustomerOnboarding(domain: string) {
  return {
    customer: { segment: 'New', ltv: '0' },
    payment_method: {
      type: 'card',
      token: `tok_${randomUUID()}`,
      brand: 'visa',
      last_four: '4242',
      expiry_month: 12,
      expiry_year: 2031,
    },
    device: { fingerprint: `fp-${randomUUID()}`, ip: '198.51.100.7', user_agent: 'bench' },
    digital_identifiers: [{ type: 'email', value: `bench-${randomUUID()}@${domain}`, is_verified: true }],
  };
}
