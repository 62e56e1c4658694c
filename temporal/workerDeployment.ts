/**
 * Deploy steps for Worker Versioning, on the client's workflow service: a worker polls as version
 * `<deployment>.<build id>` and gets no task until that version is the deployment's current (or
 * ramping) one. `npm run deploy:*` (scripts/deploy.ts), `npm run dev` and the tests' worker
 * processes call these; docs/deployment.md says when.
 *
 *   status    the deployment's current and ramping version and every version's state
 *   promote   wait until the version registered (a worker of it polled), then make it current
 *   ramp      send a percentage of new starts (and of auto-upgrade workflows) to a version
 *   rollback  stop a ramp; without one, make the previously current version current again
 *   reap      (temporal/workerReaper.ts) which older builds' workers may go, by their versions' state
 *
 * Every change waits until Temporal has passed the new routing to the task queues, so a workflow
 * started after it returns goes where it says.
 */
import type { Connection } from '@temporalio/client';
import { status as grpcStatus } from '@grpc/grpc-js';
import proto from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';

type WorkflowService = Connection['workflowService'];
const { WorkerDeploymentVersionStatus, RoutingConfigUpdateState, VersionDrainageStatus } = proto.temporal.api.enums.v1;

export interface DeploymentTarget {
  namespace: string;
  deploymentName: string;
  /** Who asks (the deployment's history records it). */
  identity?: string;
}

export interface VersionState {
  buildId: string;
  status: 'inactive' | 'current' | 'ramping' | 'draining' | 'drained' | 'created' | 'unknown';
  /** When it was last current, if ever (ISO). */
  lastCurrentAt: string | null;
  createdAt: string | null;
}

export interface DeploymentStatus {
  deploymentName: string;
  /** The current version's build id; null: unversioned workers get the tasks. */
  current: string | null;
  ramping: { buildId: string | null; percentage: number } | null;
  /** Newest first. */
  versions: VersionState[];
  /** False while Temporal still passes the last change to the task queues. */
  routingSettled: boolean;
}

/** What a build id may be (config/envWorker.ts, PERSONA_BUILD_ID). */
export const BUILD_ID = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;

export class DeploymentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeploymentError';
  }
}

/**
 * The routing change was made (Temporal took it) but is still reported in progress past the wait:
 * the task queues may not all route by it yet. Temporal has been seen to leave this state in
 * progress for good (temporalio/temporal#11842), so the caller decides: check that new work
 * reaches the version, and do not drain the old one until it does.
 */
export class RoutingNotSettledError extends DeploymentError {
  constructor(
    message: string,
    readonly status: DeploymentStatus,
  ) {
    super(message);
    this.name = 'RoutingNotSettledError';
  }
}

const STATUS_NAMES: Record<number, VersionState['status']> = {
  [WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE]: 'inactive',
  [WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT]: 'current',
  [WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING]: 'ramping',
  [WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING]: 'draining',
  [WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED]: 'drained',
  [WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CREATED]: 'created',
};

