/**
 * The two workflows a deployment runs one of, for as long as it is configured to: the event relay
 * (PERSONA_EVENTS_WEBHOOK_URL) and the Kafka publisher (KAFKA_BROKERS). A worker that starts
 * with `PERSONA_SCHEDULES=apply`:
 *   - starts the one it is configured for when none runs (or leaves the running one alone);
 *   - once it polls, compares the running one's settings with its own configuration and applies
 *     its own with the workflow's reconfigure Update when they differ (from the next page on);
 *   - stops (cancels) a running one it is not configured for: unsetting the webhook URL, or
 *     Kafka, and restarting the workers stops the relay, or the publisher. Its checkpoint stays
 *     in the graph, so configuring it again resumes where it stopped.
 * Where the relay delivers and how it signs are never settings: each delivering worker reads its
 * own (activities/events.ts).
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import {
  EVENT_RELAY_WORKFLOW_ID,
  EVENT_RELAY_WORKFLOW_TYPE,
  eventRelayStatusQuery,
  reconfigureRelayUpdate,
  type EventRelaySettings,
} from './eventRelay';
import {
  KAFKA_PUBLISHER_WORKFLOW_ID,
  KAFKA_PUBLISHER_WORKFLOW_TYPE,
  kafkaPublisherInput,
  kafkaPublisherStatusQuery,
  reconfigurePublisherUpdate,
  type KafkaPublisherSettings,
} from './kafkaPublisher';
import { taskQueueFor, taskQueuesOf } from './taskQueues';

export interface RelaySettings {
  /** The base the queues are named from: the relay runs on the deliveries queue. */
  TEMPORAL_TASK_QUEUE: string;
  PERSONA_EVENTS_WEBHOOK_URL?: string | undefined;
  PERSONA_EVENTS_FEED_LAG_MS: number;
}

/** The relay's pacing from the worker's configuration. */
export function eventRelaySettings(s: Pick<RelaySettings, 'PERSONA_EVENTS_FEED_LAG_MS'>): EventRelaySettings {
  return { lag_ms: s.PERSONA_EVENTS_FEED_LAG_MS, page_size: 250, poll_interval: '2 seconds', pages_per_run: 500 };
}

export type PublisherSettings = Parameters<typeof kafkaPublisherInput>[0] & {
  kafkaBrokers: string[];
  TEMPORAL_TASK_QUEUE: string;
};

/** What the worker did about a singleton at start. */
export type SingletonState =
  /** Not configured, and none was running. */
  | 'off'
  /** Not configured: the running one was cancelled (its checkpoint stays in the graph). */
  | 'stopped'
  /** Configured: running (started now, or already). Its settings are compared once the worker polls. */
  | 'running';

/** Whether the singleton runs now (read raw: nothing of it decoded, whoever started it). */
async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  try {
    const d = await client.workflowService.describeWorkflowExecution({
      namespace: client.options.namespace,
      execution: { workflowId },
    });
    return (
      d.workflowExecutionInfo?.status ===
      proto.temporal.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    );
  } catch (err) {
    if ((err as { code?: number }).code === grpcStatus.NOT_FOUND) return false;
    throw err;
  }
}

async function stopIfRunning(client: Client, workflowId: string): Promise<SingletonState> {
  if (!(await isRunning(client, workflowId))) return 'off';
  // A cancel, not a terminate: the relay's page in flight records its progress before it stops.
  await client.workflow.getHandle(workflowId).cancel();
  return 'stopped';
}

/** Starts `persona-event-relay` when PERSONA_EVENTS_WEBHOOK_URL is set (keeping a running one); stops it when not. */
export async function ensureEventRelay(client: Client, s: RelaySettings): Promise<SingletonState> {
  if (!s.PERSONA_EVENTS_WEBHOOK_URL) return stopIfRunning(client, EVENT_RELAY_WORKFLOW_ID);
  await client.workflow.start(EVENT_RELAY_WORKFLOW_TYPE, {
    workflowId: EVENT_RELAY_WORKFLOW_ID,
    taskQueue: taskQueueFor(taskQueuesOf(s.TEMPORAL_TASK_QUEUE), EVENT_RELAY_WORKFLOW_TYPE),
    args: [eventRelaySettings(s)],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary:
      "Delivers the change feed to the subscriber of the workers' configuration, in order; " +
      'parks events the subscriber keeps refusing',
  });
  return 'running';
}

/** Starts `persona-kafka-publisher` when KAFKA_BROKERS is set (keeping a running one); stops it when not. */
export async function ensureKafkaPublisher(client: Client, s: PublisherSettings): Promise<SingletonState> {
  if (s.kafkaBrokers.length === 0) return stopIfRunning(client, KAFKA_PUBLISHER_WORKFLOW_ID);
  await client.workflow.start(KAFKA_PUBLISHER_WORKFLOW_TYPE, {
    workflowId: KAFKA_PUBLISHER_WORKFLOW_ID,
    taskQueue: taskQueueFor(taskQueuesOf(s.TEMPORAL_TASK_QUEUE), KAFKA_PUBLISHER_WORKFLOW_TYPE),
    args: [kafkaPublisherInput(s)],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary:
      'Publishes the change feed to the Kafka topic the workers are configured with, in order per customer',
  });
  return 'running';
}

/** The settings a running singleton used, and what it uses now. */
export interface Reconciled<T> {
  before: T;
  now: T;
  changed: boolean;
}

function sameSettings(a: object, b: object): boolean {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.every((k) => JSON.stringify((a as never)[k]) === JSON.stringify((b as never)[k]));
}

/**
 * Brings the running relay's settings to the worker's (a query, then the Update when they
 * differ). Needs a worker polling the relay's task queue: call it once this worker runs.
 */
export async function reconcileEventRelay(client: Client, s: RelaySettings): Promise<Reconciled<EventRelaySettings>> {
  const handle = client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID);
  const wanted = eventRelaySettings(s);
  const before = (await handle.query(eventRelayStatusQuery)).settings;
  if (sameSettings(before, wanted)) return { before, now: before, changed: false };
  const now = await handle.executeUpdate(reconfigureRelayUpdate, { args: [wanted] });
  return { before, now, changed: true };
}

/** Brings the running publisher's settings to the worker's, as `reconcileEventRelay` does. */
export async function reconcileKafkaPublisher(
  client: Client,
  s: PublisherSettings,
): Promise<Reconciled<KafkaPublisherSettings>> {
  const handle = client.workflow.getHandle(KAFKA_PUBLISHER_WORKFLOW_ID);
  const wanted = kafkaPublisherInput(s);
  const before = (await handle.query(kafkaPublisherStatusQuery)).settings;
  if (sameSettings(before, wanted)) return { before, now: before, changed: false };
  const now = await handle.executeUpdate(reconfigurePublisherUpdate, { args: [wanted] });
  return { before, now, changed: true };
}
