/**
 * The backup and restore commands as functions of the configuration and a Neo4j store: what
 * `npm run backup` and `npm run restore` run on the local stack's Neo4j (scripts/), and what the
 * drill runs on a private one (test/integration/backup-restore.test.ts).
 */
import { Client } from '@temporalio/client';
import { defaultPayloadConverter, type PayloadCodec } from '@temporalio/common';
import type { Config } from '../config/env';
import { createDriver } from '../graph/driver';
import { InvalidInputError } from '../graph/errors';
import { graphFromConfig } from '../runtime/graph';
import { connectTemporal } from '../temporal/connection';
import { payloadCodecFromConfig, type PersonaPayloadCodec } from '../temporal/payloadCodec';
import { isEncrypted } from '../temporal/payloadEnvelope';
import { GATEWAY_RECONCILIATION_WORKFLOW_TYPE } from '../temporal/reconciliation';
import { taskQueueFor, taskQueuesOf } from '../temporal/taskQueues';
import { backupGraph, type BackupResult, type Log, type Neo4jStore } from './backup';
import type { BackupManifest } from './archive';
import { ERASURE_LOOKBACK_MS, type RestoreReport } from './reconcile';
import { putBackupInPlace, reconcileRestored, type Placed, type RestoreRequest } from './restore';

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export async function runBackup(config: Config, store: Neo4jStore, log: Log): Promise<BackupResult> {
  const driver = createDriver(config);
  try {
    const r = await backupGraph({
      store,
      driver,
      database: config.NEO4J_DATABASE,
      dir: config.PERSONA_BACKUP_DIR,
      keep: config.PERSONA_BACKUP_KEEP,
      maxAgeMs: config.PERSONA_BACKUP_MAX_AGE_DAYS * 86_400_000,
      log,
    });
    const down = s(r.manifest.downtime_ms);
    log(`wrote ${r.file} (${mb(r.bytes)}) and its .sha256 in ${s(r.took_ms)}; Neo4j was down ${down}`);
    for (const old of r.deleted)
      log(
        `retention (keep ${config.PERSONA_BACKUP_KEEP}, none older than ${config.PERSONA_BACKUP_MAX_AGE_DAYS} days): ` +
          `deleted ${old}`,
      );
    return r;
  } finally {
    await driver.close();
  }
}

/**
 * Refuses while something still serves Persona: an api answering on this configuration's port, or
 * a worker that polled any of its task queues in the last `recentMs` (a long poll lasts a minute).
 */
export async function servingProcesses(config: Config, recentMs = 75_000): Promise<string[]> {
  const found: string[] = [];
  const api = await fetch(`http://127.0.0.1:${config.PERSONA_HTTP_PORT}/healthz`, {
    signal: AbortSignal.timeout(2000),
  }).catch(() => null);
  if (api) found.push(`an api answers on port ${config.PERSONA_HTTP_PORT}`);
  const { connection } = await connectTemporal(config);
  try {
    // Every kind's queue: a fleet may run dedicated workers of one kind (PERSONA_WORKER_KINDS).
    for (const name of new Set(Object.values(taskQueuesOf(config.TEMPORAL_TASK_QUEUE)))) {
      const queue = await connection.workflowService.describeTaskQueue({
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: { name },
      });
      const recent = (queue.pollers ?? []).filter((p) => {
        const seconds = Number(p.lastAccessTime?.seconds ?? 0);
        return Date.now() - seconds * 1000 < recentMs;
      });
      if (recent.length > 0)
        found.push(
          `${recent.length} worker(s) polled task queue ${name} in the last ` +
            `${recentMs / 1000} s (${recent.map((p) => p.identity).join(', ')})`,
        );
    }
  } finally {
    await connection.close();
  }
  return found;
}

export interface RestoreRun extends Placed {
  report: RestoreReport;
  took_ms: number;
}

/**
 * The erasure ledger is Temporal's record of completed erasure workflows, kept for the namespace's
 * retention: a backup older than that (less the lookback) would bring back customers erased in
 * between with nothing left to say so. Refused, unless ops accept it knowingly.
 */
