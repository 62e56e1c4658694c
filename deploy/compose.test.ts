/**
 * The production compose's install, upgrade and rollback (scripts/compose-deploy.sh), against a
 * stand-in for Docker and Temporal's Worker Deployment (test/support/fakeDocker.ts: no Docker engine
 * here), whose reaper decisions are the real ones: the new build's workers start beside the old
 * before they are promoted, the older build keeps its workers until its version has drained, a
 * rollback promotes the earlier build again and keeps the newer one until it drains, a release that
 * changed no workflow code replaces the workers at once, and a failed step stops before the promote.
 */
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDocker } from '../test/support/fakeDocker';
import { until } from '../test/support/wait';

const HOUR = 3_600_000;
const [B1, B2] = ['0.1.0-aaaaaaaaaaaa', '0.1.0-bbbbbbbbbbbb'];
const W = (version: string) => `persona-prod-worker-${version.replaceAll('.', '-')}`;
let docker: FakeDocker;

beforeEach(async () => {
  docker = new FakeDocker();
  docker.images.set('persona:1.0.0', B1);
  docker.images.set('persona:1.1.0', B2);
  // A release that changed no workflow code: the same build id as 1.1.0.
  docker.images.set('persona:1.1.1', B2);
  await docker.start();
});
afterEach(() => docker.stop());

/** Runs the script and expects it to succeed: its stderr (the progress lines). */
async function deploy(...args: string[]): Promise<string> {
  const { code, stderr } = await docker.run(args);
  expect(code, stderr).toBe(0);
  return stderr;
}

/** Lets time pass and Temporal report `buildId` drained (no pinned workflow open on it). */
function drained(buildId: string): void {
  docker.now += 2 * HOUR;
  docker.versions.set(buildId, 'drained');
}

