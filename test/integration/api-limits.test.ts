/**
 * The limits a public API needs, against the real api, Temporal and Neo4j: per-caller rate
 * limits (REST 429 and gRPC RESOURCE_EXHAUSTED from one limiter), headers that keep personal
 * data out of caches, /metrics behind its token, /readyz without detail for strangers, the gRPC
 * server's size limit, field bounds and the caller's deadline, a malformed feed cursor, and
 * Idempotency-Keys that belong to their caller and agree over REST and gRPC.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDepsFromConfig, type ApiDeps } from '../../api/deps';
import { createGrpcServer, grpcCredentials, grpcServerOptions, listen } from '../../api/grpc/server';
import { RateLimiter } from '../../api/rateLimit';
import { TEMPORAL_ROUTES, WAITING_ROUTES } from '../../api/routeWeights';
import { blockListOf } from '../../api/clientAddress';
import { CODEC_MAX_BODY_BYTES } from '../../api/rest/codec';
import { getPaymentMethodsByCustomer } from '../../graph';
import { lockNode } from '../../graph/graph';
import { loadConfig } from '../../config/env';
import { createLogger } from '../../runtime/logger';
import type { PersonaAgentClient } from '../../proto/generated/persona/v1/PersonaAgent';
import { generousRateLimiter, startHarness, type Harness } from '../support/api';
import { onboardInGraph } from '../support/builders';
import { getPage, signIn } from '../support/console';
import { cardInput, uniqueEmail } from '../support/graph';
import { bearer, call, personaClient } from '../support/grpc';
import { send } from '../support/http';
import { metricValue, parseMetrics } from '../support/observability';
import { until } from '../support/wait';

let h: Harness;
let deps: ApiDeps;
let server: grpc.Server;
let client: PersonaAgentClient;
let grpcAddress: string;
/** Customers get 3 requests at once, refilled at one an hour: the 4th is refused. */
const SELF_BURST = 3;
/** Support staff too: people's pace. */
const STAFF_BURST = 3;

beforeAll(async () => {
  h = await startHarness();
  const base = apiDepsFromConfig(h.graph.config, {
    logger: createLogger('limits-test', 'silent'),
    readiness: [],
    // As the api's graph: a write commits only while its request still waits for it.
    graph: { ...h.graph, limits: { mayCommit: () => !h.requests.abandoned } },
    client: h.client,
    requests: h.requests,
    taskQueue: h.taskQueue,
  });
  const generous = { perSecond: 100_000, burst: 100_000 };
  deps = {
    ...base,
    limits: { ...base.limits, maxBodyBytes: 16 * 1024 },
    rateLimiter: new RateLimiter({
      limits: {
        anonymous: { perSecond: 1 / 3600, burst: 2 },
        self: { perSecond: 1 / 3600, burst: SELF_BURST },
        staff: { perSecond: 1 / 3600, burst: STAFF_BURST },
        agent: generous,
        ops: generous,
        verify: generous,
      },
      maxKeys: 1000,
    }),
  };
  server = createGrpcServer(deps).server;
  grpcAddress = `127.0.0.1:${await listen(server, '127.0.0.1', 0)}`;
  client = personaClient(grpcAddress);
});
afterAll(async () => {
  client?.close();
  await new Promise<void>((resolve) => server?.tryShutdown(() => resolve()));
  await h?.close();
});

/** A Subscriber with a device and an unverified email (no card), onboarded straight in the graph. */
const seededCustomer = () =>
  onboardInGraph(h.graph, {
    customer: { segment: 'Subscriber', ltv: '1' },
    payment_method: undefined,
    device: { fingerprint: `fp-${randomUUID()}` },
    digital_identifiers: [{ type: 'email', value: uniqueEmail('limits'), is_verified: false }],
  });

