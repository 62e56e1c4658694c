/**
 * The api process: REST (Hono) on PERSONA_HTTP_PORT. Connects to Neo4j and Temporal, migrates
 * the graph schema, serves, and stops cleanly on SIGTERM.
 */
import { serve } from '@hono/node-server';
import { Connection } from '@temporalio/client';
import { ConfigError, loadConfig } from '../config/env';
import { randomUUID } from 'node:crypto';
import { checkSchema, createDriver } from '../graph';
import { readCustomerSnapshot } from '../graph/context';
import { NotFoundError } from '../graph/errors';
import type { Graph } from '../graph/graph';
import { neo4jCheck, temporalCheck } from '../runtime/checks';
import { pathReadiness, watchReadiness } from '../runtime/health';
import { createLogger, type Logger } from '../runtime/logger';
import { RequestContext } from '../runtime/requestContext';
import { startTracing } from '../runtime/tracing';
import { onShutdown } from '../runtime/shutdown';
import { signedBookmarksToCarry } from '../temporal/bookmarkSeal';
import { connectTemporal, QUICK_RECONNECT } from '../temporal/connection';
import { describeTransport, temporalTransport } from '../temporal/transport';
import { graphFromConfig, requestLimits } from '../runtime/graph';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';
import { READINESS_PATHS } from './deadlines';
import { apiDepsFromConfig } from './deps';
import { createGrpcServer, grpcCredentials, grpcServerOptions, listen, SERVICE_NAME } from './grpc/server';
import { createApiMetrics } from './observability';
import { publisherGauges, relayGauges } from './services/relay';
import { createKafkaProducer, ensureTopics, kafkaEnabled } from '../clients/kafka';
import { superviseAgentConsumer, type SupervisedConsumer } from './kafkaConsumer';
import { createApp } from './rest/app';

