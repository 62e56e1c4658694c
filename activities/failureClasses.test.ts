/**
 * One conversion of errors for every activity (activities/failures.ts): for one activity of each
 * file, run as a worker runs it (the interceptors `workerInterceptors` registers), a not-found and
 * a refusal from what it depends on fail it for good with the domain code in the details, and a
 * transient fault (a Neo4j that went away) is left for its retry policy.
 */
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Neo4jError, type Driver } from 'neo4j-driver';
import { describe, expect, it } from 'vitest';
import type { ChimeraClient } from '../clients/chimera';
import type { KafkaProducer } from '../clients/kafka';
import { InvalidStateError, NotFoundError } from '../graph/errors';
import { DEFAULT_GRAPH_POLICY, type Graph } from '../graph/graph';
import type { TokenCipher } from '../graph/tokens';
import { RequestContext } from '../runtime/requestContext';
import { domainFailureOf } from '../temporal/failures';
import { workerInterceptors } from '../workers/logging';
import { createAgentActivities } from './agents';
import { createErasureActivities } from './erasure';
import { createEventPruneActivities } from './eventPrune';
import { createEventActivities } from './events';
import { createExpiryActivities } from './expiry';
import { createFraudActivities } from './fraud';
import { createIdentityMergeActivities } from './identityMerge';
import { createInteractionPruneActivities } from './interactionPrune';
import { createKafkaPublisherActivities } from './kafkaPublisher';
import { createNotificationActivities } from './notifications';
import { createOnboardingActivities } from './onboarding';
import { createReconciliationActivities } from './reconciliation';
import { createRecoveryActivities } from './recovery';

/** A graph every transaction of which fails with `fault`, as a Neo4j that answers so would. */
function graphFailingWith(fault: Error): Graph {
  const session = {
    executeRead: () => Promise.reject(fault),
    executeWrite: () => Promise.reject(fault),
    run: () => Promise.reject(fault),
    close: () => Promise.resolve(),
    lastBookmarks: () => [],
  };
  const driver = { session: () => session, executeQuery: () => Promise.reject(fault) } as unknown as Driver;
  return { driver, database: 'neo4j', tokens: {} as TokenCipher, policy: DEFAULT_GRAPH_POLICY };
}

const temporal = {} as Client;
const noKafka: KafkaProducer = { send: () => Promise.reject(new Error('not sent')), close: () => Promise.resolve() };
const rules = { vipLifetimeValue: 1_000, segments: [] } as never;

