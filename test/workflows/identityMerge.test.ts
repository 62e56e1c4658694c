/**
 * The identity-merge workflow on the time-skipping server, with fake activities that record what
 * they were asked: consent given, declined, expired, the validator refusing answers it cannot
 * take, an ops merge undone, and the merged customer's running recovery told of the merge.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { NotifyRequest } from '../../activities/notifications';
import type { MergeRequest } from '../../graph/identityMerge';
import {
  confirmMergeUpdate,
  declineMergeUpdate,
  identityMergeStatusQuery,
  identityMergeWorkflowId,
  undoMergeUpdate,
  type IdentityMergeInput,
  type MergeSummary,
  type UnmergeSummary,
} from '../../temporal/identityMerge';
import { identityMergeWorkflow, paymentRecoveryWorkflow } from '../../workflows';
import { useWorkflowTestEnv } from '../support/temporal';
import { until } from '../support/wait';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

interface Log {
  notified: NotifyRequest[];
  merges: MergeRequest[];
  unmerges: { merge_id: string; reason: string }[];
}

interface World {
  /** The channel each customer's verified identifiers give (default email). */
  channel?: (customerId: string) => 'email' | null;
  /** Replaces the merge (may throw: the graph refuses it). */
  merge?: (req: MergeRequest) => Promise<void>;
  unmerge?: () => Promise<void>;
  /** What listMergedCustomerProcesses answers. */
  running?: string[];
  /** Run before the activity answers (may throw: it fails for good). */
  codes?: () => Promise<void>;
  notify?: () => Promise<void>;
  list?: () => Promise<void>;
}

const invalidState = (message: string) =>
  ApplicationFailure.create({
    type: 'InvalidStateError',
    message,
    nonRetryable: true,
    details: [{ code: 'invalid_state' }],
  });

function fakes(world: World, log: Log) {
  return {
    async createConsentCodes(req: { customer_ids: string[] }): Promise<Record<string, string>> {
      await world.codes?.();
      return Object.fromEntries(req.customer_ids.map((id, i) => [id, `CODE${i}${id.slice(0, 4).toUpperCase()}`]));
    },
    async notifyCustomer(req: NotifyRequest): Promise<{ sent: boolean; channel: 'email' | null }> {
      await world.notify?.();
      log.notified.push(req);
      const channel = world.channel ? world.channel(req.customer_id) : 'email';
      return { sent: channel !== null, channel };
    },
    async mergeCustomers(req: MergeRequest): Promise<MergeSummary & { outcome: 'merged' }> {
      await world.merge?.(req);
      log.merges.push(req);
      return {
        outcome: 'merged',
        payment_methods: ['pm-1'],
        devices: [],
        addresses: [],
        identifiers: ['id-1'],
        ltv_minor_moved: 1250,
        redirected: [],
      };
    },
    async unmergeCustomers(req: { merge_id: string; reason: string }): Promise<UnmergeSummary> {
      await world.unmerge?.();
      log.unmerges.push({ merge_id: req.merge_id, reason: req.reason });
      return {
        restored: { payment_methods: ['pm-1'], devices: [], addresses: [], identifiers: ['id-1'] },
        not_restored: [],
      };
    },
    async listMergedCustomerProcesses(): Promise<string[]> {
      await world.list?.();
      return world.running ?? [];
    },
  };
}

