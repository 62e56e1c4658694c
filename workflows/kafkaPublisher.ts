/**
 * Kafka publisher — workflow id `persona-kafka-publisher`, started by the worker when
 * KAFKA_BROKERS is set. Publishes the change feed to the events topic: each activity publishes
 * pages for up to `budget_ms` from the checkpoint in the graph and moves it after every page
 * Kafka acknowledged; when the feed has nothing new the workflow waits `poll_interval`. Kafka
 * down is the activity retried with backoff for as long as it takes, from the same event (order
 * is never broken): ops see the pending activity and its last error in the UI, and the lag
 * metrics grow (docs/runbook.md, PersonaKafkaPublisherBehind). A publisher terminated and
 * started again resumes where the graph says. A worker that starts with other settings (topic,
 * lag, page size) applies its own with the `reconfigurePublisher` Update, from the next batch on.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { KafkaPublisherActivities } from '../activities/kafkaPublisher';
import {
  kafkaCheckpointId,
  kafkaPublisherStatusQuery,
  reconfigurePublisherUpdate,
  type KafkaPublisherInput,
  type KafkaPublisherSettings,
  type KafkaPublisherStatus,
} from '../temporal/kafkaPublisher';
import { activitiesWithSummaries, kafkaPublishing } from './activityOptions';
import { countEventPublished } from './metrics';
import { autoUpgrade } from './versioning';

autoUpgrade(kafkaPublisherWorkflow);
export async function kafkaPublisherWorkflow(input: KafkaPublisherInput): Promise<void> {
  const { publishEvents } = activitiesWithSummaries<KafkaPublisherActivities>(kafkaPublishing, {
    publishEvents: (req) =>
      `Publish the feed after the checkpoint to ${req.topic}, ${req.page_size} events a page, ` +
      `for up to ${req.budget_ms / 1000} s, moving the checkpoint after each page`,
  });
  let status = firstStatus(input);
  setHandler(kafkaPublisherStatusQuery, () => status);
  setHandler(
    reconfigurePublisherUpdate,
    (settings) => {
      log.info('Kafka publisher reconfigured: the next batch uses the new settings', {
        before: status.settings,
        settings,
      });
      status = { ...status, settings, topic: settings.topic, checkpoint_id: kafkaCheckpointId(settings.topic) };
      report();
      return settings;
    },
    { validator: validSettings },
  );
  const report = (): void => setCurrentDetails(publisherDetails(status));
  report();

  for (let batch = 0; batch < status.settings.batches_per_run && !workflowInfo().continueAsNewSuggested; batch++) {
    const { settings } = status;
    let result;
    try {
      result = await publishEvents({
        checkpoint_id: kafkaCheckpointId(settings.topic),
        topic: settings.topic,
        page_size: settings.page_size,
        budget_ms: settings.budget_ms,
      });
    } catch (err) {
      // Only a failure the activity marks for good ends up here (Kafka away is retried inside it):
      // the publisher never stops for it; it says so and tries again from the checkpoint.
      if (!(err instanceof ActivityFailure)) throw err;
      status = { ...status, last_error: err.cause?.message ?? err.message };
      log.warn('publishing to Kafka failed for good; trying again in a minute', { error: status.last_error });
      report();
      // At once when new settings arrive (a topic the worker publishes to, say).
      await condition(() => status.settings !== settings, '1 minute', {
        summary: 'Publishing failed for good: try again from the checkpoint in a minute, or with new settings',
      });
      continue;
    }
    if (result.published > 0) {
      countEventPublished(result.published);
      log.info('events published to Kafka', {
        topic: settings.topic,
        published: result.published,
        pages: result.pages,
      });
    }
    status = {
      ...status,
      published_this_run: status.published_this_run + result.published,
      last_batch_at: new Date().toISOString(),
      last_error: null,
    };
    report();
    if (result.caught_up)
      await sleep(status.settings.poll_interval, {
        summary: `Nothing new in the feed: look again in ${status.settings.poll_interval}`,
      });
  }
  // An Update accepted while the run ends is applied before it hands over.
  await condition(allHandlersFinished);
  await continueAsNew<typeof kafkaPublisherWorkflow>({ ...status.settings, runs: status.runs });
}

/** The run's status as it starts, from its input. */
function firstStatus(input: KafkaPublisherInput): KafkaPublisherStatus {
  return {
    topic: input.topic,
    checkpoint_id: kafkaCheckpointId(input.topic),
    runs: (input.runs ?? 0) + 1,
    published_this_run: 0,
    last_batch_at: null,
    last_error: null,
    settings: {
      topic: input.topic,
      page_size: input.page_size,
      budget_ms: input.budget_ms,
      poll_interval: input.poll_interval,
      batches_per_run: input.batches_per_run,
    },
  };
}

/** What the UI shows of the run (its current details). */
function publisherDetails(status: KafkaPublisherStatus): string {
  return (
    `**Kafka publisher** to \`${status.topic}\` (checkpoint \`${status.checkpoint_id}\` in the graph; run ` +
    `${status.runs}): ${status.published_this_run} events published in this run; last batch ` +
    `${status.last_batch_at ?? 'not yet'}. Lag: \`persona_kafka_publisher_behind_seconds\` on the api's /metrics.` +
    (status.last_error ? ` Last failure (tried again in a minute): ${status.last_error}` : '')
  );
}

/** Settings a publisher can run with: anything else is refused before it reaches the history. */
function validSettings(s: KafkaPublisherSettings | undefined): void {
  const whole = (n: unknown, min: number, max: number): boolean =>
    typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;
  if (typeof s?.topic !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(s.topic))
    throw new Error('topic must be a Kafka topic name');
  if (!whole(s.page_size, 1, 10_000)) throw new Error('page_size must be between 1 and 10000');
  if (!whole(s.budget_ms, 1000, 600_000)) throw new Error('budget_ms must be between 1000 and 600000');
  if (!whole(s.batches_per_run, 1, 100_000)) throw new Error('batches_per_run must be between 1 and 100000');
  if (typeof s.poll_interval !== 'string' || !/^\d+ ?(milliseconds?|seconds?|minutes?|ms|s|m)$/.test(s.poll_interval))
    throw new Error('poll_interval must be a duration such as "1 second"');
}
