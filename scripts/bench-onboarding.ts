/**
 * The onboarding benchmark, on the stack's Neo4j, Temporal and gateway simulator:
 *
 *   npm run bench:onboarding -- [--onboardings 200] [--callers 1,4]
 *
 * The REST api served over HTTP by this process (as `npm run dev` serves it, with the payload
 * codec and a worker beside it, on a task queue of their own), called with fetch: each
 * onboarding is `POST /api/v1/onboarding?wait=true` (a new customer with a verified email, a card
 * and a device), timed from the request to the first response (the Update-with-Start's answer).
 * In the same run, `callers` at a time: a bare workflow (scripts/bench-workflows.ts) with as
 * many no-op activities as one onboarding ran, started and awaited through the same Temporal
 * client, measured the same way. Prints p50/p95/p99 and throughput of each, alternating rounds
 * so both meet the same machine, and writes the figures to bench/results/.
 *
 *   npm run bench:onboarding -- --resolution 1000 [--seed 11]
 *
 * instead measures what identity resolution adds to the onboarding's transaction, on the graph
 * as seeded (scripts/benchOnboardingResolution.ts); Temporal is not involved.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { apiDepsFromConfig } from '../api/deps';
import { createApp } from '../api/rest/app';
import { LocalChimeraClient } from '../clients/chimera';
import { LogNotificationSink } from '../clients/notifications';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import { loadConfig, profileRules, repoRoot } from '../config/env';
import { createDriver, migrate } from '../graph';
import { createLogger } from '../runtime/logger';
import { graphFromConfig } from '../runtime/graph';
import { RequestContext } from '../runtime/requestContext';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';
import { generousRateLimiter, signToken } from '../test/support/api';
import { workerInterceptors } from '../workers/logging';
import { openProcessSinks } from '../workers/openProcesses';
import { f2, newCustomerOnboarding, summarise, type Latencies } from './benchKit';
import { benchResolution, printResolution } from './benchOnboardingResolution';
import { nativeConnectionOptions, temporalTransport } from '../temporal/transport';

const { values } = parseArgs({
  options: {
    onboardings: { type: 'string', default: '200' },
    callers: { type: 'string', default: '1,4' },
    resolution: { type: 'string' },
    seed: { type: 'string', default: '11' },
  },
});
const total = Number(values.onboardings);
const levels = (values.callers ?? '1').split(',').map(Number);

function writeResults(name: string, results: unknown): void {
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nfigures written to ${path.relative(repoRoot, file)}`);
}

async function resolutionOnly(signUps: number): Promise<void> {
  if (!Number.isInteger(signUps) || signUps < 2) throw new Error('--resolution must be an integer of at least 2');
  const config = loadConfig();
  const driver = createDriver(config);
  try {
    await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
    const graph = graphFromConfig(driver, config);
    const figures = await benchResolution(driver, graph, config, { signUps, seed: Number(values.seed) });
    printResolution(figures);
    writeResults('onboarding-resolution', { at: new Date().toISOString(), seed: Number(values.seed), ...figures });
  } finally {
    await driver.close();
  }
}

async function main(): Promise<void> {
  if (values.resolution !== undefined) return resolutionOnly(Number(values.resolution));
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = loadConfig();
  const driver = createDriver(config);
  await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  const graph = graphFromConfig(driver, config);
  const logger = createLogger('bench-onboarding', 'silent');
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, ...temporalTransport(config) });
  const native = await NativeConnection.connect(nativeConnectionOptions(config));
  const requests = new RequestContext();
  const taskQueue = `bench-onboarding-${randomUUID()}`;
  // As Persona runs: payloads encrypted by the api's client and the worker.
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: { payloadCodecs: [payloadCodecFromConfig(config, graph, 'encode')] },
  });
  const worker = await Worker.create({
    connection: native,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('./bench-workflows.ts', import.meta.url)),
    interceptors: workerInterceptors(requests),
    sinks: openProcessSinks(graph, () => undefined),
    dataConverter: { payloadCodecs: [payloadCodecFromConfig(config, graph, 'all')] },
    activities: {
      ...createActivities({
        graph,
        chimera: new LocalChimeraClient(graph),
        gateway: new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, 5000),
        notifications: new LogNotificationSink(logger),
        trustThreshold: config.PERSONA_TRUST_THRESHOLD,
        profileRules: profileRules(config),
        temporal: client,
      }),
      benchNoop: async (i: number) => (i >= 0 ? 1 : 0),
    },
  });
  const running = worker.run();
  const deps = {
    ...apiDepsFromConfig(config, { logger, readiness: [], graph, client, requests, taskQueue }),
    rateLimiter: generousRateLimiter(),
  };
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: createApp(deps).fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const token = await signToken(config.jwtSecret, 'onboarding:write', 'bench-onboarding', '1h');

  let lastWorkflowId = '';
  const onboard = async (): Promise<number> => {
    const started = performance.now();
    const res = await fetch(`${base}/api/v1/onboarding?wait=true`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: JSON.stringify(newCustomerOnboarding('onboarding.example')),
    });
    const body = (await res.json()) as { workflow_id?: string };
    const took = performance.now() - started;
    if (res.status !== 200 && res.status !== 201) throw new Error(`onboarding answered ${res.status}`);
    lastWorkflowId = body.workflow_id ?? lastWorkflowId;
    return took;
  };

  // Warm up (sandbox, connections, JIT), then count what one onboarding runs, to its end.
  for (let i = 0; i < 20; i++) await onboard();
  const probe = client.workflow.getHandle(lastWorkflowId);
  await probe.result();
  // Its activities, local ones (a marker each) too: the bare workflow runs as many, all of them
  // ordinary activities, as onboarding ran before it wrote the customer in a local activity.
  let activities = 0;
  let local = 0;
  for (const e of (await probe.fetchHistory()).events ?? []) {
    if (e.activityTaskScheduledEventAttributes) activities++;
    if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') local++;
  }
  activities += local;
  const bare = async (): Promise<number> => {
    const started = performance.now();
    const h = await client.workflow.start('benchBareWorkflow', {
      workflowId: `bench-bare-${randomUUID()}`,
      taskQueue,
      args: [activities],
    });
    await h.result();
    return performance.now() - started;
  };
  for (let i = 0; i < 20; i++) await bare();

  console.log(
    `${total} onboardings (POST /api/v1/onboarding?wait=true over HTTP, payload codec on) and ${total} bare ` +
      `workflows of ${activities} no-op activities (onboarding runs ${local} of its ${activities} as local ` +
      'activities), alternating rounds',
  );
  const results: Record<string, unknown> = {
    at: new Date().toISOString(),
    activities_per_onboarding: activities,
    local_activities_per_onboarding: local,
  };
  for (const callers of levels) {
    const took: Record<'onboarding' | 'bare', number[]> = { onboarding: [], bare: [] };
    const busy: Record<'onboarding' | 'bare', number> = { onboarding: 0, bare: 0 };
    for (let done = 0, round = 0; done < total; done += callers, round++) {
      const order: ('onboarding' | 'bare')[] = round % 2 === 0 ? ['onboarding', 'bare'] : ['bare', 'onboarding'];
      for (const kind of order) {
        const started = performance.now();
        const n = Math.min(callers, total - done);
        took[kind].push(...(await Promise.all(Array.from({ length: n }, kind === 'onboarding' ? onboard : bare))));
        busy[kind] += performance.now() - started;
      }
    }
    const line = (label: string, l: Latencies, perSecond: number) =>
      console.log(
        `  ${label.padEnd(28)} p50 ${f2(l.p50)} ms  p95 ${f2(l.p95)} ms  p99 ${f2(l.p99)} ms  ` + `${f2(perSecond)}/s`,
      );
    const o = summarise(took.onboarding);
    const b = summarise(took.bare);
    const oRate = (took.onboarding.length / busy.onboarding) * 1000;
    const bRate = (took.bare.length / busy.bare) * 1000;
    console.log(`\n${callers} caller${callers === 1 ? '' : 's'}`);
    line('onboarding, first response', o, oRate);
    line('bare workflow, start to end', b, bRate);
    console.log(`  throughput: ${f2(oRate / bRate)}× the bare workflow`);
    results[`callers_${callers}`] = { onboarding: { ...o, per_second: oRate }, bare: { ...b, per_second: bRate } };
  }

  writeResults('onboarding', results);
  server.close();
  worker.shutdown();
  await running;
  await connection.close();
  await native.close();
  await driver.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
