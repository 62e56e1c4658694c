/**
 * The api process: REST (Hono) on PERSONA_HTTP_PORT and gRPC. Connects to Neo4j and Temporal,
 * checks the graph schema (`npm run migrate` is the deploy's step), serves, and stops cleanly on
 * SIGTERM.
 */
import { ConfigError, loadConfig } from '../config/env';
import { createLogger } from '../runtime/logger';
import { RequestContext } from '../runtime/requestContext';
import { startTracing } from '../runtime/tracing';
import { neo4jCheck, temporalCheck } from '../runtime/checks';
import { graphFromConfig, requestLimits } from '../runtime/graph';
import { kafkaEnabled } from '../clients/kafka';
import { connectApiTemporal, connectNeo4j, readinessProbes, warmReadPath } from './connections';
import { apiDepsFromConfig } from './deps';
import { createApiMetrics } from './observability';
import { publisherGauges, relayGauges } from './services/relay';
import { consumeAgentTopics, grpcHealthFollowsReadiness, serveRest, startGrpc } from './servers';
import { stopOnShutdown } from './shutdown';
import { createApp } from './rest/app';

/**
 * Starts the api process, in order: Neo4j, tracing, the readiness probes, the graph (its read
 * path warmed up), Temporal, the deps, gRPC (its health following readiness), the read cache's
 * tail, REST and the Kafka consumer; then registers the clean stop (api/shutdown.ts).
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const requests = new RequestContext();
  // Every line written while a request is served names it.
  const logger = createLogger('persona-api', config.LOG_LEVEL, {
    context: () => (requests.requestId ? { requestId: requests.requestId } : {}),
  });

  const driver = await connectNeo4j(config, logger);
  const tracing = startTracing('persona-api', config.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (tracing)
    logger.info(
      { collector: new URL(config.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').origin },
      'exporting OpenTelemetry traces',
    );
  const { probeDriver, transport, probe } = readinessProbes(config);

  const graph = graphFromConfig(driver, config, requestLimits(config, requests));
  await warmReadPath(graph, logger);
  const { connection, client } = await connectApiTemporal(config, { graph, requests, tracing, transport, logger });
  const deps = apiDepsFromConfig(config, {
    logger,
    readiness: [neo4jCheck(probeDriver, config.NEO4J_DATABASE), temporalCheck(probe, config.TEMPORAL_NAMESPACE)],
    graph,
    client,
    requests,
    metrics: createApiMetrics({
      processMetrics: true,
      certificates: config,
      relay: () => relayGauges(graph),
      ...(kafkaEnabled(config) ? { publisher: () => publisherGauges(graph, config.PERSONA_KAFKA_EVENTS_TOPIC) } : {}),
    }),
    tracer: tracing?.tracer,
  });
  const app = createApp(deps);

  const grpc = await startGrpc(config, deps, logger);
  const stopWatching = grpcHealthFollowsReadiness(grpc, deps);
  if (deps.readCache.settings.enabled) deps.invalidations.start();
  const server = serveRest(config, app, logger);
  const { kafka, consumer } = consumeAgentTopics(config, deps, logger);

  stopOnShutdown(logger, {
    stopWatching,
    consumer,
    kafka,
    deps,
    grpc,
    server,
    connection,
    probe,
    driver,
    probeDriver,
    tracing,
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
