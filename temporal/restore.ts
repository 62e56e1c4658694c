/**
 * What a restore of the graph from a backup (backup/restore.ts) tells a running workflow whose
 * customer or payment method the restored graph no longer has: a recovery stops for ops
 * (`needs_attention`, reason `graph_restored`), a fraud review names the problem. Nothing is
 * charged meanwhile, and the graph refuses a charge of a method it does not have anyway.
 */
import { defineSignal } from '@temporalio/workflow';

export interface GraphRestoredNotice {
  /** What the restored graph lacks, in words. */
  reason: string;
  /** The event log's new epoch. */
  epoch: number;
  /** The backup the graph was restored from. */
  backup_id: string;
}

export const graphRestoredSignal = defineSignal<[GraphRestoredNotice]>('graphRestored');
