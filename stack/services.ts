/**
 * The local stack's services: Neo4j (Bolt), the Temporal dev server with its UI, Kafka (KRaft, one
 * node or three: PERSONA_KAFKA_NODES) and the payment gateway simulator. `stackUp`
 * starts whatever is not already answering and waits until each one does; `stackDown` stops
 * what the stack started; `stackStatus` reports each service and its address.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Admin } from '@platformatic/kafka';
import { repoRoot, type Settings } from '../config/env';
import { createDriver, pingNeo4j } from '../graph/driver';
import { connectTemporal, describeNamespace, ensureSearchAttributes } from '../temporal/connection';
import { requiredSearchAttributes } from '../temporal/searchAttributes';
import {
  installStack,
  KAFKA_LOG4J,
  LOCAL_KAFKA_USER,
  localKafkaNodes,
  NEO4J_LAUNCHER_CLASS,
  stackPaths,
  type StackPaths,
} from './install';
import { isAlive, portOpen, readPid, startDaemon, stopDaemon, tail, waitUntil, type Daemon, type Log } from './process';

interface Service {
  name: string;
  daemon: Daemon;
  host: string;
  port: number;
  /** Start the process (the stack is installed). */
  start(p: StackPaths): number;
  /** Resolves true once the service answers like a client needs it to. */
  ready(): Promise<boolean>;
  /** Work to do once it is ready (e.g. register search attributes). */
  afterReady?(log: Log): Promise<void>;
  addresses(): string[];
  startTimeoutMs: number;
  stopGraceMs: number;
  /** A Kafka node: the nodes stop together (stackDown). */
  kafkaNode?: true;
}

export interface Launch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** One Neo4j server: its data folder, address, memory and the one user's credentials. */
export interface Neo4jInstance {
  home: string;
  host: string;
  port: number;
  heap: string;
  pageCacheMb: number;
  txMemoryMb: number;
  user: string;
  password: string;
  /** How long a transaction waits for its bookmarks before it fails (absent: Neo4j's 30 s; at least 1 s). */
  bookmarkWaitMs?: number;
}

/** How to start Neo4j (the launcher in stack/neo4j on the installed jars); SIGTERM stops it cleanly. */
export function neo4jLaunch(paths: StackPaths, n: Neo4jInstance): Launch {
  return {
    command: 'java',
    args: [
      `-Xmx${n.heap}`,
      `-Xms${n.heap}`,
      '-XX:+UseG1GC',
      '-cp',
      [paths.neo4jClasses, path.join(paths.neo4jLib, '*')].join(path.delimiter),
      NEO4J_LAUNCHER_CLASS,
    ],
    env: {
      ...process.env,
      PERSONA_NEO4J_HOME: n.home,
      PERSONA_NEO4J_BOLT_HOST: n.host,
      PERSONA_NEO4J_BOLT_PORT: String(n.port),
      PERSONA_NEO4J_PAGECACHE: String(n.pageCacheMb),
      PERSONA_NEO4J_TX_MEMORY: String(n.txMemoryMb),
      NEO4J_USER: n.user,
      NEO4J_PASSWORD: n.password,
      ...(n.bookmarkWaitMs === undefined ? {} : { PERSONA_NEO4J_BOOKMARK_WAIT_MS: String(n.bookmarkWaitMs) }),
    },
  };
}

/** One Temporal dev server (with its UI) keeping its state in `dbFile`. */
export interface TemporalInstance {
  host: string;
  port: number;
  uiPort: number;
  dbFile: string;
  namespace: string;
  /** The codec server the UI asks to decode payloads (the api's /codec). */
  codecEndpoint?: string;
}

export function temporalLaunch(paths: StackPaths, t: TemporalInstance): Launch {
  return {
    command: paths.temporalBin,
    args: [
      'server',
      'start-dev',
      '--ip',
      t.host,
      '--port',
      String(t.port),
      '--ui-port',
      String(t.uiPort),
      '--db-filename',
      t.dbFile,
      '--namespace',
      t.namespace,
      ...(t.codecEndpoint ? ['--ui-codec-endpoint', t.codecEndpoint] : []),
      ...requiredSearchAttributes.flatMap((a) => ['--search-attribute', `${a.name}=${a.type}`]),
      '--log-format',
      'json',
      '--log-level',
      'warn',
    ],
    env: process.env,
  };
}

