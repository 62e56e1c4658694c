/**
 * docker-compose.yml cannot be started here (no Docker engine), so it is checked statically
 * against the code: it parses; every variable it gives a Persona service is one config/env.ts
 * knows and, with the secrets filled in, the configuration loads in production mode; the
 * addresses point at services that exist, on the ports those services use; commands name files
 * that exist; images are pinned, Neo4j on the 5.26 line the stack runs.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema, loadConfig, repoRoot } from '../config/env';
import { requiredSearchAttributes } from '../temporal/searchAttributes';

interface Service {
  image?: string;
  entrypoint?: string[];
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const compose = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  secrets?: Record<string, { environment?: string }>;
};
const services = compose.services;
const persona = ['api', 'worker', 'gateway-sim'] as const;

/** `${X:?msg}` → a sample secret, `${X:-default}` → the default. */
function resolve(value: string): string {
  return String(value)
    .replace(
      /\$\{(\w+):\?[^}]*\}/g,
      (_, name: string) =>
        ({
          PERSONA_TOKEN_KEYS: `token-1:${Buffer.alloc(32, 7).toString('base64')}`,
          PERSONA_JWT_SECRET: 'x'.repeat(40),
          PERSONA_PAYLOAD_KEYS: `prod-1:${Buffer.alloc(32, 9).toString('base64')}`,
          PERSONA_METRICS_TOKEN: 'sample-metrics-token',
        })[name] ?? 'sample-secret',
    )
    .replace(/\$\{(\w+):-([^}]*)\}/g, (_, _name: string, fallback: string) => fallback);
}

const envOf = (name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(services[name]?.environment ?? {}).map(([k, v]) => [k, resolve(v)]));
const hostPort = (url: string): [string, number] => {
  const u = new URL(url.includes('://') ? url : `x://${url}`);
  return [u.hostname, Number(u.port)];
};

