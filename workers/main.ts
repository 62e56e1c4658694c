/**
 * The worker process: hosts Persona's workflows and activities, one Worker per kind of work on its
 * own task queue with its own slots (workers/workerSet.ts; `persona-charges`, `-interactive`,
 * `-bulk`, `-deliveries`; PERSONA_WORKER_KINDS may run only some). Connects
 * to Neo4j and Temporal, migrates the graph schema, serves /healthz, /readyz and /metrics on
 * PERSONA_WORKER_HTTP_PORT, logs JSON lines that name each workflow, run and request, creates
 * or updates the Temporal Schedules (the daily card-expiry scan and interaction-id prune), and drains
 * cleanly on SIGTERM.
 */
import { serve } from '@hono/node-server';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { createActivities } from '../activities';
import {
  chargePolicy,
  ConfigError,
  loadConfig,
  profileRules,
  workerDeploymentVersion,
  workerSlots,
} from '../config/env';
import { countersQueueOf, createWorkerSet, graphSessionsOf } from './workerSet';
import { SETTLE_CONCURRENCY } from '../activities/reconciliation';
import { createChimeraClient } from '../clients/chimera';
import { createNotificationSink } from '../clients/notifications';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import { checkSchema, createDriver } from '../graph';
import { graphFromConfig, publisherEventKeys } from '../runtime/graph';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';
import { neo4jCheck, temporalCheck } from '../runtime/checks';
import { healthRoutes } from '../runtime/health';
import { createRegistry, metricsRoutes } from '../runtime/metrics';
import { createLogger } from '../runtime/logger';
import { RequestContext } from '../runtime/requestContext';
import { startTracing } from '../runtime/tracing';
import { signedBookmarksToCarry } from '../temporal/bookmarkSeal';
import { connectTemporal, missingSearchAttributes } from '../temporal/connection';
import { describeTransport, nativeConnectionOptions } from '../temporal/transport';
import { applySchedules } from '../temporal/schedules';
import {
  ensureEventRelay,
  ensureKafkaPublisher,
  reconcileEventRelay,
  reconcileKafkaPublisher,
  type Reconciled,
} from '../temporal/singletons';
import { createKafkaProducer, ensureTopics, ensureTopicsUntilDone, kafkaEnabled } from '../clients/kafka';
import { EventSequencer } from './eventSequencer';
import { WORKFLOWS_PATH, workflowBundlePath } from './bundle';
import {
  activityLogContext,
  coreLogForwarding,
  sdkLogger,
  withActivityInterceptor,
  workerInterceptors,
} from './logging';
import { openProcessActivityInterceptor, openProcessSinks } from './openProcesses';
import { initBusinessCounters, sdkMetricsTelemetry, workerMetricsPage } from './metrics';
import { loadRuleTable } from '../payments/ruleTables';

