/**
 * The worker reaper (`scripts/deploy.ts reap`, run by the chart's CronJob `<release>-worker-reaper`
 * and by `scripts/compose-deploy.sh reap`): the chart runs each worker build as a Deployment of its
 * own and Helm keeps an older build's Deployment when an upgrade or a rollback replaces it
 * (`helm.sh/resource-policy: keep`), and the production compose runs each build as a compose project
 * of its own, so workflows pinned to that build keep their workers. The reaper deletes such a build once
 * Temporal says nothing needs its version any more, and errs towards keeping: never the release's
 * own build, the current or the ramping version, a version Temporal does not know (yet), or a
 * Deployment younger than the grace period; an inactive version (never current) only when no
 * workflow is open on it. Each Deployment's decision is one line of the log.
 * docs/kubernetes.md#worker-versioning walks through an upgrade and a rollback.
 */
import { BUILD_ID, type DeploymentStatus } from './workerDeployment';

/** Where a worker Deployment names its build id exactly (a label value cannot hold every build id). */
export const BUILD_ID_ANNOTATION = 'persona/build-id';

/** A worker build's Deployment, as the reaper decides on it. */
export interface WorkerBuild {
  name: string;
  uid: string;
  resourceVersion: string;
  /** The build id its workers poll as; null: its annotation is missing or not a build id. */
  buildId: string | null;
  /** When the Deployment was created (ISO). */
  createdAt: string;
}

/** A Deployment's metadata as the Kubernetes API lists it (clients/kubernetes.ts). */
export interface DeploymentMetadata {
  name: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  annotations: Record<string, string>;
}

/** The build a worker Deployment runs, by its annotation. */
export function workerBuildOf(m: DeploymentMetadata): WorkerBuild {
  const id = m.annotations[BUILD_ID_ANNOTATION];
  return {
    name: m.name,
    uid: m.uid,
    resourceVersion: m.resourceVersion,
    buildId: id !== undefined && BUILD_ID.test(id) ? id : null,
    createdAt: m.creationTimestamp,
  };
}

/**
 * The worker builds of a compose deployment, as scripts/compose-deploy.sh lists its containers: one
 * line each, `<compose project>\t<build id label>\t<Docker's CreatedAt>` (`2026-03-01 12:00:00 +0000 UTC`).
 * A build is its project: replicas fold into one, created when its first container was; a project
 * whose containers disagree on the build id has none (and is kept).
 */
export function listedWorkerBuilds(text: string): WorkerBuild[] {
  const byProject = new Map<string, WorkerBuild>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [name = '', id = '', created = ''] = line.split('\t');
    const iso = created.replace(/^(\S+) (\S+) ([+-]\d\d)(\d\d)\b.*$/, '$1T$2$3:$4');
    const createdAt = Number.isFinite(Date.parse(iso)) ? new Date(iso).toISOString() : created;
    const buildId = BUILD_ID.test(id) ? id : null;
    const seen = byProject.get(name);
    if (!seen) {
      byProject.set(name, { name, uid: name, resourceVersion: '', buildId, createdAt });
      continue;
    }
    if (seen.buildId !== buildId) seen.buildId = null;
    if (Date.parse(createdAt) < Date.parse(seen.createdAt)) seen.createdAt = createdAt;
  }
  return [...byProject.values()];
}

export interface ReapFacts {
  /** The Worker Deployment as Temporal sees it; null: Temporal has none of that name. */
  status: DeploymentStatus | null;
  /** The build of the release the reaper belongs to (its PERSONA_BUILD_ID). */
  releaseBuildId: string;
  /** Workflows open on the build's version; null: not counted, or the count failed. */
  openWorkflows: number | null;
  now: number;
  graceMs: number;
}

export interface ReapDecision {
  action: 'delete' | 'keep';
  reason: string;
}

const keep = (reason: string): ReapDecision => ({ action: 'keep', reason });

