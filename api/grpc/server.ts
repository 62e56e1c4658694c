/**
 * gRPC: service persona.v1.PersonaAgent (proto/persona/v1/persona.proto), plus the standard
 * health service and server reflection, so grpcurl works with no proto file at hand. Handlers
 * are as thin as the REST ones and call the same services; the same JWT travels in the
 * `authorization` metadata, with the same scopes.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { repoRoot } from '../../config/env';
import type { ProtoGrpcType } from '../../proto/generated/persona';
import type { PersonaAgentHandlers } from '../../proto/generated/persona/v1/PersonaAgent';
import type { WalletItem } from '../../proto/generated/persona/v1/WalletItem';
import { InvalidInputError } from '../../graph/errors';
import { IDEMPOTENCY_KEY_PATTERN } from '../../temporal/workflowIds';
import { authorize, type AccessRule, type Principal } from '../auth';
import type { ApiDeps } from '../deps';
import { withinBudget } from '../deadlines';
import { observeUnary } from '../observability';
import { checkoutOptions, customerContext, markPaymentMethodInactive, setDeviceTrust } from '../services/context';
import type { walletItem } from '../services/customers';
import { startOnboarding } from '../services/onboarding';
import { reportFraudOutcome } from '../services/fraud';
import { reportPaymentFailure } from '../services/recovery';
import { fraudOutcomeSchema, issueField, paymentFailureSchema } from '../requests';
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

export function createGrpcServer(deps: ApiDeps): { server: grpc.Server; health: HealthImplementation } {
  const { definition, proto } = loadPersonaProto();

  /** One unary handler: authenticate, authorise, run, map errors to status codes. */
  /**
   * One method: authenticate, authorise, run within the request's budget. `run` learns how many
   * milliseconds the caller's own deadline leaves (undefined without one).
   */
  function unary<Req, Res>(
    rule: AccessRule,
    customerIdOf: (req: Req) => string | undefined,
    run: (req: Req, principal: Principal, callerBudgetMs: number | undefined) => Promise<Res>,
    waits: (req: Req) => boolean = () => false,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const deadline = call.getDeadline();
      const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
      const callerBudgetMs = Number.isFinite(deadlineMs) ? deadlineMs - Date.now() : undefined;
      const work = async (): Promise<Res> => {
        const principal = await deps.authenticate(call.metadata.get('authorization')[0]?.toString());
        authorize(principal, rule, customerIdOf(call.request));
        return run(call.request, principal, callerBudgetMs);
      };
      withinBudget(deps, waits(call.request), work).then(
        (res) => callback(null, res),
        (err: unknown) => callback(toGrpcError(err, deps.logger)),
      );
    };
  }

  const handlers: PersonaAgentHandlers = {
    GetCustomerContext: unary(
      { scopes: ['context:read'] },
      () => undefined,
      async (req, _principal, callerBudgetMs) => {
        const ctx = await customerContext(deps, uuidField(req.customer_id, 'customer_id'), callerBudgetMs);
        return { ...ctx, default_payment_method_id: ctx.default_payment_method_id ?? '' };
      },
    ),
    GetCheckoutOptions: unary(
      { scopes: ['context:read'], self: true },
      (req) => req.customer_id,
      async (req, _principal, callerBudgetMs) => {
        const deviceId = req.device_id ? uuidField(req.device_id, 'device_id') : null;
        const customerId = uuidField(req.customer_id, 'customer_id');
        const options = await checkoutOptions(deps, customerId, deviceId, callerBudgetMs);
        return { data: options.data.map(toWalletItem), trusted_device: options.trusted_device };
      },
    ),
    UpdateDeviceTrustScore: unary(
      { scopes: ['devices:write'] },
      () => undefined,
      async (req) => {
        if (req.trust_score === undefined || req.trust_score === null)
          throw new InvalidInputError('trust_score', 'required');
        return setDeviceTrust(
          deps,
          uuidField(req.device_id, 'device_id'),
          Number(req.trust_score),
          req.reason || undefined,
        );
      },
    ),
    MarkPaymentMethodInactive: unary(
      { scopes: ['fraud:report', 'customers:write'] },
      () => undefined,
      async (req) => {
        const reason = (req.reason ?? '').trim();
        if (!reason) throw new InvalidInputError('reason', 'required');
        return toWalletItem(
          await markPaymentMethodInactive(deps, uuidField(req.payment_method_id, 'payment_method_id'), reason),
        );
      },
    ),
    OnboardCustomer: unary(
      { scopes: ['onboarding:write'] },
      () => undefined,
      async (req, principal) => {
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
        const answer = await startOnboarding(deps, key, body, req.wait === true, principal);
        return answer.status === 200 ? answer.body : { workflow_id: answer.body.workflow_id };
      },
      (req) => req.wait === true,
    ),
    ReportPaymentFailure: unary(
      { scopes: ['payments:report'] },
      () => undefined,
      async (req) => {
        const parsed = paymentFailureSchema.safeParse({
          ...plain(req),
          amount: req.amount === undefined ? undefined : Number(req.amount),
        });
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw new InvalidInputError(issue ? issueField(issue) : 'body', issue?.message ?? 'invalid');
        }
        return reportPaymentFailure(deps, parsed.data);
      },
    ),
    ReportFraudOutcome: unary(
      { scopes: ['fraud:report'] },
      () => undefined,
      async (req) => {
        const parsed = fraudOutcomeSchema.safeParse(plain(req));
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw new InvalidInputError(issue ? issueField(issue) : 'body', issue?.message ?? 'invalid');
        }
        return reportFraudOutcome(deps, parsed.data);
      },
    ),
  };

  // Every method: a request id in and out, one log line, the latency histogram.
  const observed = Object.fromEntries(
    Object.entries(handlers).map(([method, handler]) => [
      method,
      observeUnary(deps, method, handler as grpc.handleUnaryCall<unknown, unknown>),
    ]),
  ) as unknown as PersonaAgentHandlers;
  const server = new grpc.Server();
  server.addService(proto.persona.v1.PersonaAgent.service, observed);
  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  // Reflection describes the health service too, so `grpcurl … grpc.health.v1.Health/Check` works.
  new ReflectionService({ ...definition, ...protoLoader.loadSync(HEALTH_PROTO_FILE, LOADER_OPTIONS) }).addToServer(
    server,
  );
  return { server, health };
}

/** Binds the server; resolves with the bound port. */
export function listen(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
}