/** One activity of each file, with `fault` thrown by what it depends on. */
const ACTIVITIES: Record<string, (fault: Error) => () => Promise<unknown>> = {
  agents: (fault) => {
    const chimera: ChimeraClient = {
      requestBehavioralProfile: () => Promise.reject(fault),
      reportTrustedDevice: () => Promise.reject(fault),
    };
    return () => createAgentActivities({ chimera }).requestBehavioralProfile({ customer_id: 'c-1' } as never);
  },
  erasure: (fault) => () =>
    createErasureActivities({ graph: graphFailingWith(fault), temporal }).eraseCustomer({ customer_id: 'c-1' }),
  eventPrune: (fault) => () =>
    createEventPruneActivities({ graph: graphFailingWith(fault) }).pruneEvents({
      safety_minutes: 60,
      cap_hours: 24,
      history_days: 365,
      batch_size: 100,
    }),
  events: (fault) => () =>
    createEventActivities({
      graph: graphFailingWith(fault),
      events: { url: 'http://127.0.0.1:9/events', secret: 's' },
    }).retryParkedEvents({ checkpoint_id: 'webhook' }),
  expiry: (fault) => () =>
    createExpiryActivities({ graph: graphFailingWith(fault) } as never).scanExpiryBatch({
      as_of: '2026-11-01',
      cursor: null,
      id_from: '',
      id_to: null,
      batch_size: 10,
    }),
  fraud: (fault) => () =>
    createFraudActivities({ graph: graphFailingWith(fault), temporal }).reverseFraudOutcome({
      customer_id: 'c-1',
    } as never),
  identityMerge: (fault) => () =>
    createIdentityMergeActivities({ graph: graphFailingWith(fault), temporal }).mergeCustomers({
      survivor_id: 'c-1',
      merged_id: 'c-2',
    } as never),
  interactionPrune: (fault) => () =>
    createInteractionPruneActivities({ graph: graphFailingWith(fault) }).pruneInteractionClaims({
      cutoff: '2026-11-01T00:00:00Z',
      batch_size: 10,
    }),
  kafkaPublisher: (fault) => () =>
    createKafkaPublisherActivities({
      graph: graphFailingWith(fault),
      kafka: noKafka,
      publishesTo: () => true,
      eventKeys: {},
    } as never).publishEvents({ checkpoint_id: 'kafka', topic: 'persona.events', page_size: 10, budget_ms: 1_000 }),
  notifications: (fault) => () =>
    createNotificationActivities({
      graph: graphFailingWith(fault),
      notifications: { send: () => Promise.resolve() },
    }).notifyCustomer({ key: 'k-1', customer_id: 'c-1', template: 'card_expiring', data: {} } as never),
  onboarding: (fault) => () =>
    createOnboardingActivities({ graph: graphFailingWith(fault) }).onboardCustomer({} as never, {
      onboardingId: 'o-1',
      customerId: 'c-1',
    }),
  reconciliation: (fault) => () =>
    createReconciliationActivities({
      graph: graphFailingWith(fault),
      temporal,
      profileRules: rules,
    }).reconcilePendingPage({ after: null, limit: 10 }),
  recovery: (fault) => () =>
    createRecoveryActivities({
      graph: graphFailingWith(fault),
      gateway: {} as never,
      trustThreshold: 0.8,
      profileRules: rules,
    }).recordRecoveryStopped({ payment_id: 'p-1', customer_id: 'c-1', reason: 'cancelled' }),
};

/** Runs the activity as a worker does: inside a mock activity context with the worker's activity interceptors. */
function runAsWorker(activity: () => Promise<unknown>): Promise<unknown> {
  const env = new MockActivityEnvironment(undefined, {
    interceptors: workerInterceptors(new RequestContext()).activity ?? [],
    logger: new DefaultLogger('ERROR', () => undefined),
  });
  return env.run(activity);
}

/** The error and its causes, outermost first. */
function causesOf(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e !== undefined && chain.length < 5; e = e instanceof Error ? e.cause : undefined) chain.push(e);
  return chain;
}

const failureOf = (run: Promise<unknown>): Promise<unknown> =>
  run.then(
    () => {
      throw new Error('the activity returned, though what it depends on failed');
    },
    (err: unknown) => err,
  );

describe.each(Object.entries(ACTIVITIES))('an activity of activities/%s.ts', (_file, activity) => {
  it('fails for good on "not found", with the code in the details', async () => {
    const err = await failureOf(runAsWorker(activity(new NotFoundError('Customer', 'c-1'))));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect(domainFailureOf(err)).toEqual({ code: 'not_found' });
  });

  it('fails for good on a refusal (a state the write is not allowed in), with the code in the details', async () => {
    const err = await failureOf(runAsWorker(activity(new InvalidStateError('customer c-1 is suspended'))));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect(domainFailureOf(err)).toEqual({ code: 'invalid_state' });
  });

  it('leaves a transient fault to its retry policy', async () => {
    const fault = new Neo4jError('connection lost', 'ServiceUnavailable', '50N42', '');
    const err = await failureOf(runAsWorker(activity(fault)));
    expect(err instanceof ApplicationFailure && err.nonRetryable).toBe(false);
    expect(causesOf(err)).toContain(fault);
    expect(domainFailureOf(err)).toBeUndefined();
  });
});