type Timestamp = { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined;
function iso(t: Timestamp): string | null {
  if (!t?.seconds) return null;
  return new Date(Number(t.seconds.toString()) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}

function grpcCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? (err as { code?: number }).code : undefined;
}

/** The deployment as Temporal sees it; null when no worker of it has ever polled. */
export async function deploymentStatus(
  service: WorkflowService,
  t: DeploymentTarget,
): Promise<DeploymentStatus | null> {
  let res;
  try {
    res = await service.describeWorkerDeployment({ namespace: t.namespace, deploymentName: t.deploymentName });
  } catch (err) {
    if (grpcCode(err) === grpcStatus.NOT_FOUND) return null;
    throw err;
  }
  const info = res.workerDeploymentInfo;
  const routing = info?.routingConfig;
  const rampingBuild = routing?.rampingDeploymentVersion?.buildId ?? null;
  const rampingPercentage = routing?.rampingVersionPercentage ?? 0;
  const versions = (info?.versionSummaries ?? [])
    .map((v): VersionState => ({
      buildId: v.deploymentVersion?.buildId ?? '',
      status:
        v.drainageStatus === VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED && !v.status
          ? 'drained'
          : (STATUS_NAMES[v.status ?? 0] ?? 'unknown'),
      lastCurrentAt: iso(v.lastCurrentTime as Timestamp),
      createdAt: iso(v.createTime as Timestamp),
    }))
    .sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
  return {
    deploymentName: t.deploymentName,
    current: routing?.currentDeploymentVersion?.buildId || null,
    ramping: rampingBuild || rampingPercentage > 0 ? { buildId: rampingBuild, percentage: rampingPercentage } : null,
    versions,
    routingSettled: info?.routingConfigUpdateState !== RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS,
  };
}

/**
 * Whether the version was current (or ramping) and no longer is: `draining` or `drained`. Its workers
 * only finish what is pinned to them; what the current version's workers own (the schedules, the
 * delivery singletons) is not theirs to apply again when they restart.
 */
export function replacedVersion(s: DeploymentStatus | null, buildId: string): boolean {
  const status = s?.versions.find((v) => v.buildId === buildId)?.status;
  return status === 'draining' || status === 'drained';
}

/**
 * How many workflows are open on the version, by the visibility store's
 * `TemporalWorkerDeploymentVersion` (seconds behind at most). Asked before an inactive version's
 * workers go: Temporal counts the pinned workflows of a version that was current, but a workflow
 * can be pinned to one that never was (a versioning override). Both spellings Temporal has used
 * for a version are asked: `<name>:<build id>` and `<name>.<build id>`.
 */
export async function openWorkflowCount(
  service: WorkflowService,
  t: DeploymentTarget,
  buildId: string,
): Promise<number> {
  // Spliced into the query: only the characters a build id may have (config/envWorker.ts), never a quote.
  if (!BUILD_ID.test(buildId) || !/^[\w-]+$/.test(t.deploymentName))
    throw new DeploymentError(`not a version to ask about: ${t.deploymentName}.${buildId}`);
  const versions = [':', '.'].map((sep) => `'${t.deploymentName}${sep}${buildId}'`).join(', ');
  const query = `TemporalWorkerDeploymentVersion IN (${versions}) AND ExecutionStatus = 'Running'`;
  const res = await service.countWorkflowExecutions({ namespace: t.namespace, query });
  const count = res.count as { toString(): string } | number | null | undefined;
  return count === null || count === undefined ? 0 : Number(count.toString());
}

/** The task queues a version's workers have polled; null when it has not registered. */
export async function versionTaskQueues(
  service: WorkflowService,
  t: DeploymentTarget,
  buildId: string,
): Promise<string[] | null> {
  try {
    const res = await service.describeWorkerDeploymentVersion({
      namespace: t.namespace,
      deploymentVersion: { deploymentName: t.deploymentName, buildId },
    });
    return [...new Set((res.workerDeploymentVersionInfo?.taskQueueInfos ?? []).map((q) => q.name ?? ''))];
  } catch (err) {
    if (grpcCode(err) === grpcStatus.NOT_FOUND) return null;
    throw err;
  }
}

export interface WaitOptions {
  /** How long a worker of the version has to register (default 60 s). */
  timeoutMs?: number;
  /**
   * Wait until it polled these task queues too (a worker polls every queue it serves within a second
   * or so): every kind's queue the version's workers run (temporal/taskQueues.ts).
   */
  taskQueues?: readonly string[];
}

/** Resolves once workers of the version have polled (every task queue named); a DeploymentError after the timeout. */
export async function waitForVersion(
  service: WorkflowService,
  t: DeploymentTarget,
  buildId: string,
  opts: WaitOptions = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const queues = await versionTaskQueues(service, t, buildId);
    const missing = (opts.taskQueues ?? []).filter((q) => !queues?.includes(q));
    if (queues && missing.length === 0) return;
    if (Date.now() > deadline)
      throw new DeploymentError(
        `version ${t.deploymentName}.${buildId} has not registered within ${Math.round(timeoutMs / 1000)} s: ` +
          (queues
            ? `its workers poll ${queues.join(', ')} but not ${missing.join(', ')}`
            : 'no worker of that build has polled Temporal') +
          ` (namespace ${t.namespace}). Start the new workers first, with ` +
          `PERSONA_DEPLOYMENT_NAME=${t.deploymentName} and PERSONA_BUILD_ID=${buildId} ` +
          '(or the code that derives it), and check their logs',
      );
    await sleep(250);
  }
}

/**
 * Waits until Temporal has passed the deployment's routing to its task queues: to each of the four
 * (temporal/taskQueues.ts) and each one's workflow and activity queues, so it gets the caller's
 * budget, and never less than 30 s.
 */