describe('rate limits', () => {
  it('answers 429 with Retry-After after the burst of one customer token, while another is served', async () => {
    const app = h.withDeps(() => deps);
    const [a, b] = [await seededCustomer(), await seededCustomer()];
    const [tokenA, tokenB] = [await h.token('self', a.customerId), await h.token('self', b.customerId)];
    const profile = (id: string, token: string) =>
      app.request(`/api/v1/customers/${id}/profile`, { headers: { authorization: `Bearer ${token}` } });
    const refusedBefore = metricValue(
      parseMetrics(await deps.metrics.registry.metrics()),
      'persona_rate_limited_total',
      {
        class: 'self',
        transport: 'rest',
      },
    );

    for (let n = 0; n < SELF_BURST; n++) expect((await profile(a.customerId, tokenA)).status).toBe(200);
    const refused = await profile(a.customerId, tokenA);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ status: 429, title: 'Too many requests' });
    expect((await profile(b.customerId, tokenB)).status).toBe(200);
    expect(
      metricValue(parseMetrics(await deps.metrics.registry.metrics()), 'persona_rate_limited_total', {
        class: 'self',
        transport: 'rest',
      }),
    ).toBe(refusedBefore + 1);

    // The same limiter over gRPC: customer A is out of requests there too, B is not.
    expect(await call(client, 'GetCheckoutOptions', { customer_id: a.customerId }, bearer(tokenA))).toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
    });
    expect(await call(client, 'GetCheckoutOptions', { customer_id: b.customerId }, bearer(tokenB))).toMatchObject({
      code: grpc.status.OK,
    });
  });

  it('does not limit probes and scrapes, and limits calls without a valid token by address', async () => {
    const app = h.withDeps(() => deps);
    for (let n = 0; n < 5; n++) {
      expect((await app.request('/healthz')).status).toBe(200);
      expect((await app.request('/metrics')).status).toBe(200);
    }
    const statuses: number[] = [];
    for (let n = 0; n < 3; n++)
      statuses.push((await app.request('/api/v1/events', { headers: { authorization: 'Bearer nonsense' } })).status);
    expect(statuses).toContain(429);
  });

  it('keeps at most maxKeys callers in memory under a flood of distinct ones', () => {
    const limiter = new RateLimiter({
      limits: {
        anonymous: { perSecond: 1, burst: 1 },
        self: { perSecond: 1, burst: 1 },
        staff: { perSecond: 1, burst: 1 },
        agent: { perSecond: 1, burst: 1 },
        ops: { perSecond: 1, burst: 1 },
        verify: { perSecond: 1, burst: 1 },
      },
      maxKeys: 100,
    });
    for (let n = 0; n < 10_000; n++) limiter.take({ key: `addr:${n}`, rateClass: 'anonymous' });
    expect(limiter.size).toBe(100);
  });
});

describe('route weights', () => {
  it('name routes that exist; the waiting ones are exactly those that document a wait parameter', async () => {
    const doc = (await (await h.app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${p}`, op })),
    );
    const names = new Set(routes.map((r) => r.route));
    expect(TEMPORAL_ROUTES.filter((r) => !names.has(r))).toEqual([]);
    expect(WAITING_ROUTES.filter((r) => !names.has(r))).toEqual([]);
    const documented = routes.filter((r) => r.op.parameters?.some((p) => p.in === 'query' && p.name === 'wait'));
    expect(documented.map((r) => r.route).sort()).toEqual([...WAITING_ROUTES].sort());
  });
});

describe('every answer', () => {
  it('says Cache-Control: no-store and X-Content-Type-Options: nosniff, problem+json included', async () => {
    const { customerId } = await seededCustomer();
    const answers = [
      await h.app.request(`/api/v1/customers/${customerId}/profile`, {
        headers: { authorization: `Bearer ${await h.token('ops')}` },
      }),
      await h.app.request(`/api/v1/customers/${randomUUID()}/profile`, {
        headers: { authorization: `Bearer ${await h.token('ops')}` },
      }),
      await h.app.request(`/api/v1/customers/${customerId}/profile`),
      await h.app.request('/nope'),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 404, 401, 404]);
    for (const res of answers) {
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});

describe('ops routes', () => {
  it('/metrics with a token set: 401 without it, the metrics with it', async () => {
    const token = `metrics-${randomUUID()}`;
    const app = h.withDeps((d) => ({ ...d, metricsToken: token }));
    const without = await app.request('/metrics');
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toBe('Bearer');
    expect(
      (await app.request('/metrics', { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status,
    ).toBe(401);
    const withToken = await app.request('/metrics', { headers: { authorization: `Bearer ${token}` } });
    expect(withToken.status).toBe(200);
    expect(await withToken.text()).toContain('persona_http_request_duration_seconds');
  });

  it('/readyz tells an anonymous caller the status only; ops get what failed', async () => {
    const secret = `db at 10.0.0.${Math.floor(Math.random() * 250)} refused`;
    const app = h.withDeps((d) => ({
      ...d,
      readiness: [{ name: 'neo4j', check: () => Promise.reject(new Error(secret)) }],
    }));
    const anonymous = await app.request('/readyz');
    expect(anonymous.status).toBe(503);
    const text = await anonymous.text();
    expect(text).not.toContain(secret);
    expect(text).not.toContain('neo4j');
    const ops = await app.request('/readyz', { headers: { authorization: `Bearer ${await h.token('ops')}` } });
    expect(ops.status).toBe(503);
    expect(await ops.text()).toContain(secret);
  });
});

describe('the events feed', () => {
  it('answers a malformed cursor 400 naming it, not 500', async () => {
    const token = await h.token('events:read');
    for (const cursor of [
      Buffer.from(JSON.stringify({ t: '2024-13-45T99:99:99Z', s: 1, id: 'x' })).toString('base64url'),
      Buffer.from(JSON.stringify({ t: '2024-01-01Tnonsense', s: 1, id: 'x' })).toString('base64url'),
      Buffer.from(JSON.stringify({ t: '2024-02-30T00:00:00Z', s: 1, id: 'x' })).toString('base64url'),
      Buffer.from(JSON.stringify({ t: '2024-01-01T24:00:00Z', s: 1, id: 'x' })).toString('base64url'),
      Buffer.from(JSON.stringify({ t: '2024-01-01T00:00:00Z', s: 1.5, id: 'x' })).toString('base64url'),
      'not-a-cursor',
    ]) {
      const res = await h.app.request(`/api/v1/events?after=${cursor}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status, cursor).toBe(400);
      expect(await res.json()).toMatchObject({ field: 'after' });
    }
  });
});

