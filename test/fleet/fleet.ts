/**
 * Persona as a fleet on one machine: a Neo4j, a Temporal dev server and three Kafka nodes of its own
 * (test/support/privateServices.ts: the fleet stops and kills them without touching the shared
 * stack), two worker and two api processes configured as one deployment, and HAProxy in front of
 * the apis in both routing modes — by customer (a consistent hash of `x-persona-customer`, as
 * docs/deployment.md gives it) and round robin. Reads go to the apis that say `/readyz/read`, writes
 * to those that say `/readyz/write`, as a balancer's health checks would send them.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../config/env';
import { createGraph, migrate } from '../../graph';
import { createDriver } from '../../graph/driver';
import { buildWorkflowBundles } from '../../workers/bundle';
import type { Graph } from '../../graph/graph';
import {
  privateKafkaCluster,
  privateNeo4j,
  privateTemporal,
  type PrivateKafkaCluster,
  type PrivateNeo4j,
  type PrivateTemporal,
} from '../support/privateServices';
import {
  freePort,
  promoteWorker,
  startApiProcess,
  startWorkerProcess,
  stopProcess,
  type ApiProcess,
  type WorkerProcess,
} from '../support/processes';
import { startHaproxy, type TlsProxy } from '../support/tlsProxy';

export interface Fleet {
  run: string;
  config: Config;
  graph: Graph;
  neo4j: PrivateNeo4j;
  temporal: PrivateTemporal;
  kafka: PrivateKafkaCluster;
  workers: WorkerProcess[];
  apis: ApiProcess[];
  /** REST bases of the balancer, one per routing mode. */
  byCustomer: string;
  roundRobin: string;
  /** The balancer's gRPC (h2c) address, by customer: the agents' reads as they make them. */
  grpcByCustomer: string;
  /** The environment every Persona process of the fleet runs with. */
  env: Record<string, string>;
  /** The balancer's log: its servers' state changes. */
  balancerLog(): string;
  /** Kills worker `i` (SIGKILL) and starts another in its place. */
  killWorker(i: number): Promise<void>;
  /**
   * Stops worker `i` as a rolling deploy does (SIGTERM, then the grace a deployment gives it):
   * whether it stopped on its own within the grace, or had to be killed.
   */
  stopWorker(i: number, graceMs: number): Promise<{ ms: number; onItsOwn: boolean }>;
  restartWorker(i: number): Promise<void>;
  /** Kills api `i` (SIGKILL); `restartApi` starts it again on the same ports (the balancer's server). */
  killApi(i: number): Promise<void>;
  restartApi(i: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * How each worker and api runs: in a session of its own, as a replica has a host or a container of
 * its own. In the fleet's session they shared one share of the CPU (Linux's autogroup) with the
 * load generator, while each service (Neo4j, Temporal, every Kafka node) had one of its own: a
 * worker started again under load then took 85 to over 90 s to be ready, 10 s on an idle machine.
 * Ready within 180 s: a bound for a process that hangs, not a figure (the run prints those).
 */
const REPLICA = { ownSession: true, readyWithinMs: 180_000 };

