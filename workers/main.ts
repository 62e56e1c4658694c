/**
 * The worker process: hosts Persona's workflows and activities, one Worker per kind of work on its
 * own task queue with its own slots (workers/workerSet.ts; `persona-charges`, `-interactive`,
 * `-bulk`, `-deliveries`; PERSONA_WORKER_KINDS may run only some). Connects to Neo4j and
 * Temporal, checks the graph schema (`npm run migrate` is the deploy's step), serves /healthz,
 * /readyz and /metrics on PERSONA_WORKER_HTTP_PORT, logs JSON lines that name each workflow, run
 * and request, creates or updates the Temporal Schedules (the daily card-expiry scan and
 * interaction-id prune), and drains cleanly on SIGTERM.
 */
import { ConfigError, loadConfig } from '../config/env';
import { createChimeraClient } from '../clients/chimera';
import { createLogger } from '../runtime/logger';
import { RequestContext } from '../runtime/requestContext';
import { startTracing } from '../runtime/tracing';
import { activityLogContext } from './logging';
import { connectGraph, connectWorkerTemporal, installSdkRuntime } from './connections';
import { startEventSequencer, startKafka } from './eventStreams';
import { buildWorkers } from './assembly';
import { applyWorkerSchedules } from './schedules';
import { closeWorker, drainOnSignals, logPolling, serveWorkerHttp } from './lifecycle';

/**
 * Starts the worker process, in order: the SDK's Runtime, Neo4j, tracing, Temporal, Kafka and the
 * sequencer, the Workers, the schedules, the HTTP server and the signal handlers; then runs every
 * Worker until they have drained, and closes what it opened (workers/lifecycle.ts).
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const requests = new RequestContext();
  // Lines written inside an activity name its workflow, run and request.
  const logger = createLogger('persona-worker', config.LOG_LEVEL, { context: activityLogContext(requests) });
  installSdkRuntime(config, logger);

  const { driver, graph } = await connectGraph(config, logger);
  const chimera = createChimeraClient(config.CHIMERA_URL, graph);
  logger.info(
    config.CHIMERA_URL
      ? `Chimera at ${config.CHIMERA_URL}`
      : 'no CHIMERA_URL: behavioural-profile requests are recorded as events',
  );

  const tracing = startTracing('persona-worker', config.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (tracing)
    logger.info(
      { collector: new URL(config.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').origin },
      'exporting OpenTelemetry traces',
    );
  const plugins = tracing ? [tracing.temporal] : [];

  const { connection, temporal, payloadCodec } = await connectWorkerTemporal(config, graph, plugins, logger);
  const { kafka, stopEnsuringTopics } = startKafka(config, logger);
  const { invalidations, sequencer } = startEventSequencer(config, graph, kafka, logger);
  const { workers, version } = await buildWorkers(config, {
    connection,
    traced: tracing !== null,
    plugins,
    requests,
    graph,
    chimera,
    payloadCodec,
    client: temporal.client,
    kafka,
    logger,
  });

  const afterStart = await applyWorkerSchedules(temporal.client, config, logger);
  const server = serveWorkerHttp(config, { driver, connection, workers });
  drainOnSignals(workers, logger);
  logPolling(config, workers, version, logger);
  try {
    const running = workers.run();
    for (const step of afterStart) step();
    await running;
    logger.info('every worker drained');
  } finally {
    const closed = await closeWorker(
      { server, stopEnsuringTopics, sequencer, invalidations, connection, temporal, kafka, driver, tracing },
      logger,
    );
    if (!closed) process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
