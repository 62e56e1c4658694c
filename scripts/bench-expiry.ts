/**
 * The expiry-scan benchmark, on whatever graph the local Neo4j holds (seed one first:
 * `npm run seed -- --customers 1000000`):
 *
 *   npm run bench:expiry -- [--as-of 2026-11-22] [--batch 2000] [--lanes 4] [--no-rerun]
 *
 * In one run, over the same cards:
 *   1. raw read — the scan's paged Cypher (graph/expiry.ts) through neo4j-driver, nothing else;
 *   2. full scan — expiryScanWorkflow on the local Temporal with a real worker and the real
 *      activities: reads, expires, claims, sends and records warnings;
 *   3. re-run — the same scan again the same day (everything already sent: the daily steady
 *      state when a scan is retried or triggered twice).
 * Prints cards/s for each and the ratio to the raw read, and writes the figures as JSON to
 * bench/results/. Warnings go to a counting sink (the receiver's speed is not Persona's).
 * The scan changes the graph like the real one: cards past expiry become `expired` and
 * warnings are recorded, so a second benchmark on the same day finds them sent.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { activityFailureInterceptor } from '../activities/failures';
import { createActivities } from '../activities';
import { LocalChimeraClient } from '../clients/chimera';
import type { NotificationSink } from '../clients/notifications';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import { loadConfig, profileRules, repoRoot } from '../config/env';
import { createDriver, migrate } from '../graph';
import { readExpiryCandidates } from '../graph/expiry';
import { dateInTimeZone, isIsoDate, scanWindowEnd } from '../payments/expiry';
import { graphFromConfig } from '../runtime/graph';
import { connectTemporal } from '../temporal/connection';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';
import { expiryScanProgressQuery } from '../temporal/expiry';
import type { expiryScanWorkflow } from '../workflows/expiry';
import { nativeConnectionOptions } from '../temporal/transport';

const { values } = parseArgs({
  options: {
    'as-of': { type: 'string' },
    batch: { type: 'string' },
    'batches-per-run': { type: 'string' },
    lanes: { type: 'string' },
    'no-rerun': { type: 'boolean', default: false },
  },
});

const config = loadConfig();
const asOf = values['as-of'] ?? dateInTimeZone(new Date(), config.PERSONA_EXPIRY_SCAN_TIMEZONE);
if (!isIsoDate(asOf)) {
  console.error(`--as-of must be a date YYYY-MM-DD, got ${asOf}`);
  process.exit(2);
}
const batchSize = Number(values.batch ?? config.PERSONA_EXPIRY_BATCH_SIZE);
const batchesPerRun = Number(values['batches-per-run'] ?? config.PERSONA_EXPIRY_BATCHES_PER_RUN);
const lanes = Number(values.lanes ?? config.PERSONA_EXPIRY_SCAN_LANES);

const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  // The figures are the output: the SDK says only what went wrong.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const driver = createDriver(config);
  await driver.verifyConnectivity({ database: config.NEO4J_DATABASE });
  await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  const graph = graphFromConfig(driver, config);
  const [customers] = (
    await driver.executeQuery('MATCH (c:Customer) RETURN count(c) AS n', {}, { database: config.NEO4J_DATABASE })
  ).records;
  const customerCount = (customers?.get('n') as { toNumber(): number }).toNumber();
  const end = scanWindowEnd(asOf);
  console.log(
    `graph: ${customerCount.toLocaleString('en')} customers; scan as of ${asOf} reads active cards expiring up to ` +
      `${end.year}-${String(end.month).padStart(2, '0')}; batch ${batchSize}, ${lanes} lanes`,
  );

  // 1. The raw paged read, the floor (once untimed, so both sides meet a warm page cache).
  const rawRead = async () => {
    let cursor: Awaited<ReturnType<typeof readExpiryCandidates>>['next'] = null;
    let cards = 0;
    let pages = 0;
    const started = performance.now();
    do {
      const page = await readExpiryCandidates(graph, cursor, end, batchSize);
      cards += page.cards.length;
      pages++;
      cursor = page.next;
    } while (cursor);
    return { cards, pages, seconds: (performance.now() - started) / 1000 };
  };
  await rawRead();
  const measured = await rawRead();
  const rawCards = measured.cards;
  const rawSeconds = measured.seconds;
  const raw = {
    cards: rawCards,
    pages: measured.pages,
    seconds: round(rawSeconds, 2),
    cards_per_second: Math.round(rawCards / rawSeconds),
  };
  console.log(
    `raw paged read:  ${raw.cards.toLocaleString('en')} cards in ${raw.seconds} s = ` +
      `${raw.cards_per_second.toLocaleString('en')} cards/s (${raw.pages} pages)`,
  );

  // 2 and 3. The scan workflow with a real worker on its own task queue.
  let sent = 0;
  const sink: NotificationSink = {
    send: async () => {
      sent++;
    },
  };
  // Two workers side by side: with the payload codec (as Persona runs) and without it (payloads in
  // clear, as before it), each with its client and task queue, so the re-runs say what it costs.
  const nativeConnection = await NativeConnection.connect(nativeConnectionOptions(config));
  const setup = async (codec: boolean) => {
    const taskQueue = `bench-expiry-${codec ? 'codec' : 'plain'}-${randomUUID()}`;
    const { connection, client } = await connectTemporal(
      config,
      codec ? { payloadCodec: payloadCodecFromConfig(config, graph, 'encode') } : {},
    );
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
      dataConverter: { payloadCodecs: codec ? [payloadCodecFromConfig(config, graph, 'all')] : [] },
      interceptors: { activity: [activityFailureInterceptor()] },
      activities: createActivities({
        graph,
        chimera: new LocalChimeraClient(graph),
        gateway: new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, config.PERSONA_GATEWAY_TIMEOUT_MS),
        notifications: sink,
        trustThreshold: config.PERSONA_TRUST_THRESHOLD,
        profileRules: profileRules(config),
        temporal: client,
      }),
    });
    return { taskQueue, connection, client, worker };
  };
  const withCodec = await setup(true);
  const plain = await setup(false);

  const runScan = async (label: string, day = asOf, on = withCodec) => {
    const { client, taskQueue } = on;
    const workflowId = `bench-expiry-scan-${day}-${randomUUID().slice(0, 8)}`;
    const sentBefore = sent;
    const started = performance.now();
    const handle = await client.workflow.start<typeof expiryScanWorkflow>('expiryScanWorkflow', {
      workflowId,
      taskQueue,
      args: [
        {
          as_of: day,
          time_zone: config.PERSONA_EXPIRY_SCAN_TIMEZONE,
          batch_size: batchSize,
          batches_per_run: batchesPerRun,
          lanes,
        },
      ],
      staticSummary: `Benchmark: card-expiry scan as of ${day} (${label})`,
    });
    const ticker = setInterval(() => {
      void handle.query(expiryScanProgressQuery).then(
        (p) =>
          console.log(
            `  ${label} ${p.scanned.toLocaleString('en')} cards, ${p.batches} batches, ` +
              `${round((performance.now() - started) / 1000)} s`,
          ),
        () => undefined,
      );
    }, 5000);
    const progress = await handle.result();
    clearInterval(ticker);
    const seconds = (performance.now() - started) / 1000;
    const figures = {
      workflow_id: workflowId,
      cards: progress.scanned,
      seconds: round(seconds, 2),
      cards_per_second: Math.round(progress.scanned / seconds),
      ratio_to_raw: round(progress.scanned / seconds / (rawCards / rawSeconds), 2),
      batches: progress.batches,
      runs: progress.runs,
      warned: progress.notified,
      already_warned: progress.already_notified,
      unreachable: progress.unreachable,
      expired: progress.expired,
      notifications_delivered: sent - sentBefore,
    };
    console.log(
      `${label.padEnd(16)} ${figures.cards.toLocaleString('en')} cards in ${figures.seconds} s = ` +
        `${figures.cards_per_second.toLocaleString('en')} cards/s (${figures.ratio_to_raw}× raw); ` +
        `warned 60/30/7 d: ${progress.notified['60']}/${progress.notified['30']}/${progress.notified['7']}, ` +
        `already warned ${progress.already_notified}, expired ${progress.expired}, ` +
        `${progress.batches} batches in ${progress.runs} runs`,
    );
    return figures;
  };

  const results: Record<string, unknown> = { raw_read: raw };
  const running = [withCodec.worker.run(), plain.worker.run()];
  try {
    // Warm both workers (workflow sandbox, connections) on a day with nothing due.
    await runScan('warm-up:', '1990-01-01');
    await runScan('warm-up plain:', '1990-01-01', plain);
    results.full_scan = await runScan('full scan:');
    if (!values['no-rerun']) {
      // The same day again, alternately without and with the codec: the same work, both warm.
      const reruns: { plain: number[]; codec: number[] } = { plain: [], codec: [] };
      for (let i = 0; i < 2; i++) {
        reruns.plain.push((await runScan('re-run, plain:', asOf, plain)).seconds);
        const codec = await runScan('re-run:', asOf);
        reruns.codec.push(codec.seconds);
        results.rerun = codec;
      }
      const best = (xs: number[]) => Math.min(...xs);
      results.codec_cost = {
        rerun_seconds_plain: reruns.plain,
        rerun_seconds_codec: reruns.codec,
        best_ratio: round(best(reruns.codec) / best(reruns.plain), 2),
      };
      console.log(
        `payload codec on the re-run: best ${best(reruns.codec)} s with it vs ${best(reruns.plain)} s without ` +
          `(${round((best(reruns.codec) / best(reruns.plain) - 1) * 100)} %)`,
      );
    }
  } finally {
    withCodec.worker.shutdown();
    plain.worker.shutdown();
    await Promise.all(running);
  }
  await withCodec.connection.close();
  await plain.connection.close();
  await nativeConnection.close();
  await driver.close();

  const report = {
    benchmark: 'expiry-scan',
    at: new Date().toISOString(),
    as_of: asOf,
    customers: customerCount,
    batch_size: batchSize,
    batches_per_run: batchesPerRun,
    lanes,
    target: { full_scan_seconds_max: 60, ratio_to_raw_min: 0.5 },
    ...results,
  };
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `expiry-${report.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`figures written to ${path.relative(repoRoot, file)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
