import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDepsFromConfig, type ApiDeps } from '../../api/deps';
import { expiryScanProgress, startExpiryScan } from '../../api/services/expiry';
import { reportPaymentFailure } from '../../api/services/recovery';
import { queryWithin } from '../../api/services/refusals';
import { loadSettings, repoRoot } from '../../config/env';
import { InvalidStateError } from '../../graph/errors';
import { createLogger } from '../../runtime/logger';
import { RequestContext } from '../../runtime/requestContext';
import { connectTemporal } from '../../temporal/connection';
import { expiryScanProgressQuery, type ExpiryScanProgress } from '../../temporal/expiry';
import { cancelRecoveryUpdate, recoveryStatusQuery, recoveryWorkflowId } from '../../temporal/recovery';
import { taskQueueFor, taskQueuesOf } from '../../temporal/taskQueues';
import {
  TRUSTED_DEVICE_WORKFLOW_TYPE,
  trustedDeviceWorkflowId,
  type TrustedDeviceInput,
} from '../../temporal/trustedDevice';
import {
  deploymentStatus,
  DeploymentError,
  promote,
  rollback,
  RoutingNotSettledError,
  versionTaskQueues,
  waitForVersion,
  type DeploymentTarget,
} from '../../temporal/workerDeployment';
import { openTestGraph, type TestGraph, testPayloadCodec } from '../support/graph';
import {
  freePort,
  startWorkerProcess,
  stopProcess,
  testDeploymentName,
  type WorkerProcess,
} from '../support/processes';
import { customerWithCards, paymentId } from '../support/recovery';
import { until } from '../support/wait';

/**
 * Worker Versioning on the real dev server, with real worker processes of two versions of one
 * deployment (the same code under two build ids, as two deploys of it would be):
 *   - a pinned workflow (the trusted-device sighting, held at a Chimera that answers 503) started
 *     on version 1 finishes on version 1 after version 2 became current, while new starts go to 2;
 *   - an auto-upgrade workflow (a payment recovery waiting in dunning) moves to version 2 at its
 *     next workflow task;
 *   - a rollback makes version 1 current again, and new starts go back to it;
 *   - the deploy tool (scripts/deploy.ts, as `npm run deploy:status` and compose's reaper run it)
 *     reads the same state: the current version, and which build may stop;
 *   - a finished pinned workflow's answer (an expiry scan's progress) is read from its history once
 *     its build's workers are gone, as they are when the reaper stops a drained build.
 * Which version ran each workflow task is read from the history (WorkflowTaskCompleted's
 * deployment version) and the workflow's description (its versioning info).
 */
const taskQueue = `versioning-${randomUUID()}`;
/** The queues the worker processes poll, one per kind of work (temporal/taskQueues.ts). */
const queues = taskQueuesOf(taskQueue);
const suffix = randomUUID().slice(0, 8);
const [v1, v2] = [`v1-${suffix}`, `v2-${suffix}`];
let target: DeploymentTarget;
let graph: TestGraph;
let connection: Connection;
let client: Client;
let deps: ApiDeps;
let chimera: Server;
const workers: WorkerProcess[] = [];
/** Sightings Chimera answers 503 (retried by the workflow) until released; every request seen, by key. */
const held = new Set<string>();
const seen: string[] = [];