describe('docker-compose.yml', () => {
  it('has the services of a deployment, each with a health check where something waits for it', () => {
    expect(Object.keys(services).sort()).toEqual([
      'api',
      'deploy',
      'gateway-sim',
      'kafka-1',
      'kafka-2',
      'kafka-3',
      'migrate',
      'neo4j',
      'prometheus',
      'temporal',
      'temporal-db',
      'temporal-setup',
      'temporal-ui',
      'worker',
    ]);
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        if (condition === 'service_healthy')
          expect(services[dep]?.healthcheck, `${dep} needs a health check`).toBeDefined();
      }
    }
    expect(Object.keys(compose.volumes).sort()).toEqual([
      'kafka-1-data',
      'kafka-2-data',
      'kafka-3-data',
      'neo4j-data',
      'prometheus-data',
      'temporal-db',
    ]);
  });

  it('runs Kafka as three voting nodes of one cluster, replication 3 and min ISR 2, no unclean election', () => {
    const nodes = ['kafka-1', 'kafka-2', 'kafka-3'];
    const envs = nodes.map(envOf);
    expect(envs.map((e) => e.KAFKA_NODE_ID)).toEqual(['1', '2', '3']);
    expect(envs.map((e) => e.KAFKA_ADVERTISED_LISTENERS)).toEqual(nodes.map((n) => `PLAINTEXT://${n}:9092`));
    expect(new Set(nodes.map((n) => services[n]?.volumes?.[0])).size).toBe(3);
    for (const e of envs) {
      expect(e.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe('1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093');
      // One cluster id, 16 bytes in base64url, as Kafka's storage tool requires.
      expect(Buffer.from(e.CLUSTER_ID ?? '', 'base64url')).toHaveLength(16);
      expect(e.CLUSTER_ID).toBe(envs[0]?.CLUSTER_ID);
      expect([e.KAFKA_DEFAULT_REPLICATION_FACTOR, e.KAFKA_MIN_INSYNC_REPLICAS]).toEqual(['3', '2']);
      expect([e.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, e.KAFKA_TRANSACTION_STATE_LOG_MIN_ISR]).toEqual(['3', '2']);
      expect(e.KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE).toBe('false');
    }
    for (const name of ['api', 'worker'])
      for (const n of nodes)
        expect(services[name]?.depends_on?.[n], `${name} on ${n}`).toEqual({ condition: 'service_healthy' });
  });

  it('migrates the graph once, as a step, before the worker and the api (which only check it)', () => {
    expect(services.migrate?.command).toEqual(['node', '--enable-source-maps', 'scripts/migrate.js']);
    for (const name of ['api', 'worker'])
      expect(services[name]?.depends_on?.migrate, name).toEqual({ condition: 'service_completed_successfully' });
  });

  it('gives Persona’s services only variables the code reads, and they load as a production configuration', () => {
    const known = new Set(Object.keys(envSchema.shape));
    for (const name of persona) {
      const env = envOf(name);
      for (const key of Object.keys(env)) expect(known.has(key), `${name}: ${key} is not in config/env.ts`).toBe(true);
    }
    for (const name of ['api', 'worker'] as const) {
      const config = loadConfig(envOf(name));
      expect(config.NODE_ENV).toBe('production');
      // Addresses name services of this file, on the ports those services listen on.
      const [neo4jHost, neo4jPort] = hostPort(config.NEO4J_URI);
      expect([neo4jHost, neo4jPort]).toEqual(['neo4j', 7687]);
      expect(services.neo4j?.ports).toContain('127.0.0.1:7687:7687');
      // A routing driver connects where the server says it is: this network's name for it.
      if (config.NEO4J_URI.startsWith('neo4j'))
        expect(services.neo4j?.environment?.NEO4J_server_bolt_advertised__address).toBe('neo4j:7687');
      const [temporalHost, temporalPort] = hostPort(config.TEMPORAL_ADDRESS);
      expect([temporalHost, temporalPort]).toEqual(['temporal', 7233]);
      const [gatewayHost, gatewayPort] = hostPort(config.PERSONA_GATEWAY_URL);
      expect(gatewayHost).toBe('gateway-sim');
      expect(loadConfig({ ...envOf('api'), ...envOf('gateway-sim') }).PERSONA_GATEWAY_PORT).toBe(gatewayPort);
      // Kafka is on, at the three nodes of this file, on the ports they advertise, each topic
      // replicated three times (min ISR 2 follows): a production configuration without an excuse.
      expect(config.kafkaBrokers).toEqual(['kafka-1:9092', 'kafka-2:9092', 'kafka-3:9092']);
      expect(config.PERSONA_KAFKA_REPLICATION).toBe(3);
      expect(config.KAFKA_ALLOW_UNREPLICATED).toBe('false');
    }
    const api = loadConfig(envOf('api'));
    expect(services.api?.ports).toEqual([
      `\${PERSONA_PUBLISH_ADDRESS:-127.0.0.1}:${api.PERSONA_HTTP_PORT}:${api.PERSONA_HTTP_PORT}`,
      `\${PERSONA_PUBLISH_ADDRESS:-127.0.0.1}:${api.PERSONA_GRPC_PORT}:${api.PERSONA_GRPC_PORT}`,
    ]);
    expect(services.api?.healthcheck?.test.join(' ')).toContain(`:${api.PERSONA_HTTP_PORT}/readyz`);
    const worker = loadConfig(envOf('worker'));
    expect(services.worker?.healthcheck?.test.join(' ')).toContain(`:${worker.PERSONA_WORKER_HTTP_PORT}/readyz`);
    expect(envOf('gateway-sim').PERSONA_GATEWAY_HOST).toBe('0.0.0.0');
  });

  it('publishes every port on the loopback alone, unless PERSONA_PUBLISH_ADDRESS says where for the api', () => {
    const published = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, p]));
    expect(published.length).toBeGreaterThan(0);
    for (const [name, port] of published) {
      const loopback =
        name === 'api' ? /^\$\{PERSONA_PUBLISH_ADDRESS:-127\.0\.0\.1\}:\d+:\d+$/ : /^127\.0\.0\.1:\d+:\d+$/;
      expect(port, `${name} publishes ${port}`).toMatch(loopback);
    }
  });

  it('runs files that exist, from one image built by the Dockerfile, and pins every image', () => {
    const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    // The image holds each entry point compiled from its source by scripts/build-image.sh.
    const built = readFileSync(path.join(repoRoot, 'scripts', 'build-image.sh'), 'utf8');
    const compiled = (entry: string) =>
      /^[\w/-]+\.js$/.test(entry) &&
      existsSync(path.join(repoRoot, entry.replace(/\.js$/, '.ts'))) &&
      built.includes(entry.replace(/\.js$/, '.ts'));
    const cmd = /CMD \["node", (?:"--[^"]+", )*"([^"]+)"\]/.exec(dockerfile)?.[1];
    expect(cmd && compiled(cmd)).toBe(true);
    for (const name of persona) {
      const s = services[name] as Service;
      expect(s.image).toBe('persona:local');
      const entry = s.command?.find((a) => a.endsWith('.js')) as string;
      expect(compiled(entry), `${name} runs ${entry}`).toBe(true);
    }
    expect(services['gateway-sim']?.build).toBe('.');
    for (const [name, s] of Object.entries(services)) {
      if (s.image === 'persona:local') continue;
      expect(s.image, `${name} pins its image`).toMatch(/^[\w./-]+:v?\d[\w.-]*$/);
    }
    expect(services.neo4j?.image).toMatch(/^neo4j:5\.26/);
    // Worker Deployments (Server 1.28 and later), and the promote a versioned worker waits for.
    expect(Number(/auto-setup:1\.(\d+)/.exec(services.temporal?.image ?? '')?.[1])).toBeGreaterThanOrEqual(28);
    expect(services.deploy?.command?.slice(-2)).toEqual(['scripts/deploy.js', 'promote']);
    expect(services.deploy?.depends_on?.worker?.condition).toBe('service_healthy');
    // The worker and the api start only once the search attributes are registered (below).
    for (const name of ['worker', 'api'])
      expect(services[name]?.depends_on?.['temporal-setup']?.condition).toBe('service_completed_successfully');
    expect(services['temporal-ui']?.environment?.TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('runs Prometheus on ops/prometheus, scraping the api, the worker and Temporal where they serve /metrics', () => {
    const prometheus = services.prometheus as Service & { volumes: string[]; secrets?: string[] };
    expect(prometheus.volumes).toContain('./ops/prometheus:/etc/prometheus:ro');
    const config = parse(readFileSync(path.join(repoRoot, 'ops', 'prometheus', 'prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: {
        job_name: string;
        static_configs: { targets: string[] }[];
        authorization?: { type: string; credentials_file: string };
      }[];
    };
    for (const file of config.rule_files)
      expect(existsSync(path.join(repoRoot, 'ops', 'prometheus', file)), file).toBe(true);
    const targets = Object.fromEntries(
      config.scrape_configs.map((j) => [j.job_name, j.static_configs.flatMap((c) => c.targets)]),
    );
    // The api serves /metrics on its REST port, the worker on its health port, Temporal where
    // PROMETHEUS_ENDPOINT says, on this network only (its port is not published).
    const temporalMetrics = /^0\.0\.0\.0:(\d+)$/.exec(services.temporal?.environment?.PROMETHEUS_ENDPOINT ?? '')?.[1];
    expect(temporalMetrics).toBeDefined();
    expect((services.temporal?.ports ?? []).map((p) => p.split(':').at(-1))).not.toContain(temporalMetrics);
    expect(targets).toEqual({
      'persona-api': [`api:${loadConfig(envOf('api')).PERSONA_HTTP_PORT}`],
      'persona-worker': [`worker:${loadConfig(envOf('worker')).PERSONA_WORKER_HTTP_PORT}`],
      temporal: [`temporal:${temporalMetrics}`],
    });
    // The api and the worker answer only with the metrics token (production requires it): Prometheus
    // sends it, from the secret the compose makes of the same variable.
    expect(loadConfig(envOf('worker')).PERSONA_METRICS_TOKEN).toBe('sample-metrics-token');
    expect(compose.secrets?.['metrics-token']).toEqual({ environment: 'PERSONA_METRICS_TOKEN' });
    expect(prometheus.secrets).toEqual(['metrics-token']);
    for (const job of config.scrape_configs.filter((j) => j.job_name.startsWith('persona-')))
      expect(job.authorization, job.job_name).toEqual({
        type: 'Bearer',
        credentials_file: '/run/secrets/metrics-token',
      });
  });

  describe('temporal-setup', () => {
    /**
     * Runs the one-shot's script (Compose's `$$` is a `$` in the container) with a stand-in for
     * the Temporal CLI on PATH that knows the attributes in `registered` and, unless `refuse`
     * names it, registers what it is asked to: the names it was asked for, and the exit code.
     */
    function runSetup(registered: string[], refuse: string[] = []): { created: string[]; code: number | null } {
      const entry = services['temporal-setup']?.entrypoint ?? [];
      expect(entry.slice(0, 2)).toEqual(['sh', '-c']);
      const script = (entry[2] ?? '').replace(/\$\$/g, '$');
      const dir = mkdtempSync(path.join(tmpdir(), 'temporal-setup-'));
      const known = path.join(dir, 'known');
      const created = path.join(dir, 'created');
      writeFileSync(known, registered.map((n) => `${n}\n`).join(''));
      writeFileSync(created, '');
      // `temporal operator search-attribute create … --name N --type Keyword` and `… list`.
      const cli = [
        '#!/bin/sh',
        'case "$3" in',
        '  create)',
        '    while [ $# -gt 0 ]; do [ "$1" = --name ] && name=$2; shift; done',
        '    echo "$name" >> "$CREATED"',
        '    grep -qx "$name" "$KNOWN" && { echo "already exists" >&2; exit 1; }',
        '    case " $REFUSE " in *" $name "*) exit 1 ;; esac',
        '    echo "$name" >> "$KNOWN" ;;',
        '  list) echo "Name Type"; sed \'s/$/ Keyword/\' "$KNOWN" ;;',
        'esac',
      ].join('\n');
      writeFileSync(path.join(dir, 'temporal'), `${cli}\n`);
      chmodSync(path.join(dir, 'temporal'), 0o755);
      const run = spawnSync('sh', ['-c', script], {
        env: { PATH: `${dir}:${process.env.PATH}`, KNOWN: known, CREATED: created, REFUSE: refuse.join(' ') },
        encoding: 'utf8',
      });
      return { created: readFileSync(created, 'utf8').split('\n').filter(Boolean), code: run.status };
    }
    const required = requiredSearchAttributes.map((a) => a.name);

    it('registers every search attribute the workflows set, each as a Keyword', () => {
      expect(requiredSearchAttributes.every((a) => a.type === 'Keyword')).toBe(true);
      expect(runSetup([])).toEqual({ created: required, code: 0 });
    });

    it('adds what an older namespace lacks, and succeeds when everything is there', () => {
      expect(runSetup(['PersonaCustomerId'])).toEqual({ created: required, code: 0 });
      expect(runSetup(required).code).toBe(0);
    });

    it('fails (and so holds the worker and the api back) when one could not be registered', () => {
      expect(runSetup([], ['PersonaAttentionReason']).code).not.toBe(0);
    });
  });
});
