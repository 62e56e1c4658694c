/**
 * gRPC: service persona.v1.PersonaAgent (proto/persona/v1/persona.proto), plus the standard
 * health service and server reflection, so grpcurl works with no proto file at hand. Handlers
 * are as thin as the REST ones and call the same services (api/grpc/contextMethods.ts,
 * api/grpc/reportMethods.ts, each method run by api/grpc/unary.ts); the same JWT travels in the
 * `authorization` metadata, with the same scopes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { reflectedDefinition } from './descriptors';
import { HealthImplementation } from 'grpc-health-check';
import { ConfigError, repoRoot, type Config } from '../../config/env';
import type { ProtoGrpcType } from '../../proto/generated/persona';
import type { PersonaAgentHandlers } from '../../proto/generated/persona/v1/PersonaAgent';
import type { ApiDeps } from '../deps';
import { requestBudgetMs } from '../deadlines';
import { observeUnary } from '../observability';
import { contextMethods } from './contextMethods';
import { reportMethods } from './reportMethods';

export const PROTO_FILE = path.join(repoRoot, 'proto', 'persona', 'v1', 'persona.proto');
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};
export const SERVICE_NAME = 'persona.v1.PersonaAgent';
const HEALTH_PROTO_FILE = path.join(repoRoot, 'proto', 'grpc', 'health', 'v1', 'health.proto');

export function loadPersonaProto(): { definition: protoLoader.PackageDefinition; proto: ProtoGrpcType } {
  const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
  return { definition, proto: grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType };
}

export interface GrpcServerOptions {
  /** Server reflection (grpcurl without a proto file); default on. */
  reflection?: boolean;
  /** Ping an idle connection this often (and wait as long for the answer); default 60 s. */
  keepaliveMs?: number;
  /** Close a connection gracefully after this long, so clients rebalance; default 30 min. */
  maxConnectionAgeMs?: number;
}

/** The server options from the configuration (reflection off in production unless asked for). */
export function grpcServerOptions(config: Config): GrpcServerOptions {
  return {
    reflection: (config.PERSONA_GRPC_REFLECTION ?? (config.NODE_ENV === 'production' ? 'off' : 'on')) === 'on',
    keepaliveMs: config.PERSONA_GRPC_KEEPALIVE_MS,
    maxConnectionAgeMs: config.PERSONA_GRPC_MAX_CONNECTION_AGE_MS,
  };
}

export function createGrpcServer(
  deps: ApiDeps,
  options: GrpcServerOptions = {},
): { server: grpc.Server; health: HealthImplementation } {
  const { reflection = true, keepaliveMs = 60_000, maxConnectionAgeMs = 30 * 60_000 } = options;
  const { definition, proto } = loadPersonaProto();
  const handlers: PersonaAgentHandlers = { ...contextMethods(deps), ...reportMethods(deps) };
  const { service, limited } = sizeLimited(deps, proto.persona.v1.PersonaAgent.service);
  // Every method: a request id in and out, one log line, the latency histogram.
  const observed = Object.fromEntries(
    Object.entries(handlers).map(([method, handler]) => [
      method,
      observeUnary(deps, method, limited(method, handler as grpc.handleUnaryCall<unknown, unknown>)),
    ]),
  ) as unknown as PersonaAgentHandlers;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': Math.max(deps.limits.maxBodyBytes, deps.limits.maxInteractionsBodyBytes),
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': Math.min(20_000, keepaliveMs),
    'grpc.max_connection_age_ms': maxConnectionAgeMs,
    // Calls under way when a connection reaches its age get this long to finish.
    'grpc.max_connection_age_grace_ms': requestBudgetMs(deps, true),
  });
  server.addService(service, observed);
  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  // Reflection describes the health service too, so `grpcurl … grpc.health.v1.Health/Check` works.
  if (reflection)
    new ReflectionService(
      reflectedDefinition({ ...definition, ...protoLoader.loadSync(HEALTH_PROTO_FILE, LOADER_OPTIONS) }),
    ).addToServer(server);
  return { server, health };
}

