/**
 * The fraud-outcome workflow on the time-skipping server, with fake activities that record what
 * they were asked. A waiting payment-recovery workflow stands in for a running recovery.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterEach, describe, expect, it } from 'vitest';
import type { NotifyRequest } from '../../activities/notifications';
import type { AppliedFraudOutcome, FraudOutcomeReport, FraudReversal, ReviewDecision } from '../../graph/fraud';
import {
  fraudOutcomeStatusQuery,
  fraudOutcomeWorkflowId,
  resolveReviewUpdate,
  reviewResolvedSignal,
  type FraudOutcomeStatus,
} from '../../temporal/fraud';
import { fraudOutcomeWorkflow, paymentRecoveryWorkflow } from '../../workflows';
import { NO_OPEN_PROCESS_SINKS, useWorkflowTestEnv } from '../support/temporal';
import { until } from '../support/wait';
import { personaOverdue } from '../../temporal/searchAttributes';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

interface Log {
  applied: FraudOutcomeReport[];
  reversed: string[];
  reviews: { outcome_id: string; decision: ReviewDecision; restore_to?: string }[];
  notified: NotifyRequest[];
}

/** What the fakes do before answering (each may throw, or wait). */
interface Hooks {
  apply?: () => Promise<void>;
  recoveries?: () => Promise<void>;
  notify?: () => Promise<void>;
  /** The graph's answer to a reversal, instead of the default one. */
  reversal?: FraudReversal;
}
let hooks: Hooks = {};

function fakes(log: Log, running: string[] = [], reversedOutcomeId: string | null = null) {
  return {
    async applyFraudOutcome(report: FraudOutcomeReport, options: { trust_step: number }): Promise<AppliedFraudOutcome> {
      await hooks.apply?.();
      log.applied.push(report);
      const suspended = report.outcome === 'confirmed_fraud' || report.outcome === 'account_takeover';
      const changes: AppliedFraudOutcome['changes'] = [];
      if (report.device_id)
        changes.push({
          entity: 'device',
          id: report.device_id,
          field: 'trust_score',
          from: 0.5,
          to: suspended ? 0 : 0.5 + options.trust_step,
        });
      if (suspended)
        changes.push({ entity: 'customer', id: report.customer_id, field: 'status', from: 'active', to: 'suspended' });
      return { outcome_id: report.outcome_id, outcome: report.outcome, changes, suspended };
    },
    async reverseFraudOutcome(req: { outcome_id: string }): Promise<FraudReversal> {
      log.reversed.push(req.outcome_id);
      return hooks.reversal ?? { reversed_outcome_id: reversedOutcomeId, restored: [], skipped: [] };
    },
    async resolveFraudReview(req: {
      outcome_id: string;
      decision: ReviewDecision;
      restore_to?: string;
    }): Promise<{ reinstated: boolean }> {
      log.reviews.push(req);
      return { reinstated: req.decision === 'reinstate' };
    },
    async listRunningRecoveries(): Promise<string[]> {
      await hooks.recoveries?.();
      return running;
    },
    async notifyCustomer(req: NotifyRequest): Promise<{ sent: boolean; channel: 'email' }> {
      await hooks.notify?.();
      log.notified.push(req);
      return { sent: true, channel: 'email' };
    },
  };
}

const report = (
  outcome: FraudOutcomeReport['outcome'],
  extra: Partial<FraudOutcomeReport> = {},
): FraudOutcomeReport => ({
  outcome_id: `o-${randomUUID()}`,
  customer_id: randomUUID(),
  outcome,
  device_id: randomUUID(),
  ...extra,
});

const newLog = (): Log => ({ applied: [], reversed: [], reviews: [], notified: [] });

async function withWorker<T>(
  log: Log,
  work: (taskQueue: string) => Promise<T>,
  running: string[] = [],
  reversed: string | null = null,
): Promise<T> {
  const taskQueue = `fraud-${randomUUID()}`;
  const worker = await Worker.create({
    sinks: NO_OPEN_PROCESS_SINKS,
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: fakes(log, running, reversed),
  });
  return worker.runUntil(work(taskQueue));
}

const start = (taskQueue: string, r: FraudOutcomeReport, reviewDays = 30, reviewDue?: string) =>
  env.client.workflow.start(fraudOutcomeWorkflow, {
    taskQueue,
    workflowId: fraudOutcomeWorkflowId(r.outcome_id),
    args: [
      {
        report: r,
        reported_by: 'agent',
        trust_step: 0.1,
        review_days: reviewDays,
        ...(reviewDue ? { review_due: reviewDue } : {}),
      },
    ],
  });

afterEach(() => {
  hooks = {};
});

