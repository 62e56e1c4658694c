import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Connection } from '@temporalio/client';
import type { Driver } from 'neo4j-driver';
import { apiDepsFromConfig } from '../../api/deps';
import type { ReadinessCheck } from '../../runtime/health';
import { graphFromConfig } from '../../runtime/graph';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/rest/app';
import { loadConfig, loadSettings, WORK_KINDS, workerDeploymentVersion } from '../../config/env';
import { createDriver } from '../../graph';
import { neo4jCheck, temporalCheck } from '../../runtime/checks';
import { createLogger } from '../../runtime/logger';
import { RequestContext } from '../../runtime/requestContext';
import { connectTemporal } from '../../temporal/connection';
import { signToken } from '../support/api';
import { FETCH_BAD_PORTS, freePort, startProcess, testDeploymentName, waitForOk } from '../support/processes';

const config = loadConfig();
const logger = createLogger('test', 'silent');
/** Readiness names what failed only to ops (or a caller on the same host). */
const asOps = async () => ({ headers: { authorization: `Bearer ${await signToken(config.jwtSecret, 'ops')}` } });

/** An app whose only interesting dependency is its readiness checks. */
function appWith(readiness: ReadinessCheck[], temporal: Awaited<ReturnType<typeof connectTemporal>>, driver: Driver) {
  return createApp(
    apiDepsFromConfig(config, {
      logger,
      readiness,
      graph: graphFromConfig(driver, config),
      client: temporal.client,
      requests: new RequestContext(),
    }),
  );
}

describe('the ports tests start processes on', () => {
  // An api once listened on 10080, which fetch refuses ("bad port"): up, and never seen ready.
  it('are never one fetch refuses: every port of the range fetch refuses is left out', async () => {
    // fetch refuses a bad port before it hands the request to its dispatcher; this dispatcher fails
    // every request it is handed at once, so no port is connected to and none needs to be free.
    const dispatched = new Set<number>();
    const dispatcher = {
      dispatch(opts: { origin?: string | URL }, handler: { onError(err: Error): void }): boolean {
        dispatched.add(Number(new URL(String(opts.origin)).port));
        queueMicrotask(() => handler.onError(new Error('not connected: the test dispatcher')));
        return true;
      },
    } as unknown as NonNullable<RequestInit['dispatcher']>;
    const refused: number[] = [];
    const ports = Array.from({ length: 32_768 - 10_000 }, (_, i) => 10_000 + i);
    for (let i = 0; i < ports.length; i += 500)
      await Promise.all(
        ports.slice(i, i + 500).map((port) =>
          fetch(`http://127.0.0.1:${port}/`, { dispatcher }).then(
            (res) => void res.body?.cancel(),
            (err: Error) => {
              if ((err.cause as Error | undefined)?.message === 'bad port') refused.push(port);
            },
          ),
        ),
      );
    // Every port was either refused or handed on to be connected to, never both.
    expect(refused.filter((p) => dispatched.has(p))).toEqual([]);
    expect(dispatched.size + refused.length).toBe(ports.length);
    expect(refused.sort()).toEqual([...FETCH_BAD_PORTS].filter((p) => p < 32_768).sort());
    for (let n = 0; n < 200; n++) expect(FETCH_BAD_PORTS.has(await freePort())).toBe(false);
  });
});

