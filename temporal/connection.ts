/**
 * The Temporal client factory: one Connection and Client per process, built in the entry point
 * and passed down. Also the namespace checks the stack and readiness probes use.
 */
import { InterceptingCall, status as grpcStatus, type Interceptor } from '@grpc/grpc-js';
import type { Connection } from '@temporalio/client';
import {
  Client,
  defaultGrpcRetryOptions,
  WorkflowNotFoundError,
  type ClientPlugin,
  type WorkflowClientInterceptor,
} from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { ClosableConnection, RetryPauses } from './closableConnection';
import { withBookmarks, type SignedBookmarks } from './bookmarks';
import { withRequestId, type Headers } from './requestId';
import { customerWorkflowsQuery, requiredSearchAttributes } from './searchAttributes';
import { temporalTransport, type TemporalTransportSettings } from './transport';

/** Where Temporal is, and how to reach it (TLS, the API key: temporal/transport.ts). */
export interface TemporalSettings extends TemporalTransportSettings {
  TEMPORAL_NAMESPACE: string;
}

export interface ClientOptions {
  /** The request id of the work in progress: it goes with every start and signal (temporal/requestId.ts). */
  requestId?: () => string | undefined;
  /**
   * The bookmarks of this process's writes, signed (temporal/bookmarkSeal.ts): they go with every
   * start, signal and Update, so the workflow's activities read what it wrote before
   * (temporal/bookmarks.ts). Undefined for none.
   */
  bookmarks?: () => Promise<SignedBookmarks[] | undefined>;
  /** E.g. OpenTelemetry tracing (runtime/tracing.ts). */
  plugins?: ClientPlugin[];
  /**
   * Every call but a long poll gets this deadline (its retries included), so a caller waiting
   * on a request never waits longer for an unreachable Temporal; unset, the client's own
   * retries (about 20 s) apply.
   */
  callDeadlineMs?: number;
  /** Connect on the first call instead of now: a process that starts while Temporal is down still starts. */
  lazy?: boolean;
  /**
   * Encrypts every payload sent and decrypts every one received (temporal/payloadCodec.ts).
   * Every client of Persona's workflows has one; only a client that never touches a payload (a
   * namespace check) goes without.
   */
  payloadCodec?: PayloadCodec;
}

/**
 * Calls that wait on purpose (for a new history event; for an Update to be accepted or done,
 * Update-with-Start included): their callers bound them.
 */
const LONG_POLLS = [
  '/GetWorkflowExecutionHistory',
  '/PollWorkflowExecutionUpdate',
  '/UpdateWorkflowExecution',
  '/ExecuteMultiOperation',
];

/**
 * A process whose callers wait reconnects quickly after an outage: grpc-js backs off up to
 * 120 s between reconnection attempts by default, and fails every call in between.
 */
export const QUICK_RECONNECT = {
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 2000,
};

/** A gRPC interceptor that gives every call without a deadline one, `ms` from its start. */
export function callDeadlineInterceptor(ms: number): Interceptor {
  return (options, nextCall) => {
    const path = options.method_definition.path;
    if (options.deadline !== undefined || LONG_POLLS.some((m) => path.endsWith(m)))
      return new InterceptingCall(nextCall(options));
    return new InterceptingCall(nextCall({ ...options, deadline: Date.now() + ms }));
  };
}

export async function connectTemporal(
  settings: TemporalSettings,
  options: ClientOptions = {},
): Promise<{ connection: Connection; client: Client }> {
  const pauses = new RetryPauses();
  const connectionOptions = {
    address: settings.TEMPORAL_ADDRESS,
    // TLS, mTLS and the API key as configured; the files are read (and checked) now.
    ...temporalTransport(settings),
    connectTimeout: '5s',
    // The deadline goes outside the retry interceptor, so it bounds every retry too. Every
    // connection retries through `pauses`, so that closing it never strands a retry's timer.
    interceptors: options.callDeadlineMs
      ? [
          callDeadlineInterceptor(options.callDeadlineMs),
          // Short retries too: the SDK's back off for up to 5 s between attempts, and a call
          // waiting out a back-off outlives its deadline. Four tries within a few hundred ms
          // (a throttled server, RESOURCE_EXHAUSTED, gets longer pauses).
          pauses.interceptor(
            defaultGrpcRetryOptions({
              maxAttempts: 4,
              initialIntervalMs: ({ code }) => (code === grpcStatus.RESOURCE_EXHAUSTED ? 300 : 50),
            }),
          ),
        ]
      : [pauses.interceptor(defaultGrpcRetryOptions())],
    ...(options.callDeadlineMs ? { channelArgs: QUICK_RECONNECT } : {}),
  };
  // `lazy` builds an instance of the class it is called on (`new this`).
  const connection = ClosableConnection.lazy(connectionOptions) as ClosableConnection;
  connection.pauses = pauses;
  if (!options.lazy) await connection.ensureConnected();
  const interceptors =
    options.requestId || options.bookmarks
      ? { workflow: [messageHeadersInterceptor({ requestId: options.requestId, bookmarks: options.bookmarks })] }
      : undefined;
  const client = new Client({
    connection,
    namespace: settings.TEMPORAL_NAMESPACE,
    ...(interceptors ? { interceptors } : {}),
    ...(options.payloadCodec ? { dataConverter: { payloadCodecs: [options.payloadCodec] } } : {}),
    plugins: options.plugins ?? [],
  });
  return { connection, client };
}

