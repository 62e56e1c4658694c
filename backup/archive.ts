/**
 * Backup archives of the identity graph: one `persona-backup-<time>.tar.gz` per backup, beside
 * it a `.sha256` of the whole archive (sha256sum's format), and inside it `manifest.json` (what
 * was backed up, when, from which epoch, with the high-water marks and the relay checkpoints, and
 * the sha256 of every store file) and `data/` (Neo4j's databases and transaction logs, copied
 * while Neo4j was stopped).
 *
 * Why a copy of the stopped store: Neo4j Community has no online backup; `neo4j-admin database
 * dump` also needs the database stopped and writes the same store files in its own container.
 * A clean shutdown checkpoints the store, so the files are consistent as they lie. Neo4j is down
 * only while they are copied to a staging folder beside the archives (a local copy), not while
 * they are compressed and hashed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';

export const MANIFEST_FILE = 'manifest.json';
/** The folder of the archive that holds Neo4j's `data/` folder (databases, transactions). */
export const DATA_DIR = 'data';
export const ARCHIVE_PREFIX = 'persona-backup-';
export const ARCHIVE_SUFFIX = '.tar.gz';
/** The manifest's format; a restore refuses one it does not know. */
export const MANIFEST_FORMAT = 1;

/** Where the feed's readers were when the backup was taken: the relay's and the Kafka publisher's checkpoints. */
export interface CheckpointMark {
  id: string;
  cursor: string | null;
  delivered: number;
}

export interface GraphMarks {
  customers: number;
  events: number;
  /** The newest event in the log (the feed's order): the global high-water mark. */
  last_event: { id: string; occurred_at: string } | null;
  /** The event log's epoch (0 before any restore). */
  epoch: number;
  checkpoints: CheckpointMark[];
  /** The schema rules present and the data migrations applied: the graph's schema version. */
  schema: { rules: string[]; migrations: string[] };
}

export interface BackupManifest {
  format: number;
  /** The archive's name without its suffix: `persona-backup-<time>`. */
  id: string;
  /** When Neo4j was stopped for the copy: everything committed before is in the archive. */
  taken_at: string;
  neo4j_database: string;
  /** Read from the graph right before the stop (a writer still running may add after them). */
  marks: GraphMarks;
  /** How long Neo4j was down for the copy. */
  downtime_ms: number;
  /** Every file under data/, its size and sha256. */
  files: { path: string; bytes: number; sha256: string }[];
}

export function archiveName(takenAt: Date): string {
  return `${ARCHIVE_PREFIX}${takenAt.toISOString().replace(/[:.]/g, '-')}`;
}

export function archivePath(dir: string, id: string): string {
  return path.join(dir, `${id}${ARCHIVE_SUFFIX}`);
}

export function checksumPath(archive: string): string {
  return `${archive}.sha256`;
}

/**
 * Every file below `root`, as paths relative to it, sorted. Anything but a regular file or a
 * folder (a symbolic link, a device, a pipe) is refused: a store holds none, and a link in an
 * archive would let Neo4j read or write outside its store once the archive is put in place.
 */
export function filesUnder(root: string, rel = ''): string[] {
  return readdirSync(path.join(root, rel), { withFileTypes: true })
    .flatMap((entry) => {
      const child = rel ? path.posix.join(rel, entry.name) : entry.name;
      if (entry.isDirectory()) return filesUnder(root, child);
      if (entry.isFile()) return [child];
      throw new Error(`${child} is neither a file nor a folder (a link, a device or a pipe): refused`);
    })
    .sort();
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** The sha256 and size of every file below `root`. */
export async function hashTree(root: string): Promise<BackupManifest['files']> {
  const out: BackupManifest['files'] = [];
  for (const rel of filesUnder(root)) {
    const file = path.join(root, rel);
    out.push({ path: rel, bytes: statSync(file).size, sha256: await sha256File(file) });
  }
  return out;
}

/**
 * Packs `staging` (its manifest and data/) into `<dir>/<id>.tar.gz` and its `.sha256`; refuses
 * to overwrite an archive of the same name. Written under a temporary name first, so a backup
 * cut short never leaves something that looks like an archive.
 */
export async function packArchive(staging: string, dir: string, id: string): Promise<{ file: string; bytes: number }> {
  const file = archivePath(dir, id);
  if (existsSync(file)) throw new Error(`${file} exists already: a backup never overwrites one`);
  const partial = `${file}.partial`;
  const hash = createHash('sha256');
  const tar = spawn('tar', ['-C', staging, '-cf', '-', MANIFEST_FILE, DATA_DIR], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => tar.on('close', (code) => resolve(code ?? 1)));
  // Level 1: a store is mostly pages of records; a higher level costs minutes for a few percent.
  await pipeline(
    tar.stdout,
    createGzip({ level: 1 }),
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    // Only this user reads an archive: it holds every customer's personal data.
    createWriteStream(partial, { flags: 'wx', mode: 0o600 }),
  );
  const code = await exited;
  if (code !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`tar failed (exit ${code}): ${stderr.trim()}`);
  }
  const digest = hash.digest('hex');
  // link: fails if the name was taken meanwhile (never overwrites), unlike rename.
  linkSync(partial, file);
  unlinkSync(partial);
  writeFileSync(checksumPath(file), `${digest}  ${path.basename(file)}\n`, { flag: 'wx', mode: 0o600 });
  return { file, bytes: statSync(file).size };
}

