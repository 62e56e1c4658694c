/**
 * Liveness and readiness for every Persona process:
 *   GET /healthz  the process is up (200 always while it serves);
 *   GET /readyz   every dependency answers (200), or 503 problem+json naming what does not.
 */
import { Hono } from 'hono';
import { problemResponse, problemType } from './problem';

export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency answers; rejects with the reason otherwise. */
  check(): Promise<void>;
}

export interface HealthOptions {
  service: string;
  checks: ReadinessCheck[];
  timeoutMs?: number;
}

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
export async function checkAll(checks: ReadinessCheck[], timeoutMs = 5000): Promise<Record<string, string>> {
  return Object.fromEntries(
    await Promise.all(checks.map(async (ch) => [ch.name, await runCheck(ch, timeoutMs)] as const)),
  );
}

export function healthRoutes({ service, checks, timeoutMs = 5000 }: HealthOptions): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok', service }));
  app.get('/readyz', async (c) => {
    const results = await checkAll(checks, timeoutMs);
    const failing = Object.entries(results).filter(([, r]) => r !== 'ok');
    if (failing.length === 0) return c.json({ status: 'ready', service, checks: results });
    return problemResponse(c, {
      type: problemType('not-ready'),
      title: 'Service not ready',
      status: 503,
      detail: failing.map(([name, r]) => `${name} ${r}`).join('; '),
      service,
      checks: results,
    });
  });
  return app;
}
