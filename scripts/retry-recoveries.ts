/**
 * Retries every running payment recovery that waits for ops for one reason, in one Temporal batch
 * operation (temporal/batchRetry.ts) — what ops run once the gateway is back after an outage:
 *
 *   npm run ops:retry-recoveries                                   charge_unknown (a gateway outage)
 *   npm run ops:retry-recoveries -- --reason record_failed         another retryable reason
 *   npm run ops:retry-recoveries -- --dry-run                      count (and show some), send nothing
 *   npm run ops:retry-recoveries -- --reason-text "PSP outage INC-123 over"   why, kept with the batch
 *   npm run ops:retry-recoveries -- --per-second 10                spare a gateway just back
 *
 * It prints the batch's progress until it ends, and exits 1 if any recovery could not be
 * signalled (or on any error); docs/runbook.md, "A gateway outage".
 */
import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { loadSettings } from '../config/env';
import { connectTemporal } from '../temporal/connection';
import {
  BATCH_RETRYABLE_REASONS,
  batchSucceeded,
  blockedRecoveriesQuery,
  BatchRetryError,
  countMatching,
  someMatching,
  startRetryBatch,
  waitForBatch,
  type BatchRetryableReason,
} from '../temporal/batchRetry';

const USAGE =
  'usage: retry-recoveries.ts [--reason <' +
  BATCH_RETRYABLE_REASONS.join('|') +
  '>] [--dry-run] [--reason-text <text>] [--per-second <n>] [--job-id <id>]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reason: { type: 'string', default: 'charge_unknown' },
      'dry-run': { type: 'boolean', default: false },
      'reason-text': { type: 'string' },
      'per-second': { type: 'string' },
      'job-id': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const reason = values.reason as BatchRetryableReason;
  if (!(BATCH_RETRYABLE_REASONS as readonly string[]).includes(reason))
    throw new BatchRetryError(`--reason ${reason}: not retried in a batch.\n${USAGE}`);
  const perSecond = values['per-second'] === undefined ? undefined : Number(values['per-second']);
  if (perSecond !== undefined && !(perSecond > 0)) throw new BatchRetryError(`--per-second must be a positive number`);

  const settings = loadSettings();
  const namespace = settings.TEMPORAL_NAMESPACE;
  // Search attributes and the batch only: no payload passes, so no codec.
  const { connection } = await connectTemporal(settings);
  const service = connection.workflowService;
  try {
    const query = blockedRecoveriesQuery(reason);
    const found = await countMatching(service, namespace, query);
    console.log(`[retry] ${found} recoveries wait for ops with ${reason} in ${namespace}`);
    console.log(`[retry]   ${query}`);
    if (values['dry-run']) {
      for (const id of await someMatching(service, namespace, query)) console.log(`[retry]   ${id}`);
      if (found > 10) console.log(`[retry]   … and ${found - 10} more`);
      console.log('[retry] dry run: nothing sent');
      return;
    }
    if (found === 0) {
      console.log('[retry] nothing to retry');
      return;
    }
    const identity = `persona ops:retry-recoveries (${userInfo().username}@${hostname()})`;
    const jobId = await startRetryBatch(service, {
      namespace,
      reason,
      reasonText: values['reason-text'] ?? `retry the recoveries waiting for ops with ${reason}`,
      identity,
      ...(values['job-id'] ? { jobId: values['job-id'] } : {}),
      ...(perSecond ? { maxOperationsPerSecond: perSecond } : {}),
    });
    console.log(`[retry] batch ${jobId} started (temporal batch describe --job-id ${jobId})`);
    const done = await waitForBatch(service, namespace, jobId, {
      onProgress: (p) => console.log(`[retry] ${p.state}: ${p.complete} of ${p.total} signalled, ${p.failed} failed`),
    });
    if (!batchSucceeded(done)) {
      console.error(
        `[retry] batch ${jobId} ${done.state}: ${done.failed} of ${done.total} recoveries were not signalled ` +
          '(ended meanwhile, or refused): run this again, then look at what is left with --dry-run',
      );
      process.exitCode = 1;
      return;
    }
    console.log(
      `[retry] done: ${done.complete} recoveries told to retry; each one leaves needs_attention as its retry ` +
        `goes through (run --dry-run to see what still waits)`,
    );
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
