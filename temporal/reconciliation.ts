/**
 * The gateway reconciliation's contract: ids, input, what each page's activity answers, the
 * result. The workflow compares the charges the payment gateway made (its own records, the
 * authority on money) with what the graph recorded, repairs what is safe and flags the rest.
 */
import { defineQuery } from '@temporalio/workflow';

export const GATEWAY_RECONCILIATION_WORKFLOW_TYPE = 'gatewayReconciliationWorkflow';

/** The daily Schedule; the runs it starts are `persona-gateway-reconciliation-<scheduled time>`. */
export const GATEWAY_RECONCILIATION_SCHEDULE_ID = 'persona-gateway-reconciliation';

/** The failure type of a run whose activity failed for good. */
export const GATEWAY_RECONCILIATION_FAILED = 'GatewayReconciliationFailed';

export interface GatewayReconciliationInput {
  /** Charges and recoveries made this many hours before the run was due are compared (overlapping runs). */
  lookback_hours: number;
  /**
   * An explicit window instead (RFC 3339): what a restore starts, from an hour before its backup
   * was taken to the restore, however long that is.
   */
  window?: { from: string; to: string };
  /** The newest minutes are left to the next run: a recovery records its charge moments after it. */
  grace_minutes: number;
  /** Gateway charges or recorded recoveries per activity. */
  page_size: number;
  /**
   * Slices of the window reconciled side by side, each paging on its own (default
   * RECONCILIATION_LANES): the charges pass and the recorded-recoveries pass run a lane per slice.
   */
  lanes?: number;
  /**
   * A restore's run: no other run covers its window, so a page that fails every attempt is tried
   * again after a pause (1 min doubling to 30 min) for as long as it takes, with `failing` in the
   * progress saying which page and why, instead of failing the run.
   */
  until_covered?: boolean;
  /** Carried over continue-as-new. */
  progress?: GatewayReconciliationProgress;
}

/** What was repaired, with the event it wrote. */
export interface Repair {
  kind: 'recovery_recorded' | 'method_deactivated';
  customer_id: string;
  payment_method_id: string;
  payment_id: string | null;
  charge_id: string | null;
}

/**
 * What ops must look at (docs/runbook.md says what to do with each):
 *   charged_twice                — a second succeeded charge for a payment already recovered;
 *   charge_not_recorded          — the gateway charged, and the graph cannot record it (customer erased
 *                                  or gone, method gone);
 *   charged_but_recorded_failed  — the gateway charged a payment the graph says could not be recovered;
 *   amount_mismatch              — the recorded recovery's amount or currency is not the charge's;
 *   recovery_without_charge      — a recorded recovery whose charge the gateway does not have as succeeded;
 *   stranded_recovery            — a recovery the charge ledger has `recovering` that no workflow runs
 *                                  (terminated, or lost in a restore): ops settle it
 *                                  (`npm run ops:settle-recoveries`).
 */
export type FlagKind =
  | 'charged_twice'
  | 'charge_not_recorded'
  | 'charged_but_recorded_failed'
  | 'amount_mismatch'
  | 'recovery_without_charge'
  | 'stranded_recovery';

export const FLAG_KINDS: readonly FlagKind[] = [
  'charged_twice',
  'charge_not_recorded',
  'charged_but_recorded_failed',
  'amount_mismatch',
  'recovery_without_charge',
  'stranded_recovery',
];

export interface Flag {
  kind: FlagKind;
  customer_id: string;
  payment_id: string;
  /** The charge flagged (empty for a stranded recovery, which is a recovery's, not a charge's). */
  charge_id: string;
  /** In words, for ops: what the gateway says and what the graph says. */
  detail: string;
}

export interface ReconciliationCounts {
  /** Gateway charges compared. */
  charges: number;
  /** Succeeded charges the graph had recorded as they are. */
  matched: number;
  /** Succeeded charges of recoveries still running (they record their own charge). */
  in_flight: number;
  /** Charges whose idempotency key is not a recovery's (another system's charges on the account). */
  foreign: number;
  /** Active methods whose token's standing was asked. */
  methods_checked: number;
  /** Recorded recoveries checked against the gateway. */
  recoveries: number;
  /** Charges kept pending by earlier runs (their recovery was running), looked at again. */
  pending: number;
  /** Recoveries the ledger has still recovering, looked for in Temporal (the stranded pass). */
  open_recoveries: number;
}

export interface PageResult {
  counts: ReconciliationCounts;
  repairs: Repair[];
  flags: Flag[];
}

export interface ChargesPageRequest {
  from: string;
  to: string;
  starting_after: string | null;
  limit: number;
}

export interface ChargesPageResult extends PageResult {
  /** The last charge id read (the next page starts after it), or null when the window is done. */
  next: string | null;
}

