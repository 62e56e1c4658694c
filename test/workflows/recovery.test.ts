import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { WorkflowUpdateStage } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { NotifyRequest } from '../../activities/notifications';
import type { ChargeAttempt, ChargeForecast, ChargeOutcome, RecoveryStart } from '../../activities/recovery';
import { decideDecline, type DeclineDecision } from '../../payments/declines';
import type { UpdateOutcome } from '../../graph/cardUpdates';
import type { RecoveryCandidate } from '../../graph/recovery';
import type { LedgerEnd } from '../../graph/chargeReservation';
import {
  cancelRecoveryUpdate,
  paymentNoLongerOwedUpdate,
  retryAttentionSignal,
  paymentFailedSignal,
  paymentMethodAddedSignal,
  paymentMethodBlockedSignal,
  offerPaymentMethodUpdate,
  OFFER_BY_SIGNAL,
  recoveryStatusQuery,
  resolveAttentionUpdate,
  type PaymentFailure,
  type RecoveryInput,
} from '../../temporal/recovery';
import { customerMergedSignal } from '../../temporal/identityMerge';
import { graphRestoredSignal } from '../../temporal/restore';
import { until } from '../support/wait';
import { paymentRecoveryWorkflow } from '../../workflows';
import { NO_OPEN_PROCESS_SINKS, skipTime, useWorkflowTestEnv } from '../support/temporal';
import {
  personaAttentionReason,
  personaCustomerId,
  personaOverdue,
  personaRecoveryState,
} from '../../temporal/searchAttributes';

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
  /** Replaces the gateway for a charge (may throw); undefined falls through to `answers`. */
  charge?: (a: ChargeAttempt) => Promise<ChargeOutcome | undefined>;
  /** Runs before each notification is recorded as sent (may throw: the receiver refuses it). */
  notify?: (req: NotifyRequest) => Promise<void>;
  /** Runs before the recovery is recorded (may throw: the graph refuses it). */
  record?: () => Promise<void>;
  /** Runs before a method is marked inactive (may throw: the graph no longer has it). */
  deactivate?: () => Promise<void>;
  /** What the account updater says of a method after `expired_card`; undefined: nothing new. */
  renew?: (paymentMethodId: string) => Promise<UpdateOutcome | undefined>;
  /** When the networks' rules allow the next charge; undefined: now. */
  forecast?: (req: { customer_id: string; exclude: string[]; at: string }) => Promise<ChargeForecast | undefined>;
  /** What the gateway says of a key when asked without sending (`mode: settle`); undefined: no charge. */
  settle?: (a: ChargeAttempt) => Promise<ChargeOutcome | undefined>;
  /** What the gateway says of the payment's other open attempts before a stop (settleOpenCharges); undefined: none. */
  settleOpen?: () => Promise<ChargeOutcome | undefined>;
  /** Runs when a stop is written to the charge ledger (may throw: the graph refuses it). */
  fence?: () => Promise<void>;
  /** How the ledger has the recovery ended when this run records its end; undefined: as this run ends it. */
  ledgerEnd?: () => Promise<LedgerEnd | undefined>;
  /** What the charge ledger says when the recovery begins; undefined: recovering. */
  begin?: () => Promise<Partial<RecoveryStart> | undefined>;
  /** The decline table the activities decide by (the real one unless a test edits it). */
  decide?: (code: string) => DeclineDecision;
}

interface Log {
  charges: ChargeAttempt[];
  deactivated: { payment_method_id: string; status: string }[];
  notified: NotifyRequest[];
  recovered: { payment_method_id: string }[];
  failed: number;
  /** Stops recorded in the charge ledger, with their reasons. */
  stopped?: string[];
  /** Keys the recovery asked the gateway about without sending (`mode: settle`). */
  settled?: string[];
  /** Stops written to the charge ledger by the run (who asked). */
  fenced?: string[];
  /** How often the payment's open attempts were settled before a stop. */
  settledOpen?: number;
  /** The reasons the run recorded its failure with. */
  failedWhy?: string[];
}

