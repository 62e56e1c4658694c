/** Starting Persona's own processes (api, worker) from tests, on free ports. */
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { connectTemporal } from '../../temporal/connection';
import { API_NODE_ARGS, loadSettings, repoRoot, workerDeploymentVersion } from '../../config/env';
import { polledTaskQueues } from '../../temporal/taskQueues';
import { promote, RoutingNotSettledError } from '../../temporal/workerDeployment';

/**
 * A port nothing listens on, for a process a test is about to start. Taken below the kernel's
 * ephemeral range: a port the kernel hands out (to any bind(0), or as the local end of any
 * outgoing connection on this busy machine) could be taken again in the seconds before a JVM
 * binds it, and the process exits at start. Never the same port twice in one test process, and
 * never a port `fetch` refuses to connect to (the Fetch standard's "bad ports": 10080 is the one in
 * this range): a process listening there is up, but no test could ever see it answer.
 */
export async function freePort(): Promise<number> {
  const floor = 10_000;
  const ceiling = ephemeralLow() - 1;
  for (let tries = 0; tries < 200; tries++) {
    const port = floor + Math.floor(Math.random() * (ceiling - floor));
    if (FETCH_BAD_PORTS.has(port) || handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port between ${floor} and ${ceiling}`);
}

const handedOut = new Set<number>();
/** The Fetch standard's bad ports at or above 10,000 (https://fetch.spec.whatwg.org/#bad-port). */
export const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([10080]);

/** The low end of the kernel's ephemeral ports (32768 where it cannot be read). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 20_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface RunningProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export interface StartOptions {
  /**
   * A session of its own (setsid), as a service's process has on a host: on Linux the scheduler
   * then shares the CPU between it and the process that started it as between two groups
   * (autogroup), not thread by thread with everything the starter runs.
   */
  ownSession?: boolean;
  /** How long a worker or an api may take to say it is ready (90 s unless said). */
  readyWithinMs?: number;
  /**
   * A folder scripts/build-image.sh wrote (what the image holds): the entry point's compiled
   * JavaScript runs there, with plain node, instead of the TypeScript with tsx.
   */
  built?: string;
  /**
   * With `built`: the whole command line after `node` (a Dockerfile's CMD, a compose service's
   * command), run as it stands instead of one made of the entry point and `nodeArgs`.
   */
  command?: string[];
}

/**
 * Runs a TypeScript entry point (relative to the repo root) with tsx and extra environment;
 * `nodeArgs` go to node after tsx (e.g. another `--import`, which may then be TypeScript). With
 * `options.built`, runs its compiled JavaScript from that folder instead.
 */
export function startProcess(
  entry: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
  args: string[] = [],
  options: StartOptions = {},
): RunningProcess {
  const command = options.built
    ? (options.command ?? [...nodeArgs, '--enable-source-maps', entry.replace(/\.ts$/, '.js'), ...args])
    : ['--import', 'tsx', ...nodeArgs, entry, ...args];
  const child = spawn(process.execPath, command, {
    cwd: options.built ?? repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownSession === true,
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Polls a URL until it answers 200; fails with the process output if it never does. */
export async function waitForOk(url: string, proc: RunningProcess, timeoutMs = 90_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null)
      throw new Error(`process exited (${proc.child.exitCode}) before ${url} answered:\n${proc.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return res;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms:\n${proc.output()}`);
}

export interface WorkerProcess extends RunningProcess {
  /** http://127.0.0.1:<port>: /healthz, /readyz, /metrics */
  url: string;
}

let ownDeployment: string | undefined;

/**
 * The Worker Deployment the worker processes of this test run join: named once per run by the
 * integration setup (test/setup/stack.ts, which also removes those of runs long gone), else once
 * per process (the contract run, benchmarks). Every test worker of a run has the same code, so the
 * same build id: one version, current once, whose task queues (one per test) each get its tasks
 * as soon as a worker polls them. Never the `persona` deployment a developer's `npm run dev` uses.
 */
export function testDeploymentName(): string {
  ownDeployment ??=
    process.env.PERSONA_TEST_DEPLOYMENT_NAME ?? `persona-test-${Date.now().toString(36)}-${process.pid}`;
  return ownDeployment;
}

/**
 * Makes a worker process's deployment version current, as a deploy does (a versioned worker gets
 * no task before): waits until it has polled its task queues (one per kind it runs). `env` is the process's own.
 */
export async function promoteWorker(env: Record<string, string>): Promise<{ deploymentName: string; buildId: string }> {
  const settings = loadSettings({ ...process.env, ...env });
  const version = workerDeploymentVersion(settings);
  // Over the process's own transport (TLS, a client certificate, an API key), as a deploy's would be.
  const { connection } = await connectTemporal(settings);
  try {
    await promote(
      connection.workflowService,
      { namespace: settings.TEMPORAL_NAMESPACE, deploymentName: version.deploymentName, identity: 'test' },
      version.buildId,
      { taskQueues: polledTaskQueues(settings), timeoutMs: 90_000 },
    );
  } catch (err) {
    // Made current, its propagation still reported in progress (temporalio/temporal#11842): the
    // test that started the worker sees whether work reaches it.
    if (!(err instanceof RoutingNotSettledError)) throw err;
    console.log(`promoting a test worker: ${err.message}`);
  } finally {
    await connection.close();
  }
  return version;
}

/**
 * Starts a worker process on free ports, waits until it is ready and (unless `promote: false`)
 * makes its deployment version current. It joins this run's test deployment unless `env` names
 * another (PERSONA_DEPLOYMENT_NAME), and leaves the shared Temporal Schedules alone (a test worker
 * polls its own task queue). It loads the workflow bundle the integration setup built, as the image
 * does, unless `env` names another or `source: true` asks it to bundle the source as it starts.
 */
export async function startWorkerProcess(
  env: Record<string, string>,
  options: { promote?: boolean; source?: boolean } & StartOptions = {},
): Promise<WorkerProcess> {
  const port = await freePort();
  const bundles = options.built
    ? path.join(options.built, 'dist', 'workflows')
    : options.source
      ? undefined
      : process.env.PERSONA_TEST_WORKFLOW_BUNDLE_DIR;
  const own = {
    ...(bundles ? { PERSONA_WORKFLOW_BUNDLE_DIR: bundles } : {}),
    PERSONA_WORKER_HTTP_PORT: String(port),
    PERSONA_WORKER_SDK_METRICS_PORT: String(await freePort()),
    PERSONA_HTTP_HOST: '127.0.0.1',
    PERSONA_SCHEDULES: 'skip',
    PERSONA_DEPLOYMENT_NAME: testDeploymentName(),
    LOG_LEVEL: 'warn',
    ...env,
  };
  const proc = startProcess('workers/main.ts', own, [], [], options);
  const url = `http://127.0.0.1:${port}`;
  await readyOrKilled(proc, `${url}/readyz`, options.readyWithinMs);
  if (options.promote !== false) {
    try {
      await promoteWorker(own);
    } catch (err) {
      proc.child.kill('SIGKILL');
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${proc.output()}`);
    }
  }
  return { ...proc, url };
}

export interface ApiProcess extends RunningProcess {
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port> */
  grpcAddress: string;
}

/** Starts an api process on free REST and gRPC ports and waits until it is ready. */
export async function startApiProcess(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  options: StartOptions = {},
): Promise<ApiProcess> {
  // Ports of the caller's (an api started again where a balancer expects it), else free ones.
  const http = env.PERSONA_HTTP_PORT ?? String(await freePort());
  const grpc = env.PERSONA_GRPC_PORT ?? String(await freePort());
  const proc = startProcess(
    'api/main.ts',
    {
      PERSONA_HTTP_PORT: http,
      PERSONA_GRPC_PORT: grpc,
      PERSONA_HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      // Tests (and the contract fuzzer) send bursts from one token and one address.
      ...Object.fromEntries(
        ['ANONYMOUS', 'SELF', 'AGENT', 'OPS'].map((c) => [`PERSONA_RATE_LIMIT_${c}`, '100000,100000']),
      ),
      ...env,
    },
    // The heap limit the api runs with everywhere, so that tests and benchmarks see its memory.
    [...API_NODE_ARGS, ...nodeArgs],
    [],
    options,
  );
  const url = `http://127.0.0.1:${http}`;
  await readyOrKilled(proc, `${url}/readyz`, options.readyWithinMs);
  return { ...proc, url, grpcAddress: `127.0.0.1:${grpc}` };
}

/**
 * Waits until `url` answers 200; a process that never does is killed, never left running behind
 * the caller's back (it would hold its ports and its connections).
 */
async function readyOrKilled(proc: RunningProcess, url: string, withinMs?: number): Promise<void> {
  try {
    await waitForOk(url, proc, withinMs);
  } catch (err) {
    proc.child.kill('SIGKILL');
    await proc.exited;
    throw err;
  }
}

/** Stops a process with SIGTERM (SIGKILL after `graceMs`) and waits for it to exit. */
export async function stopProcess(proc: RunningProcess, graceMs = 15_000): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/**
 * What an operator does for a worker known to be dead mid-activity, so that Temporal need not find
 * out by waiting: the workflow's running `activityType` attempts get a heartbeat timeout of
 * `seconds` (UpdateActivityOptions), instead of the activity's own 20–30 s, and the workflow's
 * next task goes to the task queue every worker polls rather than to the dead worker's sticky
 * queue, where it would wait out the sticky timeout (10 s). What follows is the same: the attempt
 * times out on heartbeats and is retried, with the same input, by the next worker.
 */
export async function noticeDeadWorkerIn(
  client: Client,
  workflowId: string,
  activityType: string,
  seconds: number,
): Promise<void> {
  const { namespace } = client.options;
  await client.workflowService.resetStickyTaskQueue({ namespace, execution: { workflowId } });
  await client.workflowService.updateActivityOptions({
    namespace,
    execution: { workflowId },
    type: activityType,
    activityOptions: { heartbeatTimeout: msToTs(seconds * 1000) },
    updateMask: { paths: ['heartbeat_timeout'] },
  });
}