type AgentService = ProtoGrpcType['persona']['v1']['PersonaAgent']['service'];

/**
 * Each method's message held to its REST route's body limit. grpc-js has one receive limit per
 * server (the larger one, for RecordInteractions' batches), so the other methods' decoders leave a
 * message over the smaller limit undecoded and the handler (`limited`) refuses it before anything
 * reads it.
 */
function sizeLimited(
  deps: ApiDeps,
  agentService: AgentService,
): {
  service: AgentService;
  limited: (method: string, handler: grpc.handleUnaryCall<unknown, unknown>) => grpc.handleUnaryCall<unknown, unknown>;
} {
  const limitOf = (method: string) =>
    method === 'RecordInteractions' ? deps.limits.maxInteractionsBodyBytes : deps.limits.maxBodyBytes;
  const oversized = new WeakSet<object>();
  const service = Object.fromEntries(
    Object.entries(agentService).map(([method, d]) => [
      method,
      {
        ...d,
        // Too large: not decoded at all, an empty marker the handler refuses (before auth and limits).
        requestDeserialize: (bytes: Buffer): unknown => {
          if (bytes.length <= limitOf(method)) return d.requestDeserialize(bytes);
          const marker = {};
          oversized.add(marker);
          return marker;
        },
      },
    ]),
  ) as unknown as AgentService;
  const limited =
    (method: string, handler: grpc.handleUnaryCall<unknown, unknown>): grpc.handleUnaryCall<unknown, unknown> =>
    (call, callback) => {
      if (!oversized.has(call.request as object)) return handler(call, callback);
      callback({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `The message must be at most ${limitOf(method)} bytes.`,
      });
    };
  return { service, limited };
}

/**
 * TLS from PEM files (PERSONA_GRPC_TLS_CERT and _KEY; with _CA, clients must present a
 * certificate it signed). Without them plaintext, which production refuses unless
 * PERSONA_GRPC_ALLOW_INSECURE=true (TLS terminated in front of the api). Throws ConfigError.
 */
export function grpcCredentials(config: Config): grpc.ServerCredentials {
  const { PERSONA_GRPC_TLS_CERT: cert, PERSONA_GRPC_TLS_KEY: key, PERSONA_GRPC_TLS_CA: ca } = config;
  if (!cert && !key) {
    if (ca) throw new ConfigError(['PERSONA_GRPC_TLS_CA: needs PERSONA_GRPC_TLS_CERT and PERSONA_GRPC_TLS_KEY']);
    if (config.NODE_ENV === 'production' && config.PERSONA_GRPC_ALLOW_INSECURE !== 'true')
      throw new ConfigError([
        'PERSONA_GRPC_TLS_CERT, PERSONA_GRPC_TLS_KEY: required in production ' +
          '(or PERSONA_GRPC_ALLOW_INSECURE=true when TLS ends in front of the api)',
      ]);
    return grpc.ServerCredentials.createInsecure();
  }
  if (!cert || !key)
    throw new ConfigError([`${cert ? 'PERSONA_GRPC_TLS_KEY' : 'PERSONA_GRPC_TLS_CERT'}: needed with the other`]);
  const read = (file: string, name: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError([`${name}: cannot read ${file} (${err instanceof Error ? err.message : String(err)})`]);
    }
  };
  return grpc.ServerCredentials.createSsl(
    ca ? read(ca, 'PERSONA_GRPC_TLS_CA') : null,
    [{ cert_chain: read(cert, 'PERSONA_GRPC_TLS_CERT'), private_key: read(key, 'PERSONA_GRPC_TLS_KEY') }],
    Boolean(ca),
  );
}

/** Binds the server (plaintext unless credentials are given); resolves with the bound port. */
export function listen(
  server: grpc.Server,
  host: string,
  port: number,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  );
}
