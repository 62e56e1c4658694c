/**
 * The identity-merge workflow's contract: id (from the unordered pair), input, the consent and
 * undo Updates, the status query, and the signal a merged customer's running workflows get.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export const IDENTITY_MERGE_WORKFLOW_TYPE = 'identityMergeWorkflow';

const PREFIX = 'identity-merge-';

/** One workflow per pair, whichever way round it is asked: A→B and B→A are the same merge. */
export function identityMergeWorkflowId(a: string, b: string): string {
  const [x, y] = [a, b].sort();
  return `${PREFIX}${x as string}-${y as string}`;
}

/** The two customer ids of a merge's workflow id, or null if it is not one. */
export function identityMergePair(workflowId: string): [string, string] | null {
  if (!workflowId.startsWith(PREFIX)) return null;
  const rest = workflowId.slice(PREFIX.length);
  // Two UUIDs of 36 characters joined by '-'.
  if (rest.length !== 73 || rest[36] !== '-') return null;
  return [rest.slice(0, 36), rest.slice(37)];
}

export interface IdentityMergeInput {
  /** The record that stays. */
  survivor_id: string;
  /** The record that becomes a tombstone `merged_into` the survivor. */
  merged_id: string;
  /** Ask both customers (through a verified identifier of each) and merge only if both confirm. */
  consent: boolean;
  /** How long consent is waited for (PERSONA_MERGE_CONSENT_DAYS); silence means no merge. */
  consent_days: number;
  /** How long after the merge ops may undo it (PERSONA_UNMERGE_DAYS). */
  unmerge_days: number;
  /** Who asked: the principal's subject (ops, a service, or a customer of one of the records). */
  requested_by: string | null;
  reason: string | null;
}

export type IdentityMergeState =
  /** Sending each customer the request for consent. */
  | 'asking_consent'
  | 'awaiting_consent'
  | 'merging'
  /** Merged; undo (Update undoMerge) possible until `undo_deadline`. */
  | 'merged'
  | 'undoing'
  /** Final states. */
  | 'undone'
  | 'declined'
  | 'expired'
  /** The graph refused the merge (a customer suspended, erased or merged since): nothing changed. */
  | 'refused'
  /** A customer could not be asked (no verified email or phone, or the message was refused). */
  | 'unreachable'
  | 'cancelled';

export interface ConsentParty {
  customer_id: string;
  /** How the request reached the customer (null until sent, or when it could not be). */
  channel: 'email' | 'sms' | null;
  decision: 'confirmed' | 'declined' | null;
  decided_at: string | null;
}

/** What moved in the merge, in counts and ids (the full manifest is on the CustomersMerged events). */
export interface MergeSummary {
  payment_methods: string[];
  devices: string[];
  addresses: string[];
  identifiers: string[];
  /** Minor units of the reporting currency the merged record brought to the survivor. */
  ltv_minor_moved: number;
  redirected: string[];
}

export interface UnmergeSummary {
  restored: { payment_methods: string[]; devices: string[]; addresses: string[]; identifiers: string[] };
  not_restored: { kind: string; id: string | null; reason: string }[];
}

export interface IdentityMergeStatus {
  merge_id: string;
  survivor_id: string;
  merged_id: string;
  state: IdentityMergeState;
  /** consent: both customers agreed; ops: ops decided alone. */
  decided_by: 'consent' | 'ops';
  /** Each customer's part, when consent is asked (survivor first). */
  consent: ConsentParty[];
  consent_deadline: string | null;
  merged_at: string | null;
  undo_deadline: string | null;
  moved: MergeSummary | null;
  unmerge: UnmergeSummary | null;
  /** Why the merge did not happen, or why an undo was refused, in words. */
  problem: string | null;
}

/** A merge's status before its first step: what the workflow starts from (and the api answers meanwhile). */
export function initialMergeStatus(
  mergeId: string,
  input: Pick<IdentityMergeInput, 'survivor_id' | 'merged_id' | 'consent'>,
): IdentityMergeStatus {
  return {
    merge_id: mergeId,
    survivor_id: input.survivor_id,
    merged_id: input.merged_id,
    state: input.consent ? 'asking_consent' : 'merging',
    decided_by: input.consent ? 'consent' : 'ops',
    consent: input.consent
      ? [input.survivor_id, input.merged_id].map((customer_id) => ({
          customer_id,
          channel: null,
          decision: null,
          decided_at: null,
        }))
      : [],
    consent_deadline: null,
    merged_at: null,
    undo_deadline: null,
    moved: null,
    unmerge: null,
    problem: null,
  };
}

/**
 * A customer's answer: their record's id and the code the request for consent carried to
 * that record's verified email or phone (proof that the answer comes from whoever holds it).
 */
export interface MergeDecision {
  customer_id: string;
  code: string;
}

/**
 * A customer consents. Refused (validator) unless consent is awaited, the customer is one of the
 * two, has not answered yet, and the code is the one sent to them. Answers once the decision
 * is applied: the merged status when it was the second consent, else still awaiting the other.
 */
export const confirmMergeUpdate = defineUpdate<IdentityMergeStatus, [MergeDecision]>('confirmMerge');
/** A customer declines: the merge ends, nothing changes. Validated as confirmMerge. */
export const declineMergeUpdate = defineUpdate<IdentityMergeStatus, [MergeDecision]>('declineMerge');
/** Ops take the merge back (within `undo_deadline`). Answers the final status, or fails naming why. */
export const undoMergeUpdate = defineUpdate<IdentityMergeStatus, [{ reason: string; requested_by: string | null }]>(
  'undoMerge',
);
export const identityMergeStatusQuery = defineQuery<IdentityMergeStatus>('identityMergeStatus');

/**
 * What a running recovery or fraud outcome of the merged customer is told once the merge has
 * committed: go on against the survivor (its payment methods moved there, with their ids).
 */
export interface CustomerMergedNotice {
  merge_id: string;
  merged_id: string;
  survivor_id: string;
}
export const customerMergedSignal = defineSignal<[CustomerMergedNotice]>('customerMerged');
