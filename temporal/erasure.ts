/** The erasure workflow's contract. */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export const ERASURE_WORKFLOW_TYPE = 'erasureWorkflow';

/** One erasure per customer: asking again returns the same workflow (and erasing twice changes nothing). */
export function erasureWorkflowId(customerId: string): string {
  return `erasure-${customerId}`;
}

/**
 * Who asked for the erasure and why, sent with every request that carries a reason (ops, or
 * the platform, acting for a customer who is not active); recorded on the CustomerErased event.
 */
export interface ErasureRequest {
  reason: string;
  /** The requesting token's subject, when it has one. */
  requested_by: string | null;
  /** Erase now, though a fraud review of the customer is pending: the review is cancelled. */
  override_fraud_review: boolean;
}

/** Sent with signal-with-start by `DELETE /api/v1/customers/{id}` when the request carries a reason. */
export const erasureRequestedSignal = defineSignal<[ErasureRequest]>('erasureRequested');

export interface ErasureStatus {
  /**
   * `waiting_for_fraud_review`: a fraud review of the customer is pending; nothing is erased yet.
   * `refused`: the customer is suspended and the erasure was not ops' (nothing erased).
   */
  state: 'starting' | 'waiting_for_fraud_review' | 'erasing' | 'done' | 'refused';
  /** Why the erasure was refused. */
  refused?: string;
  /** The fraud-outcome workflows the erasure waits for. */
  waiting_for: string[];
  /** The latest reason given, and whether ops overrode a pending review. */
  request: ErasureRequest | null;
}

export const erasureStatusQuery = defineQuery<ErasureStatus>('erasureStatus');

export interface ErasureOutcome {
  customer_id: string;
  /** Workflows of the customer that were running and were cancelled. */
  cancelled: string[];
  erased: boolean;
  /**
   * Every record erased: the customer and the records merged into it (also when an earlier run
   * erased them). A restore erases each again (backup/reconcile.ts). Absent when refused.
   */
  erased_records?: string[];
  deleted: {
    identifiers: number;
    addresses: number;
    payment_methods: number;
    devices: number;
    events_stripped: number;
    /** History keys destroyed. */
    history_keys: number;
  };
  /** Fraud-outcome workflows whose review the erasure waited for. */
  waited_for: string[];
  /** The reason recorded with the erasure, and whether it overrode a pending review. */
  request: ErasureRequest | null;
  /** Set when nothing was erased because the customer is suspended and the request was not ops'. */
  refused?: string;
}
