/**
 * What the chart's tests share (chart.test.ts, versions.test.ts): where helm and
 * kubernetes-validate are (scripts/install-chart-tools.sh; PERSONA_HELM and
 * PERSONA_KUBERNETES_VALIDATE point elsewhere), `helm template` read back as manifests, and the
 * ways to look into them.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../config/env';

export const chart = path.join(repoRoot, 'deploy', 'helm', 'persona');
const cacheDir = process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache');
export const helm = process.env.PERSONA_HELM ?? path.join(homedir(), 'go', 'bin', 'helm');
export const kubernetesValidate =
  process.env.PERSONA_KUBERNETES_VALIDATE ?? path.join(cacheDir, 'persona-tools', 'venv', 'bin', 'kubernetes-validate');
/** The tools not installed, by name and path: the chart's tests skip (or, in CI, fail). */
export const missing = Object.entries({ helm, 'kubernetes-validate': kubernetesValidate })
  .filter(([, bin]) => !existsSync(bin))
  .map(([name, bin]) => `${name} (${bin})`);

/** The newest Kubernetes the manifests are validated for, besides the oldest Chart.yaml allows. */
export const CURRENT_KUBERNETES = '1.33.0';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
export interface Container {
  name: string;
  image: string;
  command: string[];
  ports?: { name: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string } }[];
  readinessProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  securityContext: {
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
}
export interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  securityContext: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: { name: string; emptyDir?: object; secret?: { secretName: string; items?: { path: string }[] } }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: {
    replicas?: number;
    minAvailable?: number;
    unhealthyPodEvictionPolicy?: string;
    selector?: Record<string, string> & { matchLabels?: Record<string, string> };
    template?: PodTemplate;
    ports?: { name: string; port: number; targetPort: string }[];
    endpoints?: {
      port: string;
      path: string;
      relabelings: { targetLabel: string; replacement: string }[];
      authorization?: { type: string; credentials: { name: string; key: string } };
    }[];
    schedule?: string;
    concurrencyPolicy?: string;
    jobTemplate?: { spec: { template: PodTemplate } };
  };
  data?: Record<string, string>;
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  automountServiceAccountToken?: boolean;
}

export function run(bin: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** `helm template persona <chartDir>` in the namespace persona with `args` (values files, --set), read back. */
export function template(chartDir: string, args: string[]): { text: string; docs: Manifest[] } {
  const { code, out } = run(helm, [
    'template',
    'persona',
    chartDir,
    '--namespace',
    'persona',
    '--kube-version',
    CURRENT_KUBERNETES,
    ...args,
  ]);
  expect(code, out).toBe(0);
  const docs = parseAllDocuments(out)
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
  return { text: out, docs };
}

export const byKind = (docs: Manifest[], kind: string) => docs.filter((d) => d.kind === kind);
export const named = (docs: Manifest[], kind: string, name: string): Manifest => {
  const found = docs.find((d) => d.kind === kind && d.metadata.name === name);
  expect(found, `${kind} ${name}`).toBeDefined();
  return found!;
};
/** A workload's pod template (a CronJob's through its Job template). */
export const podTemplateOf = (m: Manifest): PodTemplate => (m.spec!.jobTemplate?.spec ?? m.spec!).template!;
export const podOf = (m: Manifest): PodSpec => podTemplateOf(m).spec;
export const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
export const workloads = (docs: Manifest[]) =>
  docs.filter((d) => d.kind === 'Deployment' || d.kind === 'Job' || d.kind === 'CronJob');
/** The worker Deployments: one per build. */
export const workerDeployments = (docs: Manifest[]) =>
  byKind(docs, 'Deployment').filter((d) => d.metadata.labels?.['app.kubernetes.io/component'] === 'worker');

/**
 * The chart's name for a build (templates/_helpers.tpl, persona.buildSlug), as the test expects it:
 * lower case, each run of other characters than [a-z0-9-] one "-"; past 40 characters, the first
 * 31 and 8 hex digits of the id's SHA-256.
 */
export function buildSlug(buildId: string): string {
  const s = buildId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s.length <= 40
    ? s
    : `${s.slice(0, 31).replace(/-+$/, '')}-${createHash('sha256').update(buildId).digest('hex').slice(0, 8)}`;
}
