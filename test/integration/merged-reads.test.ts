/**
 * Reads follow a merge (issue 24): once a merge has committed, the merged customer's id — a
 * tombstone with `merged_into` (graph/identityMerge.ts) — answers its survivor's context, checkout
 * options, profile, wallet and history with `merged_into` (REST and gRPC), through the api's read
 * cache, which serves neither id's pre-merge answer; a write to it is refused (409 naming the
 * survivor) and writes nothing; the agents' reports naming it land on the survivor; the merged
 * record's own token reaches only the tombstone (issue 43: its holder may not be the survivor's
 * owner), never the survivor's data, export or erasure; an unmerge gives each id its own data back.
 */
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { customerAccess } from '../../api/rest/common';
import { getProfile } from '../../api/services/customers';
import { createGrpcServer, listen } from '../../api/grpc/server';
import { addPaymentMethod, getPaymentMethodsByCustomer, listCustomerEvents, updateCustomer } from '../../graph';
import { mergeCustomers } from '../../graph/identityMerge';
import { unmergeCustomers } from '../../graph/identityUnmerge';
import type { PersonaAgentClient } from '../../proto/generated/persona/v1/PersonaAgent';
import { startHarness, type Harness } from '../support/api';
import { onboardInGraph } from '../support/builders';
import { send } from '../support/http';
import { csrfOf, getPage, postForm, signIn as signInToConsole } from '../support/console';
import { cardInput, openTestGraph, uniqueEmail, type TestGraph } from '../support/graph';
import { bearer, call, personaClient } from '../support/grpc';
import { until } from '../support/wait';

let h: Harness;
let server: grpc.Server;
let client: PersonaAgentClient;
/** A second graph handle, as another process (the worker) has: its commits reach the api only by the tail. */
let other: TestGraph;
/** An agent with every scope these tests use (not ops: ops passes every rule). */
let agent: string;
let ops: string;
const created: string[] = [];

beforeAll(async () => {
  h = await startHarness();
  // The gRPC server on the harness's own dependencies: one read cache behind REST and gRPC.
  server = createGrpcServer(h.deps).server;
  client = personaClient(`127.0.0.1:${await listen(server, '127.0.0.1', 0)}`);
  other = openTestGraph();
  agent = await h.token(
    'context:read customers:read customers:write payments:report fraud:report interactions:write devices:write',
  );
  ops = await h.token('ops');
});

afterAll(async () => {
  await h?.graph.query(
    `MATCH (c:Customer) WHERE c.id IN $ids
     OPTIONAL MATCH (c)-->(x)
     WHERE NOT EXISTS { MATCH (x)<--(o:Customer) WHERE NOT o.id IN $ids }
     WITH collect(DISTINCT c) + collect(DISTINCT x) AS nodes
     FOREACH (n IN nodes | DETACH DELETE n)
     WITH 1 AS done
     MATCH (e:Event) WHERE e.customer_id IN $ids
     DETACH DELETE e`,
    { ids: created },
  );
  client?.close();
  await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
  await other?.close();
  await h?.close();
});

interface Customer {
  id: string;
  email: string;
  deviceId: string;
  methodId: string;
}

/** A customer with a verified email, one card (the default) and one trusted device. */
async function customer(segment: string, ltv: string): Promise<Customer> {
  const email = uniqueEmail('merge');
  const { customerId: id, deviceId } = await onboardInGraph(
    h.graph,
    {
      customer: { segment, ltv },
      payment_method: cardInput(),
      device: { fingerprint: `fp-${randomUUID()}` },
      digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
    },
    { trust: 0.9 },
  );
  created.push(id);
  const [method] = await getPaymentMethodsByCustomer(h.graph, id);
  return { id, email, deviceId, methodId: method?.id as string };
}

/** Merges on the harness's graph handle (its commits reach the api's cache as its own writes do); the merge's id. */
async function merge(survivor: Customer, merged: Customer): Promise<string> {
  const mergeId = `test-merge-${randomUUID()}`;
  const result = await mergeCustomers(h.graph, {
    merge_id: mergeId,
    survivor_id: survivor.id,
    merged_id: merged.id,
    decided_by: 'ops',
    requested_by: null,
    reason: 'test',
  });
  expect(result.outcome).toBe('merged');
  return mergeId;
}

type Json = Record<string, unknown> & { data?: Record<string, unknown>[] };

