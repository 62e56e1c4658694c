/**
 * Private instances of the stack's real services, for tests that stop and start them (restarts,
 * outages) without touching the shared stack the other integration tests use. Each instance
 * runs from the stack's installed programs, in a fresh temporary folder, on free ports, and is
 * started and stopped exactly like `stack:up` / `stack:down` do it (SIGTERM, then a grace period).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSettings } from '../../config/env';
import { createDriver, pingNeo4j } from '../../graph/driver';
import { stackPaths } from '../../stack/install';
import {
  isAlive,
  readPid,
  startDaemon,
  stopDaemon,
  waitUntil,
  type Daemon,
  type StopResult,
} from '../../stack/process';
import {
  kafkaAnswers,
  kafkaLaunch,
  neo4jLaunch,
  newKafkaClusterId,
  temporalLaunch,
  type KafkaInstance,
  type Launch,
} from '../../stack/services';
import { connectTemporal, describeNamespace, ensureSearchAttributes } from '../../temporal/connection';
import { freePort } from './processes';

const settings = loadSettings();
const paths = stackPaths(settings.PERSONA_STACK_DIR);
const quiet = (): void => undefined;

export interface PrivateService {
  /** The folder the instance keeps its data and output in. */
  dir: string;
  /** Starts the process and resolves once it answers like a client needs it to. */
  start(): Promise<void>;
  /** SIGTERM and wait (what `stack:down` does): 'stopped' when it ended on its own. */
  stop(graceMs?: number): Promise<StopResult>;
  /** SIGKILL: a crash. */
  kill(): void;
  /** SIGSTOP / SIGCONT: a process that hangs (accepts connections, answers nothing), and wakes. */
  pause(): void;
  resume(): void;
  running(): boolean;
  /** Everything the process printed, across every start. */
  output(): string;
  /** Stops the process if it runs and removes its folder. */
  dispose(): Promise<void>;
}

function privateService(
  name: string,
  dir: string,
  launch: () => Launch,
  /** Whether the `starts`-th start is complete. */
  ready: (starts: number, output: () => string) => Promise<boolean>,
  startTimeoutMs: number,
): PrivateService {
  const daemon: Daemon = { name, pidFile: path.join(dir, `${name}.pid`), logFile: path.join(dir, `${name}.out`) };
  const output = (): string => (existsSync(daemon.logFile) ? readFileSync(daemon.logFile, 'utf8') : '');
  let starts = 0;
  return {
    dir,
    async start() {
      const l = launch();
      const pid = startDaemon(daemon, l.command, l.args, l.env, dir);
      starts += 1;
      try {
        await waitUntil(
          name,
          () => ready(starts, output),
          startTimeoutMs,
          () => isAlive(pid),
        );
      } catch (err) {
        // The folder goes with the test's cleanup: what the process said is kept in the error.
        const said = output().trim().split('\n').slice(-15).join('\n');
        throw new Error(`${err instanceof Error ? err.message : String(err)}; its last words:\n${said}`, {
          cause: err,
        });
      }
    },
    stop: (graceMs = 60_000) => stopDaemon(daemon, graceMs, quiet),
    kill() {
      const pid = readPid(daemon);
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    },
    pause() {
      const pid = readPid(daemon);
      if (isAlive(pid)) process.kill(pid, 'SIGSTOP');
    },
    resume() {
      const pid = readPid(daemon);
      if (isAlive(pid)) process.kill(pid, 'SIGCONT');
    },
    running: () => isAlive(readPid(daemon)),
    output,
    async dispose() {
      await stopDaemon(daemon, 30_000, quiet);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivateNeo4j extends PrivateService {
  uri: string;
  /** Its home: `data/` holds its databases (copied while it is stopped, a backup of it). */
  home: string;
  /** Neo4j's own log of this instance (recoveries, checkpoints). */
  debugLog(): string;
  /** The settings a process or driver needs to reach this instance. */
  env: { NEO4J_URI: string; NEO4J_USER: string; NEO4J_PASSWORD: string; NEO4J_DATABASE: string };
}

/**
 * A Neo4j of its own (not started yet): the stack's launcher and jars, a fresh home.
 * `bookmarkWaitMs`: how long a transaction waits for bookmarks it cannot reach (Neo4j's 30 s);
 * `heap` and `pageCacheMb`: more memory than a small test's (384m, 64 MB).
 */
export async function privateNeo4j(
  options: { bookmarkWaitMs?: number; heap?: string; pageCacheMb?: number } = {},
): Promise<PrivateNeo4j> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'persona-neo4j-'));
  const port = await freePort();
  const env = {
    NEO4J_URI: `bolt://127.0.0.1:${port}`,
    NEO4J_USER: settings.NEO4J_USER,
    NEO4J_PASSWORD: settings.NEO4J_PASSWORD,
    NEO4J_DATABASE: settings.NEO4J_DATABASE,
  };
  const home = path.join(dir, 'home');
  const service = privateService(
    'neo4j',
    dir,
    () =>
      neo4jLaunch(paths, {
        home,
        host: '127.0.0.1',
        port,
        heap: options.heap ?? '384m',
        pageCacheMb: options.pageCacheMb ?? 64,
        txMemoryMb: 256,
        user: env.NEO4J_USER,
        password: env.NEO4J_PASSWORD,
        bookmarkWaitMs: options.bookmarkWaitMs,
        quickStart: true,
      }),
    async (starts, output) => {
      // Bolt answers before the launcher has set the credentials: wait for its "ready" line too.
      if ((output().match(/^persona-neo4j: Neo4j .* ready on /gm) ?? []).length < starts) return false;
      const driver = createDriver(env, { maxConnectionPoolSize: 1 });
      try {
        await pingNeo4j(driver, env.NEO4J_DATABASE);
        return true;
      } finally {
        await driver.close();
      }
    },
    180_000,
  );
  const debugLog = path.join(home, 'logs', 'debug.log');
  return {
    ...service,
    uri: env.NEO4J_URI,
    home,
    env,
    debugLog: () => (existsSync(debugLog) ? readFileSync(debugLog, 'utf8') : ''),
  };
}

