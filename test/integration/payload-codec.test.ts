/**
 * Personal data in Temporal is ciphertext, readable by ops through the codec server, and gone
 * with the customer: the api and a real worker with the payload codec, the real Temporal and
 * Neo4j. The histories are read straight from Temporal's service, without any codec.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { serve } from '@hono/node-server';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../config/env';
import { SESSION_COOKIE } from '../../api/console/session';
import { KeyRing } from '../../config/keyRing';
import { graphHistoryKeys } from '../../graph/historyKeys';
import { stackPaths } from '../../stack/install';
import type { ErasureOutcome } from '../../temporal/erasure';
import { PersonaPayloadCodec } from '../../temporal/payloadCodec';
import { recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { startHarness, type Harness } from '../support/api';
import { onboardingBody, onboardThroughApi } from '../support/builders';
import { cardInput, uniqueEmail } from '../support/graph';
import { paymentId } from '../support/recovery';
import { until } from '../support/wait';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

interface Person {
  email: string;
  phone: string;
  fingerprint: string;
  ip: string;
  token: string;
}

const person = (): Person => ({
  email: uniqueEmail(),
  phone: `+1415555${String(Math.floor(Math.random() * 10_000)).padStart(4, '0')}`,
  fingerprint: `fp-${randomUUID()}`,
  ip: `198.51.100.${Math.floor(Math.random() * 250) + 1}`,
  token: `tok_${randomUUID()}`,
});

async function onboard(p: Person): Promise<{ customerId: string; workflowId: string }> {
  const res = await onboardThroughApi<{ customer_id: string; workflow_id: string }>(
    h.app,
    await h.token('onboarding:write'),
    onboardingBody({
      payment_method: cardInput({ token: p.token, expiry_year: 2031 }),
      device: { fingerprint: p.fingerprint, ip: p.ip, user_agent: 'Safari' },
      digital_identifiers: [
        { type: 'email', value: p.email, is_verified: true },
        { type: 'phone_number', value: p.phone, is_verified: false },
      ],
    }),
  );
  expect([200, 201]).toContain(res.status);
  const body = res.json;
  // Wait for the rest of it (Chimera's request) so the whole history is there.
  await h.client.workflow.getHandle(body.workflow_id).result();
  return { customerId: body.customer_id, workflowId: body.workflow_id };
}

/** The history as Temporal stores it: no codec on this read. */
async function rawHistory(workflowId: string): Promise<proto.temporal.api.history.v1.IHistoryEvent[]> {
  const res = await h.client.connection.workflowService.getWorkflowExecutionHistory({
    namespace: h.client.options.namespace,
    execution: { workflowId },
  });
  return res.history?.events ?? [];
}

const bytesOf = (events: proto.temporal.api.history.v1.IHistoryEvent[]): Buffer =>
  Buffer.from(proto.temporal.api.history.v1.History.encode({ events }).finish());

const startInput = (events: proto.temporal.api.history.v1.IHistoryEvent[]) =>
  events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];

const toJson = (p: proto.temporal.api.common.v1.IPayload) => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

async function decodeThroughServer(
  payloads: proto.temporal.api.common.v1.IPayload[],
  token: string | null,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const res = await h.app.request('/codec/decode', {
    method: 'POST',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      'content-type': 'application/json',
      'x-namespace': 'default',
      ...headers,
    },
    body: JSON.stringify({ payloads: payloads.map(toJson) }),
  });
  const body = await res.text();
  if (res.status !== 200) return { status: res.status, text: body };
  // What the CLI would print: each payload's data, decoded.
  const decoded = (JSON.parse(body) as { payloads: { data: string }[] }).payloads;
  return { status: 200, text: decoded.map((p) => Buffer.from(p.data, 'base64').toString('utf8')).join('\n') };
}

