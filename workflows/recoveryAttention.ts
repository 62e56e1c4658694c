/**
 * A payment recovery's `needs_attention`: what a retry by Temporal could not fix (a charge refused
 * or of unknown outcome, a record the graph refused, a restore that lost what the recovery acts
 * on) waits for ops, with a deadline past which it is counted overdue and alerts.
 */
import { condition, log, upsertSearchAttributes } from '@temporalio/workflow';
import type { AttentionDecision, AttentionReason } from '../temporal/recovery';
import { personaOverdue } from '../temporal/searchAttributes';
import { countRecoveryAttentionOverdue, countRecoveryNeedingAttention } from './metrics';
import type { RecoveryRun } from './recoveryState';

/** Asks ops, and waits for their answer (or a stop), on the run's behalf. */
export class RecoveryAttention {
  constructor(private readonly run: RecoveryRun) {}

  /**
   * needs_attention: waits for ops after something a retry by Temporal could not fix; past the
   * deadline it is counted overdue (the alert) and waits on. A stop answers it too — except a
   * record's: a charge that went through is recorded, or ops take the record over (skip).
   */
  async askForAttention(
    kind: AttentionReason,
    reason: string,
    about: { payment_method_id: string | null; skippable: boolean; unknown_charge: string | null },
  ): Promise<AttentionDecision['action'] | 'stopped'> {
    const f = this.run.reported;
    const resume = this.run.status.state;
    const since = new Date();
    this.run.decision = null;
    this.run.moveTo('needs_attention', {
      next_retry_at: null,
      next_retry_reason: null,
      attention: {
        kind,
        reason,
        ...about,
        since: since.toISOString(),
        due_at: new Date(since.getTime() + this.run.attentionMs).toISOString(),
        overdue: false,
      },
    });
    countRecoveryNeedingAttention(kind);
    log.warn('payment recovery needs attention', { paymentId: f.payment_id, customerId: f.customer_id, kind, reason });
    const stoppable = kind !== 'record_failed';
    const answered = () => this.run.decision !== null || (stoppable && this.run.stopping);
    const summary = `Wait for ops: ${kind} (retry${about.skippable ? ' or skip' : ''})`;
    if (!(await condition(answered, this.run.attentionMs, { summary }))) {
      if (this.run.status.attention) this.run.status.attention.overdue = true;
      upsertSearchAttributes([{ key: personaOverdue, value: 'recovery_attention' }]);
      countRecoveryAttentionOverdue(kind);
      log.error('payment recovery overdue: nobody answered its attention before the deadline', {
        paymentId: f.payment_id,
        kind,
        since: since.toISOString(),
      });
      await condition(answered);
      upsertSearchAttributes([{ key: personaOverdue, value: null }]);
    }
    // Set by a handler while this step waited. A stop wins over a decision that came with it: after
    // a stop is taken nothing more is charged (a record's attention is the exception: it only records).
    const decided = this.run.decision as AttentionDecision | null;
    const action = (stoppable && this.run.stopping) || decided === null ? 'stopped' : decided.action;
    log.info('payment recovery resumed', { paymentId: f.payment_id, action, note: decided?.note });
    // Taken: the next attention waits for a decision of its own, and a cancel is not held back by this one.
    this.run.decision = null;
    this.run.moveTo(resume, { attention: null });
    return action;
  }

  /**
   * A restore lost what this recovery acts on: ops decide before anything more is charged (retry
   * or skip: go on with the graph as it is now; a stop: stop). Asked before every charge, so a
   * signal that arrives mid-pass stops the next charge too. False when the recovery stops.
   */
  async restoredAndDecided(): Promise<boolean> {
    if (this.run.restored === null) return true;
    const reason = this.run.restored;
    this.run.restored = null;
    const action = await this.askForAttention('graph_restored', reason, {
      payment_method_id: null,
      skippable: true,
      unknown_charge: null,
    });
    return action !== 'stopped';
  }
}