export interface PendingPageRequest {
  /** The last payment id of the previous page, or null. */
  after: string | null;
  limit: number;
}

export interface PendingPageResult extends PageResult {
  next: string | null;
}

export interface RecoveriesPageRequest {
  from: string;
  to: string;
  after: { occurred_at: string; id: string } | null;
  limit: number;
}

export interface RecoveriesPageResult extends PageResult {
  next: { occurred_at: string; id: string } | null;
}

export interface StrandedPageRequest {
  /** The last payment id of the previous page, or null. */
  after: string | null;
  /** Only recoveries started before this (the window's end): one just started may not run yet. */
  before: string;
  limit: number;
}

export interface StrandedPageResult extends PageResult {
  next: string | null;
}

/** At most this many repairs and flags are listed in the result (all are counted and logged). */
export const LISTED_MAX = 100;

export interface GatewayReconciliationProgress {
  from: string;
  to: string;
  phase: 'charges' | 'pending' | 'recoveries' | 'stranded' | 'done';
  /** The charges pass: a lane per slice of the window (made when the pass starts). */
  charge_lanes: ChargeLane[] | null;
  pending_cursor: string | null;
  /** The stranded pass: the last payment id looked at (absent or null: none yet). */
  stranded_cursor?: string | null;
  /** The recorded-recoveries pass, likewise. */
  recovery_lanes: RecoveryLane[] | null;
  counts: ReconciliationCounts;
  repaired: Record<Repair['kind'], number>;
  flagged: Record<FlagKind, number>;
  /** The first LISTED_MAX of each. */
  repairs: Repair[];
  flags: Flag[];
  pages: number;
  started_at: string;
  finished_at: string | null;
  /** A run `until_covered` whose page keeps failing: which page, why, since when (null once it went through). */
  failing?: PageFailing | null;
}

/** Lanes side by side when the input names none. */
export const RECONCILIATION_LANES = 4;

/** A slice [from, to) of the window and where its paging is. */
export interface ChargeLane {
  from: string;
  to: string;
  /** The last charge id read (null: none yet). */
  cursor: string | null;
  done: boolean;
}

export interface RecoveryLane {
  from: string;
  to: string;
  cursor: { occurred_at: string; id: string } | null;
  done: boolean;
}

/** The window cut into `n` slices of equal time (whole milliseconds), in order, covering it exactly. */
export function windowSlices(from: string, to: string, n: number): { from: string; to: string }[] {
  const a = Date.parse(from);
  const b = Date.parse(to);
  const lanes = Math.max(1, Math.min(Math.floor(n), Math.max(1, b - a)));
  return Array.from({ length: lanes }, (_, i) => ({
    from: i === 0 ? from : new Date(a + Math.floor(((b - a) * i) / lanes)).toISOString(),
    to: i === lanes - 1 ? to : new Date(a + Math.floor(((b - a) * (i + 1)) / lanes)).toISOString(),
  }));
}

/** The page a run `until_covered` is stuck on. */
export interface PageFailing {
  phase: 'charges' | 'pending' | 'recoveries' | 'stranded';
  /** Where the page starts: its lane's slice and cursor, in words (null: the phase's first page). */
  after: string | null;
  /** The last attempt's error. */
  error: string;
  /** When the page first failed every attempt. */
  since: string;
  /** Rounds of attempts that failed (each round is the activity's own retries). */
  failures: number;
  /** When the page is tried again. */
  next_try_at: string;
}

/** The pause before a failing page of a run `until_covered` is tried again: doubling, capped. */
export function untilCoveredPause(failures: number): number {
  return Math.min(60_000 * 2 ** Math.max(0, failures - 1), 30 * 60_000);
}

export const emptyCounts = (): ReconciliationCounts => ({
  charges: 0,
  matched: 0,
  in_flight: 0,
  foreign: 0,
  methods_checked: 0,
  recoveries: 0,
  pending: 0,
  open_recoveries: 0,
});

/**
 * A recovery's charge key: `<payment id>:<method id>`, with `:r<round>` in a dunning round,
 * `:renewed` for a card the account updater renewed, and `:retry<n>` for a refused charge ops
 * retried (workflows/recoveryCharging.ts). Method ids hold no colon; payment ids may.
 */
export function parseRecoveryChargeKey(key: string): { payment_id: string; payment_method_id: string } | null {
  const bare = key.replace(/:retry\d+$/, '').replace(/:renewed$/, '');
  const m = /^(.+):([^:]+):r\d+$/.exec(bare) ?? /^(.+):([^:]+)$/.exec(bare);
  return m ? { payment_id: m[1] as string, payment_method_id: m[2] as string } : null;
}

/** The run's progress and, once done, its result. */
export const gatewayReconciliationProgressQuery = defineQuery<GatewayReconciliationProgress>(
  'gatewayReconciliationProgress',
);