/** Whether the Deployment of `build` may go, and why (module comment). */
export function reapDecision(build: WorkerBuild, f: ReapFacts): ReapDecision {
  if (build.buildId === null) return keep(`no build id in its ${BUILD_ID_ANNOTATION} annotation`);
  if (build.buildId === f.releaseBuildId) return keep("this release's build");
  if (!f.status) return keep('Temporal has no such Worker Deployment (yet)');
  if (build.buildId === f.status.current) return keep('the current version');
  if (build.buildId === f.status.ramping?.buildId) return keep(`the ramping version (${f.status.ramping.percentage}%)`);
  const createdAt = Date.parse(build.createdAt);
  const ageMs = f.now - createdAt;
  if (!Number.isFinite(createdAt) || ageMs < f.graceMs)
    return keep(
      `created ${Number.isFinite(createdAt) ? `${Math.floor(ageMs / 60_000)} min ago` : 'at an unknown time'}, ` +
        `within the grace period (${Math.round(f.graceMs / 60_000)} min)`,
    );
  const version = f.status.versions.find((v) => v.buildId === build.buildId);
  if (!version) return keep('Temporal does not know this version (yet)');
  switch (version.status) {
    case 'drained':
      return { action: 'delete', reason: 'drained: no pinned workflow is open on it' };
    case 'inactive':
      if (f.openWorkflows === null) return keep('inactive, and its open workflows could not be counted');
      if (f.openWorkflows > 0) return keep(`inactive, with ${f.openWorkflows} open workflow(s) on it`);
      return { action: 'delete', reason: 'inactive (never current), no open workflow on it' };
    case 'draining':
      return keep('draining: pinned workflows are open on it');
    default:
      return keep(`Temporal says it is ${version.status}`);
  }
}

export interface ReapDeps {
  /** This release's worker Deployments. */
  list(): Promise<WorkerBuild[]>;
  /** Deletes one, if it is still as listed. */
  remove(build: WorkerBuild): Promise<'deleted' | 'gone' | 'changed'>;
  status(): Promise<DeploymentStatus | null>;
  openWorkflows(buildId: string): Promise<number>;
  log(line: string): void;
}

export interface ReapOptions {
  releaseBuildId: string;
  graceMs: number;
  /** Decide and log, delete nothing. */
  dryRun?: boolean;
  /** What `remove` does, for the log: 'deleted' (the default) or 'to stop' (handed to the caller). */
  removedAs?: string;
  now?: () => number;
}

export interface Reaped {
  build: WorkerBuild;
  decision: ReapDecision;
  /** What the delete came to; null: nothing was deleted (kept, or a dry run). */
  outcome: 'deleted' | 'gone' | 'changed' | null;
}

/** Decides on every worker Deployment listed, deletes those that may go, and logs one line each. */
export async function reapWorkerBuilds(deps: ReapDeps, opts: ReapOptions): Promise<Reaped[]> {
  const builds = await deps.list();
  const status = builds.length > 0 ? await deps.status() : null;
  const now = (opts.now ?? Date.now)();
  const done: Reaped[] = [];
  for (const build of builds) {
    const version = status?.versions.find((v) => v.buildId === build.buildId);
    let openWorkflows: number | null = null;
    // Counted only where the decision needs it; a failed count keeps the version.
    if (build.buildId && version?.status === 'inactive')
      openWorkflows = await deps.openWorkflows(build.buildId).catch(() => null);
    const decision = reapDecision(build, {
      status,
      releaseBuildId: opts.releaseBuildId,
      openWorkflows,
      now,
      graceMs: opts.graceMs,
    });
    const outcome = decision.action === 'delete' && !opts.dryRun ? await deps.remove(build) : null;
    const what =
      decision.action === 'keep'
        ? 'kept'
        : outcome === null
          ? 'would delete (dry run)'
          : outcome === 'deleted'
            ? (opts.removedAs ?? 'deleted')
            : outcome === 'gone'
              ? 'already gone'
              : 'kept: it changed since it was listed';
    deps.log(`reap ${build.name} (build ${build.buildId ?? '?'}): ${what}: ${decision.reason}`);
    done.push({ build, decision, outcome });
  }
  if (builds.length === 0) deps.log('reap: no worker build listed');
  return done;
}