async function settled(service: WorkflowService, t: DeploymentTarget, budgetMs: number): Promise<DeploymentStatus> {
  const timeoutMs = Math.max(budgetMs, 30_000);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await deploymentStatus(service, t);
    if (s?.routingSettled) return s;
    if (Date.now() > deadline) {
      const seconds = Math.round(timeoutMs / 1000);
      if (!s) throw new DeploymentError(`deployment ${t.deploymentName}: gone while its routing changed`);
      throw new RoutingNotSettledError(
        `deployment ${t.deploymentName}: the routing change was made (current: ${s.current ?? 'unversioned'}) ` +
          `but Temporal still reports it in progress after ${seconds} s: check that new work reaches the ` +
          'version before draining the one before it',
        s,
      );
    }
    await sleep(200);
  }
}

/**
 * Retries a routing change while Temporal refuses it for want of pollers it has not seen yet
 * (FAILED_PRECONDITION, NOT_FOUND just after registration), until the deadline.
 */
async function change<T>(what: string, deadline: number, call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const code = grpcCode(err);
      const transient = code === grpcStatus.FAILED_PRECONDITION || code === grpcStatus.NOT_FOUND;
      if (!transient || Date.now() > deadline)
        throw new DeploymentError(`${what} refused: ${err instanceof Error ? err.message : String(err)}`);
      await sleep(500);
    }
  }
}

/**
 * Makes the version current, once it has registered: every new workflow and every auto-upgrade
 * workflow's next task goes to it; pinned workflows stay where they started. Setting the current
 * version again is a no-op. Returns the build id that was current before (null: unversioned).
 */
export async function promote(
  service: WorkflowService,
  t: DeploymentTarget,
  buildId: string,
  opts: WaitOptions = {},
): Promise<{ previous: string | null }> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  await waitForVersion(service, t, buildId, opts);
  const res = await change(`making ${t.deploymentName}.${buildId} current`, Date.now() + timeoutMs, () =>
    service.setWorkerDeploymentCurrentVersion({
      namespace: t.namespace,
      deploymentName: t.deploymentName,
      buildId,
      identity: t.identity ?? 'persona-deploy',
    }),
  );
  await settled(service, t, timeoutMs);
  return { previous: res.previousDeploymentVersion?.buildId || null };
}

/**
 * Sends `percentage` of new starts (and of auto-upgrade workflows' next tasks) to the version,
 * the rest to the current one; 0 with no build id ends a ramp.
 */
export async function ramp(
  service: WorkflowService,
  t: DeploymentTarget,
  buildId: string | null,
  percentage: number,
  opts: WaitOptions = {},
): Promise<void> {
  if (!Number.isFinite(percentage) || percentage < 0 || percentage > 100)
    throw new DeploymentError(`ramp: the percentage must be between 0 and 100, not ${percentage}`);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  if (buildId) await waitForVersion(service, t, buildId, opts);
  await change(
    buildId ? `ramping ${t.deploymentName}.${buildId} to ${percentage}%` : 'ending the ramp',
    Date.now() + timeoutMs,
    () =>
      service.setWorkerDeploymentRampingVersion({
        namespace: t.namespace,
        deploymentName: t.deploymentName,
        buildId: buildId ?? '',
        percentage: buildId ? percentage : 0,
        identity: t.identity ?? 'persona-deploy',
      }),
  );
  await settled(service, t, timeoutMs);
}

/**
 * Takes the last step back: a ramp in progress ends (every new start goes to the current version
 * again); without one, the version that was current before the current one is made current again
 * (it must still have workers polling). Says what it did.
 */
export async function rollback(
  service: WorkflowService,
  t: DeploymentTarget,
  opts: WaitOptions = {},
): Promise<{ rampEnded: string | null } | { from: string | null; to: string }> {
  const s = await deploymentStatus(service, t);
  if (!s) throw new DeploymentError(`deployment ${t.deploymentName} does not exist in namespace ${t.namespace}`);
  if (s.ramping) {
    await ramp(service, t, null, 0, opts);
    return { rampEnded: s.ramping.buildId };
  }
  const previous = s.versions
    .filter((v) => v.buildId !== s.current && v.lastCurrentAt)
    .sort((a, b) => (b.lastCurrentAt ?? '').localeCompare(a.lastCurrentAt ?? ''))[0];
  if (!previous)
    throw new DeploymentError(
      `deployment ${t.deploymentName}: no version was current before ${s.current ?? 'the unversioned workers'}`,
    );
  await promote(service, t, previous.buildId, { timeoutMs: 5_000, ...opts });
  return { from: s.current, to: previous.buildId };
}