describe('the gRPC server', () => {
  it('refuses a message larger than REST’s body limit', async () => {
    const res = await call(
      client,
      'OnboardCustomer',
      {
        idempotency_key: randomUUID(),
        device: { fingerprint: `fp-${randomUUID()}`, user_agent: 'x'.repeat(32 * 1024) },
      },
      bearer(await h.token('onboarding:write')),
    );
    expect(res.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('takes a RecordInteractions batch larger than every other method may send', async () => {
    const customerId = randomUUID();
    const data = Array.from({ length: 300 }, () => ({
      id: `pay-${randomUUID()}`,
      type: 'payment',
      customer_id: customerId,
      occurred_at: new Date().toISOString(),
      payment_method_id: randomUUID(),
      amount: '100',
      currency: h.graph.policy.reportingCurrency,
      outcome: 'succeeded',
    }));
    expect(JSON.stringify(data).length).toBeGreaterThan(deps.limits.maxBodyBytes);
    const res = await call(client, 'RecordInteractions', { data }, bearer(await h.token('interactions:write')));
    expect(res.code).toBe(grpc.status.OK);
    // Through to the service, which answers every item (no such customer: nothing written).
    const answers = (res.res as { data: { result: string; field: string }[] }).data;
    expect(answers).toHaveLength(300);
    expect(new Set(answers.map((x) => `${x.result} ${x.field.replace(/\[\d+\]/, '[i]')}`))).toEqual(
      new Set(['invalid data[i].customer_id']),
    );
  });

  it('bounds free text as REST does, naming the field', async () => {
    const { deviceId } = await seededCustomer();
    expect(
      await call(
        client,
        'UpdateDeviceTrustScore',
        { device_id: deviceId, trust_score: 0.5, reason: 'r'.repeat(201) },
        bearer(await h.token('devices:write')),
      ),
    ).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: 'reason' });
    expect(
      await call(
        client,
        'MarkPaymentMethodInactive',
        { payment_method_id: randomUUID(), reason: 'r'.repeat(201) },
        bearer(await h.token('customers:write')),
      ),
    ).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: 'reason' });
  });

  it('does not commit a write after the caller’s deadline has passed', async () => {
    const { deviceId } = await seededCustomer();
    await h.graph.query('MATCH (d:Device {id: $id}) SET d.trust_score = 0.2', { id: deviceId });
    // Another transaction holds the device's lock past the caller's deadline.
    const blocker = h.graph.driver.session({ database: h.graph.database });
    const tx = await blocker.beginTransaction();
    await tx.run(`MATCH (d:Device {id: $id}) ${lockNode('d')}`, { id: deviceId });
    try {
      const res = await call(
        client,
        'UpdateDeviceTrustScore',
        { device_id: deviceId, trust_score: 0.9, reason: 'deadline test' },
        bearer(await h.token('devices:write')),
        { deadline: Date.now() + 400 },
      );
      expect(res.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    } finally {
      await tx.rollback();
      await blocker.close();
    }
    // Wait until the write that was waiting has finished (whichever way), then look.
    await until(async () => {
      const running = await h.graph.query<{ query: string }>(
        'SHOW TRANSACTIONS YIELD currentQuery AS query WHERE query CONTAINS $text RETURN query',
        { text: 'SET d.trust_score = coalesce($score' },
      );
      return running.length === 0;
    });
    const [device] = await h.graph.query<{ trust: number }>(
      'MATCH (d:Device {id: $id}) RETURN d.trust_score AS trust',
      {
        id: deviceId,
      },
    );
    expect(device?.trust).toBe(0.2);
  });

  it('has reflection off in production unless asked for, and refuses plaintext in production', () => {
    const config = loadConfig();
    expect(grpcServerOptions({ ...config, NODE_ENV: 'production' }).reflection).toBe(false);
    expect(grpcServerOptions({ ...config, NODE_ENV: 'production', PERSONA_GRPC_REFLECTION: 'on' }).reflection).toBe(
      true,
    );
    expect(grpcServerOptions({ ...config, NODE_ENV: 'development' }).reflection).toBe(true);
    expect(() => grpcCredentials({ ...config, NODE_ENV: 'production' })).toThrow(/PERSONA_GRPC_TLS_CERT/);
    expect(() =>
      grpcCredentials({ ...config, NODE_ENV: 'production', PERSONA_GRPC_ALLOW_INSECURE: 'true' }),
    ).not.toThrow();
  });
});

