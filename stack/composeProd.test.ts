/**
 * docker-compose.prod.yml cannot be started here (no Docker engine), so it is checked statically,
 * as stack/compose.test.ts checks the simple file: every variable it gives a Persona service is one
 * config/env.ts knows and, with the secrets filled in, loads as a production configuration; the
 * addresses point at services of the file on the ports they listen on; images are pinned; Temporal
 * runs from the server image on a schema a job set up, with its shard count set; the api and the
 * worker run as replicas without host ports, behind HAProxy, whose configuration passes HAProxy's
 * own check (`haproxy -c`, as installed by CI) and routes by customer to the replicas ready for each
 * kind of request; Prometheus finds every replica. The one-shots' scripts run against stand-ins for
 * the tools they call.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { BlockList } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { API_NODE_ARGS, envSchema, loadConfig, repoRoot } from '../config/env';
import { requiredSearchAttributes } from '../temporal/searchAttributes';

interface Service {
  image?: string;
  profiles?: string[];
  labels?: Record<string, string>;
  entrypoint?: string[];
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  networks?: Record<string, { ipv4_address?: string } | null>;
  container_name?: string;
  restart?: string;
}

const read = (...parts: string[]): string => readFileSync(path.join(repoRoot, ...parts), 'utf8');
const compose = parse(read('docker-compose.prod.yml'), { merge: true }) as {
  name?: string;
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  networks: { default: { name?: string; external?: boolean } };
  secrets?: Record<string, { file?: string }>;
};
const services = compose.services;
/** Persona's image, tagged by the version scripts/compose-deploy.sh runs. */
const PERSONA_IMAGE =
  '${PERSONA_IMAGE:-persona}:${PERSONA_VERSION:?the image tag to run (scripts/compose-deploy.sh sets it)}';
/** Every service that runs Persona's image, and the long-running ones among them. */
const persona = ['api', 'worker', 'gateway-sim', 'migrate', 'deploy'] as const;
const haproxyFile = path.join(repoRoot, 'ops', 'haproxy', 'haproxy.prod.cfg');

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

/** The secrets the file mounts under /run/secrets, as scripts/compose-secrets.sh writes them. */
const secretsDir = mkdtempSync(path.join(tmpdir(), 'persona-compose-secrets-'));
const made = spawnSync('bash', [path.join(repoRoot, 'scripts', 'compose-secrets.sh'), secretsDir], {
  encoding: 'utf8',
});
if (made.status !== 0) throw new Error(`compose-secrets.sh failed: ${made.stderr}`);
/** A service's environment as its process sees it, the secret files where the script wrote them. */
const envOf = (name: string): Record<string, string> =>
  Object.fromEntries(
    Object.entries(services[name]?.environment ?? {}).map(([k, v]) => [
      k,
      resolve(v).replace(/^\/run\/secrets\//, `${secretsDir}/`),
    ]),
  );
const hostPort = (url: string): [string, number] => {
  const u = new URL(url.includes('://') ? url : `x://${url}`);
  return [u.hostname, Number(u.port)];
};
const api = loadConfig(envOf('api'));
const worker = loadConfig(envOf('worker'));

/** HAProxy's configuration by section heading (`backend rest_reads`): each section's lines, without comments. */
const haproxyText = readFileSync(haproxyFile, 'utf8');
const haproxySections = new Map<string, string[]>();
{
  let current: string[] = [];
  for (const raw of haproxyText.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim().replace(/\s+/g, ' ');
    if (line === '') continue;
    if (/^\S/.test(raw)) haproxySections.set(line, (current = []));
    else current.push(line);
  }
}
function section(heading: string): string[] {
  const lines = haproxySections.get(heading);
  expect(lines, heading).toBeDefined();
  return lines ?? [];
}

/**
 * Runs a one-shot's `sh -c` script (Compose's `$$` is a `$` in the container) with the given
 * stand-ins on PATH (name → shell script) and environment: its exit code.
 */
function runScript(service: string, stubs: Record<string, string>, env: Record<string, string>): number | null {
  const entry = services[service]?.entrypoint ?? [];
  expect(entry.slice(0, 2), service).toEqual(['sh', '-c']);
  // The secret files where scripts/compose-secrets.sh wrote them.
  const script = (entry[2] ?? '').replace(/\$\$/g, '$').replaceAll('/run/secrets/', `${secretsDir}/`);
  const dir = mkdtempSync(path.join(tmpdir(), `${service}-`));
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(dir, name), 0o755);
  }
  const run = spawnSync('sh', ['-c', script], {
    env: { PATH: `${dir}:${process.env.PATH}`, ...env },
    encoding: 'utf8',
  });
  return run.status;
}

