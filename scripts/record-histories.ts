/**
 * Records a fresh history of each workflow's main paths into workflows/__histories__/, for the
 * replay test (test/workflows/replay.test.ts) that fails CI when a change breaks determinism:
 *
 *   npm run histories:record -- --as <label>      e.g. --as 2026-11-never-strands
 *   npm run histories:record -- --as <label> --only payment-recovery   (those whose name starts so)
 *
 * Runs each workflow on the time-skipping test server with stand-in activities (the replay
 * checks the workflow code's commands, not what activities did). Every workflow type has at
 * least one path here, with its hard ones (attention, cancel, block, merge, restore, override,
 * reconfigure): the replay test fails for a workflow without a history. Record after a change
 * that is meant to alter a workflow's commands — behind `patched()` for the auto-upgrading ones
 * (docs/workflows.md, "Versioning"). The new histories are written as `<path>@<label>.json` beside
 * the old ones, never over them: the old ones are what running workflows look like, and keep
 * replaying until their patch is deleted.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { fraudOutcomeStatusQuery, fraudOutcomeWorkflowId, resolveReviewUpdate } from '../temporal/fraud';
import { reconfigureRelayUpdate, retryParkedUpdate } from '../temporal/eventRelay';
import { erasureRequestedSignal, erasureStatusQuery } from '../temporal/erasure';
import { reconfigurePublisherUpdate } from '../temporal/kafkaPublisher';
import { emptyCounts } from '../temporal/reconciliation';
import { graphRestoredSignal } from '../temporal/restore';
import {
  confirmMergeUpdate,
  customerMergedSignal,
  declineMergeUpdate,
  identityMergeStatusQuery,
  identityMergeWorkflowId,
  undoMergeUpdate,
} from '../temporal/identityMerge';
import { customerWrittenUpdate } from '../temporal/onboarding';
import {
  cancelRecoveryUpdate,
  paymentNoLongerOwedUpdate,
  retryAttentionSignal,
  CHARGE_OUTCOME_UNKNOWN,
  offerPaymentMethodUpdate,
  paymentFailedSignal,
  paymentMethodBlockedSignal,
  recoveryStatusQuery,
  resolveAttentionUpdate,
  recoveryWorkflowId,
} from '../temporal/recovery';
import { ApplicationFailure } from '@temporalio/common';
import { decideDecline } from '../payments/declines';
import { createTimeSkippingEnv, HISTORIES_DIR, PERSONA_WORKFLOWS, RECORDING_CODEC } from '../test/support/temporal';
import { WORKFLOW_INTERCEPTORS } from '../workers/logging';

const noop = async (): Promise<void> => undefined;
const customerId = '6f2d0c55-95b5-4b32-9c7b-6f1b0f3f3a11';
const otherCustomerId = '0b9a6c3e-2f41-4d7a-9a55-3c1e2d4b5f60';
const stageCounts = { '60': 0, '30': 0, '7': 0 };
/** Stand-in activities: plausible answers for every activity a workflow calls. */
const activities = {
  onboardCustomer: async () => ({
    customer_id: '6f2d0c55-95b5-4b32-9c7b-6f1b0f3f3a11',
    outcome: 'created',
    possible_matches: [],
  }),
  requestBehavioralProfile: async () => ({ reference: 'local:rec' }),
  reportTrustedDevice: noop,
  listRecoveryCandidates: async () => [{ payment_method_id: 'pm-b', used_on_trusted_device: true, last_used: null }],
  // Payment pay-lst was told to stop in the ledger before its run began (a run started again).
  beginRecovery: async (req: { failure: { payment_id: string; decline_code: string } }) => ({
    proceed: true,
    state: 'recovering',
    decline: decideDecline(req.failure.decline_code),
    candidates: [{ payment_method_id: 'pm-b', used_on_trusted_device: true, last_used: null }],
    ...(req.failure.payment_id === 'pay-lst' ? { stop_request: 'cancelled: recorded' } : {}),
  }),
  // Payment pay-dun declines in its first pass and recovers in its dunning round; pay-unk's charge
  // never gets an answer (its outcome unknown), and asked without sending, the gateway has it.
  // pay-oth's charge is answered by an earlier run's attempt, open when this run asked (one charge per payment).
  chargePaymentMethod: async (a: { payment_id: string; idempotency_key: string; mode?: string }) => {
    if (a.payment_id === 'pay-unk' && a.mode !== 'settle')
      throw ApplicationFailure.create({ type: CHARGE_OUTCOME_UNKNOWN, message: 'no answer from the gateway' });
    if (a.payment_id === 'pay-oth')
      return {
        outcome: 'succeeded',
        charge_id: 'ch_earlier',
        other_attempt: { payment_method_id: 'pm-a', idempotency_key: 'pay-oth:pm-a' },
      };
    return a.payment_id === 'pay-dun' && !a.idempotency_key.includes(':r')
      ? {
          outcome: 'declined',
          decline_code: 'insufficient_funds',
          charge_id: null,
          decision: decideDecline('insufficient_funds'),
        }
      : { outcome: 'succeeded', charge_id: 'ch_rec' };
  },
  renewCard: async () => ({ outcome: 'updated', token_replaced: false, reactivated: true, expiry: '2031-09' }),
  // The rules allow the next charge two days after the schedule's one.
  forecastCharges: async (req: { at: string }) => ({
    earliest: new Date(Date.parse(req.at) + 3 * 86_400_000).toISOString(),
    rule: 'not before that: mastercard-mac-27-after-2-days (rules 2026-11)',
    candidates: 1,
  }),
  deactivatePaymentMethod: noop,
  recordRecovery: noop,
  recordRecoveryFailed: noop,
  recordRecoveryStopped: noop,
  requestRecoveryStop: noop,
  settleOpenCharges: async () => ({ outcome: 'not_charged', reason: 'never_sent' }),
  notifyCustomer: async () => ({ sent: true, channel: 'email' }),
  scanExpiryBatch: async (req: { cursor: unknown }) => ({
    next_cursor: req.cursor ? null : { year: 2027, month: 1, id: 'pm-x' },
    scanned: 2,
    expired: 1,
    notified: { ...stageCounts, '30': 1 },
    already_notified: 0,
    unreachable: 0,
    rejected: 0,
    not_warned: 0,
  }),
  applyFraudOutcome: async (r: { outcome_id: string; outcome: string; customer_id: string }) => ({
    outcome_id: r.outcome_id,
    outcome: r.outcome,
    changes: [{ entity: 'customer', id: r.customer_id, field: 'status', from: 'active', to: 'suspended' }],
    suspended: r.outcome !== 'challenge_passed',
  }),
  // rec-fp-refused comes after ops confirmed the review of the outcome it names: recorded, refused.
  reverseFraudOutcome: async (r: { outcome_id: string }) =>
    r.outcome_id === 'rec-fp-refused'
      ? {
          reversed_outcome_id: null,
          restored: [],
          skipped: [],
          refused: { outcome_id: 'earlier', decision: 'confirm' },
        }
      : { reversed_outcome_id: 'earlier', restored: [], skipped: [] },
  resolveFraudReview: async () => ({ reinstated: true }),
  listRunningRecoveries: async () => [],
  relayPage: (() => {
    let pages = 0;
    const subscriber = 'subscriber.invalid';
    return async () =>
      pages++ === 0
        ? { read: 3, delivered: 2, parked: 1, subscriber }
        : { read: 0, delivered: 0, parked: 0, subscriber };
  })(),
  retryParkedEvents: async () => ({ retried: 1, delivered: 1, still_parked: 0 }),
  publishEvents: (() => {
    let batches = 0;
    return async () =>
      batches++ === 0 ? { published: 4, pages: 2, caught_up: false } : { published: 0, pages: 1, caught_up: true };
  })(),
  reconcileChargesPage: async (req: { starting_after: string | null }) => ({
    counts: { ...emptyCounts(), charges: 2, matched: 1, in_flight: req.starting_after === null ? 0 : 1 },
    repairs: [],
    flags: [],
    next: req.starting_after === null ? 'ch_2' : null,
  }),
  reconcilePendingPage: async () => ({ counts: { ...emptyCounts(), pending: 1 }, repairs: [], flags: [], next: null }),
  reconcileRecoveriesPage: async () => ({
    counts: { ...emptyCounts(), recoveries: 1 },
    repairs: [],
    flags: [
      {
        kind: 'recovery_without_charge',
        customer_id: 'c-1',
        payment_id: 'pay-1',
        charge_id: 'ch_1',
        detail: 'recorded as recovered, no charge at the gateway',
      },
    ],
    next: null,
  }),
  reconcileStrandedPage: async () => ({
    counts: { ...emptyCounts(), open_recoveries: 2 },
    repairs: [],
    flags: [
      {
        kind: 'stranded_recovery',
        customer_id: 'c-1',
        payment_id: 'pay-2',
        charge_id: '',
        detail: 'the charge ledger has it recovering, and no workflow runs it',
      },
    ],
    next: null,
  }),
  pruneInteractionClaims: async (req: { cutoff: string }) => ({ deleted: 3, cutoff: req.cutoff }),
  pruneEvents: async () => ({
    horizon: '2026-11-27T01:00:00.000Z',
    history_cutoff: '2025-10-23T01:00:00.000Z',
    deleted: { transient: 40, history: 2 },
    consumers: [
      { id: 'persona-event-relay', position: '2026-11-20T00:00:00.000Z', behind_cap: true, holds_back: false },
    ],
  }),
  // The customer erased under override has a fraud review pending, which never ends by itself
  // (and is gone by the time the erasure looks again); the other has a recovery running.
  listRunningCustomerWorkflows: (() => {
    let asked = 0;
    return async (req: { customer_id: string }) =>
      req.customer_id === otherCustomerId
        ? asked++ === 0
          ? [fraudOutcomeWorkflowId('rec-pending')]
          : []
        : [recoveryWorkflowId('rec-running')];
  })(),
  // The running recovery is mid-charge at the first ask: it refuses the cancel for now.
  stopRecoveries: (() => {
    let asked = 0;
    return async (req: { workflow_ids: string[] }) => {
      if (asked++ === 0)
        throw ApplicationFailure.retryable(
          'a charge of pm-a is under way and its outcome is not known yet',
          'RecoveriesBusy',
        );
      return req.workflow_ids;
    };
  })(),
  fraudReviewsEnded: async () => {
    throw ApplicationFailure.retryable('fraud reviews still running: rec-pending', 'ReviewsPending');
  },
  awaitWorkflowsClosed: async () => [],
  historyWorkflowsClosed: noop,
  whyErasureWaits: async (req: { workflow_ids: string[] }) =>
    req.workflow_ids.map((id) => ({ workflow_id: id, why: "fraud review awaits ops' decision (resolveReview)" })),
  eraseCustomer: async (req: { customer_id: string }) => ({
    customer_id: req.customer_id,
    erased: true,
    // The customer and a record merged into it: each erased, each re-erased by a restore.
    erased_records: [req.customer_id, '0d5c9a4e-6a58-4c0f-9a3e-2b7f1c8d9e10'],
    deleted: { identifiers: 1, addresses: 1, payment_methods: 1, devices: 1, events_stripped: 3, history_keys: 2 },
  }),
  createConsentCodes: async (req: { customer_ids: string[] }) =>
    Object.fromEntries(req.customer_ids.map((id, i) => [id, `RECORDED${i}`])),
  mergeCustomers: async () => ({
    outcome: 'merged',
    payment_methods: ['pm-b'],
    devices: ['d-b'],
    addresses: [],
    identifiers: ['i-b'],
    ltv_minor_moved: 1250,
    redirected: [],
  }),
  unmergeCustomers: async () => ({
    restored: { payment_methods: ['pm-b'], devices: ['d-b'], addresses: [], identifiers: ['i-b'] },
    not_restored: [],
  }),
  listMergedCustomerProcesses: async () => [],
};