describe('fraudOutcomeWorkflow', () => {
  it('challenge_passed raises the device’s trust by the step, and ends without a review', async () => {
    const log = newLog();
    const r = report('challenge_passed');
    const status = await withWorker(log, async (tq) => (await start(tq, r)).result());
    expect(status).toMatchObject({
      state: 'done',
      applied: { suspended: false, changes: [{ entity: 'device', from: 0.5, to: 0.6 }] },
    });
    expect(log.applied).toEqual([r]);
    expect(log.reviews).toEqual([]);
  });

  it(
    'confirmed_fraud tells every running recovery not to charge the method, ' + 'then waits for ops to confirm',
    async () => {
      const log = newLog();
      const pm = randomUUID();
      const r = report('confirmed_fraud', { payment_method_id: pm });
      const recoveryId = `payment-recovery-${randomUUID()}`;
      const status = await withWorker(
        log,
        async (tq) => {
          // A recovery waiting for its payment report: running, so it can be told.
          const recovery = await env.client.workflow.start(paymentRecoveryWorkflow, {
            taskQueue: tq,
            workflowId: recoveryId,
            args: [{ dunningSchedule: ['1d'] }],
          });
          const handle = await start(tq, r);
          await until(async () => (await handle.query(fraudOutcomeStatusQuery)).state === 'awaiting_review');
          const waiting = await handle.query(fraudOutcomeStatusQuery);
          expect(waiting.recoveries_blocked).toEqual([recoveryId]);
          expect(Date.parse(waiting.review_deadline ?? '')).toBeGreaterThan(Date.now());
          await handle.signal(reviewResolvedSignal, { decision: 'confirm' });
          const result = await handle.result();
          const history = await recovery.fetchHistory();
          const signals = (history.events ?? []).flatMap((e) =>
            e.workflowExecutionSignaledEventAttributes ? [e.workflowExecutionSignaledEventAttributes.signalName] : [],
          );
          expect(signals).toEqual(['paymentMethodBlocked']);
          return result;
        },
        [recoveryId, 'payment-recovery-already-finished'],
      );
      expect(status).toMatchObject({ state: 'confirmed', recoveries_blocked: [recoveryId], review_deadline: null });
      expect(log.reviews).toEqual([
        { outcome_id: r.outcome_id, customer_id: r.customer_id, decision: 'confirm', restore_to: 'active' },
      ]);
    },
  );

  it('account_takeover alerts the customer through a verified identifier, and ops can reinstate', async () => {
    const log = newLog();
    const r = report('account_takeover');
    const status = await withWorker(log, async (tq) => {
      const handle = await start(tq, r);
      await until(async () => (await handle.query(fraudOutcomeStatusQuery)).state === 'awaiting_review');
      await handle.signal(reviewResolvedSignal, { decision: 'reinstate', note: 'customer called in' });
      return handle.result();
    });
    expect(status.state).toBe('reinstated');
    expect(log.notified).toMatchObject([
      {
        customer_id: r.customer_id,
        kind: 'account_takeover',
        verified_only: true,
        key: `${fraudOutcomeWorkflowId(r.outcome_id)}:alert`,
      },
    ]);
    expect(log.reviews).toMatchObject([{ decision: 'reinstate', restore_to: 'active' }]);
  });

  it('leaves the customer suspended when nobody reviews within 30 days, and records it', async () => {
    const log = newLog();
    const r = report('confirmed_fraud', { payment_method_id: randomUUID() });
    const status = await withWorker(log, async (tq) => {
      const handle = await start(tq, r, 30);
      await until(async () => (await handle.query(fraudOutcomeStatusQuery)).state === 'awaiting_review');
      await env.sleep('29 days');
      expect((await handle.query(fraudOutcomeStatusQuery)).state).toBe('awaiting_review');
      expect(log.reviews).toEqual([]);
      return handle.result(); // the test server skips the last day
    });
    expect(status.state).toBe('review_timed_out');
    expect(log.reviews).toMatchObject([{ outcome_id: r.outcome_id, decision: 'timed_out' }]);
  });

  it('a review has a due time: past it the review is overdue and still waits for ops, who decide it', async () => {
    const log = newLog();
    const r = report('confirmed_fraud', { payment_method_id: randomUUID() });
    const status = await withWorker(log, async (tq) => {
      const handle = await start(tq, r, 30, '2h');
      await until(async () => (await handle.query(fraudOutcomeStatusQuery)).state === 'awaiting_review');
      const waiting = await handle.query(fraudOutcomeStatusQuery);
      expect(waiting.review_overdue).toBe(false);
      expect(Date.parse(waiting.review_deadline ?? '') - Date.parse(waiting.review_due_at ?? '')).toBe(
        30 * 86_400_000 - 2 * 3_600_000,
      );
      await env.sleep('3 hours');
      await until(async () => (await handle.query(fraudOutcomeStatusQuery)).review_overdue);
      expect((await handle.query(fraudOutcomeStatusQuery)).state).toBe('awaiting_review');
      expect(log.reviews).toEqual([]);
      // Found among everything overdue while it is, and no longer once decided.
      const overdue = async () => (await handle.describe()).typedSearchAttributes.get(personaOverdue);
      await until(async () => (await overdue()) === 'fraud_review');
      await handle.signal(reviewResolvedSignal, { decision: 'confirm' });
      const result = await handle.result();
      expect(await overdue()).toBeUndefined();
      return result;
    });
    expect(status).toMatchObject({ state: 'confirmed', review_overdue: true, review_due_at: null });
    expect(log.reviews).toMatchObject([{ outcome_id: r.outcome_id, decision: 'confirm' }]);
  });

  it('false_positive puts back the earlier outcome and ends its review', async () => {
    const log = newLog();
    const earlier = report('account_takeover');
    const fp = report('false_positive', { customer_id: earlier.customer_id, device_id: null });
    const [earlierStatus, fpStatus] = await withWorker(
      log,
      async (tq) => {
        const first = await start(tq, earlier);
        await until(async () => (await first.query(fraudOutcomeStatusQuery)).state === 'awaiting_review');
        const second = await (await start(tq, fp)).result();
        return [await first.result(), second] as [FraudOutcomeStatus, FraudOutcomeStatus];
      },
      [],
      earlier.outcome_id,
    );
    expect(log.reversed).toEqual([fp.outcome_id]);
    expect(fpStatus).toMatchObject({ state: 'done', reversal: { reversed_outcome_id: earlier.outcome_id } });
    expect(earlierStatus.state).toBe('reinstated');
    // Only the earlier outcome was applied; the false positive reverses, it applies nothing.
    expect(log.applied.map((a) => a.outcome_id)).toEqual([earlier.outcome_id]);
  });

  it('a false positive the graph refuses (ops decided that review) ends not_applied and tells no review', async () => {
    const log = newLog();
    const earlier = report('account_takeover');
    const fp = report('false_positive', { customer_id: earlier.customer_id, device_id: null });
    hooks.reversal = {
      reversed_outcome_id: null,
      restored: [],
      skipped: [],
      refused: { outcome_id: earlier.outcome_id, decision: 'confirm' },
    };
    const [earlierStatus, fpStatus] = await withWorker(log, async (tq) => {
      const first = await start(tq, earlier);
      await until(async () => (await first.query(fraudOutcomeStatusQuery)).state === 'awaiting_review');
      await first.executeUpdate(resolveReviewUpdate, { args: [{ decision: 'confirm' }] });
      const second = await (await start(tq, fp)).result();
      return [await first.result(), second] as [FraudOutcomeStatus, FraudOutcomeStatus];
    });
    expect(fpStatus).toMatchObject({ state: 'not_applied', reversal: { refused: { decision: 'confirm' } } });
    expect(fpStatus.problem).toMatch(new RegExp(`review of fraud outcome ${earlier.outcome_id} \\(confirm\\)`));
    // Ops' decision stands; only the earlier outcome was applied, and its review recorded once.
    expect(earlierStatus.state).toBe('confirmed');
    expect(log.reviews.map((r) => r.decision)).toEqual(['confirm']);
  });
});

