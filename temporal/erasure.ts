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

export interface ErasureInput {
  customer_id: string;
  /**
   * How long the erasure may wait (for a fraud review, recoveries stopping, the customer's workflows
   * closing) before it is overdue, as a workflow duration ('24h', '90m'): PERSONA_ERASURE_WAIT_DEADLINE_HOURS,
   * recorded in the history with the start. DEFAULT_ERASURE_WAIT_DEADLINE when absent.
   */
  wait_deadline?: string;
}

/** How long an erasure waits before it is overdue when its input names no deadline. */
export const DEFAULT_ERASURE_WAIT_DEADLINE = '24h';
/** How often an overdue erasure looks again at what holds it (`wait.blocked_by`). */
export const ERASURE_OVERDUE_RELOOK = '1h';

/** What an erasure waits on: ops' fraud review, recoveries taking the stop, the customer's workflows closing. */
export const ERASURE_WAITS = ['fraud_review', 'recoveries_stopping', 'workflows_closing'] as const;
export type ErasureWaitOn = (typeof ERASURE_WAITS)[number];

/** One workflow that holds an erasure, and why, in words. */
export interface ErasureBlocker {
  workflow_id: string;
  /** E.g. "payment recovery waits for ops: a charge of unknown outcome since …"; null before it was looked at. */
  why: string | null;
}

/** What an erasure waits on right now, since when, and when it is (or was) due. */
export interface ErasureWait {
  on: ErasureWaitOn;
  /** When the erasure started: its deadline counts from there, across every wait. */
  since: string;
  /** `since` plus the wait deadline: past it the erasure is overdue (counted once, alerted) and waits on. */
  due_at: string;
  overdue: boolean;
  /**
   * What holds it: before the deadline the workflows it was told to wait for (none named for
   * `workflows_closing`); once overdue, each open workflow of the customer with why it is open,
   * looked at again every ERASURE_OVERDUE_RELOOK.
   */
  blocked_by: ErasureBlocker[];
}

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
  /** Set while the erasure waits on a person or another workflow (nothing is erased meanwhile); null otherwise. */
  wait: ErasureWait | null;
  /** Whether the erasure passed its deadline while waiting (stays true once set). */
  overdue: boolean;
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
  /** Whether the erasure waited past its deadline (PERSONA_ERASURE_WAIT_DEADLINE_HOURS) before it could erase. */
  overdue?: boolean;
}
