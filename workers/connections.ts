/**
 * The worker process's connections, made in workers/main.ts before any Worker exists: the Temporal
 * SDK's Runtime (its logging and its metrics exporter), Neo4j (schema checked) and Temporal (the
 * Workers' NativeConnection, and a client for activities and schedules, its namespace checked).
 */
import type { Driver } from 'neo4j-driver';
import type { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { ConfigError, type Config } from '../config/env';
import { countersQueueOf, graphSessionsOf } from './workerSet';
import { SETTLE_CONCURRENCY } from '../activities/reconciliation';
import { checkSchema, createDriver } from '../graph';
import type { Graph } from '../graph/graph';
import { graphFromConfig } from '../runtime/graph';
import type { Logger } from '../runtime/logger';
import type { Tracing } from '../runtime/tracing';
import { payloadCodecFromConfig, type PersonaPayloadCodec } from '../temporal/payloadCodec';
import { signedBookmarksToCarry } from '../temporal/bookmarkSeal';
import { connectTemporal, missingSearchAttributes } from '../temporal/connection';
import { describeTransport, nativeConnectionOptions } from '../temporal/transport';
import { coreLogForwarding, sdkLogger } from './logging';
import { initBusinessCounters, sdkMetricsTelemetry } from './metrics';

/**
 * Installs the SDK's Runtime before anything uses it. The SDK logs through the same JSON logger, its
 * native core's lines included; the worker, not the Runtime, decides when to stop: SIGTERM drains it
 * (workers/lifecycle.ts). Its metrics (and the workflows' business counters) go to an exporter on
 * loopback, served on /metrics. A port the exporter cannot listen on is a configuration error.
 */
export function installSdkRuntime(config: Config, logger: Logger): void {
  try {
    Runtime.install({
      shutdownSignals: [],
      logger: sdkLogger(logger),
      telemetryOptions: {
        ...sdkMetricsTelemetry(config.PERSONA_WORKER_SDK_METRICS_PORT),
        logging: coreLogForwarding(logger),
      },
    });
  } catch (err) {
    throw new ConfigError([
      `PERSONA_WORKER_SDK_METRICS_PORT: the Temporal SDK's metrics exporter cannot listen on ` +
        `127.0.0.1:${config.PERSONA_WORKER_SDK_METRICS_PORT} ` +
        `(${err instanceof Error ? err.message : String(err)}); choose a free port`,
    ]);
  }
  initBusinessCounters(Runtime.instance().metricMeter, {
    namespace: config.TEMPORAL_NAMESPACE,
    queueOf: countersQueueOf(config),
  });
}

/**
 * The worker's one Neo4j driver, connected and its graph schema checked, and the graph built on it.
 * Its pool is sized so that no activity waits for a pooled connection.
 */
export async function connectGraph(config: Config, logger: Logger): Promise<{ driver: Driver; graph: Graph }> {
  // No activity waits for a pooled connection: one per activity slot of every kind run here (a bulk
  // slot's reconciliation page SETTLE_CONCURRENCY), and some to spare (workers/workerSet.ts).
  const driver = createDriver(config, { maxConnectionPoolSize: graphSessionsOf(config, SETTLE_CONCURRENCY) + 10 });
  await driver.verifyConnectivity({ database: config.NEO4J_DATABASE });
  // Migrating is the deploy's step (`npm run migrate`): this only refuses a graph not migrated yet.
  const schema = await checkSchema(driver, config.NEO4J_DATABASE, {
    reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
  });
  logger.info({ version: schema.version }, 'graph schema checked');
  const graph = graphFromConfig(driver, config);
  return { driver, graph };
}

/**
 * Connects to Temporal twice: the Workers' NativeConnection and a client (for activities that find
 * other workflows, and for the schedules), both with the configured transport, the client with the
 * payload codec it shares with the Workers. Refuses a namespace without the search attributes.
 */
export async function connectWorkerTemporal(
  config: Config,
  graph: Graph,
  plugins: Tracing['temporal'][],
  logger: Logger,
): Promise<{
  connection: NativeConnection;
  temporal: { connection: Connection; client: Client };
  payloadCodec: PersonaPayloadCodec;
}> {
  // TLS, mTLS and the API key as configured (temporal/transport.ts), the same as the client's.
  const nativeOptions = nativeConnectionOptions(config);
  const connection = await NativeConnection.connect(nativeOptions);
  logger.info(
    { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE, ...describeTransport(nativeOptions) },
    'connected to Temporal',
  );
  // A client too: activities that find other workflows use it, and the schedules are applied with it.
  // Every payload the worker and its client send is encrypted, and every one they receive decrypted
  // (temporal/payloadCodec.ts): history keys read from the graph, kept in memory for a while.
  const payloadCodec = payloadCodecFromConfig(config, graph, 'all');
  // Its activities' signals and Updates (an erasure's to a recovery) carry their writes' bookmarks.
  const temporal = await connectTemporal(config, {
    plugins,
    payloadCodec,
    bookmarks: () => signedBookmarksToCarry(graph, config.payloadKeys),
  });
  await checkSearchAttributes(temporal.connection, config, logger);
  return { connection, temporal, payloadCodec };
}

/**
 * Refuses to start in a namespace without Persona's search attributes (a configuration error
 * naming them); one whose attributes cannot be listed is only warned about.
 */
async function checkSearchAttributes(connection: Connection, config: Config, logger: Logger): Promise<void> {
  // The recovery sets PersonaRecoveryState and PersonaAttentionReason on every change: in a
  // namespace without them its workflow tasks would fail, every recovery stuck, until they exist.
  const missing = await missingSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  if (missing === null)
    logger.warn(
      { namespace: config.TEMPORAL_NAMESPACE },
      "could not list the namespace's search attributes: not checked (docs/deployment.md names them)",
    );
  else if (missing.length > 0)
    throw new ConfigError([
      `TEMPORAL_NAMESPACE: ${config.TEMPORAL_NAMESPACE} lacks the search attributes ${missing.join(', ')}; ` +
        'register each as a Keyword (temporal operator search-attribute create --name <name> --type Keyword)',
    ]);
}
