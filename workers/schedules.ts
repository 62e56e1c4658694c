/**
 * What a worker applies in Temporal at start (PERSONA_SCHEDULES=apply): the Temporal Schedules (the
 * daily card-expiry scan and interaction-id prune) and, in a process that runs deliveries, the event
 * relay and the Kafka publisher, whose running workflows take this worker's settings once it polls.
 */
import type { Client } from '@temporalio/client';
import { workerDeploymentVersion, type Config } from '../config/env';
import type { Logger } from '../runtime/logger';
import { applySchedules } from '../temporal/schedules';
import { deploymentStatus, replacedVersion } from '../temporal/workerDeployment';
import {
  ensureEventRelay,
  ensureKafkaPublisher,
  reconcileEventRelay,
  reconcileKafkaPublisher,
  type Reconciled,
} from '../temporal/singletons';

/**
 * Applies the schedules and the delivery singletons as configured, logging what each became, and
 * returns what runs once the worker polls (the singletons' reconciliation needs a poller to answer).
 */
export async function applyWorkerSchedules(client: Client, config: Config, logger: Logger): Promise<(() => void)[]> {
  /** What runs once the worker polls. */
  const afterStart: (() => void)[] = [];
  const replaced = config.PERSONA_SCHEDULES === 'apply' ? await replacedBy(client, config, logger) : null;
  if (replaced) {
    logger.info(
      `this worker's version ${replaced} is no longer current: the Temporal Schedules, the event relay and ` +
        "the Kafka publisher are the current version's to apply",
    );
    return afterStart;
  }
  // The daily schedules exist whenever a worker runs; applying them again changes nothing.
  if (config.PERSONA_SCHEDULES === 'apply') {
    for (const s of await applySchedules(client, config)) {
      logger.info({ scheduleId: s.scheduleId, outcome: s.outcome }, `schedule ${s.scheduleId} ${s.outcome}: ${s.when}`);
    }
    // The relay and the publisher run on the deliveries queue and read where they deliver from the
    // worker that runs them: only a process that runs deliveries starts, reconfigures or stops them
    // (a dedicated bulk worker, configured without a webhook, must not stop the relay).
    if (config.PERSONA_WORKER_KINDS.includes('deliveries')) {
      afterStart.push(await ensureDeliverySingletons(client, config, logger));
    } else {
      logger.info(
        'no deliveries worker here (PERSONA_WORKER_KINDS): the event relay and the Kafka publisher ' +
          'are left as they are',
      );
    }
  } else {
    logger.info('PERSONA_SCHEDULES=skip: the Temporal Schedules and the event relay are left as they are');
  }
  return afterStart;
}

/**
 * This worker's version when it was current (or ramping) and no longer is (draining, drained), else
 * null. An older build's Deployment, which Kubernetes keeps while its pinned workflows finish
 * (deploy/helm), restarts with its own release's settings: applied, they would undo the current
 * version's. Not known (Temporal refused to say): null, and the worker applies as before.
 */
async function replacedBy(client: Client, config: Config, logger: Logger): Promise<string | null> {
  const { deploymentName, buildId } = workerDeploymentVersion(config);
  try {
    const s = await deploymentStatus(client.workflowService, { namespace: config.TEMPORAL_NAMESPACE, deploymentName });
    return replacedVersion(s, buildId) ? `${deploymentName}.${buildId}` : null;
  } catch (err) {
    logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      `the state of version ${deploymentName}.${buildId} could not be read: applying the schedules as configured`,
    );
    return null;
  }
}

/**
 * Starts, keeps or stops the event relay and the Kafka publisher as this worker's configuration
 * says, logging which; returns the step that, once this worker polls, brings the running ones to
 * this worker's settings.
 */
async function ensureDeliverySingletons(client: Client, config: Config, logger: Logger): Promise<() => void> {
  const relay = await ensureEventRelay(client, config);
  logger.info(
    { relay },
    relay === 'off'
      ? 'no PERSONA_EVENTS_WEBHOOK_URL: the event relay is off'
      : relay === 'stopped'
        ? 'no PERSONA_EVENTS_WEBHOOK_URL: the running event relay was stopped (its checkpoint stays in the graph)'
        : 'event relay running; this worker delivers its pages to ' +
          new URL(config.PERSONA_EVENTS_WEBHOOK_URL ?? '').host,
  );
  const publisher = await ensureKafkaPublisher(client, config);
  logger.info(
    { publisher },
    publisher === 'off'
      ? 'no KAFKA_BROKERS: the Kafka publisher is off'
      : publisher === 'stopped'
        ? 'no KAFKA_BROKERS: the running Kafka publisher was stopped (its checkpoint stays in the graph)'
        : 'Kafka publisher running',
  );
  // Once this worker polls (a query needs one), the running ones take this worker's settings.
  return () => {
    if (relay === 'running')
      void reconcileEventRelay(client, config).then(
        reconciled(logger, 'event relay'),
        notReconciled(logger, 'event relay'),
      );
    if (publisher === 'running')
      void reconcileKafkaPublisher(client, config).then(
        reconciled(logger, 'Kafka publisher'),
        notReconciled(logger, 'Kafka publisher'),
      );
  };
}

/** Logs what the running `what`'s settings are now compared with this worker's, and whether they changed. */
function reconciled(logger: Logger, what: string): (r: Reconciled<object>) => void {
  return (r) =>
    logger.info(
      { workflow: what, before: r.before, now: r.now },
      r.changed
        ? `the running ${what} was reconfigured to this worker's settings: ${JSON.stringify(r.now)}`
        : `the running ${what} uses this worker's settings: ${JSON.stringify(r.now)}`,
    );
}

/** Logs that the running `what`'s settings could not be compared with this worker's (it keeps its own). */
function notReconciled(logger: Logger, what: string): (err: unknown) => void {
  return (err) =>
    logger.error(
      { workflow: what, err: err instanceof Error ? err.message : String(err) },
      `the running ${what}'s settings could not be compared with this worker's; it keeps its own`,
    );
}