function fakes(world: World, log: Log) {
  const inactive = new Set<string>();
  const calls: Record<string, number> = {};
  const decide = world.decide ?? decideDecline;
  /** The keys whose charge is under way, and what each charge that answered answered. */
  const underWay = new Set<string>();
  const answered = new Map<string, ChargeOutcome>();
  const charged = async (a: ChargeAttempt): Promise<ChargeOutcome> => {
    const instead = await world.charge?.(a);
    if (instead) {
      if (instead.outcome !== 'not_charged') log.charges.push(a);
      return instead;
    }
    if (log.charges.filter((c) => c.payment_method_id === a.payment_method_id).length >= 15)
      return { outcome: 'limited' };
    log.charges.push(a);
    const list = world.answers[a.payment_method_id] ?? ['succeeded'];
    const n = (calls[a.payment_method_id] = (calls[a.payment_method_id] ?? 0) + 1);
    const answer = list[Math.min(n, list.length) - 1] as string;
    return answer === 'succeeded'
      ? { outcome: 'succeeded', charge_id: `ch_${n}` }
      : { outcome: 'declined', decline_code: answer, charge_id: null, decision: decide(answer) };
  };
  const candidates = (req: { customer_id: string; exclude: string[] }): RecoveryCandidate[] =>
    world.methods
      .filter((m) => !req.exclude.includes(m) && !inactive.has(m))
      .map((m) => ({ payment_method_id: m, used_on_trusted_device: false, last_used: null }));
  return {
    async beginRecovery(req: { failure: PaymentFailure; exclude: string[] }): Promise<RecoveryStart> {
      const instead = await world.begin?.();
      return {
        proceed: true,
        state: 'recovering',
        decline: decide(req.failure.decline_code),
        candidates: candidates({
          customer_id: req.failure.customer_id,
          exclude: [req.failure.payment_method_id, ...req.exclude],
        }),
        ...instead,
      };
    },
    async listRecoveryCandidates(req: { customer_id: string; exclude: string[] }): Promise<RecoveryCandidate[]> {
      return candidates(req);
    },
    // Like the real activity, it counts charges per method (the graph does) and refuses the 16th in 30 days.
    // Settling (`mode: settle`), like the ledger and the gateway: a charge still under way is not known
    // yet (retried), one that answered is its answer, one never made is no charge.
    async chargePaymentMethod(a: ChargeAttempt): Promise<ChargeOutcome> {
      if (a.mode === 'settle') {
        (log.settled ??= []).push(a.idempotency_key);
        const told = await world.settle?.(a);
        if (told) return told;
        if (underWay.has(a.idempotency_key))
          throw ApplicationFailure.retryable('the charge is still under way', 'ChargeOutcomeUnknown');
        return answered.get(a.idempotency_key) ?? { outcome: 'not_charged', reason: 'gateway_has_no_charge' };
      }
      underWay.add(a.idempotency_key);
      try {
        const outcome = await charged(a);
        if (outcome.outcome === 'succeeded' || outcome.outcome === 'declined') answered.set(a.idempotency_key, outcome);
        return outcome;
      } finally {
        underWay.delete(a.idempotency_key);
      }
    },
    async deactivatePaymentMethod(req: { payment_method_id: string; status: string }): Promise<void> {
      await world.deactivate?.();
      inactive.add(req.payment_method_id);
      log.deactivated.push({ payment_method_id: req.payment_method_id, status: req.status });
    },
    async recordRecovery(rec: { payment_method_id: string }): Promise<void> {
      await world.record?.();
      log.recovered.push({ payment_method_id: rec.payment_method_id });
    },
    async recordRecoveryFailed(rec: { reason: string }): Promise<LedgerEnd> {
      log.failed++;
      (log.failedWhy ??= []).push(rec.reason);
      return (
        (await world.ledgerEnd?.()) ?? { state: 'failed', recovered_with: null, charge_id: null, reason: rec.reason }
      );
    },
    async recordRecoveryStopped(rec: { reason: string }): Promise<LedgerEnd> {
      (log.stopped ??= []).push(rec.reason);
      return (
        (await world.ledgerEnd?.()) ?? { state: 'stopped', recovered_with: null, charge_id: null, reason: rec.reason }
      );
    },
    async requestRecoveryStop(req: { by: string }): Promise<void> {
      await world.fence?.();
      (log.fenced ??= []).push(req.by);
    },
    async settleOpenCharges(): Promise<ChargeOutcome> {
      log.settledOpen = (log.settledOpen ?? 0) + 1;
      return (await world.settleOpen?.()) ?? { outcome: 'not_charged', reason: 'never_sent' };
    },
    async renewCard(req: { payment_method_id: string }): Promise<UpdateOutcome> {
      const outcome = (await world.renew?.(req.payment_method_id)) ?? { outcome: 'unchanged' };
      if (outcome.outcome === 'updated') inactive.delete(req.payment_method_id);
      return outcome;
    },
    async forecastCharges(req: { customer_id: string; exclude: string[]; at: string }): Promise<ChargeForecast> {
      return (await world.forecast?.(req)) ?? { earliest: req.at, rule: null, candidates: world.methods.length };
    },
    async notifyCustomer(req: NotifyRequest): Promise<{ sent: boolean; channel: 'email' }> {
      await world.notify?.(req);
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
  opts: {
    schedule?: string[];
    /** How long a charge's transient failures are retried (the workflow's input). */
    chargeRetryFor?: string;
    /** How long ops have to answer an attention before it is overdue (the workflow's input). */
    attentionDeadline?: string;
    /** How long a stop asks the gateway about a charge of unknown outcome (the workflow's input). */
    settleFor?: string;
    /** A block that reaches the workflow before the failure does (it starts with it). */
    blockedFirst?: { payment_method_id: string; reason: string };
    during?: (h: ReturnType<typeof env.client.workflow.getHandle>) => Promise<void>;
  } = {},
) {
  const log: Log = { charges: [], deactivated: [], notified: [], recovered: [], failed: 0 };
  const taskQueue = `recovery-${randomUUID()}`;
  const worker = await Worker.create({
    sinks: NO_OPEN_PROCESS_SINKS,
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: fakes(world, log),
  });
  const workflowId = `payment-recovery-${f.payment_id}`;
  const status = await worker.runUntil(async () => {
    // A charge's transient failures are retried half an hour here (hours in production): less to skip.
    const args: [RecoveryInput] = [
      {
        dunningSchedule: opts.schedule ?? ['1d', '3d', '5d', '7d'],
        chargeRetryFor: opts.chargeRetryFor ?? '30m',
        ...(opts.attentionDeadline ? { attentionDeadline: opts.attentionDeadline } : {}),
        ...(opts.settleFor ? { settleFor: opts.settleFor } : {}),
      },
    ];
    const handle = opts.blockedFirst
      ? await env.client.workflow.signalWithStart(paymentRecoveryWorkflow, {
          workflowId,
          taskQueue,
          args,
          signal: paymentMethodBlockedSignal,
          signalArgs: [opts.blockedFirst],
        })
      : await env.client.workflow.signalWithStart(paymentRecoveryWorkflow, {
          workflowId,
          taskQueue,
          args,
          signal: paymentFailedSignal,
          signalArgs: [f],
        });
    if (opts.blockedFirst) await handle.signal(paymentFailedSignal, f);
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

  it('tells the customer while the recovery is recorded: the record waits for the notification', async () => {
    // The record is held until the customer was told: a recovery that told only after recording
    // would never end (and the test would time out).
    let told!: () => void;
    const customerTold = new Promise<void>((resolve) => (told = resolve));
    const { status, log } = await run(
      {
        methods: ['pm-failed', 'pm-a'],
        answers: {},
        notify: async (req) => {
          if (req.kind === 'payment_recovered') told();
        },
        record: () => customerTold,
      },
      failure(),
    );
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a', undelivered: [] });
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-a' }]);
    expect(log.notified.map((n) => n.kind)).toEqual(['payment_recovered']);
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
        await skipTime(env, '1 day');
        await skipTime(env, '1 hour');
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

  it('a customer merged mid-recovery: the recovery goes on against the survivor (signal customerMerged)', async () => {
    const f = failure();
    const survivor = randomUUID();
    const world: World = {
      methods: ['pm-failed', 'pm-2'],
      answers: { 'pm-2': ['insufficient_funds'], 'pm-failed': ['succeeded'] },
    };
    const { status, log } = await run(world, f, {
      schedule: ['1d'],
      during: async (handle) => {
        await until(async () => (await handle.query(recoveryStatusQuery)).state === 'dunning');
        // Another customer's merge is no business of this recovery's.
        await handle.signal(customerMergedSignal, {
          merge_id: 'm0',
          merged_id: randomUUID(),
          survivor_id: randomUUID(),
        });
        await handle.signal(customerMergedSignal, { merge_id: 'm1', merged_id: f.customer_id, survivor_id: survivor });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-failed' });
    // The first charge was the merged customer's; the retry after the merge is the survivor's.
    expect(log.charges.map((c) => c.customer_id)).toEqual([f.customer_id, survivor]);
    expect(log.notified.map((n) => [n.kind, n.customer_id])).toContainEqual(['payment_recovered', survivor]);
  });

  it('never charges a method again once it is blocked (a confirmed fraud), though it is still listed', async () => {
    const f = failure();
    // The fake lists pm-stolen in every round (as if its status had not changed): only the block keeps it out.
    const world: World = {
      methods: ['pm-failed', 'pm-stolen'],
      answers: { 'pm-failed': ['insufficient_funds'], 'pm-stolen': ['do_not_honor'] },
    };
    // The block reaches the workflow before the failure, so it holds from the first cascade on.
    const { status, log } = await run(world, f, {
      blockedFirst: { payment_method_id: 'pm-stolen', reason: 'confirmed fraud o-1' },
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

  it('names the card-network rule that skipped a charge, in the status', async () => {
    const rule = 'not before 2026-11-26T10:00:00.000Z: mastercard-mac-25-after-24-hours (rules 2026-11)';
    const { status, log } = await run(
      {
        methods: ['pm-failed', 'pm-a'],
        answers: { 'pm-failed': ['succeeded'] },
        charge: async (a) =>
          a.payment_method_id === 'pm-a'
            ? { outcome: 'limited', rule, not_before: '2026-11-26T10:00:00.000Z', never: false }
            : undefined,
      },
      failure(),
      { schedule: ['1h'] },
    );
    expect(status.attempts).toContainEqual({
      payment_method_id: 'pm-a',
      outcome: 'skipped',
      decline_code: 'network_retry_limit',
      at: expect.any(String),
      rule,
    });
    // The first pass skipped pm-a by the rule; the dunning round recovered with the reported method.
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-failed' }]);
    expect(status.state).toBe('recovered');
  });

  it('schedules a dunning round no earlier than the networks’ rules allow, and says why', async () => {
    const rule = 'not before that: mastercard-mac-27-after-4-days (rules 2026-11)';
    const asked: string[] = [];
    let earliest = '';
    const { status, log } = await run(
      {
        methods: ['pm-failed'],
        answers: { 'pm-failed': ['succeeded'] },
        // The rules allow a charge of the card 4 days on; the schedule says 1 day.
        forecast: async (req) => {
          asked.push(req.at);
          if (!earliest) earliest = new Date(Date.parse(req.at) + 4 * 86_400_000).toISOString();
          return Date.parse(req.at) < Date.parse(earliest)
            ? { earliest, rule, candidates: 1 }
            : { earliest: req.at, rule: null, candidates: 1 };
        },
      },
      failure(),
      {
        schedule: ['1d'],
        during: async (h) => {
          await until(async () => (await h.query(recoveryStatusQuery)).state === 'dunning');
          const mid = await h.query(recoveryStatusQuery);
          expect(mid.next_retry_at).toBe(earliest);
          expect(mid.next_retry_reason).toBe(
            `dunning round 1 of 1, 1d after the last, moved to when the card networks' rules allow a charge: ${rule}`,
          );
        },
      },
    );
    expect(status.state).toBe('recovered');
    // Charged once, at the time the rules allow, never before; asked again after the wait.
    expect(log.charges).toHaveLength(1);
    expect(Date.parse(log.charges[0]?.at ?? '')).toBeGreaterThanOrEqual(Date.parse(earliest));
    expect(asked).toHaveLength(2);
    expect(status.attempts.at(-1)).toMatchObject({ outcome: 'succeeded', scheduled_by: expect.stringContaining(rule) });
    expect(status.next_retry_reason).toBeNull();
  });

  it('keeps the schedule when the rules allow earlier, or cannot be asked', async () => {
    let calls = 0;
    const { status } = await run(
      {
        methods: ['pm-failed'],
        answers: { 'pm-failed': ['succeeded'] },
        forecast: async () => {
          calls++;
          throw refused('Neo4jError', 'the graph refused the read');
        },
      },
      failure(),
      {
        schedule: ['1d'],
        during: async (h) => {
          await until(async () => (await h.query(recoveryStatusQuery)).state === 'dunning');
          const mid = await h.query(recoveryStatusQuery);
          expect(mid.next_retry_reason).toBe('dunning round 1 of 1, 1d after the last');
        },
      },
    );
    expect(calls).toBe(1);
    expect(status.state).toBe('recovered');
    expect(status.attempts.at(-1)?.scheduled_by).toBe('dunning round 1 of 1, 1d after the last');
  });

  it('an expired card the account updater renewed is charged again at once: recovered by the updater', async () => {
    const asked: string[] = [];
    const { status, log } = await run(
      {
        methods: ['pm-failed', 'pm-a'],
        answers: { 'pm-failed': ['succeeded'], 'pm-a': ['insufficient_funds'] },
        renew: async (pm) => {
          asked.push(pm);
          return { outcome: 'updated', token_replaced: false, reactivated: true, expiry: '2030-12' };
        },
      },
      failure({ decline_code: 'expired_card' }),
    );
    expect(asked).toEqual(['pm-failed']);
    // Marked expired by the decline, renewed by the updater, charged first and at once.
    expect(log.deactivated).toEqual([{ payment_method_id: 'pm-failed', status: 'expired' }]);
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-failed']);
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-failed', recovered_by: 'account_updater' });
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-failed' }]);
  });

  it('a card declined as expired in the cascade is asked about once, and charged again under a new key', async () => {
    const f = failure();
    const { status, log } = await run(
      {
        methods: ['pm-failed', 'pm-a'],
        answers: { 'pm-a': ['expired_card', 'succeeded'] },
        renew: async () => ({ outcome: 'updated', token_replaced: true, reactivated: true, expiry: '2031-01' }),
      },
      f,
    );
    expect(log.charges.map((c) => c.idempotency_key)).toEqual([`${f.payment_id}:pm-a`, `${f.payment_id}:pm-a:renewed`]);
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a', recovered_by: 'account_updater' });
  });

  it('an updater that knows nothing newer, or cannot be asked, leaves the expired card out', async () => {
    for (const renew of [
      async () => ({ outcome: 'unchanged' as const }),
      async (): Promise<UpdateOutcome> => {
        throw refused('GatewayRejectedError', 'the updater refused the lookup');
      },
    ]) {
      const { status, log } = await run(
        { methods: ['pm-failed', 'pm-a'], answers: { 'pm-a': ['succeeded'] }, renew },
        failure({ decline_code: 'expired_card' }),
      );
      expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-a']);
      expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a', recovered_by: 'cascade' });
    }
  });

  it('credits each recovery to exactly one mechanism: cascade, retry, customer-added card', async () => {
    const cascade = await run({ methods: ['pm-failed', 'pm-a'], answers: {} }, failure());
    expect(cascade.status.recovered_by).toBe('cascade');
    const retry = await run({ methods: ['pm-failed'], answers: {} }, failure(), { schedule: ['1h'] });
    expect(retry.status).toMatchObject({ recovered_with: 'pm-failed', recovered_by: 'retry' });
    const world: World = { methods: ['pm-failed'], answers: { 'pm-failed': ['insufficient_funds'] } };
    const added = await run(world, failure(), {
      schedule: ['7d'],
      during: async (h) => {
        await until(async () => (await h.query(recoveryStatusQuery)).state === 'dunning');
        world.methods.push('pm-new');
        await h.signal(paymentMethodAddedSignal, { payment_method_id: 'pm-new' });
      },
    });
    expect(added.status).toMatchObject({ recovered_with: 'pm-new', recovered_by: 'customer_added_card' });
  });

  it('answers a card offered while dunning with what came of it (a Workflow Update), at once', async () => {
    const world: World = { methods: ['pm-failed'], answers: { 'pm-failed': ['insufficient_funds'] } };
    let answer: unknown;
    const { status, log } = await run(world, failure(), {
      schedule: ['7d', '7d'],
      during: async (h) => {
        await until(async () => (await h.query(recoveryStatusQuery)).state === 'dunning');
        world.methods.push('pm-new');
        answer = await h.executeUpdate(offerPaymentMethodUpdate, { args: [{ payment_method_id: 'pm-new' }] });
      },
    });
    expect(answer).toEqual({
      payment_id: expect.any(String),
      payment_method_id: 'pm-new',
      outcome: 'recovered',
      decline_code: null,
      state: 'recovered',
      recovered_with: 'pm-new',
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_by: 'customer_added_card' });
    // One reminder: the offer did not wait for the 7 days.
    expect(log.notified.filter((n) => n.kind === 'dunning_reminder')).toHaveLength(1);
  });

  it('answers a declined offer with its decline, and the recovery dunns on', async () => {
    const world: World = {
      methods: ['pm-failed'],
      answers: { 'pm-failed': ['insufficient_funds'], 'pm-new': ['do_not_honor'] },
    };
    const { status } = await run(world, failure(), {
      schedule: ['1d', '1d'],
      during: async (h) => {
        await until(async () => (await h.query(recoveryStatusQuery)).state === 'dunning');
        world.methods.push('pm-new');
        const answer = await h.executeUpdate(offerPaymentMethodUpdate, { args: [{ payment_method_id: 'pm-new' }] });
        expect(answer).toMatchObject({ outcome: 'declined', decline_code: 'do_not_honor', recovered_with: null });
        expect(answer.state).not.toMatch(/recovered|failed|stopped/);
      },
    });
    expect(status.state).toBe('failed');
  });

  it('refuses an offer it cannot take: ended, cancelled, or no payment method named', async () => {
    const { workflowId } = await run({ methods: ['pm-failed', 'pm-a'], answers: {} }, failure());
    const ended = env.client.workflow.getHandle(workflowId);
    await expect(
      ended.executeUpdate(offerPaymentMethodUpdate, { args: [{ payment_method_id: 'pm-x' }] }),
    ).rejects.toThrow();
    const world: World = { methods: ['pm-failed'], answers: { 'pm-failed': ['insufficient_funds'] } };
    await run(world, failure(), {
      schedule: ['1d'],
      during: async (h) => {
        await until(async () => (await h.query(recoveryStatusQuery)).state === 'dunning');
        const refused = await h.executeUpdate(offerPaymentMethodUpdate, { args: [{ payment_method_id: '' }] }).then(
          () => null,
          (err: Error) => String((err.cause as Error | undefined)?.message ?? err.message),
        );
        // Refused by the message's shape (temporal/messageShapes.ts), before the recovery's own rules.
        expect(refused).toBe('the offerPaymentMethod Update was refused: payment_method_id must be a non-empty string');
        await h.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'test' }] });
        expect((await h.query(recoveryStatusQuery)).state).toBe('stopped');
        await expect(
          h.executeUpdate(offerPaymentMethodUpdate, { args: [{ payment_method_id: 'pm-y' }] }),
        ).rejects.toThrow();
      },
    });
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
          await skipTime(env, '2 hours');
          const stopped = await handle.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'ops' }] });
          expect(stopped).toMatchObject({ state: 'stopped', stop_reason: 'cancelled: ops' });
        },
      },
    );
    expect(status.state).toBe('stopped');
    expect(log.charges).toEqual([]);
  });
});

/** A refusal no retry can fix, as the real activities raise it. */
const refused = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

type Handle = ReturnType<typeof env.client.workflow.getHandle>;
const stateOf = async (h: Handle) => (await h.query(recoveryStatusQuery)).state;
const hours = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 3_600_000;

/** Every card declines; while pm-a is being charged, the customer adds pm-new (which would succeed). */
function cardAddedWhileCharging(f: PaymentFailure): World {
  const world: World = {
    methods: ['pm-failed', 'pm-a'],
    answers: { 'pm-failed': ['insufficient_funds'], 'pm-a': ['insufficient_funds'] },
    charge: async (a) => {
      if (a.payment_method_id !== 'pm-a' || world.methods.includes('pm-new')) return undefined;
      world.methods.push('pm-new');
      await env.client.workflow
        .getHandle(`payment-recovery-${f.payment_id}`)
        .signal(paymentMethodAddedSignal, { payment_method_id: 'pm-new' });
      return undefined;
    },
  };
  return world;
}

describe('payment recovery off the happy path: it never fails, and never strands the customer', () => {
  it('a notification the receiver refuses for good does not fail the recovery: recovered, refusal noted', async () => {
    const { status, log } = await run(
      {
        methods: ['pm-failed', 'pm-a'],
        answers: {},
        notify: async () => {
          throw refused('NotificationRejectedError', 'the notification was refused by the receiver');
        },
      },
      failure(),
    );
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a', undelivered: ['recovered'] });
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-a' }]);
    expect(log.charges).toHaveLength(1);
  });

  it('a refused reminder: dunning goes on, its next retry shown all along, and a new card still recovers', async () => {
    const world: World = {
      methods: ['pm-failed'],
      answers: { 'pm-failed': ['insufficient_funds'] },
      notify: async (req) => {
        if (req.kind === 'dunning_reminder') throw refused('NotificationRejectedError', 'refused');
      },
    };
    const { status } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await handle.query(recoveryStatusQuery)).undelivered.length === 1);
        const mid = await handle.query(recoveryStatusQuery);
        expect(mid).toMatchObject({ state: 'dunning', undelivered: ['reminder-1'] });
        expect(mid.next_retry_at).not.toBeNull();
        world.methods.push('pm-new');
        await handle.signal(paymentMethodAddedSignal, { payment_method_id: 'pm-new' });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-new' });
  });

  it('a charge the gateway refuses waits in needs_attention; ops retry it as a new request: recovered', async () => {
    const f = failure();
    let refusals = 0;
    const asked: string[] = [];
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      charge: async (a) => {
        asked.push(a.idempotency_key);
        if (refusals++ === 0) throw refused('ChargeRefused', 'the gateway refused the request: 422');
        return undefined;
      },
    };
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        const waiting = await handle.query(recoveryStatusQuery);
        expect(waiting.attention).toMatchObject({ payment_method_id: 'pm-a' });
        expect(waiting.attention?.reason).toContain('ChargeRefused');
        expect(waiting.attention).toMatchObject({ skippable: true, unknown_charge: null });
        expect(waiting.next_retry_at).toBeNull();
        // A decision made on an earlier attention (a resent request) is refused, not applied to this one.
        await expect(
          handle.executeUpdate(resolveAttentionUpdate, {
            args: [{ action: 'retry', since: '2020-01-01T00:00:00.000Z' }],
          }),
        ).rejects.toThrow();
        const after = await handle.executeUpdate(resolveAttentionUpdate, {
          args: [{ action: 'retry', since: waiting.attention?.since }],
        });
        expect(after.state).not.toBe('needs_attention');
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a', attention: null });
    // The refused request charged nothing and its key is never sent again: the retry is a request of its own.
    expect(asked).toEqual([`${f.payment_id}:pm-a`, `${f.payment_id}:pm-a:retry1`]);
    expect(log.recovered).toHaveLength(1);
  });

  it('ops may skip the method that cannot be charged: the cascade goes on with the next', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: {},
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a') throw refused('ChargeRefused', 'unknown token');
        return undefined;
      },
    };
    const { status } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        // An offer now would hold one of the Updates in flight that ops need: refused, to be signalled.
        const refusal = await handle
          .executeUpdate(offerPaymentMethodUpdate, { args: [{ payment_method_id: 'pm-new' }] })
          .then(
            () => null,
            (err: Error) => err.cause as ApplicationFailure,
          );
        expect(refusal).toMatchObject({ type: OFFER_BY_SIGNAL, message: expect.stringMatching(/waits for ops/) });
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'skip', note: 'token revoked' }] });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-b' });
    expect(status.attempts.find((a) => a.payment_method_id === 'pm-a')).toMatchObject({
      outcome: 'skipped',
      decline_code: 'skipped_by_ops',
    });
  });

  it('a gateway down through every retry waits in needs_attention; the owner stops it, nothing sent', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      charge: async () => {
        throw new Error('connect ECONNREFUSED');
      },
    };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        // The retries' backoff is server time: skip it until the attempts are spent.
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
        expect((await handle.query(recoveryStatusQuery)).attention).toMatchObject({
          kind: 'charge_unknown',
          reason: expect.stringContaining('ECONNREFUSED'),
        });
        // The payment's owner settled it elsewhere: the gateway is asked (nothing sent), then it stops.
        const answer = await handle.executeUpdate(paymentNoLongerOwedUpdate, {
          args: [{ reason: 'settled_elsewhere', note: 'paid by bank transfer' }],
        });
        expect(answer).toMatchObject({ outcome: 'stopped', charge: null, state: 'stopped' });
      },
    });
    expect(status).toMatchObject({
      state: 'stopped',
      stop_reason: "the payment's owner says it is no longer owed (settled_elsewhere): paid by bank transfer",
    });
    expect(log.recovered).toEqual([]);
  });

  it('a restore that lost its method: needs_attention while dunning, nothing charged until ops decide', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-failed': ['insufficient_funds'], 'pm-a': ['insufficient_funds', 'succeeded'] },
    };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        const attempts = (await handle.query(recoveryStatusQuery)).attempts.length;
        await handle.signal(graphRestoredSignal, {
          reason: 'the restored graph lacks what it acts on: payment method pm-failed is not in it',
          epoch: 1_800_000_000,
          backup_id: 'persona-backup-x',
        });
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        const attention = (await handle.query(recoveryStatusQuery)).attention;
        expect(attention?.reason).toContain('restored from backup persona-backup-x');
        expect(attention?.reason).toContain('pm-failed is not in it');
        // Days pass: it waits for ops, and charges nothing meanwhile; an outage's batch retry does not answer it.
        await handle.signal(retryAttentionSignal);
        await skipTime(env, '10 days');
        expect(await stateOf(handle)).toBe('needs_attention');
        expect((await handle.query(recoveryStatusQuery)).attempts).toHaveLength(attempts);
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'retry' }] });
      },
    });
    expect(status.state).toBe('recovered');
    expect(status.recovered_with).toBe('pm-a');
    // pm-a once before the restore, then pm-failed and pm-a again only after ops' retry.
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-a', 'pm-failed', 'pm-a']);
  });

  it('a restore that lost its customer: ops cancel the recovery it put in needs_attention', async () => {
    const world: World = { methods: ['pm-failed', 'pm-a'], answers: { 'pm-a': ['insufficient_funds'] } };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        await handle.signal(graphRestoredSignal, { reason: 'customer c is not in it', epoch: 1, backup_id: 'b' });
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        await handle.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'ops: customer lost with the graph' }] });
      },
    });
    expect(status).toMatchObject({ state: 'stopped', stop_reason: 'cancelled: ops: customer lost with the graph' });
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-a']);
  });

  it('a charge of unknown outcome (no answer in every retry) cannot be skipped; a retry, same key, can', async () => {
    let gatewayBack = false;
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: {},
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a' && !gatewayBack) throw new Error('the gateway did not answer in 10 s');
        return undefined;
      },
    };
    const f = failure();
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
        expect((await handle.query(recoveryStatusQuery)).attention?.reason).toContain('only a retry');
        // Skipping to pm-b could charge the customer twice (the gateway may have taken pm-a's charge).
        await expect(
          handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'skip', note: 'try the next card' }] }),
        ).rejects.toThrow();
        expect(await stateOf(handle)).toBe('needs_attention');
        const d = await handle.describe();
        console.log(d.status, d.startTime, d.closeTime, d.raw.executionConfig);
        gatewayBack = true;
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'retry' }] });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(log.charges.map((c) => c.idempotency_key)).toEqual([`${f.payment_id}:pm-a`]);
  });

  it('an unknown outcome is sticky: never skipped, nothing else charged; the owner’s stop learns of it', async () => {
    const unknown = () => ApplicationFailure.create({ type: 'ChargeOutcomeUnknown', message: 'no answer in 10 s' });
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: {},
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a') throw unknown();
        return undefined;
      },
      // Asked without sending, the gateway has the charge: it went through.
      settle: async () => ({ outcome: 'succeeded', charge_id: 'ch_found' }),
    };
    const f = failure();
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
        const waiting = await handle.query(recoveryStatusQuery);
        expect(waiting.attention).toMatchObject({
          skippable: false,
          unknown_charge: `${f.payment_id}:pm-a`,
          payment_method_id: 'pm-a',
        });
        await expect(
          handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'skip', note: 'next card' }] }),
        ).rejects.toThrow();
        // A retry that is still unknown: back to needs_attention, still not skippable.
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'retry' }] });
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
        expect((await handle.query(recoveryStatusQuery)).attention?.skippable).toBe(false);
        // The owner says it was settled elsewhere: the recovery asks the gateway what became of the
        // charge, and answers the charge it made — never hidden.
        const answer = await handle.executeUpdate(paymentNoLongerOwedUpdate, {
          args: [{ reason: 'settled_elsewhere' }],
        });
        expect(answer).toMatchObject({
          outcome: 'recovered',
          state: 'recovered',
          charge: { payment_method_id: 'pm-a', charge_id: 'ch_found', amount: f.amount, currency: f.currency },
        });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(log.settled).toEqual([`${f.payment_id}:pm-a`]);
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-a' }]);
    // pm-b was never charged: nothing else moves while an outcome is unknown.
    expect(log.charges.map((c) => c.payment_method_id)).toEqual([]);
    expect(log.stopped ?? []).toEqual([]);
  });

  it('the owner’s stop during an unknown outcome the gateway never made stops, recorded in the ledger', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: {},
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a')
          throw ApplicationFailure.create({ type: 'ChargeOutcomeUnknown', message: '503 after commit?' });
        return undefined;
      },
    };
    const f = failure();
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
        await handle.executeUpdate(paymentNoLongerOwedUpdate, { args: [{ reason: 'not_owed' }] });
      },
    });
    const reason = "the payment's owner says it is no longer owed (not_owed)";
    expect(status).toMatchObject({ state: 'stopped', stop_reason: reason, recovered_with: null });
    expect(log.settled).toEqual([`${f.payment_id}:pm-a`]);
    expect(log.charges).toEqual([]);
    expect(log.stopped).toEqual([reason]);
  });

  /** pm-a's charge never gets an answer (an unknown outcome); the other methods answer as `answers` says. */
  const unknownOnPmA = (): Pick<World, 'methods' | 'answers' | 'charge'> => ({
    methods: ['pm-failed', 'pm-a', 'pm-b'],
    answers: {},
    charge: async (a) => {
      if (a.payment_method_id === 'pm-a')
        throw ApplicationFailure.create({ type: 'ChargeOutcomeUnknown', message: 'no answer in 10 s' });
      return undefined;
    },
  });

  /**
   * A stopping recovery (`settleFor` 3h) asks a gateway that is away: not overdue at first; past the
   * deadline listed as overdue, still asking (nothing sent, nothing stopped); back, the next try
   * (backoff up to 10 minutes) gets its answer and the listing goes.
   */
  async function overdueUntilTheGatewayAnswers(
    handle: ReturnType<typeof env.client.workflow.getHandle>,
    gateway: { away: boolean },
  ) {
    const overdue = async () => (await handle.describe()).typedSearchAttributes.get(personaOverdue);
    expect(await overdue()).toBeUndefined();
    await skipTime(env, '4 hours');
    await until(async () => (await overdue()) === 'charge_settle');
    expect(await stateOf(handle)).not.toBe('stopped');
    gateway.away = false;
    await skipTime(env, '15 minutes');
    await until(async () => (await overdue()) === undefined);
  }

  it('a stop whose unknown charge the gateway will not tell of: overdue past the deadline, asking on', async () => {
    const gateway = { away: true };
    const world: World = {
      ...unknownOnPmA(),
      // The gateway is away for hours: every question fails, retryable; then it has the charge.
      settle: async () => {
        if (gateway.away) throw ApplicationFailure.create({ type: 'GatewayUnavailable', message: '503' });
        return { outcome: 'succeeded', charge_id: 'ch_late' };
      },
    };
    const f = failure();
    const key = `${f.payment_id}:pm-a`;
    let word: Promise<unknown> | undefined;
    const { status, log } = await run(world, f, {
      settleFor: '3h',
      during: async (handle) => {
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
        const update = await handle.startUpdate(paymentNoLongerOwedUpdate, {
          args: [{ reason: 'not_owed' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        word = update.result();
        await overdueUntilTheGatewayAnswers(handle, gateway);
      },
    });
    // The gateway had the charge: recorded, and the owner is told of it — never left off the books.
    expect(await word).toMatchObject({ outcome: 'recovered', charge: { charge_id: 'ch_late' } });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect((log.settled ?? []).length).toBeGreaterThan(3);
    expect(new Set(log.settled)).toEqual(new Set([key]));
    expect(log.charges).toEqual([]);
  });

  it('a stop whose unknown charge the gateway refuses to tell of for good stops, naming the key', async () => {
    const world: World = {
      ...unknownOnPmA(),
      settle: async () => {
        throw ApplicationFailure.create({
          type: 'GatewayRefused',
          message: '403 from the gateway',
          nonRetryable: true,
        });
      },
    };
    const f = failure();
    const key = `${f.payment_id}:pm-a`;
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
        const answer = await handle.executeUpdate(paymentNoLongerOwedUpdate, { args: [{ reason: 'not_owed' }] });
        // The owner is told the charge's outcome is unknown, and under which key.
        expect(answer).toMatchObject({ outcome: 'charge_unknown', unknown_charge: key });
      },
    });
    expect(status.state).toBe('stopped');
    expect(status.stop_reason).toContain("the payment's owner says it is no longer owed (not_owed)");
    expect(status.stop_reason).toContain(`the charge under idempotency key ${key} is of unknown outcome`);
    expect(log.settled).toEqual([key]);
    expect(log.charges).toEqual([]);
    expect(log.stopped).toEqual([status.stop_reason]);
  });

  it('a payment whose recovery ended before (the ledger says so) charges nothing', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      begin: async () => ({
        proceed: false,
        state: 'recovered',
        ended: { state: 'recovered', recovered_with: 'pm-a', charge_id: 'ch_1', reason: null },
      }),
    };
    const f = failure();
    const { status, log } = await run(world, f);
    // It ends as the ledger says (another run of the payment recovered it), and records nothing.
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(log.charges).toEqual([]);
    expect(log.notified).toEqual([]);
    expect(log.recovered).toEqual([]);
  });

  it('a run that finds a stop asked of the ledger before it began charges nothing and stops', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      begin: async () => ({ stop_request: "the payment's owner says it is no longer owed (settled_elsewhere)" }),
    };
    const { status, log } = await run(world, failure());
    expect(status).toMatchObject({
      state: 'stopped',
      stop_reason: "the payment's owner says it is no longer owed (settled_elsewhere)",
    });
    expect(log.charges).toEqual([]);
    // What an earlier run left open is settled with the gateway before it stops.
    expect(log.settledOpen).toBe(1);
  });

  it('a charge that an earlier run made (the ledger resolved it first) is recorded on that run’s method', async () => {
    const f = failure();
    const world: World = {
      methods: ['pm-failed', 'pm-new', 'pm-a'],
      answers: {},
      charge: async (a) =>
        a.payment_method_id === 'pm-new'
          ? {
              outcome: 'succeeded',
              charge_id: 'ch_earlier',
              other_attempt: { payment_method_id: 'pm-a', idempotency_key: `${f.payment_id}:pm-a` },
            }
          : undefined,
    };
    const { status, log } = await run(world, f);
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-a' }]);
    expect(status.attempts.at(-1)).toMatchObject({ payment_method_id: 'pm-a', outcome: 'succeeded' });
  });

  it('a run that would fail settles an earlier run’s open charge first: one through recovers it', async () => {
    const f = failure();
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-failed': ['generic_decline'], 'pm-a': ['do_not_honor'] },
      // An earlier run (reset, or terminated) charged pm-b, which is gone from the wallet since.
      settleOpen: async () => ({
        outcome: 'succeeded',
        charge_id: 'ch_earlier',
        other_attempt: { payment_method_id: 'pm-b', idempotency_key: `${f.payment_id}:pm-b` },
      }),
    };
    const { status, log } = await run(world, f, { schedule: ['1d'] });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-b' });
    expect(log.settledOpen).toBe(1);
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-b' }]);
    expect(log.failed).toBe(0);
    expect(log.notified.map((n) => n.kind)).not.toContain('payment_failed');
  });

  it('a stop whose earlier run’s open charge the gateway will not tell of: overdue past the deadline', async () => {
    const gateway = { away: true };
    const f = failure();
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-a': ['insufficient_funds'] },
      settleOpen: async () => {
        if (gateway.away) throw ApplicationFailure.create({ type: 'GatewayUnavailable', message: '503' });
        return undefined;
      },
    };
    const { status, log } = await run(world, f, {
      settleFor: '3h',
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        await handle.startUpdate(cancelRecoveryUpdate, {
          args: [{ reason: 'ops' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        await overdueUntilTheGatewayAnswers(handle, gateway);
      },
    });
    expect(status).toMatchObject({ state: 'stopped', stop_reason: 'cancelled: ops' });
    expect(log.settledOpen).toBeGreaterThan(3);
  });

  it('a stop the graph refuses to write to the ledger for good still stops the recovery, logged', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-a': ['insufficient_funds'] },
      fence: async () => {
        throw refused('NotFoundError', 'Recovery not found');
      },
    };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        await handle.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'ops' }] });
      },
    });
    expect(status).toMatchObject({ state: 'stopped', stop_reason: 'cancelled: ops' });
    expect(log.fenced ?? []).toEqual([]);
    expect(log.stopped).toEqual(['cancelled: ops']);
  });

  /** The gateway refuses for good to tell what became of an earlier run's open charge under `key`. */
  const refusesToTellOf = (key: string) => async (): Promise<ChargeOutcome | undefined> => {
    throw ApplicationFailure.create({
      type: 'GatewayRejectedError',
      message: 'the gateway refused the listing (401)',
      nonRetryable: true,
      details: [{ idempotency_key: key }],
    });
  };

  it('an earlier run’s open charge the gateway refuses to tell of for good: stops, naming the key', async () => {
    const f = failure();
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-a': ['insufficient_funds'] },
      settleOpen: refusesToTellOf(`${f.payment_id}:pm-old`),
    };
    const { status } = await run(world, f, {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        const answer = await handle.executeUpdate(paymentNoLongerOwedUpdate, { args: [{ reason: 'not_owed' }] });
        expect(answer).toMatchObject({ outcome: 'charge_unknown', unknown_charge: `${f.payment_id}:pm-old` });
      },
    });
    expect(status.state).toBe('stopped');
    expect(status.stop_reason).toContain(`${f.payment_id}:pm-old`);
  });

  it('a failing run names in its failure an earlier run’s open charge the gateway will not tell of', async () => {
    const f = failure();
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-failed': ['generic_decline'], 'pm-a': ['do_not_honor'] },
      settleOpen: refusesToTellOf(`${f.payment_id}:pm-old`),
    };
    const { status, log } = await run(world, f, { schedule: ['1d'] });
    expect(status.state).toBe('failed');
    expect(log.failedWhy).toEqual([expect.stringContaining(`${f.payment_id}:pm-old is of unknown outcome`)]);
  });

  it('a run that gives up while another run of the payment recovered it ends recovered, and says nothing', async () => {
    const world: World = {
      methods: ['pm-failed'],
      answers: { 'pm-failed': ['insufficient_funds'] },
      ledgerEnd: async () => ({ state: 'recovered', recovered_with: 'pm-other', charge_id: 'ch_other', reason: null }),
    };
    const { status, log } = await run(world, failure(), { schedule: ['1d'] });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-other' });
    expect(log.notified.map((n) => n.kind)).not.toContain('payment_failed');
  });

  it('a stop recorded after another run of the payment failed ends failed, as the ledger says', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-a': ['insufficient_funds'] },
      ledgerEnd: async () => ({ state: 'failed', recovered_with: null, charge_id: null, reason: 'all failed' }),
    };
    const { status } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        const answer = await handle.executeUpdate(paymentNoLongerOwedUpdate, { args: [{ reason: 'not_owed' }] });
        expect(answer).toMatchObject({ outcome: 'failed', state: 'failed', charge: null });
      },
    });
    expect(status.state).toBe('failed');
  });

  it('a run the ledger refuses because another ended the payment ends as the ledger says', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      charge: async () => ({
        outcome: 'not_charged',
        reason: 'recovery_ended',
        ended: { state: 'stopped', recovered_with: null, charge_id: null, reason: 'cancelled: ops' },
      }),
    };
    const { status, log } = await run(world, failure());
    expect(status).toMatchObject({ state: 'stopped', stop_reason: 'cancelled: ops' });
    expect(log.stopped ?? []).toEqual([]);
  });

  it('acts on what the activities decided of a decline, not on a table of its own', async () => {
    // An edited table: insufficient_funds is fraud-class now. The workflow follows the activity's answer.
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      decide: (code) => ({ ...decideDecline(code), class: 'fraud_hard', status: 'compromised', do_not_retry: true }),
    };
    const { status, log } = await run(world, failure({ decline_code: 'insufficient_funds' }));
    expect(status).toMatchObject({ state: 'stopped', stop_reason: 'fraud-class decline insufficient_funds' });
    expect(log.deactivated).toEqual([{ payment_method_id: 'pm-failed', status: 'compromised' }]);
    expect(log.charges).toEqual([]);
    expect(log.stopped).toEqual(['fraud-class decline insufficient_funds']);
  });

  it('a declined method the graph no longer has (removed meanwhile) does not fail the recovery', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: { 'pm-a': ['stolen_card'] },
      deactivate: async () => {
        throw refused('NotFoundError', 'PaymentMethod pm-a not found');
      },
    };
    const { status, log } = await run(world, failure());
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-b' });
    expect(log.charges.filter((c) => c.payment_method_id === 'pm-a')).toHaveLength(1);
  });

  it('two ops deciding at once, both before the worker polls: one decision is taken, the other refused', async () => {
    const log: Log = { charges: [], deactivated: [], notified: [], recovered: [], failed: 0 };
    let refusals = 0;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      charge: async () => {
        if (refusals++ === 0) throw refused('ChargeRefused', 'refused');
        return undefined;
      },
    };
    const taskQueue = `recovery-${randomUUID()}`;
    const f = failure();
    // No sticky cache: the second worker must be the one that gets the workflow task, at once.
    const worker = () =>
      Worker.create({
        sinks: NO_OPEN_PROCESS_SINKS,
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: bundle,
        activities: fakes(world, log),
        maxCachedWorkflows: 0,
      });
    const handle = await env.client.workflow.signalWithStart(paymentRecoveryWorkflow, {
      workflowId: `payment-recovery-${f.payment_id}`,
      taskQueue,
      args: [{ dunningSchedule: ['1d'] }],
      signal: paymentFailedSignal,
      signalArgs: [f],
    });
    await (await worker()).runUntil(until(async () => (await stateOf(handle)) === 'needs_attention'));
    // No worker polls now: both decisions wait at the server and reach the workflow together.
    const decisions = (['retry', 'skip'] as const).map((action) =>
      handle.executeUpdate(resolveAttentionUpdate, { args: [{ action }] }).then(
        () => ({ action, taken: true, reason: '' }),
        (err: Error) => ({
          action,
          taken: false,
          reason: String((err.cause as Error | undefined)?.message ?? err.message),
        }),
      ),
    );
    const [status, answers] = await (
      await worker()
    ).runUntil(async () => [await handle.result(), await Promise.all(decisions)] as const);
    expect(answers.filter((a) => a.taken)).toHaveLength(1);
    const lost = answers.find((a) => !a.taken);
    expect(lost?.reason).toMatch(/decided already|does not need attention/);
    const winner = answers.find((a) => a.taken)?.action;
    expect(status.state).toBe('recovered');
    // Retry: pm-a again, now charged. Skip: pm-a is passed over, and the dunning round recovers
    // with the first card it tries (the one that failed first).
    expect(status.recovered_with).toBe(winner === 'retry' ? 'pm-a' : 'pm-failed');
  });

  it('charged, but the graph refuses the record: needs_attention, no second charge; a retry records it', async () => {
    let refusals = 0;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      record: async () => {
        if (refusals++ === 0) throw refused('NotFoundError', 'Customer not found');
      },
    };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        const waiting = await handle.query(recoveryStatusQuery);
        // Charged: the query says with which method, while the record waits.
        expect(waiting).toMatchObject({ recovered_with: 'pm-a', attention: { payment_method_id: null } });
        expect(waiting.attention?.reason).toContain('could not be recorded');
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'retry' }] });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(log.charges).toHaveLength(1);
    expect(log.recovered).toHaveLength(1);
  });

  it('after money moved, the record is retried for as long as the graph is down (no attempt cap)', async () => {
    let failures = 0;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      record: async () => {
        // More failures than any bounded retry policy of a graph write allows (graphWrite: 20).
        if (failures++ < 30) throw new Error('Neo4j unavailable');
      },
    };
    const { status, log } = await run(world, failure(), {
      during: async () => {
        // The retries' backoff is server time: skip it while they go on.
        while (failures <= 30) await skipTime(env, '5 minutes');
      },
    });
    expect(status.state).toBe('recovered');
    expect(failures).toBe(31);
    expect(log.charges).toHaveLength(1);
  });

  it('a card added while the reminder is sent is not lost: the retry comes at once, not a delay later', async () => {
    const f = failure();
    const world: World = {
      methods: ['pm-failed'],
      answers: { 'pm-failed': ['insufficient_funds'] },
      notify: async (req) => {
        if (req.kind !== 'dunning_reminder' || world.methods.includes('pm-new')) return;
        world.methods.push('pm-new');
        await env.client.workflow
          .getHandle(`payment-recovery-${f.payment_id}`)
          .signal(paymentMethodAddedSignal, { payment_method_id: 'pm-new' });
      },
    };
    const { status } = await run(world, f, { schedule: ['3d'] });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-new' });
    const [first, last] = [status.attempts[0], status.attempts.at(-1)];
    expect(hours(first!.at, last!.at)).toBeLessThan(1);
  });

  it('a card added while the cascade charges is not lost either', async () => {
    const f = failure();
    const world = cardAddedWhileCharging(f);
    const { status } = await run(world, f, { schedule: ['3d'] });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-new' });
    expect(hours(status.attempts[0]!.at, status.attempts.at(-1)!.at)).toBeLessThan(1);
  });

  it('a card added during the last pass is still tried before the recovery gives up', async () => {
    const f = failure();
    const world = cardAddedWhileCharging(f);
    // No dunning at all: the first cascade is the last pass.
    const { status, log } = await run(world, f, { schedule: [] });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-new' });
    expect(log.failed).toBe(0);
  });

  it('a suspended customer is not charged this round; the next round asks the graph again', async () => {
    let suspended = true;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-failed': ['insufficient_funds'] },
      charge: async () => {
        if (!suspended) return undefined;
        suspended = false; // reinstated by the time of the next round
        return { outcome: 'not_charged', reason: 'customer_suspended' };
      },
    };
    const { status, log } = await run(world, failure(), { schedule: ['1d'] });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(status.attempts.map((a) => a.decline_code)).toEqual([
      'insufficient_funds',
      'customer_suspended',
      'insufficient_funds',
      null,
    ]);
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-failed', 'pm-a']);
  });

  it('an erased customer is never charged: the recovery stops', async () => {
    const { status, log } = await run(
      {
        methods: ['pm-failed', 'pm-a'],
        answers: {},
        charge: async () => ({ outcome: 'not_charged', reason: 'customer_erased' }),
      },
      failure(),
    );
    expect(status).toMatchObject({ state: 'stopped', stop_reason: 'the customer was erased' });
    expect(log.charges).toEqual([]);
    expect(log.notified).toEqual([]);
  });

  it('a hard cancel during a charge: the charge completes and is recorded, never abandoned', async () => {
    let started = false;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      charge: async () => {
        started = true;
        await gate;
        return undefined;
      },
    };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => started);
        await handle.cancel();
        release();
      },
    });
    expect(status.state).toBe('recovered');
    expect(log.charges).toHaveLength(1);
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-a' }]);
  });

  it('a hard cancel during a charge that declines: no other card is charged, the recovery stops', async () => {
    let started = false;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: { 'pm-a': ['insufficient_funds'] },
      charge: async (a) => {
        if (a.payment_method_id !== 'pm-a') return undefined;
        started = true;
        await gate;
        return undefined;
      },
    };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => started);
        await handle.cancel();
        release();
      },
    });
    expect(status).toMatchObject({ state: 'stopped', stop_reason: 'workflow cancelled' });
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-a']);
    expect(log.stopped).toEqual(['workflow cancelled']);
  });

  it('a charge that failed before anything was sent (ChargeNotSent) may be skipped', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: {},
      charge: async (a) => {
        // For good (the processor refused to name the card): what is skippable is the point here; a
        // charge's retries running out is the test above. No skipped time to wait through, so the
        // test server's clock (shared by the file) cannot run past what the test waits for.
        if (a.payment_method_id === 'pm-a')
          throw ApplicationFailure.create({
            type: 'ChargeNotSent',
            message: 'the processor could not name the card',
            nonRetryable: true,
          });
        return undefined;
      },
    };
    const { status } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        expect((await handle.query(recoveryStatusQuery)).attention).toMatchObject({
          skippable: true,
          unknown_charge: null,
        });
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'skip' }] });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-b' });
  });

  it('a hard cancel while dunning stops the recovery with a final state', async () => {
    const { status } = await run(
      { methods: ['pm-failed'], answers: { 'pm-failed': ['insufficient_funds'] } },
      failure(),
      {
        during: async (handle) => {
          await until(async () => (await stateOf(handle)) === 'dunning');
          await handle.cancel();
        },
      },
    );
    expect(status).toMatchObject({ state: 'stopped', stop_reason: 'workflow cancelled' });
  });
});

