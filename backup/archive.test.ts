/**
 * The archive on its own (no Neo4j): what packs unpacks and verifies; a corrupted archive, a file
 * changed inside it, a link or an extra entry are refused before anything could be put in place;
 * an archive is never overwritten and only its owner can read it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ARCHIVE_SUFFIX,
  DATA_DIR,
  MANIFEST_FILE,
  applyRetention,
  archiveName,
  takenAtOfName,
  listArchives,
  MANIFEST_FORMAT,
  hashTree,
  packArchive,
  unpackArchive,
  verifyArchiveChecksum,
  type BackupManifest,
} from './archive';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'persona-archive-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A staging folder as a backup leaves it: data/ with a store file, and its manifest. */
async function staging(id: string, extra?: (root: string) => void): Promise<string> {
  const root = tmp();
  mkdirSync(path.join(root, DATA_DIR, 'databases', 'neo4j'), { recursive: true });
  writeFileSync(path.join(root, DATA_DIR, 'databases', 'neo4j', 'neostore'), 'records'.repeat(100));
  extra?.(root);
  const manifest = {
    format: MANIFEST_FORMAT,
    id,
    taken_at: '2026-11-25T06:00:00.000Z',
    neo4j_database: 'neo4j',
    marks: { customers: 1, events: 1, epoch: 0 },
    downtime_ms: 1,
    files: await hashTree(path.join(root, DATA_DIR)),
  } as unknown as BackupManifest;
  writeFileSync(path.join(root, MANIFEST_FILE), JSON.stringify(manifest));
  return root;
}

/** A tarball made by hand (what an attacker could hand a restore), with a checksum that matches it. */
function handMade(root: string, file: string): string {
  execFileSync('tar', ['-C', root, '-czf', file, '.']);
  const sum = execFileSync('sha256sum', [file]).toString().split(/\s+/)[0];
  writeFileSync(`${file}.sha256`, `${sum}  ${path.basename(file)}\n`);
  return file;
}

describe('a backup archive', () => {
  it('packs, verifies and unpacks, never overwrites, and is readable by its owner only', async () => {
    const dir = tmp();
    const { file } = await packArchive(await staging('persona-backup-a'), dir, 'persona-backup-a');
    expect(statSync(file).mode & 0o077).toBe(0);
    await verifyArchiveChecksum(file);
    const manifest = await unpackArchive(file, path.join(tmp(), 'out'));
    expect(manifest.files.map((f) => f.path)).toEqual(['databases/neo4j/neostore']);
    await expect(packArchive(await staging('persona-backup-a'), dir, 'persona-backup-a')).rejects.toThrow(
      /exists already/,
    );
  });

  it('refuses a corrupted archive, a file changed inside it, a link, or an entry beside the store', async () => {
    const dir = tmp();
    const { file } = await packArchive(await staging('persona-backup-b'), dir, 'persona-backup-b');
    writeFileSync(file, 'not an archive');
    await expect(verifyArchiveChecksum(file)).rejects.toThrow(/does not match its checksum/);

    const changed = await staging('persona-backup-c');
    writeFileSync(path.join(changed, DATA_DIR, 'databases', 'neo4j', 'neostore'), 'other records');
    await expect(unpackArchive(handMade(changed, path.join(dir, 'c.tar.gz')), tmp())).rejects.toThrow(
      /does not match the manifest's sha256/,
    );

    const linked = await staging('persona-backup-d');
    symlinkSync('/etc', path.join(linked, DATA_DIR, 'databases', 'elsewhere'));
    await expect(unpackArchive(handMade(linked, path.join(dir, 'd.tar.gz')), tmp())).rejects.toThrow(
      /databases\/elsewhere is neither a file nor a folder/,
    );

    const beside = await staging('persona-backup-e', (root) => writeFileSync(path.join(root, 'run.sh'), 'echo'));
    await expect(unpackArchive(handMade(beside, path.join(dir, 'e.tar.gz')), tmp())).rejects.toThrow(
      /holds more than manifest.json and data\/: run.sh/,
    );
  });
});

describe('archive retention', () => {
  it('keeps the newest `keep`, and none older than the erasure deadline, with their checksums', () => {
    const dir = tmp();
    const day = 86_400_000;
    const now = Date.now();
    const made = [40, 25, 6, 1].map((age) => {
      const at = new Date(now - age * day);
      const file = path.join(dir, `${archiveName(at)}${ARCHIVE_SUFFIX}`);
      writeFileSync(file, 'archive');
      writeFileSync(`${file}.sha256`, 'sum');
      utimesSync(file, at.getTime() / 1000, at.getTime() / 1000);
      return file;
    });
    expect(applyRetention(dir, 3, 30 * day, now)).toEqual([made[0]]);
    expect(applyRetention(dir, 3, 20 * day, now)).toEqual([made[1]]);
    expect(applyRetention(dir, 1, 20 * day, now)).toEqual([made[2]]);
    expect(listArchives(dir)).toEqual([made[3]]);
    expect(statSync(`${made[3] as string}.sha256`).isFile()).toBe(true);
    expect(() => statSync(`${made[0] as string}.sha256`)).toThrow();
  });

  it('ages an archive by the older of its name and its file: a copy does not make it young', () => {
    const dir = tmp();
    const day = 86_400_000;
    const now = Date.now();
    const copied = path.join(dir, `${archiveName(new Date(now - 40 * day))}${ARCHIVE_SUFFIX}`);
    writeFileSync(copied, 'archive'); // the file's time is now
    expect(takenAtOfName(copied)).toBe(now - 40 * day);
    expect(applyRetention(dir, 5, 30 * day, now)).toEqual([copied]);
  });
});
