/**
 * gRPC: service persona.v1.PersonaAgent (proto/persona/v1/persona.proto), plus the standard
 * health service and server reflection, so grpcurl works with no proto file at hand. Handlers
 * are as thin as the REST ones and call the same services; the same JWT travels in the
 * `authorization` metadata, with the same scopes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { reflectedDefinition } from './descriptors';
import { HealthImplementation } from 'grpc-health-check';
import { ConfigError, repoRoot, type Config } from '../../config/env';
import type { ProtoGrpcType } from '../../proto/generated/persona';
import type { PersonaAgentHandlers } from '../../proto/generated/persona/v1/PersonaAgent';
import type { WalletItem } from '../../proto/generated/persona/v1/WalletItem';
import { InvalidInputError } from '../../graph/errors';
import { observeCommits } from '../../graph/graph';
import { IDEMPOTENCY_KEY_PATTERN } from '../../temporal/workflowIds';
import { authorize, type AccessRule, type Principal } from '../auth';
import { customerTokenOf, deviceTokenOf } from '../consistency';
import type { ApiDeps } from '../deps';
import { requestBudgetMs, withinBudget } from '../deadlines';
import { admit, identify } from '../rateLimit';
import { callerAddress } from '../clientAddress';
import { observeUnary } from '../observability';
import { checkoutOptions, customerContext, markPaymentMethodInactive, setDeviceTrust } from '../services/context';
import type { walletItem } from '../services/customers';
import { startOnboarding } from '../services/onboarding';
import { reporterOf, reportFraudOutcome } from '../services/fraud';
import { recordInteractions } from '../services/interactions';
import { paymentNoLongerOwed, reportPaymentFailure } from '../services/recovery';
import { refuseMergedAnswer } from '../services/mergedIds';
import {
  consistencyTokenField,
  deviceTrustSchema,
  fraudOutcomeSchema,
  inactivateSchema,
  issueField,
  MAX_INTERACTIONS,
  parseConsistencyToken,
  paymentFailureSchema,
  paymentIdField,
  paymentNoLongerOwedSchema,
} from '../requests';
import { toGrpcError } from './errors';

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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidField(value: string | undefined, field: string): string {
  if (!value) throw new InvalidInputError(field, 'required');
  if (!UUID.test(value)) throw new InvalidInputError(field, 'must be a UUID');
  return value;
}

/** Drops proto3 presence markers (`_field`) and unset values, so the object reads like JSON. */
function plain<T extends object>(message: T | null | undefined): Record<string, unknown> | undefined {
  if (!message) return undefined;
  return Object.fromEntries(
    Object.entries(message).filter(([k, v]) => !k.startsWith('_') && v !== undefined && v !== null),
  );
}

function toWalletItem(item: ReturnType<typeof walletItem> & { customer_id?: string }): WalletItem {
  return {
    id: item.id,
    type: item.type,
    status: item.status,
    brand: item.brand ?? '',
    last_four: item.last_four ?? '',
    expiry_month: item.expiry_month ?? 0,
    expiry_year: item.expiry_year ?? 0,
    is_default: item.is_default,
    last_used: item.last_used ?? '',
    customer_id: item.customer_id ?? '',
  };
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

/** `ipv4:127.0.0.1:5000`, `[::1]:5000` → the address without the port. */
function peerAddress(call: { getPeer(): string }): string {
  const peer = call.getPeer().replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\](:\d+)?$/.exec(peer);
  if (bracketed?.[1]) return bracketed[1];
  return /^[^:]+:\d+$/.test(peer) ? peer.replace(/:\d+$/, '') : peer;
}

