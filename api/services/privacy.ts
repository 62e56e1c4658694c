/**
 * A customer's data rights: export everything Persona holds about them (never a token, nothing
 * of another customer), and erase it (the erasure workflow).
 */
import { getAddressesByCustomer } from '../../graph/addresses';
import { getDevicesByCustomer } from '../../graph/devices';
import { InvalidInputError, NotFoundError } from '../../graph/errors';
import type { PersonaEvent } from '../../graph/events';
import { readCustomerHistory } from '../../graph/feed';
import { listKeptFacts } from '../../graph/facts';
import {
  ERASURE_WORKFLOW_TYPE,
  erasureRequestedSignal,
  erasureStatusQuery,
  erasureWorkflowId,
  type ErasureInput,
  type ErasureOutcome,
  type ErasureRequest,
  type ErasureStatus,
} from '../../temporal/erasure';
import { personaCustomerId } from '../../temporal/searchAttributes';
import type { erasureWorkflow } from '../../workflows/erasure';
import { actsAsSelf, AuthError } from '../auth';
import type { ApiDeps } from '../deps';
import { getProfile, listWallet } from './customers';
import { guardAndRecord, guardCustomerAction, REASON_HEADER, type Actor } from './guards';
import { describeEvent, type HistoryAudience } from './events';
import { followMerge, mergedInto, refuseMergedAnswer } from './mergedIds';
import { orNotFound, queryWithin } from './refusals';
import { taskQueueFor } from '../../temporal/taskQueues';
import { waitWithinBudget } from '../deadlines';

/** Who may export and erase besides the customer: ops. */
const PRIVACY_SCOPES = ['ops'] as const;

/** Events read per page while an export streams: memory stays flat however long the history. */
export const EXPORT_EVENTS_PAGE = 500;

/** An onboarding's result as its event stores it (graph/onboarding.ts OnboardingResult). */
type Stored = Record<string, unknown>;

/**
 * An event as the customer's export shows it, or null when it is not the customer's to see.
 * Possible matches name other customers (ops review them): the PossibleMatchFound events are
 * left out, and an onboarding's stored result loses its list of them and why a link to another
 * customer was refused (that would say what the other customer's record holds).
 */
export function eventForCustomer(e: PersonaEvent, audience: HistoryAudience = 'staff'): PersonaEvent | null {
  if (e.type === 'PossibleMatchFound') return null;
  if (e.type === 'CustomerOnboarded' && e.payload.result && typeof e.payload.result === 'object') {
    const { possible_matches: _others, link_refused: _why, ...result } = e.payload.result as Stored;
    return { ...e, payload: { ...e.payload, result } } as PersonaEvent;
  }
  if (audience === 'staff') return e;
  // The customer's own export says what happened to their data, as their history does, and
  // nothing of how fraud checks or ops decided it: whoever holds a taken-over session reads it too.
  if (DECIDED_FOR_THE_CUSTOMER.has(e.type)) return { ...e, payload: { summary: describeEvent(e, 'customer').summary } };
  const { reason: _why, fraud_outcome_id: _outcome, ...payload } = e.payload;
  if (e.type === 'CustomerNotified' && payload.kind === 'account_takeover') payload.kind = 'security_notice';
  return { ...e, payload };
}

/** Events whose payload is a decision about the customer (its kind, ids, ops' words): summarised for them. */
const DECIDED_FOR_THE_CUSTOMER = new Set([
  'FraudOutcomeApplied',
  'FraudOutcomeReversed',
  'FraudReviewResolved',
  'OpsActionRecorded',
]);

/**
 * The export, as JSON text in pieces: `{exported_at, profile, payment_methods, devices,
 * addresses, events}`. The customer is looked up before the first piece (an unknown one is a
 * NotFoundError the route answers 404 with); the wallet, devices and addresses are one short
 * list each; the events, which grow with the customer's history, are read a page at a time
 * (newest first, as the history) only as fast as the reader takes them, so the api never holds
 * a whole history. A read failing midway ends the stream with an error, never a short body that
 * looks complete (the closing brace is written last).
 */
