/**
 * Gateway reconciliation — started daily by the Schedule `persona-gateway-reconciliation` (or
 * triggered from the UI). Compares the window [due − lookback, due − grace] in two passes, a page
 * per activity: the gateway's charges against the graph (a succeeded charge the graph lacks is
 * recorded as its recovery would have; a token the issuer revoked deactivates its method), then
 * the charges earlier runs left to their running recoveries, then the recoveries the graph recorded
 * against the gateway, and last the recoveries the charge ledger has still recovering, each looked
 * for in Temporal (one no workflow runs is stranded: flagged, for ops to settle with
 * `npm run ops:settle-recoveries`). What is not safe to repair is flagged:
 * in the result, in the log, and in the `persona_gateway_discrepancies_total` counter an alert watches
 * (docs/runbook.md). Overlapping windows are fine: every repair is idempotent. After
 * PAGES_PER_RUN pages it continues as new with its cursors and totals. An activity that fails
 * for good fails a scheduled run with `GatewayReconciliationFailed`; the next day's run covers
 * the window again (its lookback overlaps), and the last-success gauge lets an alert notice. A
 * restore's run (`until_covered`: no other run covers its window) does not fail: the page is tried
 * again after a pause, doubling up to 30 minutes, for as long as it takes; its progress says which
 * page fails and why, and each failed round counts in a metric an alert watches.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { ReconciliationActivities } from '../activities/reconciliation';
import {
  FLAG_KINDS,
  GATEWAY_RECONCILIATION_FAILED,
  LISTED_MAX,
  emptyCounts,
  gatewayReconciliationProgressQuery,
  RECONCILIATION_LANES,
  untilCoveredPause,
  windowSlices,
  type GatewayReconciliationInput,
  type GatewayReconciliationProgress,
  type PageResult,
} from '../temporal/reconciliation';
import { activitiesWithSummaries, reconciliationPage } from './activityOptions';
import {
  countGatewayDiscrepancies,
  countGatewayReconciliationPageFailure,
  countGatewayRepairs,
  markGatewayReconciliationFinished,
} from './metrics';
import { pinned } from './versioning';

const { reconcileChargesPage, reconcilePendingPage, reconcileRecoveriesPage, reconcileStrandedPage } =
  activitiesWithSummaries<ReconciliationActivities>(reconciliationPage, {
    reconcileChargesPage: (req) =>
      `Compare up to ${req.limit} gateway charges made ${req.from} – ${req.to} with the graph`,
    reconcilePendingPage: (req) =>
      `Look again at up to ${req.limit} charges earlier runs left to their running recoveries`,
    reconcileRecoveriesPage: (req) =>
      `Ask the gateway about up to ${req.limit} recoveries recorded ${req.from} – ${req.to}`,
    reconcileStrandedPage: (req) =>
      `Look in Temporal for up to ${req.limit} recoveries the charge ledger has still recovering (begun before ` +
      `${req.before}): flag those no workflow runs`,
  });

/** Set by Temporal on a run a Schedule started: when it was due, not when it happened to start. */
const SCHEDULED_START_TIME = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

/** Pages per run before continue-as-new keeps the history small. */
const PAGES_PER_RUN = 200;

/** What a run's pages share: its input, its progress, the page budget left, and the lanes. */
interface ReconciliationRun {
  input: GatewayReconciliationInput;
  p: GatewayReconciliationProgress;
  budget: number;
  lanes: number;
}

pinned(gatewayReconciliationWorkflow);
export async function gatewayReconciliationWorkflow(
  input: GatewayReconciliationInput,
): Promise<GatewayReconciliationProgress> {
  const p: GatewayReconciliationProgress = input.progress ?? firstProgress(input);
  setHandler(gatewayReconciliationProgressQuery, () => p);
  report(p);

  const run: ReconciliationRun = { input, p, budget: PAGES_PER_RUN, lanes: input.lanes ?? RECONCILIATION_LANES };
  try {
    await reconcile(run);
  } catch (err) {
    // Cancelled by ops: Canceled in the UI, not a failure to alert on.
    if (isCancellation(err) || !(err instanceof ActivityFailure)) throw err;
    const why = err.cause?.message ?? err.message;
    throw ApplicationFailure.create({
      type: GATEWAY_RECONCILIATION_FAILED,
      message:
        `reconciling ${p.from} – ${p.to} with the gateway failed after every retry (${why}); ` +
        "what was repaired stays repaired, and the next day's run compares the window again",
      nonRetryable: true,
      cause: err,
    });
  }
  if (p.phase !== 'done') {
    await condition(allHandlersFinished);
    return continueAsNew<typeof gatewayReconciliationWorkflow>({ ...input, progress: p });
  }
  p.finished_at = new Date().toISOString();
  markGatewayReconciliationFinished();
  report(p);
  const flagged = Object.values(p.flagged).reduce((a, b) => a + b, 0);
  const summary = {
    from: p.from,
    to: p.to,
    ...p.counts,
    repaired: p.repaired.recovery_recorded + p.repaired.method_deactivated,
    flagged,
  };
  if (flagged > 0) log.warn('gateway reconciliation finished: discrepancies flagged for ops', summary);
  else log.info('gateway reconciliation finished', summary);
  return p;
}

