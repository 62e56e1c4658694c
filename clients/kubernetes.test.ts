/**
 * The Kubernetes API client against a fake API server (node:http): what it sends (the token, the
 * label selector, the delete's preconditions) and what it makes of the answers; and the worker
 * reaper over it, from the list to the deletes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DeploymentStatus } from '../temporal/workerDeployment';
import { BUILD_ID_ANNOTATION, reapWorkerBuilds, workerBuildOf } from '../temporal/workerReaper';
import {
  deleteDeployment,
  inClusterAccess,
  KubernetesError,
  listDeployments,
  type KubernetesAccess,
} from './kubernetes';

interface Seen {
  method: string;
  url: URL;
  authorization: string | undefined;
  body: string;
}
type Answer = { status: number; body?: unknown };

/** The fake API server: records each request, answers with what `answer` says. */
let server: Server;
let apiUrl: string;
const seen: Seen[] = [];
let answer: (req: Seen) => Answer = () => ({ status: 500 });

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://fake'),
        authorization: req.headers.authorization,
        body,
      };
      seen.push(s);
      const a = answer(s);
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  seen.length = 0;
});

const access = (): KubernetesAccess => ({ apiUrl, token: 'sa-token', namespace: 'persona' });
const DEPLOYMENTS = '/apis/apps/v1/namespaces/persona/deployments';
const item = (name: string, buildId: string, created = '2026-01-01T00:00:00Z') => ({
  metadata: {
    name,
    uid: `uid-${name}`,
    resourceVersion: '41',
    creationTimestamp: created,
    labels: { 'app.kubernetes.io/component': 'worker' },
    annotations: { [BUILD_ID_ANNOTATION]: buildId },
  },
});

describe('where the pod finds the API server (inClusterAccess)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'persona-sa-'));
  writeFileSync(path.join(dir, 'token'), 'the-token\n');
  writeFileSync(path.join(dir, 'namespace'), 'persona-prod\n');
  const files = {
    PERSONA_KUBERNETES_TOKEN_FILE: path.join(dir, 'token'),
    PERSONA_KUBERNETES_NAMESPACE_FILE: path.join(dir, 'namespace'),
  };

  it('reads the token and the namespace from the files named, and the address', () => {
    expect(inClusterAccess({ ...files, PERSONA_KUBERNETES_API_URL: 'https://api.example:6443/' })).toEqual({
      apiUrl: 'https://api.example:6443',
      token: 'the-token',
      namespace: 'persona-prod',
    });
  });

  it("defaults to the cluster's own address", () => {
    expect(inClusterAccess(files).apiUrl).toBe('https://kubernetes.default.svc');
  });
});

describe('listing Deployments (listDeployments)', () => {
  it('sends the token and the selector, and reads every page', async () => {
    answer = (req) =>
      req.url.searchParams.get('continue') === 'page-2'
        ? { status: 200, body: { metadata: {}, items: [item('b', '2')] } }
        : { status: 200, body: { metadata: { continue: 'page-2' }, items: [item('a', '1')] } };
    const found = await listDeployments(access(), 'app.kubernetes.io/component=worker,persona/worker-build');
    expect(found.map((d) => d.name)).toEqual(['a', 'b']);
    expect(found[0]).toEqual({
      name: 'a',
      uid: 'uid-a',
      resourceVersion: '41',
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: { 'app.kubernetes.io/component': 'worker' },
      annotations: { [BUILD_ID_ANNOTATION]: '1' },
    });
    expect(seen).toHaveLength(2);
    for (const s of seen) {
      expect([s.method, s.url.pathname, s.authorization]).toEqual(['GET', DEPLOYMENTS, 'Bearer sa-token']);
      expect(s.url.searchParams.get('labelSelector')).toBe('app.kubernetes.io/component=worker,persona/worker-build');
    }
  });

  it("fails with the API server's own message when refused", async () => {
    answer = () => ({ status: 403, body: { kind: 'Status', message: 'deployments.apps is forbidden' } });
    const err = await listDeployments(access(), 'x=y').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubernetesError);
    expect((err as KubernetesError).status).toBe(403);
    expect((err as Error).message).toContain('deployments.apps is forbidden');
  });
});

describe('deleting a Deployment (deleteDeployment)', () => {
  const target = { name: 'persona-worker-0-1-0-abc', uid: 'uid-1', resourceVersion: '41' };

  it('deletes only the Deployment as it was read (uid and resourceVersion), its pods after it', async () => {
    answer = () => ({ status: 200, body: { kind: 'Status', status: 'Success' } });
    expect(await deleteDeployment(access(), target)).toBe('deleted');
    expect(seen).toHaveLength(1);
    expect([seen[0]!.method, seen[0]!.url.pathname, seen[0]!.authorization]).toEqual([
      'DELETE',
      `${DEPLOYMENTS}/persona-worker-0-1-0-abc`,
      'Bearer sa-token',
    ]);
    expect(JSON.parse(seen[0]!.body)).toEqual({
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Background',
      preconditions: { uid: 'uid-1', resourceVersion: '41' },
    });
  });

  it('says gone for a 404 and changed for a failed precondition (409), and throws on anything else', async () => {
    answer = () => ({ status: 404 });
    expect(await deleteDeployment(access(), target)).toBe('gone');
    answer = () => ({ status: 409, body: { message: 'Precondition failed: UID in precondition: uid-1' } });
    expect(await deleteDeployment(access(), target)).toBe('changed');
    answer = () => ({ status: 403, body: { message: 'cannot delete' } });
    await expect(deleteDeployment(access(), target)).rejects.toThrow('403 cannot delete');
  });
});

describe('the worker reaper over the Kubernetes API', () => {
  it('deletes the drained build only, leaving the current, the draining and a young one', async () => {
    const old = new Date(Date.now() - 3 * 3_600_000).toISOString();
    const items = [
      item('persona-worker-current', 'current', old),
      item('persona-worker-drained', 'drained', old),
      item('persona-worker-draining', 'draining', old),
      item('persona-worker-young', 'young', new Date().toISOString()),
    ];
    answer = (req) => (req.method === 'GET' ? { status: 200, body: { items } } : { status: 200 });
    const versions = (['current', 'drained', 'draining', 'young'] as const).map((b) => ({
      buildId: b,
      status: b === 'young' ? ('drained' as const) : b,
      lastCurrentAt: null,
      createdAt: null,
    }));
    const status: DeploymentStatus = {
      deploymentName: 'persona',
      current: 'current',
      ramping: null,
      versions,
      routingSettled: true,
    };
    const lines: string[] = [];
    await reapWorkerBuilds(
      {
        list: async () => (await listDeployments(access(), 'persona/worker-build')).map(workerBuildOf),
        remove: (b) => deleteDeployment(access(), b),
        status: () => Promise.resolve(status),
        openWorkflows: () => Promise.resolve(0),
        log: (l) => lines.push(l),
      },
      { releaseBuildId: 'current', graceMs: 3_600_000 },
    );
    const deletes = seen.filter((s) => s.method === 'DELETE');
    expect(deletes.map((s) => s.url.pathname)).toEqual([`${DEPLOYMENTS}/persona-worker-drained`]);
    expect(JSON.parse(deletes[0]!.body).preconditions).toEqual({
      uid: 'uid-persona-worker-drained',
      resourceVersion: '41',
    });
    expect(lines).toHaveLength(4);
  });
});
