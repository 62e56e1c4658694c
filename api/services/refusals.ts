/**
 * How the services answer a call to a workflow that cannot be had, the same way everywhere:
 *
 * - `orNotFound`: a read of (or a call to) a workflow Temporal does not have → NotFoundError (404,
 *   gRPC NOT_FOUND) naming what was asked for;
 * - `updateOrRefusal`: a decision sent as a Workflow Update that the workflow refuses, or cannot
 *   take (ended, started before the Update existed) → InvalidStateError (409, FAILED_PRECONDITION)
 *   with the workflow's own reason; no such workflow → NotFoundError.
 *
 * It takes no deps (only a handle or a call), so any service may use it, those the deps import too.
 */
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { InvalidStateError, NotFoundError } from '../../graph/errors';
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

/** The workflow an Update goes to, as a refusal names it. */
export interface UpdateTarget {
  /** NotFoundError's entity when no workflow has the id: `PaymentRecovery`. */
  entity: string;
  id: string;
  /** How a 409's message names it: `payment recovery <id>`. */
  what: string;
}

/** Refusals a caller answers otherwise than with the usual 409. */
export interface RefusalAnswers<T> {
  /** The 409's message for a workflow that has ended (default: "<what> has ended"). */
  ended?: string;
  /** A run started before the Update existed: answered by this instead (e.g. the decision as a signal). */
  unknownUpdate?: () => Promise<T>;
}

/**
 * `update`'s answer (an Update sent to `handle`'s workflow). When it is refused: NotFoundError for
 * no such workflow; InvalidStateError with the validator's reason, or saying the workflow has ended
 * or was started before it could take this decision (unless `answers` says otherwise). Any other
 * failure (a service error) is thrown as it is.
 */
export async function updateOrRefusal<T>(
  handle: WorkflowHandle,
  update: () => Promise<T>,
  target: UpdateTarget,
  answers: RefusalAnswers<T> = {},
): Promise<T> {
  let refusal: UpdateRefusal | undefined;
  try {
    return await update();
  } catch (err) {
    refusal = await updateRefusalOf(err, handle);
    if (!refusal) throw err;
  }
  if (refusal.kind === 'not_found') throw new NotFoundError(target.entity, target.id);
  if (refusal.kind === 'ended' && answers.ended !== undefined) throw new InvalidStateError(answers.ended);
  if (refusal.kind === 'unknown_update' && answers.unknownUpdate) return answers.unknownUpdate();
  throw refusalError(refusal, target.what);
}