/** Verifies the archive against its `.sha256`; throws naming what is wrong. */
export async function verifyArchiveChecksum(file: string): Promise<string> {
  if (!existsSync(file)) throw new Error(`${file}: no such archive`);
  const sums = checksumPath(file);
  if (!existsSync(sums)) throw new Error(`${sums} is missing: an archive is restored only with its checksum`);
  const expected = readFileSync(sums, 'utf8').trim().split(/\s+/)[0] ?? '';
  const actual = await sha256File(file);
  if (actual !== expected)
    throw new Error(`${file} does not match its checksum (${expected.slice(0, 12)}…, read ${actual.slice(0, 12)}…)`);
  return actual;
}

/** Unpacks an archive into `into` (created) and checks every store file against the manifest. */
export async function unpackArchive(file: string, into: string): Promise<BackupManifest> {
  mkdirSync(into, { recursive: true, mode: 0o700 });
  await new Promise<void>((resolve, reject) => {
    // Owners and modes are this process's, never the archive's (no setuid file comes out of one).
    const args = ['-C', into, '--no-same-owner', '--no-same-permissions', '-xzf', file];
    const tar = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    tar.on('error', reject);
    tar.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`tar could not unpack ${file}: ${stderr.trim()}`)),
    );
  });
  const top = readdirSync(into).filter((f) => f !== MANIFEST_FILE && f !== DATA_DIR);
  if (top.length > 0) throw new Error(`${file}: holds more than ${MANIFEST_FILE} and ${DATA_DIR}/: ${top.join(', ')}`);
  const manifest = JSON.parse(readFileSync(path.join(into, MANIFEST_FILE), 'utf8')) as BackupManifest;
  if (!Number.isFinite(Date.parse(manifest.taken_at)))
    throw new Error(`${file}: the manifest's taken_at is not a time: ${String(manifest.taken_at)}`);
  if (manifest.format !== MANIFEST_FORMAT)
    throw new Error(`${file}: manifest format ${manifest.format}; this version restores format ${MANIFEST_FORMAT}`);
  const data = path.join(into, DATA_DIR);
  const found = await hashTree(data);
  const byPath = new Map(found.map((f) => [f.path, f]));
  for (const f of manifest.files) {
    const got = byPath.get(f.path);
    if (!got) throw new Error(`${file}: ${f.path} is in the manifest but not in the archive`);
    if (got.sha256 !== f.sha256) throw new Error(`${file}: ${f.path} does not match the manifest's sha256`);
    byPath.delete(f.path);
  }
  if (byPath.size > 0) throw new Error(`${file}: files not in the manifest: ${[...byPath.keys()].join(', ')}`);
  return manifest;
}

/** The archives in `dir`, oldest first. */
export function listArchives(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(ARCHIVE_PREFIX) && f.endsWith(ARCHIVE_SUFFIX))
    .sort()
    .map((f) => path.join(dir, f));
}

/** When an archive was taken, by its name (`persona-backup-<ISO time, : and . as ->`); NaN if not one. */
export function takenAtOfName(file: string): number {
  const stamp = path.basename(file).slice(ARCHIVE_PREFIX.length, -ARCHIVE_SUFFIX.length);
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z$/.exec(stamp);
  return m ? Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z`) : NaN;
}

/**
 * Deletes all but the newest `keep` archives, and every archive older than `maxAgeMs`: an archive
 * holds the history keys of customers erased after it was taken, so it must not outlive the erasure
 * deadline (docs/runbook.md). Its age is the older of its name's time and its file's: a copy (a
 * fresh file time) does not make an old archive young. With their checksums; returns what it deleted.
 */
export function applyRetention(dir: string, keep: number, maxAgeMs = Infinity, now = Date.now()): string[] {
  const archives = listArchives(dir);
  const beyondCount = new Set(archives.slice(0, Math.max(0, archives.length - keep)));
  const takenAt = (f: string) => Math.min(statSync(f).mtimeMs, takenAtOfName(f) || Infinity);
  const old = archives.filter((f) => beyondCount.has(f) || now - takenAt(f) > maxAgeMs);
  for (const file of old) {
    rmSync(file, { force: true });
    rmSync(checksumPath(file), { force: true });
  }
  return old;
}

/** Moves `from` to `to` (same file system), refusing to replace anything at `to`. */
export function moveAside(from: string, to: string): void {
  if (existsSync(to)) throw new Error(`${to} exists already`);
  renameSync(from, to);
}
