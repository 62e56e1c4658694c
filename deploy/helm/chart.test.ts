/**
 * The Helm chart (deploy/helm/persona), checked without a cluster: `helm lint --strict` and
 * `helm template` with the chart's CI values (ci/minimal-values.yaml: the least an install needs;
 * ci/production-values.yaml: TLS everywhere, a Secret of one's own, Prometheus Operator), every
 * rendered manifest validated against the Kubernetes API's schemas (kubernetes-validate, offline)
 * for the oldest Kubernetes the chart supports and a current one, the Prometheus Operator's custom
 * resources against their CRDs (validate_crds.py), and the manifests read back:
 * probes, Services, PDBs, hooks, the worker build's Deployment and its reaper, security, and an
 * environment that config/env.ts knows and loads as a production configuration. What an upgrade
 * and a rollback between builds keep: versions.test.ts.
 *
 * helm, kubernetes-validate and the CRDs come from scripts/install-chart-tools.sh (PERSONA_HELM,
 * PERSONA_KUBERNETES_VALIDATE and PERSONA_PROMETHEUS_OPERATOR_CRDS point elsewhere). In CI a missing
 * tool fails; elsewhere the file skips.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { API_NODE_ARGS, envSchema, loadConfig, repoRoot } from '../../config/env';
import { WORK_KINDS } from '../../config/envWorker';
import { requiredSearchAttributes } from '../../temporal/searchAttributes';
import { BUILD_ID_ANNOTATION } from '../../temporal/workerReaper';
import {
  buildSlug,
  byKind,
  chart,
  CURRENT_KUBERNETES,
  helm,
  kubernetesValidate,
  matches,
  missing,
  named,
  podOf,
  podTemplateOf,
  run,
  template,
  workerDeployments,
  workloads,
  type Container,
  type Manifest,
} from './render';

/** The Prometheus Operator's CRDs of ServiceMonitor and PrometheusRule, the schemas of the chart's custom resources. */
const prometheusOperatorCrds =
  process.env.PERSONA_PROMETHEUS_OPERATOR_CRDS ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'persona-tools', 'prometheus-operator-crds');
/** kubernetes-validate's virtualenv's Python (it has jsonschema and PyYAML). */
const venvPython = path.join(path.dirname(kubernetesValidate), 'python');
/** validate_crds.py: the custom resources in `files` checked against their CRDs, as the API server would (strict). */
const validateCrds = (files: string[]) =>
  run(venvPython, [path.join(repoRoot, 'deploy', 'helm', 'validate_crds.py'), prometheusOperatorCrds, ...files]);
const missingTools = [
  ...missing,
  ...Object.entries({ 'Prometheus Operator CRDs': prometheusOperatorCrds, "kubernetes-validate's python": venvPython })
    .filter(([, file]) => !existsSync(file))
    .map(([name, file]) => `${name} (${file})`),
];

if (missingTools.length > 0 && !process.env.CI)
  console.warn(
    `deploy/helm/chart.test.ts skipped: missing ${missingTools.join(', ')}; run scripts/install-chart-tools.sh`,
  );

const chartYaml = parse(readFileSync(path.join(chart, 'Chart.yaml'), 'utf8')) as {
  apiVersion: string;
  appVersion: string;
  kubeVersion: string;
};
const oldestKubernetes = `${/^>=(\d+\.\d+)\.0-0$/.exec(chartYaml.kubeVersion)?.[1] ?? '?'}.0`;

/** Persona's secrets: the chart's Secret holds them, a ConfigMap never. */
const SECRET_NAMES = [
  'PERSONA_TOKEN_KEYS',
  'PERSONA_PAYLOAD_KEYS',
  'PERSONA_JWT_SECRET',
  'NEO4J_PASSWORD',
  'KAFKA_SASL_PASSWORD',
  'TEMPORAL_API_KEY',
  'PERSONA_METRICS_TOKEN',
  'PERSONA_EVENTS_WEBHOOK_SECRET',
  'PERSONA_NOTIFY_WEBHOOK_SECRET',
];
/** What the Secret production-values.yaml names (existingSecret) would hold. */
const SAMPLE_SECRETS: Record<string, string> = {
  PERSONA_TOKEN_KEYS: `token-1:${Buffer.alloc(32, 7).toString('base64')}`,
  PERSONA_PAYLOAD_KEYS: `prod-1:${Buffer.alloc(32, 9).toString('base64')}`,
  PERSONA_JWT_SECRET: 'x'.repeat(40),
  NEO4J_PASSWORD: 'sample-password',
  KAFKA_SASL_PASSWORD: 'sample-kafka-password',
  PERSONA_METRICS_TOKEN: 'sample-metrics-token',
};
/** Node's own variables a container may set besides config/env.ts's: the reaper trusts the cluster's CA. */
const NODE_VARIABLES = ['NODE_EXTRA_CA_CERTS'];

