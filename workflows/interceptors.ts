/**
 * Workflow interceptors (registered by the worker): the request id that started a workflow —
 * the `persona-request-id` header the api's client sets — joins every log line of the workflow
 * (beside the workflow id and run id the SDK adds) and travels on with each activity it
 * schedules, each workflow it signals or starts, and its continue-as-new run. A signal that
 * comes from another request is logged with that request's id. The api's bookmarks (the
 * `persona-bookmarks` header, temporal/bookmarks.ts) travel the same way: the start's messages and
 * the latest of its signals and Updates go with each activity, which checks their signatures and reads at
 * or past what the api wrote before them.
 *
 * And no workflow acts on a payload Persona's codec did not write (temporal/payloadCodec.ts): a
 * workflow whose input was refused fails at once, before its code runs; a refused signal is
 * dropped, a refused Update rejected, a refused query answered with an error. Nor on a message
 * whose payload is missing or not of its name's shape (temporal/messageShapes.ts — a signal or
 * Update sent by hand with no input, which the codec never sees): the signal is logged and
 * dropped, the Update rejected before it is accepted. No message fails a workflow task.
 *
 * And a customer workflow that closes (completes, fails or is cancelled; not a continue-as-new)
 * tells the worker, which removes it from its customer's open processes (graph/openProcesses.ts)
 * through the `openProcesses` sink: outside the workflow's commands, never on replay.
 */
import {
  ApplicationFailure,
  ContinueAsNew,
  log,
  proxySinks,
  TemporalFailure,
  workflowInfo,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';
import { isOpenProcessWorkflow, type OpenProcessSinks } from '../temporal/openProcesses';
import { PAYLOAD_REFUSED_TYPE, refusedPayloadReason } from '../temporal/refusedPayload';
import { malformedSignal, malformedUpdate } from '../temporal/messageShapes';
import {
  bookmarksOf,
  carriedOf,
  heldFromStart,
  mergeBookmarks,
  withBookmarks,
  type HeldBookmarks,
} from '../temporal/bookmarks';
import { requestIdOf, withRequestId, type Headers } from '../temporal/requestId';

function refuseMarkedResult(result: unknown): unknown {
  const reason = refusedPayloadReason([result]);
  if (reason) throw refused(reason, 'an activity result was refused');
  return result;
}

const { openProcesses } = proxySinks<OpenProcessSinks>();

/** Runs the workflow; when it closes (an error that fails or cancels it, or a result), says so. */
async function closingOpenProcess<T>(run: () => Promise<T>): Promise<T> {
  if (!isOpenProcessWorkflow(workflowInfo().workflowId)) return run();
  try {
    const result = await run();
    openProcesses.closed();
    return result;
  } catch (err) {
    // Another error fails the workflow task, not the workflow: it is retried, still open.
    if (err instanceof TemporalFailure && !(err instanceof ContinueAsNew)) openProcesses.closed();
    throw err;
  }
}

/** Why an Update is refused: a payload the codec refused, or one not of its name's shape; null if neither. */
const updateRefusal = (name: string, args: readonly unknown[]): string | null =>
  refusedPayloadReason(args) ?? malformedUpdate(name, args);

/** True (and logged) when a signal is dropped: a payload the codec refused, or one not of its name's shape. */
function droppedSignal(name: string, args: readonly unknown[]): boolean {
  const reason = refusedPayloadReason(args);
  if (reason) log.error(`signal ${name} refused and dropped`, { reason });
  const malformed = reason ? null : malformedSignal(name, args);
  if (malformed) log.warn(`signal ${name} dropped: ${malformed}`, { reason: malformed });
  return reason !== null || malformed !== null;
}

function refused(reason: string, what: string): ApplicationFailure {
  return ApplicationFailure.create({ type: PAYLOAD_REFUSED_TYPE, message: `${what}: ${reason}`, nonRetryable: true });
}

export const interceptors: WorkflowInterceptorsFactory = () => {
  // One closure per workflow execution: the factory runs once for each.
  let requestId: string | undefined;
  // Set from the start and each message's headers, all in the history: the same on replay.
  let bookmarks: HeldBookmarks | undefined;
  const onward = (headers: Headers): Headers => withBookmarks(withRequestId(headers, requestId), carriedOf(bookmarks));
  return {
    internals: [
      {
        // Read at the first activation, before its signals and the SDK's "Workflow started" line.
        activate: (input, next) => {
          const init = input.activation.jobs?.[0]?.initializeWorkflow;
          if (init) {
            requestId = requestIdOf(init.headers);
            bookmarks = heldFromStart(bookmarksOf(init.headers));
          }
          return next(input);
        },
      },
    ],
    inbound: [
      {
        execute: (input, next) => {
          const reason = refusedPayloadReason(input.args);
          if (reason) {
            log.error('workflow input refused: the workflow does nothing and fails', { reason });
            // Rejected, not thrown: a throw here would fail the workflow task (again and again), not the workflow.
            return Promise.reject(refused(reason, 'the workflow input was refused'));
          }
          return closingOpenProcess(() => next(input));
        },
        validateUpdate: (input, next) => {
          const reason = updateRefusal(input.name, input.args);
          if (reason) throw refused(reason, `the ${input.name} Update was refused`);
          next(input);
        },
        handleUpdate: (input, next) => {
          // Updates without a validator reach here. Shapes are checked in validateUpdate only: a
          // validator never runs on replay, and an Update the history accepted is handled again as it was.
          const reason = refusedPayloadReason(input.args);
          if (reason) return Promise.reject(refused(reason, `the ${input.name} Update was refused`));
          bookmarks = mergeBookmarks(bookmarks, bookmarksOf(input.headers));
          return next(input);
        },
        handleQuery: (input, next) => {
          const reason = refusedPayloadReason(input.args);
          if (reason) return Promise.reject(refused(reason, `the ${input.queryName} query was refused`));
          return next(input);
        },
        handleSignal: (input, next) => {
          if (droppedSignal(input.signalName, input.args)) return Promise.resolve();
          const from = requestIdOf(input.headers);
          if (from && from !== requestId) log.info(`signal ${input.signalName} received`, { signalRequestId: from });
          bookmarks = mergeBookmarks(bookmarks, bookmarksOf(input.headers));
          return next(input);
        },
      },
    ],
    outbound: [
      {
        getLogAttributes: (input, next) => (requestId ? { ...next(input), requestId } : next(input)),
        signalWorkflow: (input, next) => next({ ...input, headers: onward(input.headers) }),
        startChildWorkflowExecution: (input, next) => next({ ...input, headers: onward(input.headers) }),
        continueAsNew: (input, next) => next({ ...input, headers: onward(input.headers) }),
        // An activity result the codec refused (one completed by id, straight at Temporal, with a
        // payload Persona did not write) is never handed to the workflow's code: the workflow fails.
        scheduleActivity: async (input, next) =>
          refuseMarkedResult(await next({ ...input, headers: onward(input.headers) })),
        scheduleLocalActivity: async (input, next) =>
          refuseMarkedResult(await next({ ...input, headers: onward(input.headers) })),
      },
    ],
  };
};