describe('compose-deploy.sh', () => {
  it('installs: the shared network, the release, its build’s workers, promoted once they poll', async () => {
    const out = await deploy('up', '1.0.0');
    expect(docker.network).toEqual({
      name: 'persona-prod',
      args: [
        '--driver',
        'bridge',
        '--label',
        'persona.release=persona-prod',
        '--subnet',
        '10.213.0.0/24',
        '--ip-range',
        '10.213.0.0/25',
      ],
    });
    expect(docker.projects('api')).toEqual({ 'persona-prod': '1.0.0' });
    expect(docker.projects()).toEqual({ [W('1.0.0')]: '1.0.0' });
    expect(docker.containers.filter((c) => c.service === 'worker').map((c) => c.labels)).toEqual(
      Array(2).fill({
        'persona.role': 'worker',
        'persona.release': 'persona-prod',
        'persona.version': '1.0.0',
        'persona.build-id': B1,
        'com.docker.compose.project': W('1.0.0'),
        'com.docker.compose.service': 'worker',
      }),
    );
    expect(docker.current).toBe(B1);
    // The order of the procedure: release, workers, promote, reap.
    const order = ['-p persona-prod -f docker-compose.prod.yml up -d', 'worker up -d --wait', 'promote', 'reap'].map(
      (step) => docker.log.findIndex((l) => l.includes(step)),
    );
    expect(
      order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!)),
      docker.log.join('\n'),
    ).toBe(true);
    expect(out).toContain(`reap ${W('1.0.0')} (build ${B1}): kept: this release's build`);
  });

  it('upgrades: the new build beside the old, promoted; the old stopped only once it has drained', async () => {
    await deploy('up', '1.0.0');
    docker.now += 2 * HOUR;
    const out = await deploy('up', '1.1.0');
    expect(docker.projects('api')).toEqual({ 'persona-prod': '1.1.0' });
    expect(docker.projects()).toEqual({ [W('1.0.0')]: '1.0.0', [W('1.1.0')]: '1.1.0' });
    expect(docker.current).toBe(B2);
    expect(docker.versions.get(B1)).toBe('draining');
    expect(out).toContain(`reap ${W('1.0.0')} (build ${B1}): kept: draining: pinned workflows are open on it`);
    expect(out).toContain(`reap ${W('1.1.0')} (build ${B2}): kept: this release's build`);

    // Later (cron, or by hand): still draining, kept; drained, stopped.
    docker.now += 2 * HOUR;
    await deploy('reap');
    expect(Object.keys(docker.projects())).toHaveLength(2);
    drained(B1);
    expect(await deploy('reap', '--dry-run')).toContain('would delete (dry run): drained');
    expect(Object.keys(docker.projects())).toHaveLength(2);
    const reaped = await deploy('reap');
    expect(reaped).toContain(`reap ${W('1.0.0')} (build ${B1}): to stop: drained`);
    expect(reaped).toContain(`stopping ${W('1.0.0')} (version 1.0.0)`);
    expect(docker.projects()).toEqual({ [W('1.1.0')]: '1.1.0' });
    expect(docker.calls(`-p ${W('1.0.0')}`, 'down')).toEqual([
      `docker compose -p ${W('1.0.0')} -f docker-compose.prod.yml --profile worker down (PERSONA_VERSION=1.0.0)`,
    ]);
  });

  it('rolls back: the earlier build current again, the newer kept until its pinned workflows finish', async () => {
    await deploy('up', '1.0.0');
    await deploy('up', '1.1.0');
    const workersOf100 = docker.containers.filter((c) => c.project === W('1.0.0'));
    await deploy('up', '1.0.0');
    // The earlier build's workers kept running throughout: the same containers, promoted again.
    expect(docker.containers.filter((c) => c.project === W('1.0.0'))).toEqual(workersOf100);
    expect(docker.current).toBe(B1);
    expect(docker.versions.get(B2)).toBe('draining');
    expect(docker.projects('api')).toEqual({ 'persona-prod': '1.0.0' });
    expect(Object.keys(docker.projects())).toHaveLength(2);
    drained(B2);
    await deploy('reap');
    expect(docker.projects()).toEqual({ [W('1.0.0')]: '1.0.0' });

    // A rollback after the earlier build was reaped starts its workers again before promoting them.
    await deploy('up', '1.1.0');
    drained(B1);
    await deploy('reap');
    expect(docker.projects()).toEqual({ [W('1.1.0')]: '1.1.0' });
    await deploy('up', '1.0.0');
    expect(docker.current).toBe(B1);
    expect(docker.projects()).toEqual({ [W('1.0.0')]: '1.0.0', [W('1.1.0')]: '1.1.0' });
  });

  it('replaces the workers at once when a release changed no workflow code (the same build)', async () => {
    await deploy('up', '1.1.0');
    const out = await deploy('up', '1.1.1');
    expect(out).toContain(`stopping ${W('1.1.0')} (version 1.1.0): build ${B2} runs in ${W('1.1.1')}`);
    expect(docker.projects()).toEqual({ [W('1.1.1')]: '1.1.1' });
    expect(docker.current).toBe(B2);
    // Stopped only after the new project's workers had started and the build was (still) current.
    const started = docker.log.findIndex((l) => l.includes(`-p ${W('1.1.1')}`) && l.includes('up -d'));
    const stopped = docker.log.findIndex((l) => l.includes(`-p ${W('1.1.0')}`) && l.includes('down'));
    const promoted = docker.log.findLastIndex((l) => l.includes('promote'));
    expect(started).toBeLessThan(promoted);
    expect(promoted).toBeLessThan(stopped);
  });

  it('keeps the running workers of the same build when the new ones never become ready', async () => {
    await deploy('up', '1.1.0');
    docker.failNext = (args) =>
      args.includes(W('1.1.1')) && args.includes('--wait')
        ? 'container persona-prod-worker-1-1-1-worker-1 is unhealthy'
        : null;
    const failed = await docker.run(['up', '1.1.1']);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('is unhealthy');
    expect(docker.calls(`-p ${W('1.1.0')}`, 'down')).toEqual([]);
    expect(docker.projects()[W('1.1.0')]).toBe('1.1.0');
    expect(docker.calls('promote')).toHaveLength(1);
  });

  it('stops before the promote when a step fails, and the running build keeps the work', async () => {
    await deploy('up', '1.0.0');
    docker.failNext = (args) =>
      args.includes(W('1.1.0')) && args.includes('up') ? 'Error response from daemon: no space left on device' : null;
    const failed = await docker.run(['up', '1.1.0']);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('no space left on device');
    expect(docker.calls('promote', '1.1.0')).toEqual([]);
    expect(docker.current).toBe(B1);
    expect(docker.projects()).toEqual({ [W('1.0.0')]: '1.0.0' });
  });

  it('refuses an image it cannot read, a version another project name holds, and a bad argument', async () => {
    const missing = await docker.run(['up', '2.0.0']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(
      'cannot read the build id of persona:2.0.0: build it (docker build -t persona:2.0.0 .)',
    );
    expect(docker.calls('docker compose')).toEqual([]);

    docker.images.set('persona:1-0-0', B2);
    await deploy('up', '1.0.0');
    const clash = await docker.run(['up', '1-0-0']);
    expect(clash.stderr).toContain(`the project ${W('1.0.0')} runs version 1.0.0, which is not 1-0-0`);
    expect(docker.current).toBe(B1);

    for (const args of [['up'], ['up', '1.0.0;rm'], ['promote'], ['reap', '--grace', '5']]) {
      const bad = await docker.run(args);
      expect(bad.code, args.join(' ')).not.toBe(0);
      expect(bad.stderr).toContain('usage: compose-deploy.sh up <version>');
    }
  });

  it('starts a build’s workers again without promoting it, and recreates them on request', async () => {
    await deploy('up', '1.0.0');
    await deploy('up', '1.1.0');
    // Version 1.0.0's workers stopped before it drained (PersonaPinnedWorkStalled).
    docker.containers = docker.containers.filter((c) => c.project !== W('1.0.0'));
    const promotes = docker.calls('promote').length;
    docker.now += HOUR;
    await deploy('start', '1.0.0');
    expect(docker.projects()).toEqual({ [W('1.0.0')]: '1.0.0', [W('1.1.0')]: '1.1.0' });
    expect(docker.current).toBe(B2);
    expect(docker.calls('promote')).toHaveLength(promotes);
    // Labelled with its build, so the reaper stops it again once it has drained.
    expect(docker.containers.find((c) => c.project === W('1.0.0'))?.labels['persona.build-id']).toBe(B1);

    // Renewed certificates: the running build's containers made anew.
    const before = docker.containers.filter((c) => c.project === W('1.1.0')).map((c) => c.createdAt);
    docker.now += HOUR;
    await deploy('start', '1.1.0', '--recreate');
    const after = docker.containers.filter((c) => c.project === W('1.1.0')).map((c) => c.createdAt);
    expect(after).toHaveLength(2);
    expect(after.every((t) => t > Math.max(...before))).toBe(true);
    expect((await docker.run(['start', '1.1.0', '--force'])).stderr).toContain('usage: compose-deploy.sh');
  });

  it('acts only on projects it could have made, whatever labels other containers carry', async () => {
    await deploy('up', '1.0.0');
    const spoof = (project: string, buildId: string) =>
      docker.addForeign({
        'persona.role': 'worker',
        'persona.release': 'persona-prod',
        'persona.version': '9.9.9',
        'persona.build-id': buildId,
        'com.docker.compose.project': project,
        'com.docker.compose.service': 'worker',
      });
    // Labelled as workers of the build about to be deployed, and of a drained one: the release's
    // own project, another team's (its name split into words and globs if read carelessly), and
    // one that names no project this script makes.
    spoof('persona-prod', B2);
    spoof('other-team-app *', B2);
    spoof('persona-prod-worker-x y', B1);
    await deploy('up', '1.1.0');
    drained(B1);
    const out = await deploy('reap');
    expect(out).toContain("ignoring a worker container labelled with project 'persona-prod'");
    const downs = docker.log.filter((l) => l.includes(' down'));
    expect(downs).toEqual([
      `docker compose -p ${W('1.0.0')} -f docker-compose.prod.yml --profile worker down (PERSONA_VERSION=1.0.0)`,
    ]);
    expect(docker.projects('api')).toEqual({ 'persona-prod': '1.1.0' });
  });

  it('refuses a network of that name it did not make, and an api whose versions disagree', async () => {
    docker.network = { name: 'persona-prod', args: ['--subnet', '10.213.0.0/16', '--ip-range', '10.213.0.0/16'] };
    const foreign = await docker.run(['up', '1.0.0']);
    expect(foreign.code).not.toBe(0);
    expect(foreign.stderr).toContain('the network persona-prod exists but is not this release');
    expect(docker.calls('docker compose')).toEqual([]);

    docker.network = null;
    await deploy('up', '1.0.0');
    docker.addForeign({
      'persona.version': '6.6.6',
      'com.docker.compose.project': 'persona-prod',
      'com.docker.compose.service': 'api',
    });
    const reap = await docker.run(['reap']);
    expect(reap.code).not.toBe(0);
    expect(reap.stderr).toContain('the apis of persona-prod do not agree on one version');
  });

  it('reaps every drained build in one run, and runs one at a time per release', async () => {
    docker.images.set('persona:1.2.0', '0.1.0-cccccccccccc');
    await deploy('up', '1.0.0');
    await deploy('up', '1.1.0');
    await deploy('up', '1.2.0');
    drained(B1);
    drained(B2);
    await deploy('reap');
    expect(docker.projects()).toEqual({ [W('1.2.0')]: '1.2.0' });

    const lock = `${docker.tmp}/persona-compose-deploy-persona-prod.lock`;
    const holder = spawn('flock', [lock, 'sleep', '30'], { stdio: 'ignore' });
    try {
      await until(async () => (await docker.run(['status'])).code !== 0, 10_000);
      expect((await docker.run(['reap'])).stderr).toContain('another compose-deploy.sh runs for persona-prod');
    } finally {
      holder.kill();
    }
  });

  it('shows the release, Temporal’s view and every worker build', async () => {
    await deploy('up', '1.0.0');
    await deploy('up', '1.1.0');
    const { code, stdout } = await docker.run(['status']);
    expect(code).toBe(0);
    expect(stdout).toContain('release: 1.1.0');
    expect(stdout).toContain(`current: persona.${B2}`);
    expect(stdout).toMatch(new RegExp(`${W('1.0.0')}\\t1\\.0\\.0\\t${B1}\\t2026-03-01 12:00:00 \\+0000 UTC\\trunning`));
  });
});
