/** The erasure workflow's contract. */
export const ERASURE_WORKFLOW_TYPE = 'erasureWorkflow';

/** One erasure per customer: asking again returns the same workflow (and erasing twice changes nothing). */
export function erasureWorkflowId(customerId: string): string {
  return `erasure-${customerId}`;
}

export interface ErasureOutcome {
  customer_id: string;
  /** Workflows of the customer that were running and were cancelled. */
  cancelled: string[];
  erased: boolean;
  deleted: {
    identifiers: number;
    addresses: number;
    payment_methods: number;
    devices: number;
    events_stripped: number;
  };
}
