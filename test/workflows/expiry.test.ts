/**
 * The expiry-scan workflow on the time-skipping server, with an in-memory card store in place of
 * the batch activity. The fake pages in the activity's cursor order and decides with the same
 * calendar (payments/expiry.ts), and remembers which warnings went out, like the graph's claims.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { expiryAction, expiryNoticeKey, scanWindowEnd } from '../../payments/expiry';
import {
  emptyStageCounts,
  expiryScanProgressQuery,
  type ExpiryBatchRequest,
  type ExpiryBatchResult,
  type ExpiryScanInput,
  type ExpiryScanProgress,
} from '../../temporal/expiry';
import { expiryScanWorkflow } from '../../workflows';
import { useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

interface Card {
  id: string;
  year: number;
  month: number;
  status: 'active' | 'expired';
  is_default: boolean;
}

/** A card store plus the warnings sent, shared by every run of a test (like the graph). */
class Store {
  readonly sent: string[] = [];
  readonly calls: ExpiryBatchRequest[] = [];
  /** Every card handed to a batch, in order. */
  readonly read: string[] = [];
  failNext = 0;
  constructor(readonly cards: Card[]) {}

  card(year: number, month: number, is_default = true): Card {
    const c: Card = { id: randomUUID(), year, month, status: 'active', is_default };
    this.cards.push(c);
    return c;
  }

  activities() {
    return {
      scanExpiryBatch: async (req: ExpiryBatchRequest): Promise<ExpiryBatchResult> => {
        this.calls.push(req);
        const end = scanWindowEnd(req.as_of);
        const key = (c: { year: number; month: number; id: string | null }) =>
          `${String(c.year).padStart(4, '0')}-${String(c.month).padStart(2, '0')}-${c.id ?? '\u{10FFFF}'}`;
        const after = req.cursor ? key(req.cursor) : '';
        const page = this.cards
          .filter((c) => c.id >= req.id_from && (req.id_to === null || c.id < req.id_to))
          .filter((c) => c.status === 'active' && c.year * 12 + c.month <= end.year * 12 + end.month && key(c) > after)
          .sort((a, b) => key(a).localeCompare(key(b)))
          .slice(0, req.batch_size);
        this.read.push(...page.map((c) => c.id));
        const result: ExpiryBatchResult = {
          next_cursor: null,
          scanned: page.length,
          expired: 0,
          notified: emptyStageCounts(),
          already_notified: 0,
          unreachable: 0,
          rejected: 0,
          not_warned: 0,
        };
        for (const c of page) {
          const action = expiryAction(req.as_of, c.year, c.month);
          if (action.kind === 'expire') {
            c.status = 'expired';
            result.expired++;
          } else if (action.kind === 'warn') {
            if (!c.is_default) result.not_warned++;
            else if (this.sent.includes(expiryNoticeKey(c.id, c.year, c.month, action.stage)))
              result.already_notified++;
            else {
              this.sent.push(expiryNoticeKey(c.id, c.year, c.month, action.stage));
              result.notified[`${action.stage}`]++;
            }
          }
        }
        // A worker that dies after the side effects: Temporal retries the same batch.
        if (this.failNext > 0) {
          this.failNext--;
          throw new Error('worker lost mid-batch');
        }
        const last = page.at(-1);
        result.next_cursor =
          page.length === req.batch_size && last ? { year: last.year, month: last.month, id: last.id } : null;
        return result;
      },
    };
  }
}