export async function erasureLedgerReaches(config: Config, takenAt: string, now = new Date()): Promise<void> {
  const { connection } = await connectTemporal(config);
  try {
    const ns = await connection.workflowService.describeNamespace({ namespace: config.TEMPORAL_NAMESPACE });
    const retention = Number(ns.config?.workflowExecutionRetentionTtl?.seconds ?? 0) * 1000;
    const needed = now.getTime() - Date.parse(takenAt) + ERASURE_LOOKBACK_MS;
    if (retention > 0 && needed > retention)
      throw new Error(
        `the backup was taken ${takenAt}, longer ago than Temporal keeps its record of erasures ` +
          `(namespace ${config.TEMPORAL_NAMESPACE}: ${retention / 3_600_000} h): customers erased in between would ` +
          'come back. Restore a newer archive, or pass --accept-lost-erasures and erase them again by hand',
      );
  } finally {
    await connection.close();
  }
}

/**
 * An archive older than PERSONA_BACKUP_MAX_AGE_DAYS holds the history keys of customers whose
 * erasure deadline has passed: it is refused (no flag overrides it) — restore a newer one.
 */
export function archiveWithinDeadline(config: Config, takenAt: string, now = new Date()): void {
  const ageMs = now.getTime() - Date.parse(takenAt);
  // A time that does not parse, or one more than a day ahead of this clock, is no archive's.
  if (!Number.isFinite(ageMs) || ageMs < -86_400_000)
    throw new Error(`the backup's taken_at (${takenAt}) is not a time it could have been taken at: not restored`);
  if (ageMs > config.PERSONA_BACKUP_MAX_AGE_DAYS * 86_400_000)
    throw new Error(
      `the backup was taken ${takenAt}, more than PERSONA_BACKUP_MAX_AGE_DAYS ` +
        `(${config.PERSONA_BACKUP_MAX_AGE_DAYS}) days ago: ` +
        'it holds the history keys of customers erased since, past their erasure deadline. ' +
        'Restore a newer archive, and delete this one',
    );
}

export async function runRestore(
  config: Config,
  store: Neo4jStore,
  archive: string,
  log: Log,
  options: {
    acceptLostErasures?: boolean;
    /** Who restores, and why: kept on the GraphRestored event (never published: free text). */
    requested: RestoreRequest;
  },
): Promise<RestoreRun> {
  if (!options.requested.reason.trim())
    throw new InvalidInputError('reason', 'say why the graph is restored (kept with the restore)');
  const started = Date.now();
  const accept = async (m: BackupManifest) => {
    archiveWithinDeadline(config, m.taken_at);
    if (!options.acceptLostErasures) await erasureLedgerReaches(config, m.taken_at);
  };
  const placed = await putBackupInPlace({ archive, store, log, accept });
  // Opened only now: a driver from before would wait for transactions the restored store never had.
  const driver = createDriver(config);
  const graph = graphFromConfig(driver, config);
  // No key cache: every history key is read from the graph as restored.
  const codec = payloadCodecFromConfig(config, graph, 'none');
  const { connection, client } = await connectTemporal(config, { payloadCodec: codec });
  // The same connection with a codec that reads what it can and nothing else: a memo or summary
  // under a history key the restored graph never had reads as null (see RestoreTemporal).
  const visibility = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: { payloadCodecs: [readableOrNull(codec)] },
  });
  try {
    const report = await reconcileRestored({
      manifest: placed.manifest,
      driver,
      database: config.NEO4J_DATABASE,
      graph,
      temporal: { client, visibility },
      decode: (payloads) => codec.decode(payloads),
      reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
      taskQueue: taskQueueFor(taskQueuesOf(config.TEMPORAL_TASK_QUEUE), GATEWAY_RECONCILIATION_WORKFLOW_TYPE),
      log,
      requested: options.requested,
    });
    const took = Date.now() - started;
    log(`restored ${placed.manifest.id} in ${s(took)}; Neo4j was down ${s(placed.downtime_ms)}`);
    return { ...placed, report, took_ms: took };
  } finally {
    await connection.close();
    await driver.close();
  }
}

/** Persona's codec for reading only: a payload it cannot decrypt decodes to JSON null instead of failing. */
function readableOrNull(codec: PersonaPayloadCodec): PayloadCodec {
  const nothing = defaultPayloadConverter.toPayload(null);
  return {
    encode: (payloads) => codec.encode(payloads),
    async decode(payloads) {
      const { payloads: out } = await codec.decodeWhereReadable(payloads);
      return out.map((p) => (isEncrypted(p) ? nothing : p));
    },
  };
}