/** One Kafka node in KRaft combined mode (broker and controller in one JVM), its data under `home`. */
export interface KafkaInstance {
  home: string;
  host: string;
  port: number;
  controllerPort: number;
  heap: string;
  /**
   * Its place in a cluster: its node id, every node's controller (each node votes), and the id the
   * cluster's logs are formatted with (the same on every node). Alone (node 1, one voter) when absent.
   */
  cluster?: { nodeId: number; voters: { id: number; host: string; controllerPort: number }[]; clusterId: string };
  /** A second listener with TLS and SASL/PLAIN (the one `npm run dev` connects to), when given. */
  secure?: { port: number; keystore: string; keystorePassword: string; users: Record<string, string> };
}

const PLAIN_LOGIN_MODULE = 'org.apache.kafka.common.security.plain.PlainLoginModule';

/** JAAS's quoting: a value between double quotes, with `\` and `"` escaped. */
const jaasQuote = (v: string): string => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/**
 * The node's server.properties. Alone: replication 1. In a cluster of three or more: replication
 * 3 and `min.insync.replicas` 2 for every topic made without its own (Persona's set theirs,
 * clients/kafka.ts) and for Kafka's own (consumer offsets, transactions), and no unclean leader
 * election — a write acknowledged by every in-sync replica is on two nodes before the producer
 * hears of it, and only one of those can lead. No topic is made by a stray produce.
 */