beforeAll(async () => {
  graph = openTestGraph();
  const settings = loadSettings();
  target = { namespace: settings.TEMPORAL_NAMESPACE, deploymentName: `${testDeploymentName()}-versioning` };
  const requests = new RequestContext();
  ({ connection, client } = await connectTemporal(settings, { payloadCodec: testPayloadCodec(graph) }));
  // Starts on the queues the worker processes poll, as an api of their configuration would.
  deps = apiDepsFromConfig(
    { ...graph.config, TEMPORAL_TASK_QUEUE: taskQueue },
    { logger: createLogger('versioning-test', 'silent'), readiness: [], graph, client, requests },
  );
  chimera = createServer((req, res) => {
    const key = String(req.headers['idempotency-key'] ?? '');
    seen.push(key);
    req.resume();
    res.writeHead(held.has(key) ? 503 : 200, { 'content-type': 'application/json' }).end('{}');
  });
  const chimeraPort = await freePort();
  await new Promise<void>((resolve) => chimera.listen(chimeraPort, '127.0.0.1', resolve));
  const env = (buildId: string) => ({
    TEMPORAL_TASK_QUEUE: taskQueue,
    PERSONA_DEPLOYMENT_NAME: target.deploymentName,
    PERSONA_BUILD_ID: buildId,
    CHIMERA_URL: `http://127.0.0.1:${chimeraPort}`,
  });
  // Both deploys' workers run from the start; only version 1 is made current.
  const started = await Promise.all([startWorkerProcess(env(v1)), startWorkerProcess(env(v2), { promote: false })]);
  workers.push(...started);
  // Two workers starting on a busy machine, and a promote that may wait out a routing change
  // Temporal reports in progress for good (90 s, then tolerated: test/support/processes.ts).
}, 300_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => stopProcess(w)));
  await new Promise((resolve) => chimera?.close(resolve));
  await connection?.close();
  await graph?.close();
});

/** The build id of the worker that completed each workflow task, in order. */
async function taskVersions(workflowId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) =>
    e.workflowTaskCompletedEventAttributes
      ? [e.workflowTaskCompletedEventAttributes.deploymentVersion?.buildId ?? '']
      : [],
  );
}

async function versioningInfo(workflowId: string): Promise<{ behavior: string; buildId: string | undefined }> {
  const { raw } = await client.workflow.getHandle(workflowId).describe();
  const info = raw.workflowExecutionInfo?.versioningInfo;
  const behavior = proto.temporal.api.enums.v1.VersioningBehavior[info?.behavior ?? 0] ?? '';
  return { behavior, buildId: info?.deploymentVersion?.buildId ?? undefined };
}

/**
 * A routing change Temporal took but still reports in progress past the wait (it has been seen to
 * stay so for good, temporalio/temporal#11842): said, and judged by where new work then runs, as
 * the test goes on to check; every other refusal fails the test.
 */
async function tolerated<T>(change: Promise<T>, taken: T): Promise<T> {
  try {
    return await change;
  } catch (err) {
    if (!(err instanceof RoutingNotSettledError)) throw err;
    console.log(`worker versioning: ${err.message}`);
    return taken;
  }
}

/** scripts/deploy.ts for this test's deployment, `stdin` written to it: its exit code and output. */
function deployTool(args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    ...process.env,
    TEMPORAL_TASK_QUEUE: taskQueue,
    PERSONA_DEPLOYMENT_NAME: target.deploymentName,
    // A release of neither build: the reaper judges both by Temporal's answer alone.
    PERSONA_BUILD_ID: `release-${suffix}`,
  };
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'scripts', 'deploy.ts'), ...args],
      { cwd: repoRoot, env, encoding: 'utf8' },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin);
  });
}

async function sighting(customerId: string): Promise<string> {
  const input: TrustedDeviceInput = {
    customer_id: customerId,
    device_id: randomUUID(),
    seen_on: new Date().toISOString().slice(0, 10),
  };
  const workflowId = trustedDeviceWorkflowId(input);
  await client.workflow.start(TRUSTED_DEVICE_WORKFLOW_TYPE, {
    taskQueue: taskQueueFor(queues, TRUSTED_DEVICE_WORKFLOW_TYPE),
    workflowId,
    args: [input],
  });
  return workflowId;
}