export interface PrivateTemporal extends PrivateService {
  address: string;
  env: { TEMPORAL_ADDRESS: string; TEMPORAL_NAMESPACE: string };
}

/** A Temporal dev server of its own (not started yet), keeping its state in its folder across restarts. */
export async function privateTemporal(): Promise<PrivateTemporal> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'persona-temporal-'));
  const [port, uiPort] = [await freePort(), await freePort()];
  const env = { TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_NAMESPACE: settings.TEMPORAL_NAMESPACE };
  const service = privateService(
    'temporal',
    dir,
    () =>
      temporalLaunch(paths, {
        host: '127.0.0.1',
        port,
        uiPort,
        dbFile: path.join(dir, 'temporal.db'),
        namespace: env.TEMPORAL_NAMESPACE,
      }),
    async () => {
      const { connection } = await connectTemporal(env);
      try {
        await describeNamespace(connection, env.TEMPORAL_NAMESPACE);
        await ensureSearchAttributes(connection, env.TEMPORAL_NAMESPACE);
        return true;
      } finally {
        await connection.close();
      }
    },
    90_000,
  );
  return { ...service, address: env.TEMPORAL_ADDRESS, env };
}

export interface PrivateKafka extends PrivateService {
  /** host:port of its plaintext listener. */
  address: string;
}

/** A Kafka broker of its own (not started yet): the stack's jars, KRaft, a fresh log folder kept across restarts. */
export async function privateKafka(): Promise<PrivateKafka> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'persona-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  const address = `127.0.0.1:${port}`;
  const service = privateService(
    'kafka',
    dir,
    () => kafkaLaunch(paths, { home: dir, host: '127.0.0.1', port, controllerPort, heap: '256m', quickStart: true }),
    () => kafkaAnswers([address]),
    120_000,
  );
  return { ...service, address };
}

export interface PrivateKafkaNode extends PrivateService {
  id: number;
  /** host:port of its plaintext listener. */
  address: string;
}

export interface PrivateKafkaCluster {
  nodes: PrivateKafkaNode[];
  /** Every node's plaintext address, as KAFKA_BROKERS lists them. */
  brokers: string[];
  /** Starts every node at once (a node of three answers once a majority of controllers elected a leader). */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * A broker session for a cluster whose nodes a test kills: the controllers fence a node 4 s after
 * its last heartbeat (sent every 500 ms), not Kafka's 9 s (every 2 s), and only then do the
 * partitions it led get new leaders.
 */
export const QUICK_FENCING = { timeoutMs: 4000, heartbeatMs: 500 } as const;

/**
 * A Kafka cluster of its own (not started yet): `size` KRaft nodes, each broker and controller, as
 * `stack:up` runs them with PERSONA_KAFKA_NODES=3 (replication 3, min ISR 2 for topics made
 * without their own), each with a log folder kept across its restarts. `brokerSession`: how soon a
 * dead node is fenced (Kafka's 9 s when absent, as the stack's nodes; QUICK_FENCING).
 */
export async function privateKafkaCluster(
  size = 3,
  options: Pick<KafkaInstance, 'brokerSession'> = {},
): Promise<PrivateKafkaCluster> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'persona-kafka-cluster-'));
  const ports = await Promise.all(Array.from({ length: size * 2 }, () => freePort()));
  const clusterId = newKafkaClusterId();
  const voters = Array.from({ length: size }, (_, i) => ({
    id: i + 1,
    host: '127.0.0.1',
    controllerPort: ports[size + i] as number,
  }));
  const nodes = voters.map((v, i): PrivateKafkaNode => {
    const dir = path.join(root, `node-${v.id}`);
    mkdirSync(dir);
    const port = ports[i] as number;
    const address = `127.0.0.1:${port}`;
    const service = privateService(
      `kafka-${v.id}`,
      dir,
      () =>
        kafkaLaunch(paths, {
          home: dir,
          host: '127.0.0.1',
          port,
          controllerPort: v.controllerPort,
          heap: '256m',
          cluster: { nodeId: v.id, voters, clusterId },
          quickStart: true,
          ...(options.brokerSession ? { brokerSession: options.brokerSession } : {}),
        }),
      () => kafkaAnswers([address]),
      120_000,
    );
    return { ...service, id: v.id, address };
  });
  return {
    nodes,
    brokers: nodes.map((n) => n.address),
    start: async () => {
      await Promise.all(nodes.map((n) => n.start()));
    },
    dispose: async () => {
      await Promise.all(nodes.map((n) => n.dispose()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