describe('readiness', () => {
  const driver = createDriver(config);
  let temporal: Awaited<ReturnType<typeof connectTemporal>>;
  beforeAll(async () => {
    temporal = await connectTemporal(config);
  });
  afterAll(async () => {
    await driver.close();
    await temporal.connection.close();
  });

  it('is ready when Neo4j and Temporal answer', async () => {
    const app = appWith(
      [neo4jCheck(driver, config.NEO4J_DATABASE), temporalCheck(temporal.connection, config.TEMPORAL_NAMESPACE)],
      temporal,
      driver,
    );
    expect((await app.request('/healthz')).status).toBe(200);
    const res = await app.request('/readyz', await asOps());
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', checks: { neo4j: 'ok', temporal: 'ok' } });
  });

  it('answers 503 problem+json naming Neo4j when Neo4j is unreachable', async () => {
    const deadDriver = createDriver({ ...config, NEO4J_URI: `bolt://127.0.0.1:${await freePort()}` });
    try {
      const app = appWith(
        [neo4jCheck(deadDriver, config.NEO4J_DATABASE), temporalCheck(temporal.connection, config.TEMPORAL_NAMESPACE)],
        temporal,
        driver,
      );
      const res = await app.request('/readyz', await asOps());
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const body = (await res.json()) as { detail: string; checks: Record<string, string> };
      expect(body).toMatchObject({ status: 503, title: 'Service not ready', checks: { temporal: 'ok' } });
      expect(body.checks.neo4j).toMatch(/^unreachable/);
      expect(body.detail).toMatch(/^neo4j unreachable/);
    } finally {
      await deadDriver.close();
    }
  });

  it('answers 503 problem+json naming Temporal when Temporal is unreachable', async () => {
    // Without the SDK's retries, like the api's own probe: a retry still pending when the
    // connection closes would throw from its timer.
    const dead = Connection.lazy({ address: `127.0.0.1:${await freePort()}`, connectTimeout: '1s', interceptors: [] });
    try {
      const app = appWith(
        [neo4jCheck(driver, config.NEO4J_DATABASE), temporalCheck(dead, config.TEMPORAL_NAMESPACE)],
        temporal,
        driver,
      );
      const res = await app.request('/readyz', await asOps());
      expect(res.status).toBe(503);
      const body = (await res.json()) as { checks: Record<string, string> };
      expect(body.checks.neo4j).toBe('ok');
      expect(body.checks.temporal).toMatch(/^unreachable/);
    } finally {
      await dead.close();
    }
  });

  it('answers a method a known path does not take with 405 and Allow', async () => {
    // Over a real socket: fetch refuses to send TRACE at all.
    const server = serve({ fetch: appWith([], temporal, driver).fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    const ask = (method: string, path: string) =>
      new Promise<{ status: number; allow: string | undefined; type: string | undefined; body: string }>(
        (resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method, path }, (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                allow: res.headers.allow,
                type: res.headers['content-type'],
                body,
              }),
            );
          });
          req.on('error', reject);
          req.end();
        },
      );
    try {
      const trace = await ask('TRACE', '/api/v1/payment-failures');
      expect(trace).toMatchObject({ status: 405, allow: 'POST', type: 'application/problem+json' });
      expect(JSON.parse(trace.body)).toMatchObject({ status: 405, title: 'Method not allowed' });
      const patch = await ask('PATCH', `/api/v1/customers/${randomUUID()}/profile`);
      expect(patch).toMatchObject({ status: 405, allow: 'GET, HEAD, PUT' });
      expect((await ask('GET', '/api/v1/no-such-thing')).status).toBe(404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('answers unknown routes with problem+json', async () => {
    const res = await appWith([], temporal, driver).request('/nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ status: 404, instance: '/nope' });
  });
});

describe('the api and worker processes', () => {
  it.each([
    ['api', 'api/main.ts', 'PERSONA_HTTP_PORT'],
    ['worker', 'workers/main.ts', 'PERSONA_WORKER_HTTP_PORT'],
  ])(
    'the %s connects, checks the schema, becomes ready, and stops cleanly on SIGTERM',
    async (name, entry, portVar) => {
      const port = await freePort();
      const proc = startProcess(entry, {
        [portVar]: String(port),
        PERSONA_GRPC_PORT: String(await freePort()),
        PERSONA_WORKER_SDK_METRICS_PORT: String(await freePort()),
        PERSONA_HTTP_HOST: '127.0.0.1',
        // Not the `persona` deployment a developer's `npm run dev` worker belongs to.
        PERSONA_DEPLOYMENT_NAME: testDeploymentName(),
        LOG_LEVEL: 'info',
      });
      try {
        const ready = await waitForOk(`http://127.0.0.1:${port}/readyz`, proc);
        expect(await ready.json()).toMatchObject({ status: 'ready' });
        // It migrates nothing (the set-up ran the migration step, as a deploy does): it checks.
        expect(proc.output()).toContain('"msg":"graph schema checked"');
        // The api reads a context once before it serves, so the first agent's read is not the cold one.
        if (name === 'api') expect(proc.output()).toContain('"msg":"read path warmed up"');
        // The worker says which deployment version it polls as (it gets tasks once that is current).
        if (name === 'worker')
          expect(proc.output()).toContain(
            `as deployment version ${testDeploymentName()}.${workerDeploymentVersion(loadSettings()).buildId}`,
          );

        // One Worker per kind of work, each on its own queue (named from TEMPORAL_TASK_QUEUE, `persona`).
        if (name === 'worker')
          for (const kind of WORK_KINDS) expect(proc.output()).toContain(`${kind} worker: task queue persona-${kind},`);

        proc.child.kill('SIGTERM');
        expect(await proc.exited).toBe(0);
        if (name === 'worker') expect(proc.output()).toContain('"msg":"every worker drained"');
        expect(proc.output()).toContain('"msg":"bye"');
      } finally {
        if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
      }
    },
  );

  it.each([
    ['api', 'api/main.ts'],
    ['worker', 'workers/main.ts'],
  ])(
    'the %s refuses to start on a graph its settings do not fit, saying why, and migrates nothing',
    async (_, entry) => {
      // A graph kept in USD, a process told JPY: every amount would be misread.
      const proc = startProcess(entry, {
        PERSONA_HTTP_PORT: String(await freePort()),
        PERSONA_WORKER_HTTP_PORT: String(await freePort()),
        PERSONA_GRPC_PORT: String(await freePort()),
        PERSONA_DEPLOYMENT_NAME: testDeploymentName(),
        PERSONA_REPORTING_CURRENCY: 'JPY',
        LOG_LEVEL: 'info',
      });
      try {
        expect(await proc.exited).not.toBe(0);
        expect(proc.output()).toMatch(/counts money in minor units of USD, but PERSONA_REPORTING_CURRENCY is JPY/);
        expect(proc.output()).not.toContain('graph schema checked');
      } finally {
        if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
      }
    },
  );
});
