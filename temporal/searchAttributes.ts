/**
 * Search attributes Persona sets on its workflows, so ops can find every process of a customer
 * in the Temporal UI with `PersonaCustomerId = '<id>'`.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const personaCustomerId = defineSearchAttributeKey('PersonaCustomerId', SearchAttributeType.KEYWORD);
/** A payment recovery's state (temporal/recovery.ts RecoveryState), kept current on every change. */
export const personaRecoveryState = defineSearchAttributeKey('PersonaRecoveryState', SearchAttributeType.KEYWORD);
/** Why a recovery waits for ops (ATTENTION_REASONS), while it does; unset otherwise. */
export const personaAttentionReason = defineSearchAttributeKey('PersonaAttentionReason', SearchAttributeType.KEYWORD);

/**
 * What a workflow waits on past its deadline (OVERDUE_WAITS), while it does; unset otherwise:
 * `PersonaOverdue IS NOT NULL` lists every process someone should have answered by now.
 */
export const personaOverdue = defineSearchAttributeKey('PersonaOverdue', SearchAttributeType.KEYWORD);
/** The values of PersonaOverdue: a recovery's attention or its settling, an erasure's wait, a fraud review. */
export const OVERDUE_WAITS = ['recovery_attention', 'charge_settle', 'erasure', 'fraud_review'] as const;
export type OverdueWait = (typeof OVERDUE_WAITS)[number];

/** Every custom search attribute the namespace must have; all are Keyword. */
export const requiredSearchAttributes = [
  personaCustomerId,
  personaRecoveryState,
  personaAttentionReason,
  personaOverdue,
].map((key) => ({ name: key.name, type: 'Keyword' as const }));

/** The visibility query that lists a customer's workflows. */
export function customerWorkflowsQuery(customerId: string): string {
  return `${personaCustomerId.name} = '${customerId.replace(/['\\]/g, '\\$&')}'`;
}
