/**
 * The Kubernetes API as a pod reaches it with its own ServiceAccount, for the worker reaper
 * (`scripts/deploy.ts reap`): list a namespace's Deployments by label and delete one, over plain
 * fetch. In a pod the API server is `https://kubernetes.default.svc`, the token and the namespace
 * are the files Kubernetes mounts under /var/run/secrets/kubernetes.io/serviceaccount, and Node
 * trusts the cluster's CA through `NODE_EXTRA_CA_CERTS` (the chart points it at the mounted
 * ca.crt). PERSONA_KUBERNETES_API_URL, PERSONA_KUBERNETES_TOKEN_FILE and
 * PERSONA_KUBERNETES_NAMESPACE_FILE point elsewhere (the tests' fake API server).
 */
import { readFileSync } from 'node:fs';

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubernetesAccess {
  /** The API server's base URL, no trailing slash. */
  apiUrl: string;
  token: string;
  namespace: string;
}

/** A Deployment as the reaper reads it: its metadata. */
export interface DeploymentMeta {
  name: string;
  uid: string;
  resourceVersion: string;
  /** ISO. */
  creationTimestamp: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** What deleting a Deployment came to. */
export type DeleteOutcome =
  /** Deleted (its ReplicaSets and pods follow, in the background). */
  | 'deleted'
  /** No longer there. */
  | 'gone'
  /** Replaced or changed since it was read (another uid or resourceVersion): left as it is. */
  | 'changed';

/** The API server answered with an error other than the ones a caller expects. */
export class KubernetesError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'KubernetesError';
  }
}

/** The API server, token and namespace of the pod this runs in (module comment), read now. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env): KubernetesAccess {
  // Read on every call: a projected token is renewed while the pod runs.
  const read = (file: string) => readFileSync(file, 'utf8').trim();
  return {
    apiUrl: (env.PERSONA_KUBERNETES_API_URL ?? 'https://kubernetes.default.svc').replace(/\/+$/, ''),
    token: read(env.PERSONA_KUBERNETES_TOKEN_FILE ?? `${SERVICE_ACCOUNT}/token`),
    namespace: read(env.PERSONA_KUBERNETES_NAMESPACE_FILE ?? `${SERVICE_ACCOUNT}/namespace`),
  };
}

const TIMEOUT_MS = 15_000;

function deploymentsUrl(access: KubernetesAccess, name?: string): string {
  const base = `${access.apiUrl}/apis/apps/v1/namespaces/${encodeURIComponent(access.namespace)}/deployments`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

async function call(access: KubernetesAccess, url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    ...init,
    headers: { authorization: `Bearer ${access.token}`, accept: 'application/json', ...init.headers },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
}

/** The API server's refusal, in its own words (a Status object's message) where it gave them. */
async function refused(what: string, res: Response): Promise<KubernetesError> {
  const text = await res.text();
  let message = text.slice(0, 300);
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    // Not a Status object: the text as it came.
  }
  return new KubernetesError(`${what}: ${res.status} ${message}`, res.status);
}

interface DeploymentList {
  metadata?: { continue?: string };
  items?: { metadata?: Partial<DeploymentMeta> & { name?: string } }[];
}

/** The namespace's Deployments that match the label selector (every page of them). */
export async function listDeployments(access: KubernetesAccess, labelSelector: string): Promise<DeploymentMeta[]> {
  const found: DeploymentMeta[] = [];
  let next: string | undefined;
  do {
    const query = new URLSearchParams({ labelSelector, limit: '100' });
    if (next) query.set('continue', next);
    const res = await call(access, `${deploymentsUrl(access)}?${query.toString()}`);
    if (!res.ok) throw await refused(`listing deployments in ${access.namespace} (${labelSelector})`, res);
    const list = (await res.json()) as DeploymentList;
    for (const { metadata: m = {} } of list.items ?? [])
      found.push({
        name: m.name ?? '',
        uid: m.uid ?? '',
        resourceVersion: m.resourceVersion ?? '',
        creationTimestamp: m.creationTimestamp ?? '',
        labels: m.labels ?? {},
        annotations: m.annotations ?? {},
      });
    next = list.metadata?.continue || undefined;
  } while (next);
  return found;
}

/**
 * Deletes the Deployment, only if it is still the one that was read: the same uid and
 * resourceVersion (a Deployment recreated or changed since, by `helm rollback` taking it back, is
 * left alone). Its ReplicaSets and pods are deleted after it, in the background.
 */
export async function deleteDeployment(
  access: KubernetesAccess,
  d: Pick<DeploymentMeta, 'name' | 'uid' | 'resourceVersion'>,
): Promise<DeleteOutcome> {
  const res = await call(access, deploymentsUrl(access, d.name), {
    method: 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Background',
      preconditions: { uid: d.uid, resourceVersion: d.resourceVersion },
    }),
  });
  if (res.ok) {
    await res.body?.cancel();
    return 'deleted';
  }
  if (res.status === 404) return 'gone';
  // A precondition that no longer holds is a 409 Conflict.
  if (res.status === 409) return 'changed';
  throw await refused(`deleting deployment ${access.namespace}/${d.name}`, res);
}
