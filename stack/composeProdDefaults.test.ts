/**
 * What docker-compose.prod.yml must not leave open (docs/deployment.md, "Safe by default"): secrets
 * only as files, which scripts/compose-secrets.sh writes; Temporal behind mTLS with a read-only UI;
 * Kafka behind SASL_SSL with an ACL per principal and nothing without one; every service with rotated
 * logs and a memory limit, every long-running one with a health check. Static, as the rest of the
 * file's checks (stack/composeProd.test.ts): no Docker engine runs here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../config/env';
import { SECRET_VARIABLES } from '../config/envFiles';

interface Service {
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  logging?: { driver: string; options: Record<string, string> };
  deploy?: { resources?: { limits?: { memory?: string; cpus?: string } } };
  secrets?: (string | { source: string; target: string })[];
  restart?: string;
  hostname?: string;
  cap_drop?: string[];
  security_opt?: string[];
  read_only?: boolean;
  tmpfs?: string[];
}
const read = (...parts: string[]) => readFileSync(path.join(repoRoot, ...parts), 'utf8');
const compose = parse(read('docker-compose.prod.yml'), { merge: true }) as {
  services: Record<string, Service>;
  secrets: Record<string, { file?: string }>;
};
const services = Object.entries(compose.services);
const env = (name: string) => compose.services[name]?.environment ?? {};
/** `${X:-default}` as compose reads it with X unset. */
const byDefault = (v: string) => v.replace(/\$\{\w+:-([^}]*)\}/g, '$1');
const secretsDir = mkdtempSync(path.join(tmpdir(), 'persona-compose-secrets-'));
execFileSync('bash', [path.join(repoRoot, 'scripts', 'compose-secrets.sh'), secretsDir]);
const openssl = (...args: string[]) => spawnSync('openssl', args, { encoding: 'utf8' });

