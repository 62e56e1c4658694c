import { describe, expect, it } from 'vitest';
import type { DeploymentStatus, VersionState } from './workerDeployment';
import {
  BUILD_ID_ANNOTATION,
  listedWorkerBuilds,
  reapDecision,
  reapWorkerBuilds,
  workerBuildOf,
  type ReapDeps,
  type ReapFacts,
  type WorkerBuild,
} from './workerReaper';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const HOUR = 3_600_000;
const RELEASE = '0.3.0-cccccccccccc';

const build = (buildId: string | null, ageMs = 2 * HOUR): WorkerBuild => ({
  name: `persona-worker-${buildId ?? 'x'}`,
  uid: `uid-${buildId}`,
  resourceVersion: '7',
  buildId,
  createdAt: new Date(NOW - ageMs).toISOString(),
});
const version = (buildId: string, status: VersionState['status']): VersionState => ({
  buildId,
  status,
  lastCurrentAt: null,
  createdAt: null,
});
/** A deployment whose current version is RELEASE, with these other versions. */
const deployment = (...others: VersionState[]): DeploymentStatus => ({
  deploymentName: 'persona',
  current: RELEASE,
  ramping: null,
  versions: [version(RELEASE, 'current'), ...others],
  routingSettled: true,
});
const facts = (status: DeploymentStatus | null, openWorkflows: number | null = null): ReapFacts => ({
  status,
  releaseBuildId: RELEASE,
  openWorkflows,
  now: NOW,
  graceMs: HOUR,
});