/** A call that always says its body is JSON: its status, its JSON ({} when empty) and its content type. */
async function rest(method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await send<Json>(h.app, method, path, {
    token,
    body,
    headers: { 'content-type': 'application/json', ...headers },
    empty: {},
  });
  return { status: res.status, json: res.json, type: res.headers.get('content-type') };
}

const contextPath = (id: string) => `/api/v1/customers/${id}/context`;
const checkoutPath = (id: string, deviceId?: string) =>
  `/api/v1/customers/${id}/checkout-options${deviceId ? `?deviceId=${deviceId}` : ''}`;
const sorted = (ids: unknown) => [...(ids as string[])].sort();
const idsOf = (items: unknown) => sorted((items as { id: string }[]).map((i) => i.id));

/** Reads until an answer comes from the api's read cache (a hit counted): the copy a test then expects gone. */
async function cached(path: string) {
  await until(async () => {
    await rest('GET', path, agent);
    const before = h.deps.readCache.stats.hits;
    await rest('GET', path, agent);
    return h.deps.readCache.stats.hits > before;
  });
}

describe('after a merge, the merged id', () => {
  it('answers the survivor’s context and checkout with merged_into (REST, gRPC); no stale copy', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    for (const path of [contextPath(s.id), contextPath(m.id)]) await cached(path);
    const before = await rest('GET', contextPath(m.id), agent);
    expect(before.json).toMatchObject({ customer_id: m.id, active_payment_methods: [m.methodId] });
    expect(before.json).not.toHaveProperty('merged_into');

    await merge(s, m);

    // Both ids were cached before the merge: the next reads answer what the merge left.
    const merged = await rest('GET', contextPath(m.id), agent);
    expect(merged.status).toBe(200);
    expect(merged.json).toMatchObject({
      customer_id: s.id,
      merged_into: s.id,
      status: 'active',
      segment: 'Subscriber',
    });
    expect(sorted(merged.json.active_payment_methods)).toEqual(sorted([s.methodId, m.methodId]));
    expect(sorted((merged.json.trusted_devices as { device_id: string }[]).map((d) => d.device_id))).toEqual(
      sorted([s.deviceId, m.deviceId]),
    );
    const own = await rest('GET', contextPath(s.id), agent);
    const { merged_into: _survivor, ...survivorsOwn } = merged.json;
    expect(own.json).toEqual(survivorsOwn);

    const checkout = await rest('GET', checkoutPath(m.id, m.deviceId), agent);
    expect(checkout.json).toMatchObject({ merged_into: s.id, trusted_device: true });
    expect(idsOf(checkout.json.data)).toEqual(sorted([s.methodId, m.methodId]));
    const ownCheckout = await rest('GET', checkoutPath(s.id), agent);
    expect(ownCheckout.json).not.toHaveProperty('merged_into');
    expect(idsOf(ownCheckout.json.data)).toEqual(sorted([s.methodId, m.methodId]));

    const md = bearer(agent);
    const grpcContext = await call(client, 'GetCustomerContext', { customer_id: m.id }, md);
    expect(grpcContext.code).toBe(grpcStatus.OK);
    expect(grpcContext.res).toMatchObject({ customer_id: s.id, merged_into: s.id, ltv: own.json.ltv });
    const grpcCheckout = await call(client, 'GetCheckoutOptions', { customer_id: m.id }, md);
    expect(grpcCheckout.res.merged_into).toBe(s.id);
    expect(idsOf(grpcCheckout.res.data)).toEqual(sorted([s.methodId, m.methodId]));
    expect((await call(client, 'GetCustomerContext', { customer_id: s.id }, md)).res.merged_into).toBe('');

    // Held now as the survivor's entry: the survivor's later writes reach the merged id's answer,
    // applied in place (a profile change) or by dropping the entry (a card made inactive).
    await cached(contextPath(m.id));
    await updateCustomer(h.graph, s.id, { segment: 'VIP' });
    expect((await rest('GET', contextPath(m.id), agent)).json).toMatchObject({
      segment: 'VIP',
      is_vip: true,
      merged_into: s.id,
    });
    const inactivated = await rest('POST', `/api/v1/payment-methods/${m.methodId}/inactivate`, agent, {
      reason: 'test',
    });
    expect(inactivated.json.customer_id).toBe(s.id);
    expect((await rest('GET', contextPath(m.id), agent)).json.active_payment_methods).toEqual([s.methodId]);
    expect((await call(client, 'GetCheckoutOptions', { customer_id: m.id }, md)).res.data).toHaveLength(1);
  });

  it('answers the survivor’s profile, wallet and history with merged_into', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    await merge(s, m);

    const profile = await rest('GET', `/api/v1/customers/${m.id}/profile`, agent);
    expect(profile.status).toBe(200);
    expect(profile.json).toMatchObject({ customer_id: s.id, merged_into: s.id, status: 'active' });
    expect(sorted((profile.json.digital_identifiers as { value: string }[]).map((i) => i.value))).toEqual(
      sorted([s.email, m.email]),
    );
    const ownProfile = await rest('GET', `/api/v1/customers/${s.id}/profile`, agent);
    const { merged_into: _survivor, ...survivorsOwn } = profile.json;
    expect(ownProfile.json).toEqual(survivorsOwn);

    const wallet = await rest('GET', `/api/v1/customers/${m.id}/payment-methods`, agent);
    expect(wallet.json.merged_into).toBe(s.id);
    expect(idsOf(wallet.json.data)).toEqual(sorted([s.methodId, m.methodId]));
    const ownWallet = await rest('GET', `/api/v1/customers/${s.id}/payment-methods`, agent);
    expect(ownWallet.json).not.toHaveProperty('merged_into');
    expect(idsOf(ownWallet.json.data)).toEqual(idsOf(wallet.json.data));

    const history = await rest('GET', `/api/v1/customers/${m.id}/events`, ops);
    expect(history.json.merged_into).toBe(s.id);
    const ownHistory = await rest('GET', `/api/v1/customers/${s.id}/events`, ops);
    expect(ownHistory.json).not.toHaveProperty('merged_into');
    expect(history.json.data).toEqual(ownHistory.json.data);
    expect(history.json.data?.[0]).toMatchObject({ type: 'CustomersMerged' });
  });

  it('refuses a write with 409 naming the survivor, and writes nothing', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    await merge(s, m);
    const eventsBefore = (await listCustomerEvents(h.graph, m.id)).length;
    const survivorEventsBefore = (await listCustomerEvents(h.graph, s.id)).length;
    const detail = `customer ${m.id} was merged into ${s.id}: use ${s.id}`;
    const refused = { status: 409, json: { status: 409, detail }, type: expect.stringMatching(/problem\+json/) };

    expect(await rest('PUT', `/api/v1/customers/${m.id}/profile`, agent, { segment: 'Gold' })).toMatchObject(refused);
    expect(await rest('POST', `/api/v1/customers/${m.id}/payment-methods`, agent, cardInput())).toMatchObject(refused);
    expect(
      await rest('POST', `/api/v1/customers/${m.id}/payment-methods`, ops, cardInput(), { 'persona-reason': 'test' }),
    ).toMatchObject(refused);
    // (The merged record's own token is refused without the survivor's id: the last describe.)
    expect(await rest('DELETE', `/api/v1/customers/${m.id}/payment-methods/${m.methodId}`, agent)).toMatchObject(
      refused,
    );

    expect(await listCustomerEvents(h.graph, m.id)).toHaveLength(eventsBefore);
    expect(await listCustomerEvents(h.graph, s.id)).toHaveLength(survivorEventsBefore);
    const [tombstone] = await h.graph.query<{ segment: string; methods: number }>(
      'MATCH (c:Customer {id: $id}) RETURN c.segment AS segment, COUNT { (c)-[:HAS_PAYMENT_METHOD]->() } AS methods',
      { id: m.id },
    );
    expect(tombstone).toEqual({ segment: 'New', methods: 0 });
    expect(idsOf(await getPaymentMethodsByCustomer(h.graph, s.id))).toEqual(sorted([s.methodId, m.methodId]));
  });

  it('takes reports naming it to the survivor: interactions, payment failures, fraud outcomes', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    await merge(s, m);
    const fingerprint = `fp-${randomUUID()}`;
    const occurred_at = new Date().toISOString();
    const batch = {
      data: [
        { id: `login-${randomUUID()}`, type: 'login', customer_id: m.id, occurred_at, device: { fingerprint } },
        {
          id: `pay-${randomUUID()}`,
          type: 'payment',
          customer_id: m.id,
          occurred_at,
          payment_method_id: m.methodId,
          amount: 1000,
          currency: 'USD',
          outcome: 'succeeded',
        },
      ],
    };
    const recorded = await rest('POST', '/api/v1/interactions', agent, batch);
    expect(recorded.json.data).toEqual([
      expect.objectContaining({ result: 'recorded' }),
      expect.objectContaining({
        result: 'recorded',
        consistency_token: expect.stringMatching(new RegExp(`^c:${s.id}:\\d+$`)),
      }),
    ]);
    const token = recorded.json.data?.[1]?.consistency_token as string;
    expect(
      (await rest('GET', contextPath(m.id), agent, undefined, { 'x-persona-consistency': token })).json,
    ).toMatchObject({ customer_id: s.id, merged_into: s.id });
    const payments = await h.graph.query<{ id: string; succeeded: number; used: boolean }>(
      `MATCH (c:Customer) WHERE c.id IN [$s, $m]
       RETURN c.id AS id, coalesce(c.succeeded_payments, 0) AS succeeded,
              EXISTS {
                (c)-[r:HAS_PAYMENT_METHOD]->(:PaymentMethod {id: $method}) WHERE r.last_used IS NOT NULL
              } AS used
       ORDER BY c.id = $s DESC`,
      { s: s.id, m: m.id, method: m.methodId },
    );
    expect(payments).toEqual([
      { id: s.id, succeeded: 1, used: true },
      { id: m.id, succeeded: 0, used: false },
    ]);
    const logins = await h.graph.query<{ owner: string }>(
      'MATCH (c:Customer)-[:LOGGED_IN_FROM]->(:Device {fingerprint: $fingerprint}) RETURN c.id AS owner',
      { fingerprint },
    );
    expect(logins).toEqual([{ owner: s.id }]);
    // Sent again (as after a 503): the same items, known by the id and the customer the sender named.
    expect((await rest('POST', '/api/v1/interactions', agent, batch)).json.data).toEqual([
      expect.objectContaining({ result: 'duplicate' }),
      expect.objectContaining({ result: 'duplicate' }),
    ]);

    const failure = await rest('POST', '/api/v1/payment-failures', agent, {
      payment_id: `pay-${randomUUID()}`,
      customer_id: m.id,
      payment_method_id: m.methodId,
      amount: 1000,
      currency: 'USD',
      decline_code: 'insufficient_funds',
    });
    expect(failure).toMatchObject({ status: 202, json: { merged_into: s.id } });
    const recovery = h.client.workflow.getHandle(failure.json.workflow_id as string);
    const searchAttributes = (await recovery.describe()).searchAttributes as Record<string, unknown>;
    expect(searchAttributes.PersonaCustomerId).toEqual([s.id]);
    await recovery.terminate('test done');

    const outcome = await rest('POST', '/api/v1/fraud-outcomes', agent, {
      outcome_id: `outcome-${randomUUID()}`,
      customer_id: m.id,
      outcome: 'challenge_passed',
      device_id: m.deviceId,
    });
    expect(outcome).toMatchObject({ status: 202, json: { merged_into: s.id } });
    const fraud = h.client.workflow.getHandle(outcome.json.workflow_id as string);
    expect(((await fraud.describe()).searchAttributes as Record<string, unknown>).PersonaCustomerId).toEqual([s.id]);
  });

  it('follows for erasure: the survivor’s erasure, named by the merged id', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    await merge(s, m);
    const erasure = await rest('DELETE', `/api/v1/customers/${m.id}`, ops, undefined, { 'persona-reason': 'test' });
    expect(erasure).toMatchObject({ status: 202, json: { workflow_id: `erasure-${s.id}`, merged_into: s.id } });
    const status = await rest('GET', `/api/v1/customers/${m.id}/erasure`, ops);
    expect(status).toMatchObject({ status: 200, json: { workflow_id: `erasure-${s.id}` } });
  });
});