async function main(): Promise<void> {
  const config = loadConfig();
  const requests = new RequestContext();
  // Every line written while a request is served names it.
  const logger = createLogger('persona-api', config.LOG_LEVEL, {
    context: () => (requests.requestId ? { requestId: requests.requestId } : {}),
  });

  // Callers wait on Neo4j for at most the request deadline (the worker's driver waits longer).
  const driver = createDriver(config, { deadlineMs: config.PERSONA_REQUEST_DEADLINE_MS });
  await driver.verifyConnectivity({ database: config.NEO4J_DATABASE });
  // Migrating is the deploy's step (`npm run migrate`): this only refuses a graph not migrated yet.
  const schema = await checkSchema(driver, config.NEO4J_DATABASE, {
    reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
  });
  logger.info({ version: schema.version }, 'graph schema checked');

  const tracing = startTracing('persona-api', config.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (tracing)
    logger.info(
      { collector: new URL(config.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').origin },
      'exporting OpenTelemetry traces',
    );
  // Readiness asks on connections of its own: Temporal without the client's retries, so a lost
  // Temporal shows at the next probe instead of after the retries run out; Neo4j from a pool of
  // two, so a busy request pool never takes the api out of rotation.
  const probeDriver = createDriver(config, { maxConnectionPoolSize: 2, deadlineMs: 1000 });
  // Every Temporal connection goes with the configured TLS and API key (temporal/transport.ts).
  const transport = temporalTransport(config);
  const probe = Connection.lazy({
    address: config.TEMPORAL_ADDRESS,
    ...transport,
    connectTimeout: '1s',
    interceptors: [],
    channelArgs: QUICK_RECONNECT,
  });

  const graph = graphFromConfig(driver, config, requestLimits(config, requests));
  await warmReadPath(graph, logger);
  // The client puts the request id (and the trace) on every workflow start and signal, gives
  // every call the request deadline, and connects lazily: the api starts, and serves context
  // reads, while Temporal is down.
  const { connection, client } = await connectTemporal(config, {
    requestId: () => requests.requestId,
    // And the bookmarks of the api's writes: the workflow's activities read at or past them.
    bookmarks: () => signedBookmarksToCarry(graph, config.payloadKeys),
    plugins: tracing ? [tracing.temporal] : [],
    callDeadlineMs: config.PERSONA_REQUEST_DEADLINE_MS,
    lazy: true,
    // Every payload encrypted: under the workflow's history key (made in the graph when it starts)
    // for a customer's workflow, the active service key otherwise.
    payloadCodec: payloadCodecFromConfig(config, graph, 'encode'),
  });
  logger.info(
    { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE, ...describeTransport(transport) },
    'Temporal client ready',
  );
  const deps = apiDepsFromConfig(config, {
    logger,
    readiness: [neo4jCheck(probeDriver, config.NEO4J_DATABASE), temporalCheck(probe, config.TEMPORAL_NAMESPACE)],
    graph,
    client,
    requests,
    metrics: createApiMetrics({
      processMetrics: true,
      relay: () => relayGauges(graph),
      ...(kafkaEnabled(config) ? { publisher: () => publisherGauges(graph, config.PERSONA_KAFKA_EVENTS_TOPIC) } : {}),
    }),
    tracer: tracing?.tracer,
  });
  const app = createApp(deps);

  const grpcOptions = grpcServerOptions(config);
  const grpc = createGrpcServer(deps, grpcOptions);
  const grpcPort = await listen(
    grpc.server,
    config.PERSONA_HTTP_HOST,
    config.PERSONA_GRPC_PORT,
    grpcCredentials(config),
  );
  logger.info(
    { port: grpcPort, tls: Boolean(config.PERSONA_GRPC_TLS_CERT), mtls: Boolean(config.PERSONA_GRPC_TLS_CA) },
    `gRPC ${SERVICE_NAME} listening on ${config.PERSONA_HTTP_HOST}:${grpcPort} ` +
      `(health on, reflection ${grpcOptions.reflection ? 'on' : 'off'})`,
  );
  // The standard health service follows readiness, checked every half second: the whole server
  // ('') needs Neo4j and Temporal; persona.v1.PersonaAgent stays SERVING while the agents'
  // context reads can be answered (they need Neo4j only), so a Temporal outage keeps it in
  // rotation for reads.
  // NOT_SERVING until the first round has checked; afterwards set only on a change, so
  // clients watching a status hear of changes, not of every round.
  const statuses = new Map<string, 'SERVING' | 'NOT_SERVING'>();
  const setStatus = (service: string, status: 'SERVING' | 'NOT_SERVING'): void => {
    if (statuses.get(service) === status) return;
    statuses.set(service, status);
    grpc.health.setStatus(service, status);
  };
  setStatus('', 'NOT_SERVING');
  setStatus(SERVICE_NAME, 'NOT_SERVING');
  const stopWatching = watchReadiness(deps.readiness, (results) => {
    const ready = pathReadiness(READINESS_PATHS, results);
    setStatus('', Object.values(results).every((r) => r === 'ok') ? 'SERVING' : 'NOT_SERVING');
    // While its cache can answer (stale), the agents' service stays in rotation: see /readyz/read.
    const degraded = deps.readCache.settings.enabled && deps.readCache.size > 0;
    setStatus(SERVICE_NAME, ready.read || degraded ? 'SERVING' : 'NOT_SERVING');
  });
  if (deps.readCache.settings.enabled) deps.invalidations.start();

  const server = serve(
    { fetch: app.fetch, hostname: config.PERSONA_HTTP_HOST, port: config.PERSONA_HTTP_PORT },
    (info) =>
      logger.info(
        { port: info.port },
        `REST listening on http://${config.PERSONA_HTTP_HOST}:${info.port} (OpenAPI: /openapi.json, browse: /docs)`,
      ),
  );

  // Kafka (KAFKA_BROKERS): the agents' topics feed the same services as the routes. Started in
  // the background, tried again until the broker answers, and started again whenever a stream
  // ends (Kafka away for longer than the client's retries): REST and gRPC do not wait for it.
  const kafka = kafkaEnabled(config) ? createKafkaProducer(config, 'persona-api') : undefined;
  let consumer: SupervisedConsumer | undefined;
  if (kafka)
    consumer = superviseAgentConsumer({
      settings: config,
      deps,
      producer: kafka,
      logger,
      ensureTopics: () => ensureTopics(config),
    });
  else logger.info('no KAFKA_BROKERS: the agents report over REST and gRPC only');
  if (consumer) {
    const c = consumer;
    deps.metrics.kafkaConsumer.view = () => ({ consuming: c.consuming, restarts: c.interruptions });
  }

  onShutdown(logger, [
    { name: 'readiness watch', run: async () => stopWatching() },
    {
      name: 'Kafka consumer',
      run: async () => {
        await consumer?.close();
        await kafka?.close();
      },
    },
    { name: 'read cache tail', run: () => deps.invalidations.stop() },
    { name: 'gRPC server', run: () => new Promise<void>((resolve) => grpc.server.tryShutdown(() => resolve())) },
    {
      name: 'http server',
      run: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
    },
    { name: 'temporal connection', run: () => connection.close() },
    { name: 'temporal readiness probe', run: () => probe.close() },
    { name: 'neo4j driver', run: () => driver.close() },
    { name: 'neo4j readiness driver', run: () => probeDriver.close() },
    ...(tracing ? [{ name: 'tracing (flushing spans)', run: () => tracing.shutdown() }] : []),
  ]);
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});

/**
 * The context read once before the api serves, on an id nobody has: Neo4j plans the query and
 * loads its index pages now, not under the first agent's request deadline (after a restart or a
 * restore the first read otherwise took longer than its 1 s and answered 503). A few tries, each
 * within the request deadline; a failure only logs: readiness reports Neo4j either way.
 */
async function warmReadPath(graph: Graph, logger: Logger): Promise<void> {
  const started = Date.now();
  for (let attempt = 1; attempt <= 5; attempt++) {
    try {
      await readCustomerSnapshot(graph, randomUUID());
      logger.info({ ms: Date.now() - started, attempts: attempt }, 'read path warmed up');
      return;
    } catch (err) {
      if (err instanceof NotFoundError) {
        logger.info({ ms: Date.now() - started, attempts: attempt }, 'read path warmed up');
        return;
      }
      if (attempt === 5)
        logger.warn({ err, ms: Date.now() - started }, 'read path not warmed up: the first reads may be slow');
    }
  }
}