async function main(): Promise<void> {
  const config = loadConfig();
  const requests = new RequestContext();
  // Lines written inside an activity name its workflow, run and request.
  const logger = createLogger('persona-worker', config.LOG_LEVEL, { context: activityLogContext(requests) });
  // The SDK logs through the same JSON logger, its native core's lines included; the worker,
  // not the Runtime, decides when to stop: SIGTERM drains it (below).
  // Its metrics (and the workflows' business counters) go to an exporter on loopback, served on /metrics below.
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
  // The recovery sets PersonaRecoveryState and PersonaAttentionReason on every change: in a
  // namespace without them its workflow tasks would fail, every recovery stuck, until they exist.
  const missing = await missingSearchAttributes(temporal.connection, config.TEMPORAL_NAMESPACE);
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
  // The worker acts on no payload its codec did not write: each one refused is a log line naming
  // its workflow and a count on /metrics by task queue (the workflow fails at once: workflows/interceptors.ts).
  const workerCodec = (taskQueue: string) => {
    const refusedPayloads = Runtime.instance()
      .metricMeter.withTags({ namespace: config.TEMPORAL_NAMESPACE, taskQueue })
      .createCounter(
        'persona_payloads_refused',
        'payloads',
        "Payloads Persona's codec did not write (plaintext sent straight to Temporal), refused by the worker",
      );
    refusedPayloads.add(0);
    return payloadCodec.marking((refusal) => {
      refusedPayloads.add(1);
      logger.error(
        { workflowId: refusal.workflowId, activityId: refusal.activityId, taskQueue },
        `refused a payload for workflow ${refusal.workflowId ?? '(unknown)'}: ${refusal.reason}`,
      );
    });
  };
  // Kafka (KAFKA_BROKERS): the topics Persona needs, and the idempotent producer the publisher uses.
  // The topics are made beside the start, not before it: Kafka away (a broker down, the cluster
  // unreachable) must not keep the worker from running recoveries, erasures and relays.
  const kafka = kafkaEnabled(config) ? createKafkaProducer(config, 'persona-worker') : undefined;
  const stopEnsuringTopics = new AbortController();
  if (kafka) {
    logger.info({ brokers: config.kafkaBrokers }, `Kafka at ${config.KAFKA_BROKERS}`);
    void ensureTopicsUntilDone(() => ensureTopics(config), {
      signal: stopEnsuringTopics.signal,
      onError: (err, attempt, retryInMs) =>
        logger.warn(
          { err, attempt, retryInMs },
          `could not make the Kafka topics (${(err as Error).message}); trying again in ${retryInMs} ms ` +
            '(the publisher waits for its topic meanwhile)',
        ),
    })
      .then((made) => {
        if (made)
          logger.info({ made }, made.length ? `made the Kafka topics ${made.join(', ')}` : 'Kafka topics there');
      })
      .catch((err: unknown) => logger.error({ err }, 'making the Kafka topics stopped'));
  } else logger.info('no KAFKA_BROKERS: Kafka is off (the feed and the webhooks are unchanged)');
  // The event log's numbering (graph/sequencer.ts) and the api replicas' invalidations: its own
  // producer, so a publisher page never holds up an invalidation.
  const invalidations = kafka ? createKafkaProducer(config, 'persona-sequencer') : undefined;
  const sequencer =
    config.PERSONA_EVENT_SEQUENCER === 'on'
      ? new EventSequencer(
          graph,
          {
            pollMs: config.PERSONA_EVENT_SEQUENCER_POLL_MS,
            tickMs: config.PERSONA_EVENT_SEQUENCER_TICK_MS,
            batch: 500,
            ...(invalidations
              ? {
                  kafka: {
                    producer: invalidations,
                    topic: config.PERSONA_KAFKA_INVALIDATIONS_TOPIC,
                    keys: config.payloadKeys,
                  },
                }
              : {}),
          },
          logger,
        )
      : undefined;
  if (sequencer) {
    sequencer.start();
    logger.info(
      invalidations
        ? `numbering the event log; invalidations to ${config.PERSONA_KAFKA_INVALIDATIONS_TOPIC}`
        : 'numbering the event log (no Kafka: api replicas poll it)',
    );
  } else logger.info('PERSONA_EVENT_SEQUENCER=off: another process numbers the event log');
  const workflowCode = workflowCodeOption(config.PERSONA_WORKFLOW_BUNDLE_DIR, tracing !== null);
  logger.info(
    'workflowBundle' in workflowCode
      ? `workflow code from the prebuilt bundle ${workflowCode.workflowBundle.codePath}`
      : 'no PERSONA_WORKFLOW_BUNDLE_DIR: bundling the workflow code now',
  );
  const gateway = new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, config.PERSONA_GATEWAY_TIMEOUT_MS);
  // Read and checked now: a table that does not parse stops the worker, not a charge.
  const networkRules = loadRuleTable(config.PERSONA_NETWORK_RULES_VERSION);
  logger.info({ version: networkRules.version, rules: networkRules.rules.length }, 'card-network rules loaded');
  // Every Worker polls as this Worker Deployment version (workers/workerSet.ts).
  const version = workerDeploymentVersion(config);
  const workers = await createWorkerSet(config, {
    connection,
    workflowCode,
    traced: tracing !== null,
    interceptors: withActivityInterceptor(
      workerInterceptors(requests, { graph, keys: config.payloadKeys }),
      // Recoveries and fraud outcomes join their customer's open processes (workers/openProcesses.ts).
      openProcessActivityInterceptor(graph, payloadCodec),
    ),
    sinks: openProcessSinks(graph, (workflowId, err) =>
      logger.warn({ workflowId, err }, `could not remove closed workflow ${workflowId} from its open processes`),
    ),
    plugins,
    payloadCodec: workerCodec,
    activities: createActivities({
      graph,
      chimera,
      gateway,
      gatewayRecords: gateway,
      cards: gateway,
      updater: gateway,
      networkRules,
      chargePolicy: chargePolicy(config),
      notifications: createNotificationSink(config.PERSONA_NOTIFY_WEBHOOK_URL, logger, {
        revealCodes: config.PERSONA_LOG_NOTIFICATION_CODES === 'true',
      }),
      trustThreshold: config.PERSONA_TRUST_THRESHOLD,
      profileRules: profileRules(config),
      temporal: temporal.client,
      erasureBatchSize: config.PERSONA_ERASURE_BATCH_SIZE,
      kafka,
      publishesTo: (topic) => topic === config.PERSONA_KAFKA_EVENTS_TOPIC,
      eventKeys: publisherEventKeys(graph, config),
      events: {
        url: config.PERSONA_EVENTS_WEBHOOK_URL,
        secret: config.PERSONA_EVENTS_WEBHOOK_SECRET,
        concurrency: config.PERSONA_EVENTS_WEBHOOK_CONCURRENCY,
      },
    }),
  });

  /** What runs once the worker polls. */
  const afterStart: (() => void)[] = [];
  // The daily schedules exist whenever a worker runs; applying them again changes nothing.
  if (config.PERSONA_SCHEDULES === 'apply') {
    for (const s of await applySchedules(temporal.client, config)) {
      logger.info({ scheduleId: s.scheduleId, outcome: s.outcome }, `schedule ${s.scheduleId} ${s.outcome}: ${s.when}`);
    }
    // The relay and the publisher run on the deliveries queue and read where they deliver from the
    // worker that runs them: only a process that runs deliveries starts, reconfigures or stops them
    // (a dedicated bulk worker, configured without a webhook, must not stop the relay).
    if (config.PERSONA_WORKER_KINDS.includes('deliveries')) {
      const relay = await ensureEventRelay(temporal.client, config);
      logger.info(
        { relay },
        relay === 'off'
          ? 'no PERSONA_EVENTS_WEBHOOK_URL: the event relay is off'
          : relay === 'stopped'
            ? 'no PERSONA_EVENTS_WEBHOOK_URL: the running event relay was stopped (its checkpoint stays in the graph)'
            : 'event relay running; this worker delivers its pages to ' +
              new URL(config.PERSONA_EVENTS_WEBHOOK_URL ?? '').host,
      );
      const publisher = await ensureKafkaPublisher(temporal.client, config);
      logger.info(
        { publisher },
        publisher === 'off'
          ? 'no KAFKA_BROKERS: the Kafka publisher is off'
          : publisher === 'stopped'
            ? 'no KAFKA_BROKERS: the running Kafka publisher was stopped (its checkpoint stays in the graph)'
            : 'Kafka publisher running',
      );
      // Once this worker polls (a query needs one), the running ones take this worker's settings.
      const said = (what: string) => (r: Reconciled<object>) =>
        logger.info(
          { workflow: what, before: r.before, now: r.now },
          r.changed
            ? `the running ${what} was reconfigured to this worker's settings: ${JSON.stringify(r.now)}`
            : `the running ${what} uses this worker's settings: ${JSON.stringify(r.now)}`,
        );
      const failed = (what: string) => (err: unknown) =>
        logger.error(
          { workflow: what, err: err instanceof Error ? err.message : String(err) },
          `the running ${what}'s settings could not be compared with this worker's; it keeps its own`,
        );
      afterStart.push(() => {
        if (relay === 'running')
          void reconcileEventRelay(temporal.client, config).then(said('event relay'), failed('event relay'));
        if (publisher === 'running')
          void reconcileKafkaPublisher(temporal.client, config).then(
            said('Kafka publisher'),
            failed('Kafka publisher'),
          );
      });
    } else {
      logger.info(
        'no deliveries worker here (PERSONA_WORKER_KINDS): the event relay and the Kafka publisher ' +
          'are left as they are',
      );
    }
  } else {
    logger.info('PERSONA_SCHEDULES=skip: the Temporal Schedules and the event relay are left as they are');
  }

  const health = healthRoutes({
    service: 'persona-worker',
    checks: [
      neo4jCheck(driver, config.NEO4J_DATABASE),
      temporalCheck(connection, config.TEMPORAL_NAMESPACE),
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
    metricsRoutes(workerMetricsPage(config.PERSONA_WORKER_SDK_METRICS_PORT, createRegistry({ processMetrics: true }))),
  );
  const server = serve({
    fetch: health.fetch,
    hostname: config.PERSONA_HTTP_HOST,
    port: config.PERSONA_WORKER_HTTP_PORT,
  });

  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: draining every worker');
      workers.shutdown();
    });
  }

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
  try {
    const running = workers.run();
    for (const step of afterStart) step();
    await running;
    logger.info('every worker drained');
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    stopEnsuringTopics.abort();
    await sequencer?.stop();
    await invalidations?.close();
    await connection.close();
    await temporal.connection.close();
    await kafka?.close();
    await driver.close();
    await tracing?.shutdown();
    logger.info('bye');
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});

/** The prebuilt bundle when there is one (its absence is a configuration error), else the source to bundle. */
function workflowCodeOption(
  dir: string | undefined,
  traced: boolean,
): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  if (!dir) return { workflowsPath: WORKFLOWS_PATH };
  const codePath = workflowBundlePath(dir, traced);
  if (!existsSync(codePath))
    throw new ConfigError([
      `PERSONA_WORKFLOW_BUNDLE_DIR: ${codePath} does not exist; build it with \`npm run build:workflows -- ${dir}\` ` +
        'or unset the variable to bundle at start',
    ]);
  return { workflowBundle: { codePath } };
}