describe('the payload codec end to end', () => {
  it(
    'keeps an onboarding’s personal data out of Temporal, shows it to ops through the codec server, ' +
      'and shreds it with the customer while another customer’s stays readable',
    async () => {
      const ada = person();
      const grace = person();
      const a = await onboard(ada);
      const g = await onboard(grace);

      // Straight from Temporal: none of it, anywhere in the history (inputs, results, summaries).
      const history = await rawHistory(a.workflowId);
      expect(history.length).toBeGreaterThan(5);
      const raw = bytesOf(history).toString('latin1');
      for (const value of Object.values(ada)) expect(raw).not.toContain(value);
      expect(startInput(history).length).toBe(1);
      expect(Buffer.from(startInput(history)[0]?.metadata?.encoding ?? []).toString()).toBe('binary/encrypted');
      // The onboarding's key belongs to the customer now.
      const keys = await h.graph.query<{ id: string }>(
        'MATCH (:Customer {id: $id})-[:HAS_HISTORY_KEY]->(k:HistoryKey) RETURN k.id AS id',
        { id: a.customerId },
      );
      expect(keys.map((k) => k.id)).toEqual([a.workflowId]);

      // Ops read it through the codec server; a customer's token, or none, reads nothing.
      const asOps = await decodeThroughServer(startInput(history), await h.token('ops', 'ops-alice'));
      expect(asOps.status).toBe(200);
      expect(asOps.text).toContain(ada.email);
      expect(asOps.text).toContain(ada.fingerprint);
      expect((await decodeThroughServer(startInput(history), await h.token('self', a.customerId))).status).toBe(403);
      expect((await decodeThroughServer(startInput(history), await h.token('context:read'))).status).toBe(403);
      expect((await decodeThroughServer(startInput(history), null)).status).toBe(401);

      // A recovery of Ada's dunning: its key is made and linked when it starts.
      const [card] = await h.graph.query<{ id: string }>(
        'MATCH (:Customer {id: $id})-[:HAS_PAYMENT_METHOD]->(p) RETURN p.id AS id',
        { id: a.customerId },
      );
      const payment = paymentId();
      const reported = await h.app.request('/api/v1/payment-failures', {
        method: 'POST',
        headers: { authorization: `Bearer ${await h.token('payments:report')}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          payment_id: payment,
          customer_id: a.customerId,
          payment_method_id: card?.id,
          amount: 999,
          currency: 'EUR',
          decline_code: 'insufficient_funds',
        }),
      });
      expect(reported.status).toBe(202);
      const recovery = h.client.workflow.getHandle(recoveryWorkflowId(payment));
      await until(async () =>
        ['dunning', 'failed'].includes((await recovery.query<RecoveryStatus>('recoveryStatus')).state),
      );
      const recoveryHistory = await rawHistory(recoveryWorkflowId(payment));
      expect(bytesOf(recoveryHistory).toString('latin1')).not.toContain('insufficient_funds');

      // Erasure stops the recovery, waits for it to close, and destroys both keys.
      const erase = await h.app.request(`/api/v1/customers/${a.customerId}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${await h.token('self', a.customerId)}` },
      });
      expect(erase.status).toBe(202);
      const outcome = (await h.client.workflow.getHandle(`erasure-${a.customerId}`).result()) as ErasureOutcome;
      expect(outcome).toMatchObject({ erased: true, deleted: { history_keys: 2 } });
      expect((await recovery.describe()).status.name).toBe('COMPLETED');
      const status = await h.app.request(`/api/v1/customers/${a.customerId}/erasure`, {
        headers: { authorization: `Bearer ${await h.token('ops')}` },
      });
      expect(await status.json()).toMatchObject({ state: 'done', history_keys_destroyed: 2 });
      const [erased] = await h.graph.query<{ payload: string }>(
        "MATCH (e:Event {customer_id: $id, type: 'CustomerErased'}) RETURN e.payload AS payload",
        { id: a.customerId },
      );
      expect(JSON.parse(erased?.payload ?? '{}')).toMatchObject({ deleted: { history_keys: 2 } });

      // Now even ops read nothing of Ada's histories; Grace's still read.
      for (const workflowId of [a.workflowId, recoveryWorkflowId(payment)]) {
        const events = await rawHistory(workflowId);
        const afterErasure = await decodeThroughServer(
          events
            .flatMap((e) => e.workflowExecutionStartedEventAttributes?.input?.payloads ?? [])
            .concat(events.flatMap((e) => e.workflowExecutionSignaledEventAttributes?.input?.payloads ?? [])),
          await h.token('ops'),
        );
        expect(afterErasure.status).toBe(200);
        expect(afterErasure.text).not.toContain(ada.email);
        expect(afterErasure.text).not.toContain(ada.fingerprint);
        expect(afterErasure.text).not.toContain('insufficient_funds');
      }
      // Nor can a client with the codec read the results any more, and nothing makes the workflow a
      // new key: a destroyed key stays a tombstone, so later payloads cannot escape the erasure.
      await expect(h.client.workflow.getHandle(a.workflowId).result()).rejects.toThrow(/history key .* is gone/);
      await expect(
        h.deps.payloads.codec.encode([{ metadata: {}, data: Buffer.from('"late"') }], {
          type: 'workflow',
          namespace: 'default',
          workflowId: recoveryWorkflowId(payment),
        }),
      ).rejects.toThrow(/history key .* is gone/);
      expect(
        await h.graph.query<{ wrapped: string | null }>('MATCH (k:HistoryKey {id: $id}) RETURN k.wrapped AS wrapped', {
          id: a.workflowId,
        }),
      ).toEqual([{ wrapped: null }]);
      const graceReads = await decodeThroughServer(startInput(await rawHistory(g.workflowId)), await h.token('ops'));
      expect(graceReads.text).toContain(grace.email);

      // A rotation: a new active service key in front of the old one. Grace's history (its key
      // wrapped by the old one) still reads; new history keys are wrapped by the new one.
      const old = h.graph.config.payloadKeys;
      const rotated = new KeyRing([
        { id: 'rotated-1', key: randomBytes(32) },
        ...old.ids.map((id) => ({ id, key: old.get(id) as Buffer })),
      ]);
      const afterRotation = new PersonaPayloadCodec(rotated, graphHistoryKeys(h.graph, rotated));
      const [graceInput] = await afterRotation.decode(startInput(await rawHistory(g.workflowId)));
      expect(Buffer.from(graceInput?.data ?? []).toString()).toContain(grace.email);
      const fresh = `onboarding-rotation-${randomUUID()}`;
      await afterRotation.encode([{ metadata: {}, data: Buffer.from('"x"') }], {
        type: 'workflow',
        namespace: 'default',
        workflowId: fresh,
      });
      const [made] = await h.graph.query<{ by: string }>('MATCH (k:HistoryKey {id: $id}) RETURN k.wrapped_by AS by', {
        id: fresh,
      });
      expect(made?.by).toBe('rotated-1');
    },
  );

  it('refuses a workflow of an erased customer, or one whose id another customer holds, a key', async () => {
    const ada = person();
    const a = await onboard(ada);
    const erase = await h.app.request(`/api/v1/customers/${a.customerId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await h.token('ops')}`, 'persona-reason': 'test' },
    });
    expect(erase.status).toBe(202);
    await h.client.workflow.getHandle(`erasure-${a.customerId}`).result();
    await expect(h.deps.payloads.provision(`fraud-outcome-${randomUUID()}`, a.customerId)).rejects.toThrow(/is erased/);
    // A workflow id is the caller's (a payment or outcome id): another customer's workflow keeps its
    // key, so that erasing this one never reaches it.
    const other = await onboard(person());
    const third = await onboard(person());
    const outcome = `fraud-outcome-${randomUUID()}`;
    await h.deps.payloads.provision(outcome, other.customerId);
    await h.deps.payloads.provision(outcome, other.customerId);
    await expect(h.deps.payloads.provision(outcome, third.customerId)).rejects.toThrow(/belongs to another customer/);
    expect(
      await h.graph.query('MATCH (:Customer {id: $id})-[:HAS_HISTORY_KEY]->(k) RETURN k', { id: a.customerId }),
    ).toEqual([]);
  });

  it('takes the console’s ops session cookie when no Authorization header is sent (as the Temporal UI)', async () => {
    const ada = person();
    const a = await onboard(ada);
    const input = startInput(await rawHistory(a.workflowId));
    // As the UI's browser sends it: the cookie, from the UI's origin.
    const uiOrigin = h.deps.payloads.corsOrigin;
    const session = (token: string, origin = uiOrigin) => ({ cookie: `__Host-${SESSION_COOKIE}=${token}`, origin });
    const ops = await h.token('ops', 'ops-ui');

    const asOps = await decodeThroughServer(input, null, session(ops));
    expect(asOps.status).toBe(200);
    expect(asOps.text).toContain(ada.email);
    // A customer's own session, a session of a token that opens nothing here, or none: nothing read.
    const asSelf = await decodeThroughServer(input, null, session(await h.token('self', a.customerId)));
    expect(asSelf).toMatchObject({ status: 403 });
    expect(asSelf.text).not.toContain(ada.email);
    expect((await decodeThroughServer(input, null, session(await h.token('customers:read')))).status).toBe(403);
    expect((await decodeThroughServer(input, null)).status).toBe(401);
    expect((await decodeThroughServer(input, null, session('not-a-jwt'))).status).toBe(401);
    // Only the console's own (__Host-) cookie counts, and a header that is sent wins over it.
    expect((await decodeThroughServer(input, null, { cookie: `${SESSION_COOKIE}=${ops}` })).status).toBe(401);
    // Another page of the same site, or no origin at all, cannot spend the ops session on the codec.
    expect((await decodeThroughServer(input, null, session(ops, 'http://localhost:9999'))).status).toBe(401);
    expect((await decodeThroughServer(input, null, { cookie: `__Host-${SESSION_COOKIE}=${ops}` })).status).toBe(401);
    expect((await decodeThroughServer(input, 'not-a-jwt', session(ops))).status).toBe(401);
    expect((await decodeThroughServer(input, await h.token('self', a.customerId), session(ops))).status).toBe(403);

    // Encoding with the session too: what comes back decodes to what went in.
    const plain = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: btoa('"hello"') };
    const encoded = await h.app.request('/codec/encode', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...session(ops) },
      body: JSON.stringify({ payloads: [plain] }),
    });
    expect(encoded.status).toBe(200);
    const [sealed] = ((await encoded.json()) as { payloads: { data: string }[] }).payloads;
    expect(Buffer.from(sealed?.data ?? '', 'base64').toString('latin1')).not.toContain('hello');

    // What the UI's browser sees: its origin may read the answer, with credentials.
    const origin = h.deps.payloads.corsOrigin;
    const preflight = await h.app.request('/codec/decode', {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');
    const answer = await h.app.request('/codec/decode', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...session(ops, origin) },
      body: JSON.stringify({ payloads: input.map(toJson) }),
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('access-control-allow-origin')).toBe(origin);
    expect(answer.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('serves the Temporal CLI: `workflow show --codec-endpoint` prints the history readable for ops', async () => {
    const ada = person();
    const a = await onboard(ada);
    const server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const settings = loadSettings();
      const show = async (...extra: string[]) =>
        (
          await promisify(execFile)(
            stackPaths(settings.PERSONA_STACK_DIR).temporalBin,
            ['workflow', 'show', '--workflow-id', a.workflowId, '--address', settings.TEMPORAL_ADDRESS, ...extra],
            { maxBuffer: 16 * 1024 * 1024 },
          )
        ).stdout;
      // In JSON every payload's data is base64: what it says is the decoded bytes of each.
      const said = (json: string) =>
        [...json.matchAll(/"data": "([^"]*)"/g)]
          .map((m) => Buffer.from(m[1] ?? '', 'base64').toString('latin1'))
          .join('\n');
      const plain = await show('--output', 'json');
      expect(said(plain)).not.toContain(ada.email);
      expect(plain).toContain(Buffer.from('binary/encrypted').toString('base64'));
      const readable = await show(
        '--output',
        'json',
        '--codec-endpoint',
        `http://127.0.0.1:${port}/codec`,
        '--codec-auth',
        `Bearer ${await h.token('ops', 'ops-cli')}`,
      );
      expect(said(readable)).toContain(ada.email);
      expect(said(readable)).toContain('Onboard a New customer with');
      expect(readable).not.toContain(Buffer.from('binary/encrypted').toString('base64'));
    } finally {
      server.close();
    }
  });
});