async function main(): Promise<void> {
  const labelAt = process.argv.indexOf('--as');
  const label = labelAt > 0 ? process.argv[labelAt + 1] : undefined;
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt > 0 ? (process.argv[onlyAt + 1] ?? '') : '';
  if (!label || !/^[a-z0-9][a-z0-9-]*$/.test(label)) {
    console.error('usage: npm run histories:record -- --as <label>   (lowercase letters, digits and dashes)');
    process.exit(2);
  }
  // Recorded as Persona's clients and workers write them: every payload encrypted.
  const env = await createTimeSkippingEnv({ payloadCodec: RECORDING_CODEC });
  const taskQueue = `record-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await bundleWorkflowCode({
      workflowsPath: PERSONA_WORKFLOWS,
      workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
    }),
    dataConverter: { payloadCodecs: [RECORDING_CODEC] },
    activities,
  });
  const histories: Record<string, string> = {};
  /** A workflow that never finishes on its own: once its first run has continued as new, stop it. */
  const untilNextRun = async (h: ReturnType<typeof env.client.workflow.getHandle>): Promise<void> => {
    const first = (await h.describe()).runId;
    while ((await h.describe()).runId === first) await new Promise((r) => setTimeout(r, 200));
    await h.terminate('recorded');
  };
  const record = async (
    name: string,
    workflowType: string,
    args: unknown[],
    drive?: (h: ReturnType<typeof env.client.workflow.getHandle>) => Promise<void>,
    workflowId = `rec-${name}`,
    /** How the workflow is started, when not by a plain start (an Update-with-Start). */
    start?: (workflowId: string) => Promise<{ firstExecutionRunId: string }>,
  ) => {
    if (!name.startsWith(only)) return;
    const handle = Object.assign(
      env.client.workflow.getHandle(workflowId),
      start ? await start(workflowId) : await env.client.workflow.start(workflowType, { taskQueue, workflowId, args }),
    );
    if (drive) await drive(handle);
    else await handle.result();
    // The first run's history (a workflow that continued as new ends there).
    const history = await env.client.workflow.getHandle(workflowId, handle.firstExecutionRunId).fetchHistory();
    // The proto message's own JSON (enum names, string longs, base64 payloads); History.fromObject reads it back.
    // Worker and client identities name the recording machine, and failures' stack traces its
    // paths: replaced (replay compares neither).
    // With the workflow id it ran under: its payloads are bound to it, and replay under it only.
    histories[name] = JSON.stringify(
      { workflowId, ...(history as unknown as { toJSON(): object }).toJSON() },
      (key, value: unknown) => (key === 'identity' ? 'history-recorder' : key === 'stackTrace' ? '' : value),
      1,
    );
  };
  try {
    await worker.runUntil(async () => {
      const plan = {
        customer: { segment: 'New', ltv: 0 },
        payment_method: null,
        device: null,
        address: null,
        digital_identifiers: [],
        ignored: [],
      };
      await record('onboarding-created', 'onboardingWorkflow', [{ plan }]);
      // As the api starts it with ?wait=true: an Update-with-Start, answered once the customer is written.
      await record(
        'onboarding-waited',
        'onboardingWorkflow',
        [{ plan }],
        undefined,
        'rec-onboarding-waited',
        async (id) => {
          const operation = new WithStartWorkflowOperation('onboardingWorkflow', {
            taskQueue,
            workflowId: id,
            args: [{ plan }],
            workflowIdConflictPolicy: 'USE_EXISTING',
          });
          await env.client.workflow.executeUpdateWithStart(customerWrittenUpdate, {
            startWorkflowOperation: operation,
          });
          return { firstExecutionRunId: (await (await operation.workflowHandle()).describe()).runId };
        },
      );
      await record('trusted-device', 'trustedDeviceWorkflow', [
        { customer_id: customerId, device_id: 'd-1', seen_on: '2026-11-22' },
      ]);
      /** A recovery of `paymentId` from its report to its end (the stand-ins decide how it goes). */
      const recovery = (
        name: string,
        paymentId: string,
        declineCode = 'insufficient_funds',
        during?: (h: ReturnType<typeof env.client.workflow.getHandle>) => Promise<void>,
      ) =>
        record(name, 'paymentRecoveryWorkflow', [{ dunningSchedule: ['1d'], chargeRetryFor: '2m' }], async (h) => {
          await h.signal(paymentFailedSignal, {
            payment_id: paymentId,
            customer_id: customerId,
            payment_method_id: 'pm-a',
            amount: 999,
            currency: 'EUR',
            decline_code: declineCode,
          });
          await during?.(h);
          await h.result();
        });
      await recovery('payment-recovery-cascade', 'pay-rec');
      await recovery('payment-recovery-dunning', 'pay-dun');
      // Declined as expired; the account updater renews the card, which is charged at once.
      await recovery('payment-recovery-renewed', 'pay-ren', 'expired_card');
      // Dunning; a card added to the wallet is offered (the Update), and the retry it wakes recovers.
      await recovery('payment-recovery-offered', 'pay-dun', 'insufficient_funds', async (h) => {
        while ((await h.query(recoveryStatusQuery)).state !== 'dunning') await new Promise((r) => setTimeout(r, 100));
        await h.executeUpdate(offerPaymentMethodUpdate, { args: [{ payment_method_id: 'pm-new' }] });
      });
      // A charge whose outcome stays unknown: needs attention (retry only); the payment's owner says
      // it was settled elsewhere (written to the ledger), the gateway is asked without sending, has
      // the charge, and the recovery is recorded as recovered.
      await recovery('payment-recovery-unknown-settled', 'pay-unk', 'insufficient_funds', async (h) => {
        while ((await h.query(recoveryStatusQuery)).state !== 'needs_attention') await env.sleep('1 minute');
        await h.executeUpdate(paymentNoLongerOwedUpdate, { args: [{ reason: 'settled_elsewhere' }] });
      });
      // A run that finds a stop asked of the ledger before it began: nothing charged, the open
      // attempts settled, stopped.
      await recovery('payment-recovery-ledger-stopped', 'pay-lst');
      // A run whose charge the ledger answered with an earlier run's success: recorded on its method.
      await recovery('payment-recovery-other-run', 'pay-oth');
      // Needs attention, ops answer "retry" (the Update), it needs attention again, the batch signal
      // retries it, it needs attention a third time, and the owner's word settles it.
      await recovery('payment-recovery-attention-retried', 'pay-unk', 'insufficient_funds', async (h) => {
        const attention = async (after: string | undefined) => {
          for (;;) {
            const s = await h.query(recoveryStatusQuery);
            if (s.state === 'needs_attention' && s.attention?.since !== after) return s.attention?.since;
            await env.sleep('1 minute');
          }
        };
        const first = await attention(undefined);
        await h.executeUpdate(resolveAttentionUpdate, { args: [{ action: 'retry', note: 'recorded' }] });
        const second = await attention(first);
        await h.signal(retryAttentionSignal);
        await attention(second);
        await h.executeUpdate(paymentNoLongerOwedUpdate, { args: [{ reason: 'not_owed', note: 'recorded' }] });
      });
      // In dunning: the failed method is blocked (a confirmed fraud), the customer merged into
      // another record, and the graph restored from a backup; then ops stop it.
      await recovery('payment-recovery-blocked-merged-restored', 'pay-dun', 'insufficient_funds', async (h) => {
        while ((await h.query(recoveryStatusQuery)).state !== 'dunning') await new Promise((r) => setTimeout(r, 100));
        await h.signal(paymentMethodBlockedSignal, { payment_method_id: 'pm-a', reason: 'confirmed fraud rec-cf' });
        await h.signal(customerMergedSignal, { merge_id: 'm-1', merged_id: customerId, survivor_id: otherCustomerId });
        await h.signal(graphRestoredSignal, { reason: 'recorded', epoch: 2, backup_id: 'b-1' });
        while ((await h.query(recoveryStatusQuery)).state !== 'needs_attention') await env.sleep('1 minute');
        await h.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'recorded' }] });
      });
      await record('expiry-scan-continue-as-new', 'expiryScanWorkflow', [
        { as_of: '2026-11-22', time_zone: 'UTC', batch_size: 2, batches_per_run: 1, lanes: 1 },
      ]);
      await record(
        'fraud-confirmed-reviewed',
        'fraudOutcomeWorkflow',
        [
          {
            report: {
              outcome_id: 'rec-cf',
              customer_id: customerId,
              outcome: 'confirmed_fraud',
              payment_method_id: 'pm-a',
              device_id: 'd-1',
            },
            trust_step: 0.1,
            review_days: 30,
          },
        ],
        async (h) => {
          while ((await h.query(fraudOutcomeStatusQuery)).state !== 'awaiting_review')
            await new Promise((r) => setTimeout(r, 100));
          await h.executeUpdate(resolveReviewUpdate, { args: [{ decision: 'confirm' }] });
          await h.result();
        },
        fraudOutcomeWorkflowId('rec-cf'),
      );
      await record(
        'fraud-takeover-restored-reinstated',
        'fraudOutcomeWorkflow',
        [
          {
            report: { outcome_id: 'rec-ato', customer_id: customerId, outcome: 'account_takeover', device_id: 'd-1' },
            trust_step: 0.1,
            review_days: 30,
          },
        ],
        async (h) => {
          while ((await h.query(fraudOutcomeStatusQuery)).state !== 'awaiting_review')
            await new Promise((r) => setTimeout(r, 100));
          await h.signal(customerMergedSignal, {
            merge_id: 'm-2',
            merged_id: customerId,
            survivor_id: otherCustomerId,
          });
          await h.signal(graphRestoredSignal, { reason: 'recorded', epoch: 2, backup_id: 'b-1' });
          await h.executeUpdate(resolveReviewUpdate, { args: [{ decision: 'reinstate', note: 'recorded' }] });
          await h.result();
        },
        fraudOutcomeWorkflowId('rec-ato'),
      );
      await record(
        'fraud-false-positive',
        'fraudOutcomeWorkflow',
        [
          {
            report: { outcome_id: 'rec-fp', customer_id: customerId, outcome: 'false_positive' },
            trust_step: 0.1,
            review_days: 30,
          },
        ],
        undefined,
        fraudOutcomeWorkflowId('rec-fp'),
      );
      await record(
        'fraud-false-positive-refused',
        'fraudOutcomeWorkflow',
        [
          {
            report: { outcome_id: 'rec-fp-refused', customer_id: customerId, outcome: 'false_positive' },
            trust_step: 0.1,
            review_days: 30,
          },
        ],
        undefined,
        fraudOutcomeWorkflowId('rec-fp-refused'),
      );
      const mergeInput = (consent: boolean) => ({
        survivor_id: customerId,
        merged_id: otherCustomerId,
        consent,
        consent_days: 7,
        unmerge_days: 90,
        requested_by: 'recorder',
        reason: 'recorded',
      });
      await record(
        'identity-merge-consented',
        'identityMergeWorkflow',
        [mergeInput(true)],
        async (h) => {
          while ((await h.query(identityMergeStatusQuery)).state !== 'awaiting_consent')
            await new Promise((r) => setTimeout(r, 100));
          for (const [i, id] of [customerId, otherCustomerId].entries())
            await h.executeUpdate(confirmMergeUpdate, { args: [{ customer_id: id, code: `RECORDED${i}` }] });
          // The undo window passes without an undo.
          await h.result();
        },
        identityMergeWorkflowId(customerId, otherCustomerId),
      );
      await record(
        'identity-merge-undone',
        'identityMergeWorkflow',
        [mergeInput(false)],
        async (h) => {
          while ((await h.query(identityMergeStatusQuery)).state !== 'merged')
            await new Promise((r) => setTimeout(r, 100));
          await h.executeUpdate(undoMergeUpdate, { args: [{ reason: 'recorded', requested_by: 'recorder' }] });
          await h.result();
        },
        `rec-undone-${identityMergeWorkflowId(customerId, otherCustomerId)}`,
      );
      await record('erasure', 'erasureWorkflow', [{ customer_id: customerId }]);
      // A fraud review is pending: the erasure waits past its deadline (overdue, naming the review),
      // until ops override it with a reason.
      const overdueInput = [{ customer_id: otherCustomerId, wait_deadline: '60m' }];
      await record('erasure-review-overridden', 'erasureWorkflow', overdueInput, async (h) => {
        while ((await h.query(erasureStatusQuery)).wait?.blocked_by[0]?.why == null) await env.sleep('10 minutes');
        await h.signal(erasureRequestedSignal, {
          reason: 'court order',
          requested_by: 'recorder',
          override_fraud_review: true,
        });
        await h.result();
      });
      await record(
        'identity-merge-declined',
        'identityMergeWorkflow',
        [mergeInput(true)],
        async (h) => {
          while ((await h.query(identityMergeStatusQuery)).state !== 'awaiting_consent')
            await new Promise((r) => setTimeout(r, 100));
          await h.executeUpdate(declineMergeUpdate, { args: [{ customer_id: otherCustomerId, code: 'RECORDED1' }] });
          await h.result();
        },
        `rec-declined-${identityMergeWorkflowId(customerId, otherCustomerId)}`,
      );

      await record('interaction-claims-prune', 'interactionClaimsPruneWorkflow', [
        { window_hours: 24, batch_size: 10_000 },
      ]);
      await record('event-prune', 'eventPruneWorkflow', [
        { safety_minutes: 60, cap_hours: 72, history_days: 400, batch_size: 5_000 },
      ]);
      await record(
        'event-relay-continue-as-new',
        'eventRelayWorkflow',
        [{ lag_ms: 1000, page_size: 10, poll_interval: '1 second', pages_per_run: 2 }],
        async (h) => {
          await h.executeUpdate(retryParkedUpdate, { args: [{}] });
          // A worker started with other settings applies its own.
          await h.executeUpdate(reconfigureRelayUpdate, {
            args: [{ lag_ms: 3000, page_size: 20, poll_interval: '2 seconds', pages_per_run: 2 }],
          });
          await untilNextRun(h);
        },
      );
      await record(
        'kafka-publisher-continue-as-new',
        'kafkaPublisherWorkflow',
        [
          {
            topic: 'persona.events.v1',
            page_size: 2,
            budget_ms: 20_000,
            poll_interval: '1 second',
            batches_per_run: 3,
          },
        ],
        async (h) => {
          await h.executeUpdate(reconfigurePublisherUpdate, {
            args: [
              {
                topic: 'persona.events.v2',
                page_size: 5,
                budget_ms: 20_000,
                poll_interval: '1 second',
                batches_per_run: 3,
              },
            ],
          });
          await untilNextRun(h);
        },
      );
      await record('gateway-reconciliation', 'gatewayReconciliationWorkflow', [
        { lookback_hours: 26, grace_minutes: 30, page_size: 2 },
      ]);
    });
  } finally {
    await env.teardown();
  }
  mkdirSync(HISTORIES_DIR, { recursive: true });
  for (const [name, json] of Object.entries(histories)) {
    const file = `${name}@${label}.json`;
    // 'wx': never over a history already kept.
    writeFileSync(path.join(HISTORIES_DIR, file), `${json}\n`, { flag: 'wx' });
    console.log(`recorded workflows/__histories__/${file}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
