/**
 * The api's ways in, started by api/main.ts once its deps are built: the gRPC server (its standard
 * health service following readiness), the REST server, and, with Kafka on, the supervised
 * consumer of the agents' topics.
 */
import { serve, type ServerType } from '@hono/node-server';
import type { Config } from '../config/env';
import { pathReadiness, watchReadiness } from '../runtime/health';
import type { Logger } from '../runtime/logger';
import { createKafkaProducer, ensureTopics, kafkaEnabled, type KafkaProducer } from '../clients/kafka';
import { READINESS_PATHS } from './deadlines';
import type { ApiDeps } from './deps';
import { createGrpcServer, grpcCredentials, grpcServerOptions, listen, SERVICE_NAME } from './grpc/server';
import { superviseAgentConsumer, type SupervisedConsumer } from './kafkaConsumer';
import type { createApp } from './rest/app';

/** The gRPC server and its standard health service (api/grpc/server.ts). */
export type GrpcServer = ReturnType<typeof createGrpcServer>;

/** Builds the gRPC server on the deps and binds it on PERSONA_GRPC_PORT (TLS as configured), logging where. */
export async function startGrpc(config: Config, deps: ApiDeps, logger: Logger): Promise<GrpcServer> {
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
  return grpc;
}

/**
 * Makes the standard gRPC health service follow readiness, checked every half second: the whole
 * server ('') needs Neo4j and Temporal; persona.v1.PersonaAgent stays SERVING while the agents'
 * context reads can be answered (they need Neo4j only), so a Temporal outage keeps it in rotation
 * for reads. Returns what stops the watch.
 */
export function grpcHealthFollowsReadiness(grpc: GrpcServer, deps: ApiDeps): () => void {
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
  return watchReadiness(deps.readiness, (results) => {
    const ready = pathReadiness(READINESS_PATHS, results);
    setStatus('', Object.values(results).every((r) => r === 'ok') ? 'SERVING' : 'NOT_SERVING');
    // While its cache can answer (stale), the agents' service stays in rotation: see /readyz/read.
    const degraded = deps.readCache.settings.enabled && deps.readCache.size > 0;
    setStatus(SERVICE_NAME, ready.read || degraded ? 'SERVING' : 'NOT_SERVING');
  });
}

/** Serves the REST app on PERSONA_HTTP_PORT, logging where once it listens. */
export function serveRest(config: Config, app: ReturnType<typeof createApp>, logger: Logger): ServerType {
  return serve({ fetch: app.fetch, hostname: config.PERSONA_HTTP_HOST, port: config.PERSONA_HTTP_PORT }, (info) =>
    logger.info(
      { port: info.port },
      `REST listening on http://${config.PERSONA_HTTP_HOST}:${info.port} (OpenAPI: /openapi.json, browse: /docs)`,
    ),
  );
}

/**
 * Kafka (KAFKA_BROKERS): the agents' topics feed the same services as the routes. Started in the
 * background, tried again until the broker answers, and started again whenever a stream ends
 * (Kafka away for longer than the client's retries): REST and gRPC do not wait for it. The
 * consumer's state goes to /metrics. Both are undefined when Kafka is off.
 */
export function consumeAgentTopics(
  config: Config,
  deps: ApiDeps,
  logger: Logger,
): { kafka: KafkaProducer | undefined; consumer: SupervisedConsumer | undefined } {
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
  return { kafka, consumer };
}
