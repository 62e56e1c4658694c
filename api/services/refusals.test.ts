import { status } from '@grpc/grpc-js';
import {
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';
import { describe, expect, it } from 'vitest';
import { InvalidStateError, NotFoundError } from '../../graph/errors';
import { DependencyUnavailableError } from '../../runtime/dependencies';
import { decisionUpdateId, orNotFound, queryWithin, updateOrRefusal } from './refusals';

const missing = () => new WorkflowNotFoundError('not found', 'wf-1', undefined);
const target = { entity: 'PaymentRecovery', id: 'pay-1', what: 'payment recovery pay-1' };

/** A handle whose describe says the workflow ran and ended (or, with `ever: false`, never ran). */
function handle(ever = true): WorkflowHandle {
  return {
    describe: () => (ever ? Promise.resolve({ status: { name: 'COMPLETED' } }) : Promise.reject(missing())),
  } as unknown as WorkflowHandle;
}

const refusedBy = (reason: string) =>
  Promise.reject(new WorkflowUpdateFailedError('update failed', ApplicationFailure.create({ message: reason })));

describe('orNotFound', () => {
  it('answers what the call answers', async () => {
    await expect(orNotFound('ExpiryScan', 'x', () => Promise.resolve(42))).resolves.toBe(42);
  });

  it('turns a workflow Temporal does not have into NotFoundError naming what was asked for', async () => {
    const err = await orNotFound('ExpiryScan', 'expiry-scan-2026-01-01', () => Promise.reject(missing())).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ entity: 'ExpiryScan', id: 'expiry-scan-2026-01-01' });
  });

  it('passes any other failure on as it is', async () => {
    const other = new Error('unavailable');
    await expect(orNotFound('ExpiryScan', 'x', () => Promise.reject(other))).rejects.toBe(other);
  });
});

describe('queryWithin', () => {
  const statusQuery = defineQuery<string>('status');
  /** A handle whose query answers as told; its connection aborts the call as grpc-js does. */
  function queried(answer: () => Promise<string>): WorkflowHandle {
    return {
      workflowId: 'fraud-outcome-1',
      query: answer,
      client: {
        connection: {
          withAbortSignal: <T>(signal: AbortSignal, fn: () => Promise<T>) =>
            Promise.race([
              fn(),
              new Promise<T>((_, reject) =>
                signal.addEventListener('abort', () => reject(failedQuery(status.CANCELLED, 'Cancelled on client'))),
              ),
            ]),
        },
      },
    } as unknown as WorkflowHandle;
  }
  const failedQuery = (code: status, details: string) =>
    new ServiceError('Failed to query Workflow', {
      cause: Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} }),
    });

  it('answers what the workflow answers', async () => {
    await expect(
      queryWithin(
        queried(() => Promise.resolve('awaiting_review')),
        statusQuery,
        1000,
      ),
    ).resolves.toBe('awaiting_review');
  });

  it('fails a query no worker answered with a 503 of the worker, naming the workflow in the log only', async () => {
    const h = queried(() =>
      Promise.reject(failedQuery(status.FAILED_PRECONDITION, 'no poller seen for task queue recently')),
    );
    const err = await queryWithin(h, statusQuery, 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyUnavailableError);
    expect(err).toMatchObject({ dependency: 'worker', retryAfterSeconds: 5 });
    expect((err as DependencyUnavailableError).reason).toMatch(/^no_poller: fraud-outcome-1 /);
    expect((err as Error).message).not.toContain('fraud-outcome-1');
  });

  it('gives up on a query nobody answers after its time, as the same 503', async () => {
    const start = Date.now();
    const err = await queryWithin(
      queried(() => new Promise(() => undefined)),
      statusQuery,
      50,
    ).catch((e: unknown) => e);
    expect(Date.now() - start).toBeLessThan(1000);
    expect(err).toMatchObject({ dependency: 'worker', reason: expect.stringMatching(/^timed_out: /) });
  });

  it('passes any other failure on as it is (a workflow Temporal does not have, a broken query)', async () => {
    const gone = missing();
    await expect(
      queryWithin(
        queried(() => Promise.reject(gone)),
        statusQuery,
        1000,
      ),
    ).rejects.toBe(gone);
    const broken = failedQuery(status.INVALID_ARGUMENT, 'query handler threw');
    await expect(
      queryWithin(
        queried(() => Promise.reject(broken)),
        statusQuery,
        1000,
      ),
    ).rejects.toBe(broken);
  });
});

describe('updateOrRefusal', () => {
  it('answers what the Update answers', async () => {
    await expect(updateOrRefusal(handle(), () => Promise.resolve('ok'), target)).resolves.toBe('ok');
  });

  it("answers a validator's refusal 409 with its reason", async () => {
    const err = await updateOrRefusal(handle(), () => refusedBy('it is not waiting for ops'), target).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidStateError);
    expect((err as Error).message).toBe('payment recovery pay-1: it is not waiting for ops');
  });

  it('no such workflow: NotFoundError; an ended one: 409, in its own words when given', async () => {
    await expect(updateOrRefusal(handle(false), () => Promise.reject(missing()), target)).rejects.toMatchObject({
      entity: 'PaymentRecovery',
      id: 'pay-1',
    });
    await expect(updateOrRefusal(handle(), () => Promise.reject(missing()), target)).rejects.toThrow(
      new InvalidStateError('payment recovery pay-1 has ended'),
    );
    await expect(
      updateOrRefusal(handle(), () => Promise.reject(missing()), target, { ended: 'nothing to cancel' }),
    ).rejects.toThrow(new InvalidStateError('nothing to cancel'));
  });

  it('a run whose worker has no such Update (a deployment under way): 503, to be sent again shortly', async () => {
    const unknown = () => refusedBy('No registered handler for update: cancel');
    const err = await updateOrRefusal(handle(), unknown, target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyUnavailableError);
    expect(err).toMatchObject({ dependency: 'temporal', retryAfterSeconds: 5 });
    expect((err as DependencyUnavailableError).reason).toMatch(/payment recovery pay-1 does not take this decision/);
  });

  it('passes a service error on as it is', async () => {
    const other = new Error('deadline exceeded');
    await expect(updateOrRefusal(handle(), () => Promise.reject(other), target)).rejects.toBe(other);
  });
});

describe("a decision's Update id", () => {
  const confirm = { decision: 'confirm' };

  it('is the same for the same decision by the same caller: a resend gets the first answer', () => {
    expect(decisionUpdateId('review', 'ops-a', confirm)).toBe(decisionUpdateId('review', 'ops-a', { ...confirm }));
    expect(decisionUpdateId('review', 'ops-a', confirm)).toMatch(/^review:[\w-]{43}$/);
  });

  it('differs for another caller, another decision or another kind', () => {
    const ids = [
      decisionUpdateId('review', 'ops-a', confirm),
      decisionUpdateId('review', 'ops-b', confirm),
      decisionUpdateId('review', 'ops-a', { decision: 'reinstate' }),
      decisionUpdateId('attention', 'ops-a', confirm),
    ];
    expect(new Set(ids).size).toBe(4);
  });

  it('is none for a token without a subject: callers who cannot be told apart never share an answer', () => {
    expect(decisionUpdateId('review', null, confirm)).toBeUndefined();
    expect(decisionUpdateId('review', '', confirm)).toBeUndefined();
  });
});
