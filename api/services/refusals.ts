/**
 * How the services answer a call to a workflow that cannot be had, the same way everywhere:
 *
 * - `orNotFound`: a read of (or a call to) a workflow Temporal does not have → NotFoundError (404,
 *   gRPC NOT_FOUND) naming what was asked for;
 * - `queryWithin`: a workflow's query, waited for at most a given time: one that no worker answers
 *   (none polls its task queue: a deploy, a crash) fails with the unavailability every route answers
 *   503 (gRPC UNAVAILABLE) with Retry-After (runtime/unansweredQueries.ts), never a 500;
 * - `updateOrRefusal`: a decision sent as a Workflow Update that the workflow refuses, or cannot
 *   take (ended) → InvalidStateError (409, FAILED_PRECONDITION) with the workflow's own reason; no
 *   such workflow → NotFoundError; a worker without the Update (`unknownUpdate`: a deployment under
 *   way) → DependencyUnavailableError (503, UNAVAILABLE: the same decision again shortly).
 *
 * - `decisionUpdateId`: the Update id of a decision, the same for the same decision by the same
 *   caller, so that a resend (an answer lost, a 503 of unknown outcome) gets the first one's answer.
 *
 * It takes no deps (only a handle or a call), so any service may use it, those the deps import too.
 */
import { createHash } from 'node:crypto';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';
import { InvalidStateError, NotFoundError } from '../../graph/errors';
import { DependencyUnavailableError, workflowUnanswered } from '../../runtime/dependencies';
import { unansweredQuery } from '../../runtime/unansweredQueries';
import { refusalError, updateRefusalOf, type UpdateRefusal } from '../../temporal/updates';

/** `call`'s answer; NotFoundError(entity, id) when Temporal has no such workflow. */
export async function orNotFound<T>(entity: string, id: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError(entity, id);
    throw err;
  }
}

/**
 * The answer of `query` to `handle`'s workflow, waited for at most `ms` (Temporal would wait for a
 * worker up to the call's deadline, or 30 s without one), and never past a deadline the caller set
 * around it. Unanswered — no worker polls the workflow's task queue, none did in time, or its
 * workflow task keeps failing — it fails with `workflowUnanswered` (503), naming the workflow in
 * the logged reason only.
 */
export async function queryWithin<T>(handle: WorkflowHandle, query: QueryDefinition<T, []>, ms: number): Promise<T> {
  // An abort, not a deadline of its own: `withDeadline` would replace a shorter one set around it.
  const call = new AbortController();
  const timer = setTimeout(() => call.abort(), ms);
  try {
    return await handle.client.connection.withAbortSignal(call.signal, () => handle.query(query));
  } catch (err) {
    const why = call.signal.aborted ? 'timed_out' : unansweredQuery(err);
    if (why) throw workflowUnanswered(why, `${handle.workflowId} did not answer ${query.name} within ${ms} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The Update id of `decision` by `requester` (a token's subject): a digest of both, under `kind`.
 * Temporal takes one Update per id and answers a resend with the first one's outcome, so a caller
 * who lost the answer and sends the same decision again is told what was decided, not refused as
 * "answered already"; another decision, or the same by someone else, is a new Update, which the
 * workflow's validator judges. Only for a decision that names what it answers (the attention's
 * `since`, the review of an outcome that has one): the same words about a later question must not
 * be taken for a resend. Undefined (each request an Update of its own, judged by the validator)
 * for a token without a subject: callers who cannot be told apart must not get each other's answer.
 */
export function decisionUpdateId(kind: string, requester: string | null, decision: unknown): string | undefined {
  if (!requester) return undefined;
  const digest = createHash('sha256')
    .update(JSON.stringify([requester, decision]))
    .digest('base64url');
  return `${kind}:${digest}`;
}

/** The workflow an Update goes to, as a refusal names it. */
export interface UpdateTarget {
  /** NotFoundError's entity when no workflow has the id: `PaymentRecovery`. */
  entity: string;
  id: string;
  /** How a 409's message names it: `payment recovery <id>`. */
  what: string;
}

/** Refusals a caller answers otherwise than with the usual 409. */
export interface RefusalAnswers {
  /** The 409's message for a workflow that has ended (default: "<what> has ended"). */
  ended?: string;
}

/**
 * `update`'s answer (an Update sent to `handle`'s workflow). When it is refused: NotFoundError for
 * no such workflow; InvalidStateError with the validator's reason, or saying the workflow has ended
 * (unless `answers` says otherwise); a worker without the Update: `unknownUpdate`. Any other
 * failure (a service error) is thrown as it is.
 */
export async function updateOrRefusal<T>(
  handle: WorkflowHandle,
  update: () => Promise<T>,
  target: UpdateTarget,
  answers: RefusalAnswers = {},
): Promise<T> {
  let refusal: UpdateRefusal | undefined;
  try {
    return await update();
  } catch (err) {
    refusal = await updateRefusalOf(err, handle);
    if (!refusal) throw err;
  }
  if (refusal.kind === 'not_found') throw new NotFoundError(target.entity, target.id);
  if (refusal.kind === 'unknown_update') throw unknownUpdate(target.what);
  if (refusal.kind === 'ended' && answers.ended !== undefined) throw new InvalidStateError(answers.ended);
  throw refusalError(refusal, target.what);
}

/**
 * The worker that runs `what` has no handler for the Update: it runs other code than the api (a
 * deployment under way, or one rolled back). A wait, not a refusal: 503, and the same decision
 * sent again shortly (under its own Update id) is taken once a worker that knows it runs the workflow.
 */
export function unknownUpdate(what: string): DependencyUnavailableError {
  return new DependencyUnavailableError(
    'temporal',
    `${what} does not take this decision: its worker runs other code than the api (a deployment under way)`,
    5,
  );
}
