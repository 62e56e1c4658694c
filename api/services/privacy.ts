/**
 * A customer's data rights: export everything Persona holds about them (never a token), and
 * erase it (the erasure workflow).
 */
import { getAddressesByCustomer } from '../../graph/addresses';
import { getDevicesByCustomer } from '../../graph/devices';
import { InvalidInputError, NotFoundError } from '../../graph/errors';
import { listCustomerEvents } from '../../graph/events';
import { WorkflowNotFoundError } from '@temporalio/client';
import {
  ERASURE_WORKFLOW_TYPE,
  erasureRequestedSignal,
  erasureStatusQuery,
  erasureWorkflowId,
  type ErasureOutcome,
  type ErasureRequest,
  type ErasureStatus,
} from '../../temporal/erasure';
import { personaCustomerId } from '../../temporal/searchAttributes';
import type { erasureWorkflow } from '../../workflows/erasure';
import { actsAsSelf, AuthError } from '../auth';
import type { ApiDeps } from '../deps';
import { getProfile, listWallet, possibleMatches } from './customers';
import { guardAndRecord, guardCustomerAction, REASON_HEADER, type Actor } from './guards';

/** Who may export and erase besides the customer: ops. */
const PRIVACY_SCOPES = ['ops'] as const;

export async function exportCustomer(deps: ApiDeps, id: string, actor: Omit<Actor, 'routeScopes'>) {
  await guardAndRecord(deps, id, 'export', { ...actor, routeScopes: PRIVACY_SCOPES });
  const g = deps.graph;
  const profile = await getProfile(g, id);
  const [wallet, devices, addresses, matches, events] = await Promise.all([
    listWallet(g, id),
    getDevicesByCustomer(g, id),
    getAddressesByCustomer(g, id),
    possibleMatches(g, id),
    listCustomerEvents(g, id, { limit: 100_000 }),
  ]);
  return {
    exported_at: new Date().toISOString(),
    profile,
    payment_methods: wallet.data,
    devices: devices.map((d) => ({
      id: d.id,
      fingerprint: d.fingerprint,
      trust_score: d.trust_score,
      last_seen_ip: d.last_seen_ip,
      last_seen_user_agent: d.last_seen_user_agent,
      login_count: d.login_count,
      first_login: d.first_login,
      last_login: d.last_login,
    })),
    addresses: addresses.map(
      ({ id: addressId, street1, street2, city, state, zip_code, country, type, is_default }) => ({
        id: addressId,
        street1,
        street2,
        city,
        state,
        zip_code,
        country,
        type,
        is_default,
      }),
    ),
    possible_matches: matches.data,
    events: events.reverse(),
  };
}

/**
 * Starts (or finds) `erasure-<id>`. With a reason (ops), the request rides along as the
 * `erasureRequested` signal (signal-with-start), so a running erasure learns it too; an override
 * of a pending fraud review needs ops and a reason.
 */
export async function requestErasure(
  deps: ApiDeps,
  id: string,
  actor: Omit<Actor, 'routeScopes'> & { overrideFraudReview?: boolean },
): Promise<{ workflow_id: string }> {
  const override = actor.overrideFraudReview === true;
  if (override && actsAsSelf(actor.principal, PRIVACY_SCOPES))
    throw new AuthError(403, 'Forbidden: only ops may override a pending fraud review.');
  const allowed = await guardCustomerAction(deps, id, 'erasure', { ...actor, routeScopes: PRIVACY_SCOPES });
  if (override && !allowed.reason)
    throw new InvalidInputError(
      REASON_HEADER,
      'overriding a pending fraud review needs a reason (header Persona-Reason)',
    );
  const workflowId = erasureWorkflowId(id);
  const options = {
    workflowId,
    taskQueue: deps.temporal.taskQueue,
    args: [{ customer_id: id }] as [{ customer_id: string }],
    workflowIdReusePolicy: 'ALLOW_DUPLICATE' as const,
    typedSearchAttributes: [{ key: personaCustomerId, value: id }],
    staticSummary: 'Erase the customer: cancel their running workflows, delete their personal data, keep a tombstone',
  };
  if (allowed.reason) {
    const request: ErasureRequest = {
      reason: allowed.reason,
      requested_by: allowed.actor,
      override_fraud_review: override,
    };
    await deps.temporal.client.workflow.signalWithStart<typeof erasureWorkflow, [ErasureRequest]>(
      ERASURE_WORKFLOW_TYPE,
      { ...options, signal: erasureRequestedSignal, signalArgs: [request] },
    );
  } else {
    await deps.temporal.client.workflow.start<typeof erasureWorkflow>(ERASURE_WORKFLOW_TYPE, {
      ...options,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  }
  return { workflow_id: workflowId };
}

/**
 * Where the customer's erasure is: waiting for a fraud review, erasing, done (a running one
 * answers its status query; a closed one is read from its result, which needs no worker).
 */
export async function erasureStatus(
  deps: ApiDeps,
  id: string,
): Promise<
  Omit<ErasureStatus, 'state'> & { state: ErasureStatus['state'] | 'stopped'; workflow_id: string; running: boolean }
> {
  const workflowId = erasureWorkflowId(id);
  const handle = deps.temporal.client.workflow.getHandle(workflowId);
  try {
    const status = (await handle.describe()).status.name;
    if (status === 'RUNNING')
      return { workflow_id: workflowId, running: true, ...(await handle.query(erasureStatusQuery)) };
    if (status !== 'COMPLETED')
      return { workflow_id: workflowId, running: false, state: 'stopped', waiting_for: [], request: null };
    const outcome = (await handle.result()) as ErasureOutcome;
    return {
      workflow_id: workflowId,
      running: false,
      state: 'done',
      waiting_for: [],
      request: outcome.request ?? null,
    };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError('Erasure', id);
    throw err;
  }
}
