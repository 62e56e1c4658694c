/**
 * The image, without a container engine: the Dockerfile read as a builder reads it
 * (test/support/dockerfile.ts). Its build stage's RUN after the sources are copied in
 * (scripts/build-image.sh) writes what the image holds into a fresh folder with
 * NODE_ENV=production, in place of the folder the run stage copies; the folder holds compiled
 * JavaScript and production dependencies only (no tsx, no TypeScript, no tests); the run stage's
 * CMD (the api) and docker-compose.yml's commands (the migration, the worker, the promotion, the
 * simulator), started from that folder alone with the run stage's ENV, complete an onboarding and a
 * payment recovery against the stack. What only an engine would show (the base image, the user,
 * file ownership) is in docs/deployment.md.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadSettings, repoRoot, workerDeploymentVersion } from '../../config/env';
import { listCustomerEvents } from '../../graph';
import { connectTemporal } from '../../temporal/connection';
import { recoveryWorkflowId } from '../../temporal/recovery';
import { signToken } from '../support/api';
import { envOf, execForm, flagsAndArgs, readDockerfile, type Stage } from '../support/dockerfile';
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

const stages = readDockerfile(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'));
const image = stages.at(-1) as Stage;
const ops = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op);
/** The image's files: one COPY, of a folder the build stage wrote. */
const copy = (() => {
  const copies = ops(image, 'COPY');
  if (copies.length !== 1) throw new Error(`the run stage copies ${copies.length} times, not once`);
  const { flags, args } = flagsAndArgs(copies[0]!.text);
  const stage = stages.find((s) => s.name === flags.get('from'));
  if (!stage || args.length !== 2) throw new Error(`COPY ${copies[0]!.text}: not one folder of a build stage`);
  return { stage, from: args[0]!, to: args[1]! };
})();
/** `text` with the image's folder (and the build stage's) put where the test built it. */
const inFolder = (text: string, image: string, folder: string) =>
  text.replace(new RegExp(`(?<![\\w/.-])${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.-])`, 'g'), folder);
/** A compose service's command, as docker-compose.yml runs it in the image. */
const composeCommand = (name: string): string[] => {
  const compose = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { command?: string[]; image?: string }>;
  };
  const command = compose.services[name]?.command;
  if (command?.[0] !== 'node')
    throw new Error(`docker-compose.yml's ${name} does not run node: ${JSON.stringify(command)}`);
  return command.slice(1);
};

beforeAll(async () => {
  out = mkdtempSync(path.join(tmpdir(), 'persona-image-'));
  // The build stage's RUNs once the sources are in (before, it installs what the repository has
  // installed already), writing into `out` instead of the folder the run stage copies.
  const build = copy.stage.instructions;
  const sources = build.findIndex((i) => i.op === 'COPY' && i.text === '. .');
  expect(sources, 'the build stage copies the sources in').toBeGreaterThan(0);
  const runs = build.slice(sources + 1).filter((i) => i.op === 'RUN');
  expect(runs.length, 'the build stage builds after the sources are in').toBeGreaterThan(0);
  for (const step of runs)
    await run('bash', ['-c', inFolder(step.text, copy.from, out)], {
      cwd: repoRoot,
      env: { ...process.env, NODE_ENV: 'production' },
      maxBuffer: 16 * 1024 * 1024,
    });
  graph = openTestGraph();
  // The run stage's ENV, its folder where the test built it, but for NODE_ENV=production: that
  // mode asks for TLS and a JWKS over https the local stack does not serve (docs/deployment.md).
  const { NODE_ENV, ...imageEnv }: Record<string, string> = Object.assign(
    {},
    ...ops(image, 'ENV').map((e) => envOf(inFolder(e.text, copy.to, out))),
  );
  expect(NODE_ENV).toBe('production');
  // The local stack's keys (as a deployment passes its secrets), and a task queue of its own.
  const env = {
    ...imageEnv,
    TEMPORAL_TASK_QUEUE: `image-${randomUUID()}`,
    PERSONA_STACK_DIR: loadSettings().PERSONA_STACK_DIR,
    PERSONA_DEPLOYMENT_NAME: testDeploymentName(),
    PERSONA_SCHEDULES: 'skip',
  };
  const node = (command: string[]) =>
    run(process.execPath, command, { cwd: out, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
  // As a deploy runs them: the migration, the worker, the promotion (the image's own), the api.
  await node(composeCommand('migrate'));
  processes.push(await startWorkerProcess(env, { built: out, command: composeCommand('worker'), promote: false }));
  await node(composeCommand('deploy'));
  const cmd = execForm(ops(image, 'CMD').at(-1)!.text);
  expect(cmd[0]).toBe('node');
  api = await startApiProcess(env, [], { built: out, command: cmd.slice(1) });
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
    { built: out, command: composeCommand('gateway-sim') },
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
