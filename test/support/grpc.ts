/** A typed gRPC client of persona.v1.PersonaAgent for tests and benchmarks. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { repoRoot } from '../../config/env';
import { LOADER_OPTIONS, PROTO_FILE } from '../../api/grpc/server';
import type { ProtoGrpcType } from '../../proto/generated/persona';
import type { PersonaAgentClient } from '../../proto/generated/persona/v1/PersonaAgent';

/** A client that, like most, reads unset fields as their defaults ('' , 0, []); plaintext unless given credentials. */
export function personaClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): PersonaAgentClient {
  const proto = grpc.loadPackageDefinition(
    protoLoader.loadSync(PROTO_FILE, { ...LOADER_OPTIONS, defaults: true }),
  ) as unknown as ProtoGrpcType;
  return new proto.persona.v1.PersonaAgent(address, credentials);
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
  options: grpc.CallOptions = {},
) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return new Promise<{ res?: any; code: grpc.status; details?: string; field?: string }>((resolve) => {
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const fn = client[method] as unknown as (
      req: object,
      md: grpc.Metadata,
      options: grpc.CallOptions,
      cb: Callback,
    ) => void;
    fn.call(client, req, metadata, options, (err, res) => {
      if (err)
        resolve({ code: err.code, details: err.details, field: err.metadata?.get('persona-field')[0]?.toString() });
      else resolve({ res, code: grpc.status.OK });
    });
  });
}

const HEALTH_PROTO = path.join(repoRoot, 'proto', 'grpc', 'health', 'v1', 'health.proto');

interface HealthClient extends grpc.Client {
  Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res: { status: string }) => void): void;
}

/** A client of the standard gRPC health service. */
export function healthClient(address: string): HealthClient {
  const loaded = grpc.loadPackageDefinition(
    protoLoader.loadSync(HEALTH_PROTO, { keepCase: true, enums: String }),
  ) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  return new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
}

/** The status the health service reports for `service` ('' is the whole server): SERVING, NOT_SERVING, … */
export function healthStatus(client: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.Check({ service }, (err, res) => (err ? reject(err) : resolve(res.status))),
  );
}