const rendered = new Map<string, { text: string; docs: Manifest[] }>();
/** `helm template` with the chart's CI values file `name`. */
function render(name: string): { text: string; docs: Manifest[] } {
  const cached = rendered.get(name) ?? template(chart, ['-f', path.join(chart, 'ci', name)]);
  rendered.set(name, cached);
  return cached;
}
const VALUES = ['minimal-values.yaml', 'production-values.yaml'];
/** The worker groups each CI values file gives (worker.groups), or the one group that runs every kind. */
const groupsOf = (values: string): { name?: string; kinds?: string[]; replicas?: number }[] => {
  const v = parse(readFileSync(path.join(chart, 'ci', values), 'utf8')) as {
    worker: { groups?: { name: string; kinds: string[]; replicas?: number }[] };
  };
  return v.worker.groups?.length ? v.worker.groups : [{}];
};
/** The build id each CI values file gives (worker.buildId). */
const buildIdOf = (values: string): string =>
  (parse(readFileSync(path.join(chart, 'ci', values), 'utf8')) as { worker: { buildId: string } }).worker.buildId;

/** A container's environment as the process sees it: the ConfigMap, then env (secrets resolved). */
function environmentOf(docs: Manifest[], c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) Object.assign(env, named(docs, 'ConfigMap', from.configMapRef!.name).data);
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) {
      env[e.name] = e.value!;
      continue;
    }
    const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === ref.name);
    const value = secret ? Buffer.from(secret.data?.[ref.key] ?? '', 'base64').toString() : SAMPLE_SECRETS[ref.key];
    expect(value, `${c.name}: ${ref.name}/${ref.key}`).toBeTruthy();
    env[e.name] = value!;
  }
  return env;
}

describe.runIf(missingTools.length > 0 && Boolean(process.env.CI))('the chart tools', () => {
  it('are installed', () => {
    expect.fail(`missing ${missingTools.join(', ')}: run scripts/install-chart-tools.sh`);
  });
});