/** A temporary file holding `lines`, one a line; its path. */
function tempFile(prefix: string, lines: string[] = []): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), prefix)), 'f');
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
  return file;
}
const linesOf = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe('docker-compose.prod.yml', () => {
  it('is a project of its own beside docker-compose.yml, each service waited for with a health check', () => {
    // Its own name: its own volumes and network, never the simple file's.
    expect(compose.name).toBe('persona-prod');
    expect(existsSync(path.join(repoRoot, 'docker-compose.yml'))).toBe(true);
    expect(Object.keys(services).sort()).toEqual([
      'api',
      'deploy',
      'gateway-sim',
      'kafka-1',
      'kafka-2',
      'kafka-3',
      'kafka-setup',
      'lb',
      'migrate',
      'neo4j',
      'prometheus',
      'temporal',
      'temporal-db',
      'temporal-schema',
      'temporal-setup',
      'temporal-ui',
      'worker',
    ]);
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        if (condition === 'service_healthy')
          expect(services[dep]?.healthcheck, `${dep} needs a health check`).toBeDefined();
        // A step others wait for ends: it is never restarted, and runs once.
        if (condition === 'service_completed_successfully') {
          expect(services[dep]?.restart, `${dep} is a one-shot`).toBe('no');
          expect(services[dep]?.deploy?.replicas, `${dep} runs once`).toBeUndefined();
        }
      }
    }
    const named = Object.values(services)
      .flatMap((s) => s.volumes ?? [])
      .map((v) => v.split(':')[0] as string)
      .filter((v) => !v.startsWith('.'));
    expect(Object.keys(compose.volumes).sort()).toEqual([...new Set(named)].sort());
  });

  it('pins every image, and runs Temporal from the server image on a schema a job set up', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.image === PERSONA_IMAGE) continue;
      expect(s.image, `${name} pins its image`).toMatch(/^[\w./-]+:v?\d[\w.-]*$/);
      expect(s.image).not.toMatch(/auto-setup|:latest$/);
    }
    expect(services.neo4j?.image).toMatch(/^neo4j:5\.26/);
    // Worker Deployments (Server 1.28 and later), from the image that only runs the server.
    const server = /^temporalio\/server:(1\.(\d+)\.\d+)$/.exec(services.temporal?.image ?? '');
    expect(Number(server?.[2])).toBeGreaterThanOrEqual(28);
    // The schema is the one of the server's release (the admin tools carry it), and so is the CLI.
    for (const job of ['temporal-schema', 'temporal-setup'])
      expect(services[job]?.image, job).toMatch(new RegExp(`^temporalio/admin-tools:${server?.[1]}-`));
    expect(services.temporal?.depends_on).toEqual({
      'temporal-schema': { condition: 'service_completed_successfully' },
    });
    expect(services['temporal-schema']?.depends_on?.['temporal-db']?.condition).toBe('service_healthy');
    expect(services['temporal-setup']?.depends_on?.temporal?.condition).toBe('service_healthy');

    // The history shard count is the cluster's for good: set, not the image's development default.
    const temporal = services.temporal?.environment ?? {};
    expect(temporal.NUM_HISTORY_SHARDS).toMatch(/^\d+$/);
    expect(Number(temporal.NUM_HISTORY_SHARDS)).toBeGreaterThan(4);

    // The server and the schema job reach the same PostgreSQL, as the user it creates, with the same
    // password (the secret file each reads), on the port it listens on (the default).
    const db = services['temporal-db']?.environment ?? {};
    const schema = services['temporal-schema']?.environment ?? {};
    expect(db.POSTGRES_PASSWORD_FILE).toBe('/run/secrets/postgres-password');
    expect(services.temporal?.entrypoint?.join(' ')).toContain('POSTGRES_PWD=$$(cat /run/secrets/postgres-password)');
    expect(services['temporal-schema']?.entrypoint?.join(' ')).toContain(
      'SQL_PASSWORD=$$(cat /run/secrets/postgres-password)',
    );
    expect(db.PGPORT).toBeUndefined();
    expect([temporal.DB, temporal.POSTGRES_SEEDS, temporal.DB_PORT]).toEqual(['postgres12', 'temporal-db', '5432']);
    expect(temporal.POSTGRES_USER).toEqual(db.POSTGRES_USER);
    expect([schema.SQL_PLUGIN, schema.SQL_HOST, schema.SQL_PORT]).toEqual([
      temporal.DB,
      temporal.POSTGRES_SEEDS,
      temporal.DB_PORT,
    ]);
    expect(schema.SQL_USER).toEqual(db.POSTGRES_USER);
    expect([temporal.DBNAME, temporal.VISIBILITY_DBNAME]).toEqual(['temporal', 'temporal_visibility']);
    // The frontend on the port Persona, the UI and the jobs use.
    expect(temporal.FRONTEND_GRPC_PORT ?? '7233').toBe('7233');
    expect(services.temporal?.healthcheck?.test.join(' ')).toContain('temporal:7233');
    expect(services['temporal-ui']?.environment?.TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  describe('temporal-schema', () => {
    /**
     * The schema job against a stand-in for temporal-sql-tool that knows the databases in `existing`,
     * creates the others unless `refuse` names them, and needs a database for setup and update.
     */
    function runSchema(existing: string[], refuse: string[] = []): { calls: string[]; code: number | null } {
      const calls = tempFile('calls-');
      const dbs = tempFile('dbs-', existing);
      const tool = [
        'db=',
        'while [ $# -gt 0 ]; do case "$1" in --db) db=$2; shift 2 ;; *) break ;; esac; done',
        'echo "$db $*" >> "$CALLS"',
        'case "$1" in',
        '  create-database)',
        '    grep -qx "$db" "$DBS" && { echo "database exists" >&2; exit 1; }',
        '    case " $REFUSE " in *" $db "*) exit 1 ;; esac',
        '    echo "$db" >> "$DBS" ;;',
        '  setup-schema|update-schema) grep -qx "$db" "$DBS" || { echo "no database $db" >&2; exit 1; } ;;',
        '  *) exit 2 ;;',
        'esac',
      ].join('\n');
      const code = runScript(
        'temporal-schema',
        { 'temporal-sql-tool': tool },
        { CALLS: calls, DBS: dbs, REFUSE: refuse.join(' ') },
      );
      return { calls: linesOf(calls), code };
    }
    const schemaDir = '/etc/temporal/schema/postgresql/v12';
    const setup = [
      'temporal setup-schema -v 0.0',
      `temporal update-schema -d ${schemaDir}/temporal/versioned`,
      'temporal_visibility setup-schema -v 0.0',
      `temporal_visibility update-schema -d ${schemaDir}/visibility/versioned`,
    ];

    it('creates the history and the visibility database, then sets up and upgrades each schema', () => {
      expect(runSchema([])).toEqual({
        calls: ['temporal create-database', 'temporal_visibility create-database', ...setup],
        code: 0,
      });
    });

    it('succeeds again on databases that exist (every `up` runs it; update-schema applies what is missing)', () => {
      expect(runSchema(['temporal', 'temporal_visibility'])).toEqual({
        calls: ['temporal create-database', 'temporal_visibility create-database', ...setup],
        code: 0,
      });
    });

    it('fails (and so holds Temporal back) when a database could not be created', () => {
      expect(runSchema(['temporal'], ['temporal_visibility']).code).not.toBe(0);
    });
  });

  describe('temporal-setup', () => {
    /**
     * The setup job against a stand-in for the Temporal CLI: a namespace that exists when
     * `namespace` is true (created otherwise, its retention noted), usable after `lag` failed
     * lists, the search attributes in `registered`, registering others unless `refuse` names them.
     */
    function runSetup(opts: { namespace: boolean; registered?: string[]; refuse?: string[]; lag?: number }): {
      code: number | null;
      created: string[];
      namespaces: string[];
    } {
      const known = tempFile('known-', opts.registered ?? []);
      const created = tempFile('created-');
      const namespaces = tempFile('namespaces-', opts.namespace ? ['default'] : []);
      const lag = tempFile(
        'lag-',
        Array.from({ length: opts.lag ?? 0 }, () => 'x'),
      );
      const cli = [
        'args="$*"',
        'arg() { while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }',
        'want=--address; [ "$(arg "$@")" = temporal:7233 ] || { echo "wrong address" >&2; exit 3; }',
        'want=--namespace; ns=$(arg "$@")',
        'case "$2 $3" in',
        '  "namespace describe") grep -qx "$ns" "$NAMESPACES" ;;',
        '  "namespace create")',
        '    want=--retention; echo "$ns $(arg "$@")" >> "$NAMESPACES.created"; echo "$ns" >> "$NAMESPACES" ;;',
        '  "search-attribute list")',
        '    grep -qx "$ns" "$NAMESPACES" || exit 1',
        '    if [ -s "$LAG" ]; then sed -i 1d "$LAG"; exit 1; fi',
        '    echo "Name Type"; sed "s/$/ Keyword/" "$KNOWN" ;;',
        '  "search-attribute create")',
        '    want=--name; name=$(arg "$@"); want=--type; [ "$(arg "$@")" = Keyword ] || exit 4',
        '    echo "$name" >> "$CREATED"',
        '    grep -qx "$name" "$KNOWN" && { echo "already exists" >&2; exit 1; }',
        '    case " $REFUSE " in *" $name "*) exit 1 ;; esac',
        '    echo "$name" >> "$KNOWN" ;;',
        '  *) echo "unexpected: $args" >&2; exit 2 ;;',
        'esac',
      ].join('\n');
      writeFileSync(`${namespaces}.created`, '');
      const code = runScript(
        'temporal-setup',
        // No real waiting between the lists.
        { temporal: cli, sleep: 'exit 0' },
        { KNOWN: known, CREATED: created, NAMESPACES: namespaces, LAG: lag, REFUSE: (opts.refuse ?? []).join(' ') },
      );
      return { code, created: linesOf(created), namespaces: linesOf(`${namespaces}.created`) };
    }
    const required = requiredSearchAttributes.map((a) => a.name);

    it('creates the namespace, with the retention Persona keeps history keys for, and every search attribute', () => {
      expect(requiredSearchAttributes.every((a) => a.type === 'Keyword')).toBe(true);
      // A new namespace reaches the frontend's cache a moment later: the job waits for it.
      expect(runSetup({ namespace: false, lag: 3 })).toEqual({
        code: 0,
        created: required,
        namespaces: [`default ${worker.PERSONA_HISTORY_RETENTION_DAYS}d`],
      });
      expect(worker.TEMPORAL_NAMESPACE).toBe('default');
    });

    it('leaves an existing namespace alone and adds what it lacks', () => {
      expect(runSetup({ namespace: true, registered: ['PersonaCustomerId'] })).toEqual({
        code: 0,
        created: required,
        namespaces: [],
      });
      expect(runSetup({ namespace: true, registered: required }).code).toBe(0);
    });

    it('fails (and so holds the worker and the api back) when an attribute or the namespace is missing', () => {
      for (const name of required) expect(runSetup({ namespace: true, refuse: [name] }).code, name).not.toBe(0);
      expect(runSetup({ namespace: false, lag: 1000 }).code).not.toBe(0);
    });
  });

  it('runs Kafka as three voting nodes of one cluster, replication 3 and min ISR 2, no unclean election', () => {
    const nodes = ['kafka-1', 'kafka-2', 'kafka-3'];
    const envs = nodes.map(envOf);
    expect(envs.map((e) => e.KAFKA_NODE_ID)).toEqual(['1', '2', '3']);
    expect(envs.map((e) => e.KAFKA_ADVERTISED_LISTENERS)).toEqual(
      nodes.map((n) => `INTERNAL://${n}:19093,CLIENT://${n}:9092`),
    );
    expect(new Set(nodes.map((n) => services[n]?.volumes?.[0])).size).toBe(3);
    for (const e of envs) {
      expect(e.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe('1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093');
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

  it('gives Persona’s services only variables the code reads, and they load as a production configuration', () => {
    const known = new Set(Object.keys(envSchema.shape));
    for (const name of persona) {
      const env = envOf(name);
      for (const key of Object.keys(env)) expect(known.has(key), `${name}: ${key} is not in config/env.ts`).toBe(true);
    }
    for (const name of ['api', 'worker', 'migrate', 'deploy'] as const) {
      const config = loadConfig(envOf(name));
      expect(config.NODE_ENV, name).toBe('production');
      expect(hostPort(config.NEO4J_URI)).toEqual(['neo4j', 7687]);
      if (config.NEO4J_URI.startsWith('neo4j'))
        expect(services.neo4j?.environment?.NEO4J_server_bolt_advertised__address).toBe('neo4j:7687');
      expect(hostPort(config.TEMPORAL_ADDRESS)).toEqual(['temporal', 7233]);
      const [gatewayHost, gatewayPort] = hostPort(config.PERSONA_GATEWAY_URL);
      expect(gatewayHost).toBe('gateway-sim');
      expect(loadConfig({ ...envOf(name), ...envOf('gateway-sim') }).PERSONA_GATEWAY_PORT).toBe(gatewayPort);
      // The api and the worker use Kafka, each as its own principal; the one-shots do not.
      if (name === 'migrate' || name === 'deploy') {
        expect(config.kafkaBrokers, name).toEqual([]);
        continue;
      }
      expect(config.kafkaBrokers).toEqual(['kafka-1:9092', 'kafka-2:9092', 'kafka-3:9092']);
      expect([config.KAFKA_TLS, config.KAFKA_SASL_MECHANISM]).toEqual(['true', 'SCRAM-SHA-512']);
      expect(config.KAFKA_SASL_USERNAME).toBe(`persona-${name}`);
      expect(config.kafkaSaslPassword?.()).toBe(
        readFileSync(path.join(secretsDir, `kafka-persona-${name}.password`), 'utf8').trim(),
      );
      expect(config.PERSONA_KAFKA_REPLICATION).toBe(3);
      expect(config.KAFKA_ALLOW_UNREPLICATED).toBe('false');
    }
    expect(envOf('gateway-sim').PERSONA_GATEWAY_HOST).toBe('0.0.0.0');
  });

  it('migrates once, before the workers and the apis; runs each build’s workers in a project of its own', () => {
    expect(services.migrate?.command).toEqual(['node', '--enable-source-maps', 'scripts/migrate.js']);
    for (const name of ['api', 'worker']) {
      expect(services[name]?.depends_on?.migrate, name).toEqual({ condition: 'service_completed_successfully' });
      expect(services[name]?.depends_on?.['temporal-setup'], name).toEqual({
        condition: 'service_completed_successfully',
      });
    }
    // The deploy steps run on demand (scripts/compose-deploy.sh: `run --rm --no-deps deploy promote <build>`).
    expect(services.deploy?.entrypoint).toEqual(['node', '--enable-source-maps', 'scripts/deploy.js']);
    expect(services.deploy?.profiles).toEqual(['tools']);
    expect(services.deploy?.depends_on).toBeUndefined();
    // The workers are never this project's: each build runs as a project of its own, labelled so
    // the script can tell the builds apart, and nothing here waits for them.
    expect(services.worker?.profiles).toEqual(['worker']);
    expect(services.worker?.labels).toEqual({
      'persona.role': 'worker',
      'persona.release': '${PERSONA_RELEASE:-persona-prod}',
      'persona.version': '${PERSONA_VERSION:?}',
      'persona.build-id': '${PERSONA_BUILD_ID:-}',
    });
    expect(services.api?.labels).toEqual({
      'persona.version': '${PERSONA_VERSION:?}',
      'persona.build-id': '${PERSONA_BUILD_ID:-}',
    });
    for (const [name, s] of Object.entries(services))
      if (name !== 'worker') expect(s.depends_on?.worker, `${name} waits for a worker`).toBeUndefined();
    for (const name of persona) {
      const s = services[name] as Service;
      expect(s.image, name).toBe(PERSONA_IMAGE);
      expect(s.build, `${name}: images are built and tagged by version, not by compose`).toBeUndefined();
      // The image holds the entry point compiled from this source (scripts/build-image.sh).
      const entry = [...(s.entrypoint ?? []), ...(s.command ?? [])]
        .find((arg) => arg.endsWith('.js'))
        ?.replace(/\.js$/, '.ts');
      expect(entry && existsSync(path.join(repoRoot, entry)), `${name} runs ${entry}`).toBe(true);
    }
    expect(services.api?.command?.slice(0, -2)).toEqual(['node', ...API_NODE_ARGS]);
  });

  it('runs the api and the worker as replicas with no host port, behind the balancer alone', () => {
    for (const name of ['api', 'worker']) {
      const s = services[name] as Service;
      expect(s.deploy?.replicas, name).toBeGreaterThanOrEqual(2);
      // `--scale` starts more beside them: no fixed host port, no fixed container name.
      expect(s.ports, name).toBeUndefined();
      expect(s.container_name, name).toBeUndefined();
    }
    expect(services.api?.healthcheck?.test.join(' ')).toContain(`:${api.PERSONA_HTTP_PORT}/readyz`);
    expect(services.worker?.healthcheck?.test.join(' ')).toContain(`:${worker.PERSONA_WORKER_HTTP_PORT}/readyz`);
    expect(services.worker?.environment?.PERSONA_WORKER_HTTP_PORT).toBe(String(worker.PERSONA_WORKER_HTTP_PORT));

    // The balancer publishes the api's two ports, on this host only (it speaks plaintext), and
    // nothing else publishes them.
    const lb = services.lb as Service;
    expect(lb.ports).toEqual([
      `127.0.0.1:${api.PERSONA_HTTP_PORT}:${api.PERSONA_HTTP_PORT}`,
      `127.0.0.1:${api.PERSONA_GRPC_PORT}:${api.PERSONA_GRPC_PORT}`,
    ]);
    for (const [name, s] of Object.entries(services)) {
      if (name === 'lb') continue;
      for (const p of s.ports ?? []) {
        const host = p.split(':').at(-2);
        expect([String(api.PERSONA_HTTP_PORT), String(api.PERSONA_GRPC_PORT)], `${name} publishes ${p}`).not.toContain(
          host,
        );
      }
    }
    expect(lb.volumes).toEqual(['./ops/haproxy/haproxy.prod.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro']);
    expect(lb.image).toMatch(/^haproxy:3\.\d+\.\d+$/);
    expect(lb.depends_on?.api?.condition).toBe('service_healthy');

    // The apis believe the balancer's X-Forwarded-For, and only its: a fixed address of the network,
    // outside the range Docker hands out to the other containers. The network is shared with every
    // worker build's project, so scripts/compose-deploy.sh creates it, with these addresses.
    const address = lb.networks?.default?.ipv4_address as string;
    expect(api.PERSONA_TRUSTED_PROXIES).toEqual([address]);
    expect(compose.networks.default).toEqual({ name: '${PERSONA_NETWORK:-persona-prod}', external: true });
    const script = read('scripts', 'compose-deploy.sh');
    const subnet = /^subnet=(\S+)$/m.exec(script)?.[1] as string;
    const range = /^ip_range=(\S+)$/m.exec(script)?.[1] as string;
    expect(script).toContain('--subnet "$subnet" --ip-range "$ip_range" \\\n    "$PERSONA_NETWORK"');
    const within = (cidr: string): boolean => {
      const [base, bits] = cidr.split('/') as [string, string];
      const list = new BlockList();
      list.addSubnet(base, Number(bits), 'ipv4');
      return list.check(address, 'ipv4');
    };
    expect(within(subnet)).toBe(true);
    expect(within(range)).toBe(false);
  });

  describe('ops/haproxy/haproxy.prod.cfg', () => {
    /** `haproxy -c` on a file, every warning an error: its exit code and what it said. */
    function haproxyCheck(file: string): { code: number | null; output: string } {
      const run = spawnSync('haproxy', ['-dW', '-c', '-f', file], { encoding: 'utf8' });
      if (run.error)
        throw new Error(`${run.error.message}: HAProxy checks the balancer's config (Debian: apt-get install haproxy)`);
      return { code: run.status, output: `${run.stdout}${run.stderr}` };
    }
    /** The backend a frontend sends `acl`-matched requests to, and the one it sends the rest to. */
    const routes = (frontend: string): { matched: string; rest: string; acl: string } => {
      const lines = section(`frontend ${frontend}`);
      const [, matched, acl] =
        /^use_backend (\S+) if (\S+)$/.exec(lines.find((l) => l.startsWith('use_backend')) ?? '') ?? [];
      const rest = /^default_backend (\S+)$/.exec(lines.find((l) => l.startsWith('default_backend')) ?? '')?.[1];
      return { matched: matched ?? '', rest: rest ?? '', acl: lines.find((l) => l.startsWith(`acl ${acl} `)) ?? '' };
    };

    it('passes HAProxy’s own check, without a warning', () => {
      const { code, output } = haproxyCheck(haproxyFile);
      expect(code, output).toBe(0);
    });

    it('and that check fails a broken copy (so the one above can fail)', () => {
      const broken = [
        `${haproxyText}\n  no-such-keyword\n`,
        // The servers are found through the resolvers section they name.
        haproxyText.replace('resolvers docker', 'resolvers elsewhere'),
      ];
      for (const copy of broken) {
        const file = path.join(mkdtempSync(path.join(tmpdir(), 'haproxy-')), 'haproxy.cfg');
        writeFileSync(file, copy);
        expect(haproxyCheck(file).code).not.toBe(0);
      }
    });

    it('finds the replicas in Docker’s DNS, forwards the caller’s address, and retries only connections', () => {
      expect(section('resolvers docker')).toContain('nameserver dns 127.0.0.11:53');
      const defaults = section('defaults');
      const server = defaults.find((l) => l.startsWith('default-server ')) ?? '';
      expect(server.split(' ')).toEqual(expect.arrayContaining(['resolvers', 'docker', 'init-addr', 'none']));
      expect(defaults).toContain('mode http');
      expect(defaults).toContain('option forwardfor');
      // Never a retry of a request a replica may be handling (docs/deployment.md).
      expect(defaults.filter((l) => l.startsWith('retry-on '))).toEqual(['retry-on conn-failure']);
      expect(section('frontend rest')).toContain('http-request deny if { path,url_dec -m sub -i /metrics }');
    });

    it('caps the connections of one client address on both frontends', () => {
      for (const frontend of ['rest', 'grpc']) {
        const lines = section(`frontend ${frontend}`);
        expect(lines, frontend).toEqual(
          expect.arrayContaining([
            'stick-table type ip size 100k expire 30s store conn_cur,conn_rate(1s)',
            'tcp-request connection track-sc0 src',
            'tcp-request connection reject if { sc0_conn_cur gt 100 } || { sc0_conn_rate gt 50 }',
          ]),
        );
      }
    });

    it('routes REST by customer: GETs to the replicas ready for reads, the rest to those ready for writes', () => {
      const rest = routes('rest');
      expect(section('frontend rest')).toContain(`bind :${api.PERSONA_HTTP_PORT}`);
      expect(rest.acl).toBe('acl read method GET');
      for (const [backend, check] of [
        [rest.matched, '/readyz/read'],
        [rest.rest, '/readyz/write'],
      ] as const) {
        const lines = section(`backend ${backend}`);
        expect(lines).toEqual(
          expect.arrayContaining([
            'balance hdr(x-persona-customer)',
            'hash-type consistent',
            `http-check send meth GET uri ${check}`,
          ]),
        );
        const servers = lines.filter((l) => l.startsWith('server-template '));
        expect(servers, backend).toHaveLength(1);
        expect(servers[0]).toMatch(new RegExp(`^server-template \\S+ \\d+ api:${api.PERSONA_HTTP_PORT} check$`));
      }
    });

    it('routes gRPC (h2c) by customer: the agents’ reads to replicas ready for reads, the rest for writes', () => {
      const grpc = routes('grpc');
      expect(section('frontend grpc')).toContain(`bind :${api.PERSONA_GRPC_PORT} proto h2`);
      // The read RPCs the acl names are the agent service's (proto/persona/v1/persona.proto).
      const proto = read('proto', 'persona', 'v1', 'persona.proto');
      const rpcs = [...proto.matchAll(/^\s*rpc (\w+)\(/gm)].map((m) => m[1]);
      const paths = grpc.acl.split(' ').slice(3);
      expect(grpc.acl.split(' ').slice(0, 3)).toEqual(['acl', expect.any(String), 'path']);
      expect(paths.map((p) => /^\/persona\.v1\.PersonaAgent\/(\w+)$/.exec(p)?.[1])).toEqual([
        'GetCustomerContext',
        'GetCheckoutOptions',
      ]);
      for (const p of paths) expect(rpcs).toContain(p.split('/').at(-1));
      for (const [backend, check] of [
        [grpc.matched, '/readyz/read'],
        [grpc.rest, '/readyz/write'],
      ] as const) {
        const lines = section(`backend ${backend}`);
        expect(lines).toEqual(
          expect.arrayContaining([
            'balance hdr(x-persona-customer)',
            'hash-type consistent',
            `http-check send meth GET uri ${check}`,
          ]),
        );
        // HTTP/2 to the gRPC port; the check in HTTP/1.1 on the REST port.
        const servers = lines.filter((l) => l.startsWith('server-template '));
        expect(servers, backend).toHaveLength(1);
        expect(servers[0]).toMatch(
          new RegExp(
            `^server-template \\S+ \\d+ api:${api.PERSONA_GRPC_PORT} proto h2 check port ${api.PERSONA_HTTP_PORT} ` +
              'check-proto h1$',
          ),
        );
      }
    });
  });

  describe('ops/prometheus/prometheus.prod.yml', () => {
    interface ScrapeConfig {
      job_name: string;
      static_configs?: { targets: string[] }[];
      dns_sd_configs?: { names: string[]; type: string; port: number }[];
      authorization?: { type: string; credentials_file: string };
    }
    const config = parse(read('ops', 'prometheus', 'prometheus.prod.yml')) as {
      rule_files: string[];
      scrape_configs: ScrapeConfig[];
    };
    const simple = parse(read('ops', 'prometheus', 'prometheus.yml')) as typeof config;
    const job = (name: string): ScrapeConfig | undefined => config.scrape_configs.find((j) => j.job_name === name);

    it('is the file the prometheus service loads, with the alert rules of the simple compose', () => {
      const prometheus = services.prometheus as Service & { command: string[] };
      expect(prometheus.volumes).toContain('./ops/prometheus:/etc/prometheus:ro');
      expect(prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.prod.yml');
      expect(config.rule_files).toEqual(simple.rule_files);
      for (const file of config.rule_files)
        expect(existsSync(path.join(repoRoot, 'ops', 'prometheus', file)), file).toBe(true);
      // The rules select on the simple file's job names.
      for (const { job_name } of simple.scrape_configs) expect(job(job_name), job_name).toBeDefined();
    });

    it('finds every api and worker replica in Docker’s DNS, on the port each serves /metrics on', () => {
      expect(job('persona-api')?.dns_sd_configs).toEqual([
        expect.objectContaining({ names: ['api'], type: 'A', port: api.PERSONA_HTTP_PORT }),
      ]);
      expect(job('persona-worker')?.dns_sd_configs).toEqual([
        expect.objectContaining({ names: ['worker'], type: 'A', port: worker.PERSONA_WORKER_HTTP_PORT }),
      ]);
      expect(job('persona-api')?.static_configs).toBeUndefined();
      expect(job('persona-worker')?.static_configs).toBeUndefined();
    });

    it('sends the metrics token the api and the worker require, from the secret file they read it from too', () => {
      expect(worker.PERSONA_METRICS_TOKEN).toBe(readFileSync(path.join(secretsDir, 'metrics-token'), 'utf8').trim());
      expect(compose.secrets?.['metrics-token']).toEqual({ file: './secrets/metrics-token' });
      expect((services.prometheus as Service & { secrets?: string[] }).secrets).toEqual(['metrics-token']);
      for (const name of ['persona-api', 'persona-worker'])
        expect(job(name)?.authorization, name).toEqual({
          type: 'Bearer',
          credentials_file: '/run/secrets/metrics-token',
        });
    });

    it('scrapes the balancer and Temporal where they serve their metrics', () => {
      const targets = config.scrape_configs.flatMap((j) => j.static_configs?.flatMap((c) => c.targets) ?? []);
      for (const target of targets) expect(services[target.split(':')[0] as string], target).toBeDefined();
      const exporter = /^bind :(\d+)$/.exec(section('frontend metrics')[0] ?? '')?.[1];
      expect(job('haproxy')?.static_configs).toEqual([{ targets: [`lb:${exporter}`] }]);
      const temporal = services.temporal?.environment?.PROMETHEUS_ENDPOINT ?? '';
      expect(job('temporal')?.static_configs).toEqual([{ targets: [`temporal:${temporal.split(':').at(-1)}`] }]);
      // Temporal's /metrics asks for no token: it stays on this network (its port is not published).
      expect((services.temporal?.ports ?? []).map((p) => p.split(':').at(-1))).not.toContain(
        temporal.split(':').at(-1),
      );
    });
  });
});
