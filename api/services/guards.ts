/**
 * What a customer who is not active may do, and what a customer's own token needs for the steps
 * banks ask again before (REST and gRPC call these before the service runs):
 *
 * - A customer's own token (scope `self`) of a customer who is not active (suspended) may read its
 *   profile and history, but not export, erase, change the wallet or remove a device or an
 *   address: 403 naming the status.
 * - Export and erasure with a customer's own token need a recent sign-in (`auth_time` within
 *   PERSONA_RECENT_AUTH_SECONDS): otherwise 401 with a step-up challenge.
 * - Anyone else the route lets in (ops; for the wallet also `customers:write`) acts on a customer
 *   who is not active only with a reason (`Persona-Reason`), which is recorded: on an
 *   `OpsActionRecorded` event (export, wallet, devices, addresses) or on the CustomerErased event
 *   (erasure).
 */
import { recordOpsAction, type AuditedAction } from '../../graph/audit';
import { getCustomer } from '../../graph/customers';
import { InvalidInputError, NotFoundError } from '../../graph/errors';
import type { CustomerStatus } from '../../graph/model';
import { actsAsSelf, AuthError, requireRecentAuth, type Principal, type Scope } from '../auth';
import type { ApiDeps } from '../deps';
import { isMergedStatus, mergedRecordRefusal, mergedRefusal } from './mergedIds';

export type GuardedAction = AuditedAction | 'erasure';

const WORDS: Record<GuardedAction, string> = {
  export: 'export its data',
  erasure: 'erase the account',
  add_payment_method: 'change the wallet',
  remove_payment_method: 'change the wallet',
  set_default_payment_method: 'change the wallet',
  remove_device: 'remove a device',
  remove_address: 'remove an address',
};

/** The header ops' reason travels in (REST); gRPC has no such route yet. */
export const REASON_HEADER = 'persona-reason';

export interface Actor {
  principal: Principal;
  /** The scopes that let a caller other than the customer into the route (ops always). */
  routeScopes: readonly Scope[];
  /** Ops' (or the platform's) reason, when given. */
  reason?: string | undefined;
}

/**
 * Checks that the actor may do `action` for the customer now, and answers what to record: the
 * reason given by a caller other than the customer (null when none was given). Throws
 * NotFoundError (no such customer), AuthError (401 a fresh sign-in; 403 not active),
 * InvalidInputError (a reason is needed), or CustomerMergedError (the id was merged into another
 * customer: 409 naming it).
 */
export async function guardCustomerAction(
  deps: ApiDeps,
  customerId: string,
  action: GuardedAction,
  actor: Actor,
): Promise<{ status: CustomerStatus; reason: string | null; actor: string | null }> {
  const customer = await getCustomer(deps.graph, customerId);
  if (!customer) throw new NotFoundError('Customer', customerId);
  const { status } = customer;
  // A merge's tombstone: refused before anything is recorded (export and erasure follow it first).
  // Its own token is told it reaches nothing, without the survivor's id.
  if (isMergedStatus(status))
    throw actsAsSelf(actor.principal, actor.routeScopes)
      ? mergedRecordRefusal()
      : await mergedRefusal(deps.graph, customerId);
  // An erased customer is a tombstone: nothing left to protect (export shows it, erasing again is a no-op).
  const notActive = status !== 'active' && status !== 'erased';
  if (actsAsSelf(actor.principal, actor.routeScopes)) {
    if (notActive)
      throw new AuthError(
        403,
        `Forbidden: the customer is ${status}; its own token may read the profile and history, ` +
          `not ${WORDS[action]}. Support can help.`,
        { type: 'customer-not-active' },
      );
    if (action === 'export' || action === 'erasure') requireRecentAuth(actor.principal, deps.auth.recentAuthSeconds);
    return { status, reason: null, actor: actor.principal.subject };
  }
  const reason = actor.reason?.trim() || null;
  if (notActive && !reason)
    throw new InvalidInputError(
      REASON_HEADER,
      `the customer is ${status}: give a reason (header Persona-Reason) to ${WORDS[action]} for it; ` +
        'the reason is recorded',
    );
  return { status, reason, actor: actor.principal.subject };
}

/** The guard, then the reason recorded (an `OpsActionRecorded` event) when one was given. */
export async function guardAndRecord(
  deps: ApiDeps,
  customerId: string,
  action: AuditedAction,
  actor: Actor,
): Promise<void> {
  const allowed = await guardCustomerAction(deps, customerId, action, actor);
  if (allowed.reason)
    await recordOpsAction(deps.graph, customerId, { action, reason: allowed.reason, actor: allowed.actor });
}
