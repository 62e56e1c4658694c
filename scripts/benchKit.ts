/**
 * What the benchmarks share besides randomness (scripts/random.ts): latency summaries, counting,
 * number formatting for their tables, and a bearer token the api accepts.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
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

// ---- ghz, the independent gRPC client --------------------------------------------------------

/** One ghz run's figures (ms). */
export interface GhzResult {
  clients: number;
  count: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: Record<string, number>;
}

/**
 * ghz's arguments for `seconds` of unary calls from `clients` connections over the requests of
 * `dataFile` (round robin), the address last. The service's shape comes from the api's gRPC
 * reflection, not from the .proto file: ghz's own proto parser predates proto3's `optional` fields
 * (persona.proto has some) and refuses the file.
 */
export function contextGhzArgs(o: {
  call: string;
  dataFile: string;
  authorization: string;
  clients: number;
  seconds: number;
  address: string;
}): string[] {
  const metadata = JSON.stringify({ authorization: o.authorization });
  const run = ['-c', String(o.clients), '-z', `${String(o.seconds)}s`];
  return ['--insecure', '--call', o.call, '--data-file', o.dataFile, '--metadata', metadata, ...run, o.address];
}

/** An executable's path on PATH, or null. */
export function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter))
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  return null;
}

/** Runs ghz with `args` (the address last), its JSON report read back. */
export async function runGhz(bin: string, args: string[], clients: number): Promise<GhzResult> {
  const child = spawn(bin, [...args.slice(0, -1), '--format', 'json', args.at(-1) as string], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`ghz exited ${String(code)}: ${err.trim().slice(0, 300)}`);
  const r = JSON.parse(out) as {
    count: number;
    rps: number;
    latencyDistribution?: { percentage: number; latency: number }[] | null;
    errorDistribution?: Record<string, number> | null;
  };
  const at = (p: number): number => (r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  return {
    clients,
    count: r.count,
    rps: r.rps,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    errors: r.errorDistribution ?? {},
  };
}
