/**
 * The worker process's Workers: one per kind of work it runs (PERSONA_WORKER_KINDS), each polling
 * its kind's task queue (temporal/taskQueues.ts) with the kind's own activity and workflow-task
 * slots (PERSONA_WORKER_SLOTS_<KIND>), so a backlog of one kind waits for its own slots only. All
 * of them share the process's NativeConnection, activities (and so its Neo4j driver), one workflow
 * bundle (bundled once) and one Worker Deployment version: a deploy promotes them together.
 * workers/main.ts builds the set from the configuration; the bulk-backlog test builds it the same way.
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import type { PayloadCodec } from '@temporalio/common';
import {
  bundleWorkflowCode,
  Worker,
  type NativeConnection,
  type WorkerInterceptors,
  type WorkerOptions,
  type WorkerPlugin,
} from '@temporalio/worker';
import { workerDeploymentVersion, workerSlots, type Settings, type WorkKind } from '../config/env';
import { taskQueuesOf, workflowKinds } from '../temporal/taskQueues';
import { workflowInterceptorModules } from './bundle';

/** The settings a worker set is built from. */
export type WorkerSetSettings = Pick<
  Settings,
  | 'TEMPORAL_NAMESPACE'
  | 'TEMPORAL_TASK_QUEUE'
  | 'PERSONA_WORKER_KINDS'
  | 'PERSONA_WORKER_SLOTS_CHARGES'
  | 'PERSONA_WORKER_SLOTS_INTERACTIVE'
  | 'PERSONA_WORKER_SLOTS_BULK'
  | 'PERSONA_WORKER_SLOTS_DELIVERIES'
  | 'PERSONA_DEPLOYMENT_NAME'
  | 'PERSONA_BUILD_ID'
>;

export interface WorkerSetParts {
  connection: NativeConnection;
  /** The prebuilt bundle (PERSONA_WORKFLOW_BUNDLE_DIR), or the source, bundled once for every Worker. */
  workflowCode: { workflowBundle: { codePath: string } } | { workflowsPath: string };
  /** Whether tracing is on: the bundle then carries OpenTelemetry's workflow interceptors. */
  traced: boolean;
  /** The activity (and client) interceptors; the workflow ones are in the bundle. */
  interceptors: WorkerInterceptors;
  plugins: WorkerPlugin[];
  /** The payload codec of the Worker on `taskQueue` (the worker counts refused payloads by queue). */
  payloadCodec: (taskQueue: string) => PayloadCodec;
  /** The sinks the workflows call (the open processes' close: workers/openProcesses.ts). */
  sinks?: WorkerOptions['sinks'];
  /** Every activity, registered on every Worker: each runs on its workflow's queue. */
  activities: NonNullable<WorkerOptions['activities']>;
}

export interface KindWorker {
  kind: WorkKind;
  taskQueue: string;
  worker: Worker;
}

export interface WorkerSet {
  workers: KindWorker[];
  /** Runs every Worker until all have stopped; one that fails stops the others, and its error is thrown. */
  run(): Promise<void>;
  /** Drains every Worker (the SIGTERM path): each finishes its tasks in flight within the grace time. */
  shutdown(): void;
  /** `<kind> is <state>` for each Worker that is not running (readiness: all run, or not ready). */
  notRunning(): string[];
}

/**
 * The Neo4j sessions this configuration's activities can hold at once, so that none waits for a
 * pooled connection: one per activity slot, except a bulk slot, whose reconciliation page settles
 * up to `SETTLE_CONCURRENCY` charges side by side (activities/reconciliation.ts). A bulk backlog
 * then cannot take the connections a charge needs.
 */
export function graphSessionsOf(s: WorkerSetSettings, settleConcurrency: number): number {
  return s.PERSONA_WORKER_KINDS.reduce(
    (sum, kind) => sum + workerSlots(s, kind).activities * (kind === 'bulk' ? settleConcurrency : 1),
    0,
  );
}

/**
 * The workflow cache the SDK would give one Worker in this process (its formula, from the heap
 * limit), shared among the kinds by their workflow-task slots rather than given to each whole: four
 * Workers must not cache four times what one would.
 */