/**
 * Puts the current request id and this process's bookmarks on every workflow start,
 * signal-with-start, signal, update and update-with-start (both the start's headers and the update's).
 */
export function messageHeadersInterceptor(
  sources: Pick<ClientOptions, 'requestId' | 'bookmarks'>,
): WorkflowClientInterceptor {
  const headers = async (given: Headers): Promise<Headers> =>
    withBookmarks(withRequestId(given, sources.requestId?.()), await sources.bookmarks?.());
  const tag = async <T extends { headers: Headers }>(input: T): Promise<T> => ({
    ...input,
    headers: await headers(input.headers),
  });
  return {
    startWithDetails: async (input, next) => next(await tag(input)),
    signalWithStart: async (input, next) => next(await tag(input)),
    signal: async (input, next) => next(await tag(input)),
    startUpdate: async (input, next) => next(await tag(input)),
    startUpdateWithStart: async (input, next) =>
      next({
        ...input,
        workflowStartHeaders: await headers(input.workflowStartHeaders),
        updateHeaders: await headers(input.updateHeaders),
      }),
  };
}

/** Resolves when the namespace answers; rejects with the server's error otherwise. */
export async function describeNamespace(connection: Connection, namespace: string, timeoutMs = 3000): Promise<void> {
  await connection.withDeadline(Date.now() + timeoutMs, () =>
    connection.workflowService.describeNamespace({ namespace }),
  );
}

/** Persona's search attributes the namespace lacks (by name), read through the operator API. */
async function lackedSearchAttributes(connection: Connection, namespace: string) {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const custom = existing.customAttributes ?? {};
  return requiredSearchAttributes.filter((a) => !(a.name in custom));
}

/**
 * The names of Persona's search attributes the namespace lacks — a workflow that sets one fails
 * its task until it is registered — or null when the namespace's list cannot be read (an operator
 * API the credentials may not use): the worker refuses to start on the first, warns on the second.
 */
export async function missingSearchAttributes(connection: Connection, namespace: string): Promise<string[] | null> {
  try {
    return (await lackedSearchAttributes(connection, namespace)).map((a) => a.name);
  } catch {
    return null;
  }
}

/** Registers any of Persona's search attributes the namespace lacks. Returns the names it added. */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const missing = await lackedSearchAttributes(connection, namespace);
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map((a) => [a.name, proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
    ),
  });
  return missing.map((a) => a.name);
}

/** Ids of the customer's running workflows (optionally of one type, and but one id). */
export async function runningCustomerWorkflows(
  client: Client,
  customerId: string,
  options: { type?: string; except?: string } = {},
): Promise<string[]> {
  const type = options.type ? ` AND WorkflowType = '${options.type}'` : '';
  const ids: string[] = [];
  for await (const wf of client.workflow.list({
    query: `${customerWorkflowsQuery(customerId)}${type} AND ExecutionStatus = 'Running'`,
  })) {
    if (wf.workflowId !== options.except) ids.push(wf.workflowId);
  }
  return ids;
}

/** Whether the workflow (its latest run) runs, closed, or does not exist (not started, or gone with the retention). */
export async function workflowState(client: Client, workflowId: string): Promise<'running' | 'closed' | 'missing'> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING' ? 'running' : 'closed';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'missing';
    throw err;
  }
}

/** Whether the workflow (its latest run) is running: false when it closed or does not exist. */
export async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