export function kafkaServerProperties(k: KafkaInstance): string {
  const sec = k.secure;
  const secure = sec
    ? [
        'listener.name.secure.sasl.enabled.mechanisms=PLAIN',
        `listener.name.secure.plain.sasl.jaas.config=${PLAIN_LOGIN_MODULE} required ` +
          `${Object.entries(sec.users)
            .map(([user, password]) => `user_${user}=${jaasQuote(password)}`)
            .join(' ')};`,
        'ssl.keystore.type=PKCS12',
        `ssl.keystore.location=${sec.keystore}`,
        `ssl.keystore.password=${sec.keystorePassword}`,
        'ssl.client.auth=none',
      ]
    : [];
  const voters = k.cluster?.voters ?? [{ id: 1, host: k.host, controllerPort: k.controllerPort }];
  const replication = Math.min(3, voters.length);
  const minIsr = replication >= 3 ? 2 : 1;
  return [
    'process.roles=broker,controller',
    `node.id=${k.cluster?.nodeId ?? 1}`,
    `controller.quorum.voters=${voters.map((v) => `${v.id}@${v.host}:${v.controllerPort}`).join(',')}`,
    `listeners=PLAINTEXT://${k.host}:${k.port},CONTROLLER://${k.host}:${k.controllerPort}` +
      (sec ? `,SECURE://${k.host}:${sec.port}` : ''),
    `advertised.listeners=PLAINTEXT://${k.host}:${k.port}` + (sec ? `,SECURE://${k.host}:${sec.port}` : ''),
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT' + (sec ? ',SECURE:SASL_SSL' : ''),
    'inter.broker.listener.name=PLAINTEXT',
    ...secure,
    `log.dirs=${path.join(k.home, 'data')}`,
    'num.partitions=1',
    `default.replication.factor=${replication}`,
    `min.insync.replicas=${minIsr}`,
    'unclean.leader.election.enable=false',
    `offsets.topic.replication.factor=${replication}`,
    'offsets.topic.num.partitions=4',
    `transaction.state.log.replication.factor=${replication}`,
    `transaction.state.log.min.isr=${minIsr}`,
    `share.coordinator.state.topic.replication.factor=${replication}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    // The log cleaner (compacted topics: consumer offsets) takes its dedupe buffer from the heap at
    // start, 128 MiB by default: half the local heap. A node of three, with replica fetchers too,
    // died of it at start (OutOfMemoryError in SkimpyOffsetMap). 32 MiB is plenty for test topics.
    'log.cleaner.dedupe.buffer.size=33554432',
    '',
  ].join('\n');
}

/** A new KRaft cluster id: 16 random bytes, base64url (what Kafka's `random-uuid` prints). */
export function newKafkaClusterId(): string {
  // Never one that starts with '-': Kafka's StorageTool would read `-t -xJo…` as an unknown option
  // and refuse to format (one id in 64; Kafka's own Uuid.randomUuid skips them for that reason).
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * How to start the node: writes its configuration and, the first time, formats its log folder
 * (Kafka's StorageTool, with the cluster's id, or a new one for a node alone). SIGTERM stops it cleanly.
 */
export function kafkaLaunch(paths: StackPaths, k: KafkaInstance): Launch {
  mkdirSync(k.home, { recursive: true });
  const props = path.join(k.home, 'server.properties');
  // It holds the keystore's password and the SASL users': readable by this user only.
  writeFileSync(props, kafkaServerProperties(k), { mode: 0o600 });
  chmodSync(props, 0o600);
  const jvm = [
    `-Xmx${k.heap}`,
    `-Xms${k.heap}`,
    '-XX:+UseG1GC',
    `-Dlog4j2.configurationFile=${KAFKA_LOG4J}`,
    '-cp',
    path.join(paths.kafkaLib, '*'),
  ];
  if (!existsSync(path.join(k.home, 'data', 'meta.properties'))) {
    const clusterId = k.cluster?.clusterId ?? newKafkaClusterId();
    execFileSync('java', [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props], {
      stdio: 'ignore',
    });
  }
  return { command: 'java', args: [...jvm, 'kafka.Kafka', props], env: process.env };
}

/** True once the broker answers a metadata request with itself as a broker. */
export async function kafkaAnswers(brokers: string[]): Promise<boolean> {
  const admin = new Admin({ clientId: 'persona-stack', bootstrapBrokers: brokers, timeout: 3000, retries: 0 });
  try {
    const metadata = await admin.metadata({ topics: [] });
    return metadata.brokers.size > 0;
  } finally {
    await admin.close();
  }
}

function services(s: Settings): Service[] {
  const p = stackPaths(s.PERSONA_STACK_DIR);
  const daemon = (name: string): Daemon => ({
    name,
    pidFile: path.join(p.pids, `${name}.pid`),
    logFile: path.join(p.logs, `${name}.log`),
  });
  const [temporalHost = '127.0.0.1', temporalPort = '7233'] = s.TEMPORAL_ADDRESS.split(':');

  const neo4j: Service = {
    name: 'neo4j',
    daemon: daemon('neo4j'),
    host: s.neo4jBoltHost,
    port: s.neo4jBoltPort,
    start: (paths) => {
      const launch = neo4jLaunch(paths, {
        home: paths.neo4jHome,
        host: s.neo4jBoltHost,
        port: s.neo4jBoltPort,
        heap: s.NEO4J_HEAP,
        pageCacheMb: s.NEO4J_PAGECACHE_MB,
        txMemoryMb: s.NEO4J_TX_MEMORY_MB,
        user: s.NEO4J_USER,
        password: s.NEO4J_PASSWORD,
      });
      return startDaemon(daemon('neo4j'), launch.command, launch.args, launch.env, paths.root);
    },
    ready: async () => {
      const driver = createDriver(s, { maxConnectionPoolSize: 1 });
      try {
        await pingNeo4j(driver, s.NEO4J_DATABASE);
        return true;
      } finally {
        await driver.close();
      }
    },
    addresses: () => [`Neo4j Bolt       ${s.NEO4J_URI}  (user ${s.NEO4J_USER}, database ${s.NEO4J_DATABASE})`],
    startTimeoutMs: 180_000,
    stopGraceMs: 60_000,
  };

  const temporal: Service = {
    name: 'temporal',
    daemon: daemon('temporal'),
    host: temporalHost,
    port: Number(temporalPort),
    start: (paths) => {
      const launch = temporalLaunch(paths, {
        host: temporalHost,
        port: Number(temporalPort),
        uiPort: s.TEMPORAL_UI_PORT,
        dbFile: paths.temporalDb,
        namespace: s.TEMPORAL_NAMESPACE,
        // The UI decodes through the api's codec server. start-dev cannot tell it to send credentials;
        // a browser does once "include cross-origin credentials" is on in the UI's codec settings, and
        // then a console ops session reads plain payloads (api/rest/codec.ts); anyone else, ciphertext.
        codecEndpoint: `http://localhost:${s.PERSONA_HTTP_PORT}/codec`,
      });
      return startDaemon(daemon('temporal'), launch.command, launch.args, launch.env);
    },
    ready: async () => {
      const { connection } = await connectTemporal(s);
      try {
        await describeNamespace(connection, s.TEMPORAL_NAMESPACE);
      } finally {
        await connection.close();
      }
      const ui = await fetch(`http://${temporalHost}:${s.TEMPORAL_UI_PORT}/`, { signal: AbortSignal.timeout(3000) });
      return ui.status === 200;
    },
    afterReady: async (log) => {
      const { connection } = await connectTemporal(s);
      try {
        const added = await ensureSearchAttributes(connection, s.TEMPORAL_NAMESPACE);
        if (added.length > 0) log(`temporal: registered search attributes ${added.join(', ')}`);
      } finally {
        await connection.close();
      }
    },
    addresses: () => [
      `Temporal         ${s.TEMPORAL_ADDRESS}  (namespace ${s.TEMPORAL_NAMESPACE})`,
      `Temporal UI      http://${temporalHost}:${s.TEMPORAL_UI_PORT}`,
    ],
    startTimeoutMs: 90_000,
    stopGraceMs: 20_000,
  };

  const gateway: Service = {
    name: 'gateway',
    daemon: daemon('gateway'),
    host: '127.0.0.1',
    port: s.PERSONA_GATEWAY_PORT,
    start: () =>
      startDaemon(
        daemon('gateway'),
        process.execPath,
        ['--import', 'tsx', path.join(repoRoot, 'simulators', 'gateway', 'main.ts')],
        process.env,
        repoRoot,
      ),
    ready: async () =>
      (await fetch(`http://127.0.0.1:${s.PERSONA_GATEWAY_PORT}/healthz`, { signal: AbortSignal.timeout(2000) }))
        .status === 200,
    addresses: () => [
      `Gateway sim      http://127.0.0.1:${s.PERSONA_GATEWAY_PORT}  (POST /v1/charges, GET /v1/charges?customer_id=)`,
    ],
    startTimeoutMs: 30_000,
    stopGraceMs: 5_000,
  };

  const kafkaHost = '127.0.0.1';
  const nodes = localKafkaNodes(s);
  const voters = nodes.map((n) => ({ id: n.id, host: kafkaHost, controllerPort: n.controllerPort }));
  const kafka = nodes.map((node): Service => ({
    name: node.name,
    daemon: daemon(node.name),
    host: kafkaHost,
    port: node.port,
    start: (paths) => {
      const launch = kafkaLaunch(paths, {
        home: node.home,
        host: kafkaHost,
        port: node.port,
        controllerPort: node.controllerPort,
        heap: s.KAFKA_HEAP,
        ...(nodes.length > 1 ? { cluster: { nodeId: node.id, voters, clusterId: stackClusterId(paths) } } : {}),
        secure: {
          port: node.securePort,
          keystore: paths.kafkaTls.keystore,
          keystorePassword: readFileSync(paths.kafkaTls.keystorePassword, 'utf8').trim(),
          users: { [LOCAL_KAFKA_USER]: readFileSync(paths.kafkaTls.saslPassword, 'utf8').trim() },
        },
      });
      return startDaemon(daemon(node.name), launch.command, launch.args, launch.env, node.home);
    },
    // A node of three answers once a majority of the controllers has elected a leader.
    ready: () => kafkaAnswers([`${kafkaHost}:${node.port}`]),
    addresses: () => [
      `Kafka node ${node.id}     ${kafkaHost}:${node.port}  (plaintext: tests and the console tools)`,
      `  TLS+SASL       ${kafkaHost}:${node.securePort}  (npm run dev's api and worker; CA and password in ` +
        `${path.relative(repoRoot, path.dirname(stackPaths(s.PERSONA_STACK_DIR).kafkaTls.ca))}/)`,
    ],
    startTimeoutMs: 120_000,
    stopGraceMs: 30_000,
    kafkaNode: true,
  }));

  return [neo4j, temporal, ...kafka, gateway];
}