/** A charge held at the gateway until the test lets it answer (heartbeating meanwhile, as a real charge does). */
function heldCharge(): { held: Promise<void>; answer: () => void; charge: () => Promise<void> } {
  let answer!: () => void;
  let reached!: () => void;
  const released = new Promise<void>((resolve) => (answer = resolve));
  const held = new Promise<void>((resolve) => (reached = resolve));
  const charge = async () => {
    reached();
    let done = false;
    void released.then(() => (done = true));
    while (!done) {
      Context.current().heartbeat();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  return { held, answer, charge };
}

/** Why an Update was refused: the workflow's failure (type and message). */
const refusalOf = (update: Promise<unknown>) =>
  update.then(
    () => null,
    (err: Error) => err.cause as ApplicationFailure,
  );

describe('stopping a recovery: taken at once, written to the ledger, never between a charge and its record', () => {
  it('a cancel while a charge is under way is taken and written to the ledger; it declines and stops', async () => {
    const gate = heldCharge();
    let asked = false;
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: { 'pm-a': ['insufficient_funds'] },
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a') await gate.charge();
        return undefined;
      },
      fence: async () => void (asked = true),
    };
    const f = failure();
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        await gate.held;
        const cancel = await handle.startUpdate(cancelRecoveryUpdate, {
          args: [{ reason: 'ops: mid-charge' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        // The stop is written to the charge ledger at once (the charge under way sends nothing more).
        await until(async () => asked);
        gate.answer();
        expect(await cancel.result()).toMatchObject({ state: 'stopped', stop_reason: 'cancelled: ops: mid-charge' });
        // A resent cancel of a recovery that stopped is refused: it has ended.
        await expect(
          handle.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'ops: again' }] }),
        ).rejects.toThrow();
      },
    });
    expect(status.state).toBe('stopped');
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-a']);
    expect(log.fenced).toEqual(['ops']);
    expect(log.stopped).toEqual(['cancelled: ops: mid-charge']);
  });

  it('a cancel after ops answered an attention is taken: their decision does not hold it back', async () => {
    let refusals = 0;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-a': ['insufficient_funds'] },
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a' && refusals++ === 0) throw refused('ChargeRefused', 'token revoked');
        return undefined;
      },
    };
    const { status } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'retry' }] });
        await until(async () => (await stateOf(handle)) === 'dunning');
        const stopped = await handle.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'ops: later' }] });
        expect(stopped).toMatchObject({ state: 'stopped', stop_reason: 'cancelled: ops: later' });
      },
    });
    expect(status.state).toBe('stopped');
  });

  it('a cancel without a reason, or before the failure arrived, is refused and changes nothing', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-failed': ['insufficient_funds'], 'pm-a': ['insufficient_funds'] },
    };
    const { status } = await run(world, failure(), {
      schedule: ['1d'],
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        const refusal = await refusalOf(handle.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: '  ' }] }));
        expect(refusal?.message).toBe('reason is required');
        expect(await stateOf(handle)).toBe('dunning');
      },
    });
    expect(status.state).toBe('failed');
  });

  it('the owner’s word mid-charge goes to the ledger; the charge in flight is recorded and answered', async () => {
    const gate = heldCharge();
    let asked = false;
    const world: World = {
      methods: ['pm-failed', 'pm-a', 'pm-b'],
      answers: {},
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a') await gate.charge();
        return undefined;
      },
      fence: async () => void (asked = true),
    };
    const f = failure();
    const { status, log } = await run(world, f, {
      during: async (handle) => {
        await gate.held;
        const update = await handle.startUpdate(paymentNoLongerOwedUpdate, {
          args: [{ reason: 'settled_elsewhere' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        // The stop is written to the charge ledger at once; the charge under way went through after all.
        await until(async () => asked);
        gate.answer();
        expect(await update.result()).toEqual({
          payment_id: f.payment_id,
          outcome: 'recovered',
          charge: { payment_method_id: 'pm-a', charge_id: 'ch_1', amount: f.amount, currency: f.currency },
          unknown_charge: null,
          state: 'recovered',
          stop_reason: null,
        });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(log.recovered).toEqual([{ payment_method_id: 'pm-a' }]);
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-a']);
  });

  it('the owner’s word while dunning stops it at once: nothing more is charged, the ledger says why', async () => {
    const world: World = { methods: ['pm-failed', 'pm-a'], answers: { 'pm-a': ['insufficient_funds', 'succeeded'] } };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        const answer = await handle.executeUpdate(paymentNoLongerOwedUpdate, {
          args: [{ reason: 'not_owed', note: 'subscription cancelled' }],
        });
        expect(answer).toMatchObject({ outcome: 'stopped', charge: null, state: 'stopped' });
        // It has ended: a second word is refused (the api answers it from the charge ledger).
        await expect(
          handle.executeUpdate(paymentNoLongerOwedUpdate, { args: [{ reason: 'settled_elsewhere' }] }),
        ).rejects.toThrow();
      },
    });
    const reason = "the payment's owner says it is no longer owed (not_owed): subscription cancelled";
    expect(status).toMatchObject({ state: 'stopped', stop_reason: reason });
    expect(log.charges).toHaveLength(1);
    expect(log.stopped).toEqual([reason]);
  });

  it('while a charge is recorded a cancel and the owner’s word are taken, and both wait for the record', async () => {
    let refusals = 0;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      record: async () => {
        if (refusals++ === 0) throw refused('NotFoundError', 'Customer not found');
      },
    };
    const { status, log } = await run(world, failure(), {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        const cancel = await handle.startUpdate(cancelRecoveryUpdate, {
          args: [{ reason: 'ops' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        const word = await handle.startUpdate(paymentNoLongerOwedUpdate, {
          args: [{ reason: 'settled_elsewhere' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        // Neither cuts the record short: it still waits for ops.
        expect(await stateOf(handle)).toBe('needs_attention');
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'retry' }] });
        expect(await word.result()).toMatchObject({ outcome: 'recovered', charge: { payment_method_id: 'pm-a' } });
        expect(await cancel.result()).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(log.recovered).toHaveLength(1);
  });
});

describe('a stop wins: nothing is charged once a stop is taken, whatever comes with it', () => {
  it('the owner’s word and a batch retry in one workflow task: the charge is settled, never sent again', async () => {
    const log: Log = { charges: [], deactivated: [], notified: [], recovered: [], failed: 0 };
    let sent = 0;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      charge: async () => {
        sent++;
        throw new Error('the gateway did not answer in 10 s');
      },
    };
    const taskQueue = `recovery-${randomUUID()}`;
    const f = failure();
    const worker = () =>
      Worker.create({
        sinks: NO_OPEN_PROCESS_SINKS,
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: bundle,
        activities: fakes(world, log),
        maxCachedWorkflows: 0,
      });
    const handle = await env.client.workflow.signalWithStart(paymentRecoveryWorkflow, {
      workflowId: `payment-recovery-${f.payment_id}`,
      taskQueue,
      args: [{ dunningSchedule: ['1d'], chargeRetryFor: '30m' }],
      signal: paymentFailedSignal,
      signalArgs: [f],
    });
    await (
      await worker()
    ).runUntil(async () => {
      while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
    });
    const before = sent;
    // No worker polls now: the batch's retry and the owner's word reach the workflow together.
    await handle.signal(retryAttentionSignal);
    const word = handle.executeUpdate(paymentNoLongerOwedUpdate, { args: [{ reason: 'settled_elsewhere' }] });
    const [status, answer] = await (await worker()).runUntil(async () => [await handle.result(), await word] as const);
    expect(sent).toBe(before);
    expect(log.settled).toEqual([`${f.payment_id}:pm-a`]);
    expect(answer).toMatchObject({ outcome: 'stopped', charge: null, unknown_charge: null });
    expect(status.state).toBe('stopped');
  });

  it('a cancellation request after the owner’s word: the accepted Update is answered with the charge', async () => {
    const gate = heldCharge();
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a') await gate.charge();
        return undefined;
      },
    };
    const { status } = await run(world, failure(), {
      during: async (handle) => {
        await gate.held;
        const word = await handle.startUpdate(paymentNoLongerOwedUpdate, {
          args: [{ reason: 'settled_elsewhere' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        await handle.cancel();
        gate.answer();
        expect(await word.result()).toMatchObject({
          outcome: 'recovered',
          charge: { payment_method_id: 'pm-a', charge_id: 'ch_1' },
        });
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
  });
});

describe('a fleet of recoveries: found by search attributes, retried in one batch, overdue when nobody answers', () => {
  it('search attributes follow its state, why it waits for ops, and its customer through a merge', async () => {
    let gatewayBack = false;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-a': ['insufficient_funds', 'succeeded'] },
      charge: async (a) => {
        if (a.idempotency_key.endsWith(':r1') && !gatewayBack) throw new Error('connect ECONNREFUSED');
        return undefined;
      },
    };
    const f = failure();
    const survivor = randomUUID();
    const indexed = async (handle: Handle) => {
      const attrs = (await handle.describe()).typedSearchAttributes;
      return {
        state: attrs.get(personaRecoveryState),
        reason: attrs.get(personaAttentionReason),
        customer: attrs.get(personaCustomerId),
      };
    };
    const { status } = await run(world, f, {
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        expect(await indexed(handle)).toEqual({ state: 'dunning', reason: undefined, customer: undefined });
        await handle.signal(customerMergedSignal, { merge_id: 'm1', merged_id: f.customer_id, survivor_id: survivor });
        await until(async () => (await indexed(handle)).customer === survivor);
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '1 hour');
        await until(async () => (await indexed(handle)).reason === 'charge_unknown');
        expect(await indexed(handle)).toEqual({
          state: 'needs_attention',
          reason: 'charge_unknown',
          customer: survivor,
        });
        gatewayBack = true;
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'retry' }] });
      },
    });
    expect(status.state).toBe('recovered');
  });

  it('the batch signal retries a recovery waiting for ops, as ops’ retry would', async () => {
    let gatewayBack = false;
    const down: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: {},
      charge: async () => {
        if (!gatewayBack) throw new Error('the gateway did not answer in 10 s');
        return undefined;
      },
    };
    const { status, log } = await run(down, failure(), {
      during: async (handle) => {
        while ((await stateOf(handle)) !== 'needs_attention') await skipTime(env, '5 minutes');
        gatewayBack = true;
        // As Temporal's batch operation sends it: no arguments, no customer data.
        await handle.signal(retryAttentionSignal);
      },
    });
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-a']);
  });

  it('the batch signal leaves a recovery that does not wait for ops alone', async () => {
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-failed': ['insufficient_funds'], 'pm-a': ['insufficient_funds'] },
    };
    const { status, log } = await run(world, failure(), {
      schedule: ['1d'],
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'dunning');
        const before = await handle.query(recoveryStatusQuery);
        await handle.signal(retryAttentionSignal);
        expect(await handle.query(recoveryStatusQuery)).toEqual(before);
      },
    });
    // Its schedule as it was: the first pass, then one round of both cards.
    expect(status.state).toBe('failed');
    expect(log.charges.map((c) => c.payment_method_id)).toEqual(['pm-a', 'pm-failed', 'pm-a']);
  });

  it('a wait for ops has a deadline: past it the attention is overdue, and it still waits', async () => {
    let refusals = 0;
    const world: World = {
      methods: ['pm-failed', 'pm-a'],
      answers: { 'pm-failed': ['insufficient_funds'] },
      charge: async (a) => {
        if (a.payment_method_id === 'pm-a' && refusals++ === 0)
          throw refused('ChargeRefused', 'token revoked at the processor');
        return undefined;
      },
    };
    const { status } = await run(world, failure(), {
      schedule: ['1d'],
      attentionDeadline: '2h',
      during: async (handle) => {
        await until(async () => (await stateOf(handle)) === 'needs_attention');
        const waiting = (await handle.query(recoveryStatusQuery)).attention;
        expect(waiting).toMatchObject({ kind: 'charge_refused', overdue: false, skippable: true });
        expect(hours(waiting?.since ?? '', waiting?.due_at ?? '')).toBe(2);
        await skipTime(env, '3 hours');
        await until(async () => (await handle.query(recoveryStatusQuery)).attention?.overdue === true);
        expect(await stateOf(handle)).toBe('needs_attention');
        // Found among everything overdue while it is, and no longer once answered.
        const overdue = async () => (await handle.describe()).typedSearchAttributes.get(personaOverdue);
        await until(async () => (await overdue()) === 'recovery_attention');
        await handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'skip' }] });
        await until(async () => (await overdue()) === undefined);
      },
    });
    // Skipped, then charged again in the next round.
    expect(status).toMatchObject({ state: 'recovered', recovered_with: 'pm-a' });
  });
});
