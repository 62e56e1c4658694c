/**
 * One gRPC method of persona.v1.PersonaAgent as every one runs: counted against the caller's rate
 * limit, authenticated, authorised, run within the request's budget, its answer refused to a merged
 * record's own token, its error mapped to a gRPC status (api/grpc/errors.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { authorize, type AccessRule, type Principal } from '../auth';
import type { ApiDeps } from '../deps';
import { requestBudgetMs, withinBudget } from '../deadlines';
import { admitCall, TEMPORAL_CALL_COST } from '../rateLimit';
import { callerAddress } from '../clientAddress';
import { refuseMergedAnswer } from '../services/mergedIds';
import { toGrpcError } from './errors';

/** Who calls, as a method's `run` learns it. */
export interface UnaryCaller {
  principal: Principal;
  /** How many milliseconds the caller's own deadline leaves (undefined without one). */
  callerBudgetMs: number | undefined;
  /** The bearer metadata as sent (for a `client_id` claim when the token has no subject). */
  authorization: string | undefined;
}

/** A method: who may call it, what it does, and (when they apply) what it is about and whether it waits. */
export interface UnaryMethod<Req, Res> {
  rule: AccessRule;
  run: (req: Req, caller: UnaryCaller) => Promise<Res>;
  /** The customer the call is about, for a rule that lets a customer's own token in (`self`). Absent: none. */
  customerIdOf?: (req: Req) => string | undefined;
  /** Whether this call waits for a workflow (the longer budget). Absent: it does not. */
  waits?: (req: Req) => boolean;
  /** The call reaches Temporal (starts, signals or updates a workflow): it costs TEMPORAL_CALL_COST. */
  reachesTemporal?: true;
}

/** `ipv4:127.0.0.1:5000`, `[::1]:5000` → the address without the port. */
function peerAddress(call: { getPeer(): string }): string {
  const peer = call.getPeer().replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\](:\d+)?$/.exec(peer);
  if (bracketed?.[1]) return bracketed[1];
  return /^[^:]+:\d+$/.test(peer) ? peer.replace(/:\d+$/, '') : peer;
}

/**
 * The method as a grpc-js handler. `run` learns how many milliseconds the caller's own deadline
 * leaves; once that deadline has passed, the request is abandoned, so a write still under way
 * rolls back instead of committing for a caller that gave up.
 */
export function unary<Req, Res>(deps: ApiDeps, method: UnaryMethod<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  const { rule, run, customerIdOf = () => undefined, waits = () => false, reachesTemporal } = method;
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
      const who = await admitCall(deps, authorization, address, {
        transport: 'grpc',
        cost: reachesTemporal ? TEMPORAL_CALL_COST : 1,
      });
      if (who.authError) throw who.authError;
      authorize(who.principal, rule, customerIdOf(call.request));
      // A merged record's own token reaches nothing of the survivor's (api/services/mergedIds.ts):
      // the one method it may call is a read, refused on its answer (which says merged_into).
      const res = await run(call.request, { principal: who.principal, callerBudgetMs, authorization });
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
