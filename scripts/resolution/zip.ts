/**
 * A minimal ZIP reader (node:zlib only), enough to take one file out of a Python wheel: it finds
 * the end-of-central-directory record (searching back over a trailing comment), walks the central
 * directory for the entry by its exact name, then reads the entry's local header for where its
 * data starts. Sizes come from the central directory, so entries written with a data descriptor
 * read as well. Rules: stored (0) and deflate (8) only; no ZIP64, no encryption, no multi-disk
 * archives; every refusal is an Error that names the entry (or says what is wrong with the archive).
 * The CRC-32 is checked when this Node has zlib.crc32.
 */
import zlib from 'node:zlib';

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIZE = 30;
const MAX_COMMENT = 0xffff;

/** One entry as the central directory describes it. */
interface CentralEntry {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** The offset of the end-of-central-directory record, searching back from the end over a comment. */
function findEndOfCentralDirectory(zip: Buffer): number {
  const lowest = Math.max(0, zip.length - EOCD_SIZE - MAX_COMMENT);
  for (let at = zip.length - EOCD_SIZE; at >= lowest; at--) {
    if (zip.readUInt32LE(at) === EOCD_SIGNATURE && at + EOCD_SIZE + zip.readUInt16LE(at + 20) <= zip.length) {
      return at;
    }
  }
  throw new Error('not a ZIP archive: no end-of-central-directory record');
}

/** The central directory's entries, in order. */
function centralEntries(zip: Buffer): CentralEntry[] {
  const eocd = findEndOfCentralDirectory(zip);
  if (zip.readUInt16LE(eocd + 4) !== 0 || zip.readUInt16LE(eocd + 6) !== 0) {
    throw new Error('unsupported ZIP archive: split across disks');
  }
  const count = zip.readUInt16LE(eocd + 10);
  const size = zip.readUInt32LE(eocd + 12);
  const start = zip.readUInt32LE(eocd + 16);
  if (count === 0xffff || size === 0xffffffff || start === 0xffffffff) {
    throw new Error('unsupported ZIP archive: ZIP64');
  }
  if (start + size > eocd) throw new Error('corrupt ZIP archive: central directory runs past its end');
  const entries: CentralEntry[] = [];
  let at = start;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_HEADER_SIZE > eocd || zip.readUInt32LE(at) !== CENTRAL_SIGNATURE) {
      throw new Error(`corrupt ZIP archive: central directory entry ${i} is not where the directory says`);
    }
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    entries.push({
      name: zip.toString('utf8', at + CENTRAL_HEADER_SIZE, at + CENTRAL_HEADER_SIZE + nameLength),
      flags: zip.readUInt16LE(at + 8),
      method: zip.readUInt16LE(at + 10),
      crc: zip.readUInt32LE(at + 16),
      compressedSize: zip.readUInt32LE(at + 20),
      size: zip.readUInt32LE(at + 24),
      localOffset: zip.readUInt32LE(at + 42),
    });
    at += CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The entry's data as stored (still compressed), located through its local header. */
function storedData(zip: Buffer, entry: CentralEntry): Buffer {
  const at = entry.localOffset;
  if (at + LOCAL_HEADER_SIZE > zip.length || zip.readUInt32LE(at) !== LOCAL_SIGNATURE) {
    throw new Error(`corrupt ZIP entry ${entry.name}: no local header at offset ${at}`);
  }
  const start = at + LOCAL_HEADER_SIZE + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  const end = start + entry.compressedSize;
  if (end > zip.length) throw new Error(`corrupt ZIP entry ${entry.name}: its data runs past the archive's end`);
  return zip.subarray(start, end);
}

/**
 * The uncompressed bytes of the entry named `name` (its exact path in the archive, `/`-separated).
 * Throws an Error naming the entry when the archive has no such entry, when its method is neither
 * stored nor deflate, when it is encrypted, or when its size or CRC-32 do not match its header.
 */
export function readZipEntry(zip: Buffer, name: string): Buffer {
  const entry = centralEntries(zip).find((e) => e.name === name);
  if (!entry) throw new Error(`ZIP entry ${name} not found in the archive`);
  if (entry.flags & 0x1) throw new Error(`ZIP entry ${name} is encrypted: not supported`);
  if (entry.size === 0xffffffff || entry.compressedSize === 0xffffffff) {
    throw new Error(`ZIP entry ${name} needs ZIP64: not supported`);
  }
  const data = storedData(zip, entry);
  let bytes: Buffer;
  if (entry.method === 0) bytes = Buffer.from(data);
  else if (entry.method === 8) bytes = zlib.inflateRawSync(data);
  else throw new Error(`ZIP entry ${name} uses compression method ${entry.method}: only stored (0) and deflate (8)`);
  if (bytes.length !== entry.size) {
    throw new Error(`ZIP entry ${name} is corrupt: ${bytes.length} bytes, the directory says ${entry.size}`);
  }
  if (typeof zlib.crc32 === 'function' && zlib.crc32(bytes) >>> 0 !== entry.crc) {
    throw new Error(`ZIP entry ${name} is corrupt: CRC-32 mismatch`);
  }
  return bytes;
}
