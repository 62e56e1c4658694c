import { createRequire } from 'node:module';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { reflectedDefinition } from './descriptors';
import { LOADER_OPTIONS, PROTO_FILE } from './server';

interface Message {
  name?: string;
  reservedRange?: { start?: number; end?: number }[];
}
const require = createRequire(import.meta.url);
const { FileDescriptorProto } = require('protobufjs/ext/descriptor') as {
  FileDescriptorProto: { decode(b: Uint8Array): { name?: string; messageType?: Message[] } };
};

/** CustomerContext's reserved ranges, as the definition's file descriptor for persona.proto has them. */
function reserved(definition: protoLoader.PackageDefinition) {
  const entry = definition['persona.v1.CustomerContext'] as { fileDescriptorProtos: Buffer[] };
  for (const bytes of entry.fileDescriptorProtos) {
    const file = FileDescriptorProto.decode(bytes);
    const message = file.messageType?.find((m) => m.name === 'CustomerContext');
    if (message) return message.reservedRange?.map((r) => [r.start, r.end]);
  }
  throw new Error('CustomerContext is in no file descriptor');
}

describe('the descriptors reflection serves', () => {
  it('end a single reserved number’s range after it (protobufjs writes 5..5, which clients refuse)', () => {
    const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
    // `reserved 5;` in persona.proto: protobufjs's range ends where it starts (its own bug).
    expect(reserved(definition)).toEqual([[5, 5]]);
    expect(reserved(reflectedDefinition(definition))).toEqual([[5, 6]]);
  });
});
