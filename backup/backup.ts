/**
 * `npm run backup`: a consistent, checksummed archive of the identity graph (backup/archive.ts)
 * with the marks a restore needs to know where the world was: the event log's high-water mark and
 * epoch, the relay's and the Kafka publisher's checkpoints, the schema.
 *
 * Neo4j is stopped for the copy (Community has no online backup) and started again at once; the
 * backup says how long it was down. Production uses Enterprise online backup or Aura snapshots
 * (docs/deployment.md), whose archives the same restore takes once unpacked into a store folder.
 */
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import neo4j, { type Driver } from 'neo4j-driver';
import { toPlain } from '../graph/convert';
import { EVENT_LOG_ID } from '../graph/events';
import {
  applyRetention,
  archiveName,
  archivePath,
  DATA_DIR,
  hashTree,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  packArchive,
  type BackupManifest,
  type GraphMarks,
} from './archive';

/** The Neo4j whose store is backed up or replaced: its home folder, and how to stop and start it. */
export interface Neo4jStore {
  /** Neo4j's home: `data/` holds its databases and transaction logs. */
  home: string;
  /** Stops Neo4j cleanly (a checkpoint): the store files are then consistent. */
  stop(): Promise<void>;
  /** Starts it and resolves once it answers. */
  start(): Promise<void>;
}

export type Log = (line: string) => void;

const MARKS = {
  counts: `
    CALL () { MATCH (c:Customer) RETURN count(c) AS customers }
    CALL () { MATCH (e:Event) RETURN count(e) AS events }
    OPTIONAL MATCH (log:EventLog {id: $logId})
    RETURN customers, events, coalesce(log.epoch, 0) AS epoch`,
  last: `
    MATCH (e:Event) WHERE e.occurred_at IS NOT NULL
    RETURN e.id AS id, toString(e.occurred_at) AS at ORDER BY e.occurred_at DESC, e.seq DESC, e.id DESC LIMIT 1`,
  checkpoints: `
    MATCH (r:RelayCheckpoint) RETURN r.id AS id, r.cursor AS cursor, coalesce(r.delivered, 0) AS delivered ORDER BY id`,
  migrations: 'MATCH (m:Migration) RETURN m.name AS name ORDER BY name',
  constraints: 'SHOW CONSTRAINTS YIELD name RETURN name ORDER BY name',
  indexes: "SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name ORDER BY name",
} as const;

/** Where the graph is: counts, the newest event, the epoch, the checkpoints and the schema. */
export async function readMarks(driver: Driver, database: string): Promise<GraphMarks> {
  const q = async (cypher: string, params: Record<string, unknown> = {}) =>
    (await driver.executeQuery(cypher, params, { database, routing: neo4j.routing.READ })).records;
  const [counts] = await q(MARKS.counts, { logId: EVENT_LOG_ID });
  const [last] = await q(MARKS.last);
  return {
    customers: Number(toPlain(counts?.get('customers')) ?? 0),
    events: Number(toPlain(counts?.get('events')) ?? 0),
    last_event: last ? { id: last.get('id') as string, occurred_at: last.get('at') as string } : null,
    epoch: Number(toPlain(counts?.get('epoch')) ?? 0),
    checkpoints: (await q(MARKS.checkpoints)).map((r) => ({
      id: r.get('id') as string,
      cursor: (r.get('cursor') as string | null) ?? null,
      delivered: Number(toPlain(r.get('delivered'))),
    })),
    schema: {
      rules: [...(await q(MARKS.constraints)), ...(await q(MARKS.indexes))].map((r) => r.get('name') as string).sort(),
      migrations: (await q(MARKS.migrations)).map((r) => r.get('name') as string),
    },
  };
}

export interface BackupOptions {
  store: Neo4jStore;
  driver: Driver;
  database: string;
  /** The folder archives go to (PERSONA_BACKUP_DIR). */
  dir: string;
  /** How many archives to keep (PERSONA_BACKUP_KEEP); older ones are deleted after a backup. */
  keep: number;
  /** The oldest an archive may be (PERSONA_BACKUP_MAX_AGE_DAYS, in ms); older ones are deleted after a backup. */
  maxAgeMs?: number;
  log: Log;
  now?: () => Date;
}

export interface BackupResult {
  file: string;
  bytes: number;
  manifest: BackupManifest;
  /** Milliseconds: the whole backup, and Neo4j's part of it down. */
  took_ms: number;
  deleted: string[];
}

export async function backupGraph(o: BackupOptions): Promise<BackupResult> {
  const started = Date.now();
  const now = o.now ?? (() => new Date());
  const data = path.join(o.store.home, DATA_DIR);
  if (!existsSync(data)) throw new Error(`${data} does not exist: no Neo4j store to back up there`);
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const marks = await readMarks(o.driver, o.database);
  o.log(
    `graph: ${marks.customers.toLocaleString('en-US')} customers, ${marks.events.toLocaleString('en-US')} events, ` +
      `epoch ${marks.epoch}, ${marks.checkpoints.length} relay checkpoint(s)`,
  );
  const takenAt = now();
  const id = archiveName(takenAt);
  if (existsSync(archivePath(o.dir, id)))
    throw new Error(`${archivePath(o.dir, id)} exists already: a backup never overwrites one`);
  const staging = path.join(o.dir, `.staging-${id}`);
  if (existsSync(staging)) throw new Error(`${staging} exists: another backup of the same instant is under way`);
  mkdirSync(staging, { mode: 0o700 });
  try {
    o.log('stopping Neo4j for the copy');
    const down = Date.now();
    await o.store.stop();
    let downtime: number;
    try {
      cpSync(data, path.join(staging, DATA_DIR), { recursive: true, preserveTimestamps: true });
    } finally {
      await o.store.start();
      downtime = Date.now() - down;
    }
    o.log(`Neo4j is back: it was down ${(downtime / 1000).toFixed(1)} s`);
    const files = await hashTree(path.join(staging, DATA_DIR));
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      id,
      taken_at: takenAt.toISOString(),
      neo4j_database: o.database,
      marks,
      downtime_ms: downtime,
      files,
    };
    writeFileSync(path.join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    const packed = await packArchive(staging, o.dir, id);
    const deleted = applyRetention(o.dir, o.keep, o.maxAgeMs);
    return { ...packed, manifest, took_ms: Date.now() - started, deleted };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