export function createGrpcServer(
  deps: ApiDeps,
  options: GrpcServerOptions = {},
): { server: grpc.Server; health: HealthImplementation } {
  const { reflection = true, keepaliveMs = 60_000, maxConnectionAgeMs = 30 * 60_000 } = options;
  const { definition, proto } = loadPersonaProto();

  /**
   * One method: count it against the caller's rate limit, authenticate, authorise, run within
   * the request's budget. `run` learns how many milliseconds the caller's own deadline leaves
   * (undefined without one); once that deadline has passed, the request is abandoned, so a
   * write still under way rolls back instead of committing for a caller that gave up.
   */
  function unary<Req, Res>(
    rule: AccessRule,
    customerIdOf: (req: Req) => string | undefined,
    run: (req: Req, principal: Principal, callerBudgetMs: number | undefined, authorization?: string) => Promise<Res>,
    waits: (req: Req) => boolean = () => false,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const deadline = call.getDeadline();
      const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
      const callerBudgetMs = Number.isFinite(deadlineMs) ? deadlineMs - Date.now() : undefined;
      if (callerBudgetMs !== undefined && callerBudgetMs <= 0) {
        callback({ code: grpc.status.DEADLINE_EXCEEDED, details: 'The deadline passed before the call started.' });
        return;
      }
      // Timers keep the request's async context: this marks this request abandoned.
      // Only a deadline inside the request's own budget needs it (a far one would overflow the timer).
      const expiry =
        callerBudgetMs !== undefined && callerBudgetMs < requestBudgetMs(deps, waits(call.request))
          ? setTimeout(() => deps.requests.abandon(), callerBudgetMs)
          : undefined;
      const work = async (): Promise<Res> => {
        const authorization = call.metadata.get('authorization')[0]?.toString();
        const forwardedFor = call.metadata.get('x-forwarded-for')[0]?.toString();
        const address = callerAddress(peerAddress(call), forwardedFor, deps.trustedProxies);
        const who = await identify(deps.authenticate, authorization, address);
        admit(deps.rateLimiter, deps.metrics.rateLimited, who.caller, 'grpc');
        if (who.authError) throw who.authError;
        authorize(who.principal, rule, customerIdOf(call.request));
        // A merged record's own token reaches nothing of the survivor's (api/services/mergedIds.ts):
        // the one method it may call is a read, refused on its answer (which says merged_into).
        const res = await run(call.request, who.principal, callerBudgetMs, authorization);
        refuseMergedAnswer(who.principal, rule.scopes, res);
        return res;
      };
      withinBudget(deps, waits(call.request), work)
        .then(
          (res) => callback(null, res),
          (err: unknown) => callback(toGrpcError(err, deps.logger)),
        )
        .finally(() => clearTimeout(expiry));
    };
  }

  /** Parses a message with the REST route's schema: the same fields refused with the same words. */
  function parse<T>(schema: z.ZodType<T>, value: unknown): T {
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    throw new InvalidInputError(issue ? issueField(issue) : 'body', issue?.message ?? 'invalid');
  }

  /** `min_version`: empty for none, else a consistency token (INVALID_ARGUMENT naming the field). */
  function minVersionField(value: string | undefined) {
    if (!value) return null;
    const parsed = consistencyTokenField.safeParse(value);
    if (!parsed.success) throw new InvalidInputError('min_version', parsed.error.issues[0]?.message ?? 'invalid');
    return parseConsistencyToken(parsed.data);
  }

  const handlers: PersonaAgentHandlers = {
    GetCustomerContext: unary(
      { scopes: ['context:read'] },
      () => undefined,
      async (req, _principal, callerBudgetMs) => {
        const customerId = uuidField(req.customer_id, 'customer_id');
        const ctx = await customerContext(deps, customerId, callerBudgetMs, minVersionField(req.min_version));
        return {
          ...ctx,
          default_payment_method_id: ctx.default_payment_method_id ?? '',
          predicted_ltv: ctx.predicted_ltv ?? '',
          stale: ctx.stale === true,
          as_of: ctx.as_of ?? '',
          merged_into: ctx.merged_into ?? '',
        };
      },
    ),
    GetCheckoutOptions: unary(
      { scopes: ['context:read'], self: true },
      (req) => req.customer_id,
      async (req, principal, callerBudgetMs) => {
        const deviceId = req.device_id ? uuidField(req.device_id, 'device_id') : null;
        const customerId = uuidField(req.customer_id, 'customer_id');
        const options = await checkoutOptions(
          deps,
          customerId,
          deviceId,
          { principal, scopes: ['context:read'] },
          callerBudgetMs,
          minVersionField(req.min_version),
        );
        return {
          data: options.data.map(toWalletItem),
          trusted_device: options.trusted_device,
          stale: options.stale === true,
          as_of: options.as_of ?? '',
          merged_into: options.merged_into ?? '',
        };
      },
    ),
    UpdateDeviceTrustScore: unary(
      { scopes: ['devices:write'] },
      () => undefined,
      async (req, principal) => {
        if (req.trust_score === undefined || req.trust_score === null)
          throw new InvalidInputError('trust_score', 'required');
        const deviceId = uuidField(req.device_id, 'device_id');
        const body = parse(deviceTrustSchema, {
          trust_score: Number(req.trust_score),
          ...(req.reason ? { reason: req.reason } : {}),
        });
        const { result, events } = await observeCommits(() =>
          setDeviceTrust(deps, principal, deviceId, body.trust_score, body.reason),
        );
        return { ...result, consistency_token: deviceTokenOf(events, deviceId) ?? '' };
      },
    ),
    MarkPaymentMethodInactive: unary(
      { scopes: ['fraud:report', 'customers:write'] },
      () => undefined,
      async (req) => {
        const paymentMethodId = uuidField(req.payment_method_id, 'payment_method_id');
        if (!(req.reason ?? '').trim()) throw new InvalidInputError('reason', 'required');
        const { reason } = parse(inactivateSchema, { reason: req.reason });
        const { result, events } = await observeCommits(() => markPaymentMethodInactive(deps, paymentMethodId, reason));
        return { ...toWalletItem(result), consistency_token: customerTokenOf(events, result.customer_id) ?? '' };
      },
    ),
    OnboardCustomer: unary(
      { scopes: ['onboarding:write'] },
      () => undefined,
      async (req, principal, _budget, authorization) => {
        const key = req.idempotency_key ?? '';
        if (!IDEMPOTENCY_KEY_PATTERN.test(key))
          throw new InvalidInputError('idempotency_key', 'must be 1–200 characters of letters, digits and . _ : -');
        const body = plain({
          customer: plain(req.customer),
          payment_method: plain(req.payment_method),
          device: plain(req.device),
          address: plain(req.address),
          digital_identifiers: (req.digital_identifiers ?? []).map((i) => ({ is_verified: false, ...plain(i) })),
        });
        const answer = await startOnboarding(deps, key, body, req.wait === true, principal, authorization);
        return answer.status === 200 ? answer.body : { workflow_id: answer.body.workflow_id };
      },
      (req) => req.wait === true,
    ),
    ReportPaymentFailure: unary(
      { scopes: ['payments:report'] },
      () => undefined,
      async (req) => {
        const parsed = parse(paymentFailureSchema, {
          ...plain(req),
          amount: req.amount === undefined ? undefined : Number(req.amount),
        });
        return reportPaymentFailure(deps, parsed);
      },
    ),
    ReportPaymentNoLongerOwed: unary(
      { scopes: ['payments:report'] },
      () => undefined,
      async (req) => {
        const { payment_id: paymentId, ...word } = parse(
          paymentNoLongerOwedSchema.extend({ payment_id: paymentIdField }),
          plain({ payment_id: req.payment_id ?? '', reason: req.reason, note: req.note }),
        );
        const waitMs = req.wait === true ? deps.limits.waitTimeoutMs : deps.limits.requestDeadlineMs / 2;
        const answer = await paymentNoLongerOwed(deps, paymentId, word, waitMs);
        return {
          ...answer,
          charge: answer.charge && { ...answer.charge, charge_id: answer.charge.charge_id ?? '' },
          unknown_charge: answer.unknown_charge ?? '',
          state: answer.state ?? '',
          stop_reason: answer.stop_reason ?? '',
        };
      },
      (req) => req.wait === true,
    ),
    ReportFraudOutcome: unary(
      { scopes: ['fraud:report'] },
      () => undefined,
      async (req, principal) => {
        return reportFraudOutcome(deps, parse(fraudOutcomeSchema, plain(req)), reporterOf(principal));
      },
    ),
    RecordInteractions: unary(
      { scopes: ['interactions:write'] },
      () => undefined,
      async (req, principal) => {
        const items = req.data ?? [];
        if (items.length < 1 || items.length > MAX_INTERACTIONS)
          throw new InvalidInputError('data', `must hold 1–${MAX_INTERACTIONS} interactions`);
        // As the REST item reads: unset fields absent, the amount a number; the same schema decides.
        const answer = await recordInteractions(
          deps,
          items.map((i) =>
            plain({
              ...i,
              amount: i.amount === undefined || i.amount === null ? undefined : Number(i.amount),
              device: plain(i.device),
              shipping_address: plain(i.shipping_address),
              address: plain(i.address),
            }),
          ),
          principal,
        );
        return {
          data: answer.data.map((a) => ({
            id: a.id ?? '',
            result: a.result,
            field: a.result === 'invalid' ? a.field : '',
            problem: a.result === 'invalid' ? a.problem : '',
            consistency_token: a.result === 'recorded' ? (a.consistency_token ?? '') : '',
          })),
        };
      },
    ),
  };

  // Each method's message is held to its REST route's body limit. grpc-js has one receive limit per
  // server (the larger one, for RecordInteractions' batches), so the other methods' decoders leave a
  // message over the smaller limit undecoded and the handler refuses it before anything reads it.
  const limitOf = (method: string) =>
    method === 'RecordInteractions' ? deps.limits.maxInteractionsBodyBytes : deps.limits.maxBodyBytes;
  const oversized = new WeakSet<object>();
  const agentService = proto.persona.v1.PersonaAgent.service;
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
  ) as unknown as typeof agentService;
  const limited =
    (method: string, handler: grpc.handleUnaryCall<unknown, unknown>): grpc.handleUnaryCall<unknown, unknown> =>
    (call, callback) => {
      if (!oversized.has(call.request as object)) return handler(call, callback);
      callback({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `The message must be at most ${limitOf(method)} bytes.`,
      });
    };

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
