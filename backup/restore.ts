/**
 * `npm run restore -- <archive>`: the graph brought back from a backup, and reconciled with what
 * happened after it (backup/reconcile.ts), before the api and worker serve again.
 *
 *   1. the archive against its `.sha256`, then each store file against the manifest;
 *   2. Neo4j stopped, its `data/` moved aside (kept, named in the output: nothing is deleted),
 *      the archive's put in its place, Neo4j started, the schema migrated up to this version;
 *   3. a new epoch, erasures since the backup applied again, running workflows reconciled (the
 *      payment recoveries the restored ledger lost written back into it), and a `GraphRestored` event.
 * Destroyed payload keys stay destroyed: those destroyed before the backup are tombstones in it,
 * those destroyed after are destroyed again with their erasures, and keys made after the backup
 * are not in it at all (their workflows are terminated: no worker could replay them).
 */
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Payload } from '@temporalio/common';
import type { Driver } from 'neo4j-driver';
import type { Graph } from '../graph/graph';
import { migrate } from '../graph/schema';
import { DATA_DIR, moveAside, unpackArchive, verifyArchiveChecksum, type BackupManifest } from './archive';
import type { Log, Neo4jStore } from './backup';
import {
  fraudOutcomesSince,
  reapplyErasures,
  reconcileWorkflows,
  recordRestore,
  startEpoch,
  startGatewayReconciliation,
  type RestoreReport,
  type RestoreTemporal,
} from './reconcile';

export interface PlaceOptions {
  archive: string;
  store: Neo4jStore;
  log: Log;
  now?: () => Date;
  /** Asked once the archive is verified, before Neo4j stops: throw to refuse (nothing changed yet). */
  accept?: (manifest: BackupManifest) => Promise<void>;
}

export interface Placed {
  manifest: BackupManifest;
  /** Where the store that was replaced now is. */
  replaced: string | null;
  downtime_ms: number;
}

/**
 * Steps 1 and 2: the archive verified and put in place of the store, Neo4j started on it. Every
 * driver opened before this must be closed: its bookmarks name transactions the restored store
 * has not had (the driver waits for them, and then refuses), which is why a restore needs the api
 * and worker stopped and opens its own driver only after this.
 */
export async function putBackupInPlace(o: PlaceOptions): Promise<Placed> {
  const now = o.now ?? (() => new Date());
  o.log(`verifying ${o.archive}`);
  await verifyArchiveChecksum(o.archive);
  const stamp = now().toISOString().replace(/[:.]/g, '-');
  // Beside the store, so that putting it in place is a rename, not a copy.
  const unpacked = path.join(o.store.home, `restore-${stamp}`);
  const data = path.join(o.store.home, DATA_DIR);
  const aside = path.join(o.store.home, `${DATA_DIR}.replaced-${stamp}`);
  let manifest: BackupManifest;
  try {
    manifest = await unpackArchive(o.archive, unpacked);
  } catch (err) {
    rmSync(unpacked, { recursive: true, force: true });
    throw err;
  }
  const { customers, events, epoch } = manifest.marks;
  const n = (x: number) => x.toLocaleString('en-US');
  o.log(
    `archive ${manifest.id} verified: taken ${manifest.taken_at}, ${n(customers)} customers, ${n(events)} events, ` +
      `epoch ${epoch}`,
  );
  try {
    await o.accept?.(manifest);
  } catch (err) {
    rmSync(unpacked, { recursive: true, force: true });
    throw err;
  }
  o.log('stopping Neo4j to put the backup in place');
  const down = Date.now();
  await o.store.stop();
  let replaced: string | null = null;
  try {
    if (existsSync(data)) {
      moveAside(data, aside);
      replaced = aside;
    }
    moveAside(path.join(unpacked, DATA_DIR), data);
  } catch (err) {
    // Put back what was there: Neo4j starts on the store it had.
    if (replaced && !existsSync(data)) moveAside(aside, data);
    await o.store.start();
    throw err;
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
  }
  await o.store.start();
  const downtime = Date.now() - down;
  o.log(`Neo4j is up on the restored store (down ${(downtime / 1000).toFixed(1)} s)`);
  if (replaced) o.log(`the store it replaced is kept at ${replaced}: delete it once the restore is judged good`);
  return { manifest, replaced, downtime_ms: downtime };
}

