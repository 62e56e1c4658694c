import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import type { LedgerAttempt } from '../../graph/chargeAttempts';
import type { RecoveryLedger } from '../../graph/chargeLedger';
import { InvalidInputError, InvalidStateError, NotFoundError } from '../../graph/errors';
import { initialRecoveryStatus, OFFER_BY_SIGNAL, type RecoveryStatus } from '../../temporal/recovery';
import type { Graph } from '../../graph/graph';
import type { ApiDeps } from '../deps';
import { cancelRecovery, mayOfferCancel, offerNewPaymentMethod, OPS_CANCEL_UPDATE_ID } from './recovery';
import { OWNER_STOP_UPDATE_ID, ownerAnswerOf, paymentNoLongerOwed } from './recoveryOwnerStop';
import { taskQueuesOf } from '../../temporal/taskQueues';

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
    temporal: { client, taskQueues: taskQueuesOf('persona') },
    limits: { requestDeadlineMs: 200 },
    logger: { warn: () => undefined },
  } as unknown as ApiDeps;
  return { deps, signalled };
}

describe('offering a new card to running recoveries', () => {
  it('answers each, signals those that take cards by signal, and leaves out those that refused or ended', async () => {
    // A run whose worker lacks the Update (a deployment under way) takes the card by the signal.
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

describe('the console’s hint whether to offer a cancel', () => {
  const status = (change: Partial<RecoveryStatus>): RecoveryStatus => ({ ...initialRecoveryStatus(), ...change });

  it('offers it for one between charges, charging, or waiting for ops, with nothing recovered yet', () => {
    expect(mayOfferCancel(status({ state: 'dunning' }))).toBe(true);
    expect(mayOfferCancel(status({ state: 'recovering' }))).toBe(true);
    expect(mayOfferCancel(status({ state: 'needs_attention' }))).toBe(true);
  });

  it('does not offer it for one that recovered (even while recording it), has not started, or ended', () => {
    expect(mayOfferCancel(status({ state: 'needs_attention', recovered_with: 'pm_1' }))).toBe(false);
    expect(mayOfferCancel(status({ state: 'recovering', recovered_with: 'pm_1' }))).toBe(false);
    for (const state of ['waiting', 'recovered', 'failed', 'stopped'] as const)
      expect(mayOfferCancel(status({ state }))).toBe(false);
  });
});

/**
 * A stand-in graph whose every write answers nothing: the stop a service writes to the charge
 * ledger is kept in `sent` (`{ledger: <who>, reason}`), in order with the Updates.
 */
function ledgerRecording(sent: unknown[]): Graph {
  const tx = {
    run: async (_query: string, params: { by?: string; reason?: string }) => {
      if (params.by) sent.push({ ledger: params.by, reason: params.reason });
      return { records: [] };
    },
  };
  const session = {
    executeWrite: async <T>(work: (t: typeof tx) => Promise<T>) => work(tx),
    executeRead: async <T>(work: (t: typeof tx) => Promise<T>) => work(tx),
    lastBookmarks: () => [],
    close: async () => undefined,
  };
  return { driver: { session: () => session }, database: 'neo4j' } as unknown as Graph;
}

/** A stand-in whose one recovery answers an Update as told (the real one: test/integration/recovery-api.test.ts). */
function recoveryAnswering(answer: 'refused' | 'ended' | 'never' | 'stopped' | 'slow') {
  const rejection = (message: string, type?: string) =>
    new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ message, type }));
  const sent: unknown[] = [];
  const stopped = { ...initialRecoveryStatus(), state: 'stopped' as const, stop_reason: 'cancelled: ops' };
  const outcome = async () => {
    if (answer === 'refused') throw rejection('the recovery has not taken its payment failure yet');
    if (answer === 'ended' || answer === 'never')
      throw new WorkflowNotFoundError('workflow execution already completed', 'payment-recovery-p', undefined);
    if (answer === 'slow') return new Promise(() => undefined);
    return stopped;
  };
  const client = {
    connection: {
      withAbortSignal: <T>(signal: AbortSignal, fn: () => Promise<T>) =>
        Promise.race([
          fn(),
          new Promise<T>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
        ]),
    },
    workflow: {
      getHandle: () => ({
        describe: async () => {
          if (answer === 'never') throw new WorkflowNotFoundError('not found', 'payment-recovery-p', undefined);
          return {};
        },
        executeUpdate: async (_def: unknown, options: { args: unknown[] }) => {
          sent.push(...options.args);
          return outcome();
        },
        startUpdate: async (_def: unknown, options: { args: unknown[]; updateId: string }) => {
          sent.push({ ...(options.args[0] as object), updateId: options.updateId });
          if (answer === 'ended' || answer === 'never') await outcome();
          return {
            result: async () => {
              if (answer === 'stopped')
                return { payment_id: 'p', outcome: 'stopped', charge: null, state: 'stopped', stop_reason: 'owner' };
              return outcome();
            },
          };
        },
      }),
    },
  } as unknown as Client;
  const deps = {
    graph: ledgerRecording(sent),
    temporal: { client, taskQueues: taskQueuesOf('persona') },
    limits: { requestDeadlineMs: 200 },
  };
  return { deps: deps as unknown as ApiDeps, sent };
}

describe('cancelling a recovery: the ledger first, then the recovery, which says why it refused', () => {
  it('answers the final status when the recovery takes it, the stop written to the ledger first', async () => {
    const { deps, sent } = recoveryAnswering('stopped');
    await expect(cancelRecovery(deps, 'p', '  customer disputes it ')).resolves.toMatchObject({
      outcome: 'cancelled',
      status: { state: 'stopped' },
    });
    expect(sent).toEqual([
      { ledger: 'ops', reason: 'cancelled: customer disputes it' },
      { reason: 'customer disputes it', updateId: OPS_CANCEL_UPDATE_ID },
    ]);
  });

  it('answers stopping when the recovery took it and settles a charge past the wait', async () => {
    const { deps, sent } = recoveryAnswering('slow');
    await expect(cancelRecovery(deps, 'p', 'ops', 50)).resolves.toEqual({ outcome: 'stopping', status: null });
    expect(sent).toEqual([
      { ledger: 'ops', reason: 'cancelled: ops' },
      { reason: 'ops', updateId: OPS_CANCEL_UPDATE_ID },
    ]);
  });

  it('refuses with 409 and the recovery’s own reason when it cannot take it', async () => {
    const refused = cancelRecovery(recoveryAnswering('refused').deps, 'p', 'ops');
    await expect(refused).rejects.toThrow('payment recovery p: the recovery has not taken its payment failure yet');
  });

  it('refuses an ended recovery with 409 saying so, and an unknown payment with 404', async () => {
    const ended = cancelRecovery(recoveryAnswering('ended').deps, 'p', 'ops');
    await expect(ended).rejects.toBeInstanceOf(InvalidStateError);
    await expect(ended).rejects.toThrow('payment recovery p has ended');
    await expect(cancelRecovery(recoveryAnswering('never').deps, 'p', 'ops')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses a blank or overlong reason before asking the recovery', async () => {
    const { deps, sent } = recoveryAnswering('stopped');
    await expect(cancelRecovery(deps, 'p', '   ')).rejects.toBeInstanceOf(InvalidInputError);
    await expect(cancelRecovery(deps, 'p', 'x'.repeat(501))).rejects.toBeInstanceOf(InvalidInputError);
    expect(sent).toEqual([]);
  });
});

describe('the owner’s stop, while the recovery runs', () => {
  it('answers the recovery’s own answer, sent once under one update id', async () => {
    const { deps, sent } = recoveryAnswering('stopped');
    const answer = await paymentNoLongerOwed(deps, 'p', { reason: 'settled_elsewhere' }, 1000, {
      reporter: null,
      ops: false,
    });
    expect(answer).toMatchObject({ outcome: 'stopped', charge: null, status_url: '/api/v1/payment-recoveries/p' });
    expect(sent).toEqual([
      { ledger: 'owner', reason: "the payment's owner says it is no longer owed (settled_elsewhere)" },
      { reason: 'settled_elsewhere', updateId: OWNER_STOP_UPDATE_ID },
    ]);
  });

  it('answers stopping, and where to read the outcome, before the recovery reaches a safe point', async () => {
    const { deps } = recoveryAnswering('slow');
    const answer = await paymentNoLongerOwed(deps, 'p', { reason: 'not_owed' }, 30, { reporter: null, ops: false });
    expect(answer).toEqual({
      payment_id: 'p',
      outcome: 'stopping',
      charge: null,
      unknown_charge: null,
      state: null,
      stop_reason: null,
      status_url: '/api/v1/payment-recoveries/p',
    });
  });
});

describe('the owner’s answer from the charge ledger (a recovery that ended)', () => {
  const recovery = (change: Partial<RecoveryLedger>): RecoveryLedger => ({
    payment_id: 'p',
    customer_id: 'c',
    payment_method_id: 'pm-1',
    amount: 1999,
    currency: 'EUR',
    state: 'recovering',
    reported_at: '2026-11-01T00:00:00Z',
    reported_by: null,
    started_at: '2026-11-01T00:00:01Z',
    ended_at: null,
    charge_id: null,
    recovered_with: null,
    reason: null,
    erased_at: null,
    stop_requested_at: null,
    stop_requested_by: null,
    stop_request: null,
    replaces: null,
    replaced_by: null,
    ...change,
  });
  const attempt = (change: Partial<LedgerAttempt>): LedgerAttempt =>
    ({
      key: `k-${Math.random()}`,
      payment_id: 'p',
      payment_method_id: 'pm-2',
      amount: 1999,
      currency: 'EUR',
      state: 'declined',
      charge_id: null,
      ...change,
    }) as LedgerAttempt;

  it('reports a charge Persona made, with its method, charge id, amount and currency', () => {
    const recorded = {
      recovery: recovery({ state: 'recovered', recovered_with: 'pm-2', charge_id: 'ch_1' }),
      attempts: [attempt({ payment_method_id: 'pm-1' }), attempt({ state: 'succeeded', charge_id: 'ch_1' })],
    };
    expect(ownerAnswerOf(recorded, null)).toEqual({
      payment_id: 'p',
      outcome: 'recovered',
      charge: { payment_method_id: 'pm-2', charge_id: 'ch_1', amount: 1999, currency: 'EUR' },
      unknown_charge: null,
      state: 'recovered',
      stop_reason: null,
    });
  });

  it('never hides a charge that succeeded behind a stop or failure recorded before it', () => {
    const recorded = {
      recovery: recovery({ state: 'stopped', reason: 'cancelled: ops' }),
      attempts: [attempt({ state: 'succeeded', charge_id: 'ch_2' })],
    };
    expect(ownerAnswerOf(recorded, null)).toMatchObject({
      outcome: 'recovered',
      charge: { payment_method_id: 'pm-2', charge_id: 'ch_2' },
    });
  });

  it('answers failed or stopped, with the recorded reason, when nothing was charged', () => {
    const declined = [attempt({})];
    expect(
      ownerAnswerOf({ recovery: recovery({ state: 'failed', reason: 'all declined' }), attempts: declined }, null),
    ).toMatchObject({ outcome: 'failed', charge: null, state: 'failed', stop_reason: 'all declined' });
    expect(
      ownerAnswerOf({ recovery: recovery({ state: 'stopped', reason: 'cancelled: x' }), attempts: [] }, null),
    ).toMatchObject({ outcome: 'stopped', charge: null, state: 'stopped', stop_reason: 'cancelled: x' });
  });

  it('tells of a charge whose outcome the gateway never gave: charge_unknown, with its key', () => {
    const recorded = {
      recovery: recovery({ state: 'stopped', reason: 'no longer owed' }),
      attempts: [attempt({}), attempt({ key: 'p:pm-2', state: 'sent' })],
    };
    expect(ownerAnswerOf(recorded, null)).toMatchObject({
      outcome: 'charge_unknown',
      unknown_charge: 'p:pm-2',
      charge: null,
      state: 'stopped',
    });
  });

  it('takes the workflow’s final state while the ledger has not recorded the end, and its charge', () => {
    const stopped = { ...initialRecoveryStatus(), state: 'stopped' as const, stop_reason: 'no longer owed' };
    expect(ownerAnswerOf({ recovery: recovery({}), attempts: [] }, stopped)).toMatchObject({
      outcome: 'stopped',
      stop_reason: 'no longer owed',
    });
    const recovered = { ...initialRecoveryStatus(), state: 'recovered' as const, recovered_with: 'pm-1' };
    expect(ownerAnswerOf({ recovery: recovery({}), attempts: [] }, recovered)).toMatchObject({
      outcome: 'recovered',
      charge: { payment_method_id: 'pm-1', charge_id: null, amount: 1999, currency: 'EUR' },
    });
  });

  it('refuses to guess (409) for a recovery recorded as still recovering that nothing runs', () => {
    expect(() => ownerAnswerOf({ recovery: recovery({}), attempts: [attempt({ state: 'sent' })] }, null)).toThrow(
      InvalidStateError,
    );
  });
});