export async function exportCustomer(
  deps: ApiDeps,
  asked: string,
  actor: Omit<Actor, 'routeScopes'>,
): Promise<AsyncGenerator<string>> {
  const g = deps.graph;
  // A merged customer's id exports its survivor (the same person): the profile says `merged_into`.
  const { id, merged_into } = await followMerge(g, asked);
  // A merged record's own token: the survivor's data is not its to take (the route checked too,
  // but a merge may have committed since).
  if (merged_into) refuseMergedAnswer(actor.principal, PRIVACY_SCOPES, { merged_into });
  await guardAndRecord(deps, id, 'export', { ...actor, routeScopes: PRIVACY_SCOPES });
  const profile = { ...(await getProfile(g, id)), ...mergedInto(merged_into) };
  const audience: HistoryAudience = actsAsSelf(actor.principal, PRIVACY_SCOPES) ? 'customer' : 'staff';
  // A merge that committed after the check above: the reads follow it, and say so.
  refuseMergedAnswer(actor.principal, PRIVACY_SCOPES, profile);
  return (async function* pieces() {
    const [wallet, devices, addresses] = await Promise.all([
      listWallet(g, id),
      // Those the customer removed too: Persona keeps them (marked `disowned_at`, for fraud checks).
      getDevicesByCustomer(g, id, { includeDisowned: true }),
      getAddressesByCustomer(g, id, { includeDisowned: true }),
    ]);
    // The wallet follows a merge that committed since: the stream ends with an error, not the survivor's cards.
    refuseMergedAnswer(actor.principal, PRIVACY_SCOPES, wallet);
    const head = {
      exported_at: new Date().toISOString(),
      profile,
      payment_methods: wallet.data,
      // The device as this customer knows it: the last IP and user agent are this customer's
      // own logins' (their LOGGED_IN_FROM edge), whoever else uses the device.
      devices: devices.map((d) => ({
        id: d.id,
        fingerprint: d.fingerprint,
        trust_score: d.trust_score,
        last_seen_ip: d.last_seen_ip,
        last_seen_user_agent: d.last_seen_user_agent,
        login_count: d.login_count,
        first_login: d.first_login,
        last_login: d.last_login,
        disowned_at: d.disowned_at ?? null,
      })),
      addresses: addresses.map(
        ({ id: addressId, street1, street2, city, state, zip_code, country, type, is_default, disowned_at }) => ({
          id: addressId,
          street1,
          street2,
          city,
          state,
          zip_code,
          country,
          type,
          is_default,
          disowned_at: disowned_at ?? null,
        }),
      ),
    };
    yield `${JSON.stringify(head).slice(0, -1)},"events":[`;
    let before: string | undefined;
    let first = true;
    do {
      const page = await readCustomerHistory(g, id, { before, limit: EXPORT_EVENTS_PAGE });
      const shown = page.data.map((e) => eventForCustomer(e, audience)).filter((e) => e !== null);
      if (shown.length > 0) {
        yield `${first ? '' : ','}${shown.map((e) => JSON.stringify(e)).join(',')}`;
        first = false;
      }
      before = page.next_cursor ?? undefined;
    } while (before);
    // What the graph keeps of the customer beyond the history (its retention): decisions once made,
    // whose events were pruned (graph/facts.ts). Without them the export would not be all of it.
    const kept = (await listKeptFacts(g, id)).map((e) => eventForCustomer(e, audience)).filter((e) => e !== null);
    yield `],"kept_beyond_history":${JSON.stringify(kept)}}`;
  })();
}

const encoder = new TextEncoder();

/**
 * The export's pieces as a response body (REST and the console), pulled: the next page is read
 * only when the client has taken the last one. The status is sent by then, so a read failing
 * midway breaks the body off (no closing brace, never valid JSON), and is logged.
 */
export function exportBody(deps: ApiDeps, pieces: AsyncGenerator<string>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await pieces.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      } catch (err) {
        deps.logger.error({ err }, 'the export stopped midway');
        controller.error(err);
      }
    },
    async cancel() {
      await pieces.return(undefined);
    },
  });
}