type Handle = Awaited<ReturnType<typeof start>>;
const stateOf = async (h: Handle) => (await h.query(fraudOutcomeStatusQuery)).state;
const decideBy = (h: Handle, decision: 'reinstate' | 'confirm') =>
  h.executeUpdate(resolveReviewUpdate, { args: [{ decision }] }).then(
    (status) => ({ decision, status, refused: null as string | null }),
    (err: Error) => ({
      decision,
      status: null,
      refused: String((err.cause as Error | undefined)?.message ?? err.message),
    }),
  );

describe('fraudOutcomeWorkflow off the happy path: it never fails, and no decision is lost', () => {
  it('a refused account-takeover alert still reaches review; ops decide with the Update, get the outcome', async () => {
    hooks.notify = async () => {
      throw ApplicationFailure.create({ type: 'NotificationRejectedError', message: 'refused', nonRetryable: true });
    };
    const log = newLog();
    const r = report('account_takeover');
    const { decided, status } = await withWorker(log, async (tq) => {
      const handle = await start(tq, r);
      await until(async () => (await handle.query(fraudOutcomeStatusQuery)).undelivered.length === 1);
      expect(await stateOf(handle)).toBe('awaiting_review');
      const decided = await decideBy(handle, 'reinstate');
      return { decided, status: await handle.result() };
    });
    expect(decided.status).toMatchObject({ state: 'reinstated', decision: 'reinstate', undelivered: ['alert'] });
    expect(status.state).toBe('reinstated');
    expect(log.reviews).toMatchObject([{ decision: 'reinstate', restore_to: 'active' }]);
  });

  it('an alert still retrying (the webhook is down) does not keep ops from deciding', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    hooks.notify = () => gate;
    const log = newLog();
    const r = report('account_takeover');
    const decided = await withWorker(log, async (tq) => {
      const handle = await start(tq, r);
      await until(async () => (await stateOf(handle)) === 'awaiting_review');
      // The decision is taken and answered at once, while the alert is still held.
      const answer = await decideBy(handle, 'confirm');
      expect(log.notified).toHaveLength(0);
      release();
      await handle.result();
      return answer;
    });
    expect(decided.status).toMatchObject({ state: 'confirmed', undelivered: [] });
    expect(log.notified).toHaveLength(1);
  });

  it('two ops decide at once, both before the worker polls: one decision is taken, the other refused', async () => {
    const log = newLog();
    const r = report('confirmed_fraud', { payment_method_id: randomUUID() });
    const taskQueue = `fraud-${randomUUID()}`;
    // No sticky cache: the second worker must be the one that gets the workflow task, at once.
    const worker = () =>
      Worker.create({
        sinks: NO_OPEN_PROCESS_SINKS,
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: bundle,
        activities: fakes(log),
        maxCachedWorkflows: 0,
      });
    const handle = await start(taskQueue, r);
    await (await worker()).runUntil(until(async () => (await stateOf(handle)) === 'awaiting_review'));
    const decisions = [decideBy(handle, 'reinstate'), decideBy(handle, 'confirm')];
    const [answers, status] = await (
      await worker()
    ).runUntil(async () => [await Promise.all(decisions), await handle.result()] as const);
    const taken = answers.filter((a) => a.status);
    expect(taken).toHaveLength(1);
    expect(answers.find((a) => a.refused)?.refused).toContain('decided already');
    expect(status).toMatchObject({ decision: taken[0]?.decision });
    expect(log.reviews).toHaveLength(1);
  });

  it('a decision sent while the outcome is still being applied is refused, not silently dropped', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let applying = false;
    hooks.apply = async () => {
      applying = true;
      await gate;
    };
    const log = newLog();
    const r = report('confirmed_fraud', { payment_method_id: randomUUID() });
    const early = await withWorker(log, async (tq) => {
      const handle = await start(tq, r);
      await until(async () => applying);
      const early = await decideBy(handle, 'reinstate');
      release();
      await until(async () => (await stateOf(handle)) === 'awaiting_review');
      expect((await decideBy(handle, 'confirm')).status?.state).toBe('confirmed');
      return early;
    });
    expect(early.refused).toContain('not awaiting review (it is applying)');
  });

  it('an outcome the graph refuses for good ends not_applied with the reason, never Failed', async () => {
    hooks.apply = async () => {
      throw ApplicationFailure.create({
        type: 'NotFoundError',
        message: 'Customer c-1 not found',
        nonRetryable: true,
        details: [{ code: 'not_found' }],
      });
    };
    const log = newLog();
    const status = await withWorker(log, async (tq) => (await start(tq, report('account_takeover'))).result());
    expect(status).toMatchObject({ state: 'not_applied', applied: null });
    expect(status.problem).toContain('Customer c-1 not found');
    expect(log.notified).toEqual([]);
  });

  it('a suspension is retried for as long as the graph is down (no attempt cap)', async () => {
    let failures = 0;
    hooks.apply = async () => {
      if (failures++ < 30) throw new Error('Neo4j unavailable');
    };
    const log = newLog();
    const status = await withWorker(log, async (tq) => {
      const handle = await start(tq, report('confirmed_fraud', { payment_method_id: randomUUID() }));
      // The retries' backoff is server time: skip it while they go on.
      while ((await stateOf(handle)) === 'applying') await env.sleep('5 minutes');
      return (await decideBy(handle, 'confirm')).status;
    });
    expect(failures).toBe(31);
    expect(status?.state).toBe('confirmed');
  });

  it('after the suspension, finding the recoveries to tell waits out a long graph outage too', async () => {
    let failures = 0;
    hooks.recoveries = async () => {
      if (failures++ < 30) throw new Error('Neo4j unavailable');
    };
    const log = newLog();
    const status = await withWorker(log, async (tq) => {
      const handle = await start(tq, report('confirmed_fraud', { payment_method_id: randomUUID() }));
      while (failures <= 30) {
        expect((await handle.describe()).status.name).toBe('RUNNING');
        await env.sleep('5 minutes');
      }
      await until(async () => (await stateOf(handle)) === 'awaiting_review');
      return (await decideBy(handle, 'confirm')).status;
    });
    expect(failures).toBe(31);
    expect(status?.state).toBe('confirmed');
  });
});
