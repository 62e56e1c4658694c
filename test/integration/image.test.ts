/**
 * The image, without a container engine: scripts/build-image.sh (what the Dockerfile's build
 * stage runs) writes what the image holds into a fresh folder with NODE_ENV=production; the
 * folder holds compiled JavaScript and production dependencies only (no tsx, no TypeScript, no
 * tests); a worker and an api started from that folder alone, with plain node, complete an
 * onboarding and a payment recovery against the stack. What only an engine would show (the base
 * image, the user, file ownership) is in docs/deployment.md.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, repoRoot, workerDeploymentVersion } from '../../config/env';
import { listCustomerEvents } from '../../graph';
import { connectTemporal } from '../../temporal/connection';
import { recoveryWorkflowId } from '../../temporal/recovery';
import { signToken } from '../support/api';
import { openTestGraph, testPayloadCodec, uniqueEmail, type TestGraph } from '../support/graph';
import { customerWithCards, paymentId } from '../support/recovery';
import {
  freePort,
  startApiProcess,
  startProcess,
  startWorkerProcess,
  stopProcess,
  testDeploymentName,
  waitForOk,
  type ApiProcess,
  type RunningProcess,
} from '../support/processes';

const run = promisify(execFile);
let out: string;
let graph: TestGraph;
let api: ApiProcess;
let simulator: RunningProcess;
let simulatorUrl: string;
const cleanup: string[] = [];
const processes: RunningProcess[] = [];

beforeAll(async () => {
  out = mkdtempSync(path.join(tmpdir(), 'persona-image-'));
  await run('bash', [path.join(repoRoot, 'scripts', 'build-image.sh'), out], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'production' },
    maxBuffer: 16 * 1024 * 1024,
  });
  graph = openTestGraph();
  // The local stack's keys (as a deployment passes its secrets), and a task queue of its own.
  const env = {
    TEMPORAL_TASK_QUEUE: `image-${randomUUID()}`,
    PERSONA_STACK_DIR: loadSettings().PERSONA_STACK_DIR,
    PERSONA_DEPLOYMENT_NAME: testDeploymentName(),
    PERSONA_SCHEDULES: 'skip',
  };
  const node = (script: string, ...args: string[]) =>
    run(process.execPath, ['--enable-source-maps', script, ...args], {
      cwd: out,
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
  // As a deploy runs them: the migration, the worker, the promotion (the image's own), the api.
  await node('scripts/migrate.js');
  processes.push(await startWorkerProcess(env, { built: out, promote: false }));
  await node('scripts/deploy.js', 'promote');
  api = await startApiProcess(env, [], { built: out });
  processes.push(api);
  const simulatorPort = String(await freePort());
  // Its records in a folder of its own, not the stack's simulator's.
  const records = mkdtempSync(path.join(tmpdir(), 'persona-image-sim-'));
  cleanup.push(records);
  simulator = startProcess(
    'simulators/gateway/main.ts',
    { PERSONA_GATEWAY_PORT: simulatorPort, PERSONA_GATEWAY_HOST: '127.0.0.1', PERSONA_STACK_DIR: records },
    [],
    [],
    { built: out },
  );
  processes.push(simulator);
  simulatorUrl = `http://127.0.0.1:${simulatorPort}`;
}, 600_000);

afterAll(async () => {
  for (const p of processes) await stopProcess(p);
  await graph?.close();
  for (const dir of [out, ...cleanup]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string, skip: (name: string) => boolean = () => false): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .filter((f) => !skip(f));
}

describe('the image, built into a folder', () => {
  it('holds compiled JavaScript and production dependencies only: no tsx, no TypeScript, no tests', () => {
    for (const dev of ['tsx', 'typescript', 'vitest', 'esbuild', 'eslint', 'prettier'])
      expect(existsSync(path.join(out, 'node_modules', dev)), dev).toBe(false);
    const own = filesUnder(out, (f) => f.startsWith('node_modules/'));
    expect(own.filter((f) => f.endsWith('.ts') || /(^|\/)test\//.test(f) || f.startsWith('docs/'))).toEqual([]);
    expect(own.filter((f) => /(^|\/)\.env/.test(f))).toEqual([]);
    // The worker polls as the version of the code it was built from, which it cannot hash itself.
    expect(readFileSync(path.join(out, 'BUILD_ID'), 'utf8')).toBe(workerDeploymentVersion(loadSettings()).buildId);
  });

  it('serves the files it reads at run time: the console, the API docs, the simulator', async () => {
    for (const file of ['/console/static/console.css', '/console/static/console.js', '/docs'])
      expect((await fetch(`${api.url}${file}`)).status, file).toBe(200);
    // The simulator reads the network-rule tables as it starts.
    await waitForOk(`${simulatorUrl}/healthz`, simulator, 60_000);
  });

  it('starts a worker and an api that onboard a customer and recover a payment', async () => {
    const onboarding = await fetch(`${api.url}/api/v1/onboarding?wait=true`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await signToken(graph.config.jwtSecret, 'onboarding:write identity:verify')}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        device: { fingerprint: `fp-${randomUUID()}` },
        digital_identifiers: [{ type: 'email', value: uniqueEmail('image'), is_verified: true }],
      }),
    });
    const created = (await onboarding.json()) as { customer_id: string; outcome: string };
    expect(onboarding.status, JSON.stringify(created)).toBe(200);
    expect(created.outcome).toBe('created');
    expect((await listCustomerEvents(graph, created.customer_id)).map((e) => e.type)).toContain('CustomerOnboarded');

    // The first card declines, the second pays: the recovery charges the second.
    const payer = await customerWithCards(graph, ['tok_decline_insufficient_funds_i', `tok_${randomUUID()}`]);
    const payment = paymentId();
    const reported = await fetch(`${api.url}/api/v1/payment-failures`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await signToken(graph.config.jwtSecret, 'payments:report')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        payment_id: payment,
        customer_id: payer.customerId,
        payment_method_id: payer.cards[0],
        amount: 1500,
        currency: 'EUR',
        decline_code: 'insufficient_funds',
      }),
    });
    expect(reported.status, await reported.clone().text()).toBe(202);
    const { connection, client } = await connectTemporal(loadSettings(), { payloadCodec: testPayloadCodec(graph) });
    try {
      const result = await client.workflow.getHandle(recoveryWorkflowId(payment)).result();
      expect(result).toMatchObject({ state: 'recovered' });
    } finally {
      await connection.close();
    }
  });
});
