/**
 * A day of gateway charges reconciled, in one lane and in lanes, in one run:
 *
 *   npm run bench:reconciliation -- [--charges 100000] [--succeeded 0.05] [--lanes 8] [--page 200]
 *
 * Seeds `--charges` charges made over one day (2004-06-01, a day no real charge or recovery has)
 * into a private gateway simulator of this process (its own records file in a temporary folder,
 * served on a free port): every one under a recovery's key, `--succeeded` of them succeeded
 * charges the graph has not recorded (each asks Temporal about its recovery, finds none, and is
 * flagged `charge_not_recorded`; nothing is written), the rest declined (their methods' tokens are
 * looked up in the graph). Then `gatewayReconciliationWorkflow` runs over that day on a worker of
 * this process, three times: `--lanes` lanes, one lane, each with SETTLE_CONCURRENCY charges
 * settled at once, and one lane with one charge settled at a time (the reconciliation as it was). Prints the
 * time of each and what each counted (the same for all three, or the run is wrong).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { activityFailureInterceptor } from '../activities/failures';
import { createReconciliationActivities, SETTLE_CONCURRENCY } from '../activities/reconciliation';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import { loadConfig, profileRules } from '../config/env';
import { createDriver } from '../graph';
import { loadRuleTable } from '../payments/ruleTables';
import { graphFromConfig } from '../runtime/graph';
import { createGatewaySimulator, type ChargeRecord } from '../simulators/gateway/app';
import { connectTemporal } from '../temporal/connection';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';
import type { GatewayReconciliationProgress } from '../temporal/reconciliation';
import { nativeConnectionOptions } from '../temporal/transport';
import type { gatewayReconciliationWorkflow } from '../workflows/gatewayReconciliation';

const log = (line: string): void => console.log(`[bench-reconciliation] ${line}`);
const DAY = '2004-06-01T00:00:00.000Z';
const DAY_MS = 24 * 3_600_000;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      charges: { type: 'string', default: '100000' },
      succeeded: { type: 'string', default: '0.05' },
      lanes: { type: 'string', default: '8' },
      page: { type: 'string', default: '200' },
    },
  });
  const total = Number(values.charges);
  const succeededShare = Number(values.succeeded);
  const lanes = Number(values.lanes);
  const pageSize = Number(values.page);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig();
  const driver = createDriver(config);
  const graph = graphFromConfig(driver, config);

  // The day's charges, written as the simulator keeps them (one line per charge's first answer).
  const dir = mkdtempSync(path.join(tmpdir(), 'persona-bench-reconciliation-'));
  const dataFile = path.join(dir, 'charges.jsonl');
  const run = randomUUID().slice(0, 8);
  const start = Date.parse(DAY);
  const every = Math.max(1, Math.floor(1 / succeededShare));
  const lines: string[] = [];
  for (let i = 0; i < total; i++) {
    const succeeded = i % every === 0;
    const payment = `bench-${run}-pay-${i}`;
    const record: ChargeRecord = {
      id: `ch_bench_${run}_${i}`,
      idempotency_key: `${payment}:bench-${run}-pm-${i % 20_000}`,
      customer_id: `bench-${run}-c-${i % 20_000}`,
      amount: 1999,
      currency: 'EUR',
      status: succeeded ? 'succeeded' : 'declined',
      decline_code: succeeded ? null : 'insufficient_funds',
      created_at: new Date(start + Math.floor((i * DAY_MS) / total)).toISOString(),
      reference: payment,
    };
    lines.push(JSON.stringify({ record, http_status: succeeded ? 200 : 402 }));
  }
  writeFileSync(dataFile, `${lines.join('\n')}\n`);
  const simulator = createGatewaySimulator(dataFile, loadRuleTable());
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: simulator.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const address = server.address();
  const gatewayUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  log(
    `${total.toLocaleString('en')} charges on ${DAY.slice(0, 10)} (${Math.ceil(total / every).toLocaleString('en')} ` +
      `succeeded and unrecorded), a private simulator at ${gatewayUrl}; pages of ${pageSize}`,
  );

  const nativeConnection = await NativeConnection.connect(nativeConnectionOptions(config));
  const { connection, client } = await connectTemporal(config, {
    payloadCodec: payloadCodecFromConfig(config, graph, 'encode'),
  });
  const results: { label: string; seconds: number; p: GatewayReconciliationProgress }[] = [];
  try {
    // The lanes first: whatever a cold start costs (Temporal's first describes, the page cache)
    // counts against them, not against the runs they are compared with.
    for (const [label, laneCount, settle] of [
      [`${lanes} lanes, ${SETTLE_CONCURRENCY} charges at once`, lanes, SETTLE_CONCURRENCY],
      [`1 lane, ${SETTLE_CONCURRENCY} charges at once`, 1, SETTLE_CONCURRENCY],
      ['1 lane, one charge at a time (as it was)', 1, 1],
    ] as const) {
      const taskQueue = `bench-reconciliation-${randomUUID()}`;
      const worker = await Worker.create({
        connection: nativeConnection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue,
        workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
        dataConverter: { payloadCodecs: [payloadCodecFromConfig(config, graph, 'all')] },
        interceptors: { activity: [activityFailureInterceptor()] },
        activities: createReconciliationActivities({
          graph,
          gatewayRecords: new HttpPaymentGateway(gatewayUrl, 30_000),
          temporal: client,
          profileRules: profileRules(config),
          settleConcurrency: settle,
        }),
      });
      const started = performance.now();
      const p = await worker.runUntil(
        client.workflow.execute<typeof gatewayReconciliationWorkflow>('gatewayReconciliationWorkflow', {
          workflowId: `bench-reconciliation-${run}-${laneCount}-${settle}`,
          taskQueue,
          args: [
            {
              lookback_hours: 0,
              grace_minutes: 0,
              page_size: pageSize,
              lanes: laneCount,
              window: { from: DAY, to: new Date(start + DAY_MS).toISOString() },
            },
          ],
          staticSummary: `Benchmark: reconciliation of a day of ${total} charges (${label})`,
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      results.push({ label, seconds, p });
      log(
        `${label}: ${seconds.toFixed(1)} s (${(total / seconds).toFixed(0)} charges/s): ` +
          `${p.counts.charges.toLocaleString('en')} charges compared, ${p.counts.methods_checked} tokens asked, ` +
          `${p.flagged.charge_not_recorded.toLocaleString('en')} flagged not recorded, ${p.pages} pages`,
      );
    }
    const [laned, oneLane, asItWas] = results;
    if (laned && oneLane && asItWas)
      log(
        `${lanes} lanes: ${(asItWas.seconds / laned.seconds).toFixed(2)}x faster than the reconciliation as it was, ` +
          `${(oneLane.seconds / laned.seconds).toFixed(2)}x faster than 1 lane`,
      );
    const agree = results.every(
      (r) =>
        r.p.counts.charges === total && r.p.flagged.charge_not_recorded === results[0]?.p.flagged.charge_not_recorded,
    );
    log(`every run compared all ${total.toLocaleString('en')} charges and flagged the same: ${agree ? 'yes' : 'NO'}`);
    if (!agree) process.exitCode = 1;
  } finally {
    await connection.close();
    await nativeConnection.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
    await driver.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