export async function startFleet(log: (line: string) => void): Promise<Fleet> {
  const run = randomUUID().slice(0, 8);
  const [neo4j, temporal, kafka] = await Promise.all([privateNeo4j(), privateTemporal(), privateKafkaCluster(3)]);
  const workers: WorkerProcess[] = [];
  const apis: ApiProcess[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'persona-fleet-'));
  let driver: ReturnType<typeof createDriver> | undefined;
  let proxy: TlsProxy | undefined;
  // Whatever was started goes again when the fleet cannot be made whole (its services run detached).
  const dispose = async () => {
    await proxy?.stop();
    await Promise.all([...apis, ...workers].map((p) => stopProcess(p, 5_000)));
    await driver?.close();
    await Promise.all([neo4j.dispose(), temporal.dispose(), kafka.dispose()]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    return await assemble();
  } catch (err) {
    await dispose().catch(() => undefined);
    throw err;
  }

  async function assemble(): Promise<Fleet> {
    const started = Date.now();
    await Promise.all([neo4j.start(), temporal.start(), kafka.start()]);
    log(`fleet ${run}: Neo4j, Temporal and three Kafka nodes of its own up in ${Date.now() - started} ms`);
    const env: Record<string, string> = {
      ...neo4j.env,
      ...temporal.env,
      KAFKA_BROKERS: kafka.brokers.join(','),
      PERSONA_KAFKA_REPLICATION: '3',
      PERSONA_KAFKA_EVENTS_PARTITIONS: '3',
      PERSONA_KAFKA_EVENTS_TOPIC: `fleet.${run}.persona.events`,
      PERSONA_KAFKA_INVALIDATIONS_TOPIC: `fleet.${run}.persona.invalidations`,
      PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: `fleet.${run}.payment-failures`,
      PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: `fleet.${run}.fraud-outcomes`,
      PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: `fleet.${run}.routing-outcomes`,
      PERSONA_KAFKA_DEAD_LETTER_TOPIC: `fleet.${run}.dead-letters`,
      PERSONA_KAFKA_CONSUMER_GROUP: `fleet-${run}`,
      // Both workers apply the singleton schedules and start the publisher and the relay: they race.
      PERSONA_SCHEDULES: 'apply',
      PERSONA_DEPLOYMENT_NAME: `persona-fleet-${run}`,
    };
    const config = loadConfig({ ...process.env, ...env });
    driver = createDriver(config);
    await migrate(driver, config.NEO4J_DATABASE);
    const graph = createGraph(driver, config.NEO4J_DATABASE, config.tokenKeys);

    // The workflow code prebuilt once, as the image carries it: a worker started again takes work at
    // once rather than bundling it under load first.
    let t = Date.now();
    await buildWorkflowBundles(path.join(dir, 'bundles'));
    env.PERSONA_WORKFLOW_BUNDLE_DIR = path.join(dir, 'bundles');
    log(`fleet ${run}: workflow bundles built in ${Date.now() - t} ms`);
    t = Date.now();
    for (let i = 0; i < 2; i++) workers.push(await startWorkerProcess(env, REPLICA));
    for (const started of await Promise.allSettled([0, 1].map(() => startApiProcess(env, [], REPLICA))))
      if (started.status === 'fulfilled') apis.push(started.value);
      else throw started.reason;
    log(`fleet ${run}: 2 workers and 2 apis ready in ${Date.now() - t} ms`);

    const [byCustomerPort, roundRobinPort, grpcPort] = [await freePort(), await freePort(), await freePort()];
    const conf = path.join(dir, 'haproxy.cfg');
    writeFileSync(
      conf,
      haproxyConfig(apis, { byCustomer: byCustomerPort, roundRobin: roundRobinPort, grpc: grpcPort }),
    );
    proxy = await startHaproxy(conf, byCustomerPort);
    const balancer = proxy;

    const fleet: Fleet = {
      run,
      config,
      graph,
      neo4j,
      temporal,
      kafka,
      workers,
      apis,
      byCustomer: `http://127.0.0.1:${byCustomerPort}`,
      roundRobin: `http://127.0.0.1:${roundRobinPort}`,
      grpcByCustomer: `127.0.0.1:${grpcPort}`,
      env,
      balancerLog: () => balancer.output(),
      async killWorker(i) {
        const w = workers[i] as WorkerProcess;
        w.child.kill('SIGKILL');
        await w.exited;
      },
      async stopWorker(i, graceMs) {
        const w = workers[i] as WorkerProcess;
        const t0 = Date.now();
        await stopProcess(w, graceMs);
        return { ms: Date.now() - t0, onItsOwn: w.child.signalCode !== 'SIGKILL' };
      },
      async restartWorker(i) {
        const t0 = Date.now();
        const w = await startWorkerProcess(env, { ...REPLICA, promote: false });
        // Held by the fleet before it is promoted: a promotion that fails leaves nothing running unseen.
        workers[i] = w;
        const ready = Date.now() - t0;
        await promoteWorker(env);
        log(`worker ${i} ready in ${ready} ms, its version current ${Date.now() - t0 - ready} ms later`);
      },
      async killApi(i) {
        const a = apis[i] as ApiProcess;
        a.child.kill('SIGKILL');
        await a.exited;
      },
      async restartApi(i) {
        const old = apis[i] as ApiProcess;
        apis[i] = await startApiProcess(
          {
            ...env,
            PERSONA_HTTP_PORT: new URL(old.url).port,
            PERSONA_GRPC_PORT: old.grpcAddress.split(':')[1] as string,
          },
          [],
          REPLICA,
        );
      },
      stop: dispose,
    };
    return fleet;
  }
}

