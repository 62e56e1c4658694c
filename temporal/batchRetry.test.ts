import { status as grpcStatus } from '@grpc/grpc-js';
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import {
  batchSucceeded,
  blockedRecoveriesQuery,
  BatchRetryError,
  startRetryBatch,
  waitForBatch,
  type BatchProgress,
} from './batchRetry';
import type { Connection } from '@temporalio/client';

type WorkflowService = Connection['workflowService'];
const { BatchOperationState } = proto.temporal.api.enums.v1;

/** A workflow service that records what it was asked and answers from a script. */
function fakeService(answers: { start?: () => unknown; describe?: (() => unknown)[] } = {}) {
  const started: Record<string, unknown>[] = [];
  let looks = 0;
  const service = {
    startBatchOperation: (req: Record<string, unknown>) => {
      started.push(req);
      return Promise.resolve(answers.start?.() ?? {});
    },
    describeBatchOperation: () => {
      const next = answers.describe?.[Math.min(looks, (answers.describe?.length ?? 1) - 1)];
      looks += 1;
      return Promise.resolve().then(() => next?.());
    },
  } as unknown as WorkflowService;
  return { service, started, looks: () => looks };
}

const grpcError = (code: number) => Object.assign(new Error(`code ${code}`), { code });
const batch = (state: number, total: number, complete: number, failure: number) => () => ({
  state,
  totalOperationCount: total,
  completeOperationCount: complete,
  failureOperationCount: failure,
});

describe('blockedRecoveriesQuery', () => {
  it('finds the running recoveries waiting for ops for one reason, by the search attributes the recovery keeps', () => {
    expect(blockedRecoveriesQuery('charge_unknown')).toBe(
      "WorkflowType = 'paymentRecoveryWorkflow' AND ExecutionStatus = 'Running' AND " +
        "PersonaRecoveryState = 'needs_attention' AND PersonaAttentionReason = 'charge_unknown'",
    );
    expect(blockedRecoveriesQuery('record_failed', { taskQueue: 'e2e-1' })).toMatch(
      /PersonaAttentionReason = 'record_failed' AND TaskQueue = 'e2e-1'$/,
    );
  });

  it('refuses a reason a batch does not retry, and anything that is not a task queue name', () => {
    expect(() => blockedRecoveriesQuery('graph_restored' as never)).toThrow(BatchRetryError);
    expect(() => blockedRecoveriesQuery("x' OR 'a' = 'a" as never)).toThrow(BatchRetryError);
    expect(() => blockedRecoveriesQuery('charge_unknown', { taskQueue: "q' OR WorkflowId != '" })).toThrow(
      BatchRetryError,
    );
  });
});

describe('startRetryBatch', () => {
  const request = {
    namespace: 'default',
    reason: 'charge_unknown' as const,
    reasonText: 'gateway back after INC-1',
    identity: 'ops',
  };

  it('sends retryAttention without input or header (no payload to bind to one workflow), over the query', async () => {
    const { service, started } = fakeService();
    const jobId = await startRetryBatch(service, { ...request, maxOperationsPerSecond: 5 });
    expect(jobId).toMatch(/^retry-recoveries-charge_unknown-\d{4}-\d\d-\d\dT[\d-]+Z$/);
    expect(started).toEqual([
      {
        namespace: 'default',
        jobId,
        visibilityQuery: blockedRecoveriesQuery('charge_unknown'),
        reason: 'gateway back after INC-1',
        maxOperationsPerSecond: 5,
        signalOperation: { signal: 'retryAttention', identity: 'ops' },
      },
    ]);
  });

  it('says what to do when another batch runs, or the job id is taken; needs a reason', async () => {
    const busy = fakeService({
      start: () => {
        throw grpcError(grpcStatus.RESOURCE_EXHAUSTED);
      },
    });
    await expect(startRetryBatch(busy.service, request)).rejects.toThrow(/wait for the other one/);
    const taken = fakeService({
      start: () => {
        throw grpcError(grpcStatus.ALREADY_EXISTS);
      },
    });
    await expect(startRetryBatch(taken.service, { ...request, jobId: 'j' })).rejects.toThrow(/j exists already/);
    const unnamed = fakeService();
    await expect(startRetryBatch(unnamed.service, { ...request, reasonText: ' ' })).rejects.toThrow(/reason/);
    expect(unnamed.started).toEqual([]);
  });
});

describe('waitForBatch', () => {
  it('polls until the batch ends, telling each change once, and answers its last figures', async () => {
    const seen: BatchProgress[] = [];
    const { service, looks } = fakeService({
      describe: [
        () => {
          throw grpcError(grpcStatus.NOT_FOUND);
        },
        batch(BatchOperationState.BATCH_OPERATION_STATE_RUNNING, 3, 1, 0),
        batch(BatchOperationState.BATCH_OPERATION_STATE_RUNNING, 3, 1, 0),
        batch(BatchOperationState.BATCH_OPERATION_STATE_COMPLETED, 3, 2, 1),
      ],
    });
    const done = await waitForBatch(service, 'default', 'job', { pollMs: 1, onProgress: (p) => seen.push(p) });
    expect(done).toEqual({ jobId: 'job', state: 'completed', total: 3, complete: 2, failed: 1 });
    expect(looks()).toBe(4);
    expect(seen.map((p) => [p.state, p.complete, p.failed])).toEqual([
      ['unknown', 0, 0],
      ['running', 1, 0],
      ['completed', 2, 1],
    ]);
    expect(batchSucceeded(done)).toBe(false);
    expect(batchSucceeded({ ...done, failed: 0 })).toBe(true);
    expect(batchSucceeded({ ...done, state: 'failed', failed: 0 })).toBe(false);
  });

  it('reads the counts Temporal sends as 64-bit integers', async () => {
    const long = (n: number) => ({ toString: () => String(n) });
    const { service } = fakeService({
      describe: [
        () => ({
          state: BatchOperationState.BATCH_OPERATION_STATE_COMPLETED,
          totalOperationCount: long(12),
          completeOperationCount: long(12),
          failureOperationCount: long(0),
        }),
      ],
    });
    expect(await waitForBatch(service, 'default', 'job', { pollMs: 1 })).toMatchObject({ total: 12, complete: 12 });
  });

  it('gives up after its timeout (the batch goes on), and passes on other errors', async () => {
    const running = fakeService({ describe: [batch(BatchOperationState.BATCH_OPERATION_STATE_RUNNING, 1, 0, 0)] });
    await expect(waitForBatch(running.service, 'default', 'job', { pollMs: 1, timeoutMs: 5 })).rejects.toThrow(
      /still running/,
    );
    const denied = fakeService({
      describe: [
        () => {
          throw grpcError(grpcStatus.PERMISSION_DENIED);
        },
      ],
    });
    await expect(waitForBatch(denied.service, 'default', 'job', { pollMs: 1 })).rejects.toMatchObject({
      code: grpcStatus.PERMISSION_DENIED,
    });
  });
});
