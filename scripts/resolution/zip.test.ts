/**
 * The ZIP reader against an archive built here by hand (local headers, central directory, end
 * record): one stored and one deflated entry read back byte for byte; refusals name the entry.
 */
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readZipEntry } from './zip';

/** CRC-32 (IEEE), zlib's when this Node has it, else a small table-free one. */
function crc32(bytes: Buffer): number {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(bytes) >>> 0;
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

interface Member {
  name: string;
  data: Buffer;
  method: number;
}

/** A ZIP archive of the members, with a leading junk prefix and a trailing comment to search past. */
function buildZip(members: Member[], comment = 'built by hand'): Buffer {
  const parts: Buffer[] = [Buffer.from('prefix bytes before the first local header')];
  const central: Buffer[] = [];
  let offset = parts[0]!.length;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const body = m.method === 8 ? zlib.deflateRawSync(m.data) : m.data;
    const crc = crc32(m.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(m.method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(m.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(20, 4); // version made by
    header.writeUInt16LE(20, 6); // version needed
    header.writeUInt16LE(m.method, 10);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(body.length, 20);
    header.writeUInt32LE(m.data.length, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt32LE(offset, 42);
    central.push(header, name);
    parts.push(local, name, body);
    offset += local.length + name.length + body.length;
  }
  const directory = Buffer.concat(central);
  const commentBytes = Buffer.from(comment, 'utf8');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(commentBytes.length, 20);
  return Buffer.concat([...parts, directory, end, commentBytes]);
}

const stored = Buffer.from('rec_id, given_name\nrec-1-org, ada\n', 'utf8');
const deflated = Buffer.from('the same line again and again\n'.repeat(200), 'utf8');

describe('readZipEntry', () => {
  const zip = buildZip([
    { name: 'pkg/stored.csv', data: stored, method: 0 },
    { name: 'pkg/deep/deflated.txt', data: deflated, method: 8 },
  ]);

  it('reads a stored and a deflated entry back byte for byte', () => {
    expect(readZipEntry(zip, 'pkg/stored.csv').equals(stored)).toBe(true);
    const out = readZipEntry(zip, 'pkg/deep/deflated.txt');
    expect(out.equals(deflated)).toBe(true);
    expect(zip.length).toBeLessThan(deflated.length); // it really was compressed
  });

  it('refuses an absent entry, naming it', () => {
    expect(() => readZipEntry(zip, 'pkg/missing.csv')).toThrow(/pkg\/missing\.csv.*not found/);
  });

  it('refuses an unsupported method, naming the entry and the method', () => {
    const bzip = buildZip([{ name: 'pkg/b.bz2', data: stored, method: 12 }]);
    expect(() => readZipEntry(bzip, 'pkg/b.bz2')).toThrow(/pkg\/b\.bz2.*method 12/);
  });

  it('refuses what is not a ZIP archive', () => {
    expect(() => readZipEntry(Buffer.from('not a zip at all, not even close'), 'x')).toThrow(/not a ZIP archive/);
  });

  it('refuses a corrupted entry (its CRC-32 or size no longer match)', () => {
    const broken = Buffer.from(zip);
    const at = broken.indexOf(stored);
    broken[at] = (broken[at] as number) ^ 0xff;
    if (typeof zlib.crc32 === 'function') expect(() => readZipEntry(broken, 'pkg/stored.csv')).toThrow(/CRC-32/);
  });
});