describe('a customer’s own token after a merge', () => {
  it('reaches only the tombstone: none of the survivor’s data by REST, gRPC or the console', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    // A fresh sign-in (a `self` token's default): the refusal of export and erasure must be the merge's.
    const selfM = await h.token('self', m.id);
    const selfS = await h.token('self', s.id);
    const profileOf = (id: string, token: string) => rest('GET', `/api/v1/customers/${id}/profile`, token);

    // Before the merge the merged id's token reads its own record, and only that.
    expect((await profileOf(m.id, selfM)).json).toMatchObject({ customer_id: m.id });
    expect((await profileOf(m.id, selfM)).json).not.toHaveProperty('merged_into');
    expect((await profileOf(s.id, selfM)).status).toBe(403);
    const consoleM = await signInToConsole(h.app, selfM);
    // An entry of the record's own history from before the merge (its contest form named it).
    const [ownEntry] = await listCustomerEvents(h.graph, m.id);

    await merge(s, m);
    const eventsBefore = (await listCustomerEvents(h.graph, s.id)).length;

    // Every route a customer's own token may use, asked with the merged id: 403 merged-record,
    // naming no survivor, and nothing of the survivor's in the answer.
    const routes: [string, string][] = [
      ['GET', `/api/v1/customers/${m.id}/profile`],
      ['GET', `/api/v1/customers/${m.id}/payment-methods`],
      ['GET', `/api/v1/customers/${m.id}/events`],
      ['GET', checkoutPath(m.id)],
      ['GET', `/api/v1/customers/${m.id}/export`],
      ['DELETE', `/api/v1/customers/${m.id}`],
      ['POST', `/api/v1/customers/${m.id}/payment-methods`],
      ['DELETE', `/api/v1/customers/${m.id}/payment-methods/${m.methodId}`],
    ];
    for (const [method, path] of routes) {
      const body = method === 'POST' ? cardInput() : undefined;
      const res = await rest(method, path, selfM, body);
      expect([res.status, res.json.type], `${method} ${path}`).toEqual([403, expect.stringMatching(/merged-record$/)]);
      expect(JSON.stringify(res.json), `${method} ${path}`).not.toContain(s.id);
    }
    // A consistency token guessed for the survivor, or made up, gets the same refusal: no 409 tells
    // a guessed survivor from another customer.
    for (const token of [`c:${s.id}:0`, `c:${m.id}:999999`]) {
      const res = await rest('GET', checkoutPath(m.id), selfM, undefined, { 'x-persona-consistency': token });
      expect([res.status, res.json.type], token).toEqual([403, expect.stringMatching(/merged-record$/)]);
    }
    const grpcCheckout = await call(client, 'GetCheckoutOptions', { customer_id: m.id }, bearer(selfM));
    expect(grpcCheckout.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(String(grpcCheckout.details)).not.toContain(s.id);
    // The console: a page that says so, no survivor's data; no export either.
    for (const path of ['/console/me', '/console/me/export']) {
      const page = await getPage(h.app, path, consoleM);
      const html = await page.text();
      expect([page.status, html.includes('merged into another customer record')], path).toEqual([403, true]);
      expect(html, path).not.toContain(s.id);
      expect(html, path).not.toContain(s.email);
    }
    // A console action on an entry of its own old history: refused without the survivor's id.
    const merged = await getPage(h.app, '/console/me', consoleM);
    const contest = await postForm(h.app, '/console/actions/contest', consoleM, {
      _csrf: csrfOf(await merged.text()),
      event_id: ownEntry?.id as string,
      words: 'not me',
      request_id: randomUUID(),
      _confirmed: 'yes',
    });
    const contestPage = await contest.text();
    expect([contest.status, contestPage.includes('merged into another customer record')]).toEqual([403, true]);
    expect(contestPage).not.toContain(s.id);
    // Nor may it propose or follow merges as that record: the refusal names no survivor either.
    const other = await customer('New', '1');
    const proposal = await rest('POST', '/api/v1/identity-merges', selfM, { survivor_id: m.id, merged_id: other.id });
    expect([proposal.status, proposal.json.type]).toEqual([403, expect.stringMatching(/merged-record$/)]);
    expect(JSON.stringify(proposal.json)).not.toContain(s.id);
    // Nothing was written, no erasure started.
    expect(await listCustomerEvents(h.graph, s.id)).toHaveLength(eventsBefore);
    await expect(h.client.workflow.getHandle(`erasure-${s.id}`).describe()).rejects.toThrow(/not found/i);

    // Nor does its checkout on the survivor's trusted device tell Chimera anything: refused before.
    const started = vi.spyOn(h.deps.temporal.client.workflow, 'start');
    try {
      for (const token of [selfM]) {
        expect((await rest('GET', checkoutPath(m.id, s.deviceId), token)).status).toBe(403);
        expect(
          (await call(client, 'GetCheckoutOptions', { customer_id: m.id, device_id: s.deviceId }, bearer(token))).code,
        ).toBe(grpcStatus.PERMISSION_DENIED);
      }
      expect(started).not.toHaveBeenCalled();
      // The survivor's agent asking is told, and reports (the spy sees the start).
      expect((await rest('GET', checkoutPath(s.id, s.deviceId), agent)).json.trusted_device).toBe(true);
      expect(started).toHaveBeenCalled();
    } finally {
      started.mockRestore();
    }

    // The survivor's own token reads its own data; the ids never cross.
    expect((await profileOf(s.id, selfS)).json).toMatchObject({ customer_id: s.id });
    expect((await profileOf(m.id, selfS)).status).toBe(403);
    expect((await profileOf(s.id, selfM)).status).toBe(403);
    expect((await call(client, 'GetCheckoutOptions', { customer_id: s.id }, bearer(selfM))).code).toBe(
      grpcStatus.PERMISSION_DENIED,
    );
    // Agents and ops that name the merged id still follow it.
    expect((await profileOf(m.id, agent)).json).toMatchObject({ customer_id: s.id, merged_into: s.id });
  });

  it('refuses a write whose merge committed after the route’s check, naming no survivor', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    const selfM = await h.token('self', m.id);
    const app = new Hono();
    app.post('/race/:id', customerAccess(h.deps, { scopes: ['customers:write'], self: true }), async (c) => {
      await merge(s, m);
      // The graph refuses under the customer's lock (CustomerMergedError naming the survivor).
      await addPaymentMethod(h.graph, c.req.param('id'), cardInput());
      return c.json({}, 201);
    });
    const res = await app.request(`/race/${m.id}`, { method: 'POST', headers: { authorization: `Bearer ${selfM}` } });
    const text = await res.text();
    expect([res.status, text.includes('merged-record')]).toEqual([403, true]);
    expect(text).not.toContain(s.id);
  });

  it('refuses an answer about a merged id when the merge committed after the route’s check', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    const selfM = await h.token('self', m.id);
    // A route behind the same guard whose read comes after a merge commits: the race, made certain.
    const app = new Hono();
    app.get('/race/:id', customerAccess(h.deps, { scopes: ['customers:read'], self: true }), async (c) => {
      await merge(s, m);
      return c.json(await getProfile(h.graph, c.req.param('id')));
    });
    const res = await app.request(`/race/${m.id}`, { headers: { authorization: `Bearer ${selfM}` } });
    const text = await res.text();
    expect([res.status, text.includes('merged-record')]).toEqual([403, true]);
    expect(text).not.toContain(s.id);
  });
});

