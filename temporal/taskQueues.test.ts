import { describe, expect, it } from 'vitest';
import * as workflows from '../workflows';
import { WORK_KINDS } from '../config/env';
import { oneTaskQueue, polledTaskQueues, taskQueueFor, taskQueuesOf, workflowKinds, workKindOf } from './taskQueues';

describe('task queues by kind of work', () => {
  it('gives every workflow the worker hosts a kind, and names no other', () => {
    expect(
      workflowKinds()
        .map(([type]) => type)
        .sort(),
    ).toEqual(Object.keys(workflows).sort());
  });

  it('puts charges, work someone waits on, bulk work and deliveries apart', () => {
    const byKind = Object.fromEntries(
      WORK_KINDS.map((kind) => [
        kind,
        workflowKinds()
          .filter(([, k]) => k === kind)
          .map(([type]) => type)
          .sort(),
      ]),
    );
    expect(byKind).toEqual({
      charges: ['paymentRecoveryWorkflow'],
      interactive: ['fraudOutcomeWorkflow', 'identityMergeWorkflow', 'onboardingWorkflow', 'trustedDeviceWorkflow'],
      bulk: [
        'erasureWorkflow',
        'eventPruneWorkflow',
        'expiryScanWorkflow',
        'gatewayReconciliationWorkflow',
        'interactionClaimsPruneWorkflow',
      ],
      deliveries: ['eventRelayWorkflow', 'kafkaPublisherWorkflow'],
    });
  });

  it('names the queues from TEMPORAL_TASK_QUEUE, one per kind', () => {
    const queues = taskQueuesOf('persona');
    expect(queues).toEqual({
      charges: 'persona-charges',
      interactive: 'persona-interactive',
      bulk: 'persona-bulk',
      deliveries: 'persona-deliveries',
    });
    expect(taskQueueFor(queues, 'paymentRecoveryWorkflow')).toBe('persona-charges');
    expect(taskQueueFor(queues, 'erasureWorkflow')).toBe('persona-bulk');
    expect(workKindOf('kafkaPublisherWorkflow')).toBe('deliveries');
  });

  it('maps every kind to one queue for a test that runs a single worker', () => {
    const one = oneTaskQueue('e2e-1');
    for (const [type] of workflowKinds()) expect(taskQueueFor(one, type)).toBe('e2e-1');
  });

  it('polls the queues of the kinds a worker process runs, and only those', () => {
    expect(polledTaskQueues({ TEMPORAL_TASK_QUEUE: 'p', PERSONA_WORKER_KINDS: ['bulk'] })).toEqual(['p-bulk']);
    expect(polledTaskQueues({ TEMPORAL_TASK_QUEUE: 'p', PERSONA_WORKER_KINDS: [...WORK_KINDS] })).toEqual([
      'p-charges',
      'p-interactive',
      'p-bulk',
      'p-deliveries',
    ]);
  });
});
