/**
 * Kafka publisher — workflow id `persona-kafka-publisher`, started by the worker when
 * KAFKA_BROKERS is set. Publishes the change feed to the events topic: each activity publishes
 * pages for up to `budget_ms` from the checkpoint in the graph and moves it after every page
 * Kafka acknowledged; when the feed has nothing new the workflow waits `poll_interval`. Kafka
 * down is the activity retried with backoff for as long as it takes, from the same event (order
 * is never broken): ops see the pending activity and its last error in the UI, and the lag
 * metrics grow (docs/runbook.md, PersonaKafkaPublisherBehind). A publisher terminated and
 * started again resumes where the graph says.
 */
import {
  ActivityFailure,
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
  type KafkaPublisherInput,
  type KafkaPublisherStatus,
} from '../temporal/kafkaPublisher';
import { activitiesWithSummaries, kafkaPublishing } from './activityOptions';
import { countEventPublished } from './metrics';
import { autoUpgrade } from './versioning';

autoUpgrade(kafkaPublisherWorkflow);
export async function kafkaPublisherWorkflow(input: KafkaPublisherInput): Promise<void> {
  const checkpointId = kafkaCheckpointId(input.topic);
  const { publishEvents } = activitiesWithSummaries<KafkaPublisherActivities>(kafkaPublishing, {
    publishEvents: (req) =>
      `Publish the feed after the checkpoint to ${req.topic}, ${req.page_size} events a page, ` +
      `for up to ${req.budget_ms / 1000} s, moving the checkpoint after each page`,
  });
  let status: KafkaPublisherStatus = {
    topic: input.topic,
    checkpoint_id: checkpointId,
    runs: (input.runs ?? 0) + 1,
    published_this_run: 0,
    last_batch_at: null,
    last_error: null,
  };
  setHandler(kafkaPublisherStatusQuery, () => status);
  const report = (): void =>
    setCurrentDetails(
      `**Kafka publisher** to \`${input.topic}\` (checkpoint \`${checkpointId}\` in the graph; run ` +
        `${status.runs}): ${status.published_this_run} events published in this run; last batch ` +
        `${status.last_batch_at ?? 'not yet'}. Lag: \`persona_kafka_publisher_behind_seconds\` on the api's /metrics.` +
        (status.last_error ? ` Last failure (tried again in a minute): ${status.last_error}` : ''),
    );
  report();

  for (let batch = 0; batch < input.batches_per_run && !workflowInfo().continueAsNewSuggested; batch++) {
    let result;
    try {
      result = await publishEvents({
        checkpoint_id: checkpointId,
        topic: input.topic,
        page_size: input.page_size,
        lag_ms: input.lag_ms,
        budget_ms: input.budget_ms,
      });
    } catch (err) {
      // Only a failure the activity marks for good ends up here (Kafka away is retried inside it):
      // the publisher never stops for it; it says so and tries again from the checkpoint.
      if (!(err instanceof ActivityFailure)) throw err;
      status = { ...status, last_error: err.cause?.message ?? err.message };
      log.warn('publishing to Kafka failed for good; trying again in a minute', { error: status.last_error });
      report();
      await sleep('1 minute');
      continue;
    }
    if (result.published > 0) {
      countEventPublished(result.published);
      log.info('events published to Kafka', { topic: input.topic, published: result.published, pages: result.pages });
    }
    status = {
      ...status,
      published_this_run: status.published_this_run + result.published,
      last_batch_at: new Date().toISOString(),
      last_error: null,
    };
    report();
    if (result.caught_up) await sleep(input.poll_interval);
  }
  await continueAsNew<typeof kafkaPublisherWorkflow>({ ...input, runs: status.runs });
}
