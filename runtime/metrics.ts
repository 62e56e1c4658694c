/**
 * Prometheus metrics: each process keeps its own registry (built in its entry point, or by a
 * test) and serves it at GET /metrics in the text exposition format.
 */
import { Hono } from 'hono';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** A registry; with `processMetrics`, also Node's own (CPU, memory, event-loop lag, GC). */
export function createRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** GET /metrics: whatever `render` gives, as Prometheus text; 503 saying why when it cannot. */
export function metricsRoutes(render: () => Promise<string>): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => {
    try {
      return c.body(await render(), 200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE });
    } catch (err) {
      return c.text(`metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`, 503);
    }
  });
  return app;
}