async function scan(
  store: Store,
  input: Partial<ExpiryScanInput> & { as_of?: string },
): Promise<{ progress: ExpiryScanProgress; workflowId: string }> {
  const taskQueue = `expiry-${randomUUID()}`;
  const workflowId = `expiry-scan-test-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: store.activities(),
  });
  const progress = await worker.runUntil(
    env.client.workflow.execute(expiryScanWorkflow, {
      taskQueue,
      workflowId,
      args: [{ time_zone: 'UTC', batch_size: 100, batches_per_run: 50, lanes: 4, ...input }],
    }),
  );
  return { progress, workflowId };
}

const keysOf = (store: Store, ...cards: Card[]): string[] =>
  cards.map((c) => store.sent.find((k) => k.includes(c.id)) ?? `none:${c.id}`);

describe('expiryScanWorkflow', () => {
  it('warns at 60, 30 and 7 days and expires cards past their month', async () => {
    const store = new Store([]);
    // As of 2026-01-31: January ends today (7), February in 28 days (30), March in 59 (60).
    const today = store.card(2026, 1);
    const feb = store.card(2026, 2);
    const mar = store.card(2026, 3);
    const apr = store.card(2026, 4); // 89 days: read (2026-01-31 + 60 days is 1 April) but not yet due
    const lastYear = store.card(2025, 12);
    const notDefault = store.card(2026, 2, false);
    const oldNotDefault = store.card(2025, 6, false);
    const { progress } = await scan(store, { as_of: '2026-01-31' });

    expect(progress).toMatchObject({
      as_of: '2026-01-31',
      state: 'done',
      expired: 2,
      notified: { '60': 1, '30': 1, '7': 1 },
      already_notified: 0,
    });
    expect(progress.scanned).toBe(7);
    expect(store.sent.sort()).toEqual(
      [
        expiryNoticeKey(today.id, 2026, 1, 7),
        expiryNoticeKey(feb.id, 2026, 2, 30),
        expiryNoticeKey(mar.id, 2026, 3, 60),
      ].sort(),
    );
    expect([lastYear.status, oldNotDefault.status, apr.status, notDefault.status]).toEqual([
      'expired',
      'expired',
      'active',
      'active',
    ]);
    expect(progress.finished_at).not.toBeNull();
  });

  it('crosses December into January', async () => {
    const store = new Store([]);
    const dec = store.card(2026, 12);
    const jan = store.card(2027, 1);
    const first = await scan(store, { as_of: '2026-12-31' });
    expect(first.progress).toMatchObject({ expired: 0, notified: { '60': 1, '30': 0, '7': 1 } });
    expect(keysOf(store, dec, jan)).toEqual([
      expiryNoticeKey(dec.id, 2026, 12, 7),
      expiryNoticeKey(jan.id, 2027, 1, 60),
    ]);

    // A day later the year has turned: December's card has expired, January's is 30 days out.
    const newYear = await scan(store, { as_of: '2027-01-01' });
    expect(newYear.progress).toMatchObject({ expired: 1, notified: { '60': 0, '30': 1, '7': 0 }, already_notified: 0 });
    expect(store.sent).toContain(expiryNoticeKey(jan.id, 2027, 1, 30));
    expect(dec.status).toBe('expired');
    expect(jan.status).toBe('active');
  });

  it('keeps a February card valid through the 29th in a leap year, and not in others', async () => {
    const store = new Store([]);
    const leap = store.card(2028, 2);
    const common = store.card(2027, 2);
    const onLeapDay = await scan(store, { as_of: '2028-02-29' });
    expect(onLeapDay.progress).toMatchObject({ expired: 1, notified: { '7': 1 } });
    expect([leap.status, common.status]).toEqual(['active', 'expired']);
    expect(store.sent).toEqual([expiryNoticeKey(leap.id, 2028, 2, 7)]);

    const march = await scan(store, { as_of: '2028-03-01' });
    expect(march.progress.expired).toBe(1);
    expect(leap.status).toBe('expired');
  });

  it('sends nothing twice when run again the same day', async () => {
    const store = new Store([]);
    for (let m = 1; m <= 3; m++) store.card(2026, m);
    const first = await scan(store, { as_of: '2026-01-31' });
    const again = await scan(store, { as_of: '2026-01-31' });
    expect(first.progress.notified).toEqual({ '60': 1, '30': 1, '7': 1 });
    expect(again.progress).toMatchObject({ notified: { '60': 0, '30': 0, '7': 0 }, already_notified: 3, expired: 0 });
    expect(store.sent).toHaveLength(3);
  });

  it('retries a batch whose worker died after its side effects, without sending twice', async () => {
    const store = new Store([]);
    for (let i = 0; i < 5; i++) store.card(2026, 2);
    store.failNext = 1;
    const { progress } = await scan(store, { as_of: '2026-01-31', batch_size: 2, lanes: 1 });
    expect(store.calls.length).toBe(4); // 3 batches, the first one twice
    expect(store.sent).toHaveLength(5);
    // The retried batch found its two warnings already sent.
    expect(progress).toMatchObject({ notified: { '30': 3 }, already_notified: 2 });
  });

  it('continues as new with its cursor and totals, and the query follows it', async () => {
    const store = new Store([]);
    const cards = Array.from({ length: 9 }, (_, i) => store.card(2026, 1 + (i % 3)));
    const taskQueue = `expiry-${randomUUID()}`;
    const workflowId = `expiry-scan-test-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: store.activities(),
    });
    const progress = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(expiryScanWorkflow, {
        taskQueue,
        workflowId,
        args: [{ time_zone: 'UTC', as_of: '2026-01-31', batch_size: 2, batches_per_run: 2, lanes: 1 }],
      });
      const result = await handle.result();
      // The query answers from the last run, with the totals of all of them.
      expect(await env.client.workflow.getHandle(workflowId).query(expiryScanProgressQuery)).toEqual(result);
      // The first run's history ends in continue-as-new.
      const history = await env.client.workflow.getHandle(workflowId, handle.firstExecutionRunId).fetchHistory();
      expect(history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
      return result;
    });
    expect(progress).toMatchObject({
      state: 'done',
      scanned: 9,
      batches: 5,
      runs: 3,
      notified: { '60': 3, '30': 3, '7': 3 },
    });
    expect(new Set(store.sent).size).toBe(9);
    expect(cards.every((c) => c.status === 'active')).toBe(true);
  });

  it('pages the id space in parallel lanes that together read every card once, across runs', async () => {
    const store = new Store([]);
    const cards = Array.from({ length: 40 }, (_, i) => store.card(2026, 1 + (i % 3)));
    const { progress } = await scan(store, { as_of: '2026-01-31', batch_size: 3, batches_per_run: 5, lanes: 4 });
    expect(progress.lanes.map((l) => [l.from, l.to, l.done])).toEqual([
      ['', '4', true],
      ['4', '8', true],
      ['8', 'c', true],
      ['c', null, true],
    ]);
    expect(progress).toMatchObject({ state: 'done', scanned: 40 });
    expect(progress.runs).toBeGreaterThan(1);
    expect(progress.notified['7'] + progress.notified['30'] + progress.notified['60']).toBe(40);
    expect(new Set(store.sent).size).toBe(40);
    // Lanes never overlap: every card was handed to exactly one batch.
    expect(store.read.sort()).toEqual(cards.map((c) => c.id).sort());
  });

  it('scans as of today in its time zone when no day is given', async () => {
    const store = new Store([]);
    const { progress, workflowId } = await scan(store, { time_zone: 'Pacific/Kiritimati' });
    const { startTime } = await env.client.workflow.getHandle(workflowId).describe();
    // UTC+14: the scan's day is the start time's date in Kiritimati, not in UTC.
    expect(progress.as_of).toBe(new Date(startTime.getTime() + 14 * 3_600_000).toISOString().slice(0, 10));
    expect(progress).toMatchObject({ state: 'done', scanned: 0 });
  });
});
