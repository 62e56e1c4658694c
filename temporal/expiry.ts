/** The card-expiry scan's contract: ids, input, progress query, batch messages. */
import { defineQuery } from '@temporalio/workflow';
import type { ExpiryStage } from '../payments/expiry';

export const EXPIRY_SCAN_WORKFLOW_TYPE = 'expiryScanWorkflow';

/** The daily Schedule; the runs it starts are `persona-expiry-scan-<scheduled time>`. */
export const EXPIRY_SCAN_SCHEDULE_ID = 'persona-expiry-scan';

/** An on-demand scan: one per `as_of` day at a time (a repeat while it runs gets the same run). */
export function expiryScanWorkflowId(asOf: string): string {
  return `expiry-scan-${asOf}`;
}

/** Where a scan is: the last card read, in (expiry year, expiry month, id) order. */
export interface ExpiryCursor {
  year: number;
  month: number;
  /** null once that month has been read to its end. */
  id: string | null;
}

/**
 * One slice of the card-id space, [from, to), paged by its own chain of batches; a scan runs
 * its lanes side by side.
 */
export interface ExpiryLane {
  from: string;
  /** null: no upper bound. */
  to: string | null;
  cursor: ExpiryCursor | null;
  done: boolean;
}

/** Splits the (UUID) id space into `count` lanes at hex-digit boundaries; together they cover every string. */
export function expiryLanes(count: number): ExpiryLane[] {
  const n = Math.max(1, Math.min(16, Math.trunc(count)));
  const bounds = Array.from({ length: n }, (_, i) => Math.floor((i * 16) / n).toString(16));
  return bounds.map((b, i) => ({ from: i === 0 ? '' : b, to: bounds[i + 1] ?? null, cursor: null, done: false }));
}

export interface ExpiryScanSettings {
  /** Time zone "today" is taken in when no `as_of` is given (PERSONA_EXPIRY_SCAN_TIMEZONE). */
  time_zone: string;
  /** Cards per batch activity (PERSONA_EXPIRY_BATCH_SIZE). */
  batch_size: number;
  /** Batches per workflow run before continue-as-new (PERSONA_EXPIRY_BATCHES_PER_RUN). */
  batches_per_run: number;
  /** Lanes scanned side by side (PERSONA_EXPIRY_SCAN_LANES). */
  lanes: number;
}

/** Who started a scan on demand, and why (a scheduled scan has none). */
export interface ExpiryScanRequested {
  /** The ops token's subject, null for one without. */
  by: string | null;
  reason: string;
}

export interface ExpiryScanInput extends ExpiryScanSettings {
  /** Scan as if this day (`YYYY-MM-DD`) were today; default: today in `time_zone`. */
  as_of?: string;
  /** An on-demand scan's actor and reason. */
  requested?: ExpiryScanRequested;
  /** Carried across continue-as-new (inside progress: each lane's cursor). */
  progress?: ExpiryScanProgress;
}

export type StageCounts = Record<`${ExpiryStage}`, number>;

export interface ExpiryScanProgress {
  as_of: string;
  state: 'scanning' | 'done';
  /** Cards read: active cards expiring up to the end of the 60-day window. */
  scanned: number;
  /** Warnings sent by this scan, per stage (days before expiry). */
  notified: StageCounts;
  /** Warnings already sent (a re-run or an overlapping scan): not sent again. */
  already_notified: number;
  /** Warnings due for customers without an email or phone: recorded, nothing sent. */
  unreachable: number;
  /** Warnings the receiver refused for good (never retried). */
  rejected: number;
  /** Cards past their expiry month, now `expired`. */
  expired: number;
  /** Warnings not sent because the account updater renewed the card first (new expiry, no warning). */
  renewed?: number;
  batches: number;
  /** Workflow runs so far (continue-as-new starts the next). */
  runs: number;
  /** Each lane's slice of the id space and where it is. */
  lanes: ExpiryLane[];
  started_at: string;
  finished_at: string | null;
  /** Who started it on demand, and why; null for a scheduled scan. */
  requested?: ExpiryScanRequested | null;
}

export const expiryScanProgressQuery = defineQuery<ExpiryScanProgress>('expiryScanProgress');

export interface ExpiryBatchRequest {
  as_of: string;
  /** null: from the start. */
  cursor: ExpiryCursor | null;
  /** The lane's ids: [id_from, id_to). */
  id_from: string;
  id_to: string | null;
  batch_size: number;
}

export interface ExpiryBatchResult {
  /** null when the window has been read to its end. */
  next_cursor: ExpiryCursor | null;
  scanned: number;
  expired: number;
  notified: StageCounts;
  already_notified: number;
  unreachable: number;
  /** Warnings the receiver refused for good. */
  rejected: number;
  /** Warnings due on a card that is not the default, or whose customer is not active. */
  not_warned: number;
  /** Warnings not sent: the account updater renewed the card (absent from older batches). */
  renewed?: number;
}

export function emptyStageCounts(): StageCounts {
  return { '60': 0, '30': 0, '7': 0 };
}
