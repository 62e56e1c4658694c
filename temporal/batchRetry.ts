/**
 * Ops' one command after an outage (`npm run ops:retry-recoveries`, scripts/retry-recoveries.ts):
 * a Temporal batch operation that sends `retryAttention` to every running recovery waiting for
 * ops for one reason — by default `charge_unknown`, what a gateway outage leaves behind — found
 * by the search attributes the recovery keeps current (temporal/searchAttributes.ts). Each one
 * then does what ops' `retry` would (temporal/recovery.ts retryAttentionSignal).
 *
 * The signal carries no input. Every payload a worker acts on must come from Persona's codec,
 * which binds it to one workflow id (temporal/payloadCodec.ts); a batch sends one payload to many
 * workflows, so any payload would be refused by all of them. Nothing is needed anyway: the
 * recovery knows what it waits for, and the batch's job id, reason and identity are in
 * Temporal's record of the batch (and the signal's identity in each history).
 */
import type { Connection } from '@temporalio/client';
import { status as grpcStatus } from '@grpc/grpc-js';
import proto from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RECOVERY_WORKFLOW_TYPE, retryAttentionSignal, type AttentionReason } from './recovery';
import { personaAttentionReason, personaRecoveryState } from './searchAttributes';

type WorkflowService = Connection['workflowService'];
const { BatchOperationState } = proto.temporal.api.enums.v1;

/**
 * The reasons a `retry` can clear without a person deciding anything: the gateway or the graph
 * was away (charge_unknown: the same key is sent again; record_failed: the record is written
 * again) or refused a request whose cause ops fixed (charge_refused). `graph_restored` is not one:
 * what the recovery acts on is gone, and ops decide recovery by recovery.
 */
export const BATCH_RETRYABLE_REASONS = [
  'charge_unknown',
  'charge_refused',
  'record_failed',
] as const satisfies readonly AttentionReason[];
export type BatchRetryableReason = (typeof BATCH_RETRYABLE_REASONS)[number];

export class BatchRetryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BatchRetryError';
  }
}

/**
 * The visibility query for the running recoveries waiting for ops for `reason` — the same text
 * ops can paste into the Temporal UI. `taskQueue` narrows it to the recoveries started on one
 * task queue: a test's own (tests share a namespace with other runs). A deployment's recoveries run
 * on its charges queue (temporal/taskQueues.ts), which the type already selects: ops leave it out.
 */
export function blockedRecoveriesQuery(reason: BatchRetryableReason, options: { taskQueue?: string } = {}): string {
  if (!(BATCH_RETRYABLE_REASONS as readonly string[]).includes(reason))
    throw new BatchRetryError(`${reason} is not retried in a batch (one of ${BATCH_RETRYABLE_REASONS.join(', ')})`);
  const clauses = [
    `WorkflowType = '${RECOVERY_WORKFLOW_TYPE}'`,
    `ExecutionStatus = 'Running'`,
    `${personaRecoveryState.name} = 'needs_attention'`,
    `${personaAttentionReason.name} = '${reason}'`,
  ];
  if (options.taskQueue !== undefined) {
    if (!/^[\w.:-]+$/.test(options.taskQueue)) throw new BatchRetryError(`not a task queue name: ${options.taskQueue}`);
    clauses.push(`TaskQueue = '${options.taskQueue}'`);
  }
  return clauses.join(' AND ');
}

/** How many running workflows the query matches now (visibility: seconds behind at most). */
export async function countMatching(service: WorkflowService, namespace: string, query: string): Promise<number> {
  const res = await service.countWorkflowExecutions({ namespace, query });
  return toNumber(res.count);
}

/** The first `limit` workflow ids the query matches, for a dry run to show. */
export async function someMatching(
  service: WorkflowService,
  namespace: string,
  query: string,
  limit = 10,
): Promise<string[]> {
  const res = await service.listWorkflowExecutions({ namespace, query, pageSize: limit });
  return (res.executions ?? []).map((e) => e.execution?.workflowId ?? '').slice(0, limit);
}

export interface BatchRetryRequest {
  namespace: string;
  reason: BatchRetryableReason;
  /** Why, in words: Temporal keeps it with the batch (the UI's Batch Operations, `describe`). */
  reasonText: string;
  /** Who sends it: the batch's identity, and each signal's in the recoveries' histories. */
  identity: string;
  /** Default: `retry-recoveries-<reason>-<time>`. A job id already used is refused by Temporal. */
  jobId?: string;
  /** Signals per second; unset, the server's default (worker.batcherRPS, 50). */
  maxOperationsPerSecond?: number;
  taskQueue?: string;
}

