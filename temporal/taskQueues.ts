/**
 * Task queues by kind of work. Each kind has a task queue and, in the worker process, a Worker of
 * its own with its own slots (workers/workerSet.ts), so work of one kind never waits for slots
 * another kind holds: an hour-long erasure or a 10-minute expiry batch cannot starve a charge or
 * an onboarding. The queues are named from TEMPORAL_TASK_QUEUE (`persona` → `persona-charges`,
 * `persona-interactive`, `persona-bulk`, `persona-deliveries`); whoever starts a workflow starts
 * it on its kind's queue (`taskQueueFor`); its activities, timers and continue-as-new stay on
 * that queue, so a charge's activities run in the charges Worker.
 *
 * The kinds themselves are listed in config/env.ts (WORK_KINDS), which parses PERSONA_WORKER_KINDS.
 * Tests that run one Worker on one queue of their own give the api `oneTaskQueue(queue)`: every
 * kind on that queue.
 */
import { WORK_KINDS, type WorkKind } from '../config/env';
import { ERASURE_WORKFLOW_TYPE } from './erasure';
import { EVENT_RELAY_WORKFLOW_TYPE } from './eventRelay';
import { EXPIRY_SCAN_WORKFLOW_TYPE } from './expiry';
import { FRAUD_OUTCOME_WORKFLOW_TYPE } from './fraud';
import { IDENTITY_MERGE_WORKFLOW_TYPE } from './identityMerge';
import { INTERACTION_PRUNE_WORKFLOW_TYPE } from './interactionPrune';
import { EVENT_PRUNE_WORKFLOW_TYPE } from './eventPrune';
import { KAFKA_PUBLISHER_WORKFLOW_TYPE } from './kafkaPublisher';
import { ONBOARDING_WORKFLOW_TYPE } from './onboarding';
import { GATEWAY_RECONCILIATION_WORKFLOW_TYPE } from './reconciliation';
import { RECOVERY_WORKFLOW_TYPE } from './recovery';
import { TRUSTED_DEVICE_WORKFLOW_TYPE } from './trustedDevice';

/**
 * The kind of every Persona workflow type (workflows/index.ts; taskQueues.test.ts checks that
 * none is missing), and why:
 *   charges      money moves: a failed payment's recovery. Its charges wait on the gateway, never
 *                on other work; sized from what the gateway takes.
 *   interactive  someone waits on it: a caller's onboarding (`?wait=true`), a person's consent to
 *                a merge, ops' fraud review and the customer suspended or reinstated by an outcome,
 *                Chimera told of a trusted checkout while the session lasts. Short activities.
 *   bulk         long and scheduled, nobody waits on a step: the daily expiry scan (10-minute
 *                batches), the gateway reconciliation, the interaction-id and event prunes, an erasure (pages
 *                of a customer's data, up to an hour). Kept small so it cannot crowd the rest.
 *   deliveries   the two singletons that carry the change feed out (the webhook relay, the Kafka
 *                publisher): always running, one page at a time; their lag is their own metric.
 */
const WORKFLOW_KINDS = {
  [RECOVERY_WORKFLOW_TYPE]: 'charges',
  [ONBOARDING_WORKFLOW_TYPE]: 'interactive',
  [IDENTITY_MERGE_WORKFLOW_TYPE]: 'interactive',
  [FRAUD_OUTCOME_WORKFLOW_TYPE]: 'interactive',
  [TRUSTED_DEVICE_WORKFLOW_TYPE]: 'interactive',
  [EXPIRY_SCAN_WORKFLOW_TYPE]: 'bulk',
  [GATEWAY_RECONCILIATION_WORKFLOW_TYPE]: 'bulk',
  [INTERACTION_PRUNE_WORKFLOW_TYPE]: 'bulk',
  [EVENT_PRUNE_WORKFLOW_TYPE]: 'bulk',
  [ERASURE_WORKFLOW_TYPE]: 'bulk',
  [EVENT_RELAY_WORKFLOW_TYPE]: 'deliveries',
  [KAFKA_PUBLISHER_WORKFLOW_TYPE]: 'deliveries',
} as const satisfies Record<string, WorkKind>;

export type PersonaWorkflowType = keyof typeof WORKFLOW_KINDS;

/** The task queue of each kind. */
export type TaskQueues = Readonly<Record<WorkKind, string>>;

/** A workflow type's kind of work. */
export function workKindOf(workflowType: PersonaWorkflowType): WorkKind {
  return WORKFLOW_KINDS[workflowType];
}

/** Every workflow type, with its kind. */
export function workflowKinds(): [PersonaWorkflowType, WorkKind][] {
  return Object.entries(WORKFLOW_KINDS) as [PersonaWorkflowType, WorkKind][];
}

/** The queues a deployment runs, named from its TEMPORAL_TASK_QUEUE: `<base>-<kind>`. */
export function taskQueuesOf(base: string): TaskQueues {
  return Object.fromEntries(WORK_KINDS.map((kind) => [kind, `${base}-${kind}`])) as Record<WorkKind, string>;
}

/** Every kind on one queue: for a test that runs a single Worker on a queue of its own. */
export function oneTaskQueue(queue: string): TaskQueues {
  return Object.fromEntries(WORK_KINDS.map((kind) => [kind, queue])) as Record<WorkKind, string>;
}

/** The queue a workflow of this type starts on. */
export function taskQueueFor(queues: TaskQueues, workflowType: PersonaWorkflowType): string {
  return queues[WORKFLOW_KINDS[workflowType]];
}

/** The queues a worker process of this configuration polls: its kinds' (PERSONA_WORKER_KINDS). */
export function polledTaskQueues(s: {
  TEMPORAL_TASK_QUEUE: string;
  PERSONA_WORKER_KINDS: readonly WorkKind[];
}): string[] {
  const queues = taskQueuesOf(s.TEMPORAL_TASK_QUEUE);
  return s.PERSONA_WORKER_KINDS.map((kind) => queues[kind]);
}