/** A first run's progress: its window, from when the run was due (a Schedule's time, else now). */
function firstProgress(input: GatewayReconciliationInput): GatewayReconciliationProgress {
  const scheduled = workflowInfo().typedSearchAttributes.get(SCHEDULED_START_TIME);
  const now = new Date();
  const due = scheduled && scheduled.getTime() < now.getTime() ? scheduled : now;
  return {
    from: input.window?.from ?? new Date(due.getTime() - input.lookback_hours * 3_600_000).toISOString(),
    to: input.window?.to ?? new Date(due.getTime() - input.grace_minutes * 60_000).toISOString(),
    phase: 'charges',
    charge_lanes: null,
    pending_cursor: null,
    recovery_lanes: null,
    counts: emptyCounts(),
    repaired: { recovery_recorded: 0, method_deactivated: 0 },
    flagged: Object.fromEntries(FLAG_KINDS.map((k) => [k, 0])) as GatewayReconciliationProgress['flagged'],
    repairs: [],
    flags: [],
    pages: 0,
    started_at: now.toISOString(),
    finished_at: null,
  };
}

/** The run's passes, from where its progress says, until done or the page budget is spent. */
async function reconcile(run: ReconciliationRun): Promise<void> {
  const { input, p } = run;
  if (p.phase === 'charges') {
    // A lane per slice of the window, side by side, sharing the run's page budget.
    const chargeLanes = (p.charge_lanes ??= windowSlices(p.from, p.to, run.lanes).map((s) => ({
      ...s,
      cursor: null,
      done: false,
    })));
    await Promise.all(chargeLanes.map((lane) => chargesLane(run, lane)));
    if (chargeLanes.every((l) => l.done)) p.phase = 'pending';
  }
  while (p.phase === 'pending' && run.budget > 0) {
    run.budget--;
    const result = await page(run, 'pending', p.pending_cursor, () =>
      reconcilePendingPage({ after: p.pending_cursor, limit: input.page_size }),
    );
    if (!result) break;
    p.pending_cursor = result.next;
    if (result.next === null) p.phase = 'recoveries';
    add(p, result);
  }
  if (p.phase === 'recoveries' && run.budget > 0) {
    const recoveryLanes = (p.recovery_lanes ??= windowSlices(p.from, p.to, run.lanes).map((s) => ({
      ...s,
      cursor: null,
      done: false,
    })));
    await Promise.all(recoveryLanes.map((lane) => recoveriesLane(run, lane)));
    if (recoveryLanes.every((l) => l.done)) p.phase = 'stranded';
  }
  while (p.phase === 'stranded' && run.budget > 0) {
    run.budget--;
    const after = p.stranded_cursor ?? null;
    const result = await page(run, 'stranded', after, () =>
      reconcileStrandedPage({ after, before: p.to, limit: input.page_size }),
    );
    if (!result) break;
    p.stranded_cursor = result.next;
    if (result.next === null) p.phase = 'done';
    add(p, result);
  }
}

/** One lane of the charges pass: its slice of the window, a page at a time. */
async function chargesLane(
  run: ReconciliationRun,
  lane: NonNullable<GatewayReconciliationProgress['charge_lanes']>[number],
): Promise<void> {
  while (!lane.done && run.budget > 0) {
    run.budget--;
    const result = await page(run, 'charges', where(run, lane, lane.cursor), () =>
      reconcileChargesPage({
        from: lane.from,
        to: lane.to,
        starting_after: lane.cursor,
        limit: run.input.page_size,
      }),
    );
    if (!result) return;
    lane.cursor = result.next;
    lane.done = result.next === null;
    add(run.p, result);
  }
}

/** One lane of the recoveries pass: its slice of the window, a page at a time. */
async function recoveriesLane(
  run: ReconciliationRun,
  lane: NonNullable<GatewayReconciliationProgress['recovery_lanes']>[number],
): Promise<void> {
  while (!lane.done && run.budget > 0) {
    run.budget--;
    const after = lane.cursor ? `${lane.cursor.occurred_at} ${lane.cursor.id}` : null;
    const result = await page(run, 'recoveries', where(run, lane, after), () =>
      reconcileRecoveriesPage({ from: lane.from, to: lane.to, after: lane.cursor, limit: run.input.page_size }),
    );
    if (!result) return;
    lane.cursor = result.next;
    lane.done = result.next === null;
    add(run.p, result);
  }
}

