/**
 * A customer's data rights: export everything Persona holds about them (never a token), and
 * erase it (the erasure workflow).
 */
import { getAddressesByCustomer } from '../../graph/addresses';
import { getCustomer } from '../../graph/customers';
import { getDevicesByCustomer } from '../../graph/devices';
import { NotFoundError } from '../../graph/errors';
import { listCustomerEvents } from '../../graph/events';
import { ERASURE_WORKFLOW_TYPE, erasureWorkflowId } from '../../temporal/erasure';
import { personaCustomerId } from '../../temporal/searchAttributes';
import type { erasureWorkflow } from '../../workflows/erasure';
import type { ApiDeps } from '../deps';
import { getProfile, listWallet, possibleMatches } from './customers';

export async function exportCustomer(deps: ApiDeps, id: string) {
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

/** Starts (or finds) `erasure-<id>`. */
export async function requestErasure(deps: ApiDeps, id: string): Promise<{ workflow_id: string }> {
  const customer = await getCustomer(deps.graph, id);
  if (!customer) throw new NotFoundError('Customer', id);
  const workflowId = erasureWorkflowId(id);
  await deps.temporal.client.workflow.start<typeof erasureWorkflow>(ERASURE_WORKFLOW_TYPE, {
    workflowId,
    taskQueue: deps.temporal.taskQueue,
    args: [{ customer_id: id }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    typedSearchAttributes: [{ key: personaCustomerId, value: id }],
    staticSummary: 'Erase the customer: cancel their running workflows, delete their personal data, keep a tombstone',
  });
  return { workflow_id: workflowId };
}
