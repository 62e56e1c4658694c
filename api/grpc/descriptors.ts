/**
 * What server reflection tells clients about the service: the file descriptors proto-loader made.
 * protobufjs writes a `reserved 5;` as the descriptor range 5..5, but a descriptor's range end is
 * exclusive (5..6): a client that checks its descriptors (ghz, grpcurl's newer parsers) refuses
 * the whole file ("reserved ranges has invalid range: 5 to 4"). The ranges are written again with
 * their ends exclusive before reflection serves them.
 */
import type { PackageDefinition } from '@grpc/proto-loader';
import { createRequire } from 'node:module';

interface ReservedRange {
  start?: number;
  end?: number;
}
interface MessageDescriptor {
  reservedRange?: ReservedRange[];
  nestedType?: MessageDescriptor[];
}
interface FileDescriptor {
  messageType?: MessageDescriptor[];
}
interface Codec<T> {
  decode(bytes: Uint8Array): T;
  encode(message: T): { finish(): Uint8Array };
}

const require = createRequire(import.meta.url);
const { FileDescriptorProto } = require('protobufjs/ext/descriptor') as { FileDescriptorProto: Codec<FileDescriptor> };

function fixMessage(m: MessageDescriptor): void {
  for (const r of m.reservedRange ?? []) if (r.start !== undefined && r.end === r.start) r.end = r.start + 1;
  for (const nested of m.nestedType ?? []) fixMessage(nested);
}

/** One file descriptor with every single-number reserved range's end made exclusive. */
export function withExclusiveReservedEnds(bytes: Uint8Array): Buffer {
  const file = FileDescriptorProto.decode(bytes);
  for (const m of file.messageType ?? []) fixMessage(m);
  return Buffer.from(FileDescriptorProto.encode(file).finish());
}

/** The package definition with its file descriptors fixed (each distinct buffer once). */
export function reflectedDefinition(definition: PackageDefinition): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>();
  const fix = (b: Buffer): Buffer => {
    let done = fixed.get(b);
    if (!done) fixed.set(b, (done = withExclusiveReservedEnds(b)));
    return done;
  };
  const out: PackageDefinition = {};
  for (const [name, entry] of Object.entries(definition)) {
    const files = (entry as { fileDescriptorProtos?: unknown }).fileDescriptorProtos;
    out[name] = Array.isArray(files)
      ? ({ ...entry, fileDescriptorProtos: (files as Buffer[]).map(fix) } as typeof entry)
      : entry;
  }
  return out;
}
