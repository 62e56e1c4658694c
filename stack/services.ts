/**
 * The local stack's services: Neo4j (Bolt), the Temporal dev server with its UI, Kafka (KRaft, one
 * node or three: PERSONA_KAFKA_NODES) and the payment gateway simulator. `stackUp`
 * starts whatever is not already answering and waits until each one does; `stackDown` stops
 * what the stack started; `stackStatus` reports each service and its address.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, type Settings } from '../config/env';
import { createDriver, pingNeo4j } from '../graph/driver';
import { connectTemporal, describeNamespace, ensureSearchAttributes } from '../temporal/connection';
import { installStack, LOCAL_KAFKA_USER, localKafkaNodes, stackPaths, type StackPaths } from './install';
import { kafkaAnswers, kafkaLaunch, newKafkaClusterId } from './kafkaNode';
import { neo4jLaunch, temporalLaunch } from './launch';
import { isAlive, portOpen, readPid, startDaemon, stopDaemon, tail, waitUntil, type Daemon, type Log } from './process';

export { kafkaAnswers, kafkaLaunch, kafkaServerProperties, newKafkaClusterId, type KafkaInstance } from './kafkaNode';
export { neo4jLaunch, temporalLaunch, type Launch, type Neo4jInstance, type TemporalInstance } from './launch';

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
}

/** The stack's services in their start order: Neo4j, Temporal, the Kafka nodes, the gateway simulator. */
function services(s: Settings): Service[] {
  const p = stackPaths(s.PERSONA_STACK_DIR);
  return [neo4jService(s, p), temporalService(s, p), ...kafkaServices(s, p), gatewayService(s, p)];
}

/** A service's daemon: its pid and log files, named after it, in the stack's pids and logs folders. */
function stackDaemon(p: StackPaths, name: string): Daemon {
  return {
    name,
    pidFile: path.join(p.pids, `${name}.pid`),
    logFile: path.join(p.logs, `${name}.log`),
  };
}

/**
 * Neo4j on Bolt, run from the installed jars with the settings' memory and credentials: ready once
 * the driver can ping its database.
 */
function neo4jService(s: Settings, p: StackPaths): Service {
  return {
    name: 'neo4j',
    daemon: stackDaemon(p, 'neo4j'),
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
      return startDaemon(stackDaemon(p, 'neo4j'), launch.command, launch.args, launch.env, paths.root);
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
}

/**
 * The Temporal dev server at TEMPORAL_ADDRESS with its UI: ready once the namespace is described
 * and the UI answers; then Persona's search attributes are registered where any are missing.
 */
function temporalService(s: Settings, p: StackPaths): Service {
  const [temporalHost = '127.0.0.1', temporalPort = '7233'] = s.TEMPORAL_ADDRESS.split(':');
  return {
    name: 'temporal',
    daemon: stackDaemon(p, 'temporal'),
    host: temporalHost,
    port: Number(temporalPort),
    start: (paths) => {
      const launch = temporalLaunch(paths, {
        host: temporalHost,
        port: Number(temporalPort),
        uiPort: s.TEMPORAL_UI_PORT,
        metricsPort: s.TEMPORAL_METRICS_PORT,
        dbFile: paths.temporalDb,
        namespace: s.TEMPORAL_NAMESPACE,
        // The UI decodes through the api's codec server. start-dev cannot tell it to send credentials;
        // a browser does once "include cross-origin credentials" is on in the UI's codec settings, and
        // then a console ops session reads plain payloads (api/rest/codec.ts); anyone else, ciphertext.
        codecEndpoint: `http://localhost:${s.PERSONA_HTTP_PORT}/codec`,
      });
      return startDaemon(stackDaemon(p, 'temporal'), launch.command, launch.args, launch.env);
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
      `Temporal metrics http://${temporalHost}:${s.TEMPORAL_METRICS_PORT}/metrics  (the task queues' backlog)`,
    ],
    startTimeoutMs: 90_000,
    stopGraceMs: 20_000,
  };
}

/**
 * The Kafka nodes (PERSONA_KAFKA_NODES: one, or three voting as a cluster), each with a plaintext
 * listener and a TLS+SASL one; the nodes stop together (stackDown).
 */
function kafkaServices(s: Settings, p: StackPaths): Service[] {
  const kafkaHost = '127.0.0.1';
  const nodes = localKafkaNodes(s);
  const voters = nodes.map((n) => ({ id: n.id, host: kafkaHost, controllerPort: n.controllerPort }));
  return nodes.map((node): Service => ({
    name: node.name,
    daemon: stackDaemon(p, node.name),
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
      return startDaemon(stackDaemon(p, node.name), launch.command, launch.args, launch.env, node.home);
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
  }));
}

/** The payment gateway simulator (simulators/gateway), run by this Node with tsx: ready once /healthz answers. */
function gatewayService(s: Settings, p: StackPaths): Service {
  return {
    name: 'gateway',
    daemon: stackDaemon(p, 'gateway'),
    host: '127.0.0.1',
    port: s.PERSONA_GATEWAY_PORT,
    start: () =>
      startDaemon(
        stackDaemon(p, 'gateway'),
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
 * Stops the services the stack started (all of them, or the named ones), all at once: each is a
 * process of its own that needs none of the others to stop, so stack:down takes as long as the
 * slowest, Kafka's nodes (about 8 s), not the sum of them all. Each prints its line as it ends. The
 * Kafka nodes must stop together in any case: one stopped after the others would wait for a
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
    .filter((svc) => !only || only.includes(svc.name))
    .filter((svc) => configured.has(svc.name) || isAlive(readPid(svc.daemon)));
  await Promise.all(chosen.map(stop));
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
