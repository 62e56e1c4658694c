/**
 * What an upgrade and a rollback between worker builds keep, as far as `helm template` shows it
 * (no cluster here): the chart as committed (HEAD, what an install runs before this working
 * tree's) with build A, then this chart with build B; and this chart from A to B and back.
 *   - A Deployment in both renders has the same selector (Kubernetes refuses to change one).
 *   - A worker Deployment the later render no longer has carries `helm.sh/resource-policy: keep`:
 *     Helm leaves it, and the workflows pinned to its build keep their workers (the reaper deletes
 *     it once drained). One exception, named: chart 0.1.0 (never released) ran its build in
 *     `persona-worker`, which an upgrade replaced in place.
 *   - Two builds' Deployments never select each other's pods, the disruption budget and the
 *     promote hook follow the release's build, and the promote hook runs after a rollback.
 *   - The reaper's RBAC stays within the namespace and to Deployments.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../config/env';
import { BUILD_ID_ANNOTATION } from '../../temporal/workerReaper';
import {
  buildSlug,
  byKind,
  chart,
  matches,
  missing,
  named,
  podOf,
  podTemplateOf,
  template,
  workerDeployments,
  type Manifest,
} from './render';

const BUILD_A = '0.1.0-3990c2537885';
const BUILD_B = '0.2.0-9f1c2a7b3e4d';
const minimal = (chartDir: string) => ['-f', path.join(chartDir, 'ci', 'minimal-values.yaml')];
/** The chart at `chartDir` with the minimal values and `buildId`. */
const renderBuild = (chartDir: string, buildId: string, ...set: string[]): Manifest[] =>
  template(chartDir, [...minimal(chartDir), '--set', `worker.buildId=${buildId}`, ...set.flatMap((s) => ['--set', s])])
    .docs;