describe('docker-compose.prod.yml, safe by default', () => {
  it('passes every secret as a file the secrets script writes, none as a variable', () => {
    for (const [name, s] of services) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        expect(SECRET_VARIABLES as readonly string[], `${name}: ${key} is a secret in a variable`).not.toContain(key);
        expect(/PASSWORD|SECRET|TOKEN/.test(key) && !key.endsWith('_FILE'), `${name}: ${key}`).toBe(false);
        // A variable the operator must set (`${X:?…}`) is a secret handed over in the environment.
        expect(String(value), `${name}: ${key}`).not.toMatch(/\$\{\w+:\?/);
      }
      for (const secret of s.secrets ?? []) {
        const source = typeof secret === 'string' ? secret : secret.source;
        expect(compose.secrets[source], `${name} uses ${source}`).toEqual({ file: `./secrets/${source}` });
      }
    }
    for (const [source] of Object.entries(compose.secrets))
      expect(existsSync(path.join(secretsDir, source)), `compose-secrets.sh writes ${source}`).toBe(true);
    // A path in a variable names a secret the service mounts.
    for (const [name, s] of services) {
      const mounted = (s.secrets ?? []).map((x) => (typeof x === 'string' ? `/run/secrets/${x}` : x.target));
      for (const [key, value] of Object.entries(s.environment ?? {}))
        if (String(value).startsWith('/run/secrets/') || String(value).startsWith('/etc/kafka/secrets/'))
          expect(mounted, `${name}: ${key}`).toContain(value);
    }
  });

  it('writes certificates the services check each other by: one CA, the names they dial, both ways', () => {
    // Each certificate: its CA (Kafka's and Temporal's apart), its CN and SAN, and what it may be:
    // a server (and its peers' client), or a client alone.
    const server = 'TLS Web Server Authentication, TLS Web Client Authentication';
    const client = 'X509v3 Extended Key Usage: \n    TLS Web Client Authentication\n';
    const names: [string, string, string, string][] = [
      ['kafka-1', 'kafka-ca', 'kafka-1', server],
      ['kafka-2', 'kafka-ca', 'kafka-2', server],
      ['kafka-3', 'kafka-ca', 'kafka-3', server],
      ['kafka-admin', 'kafka-ca', 'kafka-admin', client],
      ['temporal', 'temporal-ca', env('temporal').TEMPORAL_TLS_FRONTEND_SERVER_NAME ?? '', server],
      ['temporal-persona', 'temporal-ca', 'persona', client],
      ['temporal-ui', 'temporal-ca', 'temporal-ui', client],
      ['temporal-admin', 'temporal-ca', 'temporal-admin', client],
    ];
    for (const [file, ca, cn, usage] of names) {
      const crt = path.join(secretsDir, `${file}.crt`);
      const other = ca === 'kafka-ca' ? 'temporal-ca' : 'kafka-ca';
      expect(openssl('verify', '-CAfile', path.join(secretsDir, `${ca}.crt`), crt).stdout.trim()).toBe(`${crt}: OK`);
      expect(openssl('verify', '-CAfile', path.join(secretsDir, `${other}.crt`), crt).status, file).not.toBe(0);
      const text = openssl('x509', '-in', crt, '-noout', '-subject', '-ext', 'subjectAltName,extendedKeyUsage').stdout;
      expect(text).toMatch(new RegExp(`CN ?= ?${cn}\\n`));
      expect(text).toContain(`DNS:${cn}`);
      expect(text, file).toContain(usage);
      // Kafka reads PKCS#8 keys only.
      expect(readFileSync(path.join(secretsDir, `${file}.key`), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    }
    for (const n of ['1', '2', '3']) expect(compose.services[`kafka-${n}`]?.hostname).toBe(`kafka-${n}`);
    expect(env('temporal').TEMPORAL_TLS_FRONTEND_SERVER_NAME).toBe(env('api').TEMPORAL_TLS_SERVER_NAME);
    // Run again, it keeps what is there: a second run would otherwise change every key.
    const before = readFileSync(path.join(secretsDir, 'token-keys'), 'utf8');
    execFileSync('bash', [path.join(repoRoot, 'scripts', 'compose-secrets.sh'), secretsDir]);
    expect(readFileSync(path.join(secretsDir, 'token-keys'), 'utf8')).toBe(before);
  });

  it("runs Persona's processes with no capability, no privilege to gain, and a read-only file system", () => {
    for (const name of ['api', 'worker', 'migrate', 'deploy', 'gateway-sim']) {
      const s = compose.services[name] as Service;
      expect(s.cap_drop, name).toEqual(['ALL']);
      expect(s.security_opt, name).toEqual(['no-new-privileges:true']);
      expect([s.read_only, s.tmpfs], name).toEqual([true, ['/tmp']]);
    }
    // What the simulator writes, it writes under /tmp.
    expect(env('gateway-sim').PERSONA_STACK_DIR).toMatch(/^\/tmp\//);
  });

  it('runs Temporal behind mTLS for every client, the UI read-only unless told', () => {
    const t = env('temporal');
    expect(t.TEMPORAL_TLS_REQUIRE_CLIENT_AUTH).toBe('true');
    for (const key of ['TEMPORAL_TLS_CLIENT1_CA_CERT', 'TEMPORAL_TLS_CLIENT2_CA_CERT', 'TEMPORAL_TLS_SERVER_CA_CERT'])
      expect(t[key], key).toBe('/run/secrets/temporal-ca.crt');
    for (const name of ['api', 'worker', 'migrate', 'deploy']) {
      const e = env(name);
      expect(e.TEMPORAL_ALLOW_PLAINTEXT, name).toBeUndefined();
      expect([e.TEMPORAL_TLS_CERT_FILE, e.TEMPORAL_TLS_KEY_FILE], name).toEqual([
        '/run/secrets/temporal-persona.crt',
        '/run/secrets/temporal-persona.key',
      ]);
    }
    const ui = env('temporal-ui');
    expect(byDefault(ui.TEMPORAL_DISABLE_WRITE_ACTIONS ?? '')).toBe('true');
    expect([ui.TEMPORAL_TLS_CERT, ui.TEMPORAL_TLS_ENABLE_HOST_VERIFICATION]).toEqual([
      '/run/secrets/temporal-ui.crt',
      'true',
    ]);
    expect(env('temporal-setup').TEMPORAL_TLS_CLIENT_CERT_PATH).toBe('/run/secrets/temporal-admin.crt');
  });

  it('runs Kafka with no plaintext listener and nothing allowed without an ACL', () => {
    for (const n of ['1', '2', '3']) {
      const k = env(`kafka-${n}`);
      const protocols = Object.fromEntries(
        (k.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP ?? '').split(',').map((p) => p.split(':')),
      );
      expect(protocols).toEqual({ CONTROLLER: 'SSL', INTERNAL: 'SSL', CLIENT: 'SASL_SSL' });
      expect(k.KAFKA_SSL_CLIENT_AUTH).toBe('required');
      expect(k.KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS).toBe('SCRAM-SHA-512');
      expect(k.KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND).toBe('false');
      expect(k.KAFKA_AUTHORIZER_CLASS_NAME).toBe('org.apache.kafka.metadata.authorizer.StandardAuthorizer');
      expect(k.KAFKA_SUPER_USERS).toBe('User:kafka-1;User:kafka-2;User:kafka-3;User:kafka-admin');
      // The image's own keystore handling (for listeners named SSL or SASL_*) would replace the PEM stores.
      expect(k.KAFKA_ADVERTISED_LISTENERS).not.toMatch(/SSL:\/\/|SASL_/);
    }
    for (const name of ['api', 'worker']) {
      const e = env(name);
      expect([e.KAFKA_TLS, e.KAFKA_SASL_MECHANISM, e.KAFKA_SASL_USERNAME]).toEqual([
        'true',
        'SCRAM-SHA-512',
        `persona-${name}`,
      ]);
      expect(e.KAFKA_ALLOW_PLAINTEXT).toBeUndefined();
    }
  });

  it("gives each principal its own topics' rights alone (ops/kafka/setup.sh)", () => {
    const script = read('ops', 'kafka', 'setup.sh');
    const grants = [...script.matchAll(/^allow (\S+) (.*)$/gm)].map((m) => ({ who: m[1], what: m[2] ?? '' }));
    const writers = (topic: string) =>
      grants.filter((g) => /--operation Write/.test(g.what) && g.what.includes(topic)).map((g) => g.who);
    expect(writers('"$failures"')).toEqual(['synapse']);
    expect(writers('"$fraud"')).toEqual(['chimera']);
    expect(writers('"$routing"')).toEqual(['cerebrum']);
    expect(writers('"$events"')).toEqual(['persona-worker']);
    expect(writers('"$dead_letters"')).toEqual(['persona-api']);
    // No grant on every topic or group, none on the cluster.
    for (const g of grants) expect(g.what, g.who).not.toMatch(/--topic '\*'|--group '\*'|--cluster/);
    // The api and the worker start once the principals and their ACLs are in place.
    const deps = compose as unknown as {
      services: Record<string, { depends_on?: Record<string, { condition: string }> }>;
    };
    for (const name of ['api', 'worker'])
      expect(deps.services[name]?.depends_on?.['kafka-setup']?.condition, name).toBe('service_completed_successfully');
  });

  it("sets each principal's SCRAM credential as kafka-configs.sh reads it from a file, no password in argv", () => {
    // Stand-ins for the image's tools: each records its arguments and, for a credential, the file.
    const bin = mkdtempSync(path.join(tmpdir(), 'persona-kafka-bin-'));
    const log = path.join(bin, 'calls');
    for (const tool of ['kafka-configs.sh', 'kafka-acls.sh']) {
      const body = [
        '#!/bin/bash',
        `printf '%s\\n' "${tool} $*" >> "${log}"`,
        'while [ $# -gt 0 ]; do [ "$1" = --add-config-file ] && cat "$2" >> "' + log + '"; shift; done',
      ].join('\n');
      writeFileSync(path.join(bin, tool), body, { mode: 0o755 });
    }
    const run = spawnSync('bash', [path.join(repoRoot, 'ops', 'kafka', 'setup.sh')], {
      env: { PATH: process.env.PATH, KAFKA_BIN: bin, SECRETS_DIR: secretsDir },
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    const calls = readFileSync(log, 'utf8');
    for (const principal of ['persona-api', 'persona-worker', 'synapse', 'chimera', 'cerebrum', 'oracle']) {
      const password = readFileSync(path.join(secretsDir, `kafka-${principal}.password`), 'utf8').trim();
      // kafka-configs.sh strips brackets from --add-config only: in a file it refuses them.
      expect(calls).toContain(`\nSCRAM-SHA-512=iterations=8192,password=${password}\n`);
      expect(calls.split('\n').filter((l) => l.startsWith('kafka-') && l.includes(password))).toEqual([]);
      expect(calls).toContain(`--entity-type users --entity-name ${principal} --add-config-file`);
    }
    expect(calls).toContain(
      '--allow-principal User:chimera --operation Write --operation Describe --topic chimera.fraud-outcomes.v1',
    );
  });

  it('rotates every log, limits every service, and checks the health of every one that stays up', () => {
    for (const [name, s] of services) {
      expect(s.logging?.driver, name).toBe('json-file');
      expect(s.logging?.options['max-size'], name).toMatch(/^\d+m$/);
      expect(Number(s.logging?.options['max-file']), name).toBeGreaterThan(1);
      expect(s.deploy?.resources?.limits?.memory, name).toMatch(/^\d+[mg]$/);
      if (s.restart !== 'no') expect(s.healthcheck?.test.length, `${name} has a health check`).toBeGreaterThan(0);
    }
  });
});
