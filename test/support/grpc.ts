/** A typed gRPC client of persona.v1.PersonaAgent for tests and benchmarks. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_FILE } from '../../api/grpc/server';
import type { ProtoGrpcType } from '../../proto/generated/persona';
import type { PersonaAgentClient } from '../../proto/generated/persona/v1/PersonaAgent';

/** A client that, like most, reads unset fields as their defaults ('' , 0, []). */
export function personaClient(address: string): PersonaAgentClient {
  const proto = grpc.loadPackageDefinition(
    protoLoader.loadSync(PROTO_FILE, { ...LOADER_OPTIONS, defaults: true }),
  ) as unknown as ProtoGrpcType;
  return new proto.persona.v1.PersonaAgent(address, grpc.credentials.createInsecure());
}

export function bearer(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;

/**
 * Calls a unary method and resolves with the response, or with the error's code and details.
 * (The generated methods are overloaded, which defeats inference: responses come back loosely typed.)
 */
export function call(
  client: PersonaAgentClient,
  method: Extract<keyof PersonaAgentClient, string>,
  req: object,
  metadata: grpc.Metadata,
) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return new Promise<{ res?: any; code: grpc.status; details?: string; field?: string }>((resolve) => {
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const fn = client[method] as unknown as (req: object, md: grpc.Metadata, cb: Callback) => void;
    fn.call(client, req, metadata, (err, res) => {
      if (err)
        resolve({ code: err.code, details: err.details, field: err.metadata?.get('persona-field')[0]?.toString() });
      else resolve({ res, code: grpc.status.OK });
    });
  });
}