/** A CA, and a server (localhost, 127.0.0.1) and a client certificate it signed, in a fresh folder. */
function certificates(): { dir: string; file: (name: string) => string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'persona-tls-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=persona-test-ca', '-days', '1');
  for (const [name, ext] of [
    ['server', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(file(`${name}.ext`), `${ext}\n`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  }
  return { dir, file };
}

/** The services a server's reflection lists, or the status code it refused with. */
function reflectedServices(address: string): Promise<string[] | grpc.status> {
  const definition = protoLoader.loadSync(
    path.join(
      path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')),
      'build/proto/grpc/reflection/v1/reflection.proto',
    ),
    { keepCase: true },
  );
  const Reflection = (
    grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    }
  ).grpc.reflection.v1.ServerReflection;
  const reflection = new Reflection(address, grpc.credentials.createInsecure());
  type Listed = { list_services_response?: { service: { name: string }[] } };
  return new Promise<string[] | grpc.status>((resolve) => {
    const stream = (
      reflection as unknown as {
        ServerReflectionInfo(): grpc.ClientDuplexStream<object, Listed>;
      }
    ).ServerReflectionInfo();
    stream.on('data', (res: Listed) => {
      resolve((res.list_services_response?.service ?? []).map((s) => s.name));
      stream.cancel();
    });
    stream.on('error', (err: grpc.ServiceError) => resolve(err.code));
    stream.write({ list_services: '' });
  }).finally(() => reflection.close());
}

describe('the gRPC server’s transport', () => {
  it('serves TLS from configured files and, with a CA, only to clients holding a certificate it signed', async () => {
    const { dir, file } = certificates();
    const config = {
      ...loadConfig(),
      PERSONA_GRPC_TLS_CERT: file('server.crt'),
      PERSONA_GRPC_TLS_KEY: file('server.key'),
      PERSONA_GRPC_TLS_CA: file('ca.crt'),
    };
    const tls = createGrpcServer(deps).server;
    const address = `localhost:${await listen(tls, '127.0.0.1', 0, grpcCredentials(config))}`;
    const ca = readFileSync(file('ca.crt'));
    const clients = {
      mtls: personaClient(
        address,
        grpc.credentials.createSsl(ca, readFileSync(file('client.key')), readFileSync(file('client.crt'))),
      ),
      noClientCertificate: personaClient(address, grpc.credentials.createSsl(ca)),
      plaintext: personaClient(address),
    };
    try {
      const ask = (c: PersonaAgentClient) =>
        call(c, 'GetCustomerContext', { customer_id: randomUUID() }, new grpc.Metadata(), {
          deadline: Date.now() + 5000,
        }).then((r) => r.code);
      // Through TLS to the method itself, which wants a token.
      expect(await ask(clients.mtls)).toBe(grpc.status.UNAUTHENTICATED);
      expect(await ask(clients.noClientCertificate)).toBe(grpc.status.UNAVAILABLE);
      expect(await ask(clients.plaintext)).toBe(grpc.status.UNAVAILABLE);
    } finally {
      Object.values(clients).forEach((c) => c.close());
      await new Promise<void>((resolve) => tls.tryShutdown(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves reflection only when switched on', async () => {
    const off = createGrpcServer(deps, { reflection: false }).server;
    try {
      const offAddress = `127.0.0.1:${await listen(off, '127.0.0.1', 0)}`;
      expect(await reflectedServices(offAddress)).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      await new Promise<void>((resolve) => off.tryShutdown(() => resolve()));
    }
    // The suite's server is built with the default: on.
    expect(await reflectedServices(grpcAddress)).toContain('persona.v1.PersonaAgent');
  });
});

describe('limits that fit people (issue 43)', () => {
  /** A request as it reaches the api from `peer`, with the X-Forwarded-For a proxy (or the caller) wrote. */
  const from = (app: ReturnType<Harness['withDeps']>, peer: string, forwardedFor?: string) => ({
    request: (input: string, init: RequestInit = {}) =>
      app.request(
        input,
        {
          ...init,
          headers: {
            ...(init.headers as Record<string, string>),
            ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
          },
        },
        { incoming: { socket: { remoteAddress: peer } } },
      ),
  });
  const anonymousStatus = async (client: ReturnType<typeof from>) =>
    (await client.request(`/api/v1/customers/${randomUUID()}/profile`)).status;

  it('counts a tokenless caller by the client a trusted proxy names; a caller’s own header buys nothing', async () => {
    const app = h.withDeps(() => ({ ...deps, trustedProxies: blockListOf(['10.0.0.0/8']) }));
    const proxy = `10.${Math.floor(Math.random() * 250)}.0.1`;
    const [one, two] = [`203.0.113.${Math.floor(Math.random() * 250)}`, `198.18.0.${Math.floor(Math.random() * 250)}`];
    // One client behind the proxy spends its bucket (2): it alone is refused, not everyone behind the proxy.
    expect([await anonymousStatus(from(app, proxy, one)), await anonymousStatus(from(app, proxy, one))]).toEqual([
      401, 401,
    ]);
    expect(await anonymousStatus(from(app, proxy, one))).toBe(429);
    expect(await anonymousStatus(from(app, proxy, two))).toBe(401);
    // What the client wrote to the left of the proxy's entry is not believed.
    expect(await anonymousStatus(from(app, proxy, `192.0.2.77, ${one}`))).toBe(429);
    // A peer that is no trusted proxy is counted by its own address, whatever header it sends.
    const direct = `198.51.100.${Math.floor(Math.random() * 250)}`;
    const statuses = [];
    for (let n = 0; n < 3; n++) statuses.push(await anonymousStatus(from(app, direct, `203.0.113.${n}`)));
    expect(statuses).toEqual([401, 401, 429]);
  });

  it('gives a person’s console session with an agent’s scope people’s pace, not the agents’ thousands', async () => {
    const app = h.withDeps(() => deps);
    const browser = from(app, `192.0.2.${Math.floor(Math.random() * 250)}`);
    const cookie = await signIn(browser, await h.token('customers:read events:read', `staff-${randomUUID()}`));
    const statuses: number[] = [];
    for (let n = 0; n < 4; n++) statuses.push((await getPage(browser, '/console', cookie)).status);
    // The staff class's burst is 3 here; the same token over the api is an agent's (it holds a service's scope).
    // (`/console` answers the session's landing page, a redirect: served, not refused.)
    expect(statuses.map((st) => (st === 429 ? 'refused' : st < 400 ? 'served' : st))).toEqual([
      'served',
      'served',
      'served',
      'refused',
    ]);
  });

  it('holds support staff to people’s pace over REST and gRPC alike, whatever scopes it does not know', async () => {
    const app = h.withDeps(() => deps);
    const c = await seededCustomer();
    const staff = await h.token('customers:read openid profile', `staff-${randomUUID()}`);
    const profile = () => send(app, 'GET', `/api/v1/customers/${c.customerId}/profile`, { token: staff });
    const statuses: number[] = [];
    for (let n = 0; n < STAFF_BURST + 1; n++) statuses.push((await profile()).status);
    expect(statuses).toEqual([...Array<number>(STAFF_BURST).fill(200), 429]);
    // The same bucket over gRPC: refused before anything else is looked at.
    expect(await call(client, 'GetCheckoutOptions', { customer_id: c.customerId }, bearer(staff))).toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
    });
  });

  it('holds a customer’s token that also carries an identity provider’s scopes to a customer’s pace', async () => {
    const app = h.withDeps(() => deps);
    const c = await seededCustomer();
    const token = await h.token('self openid email', c.customerId);
    const statuses: number[] = [];
    for (let n = 0; n < SELF_BURST + 1; n++)
      statuses.push((await send(app, 'GET', `/api/v1/customers/${c.customerId}/profile`, { token })).status);
    expect(statuses).toEqual([...Array<number>(SELF_BURST).fill(200), 429]);
  });

  it('charges a read that reaches Temporal more than a graph read: one empties a person’s bucket', async () => {
    const app = h.withDeps(() => deps);
    const c = await seededCustomer();
    const staff = await h.token('customers:read', `staff-${randomUUID()}`);
    // A recovery's status is a query to its workflow (none runs here: 404, paid for all the same).
    const status = await send(app, 'GET', `/api/v1/payment-recoveries/pay_${randomUUID()}`, { token: staff });
    expect(status.status).toBe(404);
    expect((await send(app, 'GET', `/api/v1/customers/${c.customerId}/profile`, { token: staff })).status).toBe(429);
  });

  it('pays for a token before checking it: a flood of new tokens from one address is refused unchecked', async () => {
    let checked = 0;
    const verifyBurst = 3;
    const app = h.withDeps(() => ({
      ...deps,
      authenticate: Object.assign(
        (authorization: string | undefined) => {
          // What is checked: a token the authenticator does not remember verifying.
          if (!deps.authenticate.verified?.(authorization ?? '')) checked++;
          return deps.authenticate(authorization);
        },
        { verified: deps.authenticate.verified },
      ),
      rateLimiter: new RateLimiter({
        limits: {
          ...Object.fromEntries(
            (['anonymous', 'self', 'staff', 'agent', 'ops'] as const).map((k) => [k, { perSecond: 1000, burst: 1000 }]),
          ),
          verify: { perSecond: 1 / 3600, burst: verifyBurst },
        } as ConstructorParameters<typeof RateLimiter>[0]['limits'],
        maxKeys: 1000,
      }),
    }));
    const agent = from(app, `198.51.100.${Math.floor(Math.random() * 250)}`);
    const read = async (token: string) =>
      (await agent.request('/api/v1/events?limit=1', { headers: { authorization: `Bearer ${token}` } })).status;
    const tokens = await Promise.all(
      Array.from({ length: verifyBurst + 1 }, (_, n) => h.token('events:read', `agent-${n}-${randomUUID()}`)),
    );
    const statuses = [];
    for (const token of tokens) statuses.push(await read(token));
    expect(statuses).toEqual([...Array<number>(verifyBurst).fill(200), 429]);
    expect(checked).toBe(verifyBurst);
    // A token checked already is not checked (nor paid for) again.
    expect(await read(tokens[0] as string)).toBe(200);
    expect(checked).toBe(verifyBurst);
  });

  it('limits /readyz that carries a token: a flood of bad tokens is refused, not checked for ever', async () => {
    const app = h.withDeps(() => deps);
    const prober = from(app, `203.0.113.${Math.floor(Math.random() * 250)}`);
    const statuses: number[] = [];
    for (let n = 0; n < 4; n++)
      statuses.push((await prober.request('/readyz', { headers: { authorization: 'Bearer nonsense' } })).status);
    expect(statuses).toContain(429);
    // A probe without a token is never limited (its checks are shared between probes).
    for (let n = 0; n < 5; n++) expect([200, 503]).toContain((await prober.request('/readyz')).status);
  });

  it('caps a wallet at the configured number of methods, counted under the lock; a removal makes room', async () => {
    const app = h.withDeps(() => ({ ...deps, limits: { ...deps.limits, maxPaymentMethods: 2 } }));
    const { customerId } = await seededCustomer();
    const ops = await h.token('customers:write');
    const add = () =>
      app.request(`/api/v1/customers/${customerId}/payment-methods`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
        body: JSON.stringify(cardInput()),
      });
    // Three at once for two places: two are added, one refused.
    const statuses = (await Promise.all([add(), add(), add()])).map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 409]);
    const refused = await add();
    expect(refused.status).toBe(409);
    expect((await refused.json()) as { detail: string }).toMatchObject({
      detail: expect.stringMatching(/the most one customer may have \(2\)/),
    });
    const [first] = await getPaymentMethodsByCustomer(h.graph, customerId);
    await app.request(`/api/v1/customers/${customerId}/payment-methods/${first?.id as string}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ops}` },
    });
    expect((await add()).status).toBe(201);
  });

  it('lets a customer propose a few merges a day: past the cap, 429 with Retry-After, nothing started', async () => {
    // The quota, not the rate limit: a proposal reaches Temporal, dearer than a customer's small bucket here.
    const app = h.withDeps(() => ({
      ...deps,
      rateLimiter: generousRateLimiter(),
      merges: { ...deps.merges, proposalsPerDay: 1 },
    }));
    const [me, a, b] = [await seededCustomer(), await seededCustomer(), await seededCustomer()];
    const token = await h.token('self', me.customerId);
    const propose = (other: string) =>
      app.request('/api/v1/identity-merges', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ survivor_id: me.customerId, merged_id: other }),
      });
    const first = await propose(a.customerId);
    expect(first.status).toBe(202);
    const second = await propose(b.customerId);
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(3600);
    expect(((await second.json()) as { detail: string }).detail).toMatch(/propose 1 merges in 24 hours/);
    const workflows = h.client.workflow.list({
      query: `WorkflowType = 'identityMergeWorkflow' AND PersonaCustomerId = '${me.customerId}'`,
    });
    const started: string[] = [];
    for await (const w of workflows) started.push(w.workflowId);
    expect(started.every((id) => !id.includes(b.customerId))).toBe(true);
    const mergeId = ((await first.json()) as { merge_id: string }).merge_id;
    await h.client.workflow
      .getHandle(mergeId)
      .terminate('test over')
      .catch(() => undefined);
  });
});

