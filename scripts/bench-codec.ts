/**
 * What the payload codec costs an onboarding, on whatever graph the local Neo4j holds:
 *
 *   npm run bench:codec -- [--onboardings 300] [--concurrency 1,4]
 *
 * One process, one graph, two set-ups side by side: an api (the REST app, in process) with its
 * Temporal client and a worker **with** the codec (as Persona runs), and the same **without** it
 * (payloads in clear, what Persona did before), each on a task queue of its own. Onboardings
 * (`POST /api/v1/onboarding?wait=true`, a new customer with a verified email, a card and a device)
 * alternate between the two, so both meet the same machine; prints p50/p95/p99 and throughput of
 * each, and the codec's share, at each concurrency.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { apiDepsFromConfig, type ApiDeps } from '../api/deps';
import { createApp } from '../api/rest/app';
import { generousRateLimiter, signToken } from '../test/support/api';
import { newCustomerOnboarding } from './benchKit';
import { LocalChimeraClient } from '../clients/chimera';
import { LogNotificationSink } from '../clients/notifications';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import { loadConfig, profileRules } from '../config/env';
import { createDriver, migrate } from '../graph';
import { createLogger } from '../runtime/logger';
import { graphFromConfig } from '../runtime/graph';
import { RequestContext } from '../runtime/requestContext';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';
import { workerInterceptors } from '../workers/logging';
import { openProcessSinks } from '../workers/openProcesses';
import { nativeConnectionOptions, temporalTransport } from '../temporal/transport';

const { values } = parseArgs({
  options: { onboardings: { type: 'string', default: '300' }, concurrency: { type: 'string', default: '1,4' } },
});
const total = Number(values.onboardings);
const levels = (values.concurrency ?? '1').split(',').map(Number);

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
const ms = (n: number): string => `${n.toFixed(1)} ms`;

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = loadConfig();
  const driver = createDriver(config);
  await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  const graph = graphFromConfig(driver, config);
  const logger = createLogger('bench-codec', 'silent');
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, ...temporalTransport(config) });
  const native = await NativeConnection.connect(nativeConnectionOptions(config));

  const setup = async (name: 'codec' | 'plain') => {
    const requests = new RequestContext();
    const taskQueue = `bench-codec-${name}-${randomUUID()}`;
    const clientCodec: PayloadCodec[] = name === 'codec' ? [payloadCodecFromConfig(config, graph, 'encode')] : [];
    const workerCodec: PayloadCodec[] = name === 'codec' ? [payloadCodecFromConfig(config, graph, 'all')] : [];
    const client = new Client({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      dataConverter: { payloadCodecs: clientCodec },
    });
    const worker = await Worker.create({
      connection: native,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue,
      workflowsPath: new URL('../workflows/index.ts', import.meta.url).pathname,
      interceptors: workerInterceptors(requests),
      sinks: openProcessSinks(graph, () => undefined),
      dataConverter: { payloadCodecs: workerCodec },
      activities: createActivities({
        graph,
        chimera: new LocalChimeraClient(graph),
        gateway: new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, 5000),
        notifications: new LogNotificationSink(logger),
        trustThreshold: config.PERSONA_TRUST_THRESHOLD,
        profileRules: profileRules(config),
        temporal: client,
      }),
    });
    const base = apiDepsFromConfig(config, { logger, readiness: [], graph, client, requests, taskQueue });
    const deps: ApiDeps = {
      ...base,
      rateLimiter: generousRateLimiter(),
    };
    return { name, app: createApp(deps), worker, running: worker.run() };
  };
  const setups = [await setup('plain'), await setup('codec')];
  const token = await signToken(config.jwtSecret, 'onboarding:write', 'bench-codec', '1h');

  const onboard = async (app: (typeof setups)[number]['app']): Promise<number> => {
    const started = performance.now();
    const res = await app.request('/api/v1/onboarding?wait=true', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: JSON.stringify(newCustomerOnboarding('codec.example')),
    });
    if (res.status !== 200 && res.status !== 201)
      throw new Error(`onboarding answered ${res.status}: ${await res.text()}`);
    return performance.now() - started;
  };

  // Warm both (workflow sandbox, connections, JIT).
  for (let i = 0; i < 20; i++) for (const s of setups) await onboard(s.app);

  console.log(`graph and Temporal as they are; ${total} onboardings per set-up and concurrency, alternating`);
  for (const concurrency of levels) {
    const latencies: Record<string, number[]> = { plain: [], codec: [] };
    const busy: Record<string, number> = { plain: 0, codec: 0 };
    // Rounds of `concurrency` onboardings on one set-up, then the other, which goes first swapping
    // every round: the same machine for both (an onboarding's tail — Chimera's request, after the
    // answer — overlaps whatever comes next).
    for (let done = 0, round = 0; done < total; done += concurrency, round++) {
      for (const s of round % 2 === 0 ? setups : [...setups].reverse()) {
        const started = performance.now();
        const took = await Promise.all(
          Array.from({ length: Math.min(concurrency, total - done) }, () => onboard(s.app)),
        );
        busy[s.name] = (busy[s.name] ?? 0) + (performance.now() - started);
        latencies[s.name]?.push(...took);
      }
    }
    const summary = (name: string) => {
      const sorted = [...(latencies[name] ?? [])].sort((a, b) => a - b);
      return {
        p50: pct(sorted, 50),
        p95: pct(sorted, 95),
        p99: pct(sorted, 99),
        perSecond: (sorted.length / (busy[name] ?? 1)) * 1000,
      };
    };
    const plain = summary('plain');
    const codec = summary('codec');
    console.log(`\nconcurrency ${concurrency}`);
    for (const [name, s] of [
      ['without codec', plain],
      ['with codec', codec],
    ] as const)
      console.log(
        `  ${name.padEnd(14)} p50 ${ms(s.p50)}  p95 ${ms(s.p95)}  p99 ${ms(s.p99)}  ` +
          `${s.perSecond.toFixed(1)} onboardings/s`,
      );
    console.log(
      `  codec's cost:  p50 ${ms(codec.p50 - plain.p50)} (${((codec.p50 / plain.p50 - 1) * 100).toFixed(1)} %), ` +
        `p99 ${ms(codec.p99 - plain.p99)}, throughput ${((codec.perSecond / plain.perSecond - 1) * 100).toFixed(1)} %`,
    );
  }

  for (const s of setups) s.worker.shutdown();
  await Promise.all(setups.map((s) => s.running));
  await connection.close();
  await native.close();
  await driver.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
