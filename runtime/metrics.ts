/**
 * Prometheus metrics: each process keeps its own registry (built in its entry point, or by a
 * test) and serves it at GET /metrics in the text exposition format.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { problemResponse, problemType } from './problem';

/** A registry; with `processMetrics`, also Node's own (CPU, memory, event-loop lag, GC). */
export function createRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * GET /metrics: whatever `render` gives, as Prometheus text; 503 saying why when it cannot.
 * With a `token`, only a caller sending `Authorization: Bearer <token>` is answered (401 otherwise).
 */
export function metricsRoutes(render: () => Promise<string>, options: { token?: string | undefined } = {}): Hono {
  const app = new Hono();
  const expected = options.token ? createHash('sha256').update(options.token).digest() : null;
  app.get('/metrics', async (c) => {
    if (expected) {
      const sent = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
      if (!timingSafeEqual(createHash('sha256').update(sent).digest(), expected)) {
        c.header('WWW-Authenticate', 'Bearer');
        return problemResponse(c, {
          type: problemType('unauthenticated'),
          title: 'Unauthenticated',
          status: 401,
          detail: 'GET /metrics needs the metrics bearer token.',
        });
      }
    }
    try {
      return c.body(await render(), 200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE });
    } catch (err) {
      return c.text(`metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`, 503);
    }
  });
  return app;
}