/** The chart as `commit` has it, in a folder of its own; and its version. */
function committedChart(commit: string): { dir: string; version: string } {
  const archive = spawnSync('git', ['archive', '--format=tar', commit, 'deploy/helm/persona'], {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(archive.status, archive.stderr?.toString()).toBe(0);
  const dir = mkdtempSync(path.join(tmpdir(), 'persona-chart-committed-'));
  const tar = spawnSync('tar', ['-x', '-C', dir], { input: archive.stdout });
  expect(tar.status, tar.stderr?.toString()).toBe(0);
  const chartDir = path.join(dir, 'deploy', 'helm', 'persona');
  const { version } = parse(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8')) as { version: string };
  return { dir: chartDir, version };
}

/** The worker Deployments chart 0.1.0 replaced in place on an upgrade: none was kept. */
const NOT_KEPT_BY: Record<string, string[]> = { '0.1.0': ['persona-worker'] };

/**
 * What must hold from the render `before` to the render `after` (an upgrade or a rollback),
 * `before` from the chart at `version`.
 */
function expectSafeChange(before: Manifest[], after: Manifest[], version: string): void {
  const key = (m: Manifest) => `${m.kind}/${m.metadata.name}`;
  const afterByKey = new Map(after.map((m) => [key(m), m]));
  for (const old of byKind(before, 'Deployment')) {
    const next = afterByKey.get(key(old));
    // Kubernetes refuses to change a Deployment's selector.
    if (next) expect(next.spec!.selector, key(old)).toEqual(old.spec!.selector);
    else if (!NOT_KEPT_BY[version]?.includes(old.metadata.name))
      expect(old.metadata.annotations?.['helm.sh/resource-policy'], `${key(old)} is kept`).toBe('keep');
  }
  // Every worker Deployment the two renders hold between them (what runs after the change) selects
  // its own build's pods only.
  const workers = [...new Map([...workerDeployments(before), ...workerDeployments(after)].map((m) => [key(m), m]))];
  for (const [ka, a] of workers)
    for (const [kb, b] of workers)
      if (ka !== kb) expect(matches(a.spec!.selector!.matchLabels!, podTemplateOf(b).metadata.labels), ka).toBe(false);
}

/** This chart's render for the build: its workers, budget, promote hook and reaper follow the build. */
function expectFollowsBuild(docs: Manifest[], buildId: string): void {
  const [worker, ...others] = workerDeployments(docs);
  expect(others).toEqual([]);
  expect(worker!.metadata.name).toBe(`persona-worker-${buildSlug(buildId)}`);
  expect(worker!.metadata.annotations?.[BUILD_ID_ANNOTATION]).toBe(buildId);
  expect(worker!.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
  const pdb = named(docs, 'PodDisruptionBudget', 'persona-worker');
  expect(matches(pdb.spec!.selector!.matchLabels!, podTemplateOf(worker!).metadata.labels)).toBe(true);
  const promote = named(docs, 'Job', 'persona-promote');
  expect(promote.metadata.annotations?.['helm.sh/hook']?.split(',')).toContain('post-rollback');
  const env = podOf(promote).containers[0]!.env ?? [];
  expect(env.find((e) => e.name === 'PERSONA_BUILD_ID')?.value).toBe(buildId);
  // The reaper: namespaced, Deployments only, never a write but delete.
  expect([...byKind(docs, 'ClusterRole'), ...byKind(docs, 'ClusterRoleBinding')]).toEqual([]);
  for (const role of byKind(docs, 'Role'))
    expect(role.rules).toEqual([{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['list', 'delete'] }]);
  for (const binding of byKind(docs, 'RoleBinding'))
    for (const s of binding.subjects ?? []) expect(s.namespace).toBe('persona');
}

describe.skipIf(missing.length > 0)('the Helm chart between builds', () => {
  it('upgrades from the chart as committed (build A) to this one (build B) without dropping A', () => {
    const committed = committedChart('HEAD');
    const before = renderBuild(committed.dir, BUILD_A);
    const after = renderBuild(chart, BUILD_B);
    expectSafeChange(before, after, committed.version);
    expectFollowsBuild(after, BUILD_B);
    // The exception is the old chart's own and no other: its worker Deployment was not kept.
    for (const name of NOT_KEPT_BY[committed.version] ?? [])
      expect(named(before, 'Deployment', name).metadata.annotations?.['helm.sh/resource-policy']).toBeUndefined();
  });

  it('upgrades from build A to build B and rolls back to A, keeping the other build each time', () => {
    const a = renderBuild(chart, BUILD_A);
    const b = renderBuild(chart, BUILD_B);
    expectFollowsBuild(a, BUILD_A);
    expectFollowsBuild(b, BUILD_B);
    expectSafeChange(a, b, 'this');
    expectSafeChange(b, a, 'this');
    // A and B are two Deployments: an upgrade adds B beside A rather than rolling A over.
    expect(workerDeployments(a)[0]!.metadata.name).not.toBe(workerDeployments(b)[0]!.metadata.name);
  });

  it('rolls a build over in place when only its configuration changes', () => {
    const before = renderBuild(chart, BUILD_B);
    const after = renderBuild(chart, BUILD_B, 'env.LOG_LEVEL=debug', 'worker.replicas=3');
    expectSafeChange(before, after, 'this');
    const [w0, w1] = [workerDeployments(before)[0]!, workerDeployments(after)[0]!];
    expect(w1.metadata.name).toBe(w0.metadata.name);
    expect(w1.spec!.replicas).toBe(3);
    expect(podOf(w1).containers[0]!.env?.find((e) => e.name === 'LOG_LEVEL')?.value).toBe('debug');
  });

  it('names two long build ids with a common beginning apart, within the limits of a name and a label', () => {
    const long = 'release-candidate-2025-06-01-persona-main-build-';
    const [one, two] = [`${long}1234`, `${long}1235`].map((id) => workerDeployments(renderBuild(chart, id))[0]!);
    expect(one!.metadata.name).not.toBe(two!.metadata.name);
    for (const [w, id] of [
      [one!, `${long}1234`],
      [two!, `${long}1235`],
    ] as const) {
      const slug = w.metadata.labels!['persona/worker-build']!;
      expect(slug).toBe(buildSlug(id));
      expect(slug).toMatch(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/);
      expect(w.metadata.name).toBe(`persona-worker-${slug}`);
      expect(w.metadata.annotations?.[BUILD_ID_ANNOTATION]).toBe(id);
    }
    // A short one is itself, lower-cased, dots made dashes.
    expect(buildSlug('0.2.0-9F1C')).toBe('0-2-0-9f1c');
  });
});