describe('merge proposals as an oracle or a flood', () => {
  it('asks one customer to consent a few times a day, whoever proposes; a refusal costs a proposal too', async () => {
    // The quota, not the rate limit: a proposal reaches Temporal, dearer than a customer's small bucket here.
    const app = h.withDeps(() => ({
      ...deps,
      rateLimiter: generousRateLimiter(),
      merges: { ...deps.merges, proposalsPerDay: 1 },
    }));
    const [victim, x, y] = [await seededCustomer(), await seededCustomer(), await seededCustomer()];
    const propose = async (token: string, survivor: string, merged: string) =>
      app.request('/api/v1/identity-merges', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ survivor_id: survivor, merged_id: merged }),
      });
    const first = await propose(await h.token('self', x.customerId), x.customerId, victim.customerId);
    expect(first.status).toBe(202);
    // Another customer, and a service with identity:merge: the victim was asked once today already.
    const second = await propose(await h.token('self', y.customerId), y.customerId, victim.customerId);
    expect(second.status).toBe(429);
    expect(((await second.json()) as { detail: string }).detail).toMatch(/asked to consent to 1 merges in 24 hours/);
    const service = await propose(await h.token('identity:merge'), victim.customerId, y.customerId);
    expect(service.status).toBe(429);
    const mergeId = ((await first.json()) as { merge_id: string }).merge_id;
    await h.client.workflow
      .getHandle(mergeId)
      .terminate('test over')
      .catch(() => undefined);
  });

  it('tells a customer a record was merged already, not into which: that is ops’ to know', async () => {
    const [mine, other, survivor] = [await seededCustomer(), await seededCustomer(), await seededCustomer()];
    await h.graph.query("MATCH (c:Customer {id: $id}) SET c.status = 'merged', c.merged_into = $survivor", {
      id: other.customerId,
      survivor: survivor.customerId,
    });
    const app = h.withDeps(() => deps);
    const propose = async (token: string) =>
      app.request('/api/v1/identity-merges', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ survivor_id: mine.customerId, merged_id: other.customerId }),
      });
    const bySelf = await propose(await h.token('self', mine.customerId));
    expect(bySelf.status).toBe(409);
    const text = await bySelf.text();
    expect(text).toMatch(/was merged into another record already/);
    expect(text).not.toContain(survivor.customerId);
    const byOps = await propose(await h.token('ops'));
    expect(byOps.status).toBe(409);
    expect(await byOps.text()).toContain(survivor.customerId);
  });
});