function workflowCacheSizes(s: WorkerSetSettings): Map<WorkKind, number> {
  const heapMiB = v8.getHeapStatistics().heap_size_limit / 1024 / 1024;
  const processCache = Math.max(Math.floor((Math.max(heapMiB - 200, 0) * 600) / 1024), 10);
  const tasks = s.PERSONA_WORKER_KINDS.map((kind) => [kind, workerSlots(s, kind).workflowTasks] as const);
  const total = tasks.reduce((sum, [, n]) => sum + n, 0);
  // Never fewer than the kind's workflow-task slots (the SDK would lower those to the cache's size).
  return new Map(tasks.map(([kind, n]) => [kind, Math.max(n, Math.floor((processCache * n) / total))]));
}

async function bundledOnce(parts: WorkerSetParts): Promise<{ code: string }> {
  if ('workflowBundle' in parts.workflowCode)
    return { code: readFileSync(parts.workflowCode.workflowBundle.codePath, 'utf8') };
  return bundleWorkflowCode({
    workflowsPath: parts.workflowCode.workflowsPath,
    workflowInterceptorModules: workflowInterceptorModules(parts.traced),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
}

/** Creates the Workers (none runs yet): one per kind in PERSONA_WORKER_KINDS. */
export async function createWorkerSet(s: WorkerSetSettings, parts: WorkerSetParts): Promise<WorkerSet> {
  const queues = taskQueuesOf(s.TEMPORAL_TASK_QUEUE);
  // A Worker Deployment version: it gets tasks once the version is current or ramping (docs/deployment.md).
  // Workflows say whether they stay on the version they started on (pinned) or move to the current
  // one at their next task (auto-upgrade); one that says nothing is pinned.
  const version = workerDeploymentVersion(s);
  const workflowBundle = await bundledOnce(parts);
  const caches = workflowCacheSizes(s);
  const workers: KindWorker[] = [];
  for (const kind of s.PERSONA_WORKER_KINDS) {
    const taskQueue = queues[kind];
    const slots = workerSlots(s, kind);
    const worker = await Worker.create({
      connection: parts.connection,
      namespace: s.TEMPORAL_NAMESPACE,
      taskQueue,
      workerDeploymentOptions: { useWorkerVersioning: true, version, defaultVersioningBehavior: 'PINNED' },
      workflowBundle,
      // The bundle has the workflow interceptors in it already.
      interceptors: { ...parts.interceptors, workflowModules: [] },
      plugins: parts.plugins,
      dataConverter: { payloadCodecs: [parts.payloadCodec(taskQueue)] },
      activities: parts.activities,
      ...(parts.sinks ? { sinks: parts.sinks } : {}),
      shutdownGraceTime: '30 seconds',
      maxConcurrentActivityTaskExecutions: slots.activities,
      maxConcurrentWorkflowTaskExecutions: slots.workflowTasks,
      maxCachedWorkflows: caches.get(kind) ?? slots.workflowTasks,
    });
    workers.push({ kind, taskQueue, worker });
  }
  const shutdown = (): void => {
    for (const { worker } of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  return {
    workers,
    shutdown,
    async run() {
      const runs = workers.map(({ worker }) =>
        worker.run().catch((err: unknown) => {
          shutdown();
          throw err;
        }),
      );
      const failed = (await Promise.allSettled(runs)).find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    notRunning: () =>
      workers.flatMap(({ kind, worker }) =>
        worker.getState() === 'RUNNING' ? [] : [`the ${kind} worker is ${worker.getState()}`],
      ),
  };
}

/** The task queue each workflow type's business counters are recorded on here, if this process runs its kind. */
export function countersQueueOf(s: WorkerSetSettings): (workflowType: string) => string | undefined {
  const queues = taskQueuesOf(s.TEMPORAL_TASK_QUEUE);
  const kinds = new Map<string, WorkKind>(workflowKinds());
  return (workflowType) => {
    const kind = kinds.get(workflowType);
    return kind && s.PERSONA_WORKER_KINDS.includes(kind) ? queues[kind] : undefined;
  };
}