/** The id the stack's three-node cluster is formatted with: made once, kept beside the nodes' folders. */
function stackClusterId(paths: StackPaths): string {
  const file = path.join(paths.kafkaCluster, 'cluster.id');
  if (!existsSync(file)) {
    mkdirSync(paths.kafkaCluster, { recursive: true });
    writeFileSync(file, newKafkaClusterId());
  }
  return readFileSync(file, 'utf8').trim();
}

function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

/**
 * Installs what is missing, starts what is not running, and waits until every service (or each
 * one named) answers.
 */
export async function stackUp(s: Settings, log: Log, only?: string[]): Promise<{ started: string[] }> {
  const t0 = Date.now();
  const paths = await installStack(s.PERSONA_STACK_DIR, log);
  const started: string[] = [];
  const all = services(s).filter((svc) => !only || only.includes(svc.name));

  // Start everything first, then wait: Neo4j's JVM and Temporal boot in parallel.
  const pending: { svc: Service; pid?: number }[] = [];
  for (const svc of all) {
    const pid = readPid(svc.daemon);
    if (isAlive(pid)) {
      log(`${svc.name}: already running (pid ${pid})`);
      pending.push({ svc, pid });
    } else if (await portOpen(svc.host, svc.port)) {
      log(`${svc.name}: something else already answers on ${svc.host}:${svc.port}; reusing it`);
      pending.push({ svc });
    } else {
      const newPid = svc.start(paths);
      log(`${svc.name}: starting (pid ${newPid}, log ${svc.daemon.logFile})`);
      started.push(svc.name);
      pending.push({ svc, pid: newPid });
    }
  }
  await Promise.all(
    pending.map(async ({ svc, pid }) => {
      const t = Date.now();
      try {
        await waitUntil(
          svc.name,
          () => svc.ready(),
          svc.startTimeoutMs,
          pid === undefined ? undefined : () => isAlive(pid),
        );
      } catch (err) {
        const logTail = tail(svc.daemon.logFile);
        throw new Error(
          `${(err as Error).message}${logTail ? `\n--- last lines of ${svc.daemon.logFile} ---\n${logTail}` : ''}`,
        );
      }
      await svc.afterReady?.(log);
      log(`${svc.name}: ready (${elapsed(t)})`);
    }),
  );
  log(`stack is up in ${elapsed(t0)}:`);
  for (const line of all.flatMap((svc) => svc.addresses())) log(`  ${line}`);
  return { started };
}