describe.skipIf(missingTools.length > 0)('the Helm chart', () => {
  it('is a v2 chart of this release of Persona', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(chartYaml.apiVersion).toBe('v2');
    expect(chartYaml.appVersion).toBe(pkg.version);
    expect(oldestKubernetes).toMatch(/^1\.\d+\.0$/);
  });

  it('passes helm lint --strict with each CI values file', () => {
    for (const values of VALUES) {
      const { code, out } = run(helm, [
        'lint',
        chart,
        '--strict',
        '--kube-version',
        CURRENT_KUBERNETES,
        '-f',
        path.join(chart, 'ci', values),
      ]);
      expect(code, out).toBe(0);
      expect(out).toContain('0 chart(s) failed');
      // Lint reports a template's `fail` as INFO and passes: none may fire with these values.
      expect(out).not.toContain('Fail:');
    }
  });

  it("refuses an install without the image's build id, a choice of transport security or its secrets", () => {
    const bare = (...set: string[]) => run(helm, ['template', 'p', chart, ...set.flatMap((s) => ['--set', s])]);
    // The build id names the workers' Deployment: it cannot be derived from an image by a template.
    expect(bare().out).toContain('worker.buildId is required');
    expect(bare('worker.buildId=0.2.0 beta').out).toMatch(/\/worker\/buildId.*'0\.2\.0 beta' does not match pattern/);
    const template = (...set: string[]) => bare('worker.buildId=0.2.0-9f1c2a7b3e4d', ...set);
    expect(template().out).toMatch(/temporal\.tls\.enabled .*temporal\.allowPlaintext=true/);
    expect(template('temporal.tls.enabled=true').out).toContain('temporal.tls.clientCertSecret or temporal.apiKey');
    const transport = ['temporal.allowPlaintext=true', 'kafka.allowPlaintext=true', 'env.PERSONA_GATEWAY_URL=http://g'];
    expect(template(...transport).out).toMatch(/secrets\.values\.\w+ is required/);
    expect(template(...transport, 'kafka.tls.enabled=false', 'kafka.allowPlaintext=false').out).toContain(
      'kafka.allowPlaintext=true',
    );
    const minimal = ['-f', path.join(chart, 'ci', 'minimal-values.yaml')];
    const withMinimal = (set: string) => run(helm, ['template', 'p', chart, ...minimal, '--set', set]);
    expect(withMinimal('env.PERSONA_JWT_SECRET=x').out).toContain('env.PERSONA_JWT_SECRET is a secret');
    expect(withMinimal('env.NEO4J_URI=bolt://x:7687').out).toContain('set it there');
    expect(withMinimal('env.PERSONA_GATEWAY_URL=').out).toContain('PERSONA_GATEWAY_URL is required');
    // What production requires (config/env.ts): the metrics token, and a webhook's signing secret.
    expect(withMinimal('metrics.requireToken=false').out).toContain('production requires PERSONA_METRICS_TOKEN');
    for (const webhook of ['EVENTS', 'NOTIFY'])
      expect(withMinimal(`env.PERSONA_${webhook}_WEBHOOK_URL=https://receiver.example`).out).toContain(
        `secrets.values.PERSONA_${webhook}_WEBHOOK_SECRET is required`,
      );
  });

  it('refuses values its schema does not know, or of the wrong type (values.schema.json)', () => {
    const minimal = ['-f', path.join(chart, 'ci', 'minimal-values.yaml')];
    const withMinimal = (...set: string[]) =>
      run(helm, ['template', 'p', chart, ...minimal, ...set.flatMap((s) => ['--set', s])]);
    // A misspelt key would otherwise be dropped without a word, and its default used.
    expect(withMinimal('wroker.replicas=3').out).toContain("additional properties 'wroker' not allowed");
    expect(withMinimal('worker.reaper.grace=5').out).toContain("additional properties 'grace' not allowed");
    expect(withMinimal('worker.replicas=two').out).toMatch(/\/worker\/replicas.*want integer/);
    expect(withMinimal('kafka.sasl.mechanism=SCRAM').out).toContain('/kafka/sasl/mechanism');
    expect(withMinimal('worker.buildId=0.2.0 beta').out).toContain('/worker/buildId');
    // Kubernetes' own objects under a value (resources, affinity) are the API's to check, not the chart's.
    expect(withMinimal('worker.affinity.nodeAffinity.x=1').code).toBe(0);
  });

  it('renders manifests the Kubernetes API accepts (strict schemas), for the oldest and a current version', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'persona-chart-'));
    const files = VALUES.map((values) => {
      const file = path.join(dir, values);
      writeFileSync(file, render(values).text);
      return file;
    });
    const versions = [oldestKubernetes, CURRENT_KUBERNETES].flatMap((v) => ['-k', v]);
    const { code, out } = run(kubernetesValidate, ['--strict', ...versions, ...files]);
    expect(code, out).toBe(0);
    const passed = out.split('\n').filter((l) => l.startsWith('INFO') && l.includes(' passed '));
    const kinds = VALUES.flatMap((v) => render(v).docs).filter((d) => !d.apiVersion.startsWith('monitoring.'));
    expect(passed).toHaveLength(kinds.length * 2);
    // kubernetes-validate has no schema for the Prometheus Operator's kinds (custom resources) ...
    for (const line of out.split('\n').filter((l) => l.startsWith('WARN')))
      expect(line).toMatch(/kind (ServiceMonitor|PrometheusRule) with api version monitoring\.coreos\.com\/v1/);
    // ... validate_crds.py checks them against their CRDs, as strictly: each of them passes.
    const custom = VALUES.flatMap((v, i) =>
      render(v)
        .docs.filter((d) => d.apiVersion.startsWith('monitoring.'))
        .map((d) => `PASS ${files[i]}: ${d.kind} ${d.metadata.name} (${d.apiVersion})`),
    );
    expect(custom.map((line) => line.split(' ')[2]).sort()).toEqual([
      'PrometheusRule',
      'ServiceMonitor',
      'ServiceMonitor',
    ]);
    const crds = validateCrds(files);
    expect(crds.code, crds.out).toBe(0);
    expect(crds.out.trim().split('\n')).toEqual(custom);
    // And the validator does refuse what the API would.
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, render('minimal-values.yaml').text.replace('containerPort: 8080', 'containerPort: "8080"'));
    expect(run(kubernetesValidate, ['--strict', '-k', CURRENT_KUBERNETES, broken]).code).not.toBe(0);
  });

  it("refuses a ServiceMonitor or a PrometheusRule that the Prometheus Operator's CRD does not allow", () => {
    type Loose = { metadata: { name: string }; spec: Record<string, Record<string, unknown>[]> };
    const [monitor, rule] = ['ServiceMonitor', 'PrometheusRule'].map(
      (kind) => byKind(render('production-values.yaml').docs, kind)[0] as unknown as Loose,
    );
    // Each a copy of the chart's with one mistake: a misspelt field, a number for a duration, no expression.
    const misspelt = structuredClone(monitor!);
    const { interval, ...endpoint } = misspelt.spec.endpoints![0]!;
    misspelt.spec.endpoints![0] = { ...endpoint, intervall: interval };
    const mistyped = structuredClone(rule!);
    mistyped.metadata.name = 'mistyped';
    (mistyped.spec.groups![0]!.rules as Record<string, unknown>[])[0]!.for = 5;
    const incomplete = structuredClone(rule!);
    incomplete.metadata.name = 'incomplete';
    delete (incomplete.spec.groups![1]!.rules as Record<string, unknown>[])[0]!.expr;
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'persona-chart-')), 'broken.yaml');
    writeFileSync(file, [monitor, misspelt, mistyped, incomplete].map((d) => stringify(d)).join('---\n'));
    const { code, out } = validateCrds([file]);
    expect(code, out).toBe(1);
    expect(out.trim().split('\n')).toEqual([
      `PASS ${file}: ServiceMonitor persona-api (monitoring.coreos.com/v1)`,
      `FAIL ${file}: ServiceMonitor persona-api (monitoring.coreos.com/v1)`,
      "  spec.endpoints[0]: Additional properties are not allowed ('intervall' was unexpected)",
      `FAIL ${file}: PrometheusRule mistyped (monitoring.coreos.com/v1)`,
      "  spec.groups[0].rules[0].for: 5 is not of type 'string'",
      `FAIL ${file}: PrometheusRule incomplete (monitoring.coreos.com/v1)`,
      "  spec.groups[1].rules[0]: 'expr' is a required property",
    ]);
  });

  it.each(VALUES)('gives every process only variables config/env.ts knows, loading in production (%s)', (values) => {
    const { docs } = render(values);
    const known = new Set(Object.keys(envSchema.shape));
    const configMaps = byKind(docs, 'ConfigMap');
    expect(configMaps).toHaveLength(1);
    for (const name of Object.keys(configMaps[0]!.data ?? {})) {
      expect(known.has(name), `ConfigMap: ${name} is not in config/env.ts`).toBe(true);
      expect(SECRET_NAMES, `ConfigMap holds the secret ${name}`).not.toContain(name);
    }
    for (const secret of byKind(docs, 'Secret'))
      for (const name of Object.keys(secret.data ?? {})) expect(SECRET_NAMES).toContain(name);
    const secretValues = Object.values(SAMPLE_SECRETS);
    for (const value of Object.values(configMaps[0]!.data ?? {})) expect(secretValues).not.toContain(value);
    for (const w of workloads(docs))
      for (const c of podOf(w).containers) {
        for (const e of c.env ?? []) {
          const knows = known.has(e.name) || NODE_VARIABLES.includes(e.name);
          expect(knows, `${w.metadata.name}: ${e.name} is not in config/env.ts`).toBe(true);
          if (SECRET_NAMES.includes(e.name)) expect(e.valueFrom?.secretKeyRef, `${e.name} from a Secret`).toBeDefined();
        }
        const config = loadConfig(environmentOf(docs, c));
        expect(config.NODE_ENV).toBe('production');
        expect(config.NEO4J_URI).toMatch(/^neo4j:\/\//);
        expect(config.kafkaBrokers.length).toBeGreaterThan(0);
        expect(config.PERSONA_KAFKA_REPLICATION).toBe(3);
        // The workers poll as this release's build; the promote hook and the reaper act for it.
        expect(config.PERSONA_BUILD_ID, w.metadata.name).toBe(buildIdOf(values));
      }
  });

  it.each(VALUES)('mounts every file a variable names, from a Secret that has it (%s)', (values) => {
    const { docs } = render(values);
    for (const w of workloads(docs))
      for (const c of podOf(w).containers) {
        const env = environmentOf(docs, c);
        const files = Object.entries(env).filter(([, v]) => v.startsWith('/etc/persona/'));
        for (const [name, file] of files) {
          const mount = c.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
          expect(mount, `${w.metadata.name}: ${name}=${file} is mounted`).toBeDefined();
          const volume = podOf(w).volumes?.find((v) => v.name === mount!.name);
          const items = volume?.secret?.items;
          if (items) expect(items.map((i) => i.path)).toContain(path.basename(file));
        }
        if (values === 'production-values.yaml' && w.kind === 'Deployment')
          expect(files.length, `${w.metadata.name} uses TLS files`).toBeGreaterThanOrEqual(4);
      }
  });

  it.each(VALUES)('runs the api ready on /readyz/read, behind a read and a write Service (%s)', (values) => {
    const { docs } = render(values);
    const api = named(docs, 'Deployment', 'persona-api');
    const c = podOf(api).containers[0]!;
    expect(c.command).toEqual(['node', ...API_NODE_ARGS, '--enable-source-maps', 'api/main.js']);
    // The image holds the entry point compiled (scripts/build-image.sh), from this source.
    expect(existsSync(path.join(repoRoot, 'api', 'main.ts'))).toBe(true);
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz/read', port: 'http' });
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    const config = loadConfig(environmentOf(docs, c));
    // /metrics needs its token unless an install says otherwise (neither values file does): the api
    // Services' http port serves it, and an ingress in front would publish it.
    expect(config.PERSONA_METRICS_TOKEN, 'the metrics token').toBe('sample-metrics-token');
    const ports = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: config.PERSONA_HTTP_PORT, grpc: config.PERSONA_GRPC_PORT });
    for (const which of ['read', 'write']) {
      const service = named(docs, 'Service', `persona-api-${which}`);
      expect(matches(service.spec!.selector!, api.spec!.template!.metadata.labels), which).toBe(true);
      expect(service.spec!.ports!.map((p) => [p.name, p.port, p.targetPort])).toEqual([
        ['http', config.PERSONA_HTTP_PORT, 'http'],
        ['grpc', config.PERSONA_GRPC_PORT, 'grpc'],
      ]);
    }
  });

  it.each(VALUES)(
    "runs this release's build in a Deployment per worker group, kept, ready on /readyz (%s)",
    (values) => {
      const { docs } = render(values);
      const buildId = buildIdOf(values);
      const groups = groupsOf(values);
      // One build a release: an older build's Deployments are ones Helm kept (versions.test.ts).
      const workers = workerDeployments(docs);
      const names = groups.map((g) => `persona-worker-${buildSlug(buildId)}${g.name ? `-${g.name}` : ''}`);
      expect(workers.map((w) => w.metadata.name)).toEqual(names);
      const kinds: string[] = [];
      for (const [i, w] of workers.entries()) {
        const group = groups[i]!;
        expect(w.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep', [BUILD_ID_ANNOTATION]: buildId });
        // The selector names the build (a new build is a new Deployment, never a rolling update of this
        // one) and the group, if any.
        expect(w.spec!.selector!.matchLabels).toEqual({
          'app.kubernetes.io/name': 'persona',
          'app.kubernetes.io/instance': 'persona',
          'app.kubernetes.io/component': 'worker',
          'persona/worker-build': buildSlug(buildId),
          ...(group.name ? { 'persona/worker-group': group.name } : {}),
        });
        expect(matches(w.spec!.selector!.matchLabels!, w.metadata.labels)).toBe(true);
        for (const other of workers)
          expect(
            matches(w.spec!.selector!.matchLabels!, podTemplateOf(other).metadata.labels),
            other.metadata.name,
          ).toBe(other === w);
        expect(w.spec!.replicas).toBe(group.replicas ?? 2);
        const c = podOf(w).containers[0]!;
        expect(c.command).toEqual(['node', '--enable-source-maps', 'workers/main.js']);
        // Its environment is its own, inline: a later release's ConfigMap never reaches a kept build's pods.
        expect(c.envFrom).toBeUndefined();
        // Its secrets are read as its pods start (a rotated key reaches a kept build at its restart), and
        // one a later release dropped does not keep them from starting.
        const refs = (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : []));
        expect(refs.length).toBeGreaterThan(0);
        expect(refs.every((r) => r.optional === true)).toBe(true);
        const config = loadConfig(environmentOf(docs, c));
        expect(config.PERSONA_BUILD_ID).toBe(buildId);
        kinds.push(...config.PERSONA_WORKER_KINDS);
        expect(c.ports).toEqual([{ name: 'http', containerPort: config.PERSONA_WORKER_HTTP_PORT, protocol: 'TCP' }]);
        expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
        expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
        // Longer than the worker's own drain (30 s): activities in flight finish.
        expect(podOf(w).terminationGracePeriodSeconds).toBeGreaterThanOrEqual(45);
        // The workers' Service reaches every build's pods (scraped while they drain too).
        const service = named(docs, 'Service', 'persona-worker');
        expect(matches(service.spec!.selector!, podTemplateOf(w).metadata.labels)).toBe(true);
        expect(Object.keys(service.spec!.selector!)).not.toContain('persona/worker-build');
      }
      // The groups together run every kind of work once: the version polls every task queue.
      expect(kinds.sort()).toEqual([...WORK_KINDS].sort());
    },
  );

  it('refuses worker groups that leave a kind of work out, run one twice, or share a name', () => {
    const minimal = ['-f', path.join(chart, 'ci', 'minimal-values.yaml')];
    const withGroups = (...groups: string[]) =>
      run(helm, ['template', 'p', chart, ...minimal, '--set-json', `worker.groups=[${groups.join(',')}]`]);
    const group = (name: string, ...kinds: string[]) => JSON.stringify({ name, kinds });
    expect(withGroups(group('a', 'charges'), group('b', 'interactive', 'bulk')).out).toContain(
      'together the groups must run charges, interactive, bulk and deliveries, each exactly once (they run charges, ' +
        'interactive, bulk)',
    );
    expect(withGroups(group('a', 'charges', 'bulk'), group('b', 'interactive', 'bulk', 'deliveries')).out).toContain(
      'each exactly once',
    );
    expect(withGroups(group('a', 'charges', 'bulk'), group('a', 'interactive', 'deliveries')).out).toContain(
      'each group needs a name of its own (a, a)',
    );
    expect(withGroups(group('a', 'charges', 'ledger')).out).toContain('/worker/groups/0/kinds/1');
    expect(withGroups(group('Rest', 'charges', 'bulk', 'interactive', 'deliveries')).out).toContain(
      '/worker/groups/0/name',
    );
    expect(withGroups(group('all', 'charges', 'bulk', 'interactive', 'deliveries')).code).toBe(0);
  });

  it.each(VALUES)('keeps an api pod and a worker of each group of this build through a node drain (%s)', (values) => {
    const { docs } = render(values);
    const api = named(docs, 'Deployment', 'persona-api');
    const workers = workerDeployments(docs);
    const budgets: [Manifest, Manifest][] = [
      [named(docs, 'PodDisruptionBudget', 'persona-api'), api],
      ...groupsOf(values).map((g, i): [Manifest, Manifest] => [
        named(docs, 'PodDisruptionBudget', `persona-worker${g.name ? `-${g.name}` : ''}`),
        workers[i]!,
      ]),
    ];
    expect(byKind(docs, 'PodDisruptionBudget')).toHaveLength(budgets.length);
    for (const [pdb, deployment] of budgets) {
      expect(pdb.apiVersion).toBe('policy/v1');
      expect(pdb.spec!.minAvailable).toBe(1);
      // During an outage no pod is Ready: a budget counting them would block every node drain.
      expect(pdb.spec!.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
      expect(deployment.spec!.replicas).toBeGreaterThan(pdb.spec!.minAvailable!);
      // Each budget holds its own Deployment's pods and no other's.
      for (const other of [api, ...workers])
        expect(matches(pdb.spec!.selector!.matchLabels!, podTemplateOf(other).metadata.labels)).toBe(
          other === deployment,
        );
    }
  });

  it.each(VALUES)('migrates before an install or upgrade, promotes after it and after a rollback (%s)', (values) => {
    const { docs } = render(values);
    const migrate = named(docs, 'Job', 'persona-migrate');
    expect(migrate.metadata.annotations).toMatchObject({
      'helm.sh/hook': 'pre-install,pre-upgrade',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    expect(podOf(migrate).containers[0]!.command).toEqual(['node', '--enable-source-maps', 'scripts/migrate.js']);
    // Before an install nothing of the release exists: the Secret it reads is a hook of an earlier
    // weight, or one of the user's; its ServiceAccount is the namespace's own.
    const weight = (m: Manifest) => Number(m.metadata.annotations?.['helm.sh/hook-weight'] ?? 0);
    for (const e of podOf(migrate).containers[0]!.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === ref.name);
      if (secret) {
        expect(secret.metadata.annotations?.['helm.sh/hook']).toContain('pre-install');
        expect(weight(secret)).toBeLessThan(weight(migrate));
      } else expect(ref.name).toBe('persona-secrets');
    }
    expect(podOf(migrate).serviceAccountName).toBe('default');
    expect(podOf(migrate).containers[0]!.envFrom).toBeUndefined();
    const promote = named(docs, 'Job', 'persona-promote');
    // After a rollback too: Temporal would otherwise keep routing to the newer build, which only drains.
    expect(promote.metadata.annotations?.['helm.sh/hook']).toBe('post-install,post-upgrade,post-rollback');
    expect(environmentOf(docs, podOf(promote).containers[0]!).PERSONA_BUILD_ID).toBe(buildIdOf(values));
    expect(podOf(promote).containers[0]!.command.slice(-2)).toEqual(['scripts/deploy.js', 'promote']);
    for (const script of ['migrate.ts', 'deploy.ts'])
      expect(existsSync(path.join(repoRoot, 'scripts', script))).toBe(true);
  });

  it.each(VALUES)("runs every container unprivileged, read-only, without a token but the reaper's (%s)", (values) => {
    const { docs } = render(values);
    for (const sa of byKind(docs, 'ServiceAccount')) expect(sa.automountServiceAccountToken).toBe(false);
    for (const w of workloads(docs)) {
      const pod = podOf(w);
      // The reaper alone calls the Kubernetes API, with a ServiceAccount of its own (the next test).
      const reaper = w.metadata.name === 'persona-worker-reaper';
      expect(pod.automountServiceAccountToken, w.metadata.name).toBe(reaper);
      if (reaper) expect(pod.serviceAccountName).toBe('persona-worker-reaper');
      else expect(pod.serviceAccountName).not.toBe('persona-worker-reaper');
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(pod.securityContext.seccompProfile?.type).toBe('RuntimeDefault');
      for (const c of pod.containers) {
        expect(c.securityContext).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        });
        // The temporary directory (Node, the Temporal SDK): a volume of its own.
        const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
        expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
        for (const m of c.volumeMounts ?? []) expect(pod.volumes?.map((v) => v.name)).toContain(m.name);
      }
    }
  });

  it('lets only whom networkPolicy names reach the api, only the scrapers the workers, nobody the rest', () => {
    expect(byKind(render('minimal-values.yaml').docs, 'NetworkPolicy')).toEqual([]);
    const { docs } = render('production-values.yaml');
    type Policy = {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      ingress?: { ports?: { port: number }[]; from?: unknown[] }[];
      egress?: { ports?: { port: number; protocol: string }[]; to?: unknown[] }[];
    };
    const spec = (name: string) => named(docs, 'NetworkPolicy', name).spec as unknown as Policy;
    const values = parse(readFileSync(path.join(chart, 'ci', 'production-values.yaml'), 'utf8')) as {
      networkPolicy: { apiFrom: unknown[]; metricsFrom: unknown[]; egress: unknown[] };
    };
    const api = spec('persona-api');
    expect(api.podSelector.matchLabels['app.kubernetes.io/component']).toBe('api');
    expect(api.ingress).toEqual([
      {
        ports: [
          { protocol: 'TCP', port: 8080 },
          { protocol: 'TCP', port: 50051 },
        ],
        from: values.networkPolicy.apiFrom,
      },
      { ports: [{ protocol: 'TCP', port: 8080 }], from: values.networkPolicy.metricsFrom },
    ]);
    const worker = spec('persona-worker');
    // Every build's workers, not only this release's: an older one is scraped while it drains.
    expect(worker.podSelector.matchLabels['persona/worker-build']).toBeUndefined();
    expect(worker.ingress).toEqual([
      { ports: [{ protocol: 'TCP', port: 8081 }], from: values.networkPolicy.metricsFrom },
    ]);
    const deny = spec('persona-default-deny');
    expect(Object.keys(deny.podSelector.matchLabels).sort()).toEqual([
      'app.kubernetes.io/instance',
      'app.kubernetes.io/name',
    ]);
    expect(deny.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(deny.ingress).toBeUndefined();
    expect(deny.egress?.[0]?.ports?.map((p) => p.port)).toEqual([53, 53]);
    expect(deny.egress?.slice(1)).toEqual(values.networkPolicy.egress);
    // On without saying who scrapes: refused, rather than a Prometheus that silently sees nothing.
    const out = run(helm, [
      'template',
      'p',
      chart,
      '-f',
      path.join(chart, 'ci', 'production-values.yaml'),
      '--set',
      'networkPolicy.metricsFrom=null',
    ]).out;
    expect(out).toContain('networkPolicy.metricsFrom');
  });

  it.each(VALUES)('reaps old builds with a token that may list and delete Deployments only (%s)', (values) => {
    const { docs } = render(values);
    const reaper = named(docs, 'CronJob', 'persona-worker-reaper');
    expect(reaper.spec!.concurrencyPolicy).toBe('Forbid');
    expect(reaper.spec!.schedule).toBe('*/5 * * * *');
    const c = podOf(reaper).containers[0]!;
    expect(c.command.slice(0, 5)).toEqual(['node', '--enable-source-maps', 'scripts/deploy.js', 'reap', '--selector']);
    // The selector takes this release's worker Deployments, and nothing else the chart makes.
    const selector = Object.fromEntries(
      c.command[5]!.split(',').map((term) => [term.split('=')[0]!, term.split('=')[1] ?? null] as const),
    );
    const selects = (m: Manifest) =>
      Object.entries(selector).every(([k, v]) =>
        v === null ? k in (m.metadata.labels ?? {}) : m.metadata.labels?.[k] === v,
      );
    expect(docs.filter(selects).map((m) => `${m.kind} ${m.metadata.name}`)).toEqual(
      workerDeployments(docs).map((m) => `Deployment ${m.metadata.name}`),
    );
    expect(selector['app.kubernetes.io/instance']).toBe('persona');
    expect(c.command.slice(6)).toEqual(['--grace-minutes', '60']);
    // The API server's certificate: the cluster's CA, where Kubernetes mounts it beside the token.
    expect(c.env?.find((e) => e.name === 'NODE_EXTRA_CA_CERTS')?.value).toBe(
      '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    );
    expect(existsSync(path.join(repoRoot, 'clients', 'kubernetes.ts'))).toBe(true);
    // Its ServiceAccount may list and delete Deployments in the release's namespace, and nothing else.
    expect(byKind(docs, 'ClusterRole')).toEqual([]);
    expect(byKind(docs, 'ClusterRoleBinding')).toEqual([]);
    const roles = byKind(docs, 'Role');
    expect(roles.map((r) => r.metadata.name)).toEqual(['persona-worker-reaper']);
    expect(roles[0]!.rules).toEqual([{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['list', 'delete'] }]);
    const bindings = byKind(docs, 'RoleBinding');
    expect(bindings).toHaveLength(1);
    expect(bindings[0]!.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'persona-worker-reaper',
    });
    expect(bindings[0]!.subjects).toEqual([
      { kind: 'ServiceAccount', name: podOf(reaper).serviceAccountName, namespace: 'persona' },
    ]);
    named(docs, 'ServiceAccount', podOf(reaper).serviceAccountName);
    // Turned off, none of it is made.
    const off = template(chart, ['-f', path.join(chart, 'ci', values), '--set', 'worker.reaper.enabled=false']).docs;
    expect(off.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'worker-reaper')).toEqual([]);
  });

  it('scrapes the api and the workers as the jobs the alert rules name, with the rules themselves', () => {
    expect(render('minimal-values.yaml').docs.filter((d) => d.apiVersion.startsWith('monitoring.'))).toEqual([]);
    const { docs } = render('production-values.yaml');
    const alerts = readFileSync(path.join(repoRoot, 'ops', 'prometheus', 'alerts.yml'), 'utf8');
    const jobs = [...new Set([...alerts.matchAll(/job="([^"]+)"/g)].map((m) => m[1]))].sort();
    const monitors = byKind(docs, 'ServiceMonitor');
    const scraped = monitors.map((m) => m.spec!.endpoints![0]!.relabelings.find((r) => r.targetLabel === 'job'));
    expect(scraped.map((r) => r?.replacement).sort()).toEqual(jobs);
    for (const m of monitors) {
      // Exactly one Service per monitor, or each pod is scraped twice.
      const services = byKind(docs, 'Service').filter((s) =>
        matches(m.spec!.selector!.matchLabels!, s.metadata.labels),
      );
      expect(services, m.metadata.name).toHaveLength(1);
      expect(services[0]!.spec!.ports!.map((p) => p.name)).toContain(m.spec!.endpoints![0]!.port);
      expect(m.spec!.endpoints![0]!.path).toBe('/metrics');
      // The api's and the workers' /metrics need the token (production requires it): each monitor sends it.
      expect(m.spec!.endpoints![0]!.authorization, m.metadata.name).toEqual({
        type: 'Bearer',
        credentials: { name: 'persona-secrets', key: 'PERSONA_METRICS_TOKEN' },
      });
    }
    // The rules are ops/prometheus/alerts.yml, whose copy in the chart must not drift.
    expect(readFileSync(path.join(chart, 'files', 'alerts.yml'), 'utf8')).toBe(alerts);
    const rule = byKind(docs, 'PrometheusRule');
    expect(rule).toHaveLength(1);
    expect((rule[0] as Manifest & { spec: unknown }).spec).toEqual(parse(alerts));
  });

  it('is documented: the search attributes, the topics and the values the other charts need', () => {
    const doc = readFileSync(path.join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
    const defaults = envSchema.parse({});
    for (const name of [
      ...requiredSearchAttributes.map((a) => a.name),
      defaults.PERSONA_KAFKA_EVENTS_TOPIC,
      defaults.PERSONA_KAFKA_INVALIDATIONS_TOPIC,
      defaults.PERSONA_KAFKA_DEAD_LETTER_TOPIC,
      'numHistoryShards',
      'minimumClusterSize',
      'min.insync.replicas',
      '/readyz/write',
    ])
      expect(doc, name).toContain(name);
    for (const [i, line] of doc.split('\n').entries()) expect(line.length, `line ${i + 1}`).toBeLessThanOrEqual(120);
  });
});
