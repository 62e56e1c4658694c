/**
 * The worker set assembled from the configuration and the connections workers/main.ts made: the
 * workflow code (prebuilt bundle or source), the activities and their clients, the interceptors
 * and sinks, and each task queue's payload codec, which refuses (and counts) payloads it did not write.
 */
import type { Client } from '@temporalio/client';
import { Runtime, type NativeConnection } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { createActivities } from '../activities';
import {
  buildIdMismatch,
  chargePolicy,
  ConfigError,
  profileRules,
  recordedBuildId,
  repoRoot,
  workerDeploymentVersion,
  type Config,
} from '../config/env';
import { createWorkerSet, type WorkerSet } from './workerSet';
import type { ChimeraClient } from '../clients/chimera';
import type { KafkaProducer } from '../clients/kafka';
import { createNotificationSink } from '../clients/notifications';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import type { Graph } from '../graph/graph';
import { publisherEventKeys } from '../runtime/graph';
import type { Logger } from '../runtime/logger';
import type { RequestContext } from '../runtime/requestContext';
import type { Tracing } from '../runtime/tracing';
import type { PersonaPayloadCodec } from '../temporal/payloadCodec';
import type { RuleTable } from '../payments/networkRules';
import { loadRuleTable } from '../payments/ruleTables';
import { WORKFLOWS_PATH, workflowBundlePath } from './bundle';
import { withActivityInterceptor, workerInterceptors } from './logging';
import { openProcessActivityInterceptor, openProcessSinks } from './openProcesses';

/** What the worker set is built from besides the configuration: what workers/main.ts made before it. */
export interface WorkerSetInputs {
  connection: NativeConnection;
  /** Whether tracing is on: the bundle then carries OpenTelemetry's workflow interceptors. */
  traced: boolean;
  plugins: Tracing['temporal'][];
  /** The request context the activities' log lines and interceptors read. */
  requests: RequestContext;
  graph: Graph;
  chimera: ChimeraClient;
  /** The codec the worker's client encrypts with; each Worker's is this one, marking what it refuses. */
  payloadCodec: PersonaPayloadCodec;
  /** The worker's Temporal client: activities that find other workflows use it. */
  client: Client;
  /** The publisher's producer; undefined when Kafka is off. */
  kafka: KafkaProducer | undefined;
  logger: Logger;
}

/**
 * The Workers of the kinds this process runs (none polls yet), and the Worker Deployment version
 * they poll as. What is read and checked here (the workflow bundle, the card-network rules) stops
 * the worker at start, not a workflow or a charge later.
 */
export async function buildWorkers(
  config: Config,
  inputs: WorkerSetInputs,
): Promise<{ workers: WorkerSet; version: ReturnType<typeof workerDeploymentVersion> }> {
  const { graph, payloadCodec, logger } = inputs;
  const workflowCode = workflowCodeOption(config.PERSONA_WORKFLOW_BUNDLE_DIR, inputs.traced);
  logger.info(
    'workflowBundle' in workflowCode
      ? `workflow code from the prebuilt bundle ${workflowCode.workflowBundle.codePath}`
      : 'no PERSONA_WORKFLOW_BUNDLE_DIR: bundling the workflow code now',
  );
  const gateway = new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, config.PERSONA_GATEWAY_TIMEOUT_MS);
  // Read and checked now: a table that does not parse stops the worker, not a charge.
  const networkRules = loadRuleTable(config.PERSONA_NETWORK_RULES_VERSION);
  logger.info({ version: networkRules.version, rules: networkRules.rules.length }, 'card-network rules loaded');
  // Every Worker polls as this Worker Deployment version (workers/workerSet.ts), which names the code
  // this image carries: an id of another build is refused, not polled as.
  const mismatch = buildIdMismatch(config.PERSONA_BUILD_ID, recordedBuildId(repoRoot));
  if (mismatch) throw new ConfigError([mismatch]);
  const version = workerDeploymentVersion(config);
  const workers = await createWorkerSet(config, {
    connection: inputs.connection,
    workflowCode,
    traced: inputs.traced,
    interceptors: withActivityInterceptor(
      workerInterceptors(inputs.requests, { graph, keys: config.payloadKeys }),
      // Recoveries and fraud outcomes join their customer's open processes (workers/openProcesses.ts).
      openProcessActivityInterceptor(graph, payloadCodec),
    ),
    sinks: openProcessSinks(graph, (workflowId, err) =>
      logger.warn({ workflowId, err }, `could not remove closed workflow ${workflowId} from its open processes`),
    ),
    plugins: inputs.plugins,
    payloadCodec: refusingPayloadCodec(config, payloadCodec, logger),
    activities: workerActivities(config, { ...inputs, gateway, networkRules }),
  });
  return { workers, version };
}

/**
 * Every activity, with the clients and settings it runs on: the graph, Chimera, the payment
 * gateway (in each of its roles), the card-network rules, notifications, Temporal, Kafka and the
 * events webhook.
 */
function workerActivities(
  config: Config,
  parts: Pick<WorkerSetInputs, 'graph' | 'chimera' | 'client' | 'kafka' | 'logger'> & {
    gateway: HttpPaymentGateway;
    networkRules: RuleTable;
  },
): ReturnType<typeof createActivities> {
  const { graph, gateway } = parts;
  return createActivities({
    graph,
    chimera: parts.chimera,
    gateway,
    gatewayRecords: gateway,
    cards: gateway,
    updater: gateway,
    networkRules: parts.networkRules,
    chargePolicy: chargePolicy(config),
    notifications: createNotificationSink(config.PERSONA_NOTIFY_WEBHOOK_URL, parts.logger, {
      revealCodes: config.PERSONA_LOG_NOTIFICATION_CODES === 'true',
      webhookSecret: config.PERSONA_NOTIFY_WEBHOOK_SECRET,
    }),
    trustThreshold: config.PERSONA_TRUST_THRESHOLD,
    profileRules: profileRules(config),
    temporal: parts.client,
    erasureBatchSize: config.PERSONA_ERASURE_BATCH_SIZE,
    kafka: parts.kafka,
    publishesTo: (topic) => topic === config.PERSONA_KAFKA_EVENTS_TOPIC,
    eventKeys: publisherEventKeys(graph, config),
    events: {
      url: config.PERSONA_EVENTS_WEBHOOK_URL,
      secret: config.PERSONA_EVENTS_WEBHOOK_SECRET,
      concurrency: config.PERSONA_EVENTS_WEBHOOK_CONCURRENCY,
    },
  });
}

/**
 * The payload codec of the Worker on each task queue. The worker acts on no payload its codec did
 * not write: each one refused is a log line naming its workflow and a count on /metrics by task
 * queue (the workflow fails at once: workflows/interceptors.ts).
 */
function refusingPayloadCodec(
  config: Config,
  payloadCodec: PersonaPayloadCodec,
  logger: Logger,
): (taskQueue: string) => ReturnType<PersonaPayloadCodec['marking']> {
  return (taskQueue: string) => {
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
}

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