/**
 * Starts (or finds) `erasure-<id>`. With a reason (ops), the request rides along as the
 * `erasureRequested` signal (signal-with-start), so a running erasure learns it too; an override
 * of a pending fraud review needs ops and a reason.
 */
export async function requestErasure(
  deps: ApiDeps,
  asked: string,
  actor: Omit<Actor, 'routeScopes'> & { overrideFraudReview?: boolean },
): Promise<{ workflow_id: string; merged_into?: string }> {
  const override = actor.overrideFraudReview === true;
  if (override && actsAsSelf(actor.principal, PRIVACY_SCOPES))
    throw new AuthError(403, 'Forbidden: only ops may override a pending fraud review.');
  // A merged customer's id erases its survivor (the same person), whose erasure finds the records
  // merged into it (graph/erasure.ts).
  const { id, merged_into } = await followMerge(deps.graph, asked);
  // Never the survivor's erasure by a merged record's own token.
  if (merged_into) refuseMergedAnswer(actor.principal, PRIVACY_SCOPES, { merged_into });
  const allowed = await guardCustomerAction(deps, id, 'erasure', { ...actor, routeScopes: PRIVACY_SCOPES });
  if (override && !allowed.reason)
    throw new InvalidInputError(
      REASON_HEADER,
      'overriding a pending fraud review needs a reason (header Persona-Reason)',
    );
  const workflowId = erasureWorkflowId(id);
  const options = {
    workflowId,
    taskQueue: taskQueueFor(deps.temporal.taskQueues, ERASURE_WORKFLOW_TYPE),
    args: [{ customer_id: id, ...(deps.erasure ? { wait_deadline: deps.erasure.waitDeadline } : {}) }] as [
      ErasureInput,
    ],
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
  return { workflow_id: workflowId, ...mergedInto(merged_into) };
}

/**
 * Where the customer's erasure is: waiting for a fraud review, erasing, done (a running one
 * answers its status query — 503 when no worker answers it within the request's deadline; a
 * closed one is read from its result, which needs no worker).
 */
export async function erasureStatus(
  deps: ApiDeps,
  asked: string,
): Promise<
  Omit<ErasureStatus, 'state'> & {
    state: ErasureStatus['state'] | 'stopped';
    workflow_id: string;
    running: boolean;
    history_keys_destroyed?: number;
  }
> {
  // A merged customer's id: its survivor's erasure (the one a DELETE of the merged id starts).
  const { id } = await followMerge(deps.graph, asked).catch((err: unknown) => {
    if (err instanceof NotFoundError) return { id: asked };
    throw err;
  });
  const workflowId = erasureWorkflowId(id);
  const handle = deps.temporal.client.workflow.getHandle(workflowId);
  return orNotFound('Erasure', id, async () => {
    const described = await handle.describe();
    const status = described.status.name;
    if (status === 'RUNNING')
      return {
        workflow_id: workflowId,
        running: true,
        ...(await queryWithin(handle, erasureStatusQuery, waitWithinBudget(deps, deps.limits.requestDeadlineMs))),
      };
    if (status !== 'COMPLETED')
      return {
        workflow_id: workflowId,
        running: false,
        state: 'stopped',
        waiting_for: [],
        request: null,
        wait: null,
        overdue: false,
      };
    // The run just described, by its run id: a newer run started since must not make this wait for it.
    const run = deps.temporal.client.workflow.getHandle(workflowId, described.runId);
    const outcome = (await run.result()) as ErasureOutcome;
    return {
      workflow_id: workflowId,
      running: false,
      state: outcome.refused ? 'refused' : 'done',
      waiting_for: [],
      request: outcome.request ?? null,
      wait: null,
      overdue: outcome.overdue ?? false,
      ...(outcome.refused ? { refused: outcome.refused } : {}),
      ...(outcome.deleted.history_keys !== undefined ? { history_keys_destroyed: outcome.deleted.history_keys } : {}),
    };
  });
}
