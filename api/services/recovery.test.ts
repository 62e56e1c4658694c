import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { ApiDeps } from '../deps';
import { signalNewPaymentMethod } from './recovery';

describe('signalNewPaymentMethod', () => {
  it('tells every running recovery, skipping one that ended after visibility listed it', async () => {
    const signalled: string[] = [];
    const client = {
      workflow: {
        // What visibility answers: three recoveries "running", the first of which has just ended.
        async *list() {
          for (const workflowId of ['payment-recovery-a', 'payment-recovery-b', 'payment-recovery-c'])
            yield { workflowId };
        },
        getHandle: (id: string) => ({
          signal: async () => {
            if (id === 'payment-recovery-a')
              throw new WorkflowNotFoundError('workflow execution already completed', id, undefined);
            signalled.push(id);
          },
        }),
      },
    } as unknown as Client;
    const deps = { temporal: { client, taskQueue: 'persona' } } as unknown as ApiDeps;
    expect(await signalNewPaymentMethod(deps, 'c-1', 'pm-new')).toEqual(['payment-recovery-b', 'payment-recovery-c']);
    expect(signalled).toEqual(['payment-recovery-b', 'payment-recovery-c']);
  });
});
