/**
 * The api process: REST (Hono) on PERSONA_HTTP_PORT. Connects to Neo4j and Temporal, migrates
 * the graph schema, serves, and stops cleanly on SIGTERM.
 */
import { serve } from '@hono/node-server';
import { ConfigError, loadConfig } from '../config/env';
import { createDriver, migrate } from '../graph';
import { neo4jCheck, temporalCheck } from '../runtime/checks';
import { checkAll } from '../runtime/health';
import { createLogger } from '../runtime/logger';
import { RequestContext } from '../runtime/requestContext';
import { startTracing } from '../runtime/tracing';
import { onShutdown } from '../runtime/shutdown';
import { connectTemporal } from '../temporal/connection';
import { graphFromConfig } from '../runtime/graph';
import { apiDepsFromConfig } from './deps';
import { createGrpcServer, listen, SERVICE_NAME } from './grpc/server';
import { createApiMetrics } from './observability';
import { parkedEventCount } from './services/relay';
import { createApp } from './rest/app';

async function main(): Promise<void> {
  const config = loadConfig();
  const requests = new RequestContext();
  // Every line written while a request is served names it.
  const logger = createLogger('persona-api', config.LOG_LEVEL, {
    context: () => (requests.requestId ? { requestId: requests.requestId } : {}),
  });

  const driver = createDriver(config);
  await driver.verifyConnectivity({ database: config.NEO4J_DATABASE });
  const schema = await migrate(driver, config.NEO4J_DATABASE);
  logger.info({ created: schema.created, ms: schema.ms }, 'graph schema ready');

  const tracing = startTracing('persona-api', config.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (tracing)
    logger.info(
      { collector: new URL(config.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').origin },
      'exporting OpenTelemetry traces',
    );
  // The client puts the request id (and the trace) on every workflow start and signal.
  const { connection, client } = await connectTemporal(config, {
    requestId: () => requests.requestId,
    plugins: tracing ? [tracing.temporal] : [],
  });
  logger.info({ address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE }, 'connected to Temporal');

  const deps = apiDepsFromConfig(config, {
    logger,
    readiness: [neo4jCheck(driver, config.NEO4J_DATABASE), temporalCheck(connection, config.TEMPORAL_NAMESPACE)],
    graph: graphFromConfig(driver, config),
    client,
    requests,
    metrics: createApiMetrics({ processMetrics: true, relayParked: () => parkedEventCount(client) }),
    tracer: tracing?.tracer,
  });
  const app = createApp(deps);

  const grpc = createGrpcServer(deps);
  const grpcPort = await listen(grpc.server, config.PERSONA_HTTP_HOST, config.PERSONA_GRPC_PORT);
  logger.info(
    { port: grpcPort },
    `gRPC ${SERVICE_NAME} listening on ${config.PERSONA_HTTP_HOST}:${grpcPort} (health and reflection on)`,
  );
  // The standard health service follows readiness: NOT_SERVING while Neo4j or Temporal is down.
  const healthTimer = setInterval(() => {
    void checkAll(deps.readiness).then((results) => {
      const serving = Object.values(results).every((r) => r === 'ok') ? 'SERVING' : 'NOT_SERVING';
      grpc.health.setStatus('', serving);
      grpc.health.setStatus(SERVICE_NAME, serving);
    });
  }, 5000);
  healthTimer.unref();

  const server = serve(
    { fetch: app.fetch, hostname: config.PERSONA_HTTP_HOST, port: config.PERSONA_HTTP_PORT },
    (info) =>
      logger.info(
        { port: info.port },
        `REST listening on http://${config.PERSONA_HTTP_HOST}:${info.port} (OpenAPI: /openapi.json, browse: /docs)`,
      ),
  );

  onShutdown(logger, [
    { name: 'gRPC server', run: () => new Promise<void>((resolve) => grpc.server.tryShutdown(() => resolve())) },
    {
      name: 'http server',
      run: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
    },
    { name: 'temporal connection', run: () => connection.close() },
    { name: 'neo4j driver', run: () => driver.close() },
    ...(tracing ? [{ name: 'tracing (flushing spans)', run: () => tracing.shutdown() }] : []),
  ]);
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
