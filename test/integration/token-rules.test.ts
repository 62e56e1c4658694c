/**
 * Token rules through the real api and Neo4j: a token without exp or iat, or older than the
 * maximum token age, is refused with a 401 that says why; export and erasure with a customer's
 * own token need a recent sign-in (`auth_time`), ops do not; and a production api refuses to
 * start without the tokens' issuer and audience.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { WorkflowNotFoundError } from '@temporalio/client';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDepsFromConfig } from '../../api/deps';
import { createGrpcServer, listen } from '../../api/grpc/server';
import { createCustomer, listCustomerEvents } from '../../graph';
import { createLogger } from '../../runtime/logger';
import { erasureWorkflowId } from '../../temporal/erasure';
import { startHarness, type Harness } from '../support/api';
import { bearer, call as grpcCall, personaClient } from '../support/grpc';
import { send } from '../support/http';
import { freePort, startProcess } from '../support/processes';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const now = () => Math.floor(Date.now() / 1000);
const raw = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(h.graph.config.jwtSecret));

describe('token claims', () => {
  it('refuses a token without exp or iat, or older than the maximum age, saying why', async () => {
    const customer = await createCustomer(h.graph, {});
    const path = `/api/v1/customers/${customer.id}/profile`;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ scope: 'ops', iat: now() }, /no "exp" claim/],
      [{ scope: 'ops', exp: now() + 600 }, /no "iat" claim/],
      [{ scope: 'ops', iat: now() - 90_000, exp: now() + 600 }, /issued more than 86400 s ago/],
      [{ scope: 'ops', iat: now(), exp: now() + 90_000 }, /longer than the maximum of 86400 s/],
      [{ scope: 'ops', iat: now() + 3600, exp: now() + 4000 }, /issued in the future/],
    ];
    for (const [claims, why] of cases) {
      const res = await send(h.app, 'GET', path, { token: await raw(claims) });
      expect([res.status, res.headers.get('content-type')], JSON.stringify(claims)).toEqual([
        401,
        'application/problem+json',
      ]);
      expect(res.json.detail).toMatch(why);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect(
      (await send(h.app, 'GET', path, { token: await raw({ scope: 'ops', iat: now(), exp: now() + 600 }) })).status,
    ).toBe(200);
  });

  it('holds for gRPC too: UNAUTHENTICATED saying which claim is missing', async () => {
    const customer = await createCustomer(h.graph, {});
    const deps = apiDepsFromConfig(h.graph.config, {
      logger: createLogger('token-rules', 'silent'),
      readiness: [],
      graph: h.graph,
      client: h.client,
      requests: h.requests,
      taskQueue: h.taskQueue,
    });
    const { server } = createGrpcServer(deps);
    const client = personaClient(`127.0.0.1:${await listen(server, '127.0.0.1', 0)}`);
    try {
      const req = { customer_id: customer.id };
      const noExp = bearer(await raw({ scope: 'context:read', iat: now() }));
      expect(await grpcCall(client, 'GetCustomerContext', req, noExp)).toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
        details: expect.stringMatching(/no "exp" claim/) as unknown,
      });
      const valid = bearer(await raw({ scope: 'context:read', iat: now(), exp: now() + 600 }));
      expect((await grpcCall(client, 'GetCustomerContext', req, valid)).code).toBe(grpc.status.OK);
    } finally {
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    }
  });
});

describe('a recent sign-in for export and erasure', () => {
  it('refuses the customer’s own token without a recent auth_time (401, step-up); ops are not asked', async () => {
    const customer = await createCustomer(h.graph, {});
    const stale = await h.token('self', customer.id, { authTime: now() - 3600 });
    const none = await h.token('self', customer.id, { authTime: null });
    for (const token of [stale, none]) {
      for (const [method, path] of [
        ['GET', `/api/v1/customers/${customer.id}/export`],
        ['DELETE', `/api/v1/customers/${customer.id}`],
      ] as const) {
        const res = await send(h.app, method, path, { token });
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.json).toMatchObject({ type: '/problems/fresh-sign-in-required' });
        expect(res.json.detail).toMatch(/fresh sign-in is needed/);
        expect(res.headers.get('www-authenticate')).toMatch(
          /^Bearer error="insufficient_user_authentication".*max_age=300$/,
        );
      }
      // Reading the profile needs no fresh sign-in.
      expect((await send(h.app, 'GET', `/api/v1/customers/${customer.id}/profile`, { token })).status).toBe(200);
    }
    // Nothing was started or written.
    await expect(h.client.workflow.getHandle(erasureWorkflowId(customer.id)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    expect((await listCustomerEvents(h.graph, customer.id, { limit: 100 })).map((e) => e.type)).not.toContain(
      'CustomerErased',
    );

    const fresh = await h.token('self', customer.id, { authTime: now() - 10 });
    expect((await send(h.app, 'GET', `/api/v1/customers/${customer.id}/export`, { token: fresh })).status).toBe(200);
    const ops = await h.token('ops', undefined, { authTime: null });
    expect((await send(h.app, 'GET', `/api/v1/customers/${customer.id}/export`, { token: ops })).status).toBe(200);
    const erased = await send(h.app, 'DELETE', `/api/v1/customers/${customer.id}`, { token: fresh });
    expect(erased.status).toBe(202);
    await h.client.workflow.getHandle(erasureWorkflowId(customer.id)).result();
  });
});

describe('production', () => {
  it('refuses to start the api without PERSONA_JWT_ISSUER and PERSONA_JWT_AUDIENCE, naming both', async () => {
    const api = startProcess('api/main.ts', {
      NODE_ENV: 'production',
      LOG_LEVEL: 'silent',
      PERSONA_TOKEN_KEYS: `token-1:${Buffer.alloc(32, 7).toString('base64')}`,
      PERSONA_JWT_SECRET: `test-${randomUUID()}-${randomUUID()}`,
      PERSONA_HTTP_PORT: String(await freePort()),
      PERSONA_GRPC_PORT: String(await freePort()),
    });
    try {
      const code = await Promise.race([
        api.exited,
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), 60_000)),
      ]);
      expect(code, api.output()).not.toBe('still running');
      expect(code).not.toBe(0);
    } finally {
      if (api.child.exitCode === null) api.child.kill();
    }
    expect(api.output()).toMatch(/PERSONA_JWT_ISSUER: required in production/);
    expect(api.output()).toMatch(/PERSONA_JWT_AUDIENCE: required in production/);
  });
});
