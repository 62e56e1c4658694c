/**
 * Starting an onboarding: validate and prepare the request (400 before anything starts), then
 * start `onboarding-<Idempotency-Key>` — or find the one that key already started, whose body
 * must be the same — and, when asked, wait for the customer: with the start goes the
 * `customerWritten` Update (Update-with-Start), answered as soon as the customer is written.
 *
 * What a repeated key gets, waiting: its run still running → joined, the same answer once the
 * customer exists; completed → the stored result, nothing started; failed → a new run. No
 * worker within the wait → 503 with Retry-After (the run is kept and a retry joins it); a
 * worker that is just slow → 202 with the workflow id.
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import {
  WorkflowNotFoundError,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { InvalidInputError, InvalidStateError } from '../../graph/errors';
import { onboardingRequestSchema, prepareOnboarding, withoutVerification } from '../../graph/onboardingRequest';
import { toMinorUnits } from '../../payments/money';
import {
  customerWrittenUpdate,
  ONBOARDING_WORKFLOW_TYPE,
  onboardingSummary,
  type OnboardingWritten,
} from '../../temporal/onboarding';
import { DependencyUnavailableError } from '../../runtime/dependencies';
import { domainFailureOf } from '../../temporal/failures';
import { onboardingWorkflowId } from '../../temporal/workflowIds';
import type { onboardingWorkflow } from '../../workflows/onboarding';
import { AuthError, type Principal } from '../auth';
import type { ApiDeps } from '../deps';
import { taskQueueFor } from '../../temporal/taskQueues';

export type OnboardingAnswer =
  | { status: 202; body: { workflow_id: string } }
  | {
      status: 200;
      body: {
        customer_id: string;
        outcome: 'created' | 'matched';
        possible_match_count: number;
        /** Only for callers with identity:merge or ops: the most likely first. */
        possible_matches?: { customer_id: string; probability: number }[];
        workflow_id: string;
      };
    };

/** The same Idempotency-Key with a different body: refused, never silently answered. */
export class IdempotencyKeyReusedError extends InvalidStateError {
  constructor(key: string) {
    super(`Idempotency-Key ${key} was already used with a different request body`);
    this.name = 'IdempotencyKeyReusedError';
  }
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export function requestHash(body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(canonical(body)))
    .digest('hex');
}

/** Only the platform's verification service vouches that an identifier is verified (not even `ops`). */
export function mayVerifyIdentifiers(principal: Principal): boolean {
  return principal.scopes.has('identity:verify');
}

/** Who may see other customers' ids among an onboarding's possible matches: those who review and merge them. */
export function maySeeMatches(principal: Principal): boolean {
  return principal.scopes.has('identity:merge') || principal.scopes.has('ops');
}

/**
 * A segment or an LTV at onboarding is the profile `PUT /profile` reserves to `customers:write`:
 * without it a customer starts as the defaults (segment New, LTV 0) and anything else is refused
 * (403 naming the field) before anything starts — onboarding is no way to mint a VIP.
 */
function refuseProfileWithoutScope(principal: Principal, customer: { segment: string; ltv_minor: number }): void {
  if (principal.scopes.has('customers:write') || principal.scopes.has('ops')) return;
  const field = customer.segment !== 'New' ? 'customer.segment' : customer.ltv_minor !== 0 ? 'customer.ltv' : null;
  if (field)
    throw new AuthError(
      403,
      `Forbidden: ${field} other than the default (segment New, LTV 0) needs the scope customers:write; ` +
        'send the onboarding without it, or with a token that has the scope.',
      { type: 'forbidden-field' },
    );
}

/**
 * The hash an onboarding is known by: over the request as validated (defaults filled in,
 * text trimmed, the LTV in minor units), keys sorted, so the same onboarding sent as REST JSON
 * (any key order, any spacing) and as a gRPC message hashes the same.
 */
export function onboardingHash(currency: string, body: unknown): string {
  const parsed = onboardingRequestSchema(currency).parse(body);
  return requestHash({ ...parsed, customer: { ...parsed.customer, ltv: toMinorUnits(parsed.customer.ltv, currency) } });
}

/**
 * The caller an Idempotency-Key belongs to: the token's subject, else its client id, else none
 * (every such caller shares one key space, as keys did before they were scoped). Another
 * caller's same key names another workflow, so it can neither join nor read the first's run.
 */
export function keyOwner(principal: Principal, authorization?: string): string | null {
  if (principal.subject) return `sub:${principal.subject}`;
  try {
    const claims = authorization ? decodeJwt(authorization.replace(/^Bearer\s+/i, '')) : {};
    const client = claims.client_id ?? claims.azp;
    if (typeof client === 'string' && client) return `client:${client}`;
  } catch {
    // no client id
  }
  return null;
}

/** `onboarding-<key>`, and `@<owner hash>` after it for an owned key (`@` is never in a key). */
export function scopedOnboardingId(key: string, owner: string | null): string {
  const base = onboardingWorkflowId(key);
  return owner ? `${base}@${createHash('sha256').update(owner).digest('hex').slice(0, 16)}` : base;
}

