/**
 * The worker's logs: one JSON logger (pino) for the process, the SDK and the workflows.
 *   - SDK lines (workflow `log`, activity `log`, the worker's own) arrive with the workflow id,
 *     run id, type and — through the interceptors below — the request id as top-level fields;
 *   - any other line written while an activity runs (a client, the notification sink) gets the
 *     same fields from the activity's context;
 *   - the request id that started a workflow reaches its activities in the `persona-request-id`
 *     header (workflows/interceptors.ts puts it there), and the api's bookmarks in
 *     `persona-bookmarks` (temporal/bookmarks.ts).
 */
import { fileURLToPath } from 'node:url';
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  DefaultLogger,
  type ActivityInterceptorsFactory,
  type LogLevel,
  type TelemetryOptions,
  type WorkerInterceptors,
} from '@temporalio/worker';
import { activityFailureInterceptor } from '../activities/failures';
import { bookmarksReached, currentEpoch } from '../graph/bookmarks';
import { NotFoundError } from '../graph/errors';
import { onTheLeader, readsOnTheLeader, withCarriedBookmarks, type Graph } from '../graph/graph';
import type { Logger } from '../runtime/logger';
import type { RequestContext } from '../runtime/requestContext';
import { PAYLOAD_REFUSED_TYPE, refusedPayloadReason } from '../temporal/refusedPayload';
import { bookmarksOf } from '../temporal/bookmarks';
import { checkBookmarks } from '../temporal/bookmarkSeal';
import type { KeyRing } from '../config/keyRing';
import { requestIdOf } from '../temporal/requestId';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};
const SDK_LEVEL: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

/** The SDK's log entries as fields of one JSON line: the same names for workflows and activities. */
export function sdkLogFields(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!meta) return {};
  const { workflowRunId, taskToken: _taskToken, error, ...rest } = meta;
  return {
    ...rest,
    ...(workflowRunId !== undefined ? { runId: workflowRunId } : {}),
    // pino serialises an Error only under `err`.
    ...(error !== undefined ? { err: error } : {}),
  };
}

/** The Runtime's logger: the SDK's lines (workflows, activities, the worker) through `logger`. */
export function sdkLogger(logger: Logger): DefaultLogger {
  return new DefaultLogger(SDK_LEVEL[logger.level] ?? 'INFO', ({ level, message, meta }) =>
    logger[LEVELS[level]](sdkLogFields(meta), message),
  );
}

/**
 * The SDK core's own lines (Rust: connection retries, polling, task failures) forwarded to the
 * Runtime's logger, so they are JSON lines like every other, not coloured text on stderr. Core
 * says WARN and worse (a quieter logger drops more); its third-party crates only ERROR.
 */
export function coreLogForwarding(logger: Logger): NonNullable<TelemetryOptions['logging']> {
  const quiet = ['error', 'fatal', 'silent'].includes(logger.level);
  return { filter: { core: quiet ? 'ERROR' : 'WARN', other: 'ERROR' }, forward: {} };
}

/**
 * Fields for a log line written while an activity runs: which workflow, run, activity and
 * request it serves. Outside an activity, just the request id when there is one.
 */
export function activityLogContext(requests: RequestContext): () => Record<string, unknown> {
  return () => {
    const requestId = requests.requestId;
    const fields: Record<string, unknown> = requestId ? { requestId } : {};
    let info: Context['info'];
    try {
      info = Context.current().info;
    } catch {
      return fields;
    }
    return {
      ...fields,
      workflowId: info.workflowExecution?.workflowId,
      runId: info.workflowExecution?.runId,
      workflowType: info.workflowType,
      activityType: info.activityType,
      activityId: info.activityId,
      attempt: info.attempt,
    };
  };
}

/** Activities run inside their request's scope, and their SDK log lines name the request. */
export function requestIdActivityInterceptor(requests: RequestContext): ActivityInterceptorsFactory {
  return () => {
    let requestId: string | undefined;
    return {
      inbound: {
        execute: (input, next) => {
          requestId = requestIdOf(input.headers);
          // An activity acts on no payload Persona's codec did not write (temporal/payloadCodec.ts).
          const reason = refusedPayloadReason(input.args);
          if (reason)
            throw ApplicationFailure.create({
              type: PAYLOAD_REFUSED_TYPE,
              message: `the activity input was refused: ${reason}`,
              nonRetryable: true,
            });
          return requestId ? requests.run({ requestId }, () => next(input)) : next(input);
        },
      },
      outbound: {
        getLogAttributes: (attributes, next) => (requestId ? { ...next(attributes), requestId } : next(attributes)),
      },
    };
  };
}