/** A page's result added to the run's progress, and counted. */
function add(p: GatewayReconciliationProgress, page: PageResult): void {
  p.pages++;
  for (const k of Object.keys(p.counts) as (keyof typeof p.counts)[]) p.counts[k] += page.counts[k];
  for (const r of page.repairs) p.repaired[r.kind]++;
  for (const f of page.flags) p.flagged[f.kind]++;
  p.repairs.push(...page.repairs.slice(0, LISTED_MAX - p.repairs.length));
  p.flags.push(...page.flags.slice(0, LISTED_MAX - p.flags.length));
  countGatewayRepairs('recovery_recorded', page.repairs.filter((r) => r.kind === 'recovery_recorded').length);
  countGatewayRepairs('method_deactivated', page.repairs.filter((r) => r.kind === 'method_deactivated').length);
  for (const kind of FLAG_KINDS) countGatewayDiscrepancies(kind, page.flags.filter((f) => f.kind === kind).length);
  report(p);
}

/**
 * One page, from `after` (in words, for the failing state). A run `until_covered` takes a page
 * that failed every attempt again after a pause, for as long as it takes (each round counts
 * against the run's budget, so a long outage still continues as new); null when the budget ran
 * out meanwhile. Other runs let the failure through.
 */
async function page<T>(
  run: ReconciliationRun,
  phase: 'charges' | 'pending' | 'recoveries' | 'stranded',
  after: string | null,
  call: () => Promise<T>,
): Promise<T | null> {
  const { input, p } = run;
  const mine = () => p.failing?.phase === phase && p.failing.after === after;
  for (;;) {
    try {
      const result = await call();
      if (mine()) {
        log.info('gateway reconciliation: the failing page went through', { ...p.failing });
        p.failing = null;
        report(p);
      }
      return result;
    } catch (err) {
      if (!input.until_covered || isCancellation(err) || !(err instanceof ActivityFailure)) throw err;
      // Counted per page: another lane's failing page does not lengthen this one's pause.
      const failures = mine() ? (p.failing?.failures ?? 0) + 1 : 1;
      const pause = untilCoveredPause(failures);
      const nowMs = Date.now();
      p.failing = {
        phase,
        after,
        error: err.cause?.message ?? err.message,
        since: p.failing?.since ?? new Date(nowMs).toISOString(),
        failures,
        next_try_at: new Date(nowMs + pause).toISOString(),
      };
      countGatewayReconciliationPageFailure(phase);
      log.warn('gateway reconciliation: a page failed every attempt; it is tried again after a pause', {
        ...p.failing,
      });
      report(p);
      await sleep(pause);
      if (--run.budget <= 0) return null;
    }
  }
}

/** A lane's page in words: its slice, and where in it. */
function where(run: ReconciliationRun, lane: { from: string; to: string }, cursor: string | null): string | null {
  return run.lanes === 1 ? cursor : `${lane.from} – ${lane.to}${cursor ? ` after ${cursor}` : ''}`;
}

function report(p: GatewayReconciliationProgress): void {
  const flagged = FLAG_KINDS.filter((k) => p.flagged[k] > 0).map((k) => `${k} ${p.flagged[k]}`);
  const failing = p.failing
    ? `**Failing since ${p.failing.since}** (${p.failing.failures} rounds): the ${p.failing.phase} page after ` +
      `${p.failing.after ?? 'the start'}: ${p.failing.error}. Tried again at ${p.failing.next_try_at}, until it ` +
      'goes through (docs/runbook.md, PersonaGatewayReconciliationStuck).\n\n'
    : '';
  setCurrentDetails(
    `**Gateway reconciliation** ${p.from} – ${p.to}: ${p.phase}\n\n` +
      failing +
      `${p.counts.charges} charges compared (${p.counts.matched} matched, ${p.counts.in_flight} in flight), ` +
      `${p.counts.recoveries} recorded recoveries checked, ${p.counts.methods_checked} tokens asked, ` +
      `${p.counts.open_recoveries} recoveries still recovering looked for in Temporal.\n\n` +
      `Repaired: ${p.repaired.recovery_recorded} recoveries recorded, ${p.repaired.method_deactivated} methods ` +
      `deactivated. Flagged for ops: ${flagged.length ? flagged.join(', ') : 'none'}.`,
  );
}