/** Starts the batch; answers its job id. */
export async function startRetryBatch(service: WorkflowService, r: BatchRetryRequest): Promise<string> {
  const jobId = r.jobId ?? `retry-recoveries-${r.reason}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  if (r.reasonText.trim() === '') throw new BatchRetryError('a batch needs a reason (--reason-text)');
  try {
    await service.startBatchOperation({
      namespace: r.namespace,
      jobId,
      visibilityQuery: blockedRecoveriesQuery(r.reason, { taskQueue: r.taskQueue }),
      reason: r.reasonText,
      ...(r.maxOperationsPerSecond ? { maxOperationsPerSecond: r.maxOperationsPerSecond } : {}),
      // No input and no header: nothing for the codec to bind to one workflow (above).
      signalOperation: { signal: retryAttentionSignal.name, identity: r.identity },
    });
  } catch (err) {
    if (grpcCode(err) === grpcStatus.RESOURCE_EXHAUSTED)
      throw new BatchRetryError(
        'Temporal runs as many batch operations in this namespace as it allows ' +
          '(frontend.MaxConcurrentBatchOperationPerNamespace, 1 by default): wait for the other one ' +
          `(temporal batch list) and run this again. (${errorMessage(err)})`,
      );
    if (grpcCode(err) === grpcStatus.ALREADY_EXISTS)
      throw new BatchRetryError(`a batch with job id ${jobId} exists already: choose another`);
    throw err;
  }
  return jobId;
}

export interface BatchProgress {
  jobId: string;
  state: 'running' | 'completed' | 'failed' | 'unknown';
  /** Recoveries the batch found (0 until it has counted them). */
  total: number;
  /** Signalled. */
  complete: number;
  /** Not signalled: the recovery ended meanwhile, or Temporal refused the signal. */
  failed: number;
}

const STATES: Record<number, BatchProgress['state']> = {
  [BatchOperationState.BATCH_OPERATION_STATE_RUNNING]: 'running',
  [BatchOperationState.BATCH_OPERATION_STATE_COMPLETED]: 'completed',
  [BatchOperationState.BATCH_OPERATION_STATE_FAILED]: 'failed',
};

export async function describeBatch(
  service: WorkflowService,
  namespace: string,
  jobId: string,
): Promise<BatchProgress> {
  const res = await service.describeBatchOperation({ namespace, jobId });
  return {
    jobId,
    state: STATES[res.state ?? 0] ?? 'unknown',
    total: toNumber(res.totalOperationCount),
    complete: toNumber(res.completeOperationCount),
    failed: toNumber(res.failureOperationCount),
  };
}

export interface WaitOptions {
  /** Between two looks (default 1 s). */
  pollMs?: number;
  /** Called with each look whose figures differ from the last one's. */
  onProgress?: (p: BatchProgress) => void;
  /** Give up after this long (default: never; the batch goes on without us). */
  timeoutMs?: number;
}

/** Polls the batch until it has ended; answers its last figures. */
export async function waitForBatch(
  service: WorkflowService,
  namespace: string,
  jobId: string,
  options: WaitOptions = {},
): Promise<BatchProgress> {
  const started = Date.now();
  let last = '';
  for (;;) {
    let p: BatchProgress;
    try {
      p = await describeBatch(service, namespace, jobId);
    } catch (err) {
      // Just started: the batch may not be visible for a moment.
      if (grpcCode(err) !== grpcStatus.NOT_FOUND || Date.now() - started > 30_000) throw err;
      p = { jobId, state: 'unknown', total: 0, complete: 0, failed: 0 };
    }
    const seen = JSON.stringify(p);
    if (seen !== last) options.onProgress?.(p);
    last = seen;
    if (p.state === 'completed' || p.state === 'failed') return p;
    if (options.timeoutMs !== undefined && Date.now() - started > options.timeoutMs)
      throw new BatchRetryError(`batch ${jobId} still running after ${options.timeoutMs} ms (it goes on)`);
    await sleep(options.pollMs ?? 1000);
  }
}

/** Whether a finished batch signalled every recovery it found. */
export function batchSucceeded(p: BatchProgress): boolean {
  return p.state === 'completed' && p.failed === 0;
}

function toNumber(v: { toString(): string } | number | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : Number(v.toString());
}

function grpcCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? (err as { code?: number }).code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