async function withWorker<T>(
  world: World,
  work: (taskQueue: string, log: Log) => Promise<T>,
): Promise<{ result: T; log: Log }> {
  const log: Log = { notified: [], merges: [], unmerges: [] };
  const taskQueue = `merge-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: fakes(world, log),
  });
  return { result: await worker.runUntil(work(taskQueue, log)), log };
}

const pair = () => ({ survivor_id: randomUUID(), merged_id: randomUUID() });

function start(taskQueue: string, ids: { survivor_id: string; merged_id: string }, consent: boolean) {
  const input: IdentityMergeInput = {
    ...ids,
    consent,
    consent_days: 7,
    unmerge_days: 90,
    requested_by: 'ops-test',
    reason: 'same person',
  };
  return env.client.workflow.start(identityMergeWorkflow, {
    taskQueue,
    workflowId: identityMergeWorkflowId(ids.merged_id, ids.survivor_id),
    args: [input],
  });
}

/** The code the fake sent to a customer (what the customer reads in their message). */
const codeFor = (log: Log, customerId: string): string =>
  String(log.notified.find((n) => n.customer_id === customerId)?.data?.code);

const awaitingConsent = async (h: Awaited<ReturnType<typeof start>>) =>
  until(async () => (await h.query(identityMergeStatusQuery)).state === 'awaiting_consent');

const refusal = async (p: Promise<unknown>): Promise<string> => {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  return cause instanceof Error ? cause.message : String(cause);
};

describe('identityMergeWorkflow', () => {
  it('with consent: asks each record through a verified channel, and merges only after both confirm', async () => {
    const ids = pair();
    const { result, log } = await withWorker({}, async (tq, log) => {
      const h = await start(tq, ids, true);
      await awaitingConsent(h);
      const first = await h.executeUpdate(confirmMergeUpdate, {
        args: [{ customer_id: ids.merged_id, code: codeFor(log, ids.merged_id) }],
      });
      // One consent is not enough: nothing merged yet.
      expect(first.state).toBe('awaiting_consent');
      expect(log.merges).toEqual([]);
      const second = await h.executeUpdate(confirmMergeUpdate, {
        // Codes are read as the customer types them: case and spaces do not matter.
        args: [{ customer_id: ids.survivor_id, code: ` ${codeFor(log, ids.survivor_id).toLowerCase()} ` }],
      });
      expect(second).toMatchObject({ state: 'merged', decided_by: 'consent' });
      expect(second.moved).toMatchObject({ payment_methods: ['pm-1'], ltv_minor_moved: 1250 });
      expect(Date.parse(second.undo_deadline ?? '') - Date.parse(second.merged_at ?? '')).toBe(90 * 86_400_000);
      return h.result();
    });
    expect(log.notified.map((n) => [n.customer_id, n.kind, n.verified_only])).toEqual([
      [ids.survivor_id, 'merge_consent', true],
      [ids.merged_id, 'merge_consent', true],
    ]);
    // Each notification has its own key (claimed once), and no code is in what the graph records.
    expect(new Set(log.notified.map((n) => n.key)).size).toBe(2);
    expect(JSON.stringify(log.notified.map((n) => n.subject))).not.toContain('CODE');
    expect(log.merges).toHaveLength(1);
    expect(log.merges[0]).toMatchObject({ ...ids, decided_by: 'consent' });
    // The undo window passed without an undo: the merge stands, and the status never showed a code.
    expect(result.state).toBe('merged');
    expect(JSON.stringify(result)).not.toContain('CODE');
  });

  it('one decline ends it: nothing is merged', async () => {
    const ids = pair();
    const { result, log } = await withWorker({}, async (tq, log) => {
      const h = await start(tq, ids, true);
      await awaitingConsent(h);
      await h.executeUpdate(confirmMergeUpdate, {
        args: [{ customer_id: ids.survivor_id, code: codeFor(log, ids.survivor_id) }],
      });
      const declined = await h.executeUpdate(declineMergeUpdate, {
        args: [{ customer_id: ids.merged_id, code: codeFor(log, ids.merged_id) }],
      });
      expect(declined.state).toBe('declined');
      return h.result();
    });
    expect(result).toMatchObject({ state: 'declined', problem: `customer ${ids.merged_id} declined` });
    expect(log.merges).toEqual([]);
  });

  it('silence for 7 days means no merge', async () => {
    const ids = pair();
    const { result, log } = await withWorker({}, async (tq, log) => {
      const h = await start(tq, ids, true);
      await awaitingConsent(h);
      const before = await env.currentTimeMs();
      // Only one of the two answers.
      await h.executeUpdate(confirmMergeUpdate, {
        args: [{ customer_id: ids.merged_id, code: codeFor(log, ids.merged_id) }],
      });
      const status = await h.result();
      expect((await env.currentTimeMs()) - before).toBeGreaterThanOrEqual(7 * 86_400_000 - 60_000);
      return status;
    });
    expect(result).toMatchObject({ state: 'expired', consent_deadline: null });
    expect(log.merges).toEqual([]);
  });

  it('the validator refuses a second answer, a wrong code and a stranger; the merge goes on', async () => {
    const ids = pair();
    const { result, log } = await withWorker({}, async (tq, log) => {
      const h = await start(tq, ids, true);
      await awaitingConsent(h);
      const code = codeFor(log, ids.merged_id);
      await h.executeUpdate(confirmMergeUpdate, { args: [{ customer_id: ids.merged_id, code }] });
      expect(
        await refusal(h.executeUpdate(declineMergeUpdate, { args: [{ customer_id: ids.merged_id, code }] })),
      ).toMatch(/has answered already \(confirmed\)/);
      expect(
        await refusal(
          h.executeUpdate(confirmMergeUpdate, { args: [{ customer_id: ids.survivor_id, code: 'WRONGCODE' }] }),
        ),
      ).toMatch(/not the one sent/);
      // The merged record's code does not answer for the survivor.
      expect(
        await refusal(h.executeUpdate(confirmMergeUpdate, { args: [{ customer_id: ids.survivor_id, code }] })),
      ).toMatch(/not the one sent/);
      const stranger = randomUUID();
      expect(await refusal(h.executeUpdate(confirmMergeUpdate, { args: [{ customer_id: stranger, code }] }))).toMatch(
        /not part of this merge/,
      );
      const status = await h.query(identityMergeStatusQuery);
      expect(status.state).toBe('awaiting_consent');
      expect(status.consent.map((p) => p.decision)).toEqual([null, 'confirmed']);
      const merged = await h.executeUpdate(confirmMergeUpdate, {
        args: [{ customer_id: ids.survivor_id, code: codeFor(log, ids.survivor_id) }],
      });
      expect(merged.state).toBe('merged');
      // After the merge, no answer is taken at all.
      expect(
        await refusal(h.executeUpdate(declineMergeUpdate, { args: [{ customer_id: ids.survivor_id, code: 'x' }] })),
      ).toMatch(/answered already|not awaited/);
      await h.terminate('test over');
      return status;
    });
    expect(result.state).toBe('awaiting_consent');
    expect(log.merges).toHaveLength(1);
  });

  it('a record without a verified email or phone cannot be asked: no merge', async () => {
    const ids = pair();
    const { result, log } = await withWorker({ channel: (id) => (id === ids.merged_id ? null : 'email') }, (tq) =>
      start(tq, ids, true).then((h) => h.result()),
    );
    expect(result).toMatchObject({ state: 'unreachable' });
    expect(result.problem).toContain(ids.merged_id);
    expect(log.merges).toEqual([]);
  });

  it('a consent request the receiver refuses for good ends as unreachable: nothing merged', async () => {
    const ids = pair();
    const refused = async () => {
      throw ApplicationFailure.create({ type: 'NotificationRejectedError', message: 'refused', nonRetryable: true });
    };
    const { result, log } = await withWorker({ notify: refused }, (tq) => start(tq, ids, true).then((h) => h.result()));
    expect(result).toMatchObject({ state: 'unreachable' });
    expect(result.problem).toContain('could not be asked');
    expect(log.merges).toEqual([]);
  });

  it('consent codes that cannot be made fail the workflow before anyone is asked; nothing merged', async () => {
    const ids = pair();
    const broken = async () => {
      throw ApplicationFailure.create({ type: 'Broken', message: 'no randomness', nonRetryable: true });
    };
    const { result, log } = await withWorker({ codes: broken }, (tq) =>
      start(tq, ids, true).then((h) =>
        h.result().then(
          () => null,
          (err: unknown) => err,
        ),
      ),
    );
    expect(result).toBeInstanceOf(WorkflowFailedError);
    expect(log.notified).toEqual([]);
    expect(log.merges).toEqual([]);
  });

  it('processes that cannot be listed are noted in the status; the merge stands', async () => {
    const ids = pair();
    const broken = async () => {
      throw ApplicationFailure.create({ type: 'VisibilityDown', message: 'visibility down', nonRetryable: true });
    };
    const { result } = await withWorker({ list: broken }, async (tq) => {
      const h = await start(tq, ids, false);
      await until(async () => (await h.query(identityMergeStatusQuery)).problem !== null);
      const status = await h.query(identityMergeStatusQuery);
      await h.terminate('test over');
      return status;
    });
    expect(result.state).toBe('merged');
    expect(result.problem).toContain('could not be listed');
  });

  it('a merge the graph refuses (a customer suspended meanwhile) ends as refused, with the reason', async () => {
    const ids = pair();
    const { result } = await withWorker(
      {
        merge: async () => {
          throw invalidState(`customer ${ids.merged_id} is suspended: a suspended customer is never merged`);
        },
      },
      (tq) => start(tq, ids, false).then((h) => h.result()),
    );
    expect(result.state).toBe('refused');
    expect(result.problem).toContain('is suspended');
  });

  it('ops merge at once; an undo takes it back once, and a second undo is refused', async () => {
    const ids = pair();
    const { result, log } = await withWorker({}, async (tq) => {
      const h = await start(tq, ids, false);
      await until(async () => (await h.query(identityMergeStatusQuery)).state === 'merged');
      const undone = await h.executeUpdate(undoMergeUpdate, {
        args: [{ reason: 'wrong person', requested_by: 'ops' }],
      });
      expect(undone).toMatchObject({ state: 'undone', unmerge: { restored: { payment_methods: ['pm-1'] } } });
      // Undone is final: the workflow closes, and nothing more is taken (the api answers 409).
      await expect(
        h.executeUpdate(undoMergeUpdate, { args: [{ reason: 'again', requested_by: 'ops' }] }),
      ).rejects.toBeInstanceOf(WorkflowNotFoundError);
      return h.result();
    });
    expect(result).toMatchObject({ state: 'undone', decided_by: 'ops', undo_deadline: null });
    expect(log.merges).toHaveLength(1);
    expect(log.unmerges).toEqual([
      {
        merge_id: expect.stringContaining(identityMergeWorkflowId(ids.merged_id, ids.survivor_id)),
        reason: 'wrong person',
      },
    ]);
  });

  it('an undo the graph refuses fails the Update with the reason, and the merge stays undoable', async () => {
    const ids = pair();
    let refuse = true;
    const { log } = await withWorker(
      {
        unmerge: async () => {
          if (refuse) throw invalidState(`customer ${ids.survivor_id} was merged into another since: undo that first`);
        },
      },
      async (tq) => {
        const h = await start(tq, ids, false);
        await until(async () => (await h.query(identityMergeStatusQuery)).state === 'merged');
        expect(
          await refusal(h.executeUpdate(undoMergeUpdate, { args: [{ reason: 'try', requested_by: 'ops' }] })),
        ).toMatch(/undo that first/);
        expect((await h.query(identityMergeStatusQuery)).state).toBe('merged');
        refuse = false;
        const undone = await h.executeUpdate(undoMergeUpdate, { args: [{ reason: 'now', requested_by: 'ops' }] });
        expect(undone.state).toBe('undone');
        return h.result();
      },
    );
    expect(log.unmerges.map((u) => u.reason)).toEqual(['now']);
  });

  it('tells the merged customer’s running recovery, which goes on against the survivor', async () => {
    const ids = pair();
    const recoveryId = `payment-recovery-${randomUUID()}`;
    await withWorker({ running: [recoveryId] }, async (tq) => {
      // A recovery that waits (no failure reported to it yet) stands in for a running one.
      const recovery = await env.client.workflow.start(paymentRecoveryWorkflow, {
        taskQueue: tq,
        workflowId: recoveryId,
        args: [{ dunningSchedule: ['1d'] }],
      });
      const h = await start(tq, ids, false);
      await until(async () => (await h.query(identityMergeStatusQuery)).state === 'merged');
      await until(async () => {
        const history = await recovery.fetchHistory();
        return (history.events ?? []).some(
          (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'customerMerged',
        );
      });
      await recovery.terminate('test over');
      await h.terminate('test over');
    });
  });
});
