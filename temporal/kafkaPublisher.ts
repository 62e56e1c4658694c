/**
 * The Kafka publisher's contract: publishes the graph's events to the events topic, in the order
 * they were numbered after they committed (graph/sequencer.ts), from a checkpoint in the graph (the
 * event relay's `RelayCheckpoint`, its own id).
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';

export const KAFKA_PUBLISHER_WORKFLOW_TYPE = 'kafkaPublisherWorkflow';
/** One publisher per deployment: the worker starts it when KAFKA_BROKERS is set. */
export const KAFKA_PUBLISHER_WORKFLOW_ID = 'persona-kafka-publisher';

/** The graph checkpoint of the publisher to a topic. */
export function kafkaCheckpointId(topic: string): string {
  return `kafka:${topic}`;
}

/**
 * How the publisher runs: the worker's configuration, compared with the running publisher's at
 * every worker start and applied with the `reconfigurePublisher` Update when they differ (the
 * brokers and their credentials are never here: the activity's producer is its worker's own).
 */
export interface KafkaPublisherSettings {
  /** PERSONA_KAFKA_EVENTS_TOPIC: a topic of its own has a checkpoint of its own. */
  topic: string;
  /** Events per produce request; the checkpoint moves after each. */
  page_size: number;
  /** How long one activity publishes before it hands back (it heartbeats after every page). */
  budget_ms: number;
  /** How long to wait when the feed has nothing new. */
  poll_interval: string;
  /** Activities per run before the workflow continues as new. */
  batches_per_run: number;
}

export interface KafkaPublisherInput extends KafkaPublisherSettings {
  /** Carried from run to run. */
  runs?: number;
}

export interface PublishRequest {
  checkpoint_id: string;
  topic: string;
  page_size: number;
  budget_ms: number;
}

export interface PublishResult {
  /** Events published (and the checkpoint moved past them). */
  published: number;
  pages: number;
  /** True when the last page was not full: the feed has nothing more for now. */
  caught_up: boolean;
}

export interface KafkaPublisherStatus {
  topic: string;
  checkpoint_id: string;
  runs: number;
  published_this_run: number;
  last_batch_at: string | null;
  /** The last failure for good of a batch (null once a batch went through). */
  last_error: string | null;
  /** What this run publishes by. */
  settings: KafkaPublisherSettings;
}

export const kafkaPublisherStatusQuery = defineQuery<KafkaPublisherStatus>('kafkaPublisherStatus');
/** Applies new settings from the next batch on; answers with the settings the publisher now runs with. */
export const reconfigurePublisherUpdate = defineUpdate<KafkaPublisherSettings, [KafkaPublisherSettings]>(
  'reconfigurePublisher',
);

export function kafkaPublisherInput(s: {
  PERSONA_KAFKA_EVENTS_TOPIC: string;
  PERSONA_KAFKA_PUBLISH_PAGE: number;
}): KafkaPublisherSettings {
  return {
    topic: s.PERSONA_KAFKA_EVENTS_TOPIC,
    page_size: s.PERSONA_KAFKA_PUBLISH_PAGE,
    budget_ms: 20_000,
    poll_interval: '1 second',
    batches_per_run: 500,
  };
}
