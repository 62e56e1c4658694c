/**
 * Liveness and readiness for every Persona process:
 *   GET /healthz          the process is up (200 always while it serves);
 *   GET /readyz           every dependency answers (200), or 503 problem+json naming what does not;
 *   GET /readyz/<path>    the dependencies one kind of traffic needs (the api: `read`, `write`).
 * Every answer is current: the checks run when asked (probes within 250 ms of each other share
 * one round), each bounded by a short timeout, so a lost dependency shows at the next probe.
 * A 503 carries `Retry-After`.
 */
import { Hono, type Context } from 'hono';
import { problemResponse, problemType } from './problem';

export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency answers; rejects with the reason otherwise. */
  check(): Promise<void>;
}

export interface HealthOptions {
  service: string;
  checks: ReadinessCheck[];
  /**
   * Readiness per kind of traffic: each path names the checks it needs, and is served at
   * `/readyz/<path>` (the api: `read` needs Neo4j only, `write` needs Neo4j and Temporal).
   */
  paths?: Record<string, string[]>;
  timeoutMs?: number;
  /**
   * Whether this caller sees what was checked and why it failed; others get the status alone.
   * Unset, everyone does (the worker's port is not public).
   */
  detail?: (c: Context) => Promise<boolean>;
  /**
   * Per path, whether it still serves while a check it needs fails (the api's `read` path while
   * its cache can answer stale): then `/readyz/<path>` answers 200 `degraded`, so a load balancer
   * keeps the instance (and its cache) in rotation.
   */
  degraded?: Record<string, () => boolean>;
}

/** How long a check may take before it counts as unreachable: a hung dependency is seen within this. */
export const READINESS_TIMEOUT_MS = 1500;

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check.check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return 'ok';
  } catch (err) {
    return `unreachable: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check at once: each name maps to 'ok' or 'unreachable: <why>'. */
export async function checkAll(
  checks: ReadinessCheck[],
  timeoutMs = READINESS_TIMEOUT_MS,
): Promise<Record<string, string>> {
  return Object.fromEntries(
    await Promise.all(checks.map(async (ch) => [ch.name, await runCheck(ch, timeoutMs)] as const)),
  );
}

/** Whether each path's checks all passed: `{read: true, write: false}`. */
export function pathReadiness(paths: Record<string, string[]>, results: Record<string, string>) {
  return Object.fromEntries(
    Object.entries(paths).map(([path, needs]) => [path, needs.every((name) => results[name] === 'ok')]),
  );
}

/**
 * 200 with what was checked, or 503 problem+json (with Retry-After) naming what does not answer;
 * without `detail`, the status alone.
 */
function answer(
  c: Context,
  service: string,
  results: Record<string, string>,
  extra: Record<string, unknown>,
  detail: boolean,
) {
  const failing = Object.keys(results).filter((name) => results[name] !== 'ok');
  if (!detail) {
    if (failing.length === 0) return c.json({ status: 'ready' });
    c.header('Retry-After', '1');
    return problemResponse(c, { type: problemType('not-ready'), title: 'Service not ready', status: 503 });
  }
  if (failing.length === 0) return c.json({ status: 'ready', service, ...extra, checks: results });
  c.header('Retry-After', '1');
  return problemResponse(c, {
    type: problemType('not-ready'),
    title: 'Service not ready',
    status: 503,
    detail: failing.map((name) => `${name} ${results[name]}`).join('; '),
    service,
    ...extra,
    checks: results,
  });
}

/**
 * Runs the checks at most once per `freshMs`: probes arriving together share one round, so a
 * flood of (unauthenticated) readiness requests costs the dependencies a few checks a second.
 */
function sharedChecks(checks: ReadinessCheck[], timeoutMs: number, freshMs: number) {
  let last: { at: number; results: Promise<Record<string, string>> } | undefined;
  return (names?: string[]): Promise<Record<string, string>> => {
    if (!last || performance.now() - last.at > freshMs)
      last = { at: performance.now(), results: checkAll(checks, timeoutMs) };
    return last.results.then((all) =>
      names ? Object.fromEntries(Object.entries(all).filter(([name]) => names.includes(name))) : all,
    );
  };
}

export function healthRoutes({
  service,
  checks,
  paths = {},
  timeoutMs = READINESS_TIMEOUT_MS,
  detail = () => Promise.resolve(true),
  degraded = {},
}: HealthOptions): Hono {
  const app = new Hono();
  const check = sharedChecks(checks, timeoutMs, 250);
  app.get('/healthz', (c) => c.json({ status: 'ok', service }));
  app.get('/readyz', async (c) => {
    const results = await check();
    const ready = pathReadiness(paths, results);
    const states = Object.fromEntries(Object.entries(ready).map(([p, ok]) => [p, ok ? 'ready' : 'not ready']));
    return answer(c, service, results, Object.keys(paths).length > 0 ? { paths: states } : {}, await detail(c));
  });
  for (const [path, needs] of Object.entries(paths)) {
    app.get(`/readyz/${path}`, async (c) => {
      const results = await check(needs);
      const failing = Object.keys(results).filter((name) => results[name] !== 'ok');
      if (failing.length > 0 && degraded[path]?.()) {
        const show = await detail(c);
        return c.json({ status: 'degraded', ...(show ? { service, path, checks: results } : {}) });
      }
      return answer(c, service, results, { path }, await detail(c));
    });
  }
  return app;
}

/**
 * Runs the checks every `intervalMs` and tells `onResults` what they found, for the gRPC health
 * service (whose clients watch a status rather than ask). Returns a function that stops it.
 */
export function watchReadiness(
  checks: ReadinessCheck[],
  onResults: (results: Record<string, string>) => void,
  intervalMs = 500,
  timeoutMs = READINESS_TIMEOUT_MS,
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const round = async (): Promise<void> => {
    const results = await checkAll(checks, timeoutMs);
    if (stopped) return;
    onResults(results);
    timer = setTimeout(() => void round(), intervalMs);
    timer.unref();
  };
  void round();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