/**
 * Two listeners, one per routing mode; in each, GETs go to the apis ready for reads and the rest to
 * those ready for writes. A connection refused (a replica just killed) is tried on another server.
 */
function haproxyConfig(apis: ApiProcess[], ports: { byCustomer: number; roundRobin: number; grpc: number }): string {
  const lines = [
    'global',
    '  maxconn 2000',
    '  log stdout format raw local0 notice',
    'defaults',
    '  log global',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 1m',
    '  timeout server 1m',
    '  retries 3',
    '  retry-on conn-failure',
    '  option redispatch',
    // A check is a request like any other: under load it takes a while, and a replica taken out of
    // rotation for a slow answer sends its share to the other one, slower still (the first version
    // checked every 300 ms with that as its timeout and flapped every server, the balancer then
    // answering 503 with no server up).
    '  timeout check 2s',
    '  default-server inter 1s fall 3 rise 2',
  ];
  for (const [mode, port, balance] of [
    [
      'customer',
      ports.byCustomer,
      ['  balance hdr(x-persona-customer)', '  hash-type consistent', '  hash-balance-factor 125'],
    ],
    ['rr', ports.roundRobin, ['  balance roundrobin']],
  ] as const) {
    lines.push(
      `frontend ${mode}`,
      `  bind 127.0.0.1:${port}`,
      '  acl read method GET',
      `  use_backend ${mode}_reads if read`,
      `  default_backend ${mode}_writes`,
    );
    for (const [path, kind] of [
      ['/readyz/read', 'reads'],
      ['/readyz/write', 'writes'],
    ] as const) {
      lines.push(`backend ${mode}_${kind}`, ...balance, `  option httpchk GET ${path}`);
      apis.forEach((api, i) => lines.push(`  server api${i} ${new URL(api.url).host} check`));
    }
  }
  // gRPC as ops/haproxy/haproxy.prod.cfg has it: h2c in, by the customer's metadata; the agents'
  // reads to the replicas ready for reads, the rest to those ready for writes, checked over HTTP/1.1
  // on each replica's REST port.
  lines.push(
    'frontend grpc',
    `  bind 127.0.0.1:${ports.grpc} proto h2`,
    '  acl agent_read path /persona.v1.PersonaAgent/GetCustomerContext /persona.v1.PersonaAgent/GetCheckoutOptions',
    '  use_backend grpc_reads if agent_read',
    '  default_backend grpc_writes',
  );
  for (const [path, kind] of [
    ['/readyz/read', 'reads'],
    ['/readyz/write', 'writes'],
  ] as const) {
    lines.push(
      `backend grpc_${kind}`,
      '  balance hdr(x-persona-customer)',
      '  hash-type consistent',
      '  hash-balance-factor 125',
      `  option httpchk GET ${path}`,
    );
    apis.forEach((api, i) =>
      lines.push(`  server api${i} ${api.grpcAddress} proto h2 check port ${new URL(api.url).port} check-proto h1`),
    );
  }
  return `${lines.join('\n')}\n`;
}
