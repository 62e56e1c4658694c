import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { initialRecoveryStatus, OFFER_BY_SIGNAL, type RecoveryStatus } from '../../temporal/recovery';
import type { ApiDeps } from '../deps';
import { cancelRefusal, offerNewPaymentMethod } from './recovery';

/**
 * What the wallet's offer does with each answer a recovery can give, on a stand-in of Temporal's
 * client (the real one is exercised end to end in test/integration/recovery-api.test.ts): the
 * cases a running stack cannot be put in on demand.
 */
type Answer = 'answered' | 'by_signal' | 'refused' | 'unknown_update' | 'ended' | 'silent';

function clientAnswering(answers: Record<string, Answer>) {
  const signalled: string[] = [];
  const rejection = (message: string, type?: string) =>
    new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ message, type }));
  const client = {
    connection: { withAbortSignal: <T>(signal: AbortSignal, fn: () => Promise<T>) => fn() },
    workflow: {
      async *list() {
        // Listed newest first: the offer numbers them by start, oldest first.
        for (const [i, workflowId] of Object.keys(answers).reverse().entries())
          yield { workflowId, startTime: new Date(Date.UTC(2026, 0, 10 - i)) };
      },
      getHandle: (id: string) => ({
        describe: async () => ({}),
        signal: async () => void signalled.push(id),
        startUpdate: async () => {
          const answer = answers[id];
          if (answer === 'ended')
            throw new WorkflowNotFoundError('workflow execution already completed', id, undefined);
          return {
            result: async () => {
              if (answer === 'by_signal') throw rejection('the recovery waits for ops', OFFER_BY_SIGNAL);
              if (answer === 'refused') throw rejection('the recovery was cancelled: test');
              if (answer === 'unknown_update') throw rejection('No registered handler for update: offerPaymentMethod');
              if (answer === 'silent') return new Promise(() => undefined);
              return { outcome: 'declined', decline_code: 'do_not_honor', state: 'dunning' };
            },
          };
        },
      }),
    },
  } as unknown as Client;
  const deps = {
    temporal: { client, taskQueue: 'persona' },
    limits: { requestDeadlineMs: 200 },
    logger: { warn: () => undefined },
  } as unknown as ApiDeps;
  return { deps, signalled };
}

describe('offering a new card to running recoveries', () => {
  it('answers each, signals those that take cards by signal, and leaves out those that refused or ended', async () => {
    const { deps, signalled } = clientAnswering({
      'payment-recovery-a': 'answered',
      'payment-recovery-b': 'by_signal',
      'payment-recovery-c': 'refused',
      'payment-recovery-d': 'unknown_update',
      'payment-recovery-e': 'ended',
    });
    const offers = await offerNewPaymentMethod(deps, 'c-1', 'pm-new', 1000);
    expect(offers.map((o) => [o.payment_id, o.offered, o.outcome])).toEqual([
      ['a', 1, 'declined'],
      ['b', 2, 'pending'],
      ['d', 3, 'pending'],
    ]);
    expect(signalled.sort()).toEqual(['payment-recovery-b', 'payment-recovery-d']);
  });

  it('answers pending within its budget for a slow recovery, and signals nothing (the Update may land)', async () => {
    const { deps, signalled } = clientAnswering({ 'payment-recovery-s': 'silent' });
    // The stand-in's connection ignores the abort: the budget is what ends the wait here.
    (deps.temporal.client.connection as { withAbortSignal: unknown }).withAbortSignal = <T>(
      signal: AbortSignal,
      fn: () => Promise<T>,
    ) =>
      Promise.race([
        fn(),
        new Promise<T>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
      ]);
    const offers = await offerNewPaymentMethod(deps, 'c-1', 'pm-new', 50);
    expect(offers).toMatchObject([{ payment_id: 's', outcome: 'pending', state: null }]);
    expect(signalled).toEqual([]);
  });
});

describe('when ops may cancel a recovery', () => {
  const status = (change: Partial<RecoveryStatus>): RecoveryStatus => ({ ...initialRecoveryStatus(), ...change });

  it('cancels one between charges, charging, or waiting for ops on a charge, with nothing recovered yet', () => {
    expect(cancelRefusal(status({ state: 'dunning' }))).toBeNull();
    expect(cancelRefusal(status({ state: 'recovering' }))).toBeNull();
    // A charge of unknown outcome is settled with the gateway before the recovery stops.
    expect(cancelRefusal(status({ state: 'needs_attention' }))).toBeNull();
  });

  it('refuses one that recovered (even while its record needs attention) or is only finishing, saying why', () => {
    const recording = status({ state: 'needs_attention', recovered_with: 'pm_1' });
    expect(cancelRefusal(recording)).toMatch(/recovered the payment/);
    expect(cancelRefusal(status({ state: 'recovering', recovered_with: 'pm_1' }))).toMatch(/recovered the payment/);
    expect(cancelRefusal(status({ state: 'waiting' }))).toMatch(/not taken its payment failure yet/);
    for (const state of ['recovered', 'failed', 'stopped'] as const)
      expect(cancelRefusal(status({ state }))).toMatch(/only finishing its records/);
  });
});
