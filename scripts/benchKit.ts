/**
 * What the benchmarks share besides randomness (scripts/random.ts): latency summaries, counting,
 * number formatting for their tables, and a bearer token the api accepts.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
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
 * `dataFile` (round robin), the address last; `rps`, when set, paces them (requests a second over
 * all connections; otherwise as fast as answers come). The service's shape comes from the api's gRPC
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
  rps?: number;
}): string[] {
  const metadata = JSON.stringify({ authorization: o.authorization });
  const run = ['-c', String(o.clients), '-z', `${String(o.seconds)}s`, ...(o.rps ? ['-r', String(o.rps)] : [])];
  return ['--insecure', '--call', o.call, '--data-file', o.dataFile, '--metadata', metadata, ...run, o.address];
}

/** An executable's path on PATH, or null. */
export function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter))
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  return null;
}

/**
 * Sets the scheduling nice of a process's autogroup (Linux: every process of one session shares
 * one, and the CPU is shared between autogroups by their nice): `undefined` when done, else why
 * not (no autogroups here, or a nice below 0 without the right to raise priority).
 */
export function setAutogroupNice(pid: number, nice: number): string | undefined {
  try {
    writeFileSync(`/proc/${String(pid)}/autogroup`, String(nice));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Runs ghz with `args` (the address last), its JSON report read back. With `ownSession` it runs in
 * a session of its own, as a client on another host would not share the CPU with the process that
 * starts it; with `nice` too, that session's autogroup gets that nice.
 */
export async function runGhz(
  bin: string,
  args: string[],
  clients: number,
  options: { ownSession?: boolean; nice?: number } = {},
): Promise<GhzResult> {
  const child = spawn(bin, [...args.slice(0, -1), '--format', 'json', args.at(-1) as string], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownSession === true,
  });
  if (options.ownSession && options.nice !== undefined && child.pid !== undefined) {
    const problem = setAutogroupNice(child.pid, options.nice);
    if (problem) console.warn(`bench: ghz runs at the default priority: ${problem}`);
  }
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

// ---- the api's /metrics ---------------------------------------------------------------------

export const CACHE_HITS = 'persona_read_cache_hits_total';
export const CACHE_MISSES = 'persona_read_cache_misses_total';

/**
 * The api's metrics (`rest`: its REST base), counters summed over their labels; the read cache's
 * misses also by reason, as `name:reason`. Empty when the api does not answer.
 */
export async function scrapeMetrics(rest: string, config: Config): Promise<Map<string, number>> {
  const headers: Record<string, string> = config.PERSONA_METRICS_TOKEN
    ? { authorization: `Bearer ${config.PERSONA_METRICS_TOKEN}` }
    : {};
  const out = new Map<string, number>();
  try {
    const res = await fetch(`${rest}/metrics`, { headers, signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return out;
    for (const line of (await res.text()).split('\n')) {
      if (line.startsWith('#')) continue;
      // name{labels} value
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+([-+0-9.eEInfNa]+)/.exec(line);
      if (!m) continue;
      const [, name, labels, value] = m as unknown as [string, string, string | undefined, string];
      out.set(name, (out.get(name) ?? 0) + Number(value));
      const reason = name === CACHE_MISSES ? /reason="([^"]*)"/.exec(labels ?? '')?.[1] : undefined;
      if (reason) out.set(`${name}:${reason}`, Number(value));
    }
  } catch {
    // no metrics: the figures that need them show "—"
  }
  return out;
}

/** The read cache's hit rate between two scrapes (null without a cache or reads). */
export function hitRate(before: Map<string, number>, after: Map<string, number>): number | null {
  if (!after.has(CACHE_HITS) || !after.has(CACHE_MISSES)) return null;
  const hits = (after.get(CACHE_HITS) ?? 0) - (before.get(CACHE_HITS) ?? 0);
  const misses = (after.get(CACHE_MISSES) ?? 0) - (before.get(CACHE_MISSES) ?? 0);
  return hits + misses > 0 ? hits / (hits + misses) : null;
}

/** The read cache's misses between two scrapes, by reason (absent, behind_token, tail_behind, expired). */
export function missesByReason(before: Map<string, number>, after: Map<string, number>): Record<string, number> | null {
  const out: Record<string, number> = {};
  for (const [key, value] of after)
    if (key.startsWith(`${CACHE_MISSES}:`)) out[key.slice(CACHE_MISSES.length + 1)] = value - (before.get(key) ?? 0);
  return Object.keys(out).length > 0 ? out : null;
}

/** How much a counter moved between two scrapes (null when the api has no such counter). */
export function moved(before: Map<string, number>, after: Map<string, number>, name: string): number | null {
  return after.has(name) ? (after.get(name) ?? 0) - (before.get(name) ?? 0) : null;
}