describe('after an unmerge', () => {
  it('answers each id its own data again, the cached copies dropped by the events another process wrote', async () => {
    const s = await customer('Subscriber', '100');
    const m = await customer('New', '25');
    const mergeId = await merge(s, m);
    // Both ids held by the cache, the merged one as an alias of the survivor's entry.
    await cached(contextPath(m.id));
    await cached(contextPath(s.id));
    expect((await rest('GET', contextPath(m.id), agent)).json.merged_into).toBe(s.id);

    await unmergeCustomers(other, {
      merge_id: mergeId,
      survivor_id: s.id,
      merged_id: m.id,
      requested_by: null,
      reason: 'test',
    });

    await until(async () => (await rest('GET', contextPath(m.id), agent)).json.customer_id === m.id, 15_000);
    const mergedOwn = await rest('GET', contextPath(m.id), agent);
    expect(mergedOwn.json).toMatchObject({ customer_id: m.id, segment: 'New', active_payment_methods: [m.methodId] });
    expect(mergedOwn.json).not.toHaveProperty('merged_into');
    await until(
      async () => String((await rest('GET', contextPath(s.id), agent)).json.active_payment_methods) === s.methodId,
      15_000,
    );
    const profile = await rest('GET', `/api/v1/customers/${m.id}/profile`, agent);
    expect(profile.json).toMatchObject({ customer_id: m.id, digital_identifiers: [{ value: m.email }] });
    expect(profile.json).not.toHaveProperty('merged_into');
    expect((await call(client, 'GetCustomerContext', { customer_id: m.id }, bearer(agent))).res).toMatchObject({
      customer_id: m.id,
      merged_into: '',
    });
  });
});