export interface ReconcileOptions {
  manifest: BackupManifest;
  /** A driver opened after the restored store was put in place (see putBackupInPlace). */
  driver: Driver;
  database: string;
  graph: Graph;
  temporal: RestoreTemporal;
  /** Persona's payload codec's decode: reconciliation reads workflows' inputs from their histories. */
  decode: (payloads: Payload[]) => Promise<Payload[]>;
  reportingCurrency: string;
  /** The task queue the gateway reconciliation the restore starts runs on. */
  taskQueue: string;
  log: Log;
  /** Who restores, and why: on the GraphRestored event. */
  requested: RestoreRequest;
  now?: () => Date;
}

/** Who restores the graph, and why (`npm run restore -- <archive> --reason <text>`). */
export interface RestoreRequest {
  by: string;
  reason: string;
}

/** Step 3: schema, epoch, erasures, workflows, and the GraphRestored event. */
export async function reconcileRestored(o: ReconcileOptions): Promise<RestoreReport> {
  const now = o.now ?? (() => new Date());
  const { manifest } = o;
  const schema = await migrate(o.driver, o.database, { reportingCurrency: o.reportingCurrency });
  if (schema.created.length + schema.migrated.length > 0)
    o.log(`schema brought up to date: ${[...schema.created, ...schema.migrated].join(', ')}`);

  const epoch = await startEpoch(o.graph, manifest.id, now());
  o.log(`event log: epoch ${epoch.previous} → ${epoch.epoch}`);
  const erasures = await reapplyErasures(o.graph, o.temporal, manifest, o.log);
  o.log(
    `erasures since the backup: ${erasures.erasures_reapplied.length} applied again, ` +
      `${erasures.erasures_already_applied} in the backup already, ` +
      `${erasures.erasures_absent.length} of customers the backup never had; ` +
      `${erasures.history_keys_destroyed} history key(s) destroyed again`,
  );
  const workflows = await reconcileWorkflows(
    o.graph,
    o.temporal,
    o.decode,
    { epoch: epoch.epoch, backup_id: manifest.id },
    o.log,
    manifest.taken_at,
  );
  const fraud = await fraudOutcomesSince(o.temporal.visibility, manifest);
  if (fraud.length > 0)
    o.log(
      `${fraud.length} fraud outcome(s) reported since the backup: what they applied is not in the restored ` +
        'graph (listed in the report: re-apply them)',
    );
  const reconciliation = await startGatewayReconciliation(o.temporal.client, o.taskQueue, manifest, epoch.epoch, now());
  o.log(`${reconciliation} started: it compares the gateway's charges since the backup once a worker runs`);
  const report: RestoreReport = {
    epoch: epoch.epoch,
    previous_epoch: epoch.previous,
    ...erasures,
    workflows: workflows.workflows,
    recoveries_written_back: workflows.written_back,
    workflows_checked: workflows.checked,
    fraud_outcomes_since_backup: fraud,
    gateway_reconciliation: reconciliation,
  };
  o.log(
    `running workflows: ${workflows.checked} checked, ` +
      `${report.workflows.filter((w) => w.action === 'needs_attention').length} wait for ops, ` +
      `${report.workflows.filter((w) => w.action === 'terminated').length} terminated; ` +
      `${report.recoveries_written_back.length} lost payment recoveries written back into the charge ledger ` +
      '(settled with the gateway before their payments are reported again)',
  );
  await recordRestore(o.graph, manifest, report, o.requested);
  o.log('GraphRestored written to the event log');
  return report;
}
