import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { NotifyRequest } from '../../activities/notifications';
import type { ChargeAttempt } from '../../activities/recovery';
import type { ChargeResult } from '../../clients/paymentGateway';
import type { RecoveryCandidate } from '../../graph/recovery';
import {
  cancelRecoverySignal,
  paymentFailedSignal,
  paymentMethodAddedSignal,
  paymentMethodBlockedSignal,
  recoveryStatusQuery,
  type PaymentFailure,
} from '../../temporal/recovery';
import { paymentRecoveryWorkflow } from '../../workflows';
import { useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

/** A fake world: the customer's methods and what the gateway answers for each. */
interface World {
  methods: string[];
  /** Per method, the answers in order (the last one repeats). */
  answers: Record<string, string[]>;
}

interface Log {
  charges: ChargeAttempt[];
  deactivated: { payment_method_id: string; status: string }[];
  notified: NotifyRequest[];
  recovered: { payment_method_id: string }[];
  failed: number;
}

function fakes(world: World, log: Log) {
  const inactive = new Set<string>();
  const calls: Record<string, number> = {};
  return {
    async listRecoveryCandidates(req: { customer_id: string; exclude: string[] }): Promise<RecoveryCandidate[]> {
      return world.methods
        .filter((m) => !req.exclude.includes(m) && !inactive.has(m))
        .map((m) => ({ payment_method_id: m, used_on_trusted_device: false, last_used: null }));
    },
    // Like the real activity, it counts charges per method (the graph does) and refuses the 16th in 30 days.
    async chargePaymentMethod(a: ChargeAttempt): Promise<ChargeResult | { outcome: 'limited' }> {
      if (log.charges.filter((c) => c.payment_method_id === a.payment_method_id).length >= 15)
        return { outcome: 'limited' };
      log.charges.push(a);
      const list = world.answers[a.payment_method_id] ?? ['succeeded'];
      const n = (calls[a.payment_method_id] = (calls[a.payment_method_id] ?? 0) + 1);
      const answer = list[Math.min(n, list.length) - 1] as string;
      return answer === 'succeeded'
        ? { outcome: 'succeeded', charge_id: `ch_${n}` }
        : { outcome: 'declined', decline_code: answer, charge_id: null };
    },
    async deactivatePaymentMethod(req: { payment_method_id: string; status: string }): Promise<void> {
      inactive.add(req.payment_method_id);
      log.deactivated.push({ payment_method_id: req.payment_method_id, status: req.status });
    },
    async recordRecovery(rec: { payment_method_id: string }): Promise<void> {
      log.recovered.push({ payment_method_id: rec.payment_method_id });
    },
    async recordRecoveryFailed(): Promise<void> {
      log.failed++;
    },
    async notifyCustomer(req: NotifyRequest): Promise<{ sent: boolean; channel: 'email' }> {
      log.notified.push(req);
      return { sent: true, channel: 'email' };
    },
  };
}

const failure = (overrides: Partial<PaymentFailure> = {}): PaymentFailure => ({
  payment_id: `pay_${randomUUID()}`,
  customer_id: randomUUID(),
  payment_method_id: 'pm-failed',
  amount: 1999,
  currency: 'EUR',
  decline_code: 'insufficient_funds',
  ...overrides,
});

async function run(
  world: World,
  f: PaymentFailure,
  opts: { schedule?: string[]; during?: (h: ReturnType<typeof env.client.workflow.getHandle>) => Promise<void> } = {},
) {
  const log: Log = { charges: [], deactivated: [], notified: [], recovered: [], failed: 0 };
  const taskQueue = `recovery-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: fakes(world, log),
  });
  const workflowId = `payment-recovery-${f.payment_id}`;
  const status = await worker.runUntil(async () => {
    const handle = await env.client.workflow.signalWithStart(paymentRecoveryWorkflow, {
      workflowId,
      taskQueue,
      args: [{ dunningSchedule: opts.schedule ?? ['1d', '3d', '5d', '7d'] }],
      signal: paymentFailedSignal,
      signalArgs: [f],
    });
    if (opts.during) await opts.during(handle);
    return handle.result();
  });
  return { status, log, workflowId };
}

describe('payment recovery workflow', () => {
  it('soft decline: cascades to the next method, makes it the default, tells the customer', async () => {
    const f = failure();
    const { status, log } = await run(
      { methods: ['pm-failed', 'pm-a', 'pm-b'], answers: { 'pm-a': ['insufficient_funds'], 'pm-b': ['succeeded'] } },
      f,
    );
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-b', next_retry_at: null });
    expect(log.charges.map((c) => c.idempotency_key)).toEqual([`${f.payment_id}:pm-a`, `${f.payment_id}:pm-b`]);
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-b' }]);
    expect(log.deactivated).toEqual([]);
    expect(log.notified.map((n) => n.kind)).toEqual(['payment_recovered']);
    expect(status.attempts.map((a) => [a.payment_method_id, a.outcome])).toEqual([
      ['pm-failed', 'declined'],
      ['pm-a', 'declined'],
      ['pm-b', 'succeeded'],
    ]);
  });

  it.each(['stolen_card', 'lost_card', 'pickup_card', 'fraudulent'])(
    'fraud-hard %s: deactivates, notifies, stops — no charge at all',
    async (code) => {
      const { status, log } = await run(
        { methods: ['pm-failed', 'pm-a'], answers: {} },
        failure({ decline_code: code }),
      );
      expect(status.state).toBe('stopped');
      expect(log.charges).toEqual([]);
      expect(log.deactivated).toEqual([{ payment_method_id: 'pm-failed', status: 'compromised' }]);
      expect(log.notified.map((n) => n.kind)).toEqual(['card_compromised']);
    },
  );

  it.each([
    ['expired_card', 'expired'],
    ['incorrect_number', 'inactive'],
    ['do_not_try_again', 'inactive'],
  ])('hard %s: deactivates the method as %s, then cascades', async (code, to) => {
    const { status, log } = await run({ methods: ['pm-failed', 'pm-a'], answers: {} }, failure({ decline_code: code }));
    expect(log.deactivated).toEqual([{ payment_method_id: 'pm-failed', status: to }]);
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
  });

  it('dunning over days: reminders, and paymentMethodAdded retries at once', async () => {
    const f = failure();
    const world: World = {
      methods: ['pm-failed'],
      answers: { 'pm-failed': ['insufficient_funds', 'insufficient_funds'] },
    };
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        // Round 1 (after 1 day) declines again; then the customer adds a card mid-way through the 3-day wait.
        await env.sleep('1 day');
        await env.sleep('1 hour');
        const mid = await handle.query(recoveryStatusQuery);
        expect(mid.state).toBe('dunning');
        expect(mid.next_retry_at).not.toBeNull();
        world.methods.push('pm-new');
        await handle.signal(paymentMethodAddedSignal, { payment_method_id: 'pm-new' });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-new' });
    expect(log.notified.map((n) => n.kind)).toEqual(['dunning_reminder', 'dunning_reminder', 'payment_recovered']);
    expect(log.charges.map((c) => c.idempotency_key)).toEqual([
      `${f.payment_id}:pm-failed:r1`,
      `${f.payment_id}:pm-failed:r2`,
      `${f.payment_id}:pm-new:r2`,
    ]);
  });

  it('never charges a method again once it is blocked (a confirmed fraud), though it is still listed', async () => {
    const f = failure();
    // The fake lists pm-stolen in every round (as if its status had not changed): only the block keeps it out.
    const world: World = {
      methods: ['pm-failed', 'pm-stolen'],
      answers: { 'pm-failed': ['insufficient_funds'], 'pm-stolen': ['do_not_honor'] },
    };
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        await handle.signal(paymentMethodBlockedSignal, {
          payment_method_id: 'pm-stolen',
          reason: 'confirmed fraud o-1',
        });
      },
    });
    expect(status.state).toBe('failed');
    // Unblocked, the same world charges both methods in every round (see the next test); blocked, never pm-stolen.
    expect(log.charges.filter((c) => c.payment_method_id === 'pm-stolen')).toEqual([]);
    expect(log.charges.filter((c) => c.payment_method_id === 'pm-failed')).toHaveLength(4);
  });

  it('gives up after the schedule: PaymentRecoveryFailed and a notification', async () => {
    const { status, log } = await run(
      { methods: ['pm-failed', 'pm-a'], answers: { 'pm-failed': ['generic_decline'], 'pm-a': ['do_not_honor'] } },
      failure(),
    );
    expect(status.state).toBe('failed');
    expect(log.failed).toBe(1);
    expect(log.notified.map((n) => n.kind)).toEqual([
      'dunning_reminder',
      'dunning_reminder',
      'dunning_reminder',
      'dunning_reminder',
      'payment_failed',
    ]);
    // 1 cascade (pm-a) + 4 dunning rounds of both methods.
    expect(log.charges).toHaveLength(9);
  });

  it('never charges a method again after a do-not-retry decline', async () => {
    const { log } = await run(
      {
        methods: ['pm-failed', 'pm-a'],
        answers: { 'pm-failed': ['insufficient_funds'], 'pm-a': ['do_not_try_again'] },
      },
      failure(),
    );
    expect(log.charges.filter((c) => c.payment_method_id === 'pm-a')).toHaveLength(1);
  });

  it('skips a method the 15-in-30-days rule refuses, and goes on', async () => {
    const schedule = Array.from({ length: 20 }, () => '1h');
    const { status, log } = await run(
      { methods: ['pm-failed'], answers: { 'pm-failed': ['insufficient_funds'] } },
      failure(),
      { schedule },
    );
    expect(log.charges).toHaveLength(15);
    expect(status.attempts.filter((a) => a.outcome === 'skipped')).toHaveLength(5);
    expect(status.state).toBe('failed');
  });

  it('ignores a second report of the same payment', async () => {
    const f = failure();
    const { status, log } = await run(
      { methods: ['pm-failed', 'pm-a'], answers: { 'pm-a': ['insufficient_funds', 'succeeded'] } },
      f,
      {
        schedule: ['1d'],
        during: async (handle) => {
          await handle.signal(paymentFailedSignal, { ...f, decline_code: 'stolen_card' });
        },
      },
    );
    expect(log.deactivated).toEqual([]);
    expect(status.attempts[0]).toMatchObject({ payment_method_id: 'pm-failed', decline_code: 'insufficient_funds' });
  });

  it('stops on cancel', async () => {
    const { status, log } = await run(
      { methods: ['pm-failed'], answers: { 'pm-failed': ['insufficient_funds'] } },
      failure(),
      {
        during: async (handle) => {
          await env.sleep('2 hours');
          await handle.signal(cancelRecoverySignal, { reason: 'ops' });
        },
      },
    );
    expect(status.state).toBe('stopped');
    expect(log.charges).toEqual([]);
  });
});
