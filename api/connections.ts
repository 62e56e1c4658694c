/**
 * The api process's connections, made in api/main.ts before it serves: Neo4j (schema checked, the
 * read path warmed up), Temporal (a lazy client, so the api starts while Temporal is down), and the
 * readiness probes' own connections to both.
 */
import { randomUUID } from 'node:crypto';
import { Connection, type Client } from '@temporalio/client';
import type { Driver } from 'neo4j-driver';
import type { Config } from '../config/env';
import { checkSchema, createDriver } from '../graph';
import { readCustomerSnapshot } from '../graph/context';
import { NotFoundError } from '../graph/errors';
import type { Graph } from '../graph/graph';
import type { Logger } from '../runtime/logger';
import type { RequestContext } from '../runtime/requestContext';
import type { Tracing } from '../runtime/tracing';
import { signedBookmarksToCarry } from '../temporal/bookmarkSeal';
import { connectTemporal, QUICK_RECONNECT } from '../temporal/connection';
import { describeTransport, temporalTransport } from '../temporal/transport';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';

/**
 * The api's Neo4j driver, connected and its graph schema checked. Callers wait on Neo4j for at
 * most the request deadline (the worker's driver waits longer).
 */
export async function connectNeo4j(config: Config, logger: Logger): Promise<Driver> {
  const driver = createDriver(config, { deadlineMs: config.PERSONA_REQUEST_DEADLINE_MS });
  await driver.verifyConnectivity({ database: config.NEO4J_DATABASE });
  // Migrating is the deploy's step (`npm run migrate`): this only refuses a graph not migrated yet.
  const schema = await checkSchema(driver, config.NEO4J_DATABASE, {
    reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
  });
  logger.info({ version: schema.version }, 'graph schema checked');
  return driver;
}

/**
 * The connections readiness asks on, of its own: Temporal without the client's retries, so a lost
 * Temporal shows at the next probe instead of after the retries run out; Neo4j from a pool of two,
 * so a busy request pool never takes the api out of rotation. With them, the Temporal transport
 * (TLS, API key) the api's client uses too.
 */
export function readinessProbes(config: Config): {
  probeDriver: Driver;
  transport: ReturnType<typeof temporalTransport>;
  probe: Connection;
} {
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
  return { probeDriver, transport, probe };
}

/**
 * The api's Temporal client. It puts the request id (and the trace) on every workflow start and
 * signal, gives every call the request deadline, and connects lazily: the api starts, and serves
 * context reads, while Temporal is down.
 */
export async function connectApiTemporal(
  config: Config,
  parts: {
    graph: Graph;
    requests: RequestContext;
    tracing: Tracing | null;
    transport: ReturnType<typeof temporalTransport>;
    logger: Logger;
  },
): Promise<{ connection: Connection; client: Client }> {
  const { graph, requests, tracing } = parts;
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
  parts.logger.info(
    { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE, ...describeTransport(parts.transport) },
    'Temporal client ready',
  );
  return { connection, client };
}

/**
 * The context read once before the api serves, on an id nobody has: Neo4j plans the query and
 * loads its index pages now, not under the first agent's request deadline (after a restart or a
 * restore the first read otherwise took longer than its 1 s and answered 503). A few tries, each
 * within the request deadline; a failure only logs: readiness reports Neo4j either way.
 */
export async function warmReadPath(graph: Graph, logger: Logger): Promise<void> {
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