describe('which worker build may go (reapDecision)', () => {
  it('deletes a drained version, and an inactive one with no open workflow', () => {
    expect(reapDecision(build('a'), facts(deployment(version('a', 'drained'))))).toEqual({
      action: 'delete',
      reason: 'drained: no pinned workflow is open on it',
    });
    expect(reapDecision(build('a'), facts(deployment(version('a', 'inactive')), 0)).action).toBe('delete');
  });

  it.each<[string, WorkerBuild, ReapFacts, RegExp]>([
    ['draining', build('a'), facts(deployment(version('a', 'draining'))), /^draining/],
    ['inactive, workflows open', build('a'), facts(deployment(version('a', 'inactive')), 3), /3 open workflow/],
    ['inactive, not counted', build('a'), facts(deployment(version('a', 'inactive')), null), /could not be counted/],
    ['created', build('a'), facts(deployment(version('a', 'created'))), /it is created/],
    ['unknown', build('a'), facts(deployment(version('a', 'unknown'))), /it is unknown/],
    ['not a version Temporal knows', build('a'), facts(deployment()), /does not know this version/],
    ['no Worker Deployment in Temporal', build('a'), facts(null), /no such Worker Deployment/],
    ['no build id annotation', build(null), facts(deployment()), new RegExp(BUILD_ID_ANNOTATION)],
    ["the release's own build, even drained", build(RELEASE), facts(null), /this release's build/],
    [
      'younger than the grace period, drained',
      build('a', HOUR - 1000),
      facts(deployment(version('a', 'drained'))),
      /59 min ago/,
    ],
    [
      'created at an unknown time',
      { ...build('a'), createdAt: '' },
      facts(deployment(version('a', 'drained'))),
      /unknown time/,
    ],
  ])('keeps it when %s', (_, b, f, reason) => {
    const decision = reapDecision(b, f);
    expect(decision.action).toBe('keep');
    expect(decision.reason).toMatch(reason);
  });

  it('keeps the current and the ramping version, whatever their Deployment is', () => {
    const s: DeploymentStatus = {
      ...deployment(version('a', 'drained'), version('b', 'drained')),
      current: 'a',
      ramping: { buildId: 'b', percentage: 10 },
    };
    expect(reapDecision(build('a'), facts(s))).toEqual({ action: 'keep', reason: 'the current version' });
    expect(reapDecision(build('b'), facts(s))).toEqual({ action: 'keep', reason: 'the ramping version (10%)' });
  });
});

describe('a worker build as its Deployment names it (workerBuildOf)', () => {
  const meta = (annotations: Record<string, string>) => ({
    name: 'persona-worker-x',
    uid: 'u',
    resourceVersion: '1',
    creationTimestamp: '2026-01-01T00:00:00Z',
    annotations,
  });

  it('reads the build id from its annotation, and refuses one that is not a build id', () => {
    expect(workerBuildOf(meta({ [BUILD_ID_ANNOTATION]: '0.2.0+ci.7' })).buildId).toBe('0.2.0+ci.7');
    expect(workerBuildOf(meta({})).buildId).toBeNull();
    // Spliced into a visibility query: a quote would change what it counts.
    expect(workerBuildOf(meta({ [BUILD_ID_ANNOTATION]: "a' OR 'x'='x" })).buildId).toBeNull();
  });
});

describe('reaping (reapWorkerBuilds)', () => {
  function fakes(builds: WorkerBuild[], status: DeploymentStatus | null, counts: Record<string, number | Error> = {}) {
    const removed: string[] = [];
    const counted: string[] = [];
    const lines: string[] = [];
    let statusCalls = 0;
    const deps: ReapDeps = {
      list: () => Promise.resolve(builds),
      remove: (b) => {
        removed.push(b.name);
        return Promise.resolve(b.buildId === 'changed' ? 'changed' : 'deleted');
      },
      status: () => {
        statusCalls += 1;
        return Promise.resolve(status);
      },
      openWorkflows: (id) => {
        counted.push(id);
        const c = counts[id] ?? 0;
        return c instanceof Error ? Promise.reject(c) : Promise.resolve(c);
      },
      log: (line) => lines.push(line),
    };
    return { deps, removed, counted, lines, statusCalls: () => statusCalls };
  }

  const builds = [build(RELEASE), build('drained'), build('draining'), build('idle'), build('busy'), build('changed')];
  const status = deployment(
    version('drained', 'drained'),
    version('draining', 'draining'),
    version('idle', 'inactive'),
    version('busy', 'inactive'),
    version('changed', 'drained'),
  );

  it('deletes only what may go, counting workflows for inactive versions only, one log line each', async () => {
    const f = fakes(builds, status, { busy: 2 });
    const done = await reapWorkerBuilds(f.deps, { releaseBuildId: RELEASE, graceMs: HOUR, now: () => NOW });
    expect(f.removed).toEqual(['persona-worker-drained', 'persona-worker-idle', 'persona-worker-changed']);
    expect(f.counted.sort()).toEqual(['busy', 'idle']);
    expect(f.lines).toHaveLength(builds.length);
    expect(f.lines).toContain(
      'reap persona-worker-drained (build drained): deleted: drained: no pinned workflow is open on it',
    );
    expect(f.lines).toContain('reap persona-worker-busy (build busy): kept: inactive, with 2 open workflow(s) on it');
    // Changed since it was listed (helm rollback took it back): the delete's precondition left it.
    expect(f.lines.find((l) => l.includes('worker-changed'))).toMatch(/kept: it changed since it was listed/);
    expect(done.map((d) => d.outcome)).toEqual([null, 'deleted', null, 'deleted', null, 'changed']);
  });

  it('says what the caller does with a build that may go, when the caller stops it itself', async () => {
    const f = fakes([build('drained')], deployment(version('drained', 'drained')));
    await reapWorkerBuilds(f.deps, { releaseBuildId: RELEASE, graceMs: HOUR, now: () => NOW, removedAs: 'to stop' });
    expect(f.lines).toEqual([
      'reap persona-worker-drained (build drained): to stop: drained: no pinned workflow is open on it',
    ]);
  });

  it('keeps an inactive version whose workflows could not be counted', async () => {
    const f = fakes([build('idle')], deployment(version('idle', 'inactive')), { idle: new Error('visibility down') });
    await reapWorkerBuilds(f.deps, { releaseBuildId: RELEASE, graceMs: HOUR, now: () => NOW });
    expect(f.removed).toEqual([]);
    expect(f.lines).toEqual([
      'reap persona-worker-idle (build idle): kept: inactive, and its open workflows could not be counted',
    ]);
  });

  it('deletes nothing in a dry run, saying what it would delete', async () => {
    const f = fakes(builds, status);
    await reapWorkerBuilds(f.deps, { releaseBuildId: RELEASE, graceMs: HOUR, dryRun: true, now: () => NOW });
    expect(f.removed).toEqual([]);
    expect(f.lines.filter((l) => l.includes('would delete (dry run)'))).toHaveLength(4);
  });

  it('asks Temporal nothing when no Deployment matches, and says so', async () => {
    const f = fakes([], status);
    expect(await reapWorkerBuilds(f.deps, { releaseBuildId: RELEASE, graceMs: HOUR })).toEqual([]);
    expect(f.statusCalls()).toBe(0);
    expect(f.lines).toEqual(['reap: no worker build listed']);
  });

  it('fails, deleting nothing, when Temporal cannot be asked', async () => {
    const f = fakes(builds, status);
    f.deps.status = () => Promise.reject(new Error('unavailable'));
    await expect(reapWorkerBuilds(f.deps, { releaseBuildId: RELEASE, graceMs: HOUR })).rejects.toThrow('unavailable');
    expect(f.removed).toEqual([]);
  });
});

describe("a compose deployment's worker builds (listedWorkerBuilds)", () => {
  it("folds a project's replicas into one build, created with its first container", () => {
    const text = [
      'persona-prod-worker-1-4-0\t0.1.0-aaaaaaaaaaaa\t2026-03-01 11:00:05 +0000 UTC',
      'persona-prod-worker-1-4-0\t0.1.0-aaaaaaaaaaaa\t2026-03-01 11:00:01 +0000 UTC',
      'persona-prod-worker-1-5-0\t0.1.0-bbbbbbbbbbbb\t2026-03-01 13:30:00 +0100 CET',
      '',
    ].join('\n');
    expect(listedWorkerBuilds(text)).toEqual([
      {
        name: 'persona-prod-worker-1-4-0',
        uid: 'persona-prod-worker-1-4-0',
        resourceVersion: '',
        buildId: '0.1.0-aaaaaaaaaaaa',
        createdAt: '2026-03-01T11:00:01.000Z',
      },
      {
        name: 'persona-prod-worker-1-5-0',
        uid: 'persona-prod-worker-1-5-0',
        resourceVersion: '',
        buildId: '0.1.0-bbbbbbbbbbbb',
        createdAt: '2026-03-01T12:30:00.000Z',
      },
    ]);
  });

  it('gives no build id to a project whose containers disagree, or whose label is not one (so it is kept)', () => {
    const [mixed, blank] = listedWorkerBuilds(
      'p1\ta\t2026-03-01 11:00:00 +0000 UTC\np1\tb\t2026-03-01 11:00:00 +0000 UTC\np2\t\t2026-03-01 11:00:00 +0000 UTC',
    );
    expect(mixed?.buildId).toBeNull();
    expect(blank?.buildId).toBeNull();
    expect(reapDecision(blank!, facts(deployment())).action).toBe('keep');
  });

  it('keeps a build whose creation time it cannot read', () => {
    const [odd] = listedWorkerBuilds('p1\ta\tyesterday');
    expect(reapDecision(odd!, facts(deployment(version('a', 'drained'))))).toMatchObject({ action: 'keep' });
  });
});
