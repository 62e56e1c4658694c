import { status } from '@grpc/grpc-js';
import { ServiceError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../runtime/logger';
import { toGrpcError } from './errors';

const logger = createLogger('test', 'silent');

/** A query's failure as the Temporal client throws it: its ServiceError around grpc-js's error. */
const failedQuery = (code: status, details: string) =>
  new ServiceError('Failed to query Workflow', {
    cause: Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} }),
  });

describe('toGrpcError', () => {
  it('answers a query no worker answered UNAVAILABLE with a retry-after trailer, not INTERNAL', () => {
    const noPoller = toGrpcError(
      failedQuery(status.FAILED_PRECONDITION, 'no poller seen for task queue recently'),
      logger,
    );
    expect(noPoller).toMatchObject({
      code: status.UNAVAILABLE,
      details: expect.stringMatching(/^No worker is polling/),
    });
    expect(noPoller.metadata?.get('retry-after')).toEqual(['5']);
    const failing = toGrpcError(failedQuery(status.FAILED_PRECONDITION, 'Workflow Task in failed state.'), logger);
    expect(failing).toMatchObject({ code: status.UNAVAILABLE });
    expect(failing.metadata?.get('retry-after')).toEqual(['30']);
  });
});