describe('body limits, per route', () => {
  it('takes the small limit on /api routes, the codec’s own on /codec (payloads), and refuses past it', async () => {
    const app = h.withDeps(() => deps);
    const ops = await h.token('ops');
    const sized = (bytes: number) =>
      JSON.stringify({
        payloads: [{ metadata: {}, data: Buffer.alloc(Math.floor((bytes * 3) / 4)).toString('base64') }],
      });
    const post = (path: string, body: string) => send(app, 'POST', path, { token: ops, raw: body, read: 'text' });
    // Over the /api limit (16 KiB in this harness), under the codec's (4 MiB).
    const medium = sized(deps.limits.maxBodyBytes + 4096);
    const refused = await post('/api/v1/identity-merges', medium);
    expect([refused.status, (refused.json as { field: string }).field]).toEqual([413, 'body']);
    expect((await post('/codec/encode', medium)).status).not.toBe(413);
    // Past the codec's own limit.
    expect((await post('/codec/encode', sized(CODEC_MAX_BODY_BYTES + 1024))).status).toBe(413);
  });
});

describe('Idempotency-Keys', () => {
  const request = (email: string) => ({
    customer: { segment: 'Subscriber', ltv: '12.5' },
    device: { fingerprint: `fp-${randomUUID()}`, user_agent: 'Safari' },
    digital_identifiers: [{ type: 'email', value: email, is_verified: false }],
  });

  it('the same onboarding over REST then gRPC agrees; another caller’s same key is its own', async () => {
    const key = `idem-${randomUUID()}`;
    const first = request(uniqueEmail('idem'));
    const platform = await h.token('onboarding:write customers:write', `platform-${randomUUID()}`);
    // Keys in another order, and spacing: the same request.
    const raw =
      `{ "digital_identifiers": ${JSON.stringify(first.digital_identifiers)},\n` +
      `  "device": ${JSON.stringify(first.device)}, "customer": {"ltv": "12.50", "segment": "Subscriber"} }`;
    const app = h.withDeps(() => ({ ...deps, rateLimiter: generousRateLimiter() }));
    const rest = await app.request('/api/v1/onboarding?wait=true', {
      method: 'POST',
      headers: { authorization: `Bearer ${platform}`, 'idempotency-key': key, 'content-type': 'application/json' },
      body: raw,
    });
    expect(rest.status).toBe(200);
    const restAnswer = (await rest.json()) as { customer_id: string; workflow_id: string };

    const overGrpc = await call(
      client,
      'OnboardCustomer',
      { idempotency_key: key, wait: true, ...first },
      bearer(platform),
    );
    expect(overGrpc.code).toBe(grpc.status.OK);
    expect(overGrpc.res).toMatchObject({ customer_id: restAnswer.customer_id, workflow_id: restAnswer.workflow_id });

    // Another caller, the same key, its own request: neither refused nor answered the first's result.
    const other = await h.token('onboarding:write customers:write', `platform-${randomUUID()}`);
    const second = await app.request('/api/v1/onboarding?wait=true', {
      method: 'POST',
      headers: { authorization: `Bearer ${other}`, 'idempotency-key': key, 'content-type': 'application/json' },
      body: JSON.stringify(request(uniqueEmail('idem-other'))),
    });
    expect(second.status).toBe(200);
    const secondAnswer = (await second.json()) as { customer_id: string; workflow_id: string };
    expect(secondAnswer.customer_id).not.toBe(restAnswer.customer_id);
    expect(secondAnswer.workflow_id).not.toBe(restAnswer.workflow_id);
  });
});