describe('worker versioning', () => {
  it('a version that never polls is not promoted, and the error says what is missing', async () => {
    const never = `never-${suffix}`;
    // A second: the message gives whole seconds (half a second would read "within 1 s").
    await expect(promote(connection.workflowService, target, never, { timeoutMs: 1_000 })).rejects.toThrow(
      new DeploymentError(
        `version ${target.deploymentName}.${never} has not registered within 1 s: no worker of that build has ` +
          `polled Temporal (namespace ${target.namespace}). Start the new workers first, with ` +
          `PERSONA_DEPLOYMENT_NAME=${target.deploymentName} and PERSONA_BUILD_ID=${never} (or the code that ` +
          'derives it), and check their logs',
      ),
    );
    expect((await deploymentStatus(connection.workflowService, target))?.current).toBe(v1);
  });

  it('pinned work finishes where it started, auto-upgrade work moves, a rollback sends new starts back', async () => {
    const service = connection.workflowService;
    await waitForVersion(service, target, v2, { taskQueues: Object.values(queues) });
    // Each version polls every kind's queue: one version, four Workers.
    for (const buildId of [v1, v2])
      expect((await versionTaskQueues(service, target, buildId))?.sort()).toEqual(Object.values(queues).sort());
    const status = await deploymentStatus(service, target);
    expect(status).toMatchObject({ current: v1, ramping: null });
    expect(status?.versions.map((v) => v.buildId).sort()).toEqual([v1, v2]);

    // An auto-upgrade workflow on version 1: a recovery whose only card declines waits in dunning.
    const { customerId, cards } = await customerWithCards(graph, ['tok_decline_insufficient_funds_9']);
    const payment = paymentId();
    await reportPaymentFailure(deps, {
      payment_id: payment,
      customer_id: customerId,
      payment_method_id: cards[0] as string,
      amount: 1999,
      currency: 'EUR',
      decline_code: 'insufficient_funds',
    });
    const recovery = client.workflow.getHandle(recoveryWorkflowId(payment));
    await until(async () => (await recovery.query(recoveryStatusQuery)).state === 'dunning', 120_000);

    // A pinned workflow on version 1, its activity held at Chimera (retried with backoff).
    const pinnedOnV1 = await sighting(customerId);
    held.add(pinnedOnV1);
    await until(async () => seen.includes(pinnedOnV1), 120_000);
    expect(await taskVersions(pinnedOnV1)).toEqual([v1]);

    // Deploy: version 2 becomes current.
    const promoted = promote(service, target, v2, { taskQueues: Object.values(queues) });
    expect(await tolerated(promoted, { previous: v1 })).toEqual({ previous: v1 });
    // Released as soon as the deploy is done, so its next attempt is the activity's next backoff
    // (5, 10, 20 s ...) from when it was held, not from when the rest of this test is done.
    held.delete(pinnedOnV1);
    expect(await deploymentStatus(service, target)).toMatchObject({ current: v2 });

    // A new start runs on version 2 from its first task to its last.
    const startedOnV2 = await sighting(customerId);
    await client.workflow.getHandle(startedOnV2).result();
    const onV2 = await taskVersions(startedOnV2);
    expect(onV2.length).toBeGreaterThanOrEqual(2);
    expect(new Set(onV2)).toEqual(new Set([v2]));
    expect(await versioningInfo(startedOnV2)).toEqual({ behavior: 'VERSIONING_BEHAVIOR_PINNED', buildId: v2 });

    // The pinned one, released after the deploy, finishes where it started.
    await client.workflow.getHandle(pinnedOnV1).result();
    const onV1 = await taskVersions(pinnedOnV1);
    expect(onV1.length).toBeGreaterThanOrEqual(2);
    expect(new Set(onV1)).toEqual(new Set([v1]));
    expect(await versioningInfo(pinnedOnV1)).toEqual({ behavior: 'VERSIONING_BEHAVIOR_PINNED', buildId: v1 });
    expect(seen.filter((k) => k === pinnedOnV1).length).toBeGreaterThanOrEqual(2);

    // The recovery's tasks after the deploy run on version 2: it upgraded. (One may have run since
    // the promote already, a timer of its dunning on a slow machine: then it ran on version 2 too.)
    const beforeCancel = await taskVersions(recovery.workflowId);
    await recovery.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'versioning test' }] });
    expect(await recovery.result()).toMatchObject({ state: 'stopped' });
    const all = await taskVersions(recovery.workflowId);
    expect(all.length).toBeGreaterThan(beforeCancel.length);
    // Version 1 until the deploy, version 2 from then on: never back.
    const firstOnV2 = all.indexOf(v2);
    expect(firstOnV2).toBeGreaterThan(0);
    expect(new Set(all.slice(0, firstOnV2))).toEqual(new Set([v1]));
    expect(new Set(all.slice(firstOnV2))).toEqual(new Set([v2]));
    expect(all.at(-1)).toBe(v2);
    expect(await versioningInfo(recovery.workflowId)).toEqual({
      behavior: 'VERSIONING_BEHAVIOR_AUTO_UPGRADE',
      buildId: v2,
    });

    // Roll back: version 1 is current again, and takes the new starts.
    expect(await tolerated(rollback(service, target), { from: v2, to: v1 })).toEqual({ from: v2, to: v1 });
    expect(await deploymentStatus(service, target)).toMatchObject({ current: v1, ramping: null });
    const afterRollback = await sighting(customerId);
    await client.workflow.getHandle(afterRollback).result();
    expect(new Set(await taskVersions(afterRollback))).toEqual(new Set([v1]));
    // Its own budget: two waits of up to 120 s for workers under load, and the held activity's backoff.
  }, 300_000);

  it('the deploy tool reads the same state: the current version, and which build may stop', async () => {
    const status = await deployTool(['status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`current: ${target.deploymentName}.${v1}`);
    for (const buildId of [v1, v2]) expect(status.stdout).toMatch(new RegExp(`^  ${buildId} +\\w+`, 'm'));

    // Compose's reaper (scripts/compose-deploy.sh reap): the projects as `docker ps` lists them.
    const created = new Date(Date.now() - 3_600_000).toISOString().slice(0, 19).replace('T', ' ');
    const listed = [`workers-v1\t${v1}\t${created} +0000 UTC`, `workers-v2\t${v2}\t${created} +0000 UTC`].join('\n');
    const reap = await deployTool(['reap', '--listed', '--grace-minutes', '0'], listed);
    expect(reap.code, reap.stderr).toBe(0);
    expect(reap.stderr).toContain(`reap workers-v1 (build ${v1}): kept: the current version`);
    // Version 2, rolled back from, is draining until Temporal's next look finds nothing pinned open.
    if (reap.stdout === '') expect(reap.stderr).toContain(`reap workers-v2 (build ${v2}): kept: draining`);
    else {
      expect(reap.stdout).toBe('stop workers-v2\n');
      expect(reap.stderr).toContain(`reap workers-v2 (build ${v2}): to stop: drained`);
    }
  }, 120_000);

  it('reads a finished pinned scan’s progress from its history once its build’s workers are gone', async () => {
    // A day long past: no card of the shared graph expires near it, so the scan reads nothing.
    const asOf = `2001-0${1 + Math.floor(Math.random() * 9)}-1${Math.floor(Math.random() * 9)}`;
    const { workflow_id: scanId } = await startExpiryScan(deps, {
      as_of: asOf,
      reason: 'versioning test',
      requested_by: 'worker-versioning.test',
    });
    const scan = client.workflow.getHandle(scanId);
    const result = (await scan.result()) as ExpiryScanProgress;
    expect(result).toMatchObject({ as_of: asOf, state: 'done' });
    expect(await versioningInfo(scanId)).toEqual({ behavior: 'VERSIONING_BEHAVIOR_PINNED', buildId: v1 });

    // Version 1's workers stop (as the reaper stops a drained build's): nothing answers its queries.
    await stopProcess(workers[0] as WorkerProcess);
    await expect(queryWithin(scan, expiryScanProgressQuery, 3_000)).rejects.toThrow(/did not answer|unavailable/i);
    expect(await expiryScanProgress(deps, scanId)).toEqual(result);

    // One that ended without a result (terminated) has no progress to give, and says so.
    const { workflow_id: stopped } = await startExpiryScan(deps, {
      as_of: asOf.replace(/^2001/, '2002'),
      reason: 'versioning test',
      requested_by: 'worker-versioning.test',
    });
    await client.workflow.getHandle(stopped).terminate('versioning test');
    await expect(expiryScanProgress(deps, stopped)).rejects.toThrow(
      new InvalidStateError(
        `expiry scan ${stopped} ended terminated without a result: its history in the Temporal UI says how far ` +
          'it got; start the scan again (POST /api/v1/admin/expiry-scan)',
      ),
    );
  }, 120_000);
});