/**
 * An activity that fails with "not found" is run once more with every read on the leader
 * (graph/graph.ts `onTheLeader`): on a cluster its reads may have gone to a follower behind a write
 * the api has just made (the customer it was started for, a card just added). Only the leader's
 * "not found" goes back to the workflow. A second run is what a retry would do: every activity is
 * idempotent.
 */
export function leaderOnNotFoundActivityInterceptor(): ActivityInterceptorsFactory {
  return () => ({
    inbound: {
      execute: async (input, next) => {
        try {
          return await next(input);
        } catch (err) {
          if (!(err instanceof NotFoundError) || readsOnTheLeader()) throw err;
          return onTheLeader(() => next(input));
        }
      },
    },
  });
}

/**
 * An activity's sessions wait for the bookmarks its workflow carries (temporal/bookmarks.ts): what
 * the api wrote before it started or signalled the workflow. Only those whose signature holds under
 * the payload key ring (temporal/bookmarkSeal.ts), of the graph's epoch: of an earlier one, they were
 * taken before a restore, of a store that is gone (not said: expected); of a later one, no store's
 * (said, as is every message whose signature does not hold or whose key the ring lacks). Checked
 * once first, in one transaction the driver does not retry: bookmarks the member does not reach
 * within Neo4j's wait (a follower that lags that far) cost that one wait, and the activity then
 * runs with every read on the leader, which has every commit.
 */
export function carriedBookmarksActivityInterceptor(graph: Graph, keys: KeyRing): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      execute: async (input, next) => {
        const carried = bookmarksOf(input.headers);
        if (!carried) return next(input);
        // Unknown (Neo4j unreachable now): the latest epoch signed is taken, and the check below
        // costs one wait at most.
        const epoch = await currentEpoch(graph.driver, graph.database).catch(() => undefined);
        const { bookmarks, refused, unknownKeys, ahead } = checkBookmarks(keys, carried, epoch);
        if (refused > 0) ctx.log.warn('bookmarks whose signature does not hold: ignored', { refused });
        if (unknownKeys.length > 0)
          ctx.log.warn('bookmarks signed by a key the ring does not hold (retired, or made up): ignored', {
            unknownKeys,
          });
        if (ahead > 0) ctx.log.warn('bookmarks of an epoch the graph has not reached: ignored', { ahead, epoch });
        if (bookmarks.length === 0) return next(input);
        if (!(await bookmarksReached(graph, bookmarks))) return onTheLeader(() => next(input));
        return withCarriedBookmarks(bookmarks, () => next(input));
      },
    },
  });
}

/** The workflow interceptors module (it goes into the workflow bundle). */
export const WORKFLOW_INTERCEPTORS = fileURLToPath(new URL('../workflows/interceptors.ts', import.meta.url));

/**
 * What every Persona worker (the process, test harnesses) registers: the one conversion of an
 * activity's errors (activities/failures.ts), request ids, in and out; with `bookmarks` (its graph
 * and the payload key ring), the workflows' bookmarks too.
 */
export function workerInterceptors(
  requests: RequestContext,
  bookmarks?: { graph: Graph; keys: KeyRing },
): WorkerInterceptors {
  return {
    workflowModules: [WORKFLOW_INTERCEPTORS],
    activity: [
      activityFailureInterceptor(),
      requestIdActivityInterceptor(requests),
      ...(bookmarks ? [carriedBookmarksActivityInterceptor(bookmarks.graph, bookmarks.keys)] : []),
      leaderOnNotFoundActivityInterceptor(),
    ],
  };
}

/** The interceptors with one more activity interceptor, innermost (run after every other). */
export function withActivityInterceptor(
  interceptors: WorkerInterceptors,
  innermost: ActivityInterceptorsFactory,
): WorkerInterceptors {
  return { ...interceptors, activity: [...(interceptors.activity ?? []), innermost] };
}
