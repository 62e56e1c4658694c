/**
 * Starting an onboarding: validate and prepare the request (400 before anything starts), then
 * start `onboarding-<Idempotency-Key>` — or find the one that key already started, whose body
 * must be the same — and, when asked, wait for its result.
 */
import { createHash } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { InvalidInputError, InvalidStateError } from '../../graph/errors';
import { prepareOnboarding } from '../../graph/onboarding';
import { ONBOARDING_WORKFLOW_TYPE, onboardingSummary, type OnboardingWorkflowResult } from '../../temporal/onboarding';
import { domainFailureOf } from '../../temporal/failures';
import { onboardingWorkflowId } from '../../temporal/workflowIds';
import type { onboardingWorkflow } from '../../workflows/onboarding';
import type { ApiDeps } from '../deps';

export type OnboardingAnswer =
  | { status: 202; body: { workflow_id: string } }
  | {
      status: 200;
      body: { customer_id: string; outcome: 'created' | 'matched'; possible_matches: string[]; workflow_id: string };
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

export async function startOnboarding(
  deps: ApiDeps,
  key: string,
  body: unknown,
  wait: boolean,
): Promise<OnboardingAnswer> {
  const plan = prepareOnboarding(deps.graph, body);
  const hash = requestHash(body);
  const workflowId = onboardingWorkflowId(key);
  const { client, taskQueue } = deps.temporal;

  let handle: WorkflowHandle<typeof onboardingWorkflow>;
  try {
    handle = await client.workflow.start<typeof onboardingWorkflow>(ONBOARDING_WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      args: [{ plan }],
      // A key whose run completed answers its stored result; one whose run failed (or was
      // terminated) may start again: the caller's retry is not refused forever.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      workflowIdConflictPolicy: 'USE_EXISTING',
      memo: { request_sha256: hash },
      staticSummary: onboardingSummary(plan),
      staticDetails: `Started by POST /api/v1/onboarding with Idempotency-Key ${key}.`,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    handle = client.workflow.getHandle<typeof onboardingWorkflow>(workflowId);
  }
  const described = await handle.describe();
  if (described.memo?.request_sha256 !== hash) throw new IdempotencyKeyReusedError(key);

  if (!wait) return { status: 202, body: { workflow_id: workflowId } };
  const result = await waitForResult(deps, handle, deps.limits.waitTimeoutMs);
  if (!result) return { status: 202, body: { workflow_id: workflowId } };
  return {
    status: 200,
    body: {
      customer_id: result.customer_id,
      outcome: result.outcome,
      possible_matches: result.possible_matches,
      workflow_id: workflowId,
    },
  };
}

/**
 * The workflow's result, or null when it takes longer than the timeout (the workflow goes on
 * regardless). The long poll for it is cancelled then too, not left polling until it closes.
 */
async function waitForResult(
  deps: ApiDeps,
  handle: WorkflowHandle<typeof onboardingWorkflow>,
  timeoutMs: number,
): Promise<OnboardingWorkflowResult | null> {
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = deps.temporal.client.connection.withAbortSignal(stop.signal, () => handle.result());
    result.catch(() => undefined); // cancelled below when the wait is over
    return await Promise.race([
      result,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
  } catch (err) {
    // Input the graph refused inside the workflow surfaces as the same 400 the api gives.
    const failure = err instanceof WorkflowFailedError ? domainFailureOf(err) : undefined;
    if (failure?.code === 'invalid_input')
      throw new InvalidInputError(failure.field ?? 'body', failure.reason ?? 'invalid');
    throw err;
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
}
