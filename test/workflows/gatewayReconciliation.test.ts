/**
 * The gateway reconciliation workflow on the time-skipping server, with fake activities: it pages
 * through the gateway's charges, then the recorded recoveries, over the window before it was due,
 * adds up what each page repaired and flagged, and lists them; an activity that fails for good
 * fails the run with a message that says what failed and what happens next.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { ReconciliationActivities } from '../../activities/reconciliation';
import {
  GATEWAY_RECONCILIATION_FAILED,
  emptyCounts,
  gatewayReconciliationProgressQuery,
  type ChargesPageRequest,
  type GatewayReconciliationInput,
  type RecoveriesPageRequest,
  type StrandedPageRequest,
} from '../../temporal/reconciliation';
import { gatewayReconciliationWorkflow } from '../../workflows';
import { reconciliationPage } from '../../workflows/activityOptions';
import { useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

async function reconcile(activities: ReconciliationActivities, extra: Partial<GatewayReconciliationInput> = {}) {
  const taskQueue = `reconcile-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities,
  });
  const handle = await env.client.workflow.start(gatewayReconciliationWorkflow, {
    taskQueue,
    workflowId: `gateway-reconciliation-test-${randomUUID()}`,
    args: [{ lookback_hours: 26, grace_minutes: 30, page_size: 2, lanes: 1, ...extra }],
  });
  const outcome = await worker.runUntil(
    handle.result().then(
      (result) => ({ result, error: null }),
      (error: unknown) => ({ result: null, error }),
    ),
  );
  return { ...outcome, started: (await handle.describe()).startTime };
}

const flag = (n: number) => ({
  kind: 'charged_twice' as const,
  customer_id: 'c-1',
  payment_id: `pay-${n}`,
  charge_id: `ch_${n}`,
  detail: 'twice',
});

describe('gatewayReconciliationWorkflow', () => {
  it('pages through the charges, then the recoveries, and adds up what was repaired and flagged', async () => {
    const charges: ChargesPageRequest[] = [];
    const recoveries: RecoveriesPageRequest[] = [];
    const stranded: StrandedPageRequest[] = [];
    const order: string[] = [];
    const { result, started } = await reconcile({
      reconcileChargesPage: async (req) => {
        charges.push(req);
        order.push('charges');
        const first = req.starting_after === null;
        return {
          counts: { ...emptyCounts(), charges: 2, matched: first ? 1 : 0, in_flight: first ? 0 : 1 },
          repairs: first
            ? [
                {
                  kind: 'recovery_recorded',
                  customer_id: 'c-1',
                  payment_method_id: 'pm-1',
                  payment_id: 'pay-9',
                  charge_id: 'ch_9',
                },
              ]
            : [],
          flags: first ? [] : [flag(1)],
          next: first ? 'ch_2' : null,
        };
      },
      reconcilePendingPage: async (req) => {
        order.push(`pending after ${req.after}`);
        const first = req.after === null;
        return {
          counts: { ...emptyCounts(), pending: 2, in_flight: first ? 1 : 0 },
          repairs: [],
          flags: first ? [{ ...flag(3), kind: 'charge_not_recorded' }] : [],
          next: first ? 'pay-5' : null,
        };
      },
      reconcileRecoveriesPage: async (req) => {
        recoveries.push(req);
        order.push('recoveries');
        return {
          counts: { ...emptyCounts(), recoveries: 1 },
          repairs: [],
          flags: [{ ...flag(2), kind: 'recovery_without_charge' }],
          next: null,
        };
      },
      reconcileStrandedPage: async (req) => {
        stranded.push(req);
        order.push(`stranded after ${req.after}`);
        const first = req.after === null;
        return {
          counts: { ...emptyCounts(), open_recoveries: 2 },
          repairs: [],
          flags: first ? [{ ...flag(4), charge_id: '', kind: 'stranded_recovery' }] : [],
          next: first ? 'pay-4' : null,
        };
      },
    });
    expect(charges.map((c) => c.starting_after)).toEqual([null, 'ch_2']);
    // The window's charges, then those earlier runs left pending, then the recorded recoveries, then
    // the recoveries the ledger has still recovering (begun before the window's end).
    expect(order).toEqual([
      'charges',
      'charges',
      'pending after null',
      'pending after pay-5',
      'recoveries',
      'stranded after null',
      'stranded after pay-4',
    ]);
    expect(stranded.map((r) => r.before)).toEqual([charges[0]?.to, charges[0]?.to]);
    expect(recoveries.map((r) => r.after)).toEqual([null]);
    // The window: 26 hours to 30 minutes before the run (its first task's time, within moments of its start).
    const from = Date.parse(charges[0]?.from ?? '');
    const to = Date.parse(charges[0]?.to ?? '');
    expect(Math.abs(from - (started.getTime() - 26 * 3_600_000))).toBeLessThan(60_000);
    expect(to - from).toBe(26 * 3_600_000 - 30 * 60_000);
    expect(recoveries[0]).toMatchObject({ from: charges[0]?.from, to: charges[0]?.to });
    expect(result).toMatchObject({
      phase: 'done',
      pages: 7,
      counts: { charges: 4, matched: 1, in_flight: 2, recoveries: 1, pending: 4, open_recoveries: 4 },
      repaired: { recovery_recorded: 1, method_deactivated: 0 },
      flagged: { charged_twice: 1, recovery_without_charge: 1, charge_not_recorded: 1, stranded_recovery: 1 },
    });
    expect(result?.flags.map((f) => f.kind)).toEqual([
      'charged_twice',
      'charge_not_recorded',
      'recovery_without_charge',
      'stranded_recovery',
    ]);
    expect(result?.repairs).toHaveLength(1);
    expect(result?.finished_at).not.toBeNull();
  });

  it('fails the run, saying what failed and what comes next, when a page fails for good', async () => {
    let attempts = 0;
    const { error } = await reconcile({
      reconcileChargesPage: async () => {
        attempts++;
        throw new Error('the gateway answered 503');
      },
      reconcilePendingPage: async () => {
        throw new Error('never reached');
      },
      reconcileRecoveriesPage: async () => {
        throw new Error('never reached');
      },
      reconcileStrandedPage: async () => {
        throw new Error('never reached');
      },
    });
    expect(attempts).toBe(reconciliationPage.retry?.maximumAttempts);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({ type: GATEWAY_RECONCILIATION_FAILED, nonRetryable: true });
    expect(cause?.message).toMatch(
      /failed after every retry \(the gateway answered 503\); .*compares the window again$/,
    );
  });

  it("a restore's run takes a page that failed every attempt again until it goes through", async () => {
    const attempts = reconciliationPage.retry?.maximumAttempts ?? 10;
    // The first charges page fails two whole rounds of attempts and a few more, then goes through.
    let calls = 0;
    const charges: (string | null)[] = [];
    const { result, error } = await reconcile(
      {
        reconcileChargesPage: async (req) => {
          calls++;
          if (calls <= 2 * attempts + 3) throw new Error('the gateway answered 503');
          charges.push(req.starting_after);
          const first = req.starting_after === null;
          return {
            counts: { ...emptyCounts(), charges: 2, matched: 2 },
            repairs: [],
            flags: [],
            next: first ? 'ch_2' : null,
          };
        },
        reconcilePendingPage: async () => ({ counts: emptyCounts(), repairs: [], flags: [], next: null }),
        reconcileRecoveriesPage: async () => ({
          counts: { ...emptyCounts(), recoveries: 1 },
          repairs: [],
          flags: [],
          next: null,
        }),
        reconcileStrandedPage: async () => ({ counts: emptyCounts(), repairs: [], flags: [], next: null }),
      },
      { window: { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z' }, until_covered: true },
    );
    expect(error).toBeNull();
    // The window is covered from its first page on: both pages of charges, then the other passes.
    expect(charges).toEqual([null, 'ch_2']);
    expect(result).toMatchObject({
      phase: 'done',
      from: '2026-11-01T00:00:00Z',
      to: '2026-11-02T00:00:00Z',
      pages: 5,
      counts: { charges: 4, matched: 4, recoveries: 1 },
      failing: null,
    });
    expect(result?.finished_at).not.toBeNull();
  });

  it("a restore's run whose page keeps failing says which page and why, and keeps trying", async () => {
    let calls = 0;
    const taskQueue = `reconcile-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: {
        reconcileChargesPage: async (req: ChargesPageRequest) => {
          calls++;
          if (req.starting_after === 'ch_2') throw new Error('the gateway answered 503');
          return { counts: { ...emptyCounts(), charges: 2 }, repairs: [], flags: [], next: 'ch_2' };
        },
        reconcilePendingPage: async () => ({ counts: emptyCounts(), repairs: [], flags: [], next: null }),
        reconcileRecoveriesPage: async () => ({ counts: emptyCounts(), repairs: [], flags: [], next: null }),
        reconcileStrandedPage: async () => ({ counts: emptyCounts(), repairs: [], flags: [], next: null }),
      } satisfies ReconciliationActivities,
    });
    const handle = await env.client.workflow.start(gatewayReconciliationWorkflow, {
      taskQueue,
      workflowId: `gateway-reconciliation-test-${randomUUID()}`,
      args: [
        {
          lookback_hours: 0,
          grace_minutes: 0,
          page_size: 2,
          lanes: 1,
          window: { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z' },
          until_covered: true,
        },
      ],
    });
    const progress = await worker.runUntil(async () => {
      for (;;) {
        await env.sleep('20 minutes');
        const p = await handle.query(gatewayReconciliationProgressQuery);
        if ((p.failing?.failures ?? 0) >= 3) return p;
      }
    });
    // Still running, stuck on the second charges page, with the gateway's answer and since when.
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect(progress).toMatchObject({
      phase: 'charges',
      pages: 1,
      finished_at: null,
      failing: { phase: 'charges', after: 'ch_2', error: expect.stringContaining('503') },
    });
    expect(Date.parse(progress.failing?.next_try_at ?? '')).toBeGreaterThan(Date.parse(progress.failing?.since ?? ''));
    // Each round is the activity's whole retry policy: it was asked again and again, not given up on.
    expect(calls).toBeGreaterThan(3 * (reconciliationPage.retry?.maximumAttempts ?? 10));
    await handle.terminate('test over');
  });

  it('runs the charges and the recorded recoveries in lanes: slices covering the window, side by side', async () => {
    const charges: ChargesPageRequest[] = [];
    const recoveries: RecoveriesPageRequest[] = [];
    let inFlight = 0;
    let overlapped = 0;
    const { result } = await reconcile(
      {
        reconcileChargesPage: async (req) => {
          charges.push(req);
          inFlight++;
          // Every lane's first page waits for another lane's: they only all finish if they run at once.
          if (inFlight > 1) overlapped++;
          await new Promise((resolve) => setTimeout(resolve, 50));
          inFlight--;
          return {
            counts: { ...emptyCounts(), charges: 1, matched: 1 },
            repairs: [],
            flags: [],
            next: req.starting_after === null ? `after-${req.from}` : null,
          };
        },
        reconcilePendingPage: async () => ({ counts: emptyCounts(), repairs: [], flags: [], next: null }),
        reconcileRecoveriesPage: async (req) => {
          recoveries.push(req);
          return { counts: { ...emptyCounts(), recoveries: 1 }, repairs: [], flags: [], next: null };
        },
        reconcileStrandedPage: async () => ({ counts: emptyCounts(), repairs: [], flags: [], next: null }),
      },
      { window: { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z' }, lanes: 3 },
    );
    const firsts = charges.filter((c) => c.starting_after === null).sort((a, b) => a.from.localeCompare(b.from));
    expect(firsts.map((c) => [c.from, c.to])).toEqual([
      ['2026-11-01T00:00:00Z', '2026-11-01T08:00:00.000Z'],
      ['2026-11-01T08:00:00.000Z', '2026-11-01T16:00:00.000Z'],
      ['2026-11-01T16:00:00.000Z', '2026-11-02T00:00:00Z'],
    ]);
    // Each lane paged on from its own cursor, within its own slice.
    for (const f of firsts)
      expect(charges.filter((c) => c.from === f.from).map((c) => c.starting_after)).toEqual([null, `after-${f.from}`]);
    expect(overlapped).toBeGreaterThan(0);
    expect(recoveries.map((r) => [r.from, r.to]).sort()).toEqual(firsts.map((c) => [c.from, c.to]));
    expect(result).toMatchObject({ phase: 'done', pages: 11, counts: { charges: 6, matched: 6, recoveries: 3 } });
  });
});