export async function startOnboarding(
  deps: ApiDeps,
  key: string,
  body: unknown,
  wait: boolean,
  principal: Principal,
  /** The bearer header, for a `client_id` claim when the token has no subject. */
  authorization?: string,
): Promise<OnboardingAnswer> {
  const prepared = prepareOnboarding(deps.graph, body);
  refuseProfileWithoutScope(principal, prepared.customer);
  // The workflow carries the decision in its plan: an identifier is verified there only when this caller may say so.
  const plan = mayVerifyIdentifiers(principal) ? prepared : withoutVerification(prepared);
  const hash = onboardingHash(deps.graph.policy.reportingCurrency, body);
  const workflowId = scopedOnboardingId(key, keyOwner(principal, authorization));
  const { client, taskQueues } = deps.temporal;

  const options = {
    taskQueue: taskQueueFor(taskQueues, ONBOARDING_WORKFLOW_TYPE),
    workflowId,
    args: [{ plan }] as [{ plan: typeof plan }],
    // A key whose run completed answers its stored result; one whose run failed (or was
    // terminated) may start again: the caller's retry is not refused forever.
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY' as const,
    // A key whose run is still running joins it.
    workflowIdConflictPolicy: 'USE_EXISTING' as const,
    memo: { request_sha256: hash },
    staticSummary: onboardingSummary(plan),
    staticDetails: `Started by POST /api/v1/onboarding with Idempotency-Key ${key}.`,
  };
  const handle = client.workflow.getHandle<typeof onboardingWorkflow>(workflowId);
  /** The run under the key must be this body's: the same key with another body is refused. */
  const sameBody = async () => {
    const described = await handle.describe();
    const known = described.memo?.request_sha256;
    if (known !== hash) throw new IdempotencyKeyReusedError(key);
    return described;
  };

  if (!wait) {
    try {
      await client.workflow.start<typeof onboardingWorkflow>(ONBOARDING_WORKFLOW_TYPE, options);
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    await sameBody();
    return { status: 202, body: { workflow_id: workflowId } };
  }

  const waited = await startAndWait(deps, options);
  const described = await sameBody().catch((err: unknown) => {
    // The wait ran out before the start reached Temporal: nothing was started; the caller retries.
    if (waited.kind === 'out_of_time' && err instanceof WorkflowNotFoundError)
      throw new DependencyUnavailableError('temporal', `the start of ${workflowId} did not reach Temporal in time`, 5);
    throw err;
  });
  switch (waited.kind) {
    case 'written':
      return { status: 200, body: answer(waited.written, principal) };
    case 'completed_before':
      return { status: 200, body: answer(await handle.result(), principal) };
    case 'refused': {
      // Input the graph refused inside the workflow surfaces as the same 400 the api gives.
      const failure = domainFailureOf(waited.error);
      if (failure?.code === 'invalid_input')
        throw new InvalidInputError(failure.field ?? 'body', failure.reason ?? 'invalid');
      throw waited.error;
    }
    case 'out_of_time':
      // Started and kept (nothing is lost), but no worker took it: a retry with the same key joins it.
      if (described.status.name === 'RUNNING' && described.historyLength <= 2)
        throw new DependencyUnavailableError('temporal', `no worker took ${workflowId} within the wait`, 5);
      return { status: 202, body: { workflow_id: workflowId } };
  }
}

/**
 * The result as this caller may see it: other customers' ids only for those who review matches.
 * The others get a count of the matches a shared email, phone or device found (the caller sent
 * those, so the count tells it of its own values); a match found by the person alone is left out of
 * it, or a name and a birth date would answer "is this person a customer?".
 */
function answer(r: OnboardingWritten, principal: Principal): Extract<OnboardingAnswer, { status: 200 }>['body'] {
  const reviewer = maySeeMatches(principal);
  const countable = reviewer ? r.possible_matches : r.possible_matches.filter((m) => !m.by_person);
  const ranked = r.possible_matches.map((m) => ({ customer_id: m.customer_id, probability: m.probability }));
  return {
    customer_id: r.customer_id,
    outcome: r.outcome,
    possible_match_count: countable.length,
    ...(reviewer ? { possible_matches: ranked } : {}),
    workflow_id: r.workflow_id,
  };
}

type Waited =
  | { kind: 'written'; written: OnboardingWritten }
  | { kind: 'completed_before' }
  | { kind: 'refused'; error: unknown }
  | { kind: 'out_of_time' };

/**
 * Starts the onboarding (or joins the run under the key) together with the `customerWritten`
 * Update, and waits for the Update for at most the wait timeout: it completes as soon as the
 * customer is written, never waiting for Chimera. The long poll is cancelled when the wait is
 * over; the workflow goes on regardless.
 */
async function startAndWait(
  deps: ApiDeps,
  options: WorkflowStartOptions<typeof onboardingWorkflow> & { workflowIdConflictPolicy: 'USE_EXISTING' },
): Promise<Waited> {
  const { client } = deps.temporal;
  const stop = new AbortController();
  let outOfTime = false;
  const timer = setTimeout(() => {
    outOfTime = true;
    stop.abort();
  }, deps.limits.waitTimeoutMs);
  try {
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof onboardingWorkflow>(
      ONBOARDING_WORKFLOW_TYPE,
      options,
    );
    const written = await client.connection.withAbortSignal(stop.signal, () =>
      client.workflow.executeUpdateWithStart(customerWrittenUpdate, { startWorkflowOperation }),
    );
    return { kind: 'written', written };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { kind: 'completed_before' };
    if (err instanceof WorkflowUpdateFailedError) return { kind: 'refused', error: err };
    if (outOfTime) return { kind: 'out_of_time' };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