/**
 * The stack's Neo4j as a store to back up or restore (backup/): its home, stopped and started the
 * way `stack:down neo4j` and `stack:up` do it. Refused when the Neo4j that answers is not the
 * stack's own (its files are elsewhere).
 */
export function localNeo4jStore(
  s: Settings,
  log: Log,
): { home: string; stop(): Promise<void>; start(): Promise<void> } {
  if (!stackRuns(s, 'neo4j'))
    throw new Error(
      `the Neo4j at ${s.NEO4J_URI} is not the local stack's (npm run stack:up starts it): its store is not here. ` +
        'In production, back up with Neo4j Enterprise online backup or Aura snapshots (docs/deployment.md)',
    );
  return {
    home: stackPaths(s.PERSONA_STACK_DIR).neo4jHome,
    stop: async () => {
      await stackDown(s, log, ['neo4j']);
    },
    start: async () => {
      await stackUp(s, log, ['neo4j']);
    },
  };
}

/** Whether the stack started this service and it still runs (not something else on its port). */
export function stackRuns(s: Settings, name: string): boolean {
  const svc = services(s).find((x) => x.name === name);
  return svc !== undefined && isAlive(readPid(svc.daemon));
}

/**
 * Stops the services the stack started (all of them, or the named ones), in the reverse of their
 * start order. The Kafka nodes stop together: one stopped after the others would wait for a
 * controller quorum that is gone, until its grace ran out and it was killed. A node of three left
 * running by a stack since set to one node is stopped as well.
 */
export async function stackDown(s: Settings, log: Log, only?: string[]): Promise<void> {
  const stop = async (svc: Service): Promise<void> => {
    const t = Date.now();
    const result = await stopDaemon(svc.daemon, svc.stopGraceMs, log);
    if (result === 'not-running') log(`${svc.name}: was not running`);
    else log(`${svc.name}: ${result === 'killed' ? 'killed' : 'stopped'} (${elapsed(t)})`);
  };
  // Nodes of three still running after PERSONA_KAFKA_NODES went back to 1 are stopped too.
  const configured = new Set(services(s).map((svc) => svc.name));
  const chosen = services({ ...s, PERSONA_KAFKA_NODES: 3 })
    .reverse()
    .filter((svc) => !only || only.includes(svc.name))
    .filter((svc) => configured.has(svc.name) || isAlive(readPid(svc.daemon)));
  const kafka = chosen.filter((svc) => svc.kafkaNode);
  for (const svc of chosen) {
    if (!svc.kafkaNode) await stop(svc);
    else if (svc === kafka[0]) await Promise.all(kafka.map(stop));
  }
}

export interface ServiceStatus {
  name: string;
  pid?: number;
  running: boolean;
  answering: boolean;
  addresses: string[];
}

export async function stackStatus(s: Settings): Promise<ServiceStatus[]> {
  return Promise.all(
    services(s).map(async (svc) => {
      const pid = readPid(svc.daemon);
      const running = isAlive(pid);
      const answering = await svc.ready().catch(() => false);
      return { name: svc.name, ...(running ? { pid } : {}), running, answering, addresses: svc.addresses() };
    }),
  );
}
