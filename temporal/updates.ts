/**
 * Decisions people send to a running workflow (a fraud review, an answer to a recovery that needs
 * attention) go as Workflow Updates: the workflow's validator refuses what it cannot take (not
 * waiting for it, decided already), and the caller learns that at once, with the workflow's
 * own reason, instead of a signal that is accepted and then silently ignored.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { InvalidStateError } from '../graph/errors';

/** What the api says when an Update was refused or could not be sent. */
export type UpdateRefusal =
  /** The validator refused it (or the handler failed): its reason. */
  | { kind: 'refused'; reason: string }
  /** The workflow has no such Update: its worker runs other code than the api (a deployment under way). */
  | { kind: 'unknown_update' }
  /** The workflow ran once and has ended. */
  | { kind: 'ended' }
  /** No workflow with that id ever ran (or its history is past retention). */
  | { kind: 'not_found' };

const UNKNOWN_UPDATE = 'No registered handler for update';

/** The payload codec's WorkflowCustomerUnknownError (by name: this module stays free of the codec's imports). */
const isCustomerUnknown = (err: unknown): boolean =>
  err instanceof Error && (err.name === 'WorkflowCustomerUnknownError' || isCustomerUnknown(err.cause));

/** Classifies an error of `executeUpdate`; undefined when it is something else (a service error). */
export async function updateRefusalOf(err: unknown, handle: WorkflowHandle): Promise<UpdateRefusal | undefined> {
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    const reason = cause instanceof ApplicationFailure || cause instanceof Error ? cause.message : err.message;
    return reason.startsWith(UNKNOWN_UPDATE) ? { kind: 'unknown_update' } : { kind: 'refused', reason };
  }
  // The codec could not name the workflow's customer: it never started, or it closed (or else it runs
  // and this is a service error). The same NOT_FOUND for an Update to a closed run: told apart.
  if (err instanceof WorkflowNotFoundError || isCustomerUnknown(err)) {
    try {
      const described = await handle.describe();
      // Running: the codec's miss was something else (a service error), not a refusal.
      if (!(err instanceof WorkflowNotFoundError) && described.status.name === 'RUNNING') return undefined;
      return { kind: 'ended' };
    } catch (again) {
      if (again instanceof WorkflowNotFoundError) return { kind: 'not_found' };
      throw again;
    }
  }
  return undefined;
}

/**
 * The refusal as the domain error the api answers 409 with (`what` names the process). A worker
 * without the Update is no refusal but a wait: the api answers it 503 (api/services/refusals.ts).
 */
export function refusalError(
  refusal: Exclude<UpdateRefusal, { kind: 'not_found' | 'unknown_update' }>,
  what: string,
): InvalidStateError {
  switch (refusal.kind) {
    case 'refused':
      return new InvalidStateError(`${what}: ${refusal.reason}`);
    case 'ended':
      return new InvalidStateError(`${what} has ended`);
  }
}
