/**
 * The worker process's life around its Workers: the HTTP server (/healthz, /readyz, /metrics on
 * PERSONA_WORKER_HTTP_PORT), the one drain on SIGTERM or SIGINT, the lines that say what polls,
 * and the closing of everything the process opened, in order, once every Worker has drained.
 */
import { serve, type ServerType } from '@hono/node-server';
import type { Connection } from '@temporalio/client';
import type { Hono } from 'hono';
import type { NativeConnection } from '@temporalio/worker';
import type { Driver } from 'neo4j-driver';
import { workerSlots, type Config } from '../config/env';
import type { KafkaProducer } from '../clients/kafka';
import { neo4jCheck, temporalCheck } from '../runtime/checks';
import { healthRoutes } from '../runtime/health';
import type { Logger } from '../runtime/logger';
import { createRegistry, metricsRoutes } from '../runtime/metrics';
import type { Tracing } from '../runtime/tracing';
import type { EventSequencer } from './eventSequencer';
import { workerMetricsPage } from './metrics';
import { certificateExpiryGauge, type CERTIFICATE_VARIABLES } from '../runtime/certificates';
import type { WorkerSet } from './workerSet';

/** Serves workerHttpApp's /healthz, /readyz and /metrics on PERSONA_WORKER_HTTP_PORT. */
export function serveWorkerHttp(
  config: Config,
  parts: { driver: Driver; connection: NativeConnection; workers: WorkerSet },
): ServerType {
  return serve({
    fetch: workerHttpApp(config, parts).fetch,
    hostname: config.PERSONA_HTTP_HOST,
    port: config.PERSONA_WORKER_HTTP_PORT,
  });
}

/**
 * /healthz, /readyz and /metrics. Ready while Neo4j and Temporal answer and every kind's Worker
 * runs; /metrics has the SDK exporter's text, the business series and Node's, and needs
 * PERSONA_METRICS_TOKEN when it is set, as the api's does (production requires it).
 */
export function workerHttpApp(
  config: Pick<
    Config,
    | 'NEO4J_DATABASE'
    | 'TEMPORAL_NAMESPACE'
    | 'PERSONA_WORKER_SDK_METRICS_PORT'
    | 'PERSONA_METRICS_TOKEN'
    | (typeof CERTIFICATE_VARIABLES)[number]
  >,
  parts: { driver: Driver; connection: NativeConnection; workers: Pick<WorkerSet, 'notRunning'> },
): Hono {
  const { workers } = parts;
  const health = healthRoutes({
    service: 'persona-worker',
    checks: [
      neo4jCheck(parts.driver, config.NEO4J_DATABASE),
      temporalCheck(parts.connection, config.TEMPORAL_NAMESPACE),
      {
        name: 'worker',
        // Ready only while every kind's Worker runs.
        check: async () => {
          const stopped = workers.notRunning();
          if (stopped.length > 0) throw new Error(stopped.join('; '));
        },
      },
    ],
  });
  health.route(
    '/',
    metricsRoutes(workerMetricsPage(config.PERSONA_WORKER_SDK_METRICS_PORT, workerRegistry(config)), {
      token: config.PERSONA_METRICS_TOKEN,
    }),
  );
  return health;
}

/** The first SIGTERM or SIGINT drains every Worker (the SDK's Runtime leaves the signals to the worker). */
export function drainOnSignals(workers: WorkerSet, logger: Logger): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: draining every worker');
      workers.shutdown();
    });
  }
}

/** Says what is about to poll: each kind's task queue and slots, then the queues and the deployment version. */
export function logPolling(
  config: Config,
  workers: WorkerSet,
  version: { deploymentName: string; buildId: string },
  logger: Logger,
): void {
  for (const w of workers.workers) {
    const slots = workerSlots(config, w.kind);
    logger.info(
      { kind: w.kind, taskQueue: w.taskQueue, activitySlots: slots.activities, workflowTaskSlots: slots.workflowTasks },
      `${w.kind} worker: task queue ${w.taskQueue}, ${slots.activities} activity and ` +
        `${slots.workflowTasks} workflow-task slots`,
    );
  }
  logger.info(
    {
      taskQueues: workers.workers.map((w) => w.taskQueue),
      namespace: config.TEMPORAL_NAMESPACE,
      healthPort: config.PERSONA_WORKER_HTTP_PORT,
      deploymentName: version.deploymentName,
      buildId: version.buildId,
    },
    `worker polling ${workers.workers.length} task queue(s) as deployment version ` +
      `${version.deploymentName}.${version.buildId} (tasks come once it is current or ramping: npm run deploy:status)`,
  );
}

/** Everything the worker process opened, closed by `closeWorker`; undefined (or null) what it did not open. */
export interface WorkerResources {
  server: ServerType;
  stopEnsuringTopics: AbortController;
  sequencer: EventSequencer | undefined;
  invalidations: KafkaProducer | undefined;
  connection: NativeConnection;
  temporal: { connection: Connection };
  kafka: KafkaProducer | undefined;
  driver: Driver;
  tracing: Tracing | null;
}

/**
 * Closes what the worker opened, once its Workers have stopped: the HTTP server first, the
 * sequencer before the producers and connections it uses, the driver after everything that
 * writes, the traces flushed last. A step that fails is logged, naming what it closed, and the
 * next goes on: one broken connection must not leave the driver or the traces open. False when
 * any step failed (the process then exits non-zero).
 */
export async function closeWorker(r: WorkerResources, logger: Logger): Promise<boolean> {
  const steps: [string, () => unknown][] = [
    ['the HTTP server', () => new Promise<void>((resolve) => r.server.close(() => resolve()))],
    ['the topics being ensured', () => r.stopEnsuringTopics.abort()],
    ['the event sequencer', () => r.sequencer?.stop()],
    ['the invalidations producer', () => r.invalidations?.close()],
    ["the Workers' Temporal connection", () => r.connection.close()],
    ["the client's Temporal connection", () => r.temporal.connection.close()],
    ['the Kafka producer', () => r.kafka?.close()],
    ['the Neo4j driver', () => r.driver.close()],
    ['the traces', () => r.tracing?.shutdown()],
  ];
  let closed = true;
  for (const [what, close] of steps) {
    try {
      await close();
    } catch (err) {
      closed = false;
      logger.error({ err }, `could not close ${what}; closing the rest`);
    }
  }
  logger.info(closed ? 'bye' : 'bye, with something left unclosed (logged above)');
  return closed;
}

/** The worker's own registry: Node's metrics, and when the certificates it runs on expire. */
function workerRegistry(config: Parameters<typeof certificateExpiryGauge>[1]) {
  const registry = createRegistry({ processMetrics: true });
  certificateExpiryGauge(registry, config);
  return registry;
}
