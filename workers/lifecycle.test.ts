import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NativeConnection } from '@temporalio/worker';
import type { Hono } from 'hono';
import type { Driver } from 'neo4j-driver';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../runtime/logger';
import { closeWorker, workerHttpApp, type WorkerResources } from './lifecycle';

/** Resources whose closes are recorded in order; `failing` names those that throw. */
function resources(failing: string[]) {
  const closed: string[] = [];
  const close = (what: string) => async () => {
    closed.push(what);
    if (failing.includes(what)) throw new Error(`${what} would not close`);
  };
  const r = {
    server: { close: (done: () => void) => (closed.push('server'), done()) },
    stopEnsuringTopics: { abort: () => void closed.push('topics') },
    sequencer: { stop: close('sequencer') },
    invalidations: { close: close('invalidations') },
    connection: { close: close('connection') },
    temporal: { connection: { close: close('client connection') } },
    kafka: { close: close('kafka') },
    driver: { close: close('driver') },
    tracing: { shutdown: close('tracing') },
  } as unknown as WorkerResources;
  const logged: { level: string; msg: string; err?: unknown }[] = [];
  const logger = {
    info: (msg: string) => logged.push({ level: 'info', msg }),
    error: (obj: { err: unknown }, msg: string) => logged.push({ level: 'error', msg, err: obj.err }),
  } as unknown as Logger;
  return { r, closed, logger, logged };
}

const ALL = [
  'server',
  'topics',
  'sequencer',
  'invalidations',
  'connection',
  'client connection',
  'kafka',
  'driver',
  'tracing',
];

describe('closing the worker process', () => {
  it('closes everything in order and says bye', async () => {
    const { r, closed, logger, logged } = resources([]);
    expect(await closeWorker(r, logger)).toBe(true);
    expect(closed).toEqual(ALL);
    expect(logged).toEqual([{ level: 'info', msg: 'bye' }]);
  });

  it('goes on past a close that fails, logs what it was, and says so', async () => {
    const { r, closed, logger, logged } = resources(['connection', 'kafka']);
    expect(await closeWorker(r, logger)).toBe(false);
    // The driver and the traces are closed though the Temporal connection and Kafka failed.
    expect(closed).toEqual(ALL);
    expect(logged.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual([
      "could not close the Workers' Temporal connection; closing the rest",
      'could not close the Kafka producer; closing the rest',
    ]);
    expect(logged.at(-1)?.msg).toMatch(/unclosed/);
  });

  it('skips what the process did not open', async () => {
    const { r, logger } = resources([]);
    const without = { ...r, sequencer: undefined, invalidations: undefined, kafka: undefined, tracing: null };
    expect(await closeWorker(without, logger)).toBe(true);
  });
});

describe("the worker's /metrics", () => {
  /** The worker's routes over a stand-in for the SDK's exporter that answers `sdk_up 1`. */
  async function app(token?: string) {
    const exporter = createServer((_req, res) => res.end('sdk_up 1\n'));
    await new Promise<void>((resolve) => exporter.listen(0, '127.0.0.1', resolve));
    const routes = workerHttpApp(
      {
        NEO4J_DATABASE: 'neo4j',
        TEMPORAL_NAMESPACE: 'default',
        PERSONA_WORKER_SDK_METRICS_PORT: (exporter.address() as AddressInfo).port,
        PERSONA_METRICS_TOKEN: token,
      },
      { driver: {} as Driver, connection: {} as NativeConnection, workers: { notRunning: () => [] } },
    );
    return { routes, close: () => new Promise<void>((resolve) => exporter.close(() => resolve())) };
  }
  const scrape = (routes: Hono, authorization?: string) =>
    routes.request('/metrics', authorization ? { headers: { authorization } } : {});

  it('needs the metrics token when one is set, as the api’s does', async () => {
    const { routes, close } = await app('worker-metrics-token');
    try {
      for (const wrong of [undefined, 'Bearer another-metrics-token', 'worker-metrics-token']) {
        const res = await scrape(routes, wrong);
        expect(res.status, wrong).toBe(401);
        expect(await res.text()).not.toContain('sdk_up');
      }
      const res = await scrape(routes, 'Bearer worker-metrics-token');
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('sdk_up 1');
    } finally {
      await close();
    }
  });

  it('answers anyone without a token (outside production: config/env.ts requires one there)', async () => {
    const { routes, close } = await app();
    try {
      const res = await scrape(routes);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('sdk_up 1');
    } finally {
      await close();
    }
  });
});
