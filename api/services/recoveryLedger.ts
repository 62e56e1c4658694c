/**
 * A payment recovery's status when its workflow cannot answer (api/services/recovery.ts
 * `recoveryStatus`): what the charge ledger recorded of it, marked so (`source: 'ledger'`, `as_of`).
 */
import type { readRecoveryLedger } from '../../graph/chargeLedger';
import { unavailableDependency, type DependencyUnavailableError } from '../../runtime/dependencies';
import { initialRecoveryStatus, type RecoveryStatus } from '../../temporal/recovery';

/**
 * A recovery's status as the api answers it: the workflow's own, or — `source: 'ledger'` — what the
 * charge ledger recorded, as of its last change (`as_of`), with the payment it replaces and the one
 * that replaced it, when there are (graph/recoveryReplacement.ts).
 */
export type RecoveryStatusAnswer = RecoveryStatus & {
  source?: 'ledger';
  as_of?: string;
  replaces?: string;
  replaced_by?: string;
};

/** A recovery and its charges, as the ledger has them. */
export type LedgerRecord = NonNullable<Awaited<ReturnType<typeof readRecoveryLedger>>>;

/** The unavailability `err` is when the workflow could not answer (no worker, Temporal out of reach). */
export function cannotAnswer(err: unknown): DependencyUnavailableError | undefined {
  const unavailable = unavailableDependency(err);
  return unavailable?.dependency === 'worker' || unavailable?.dependency === 'temporal' ? unavailable : undefined;
}

/**
 * What the ledger says of a recovery, in the shape of the workflow's status (its charges as
 * attempts): `waiting` before its workflow started, `recovering` while it runs (the ledger does
 * not say whether it charges, waits for its next round or for ops), else how it ended.
 */
export function statusFromLedger(recorded: LedgerRecord): RecoveryStatusAnswer {
  const { recovery, attempts } = recorded;
  const state =
    recovery.state !== 'recovering' ? recovery.state : recovery.started_at === null ? 'waiting' : 'recovering';
  const marker = {
    source: 'ledger' as const,
    ...asOf(recorded),
    ...(recovery.replaces === null ? {} : { replaces: recovery.replaces }),
    ...(recovery.replaced_by === null ? {} : { replaced_by: recovery.replaced_by }),
  };
  // The customer was erased: how it ended, and nothing more.
  if (recovery.erased_at !== null) return { ...initialRecoveryStatus(), state, ...marker };
  return {
    ...initialRecoveryStatus(),
    state,
    attempts: attempts.map((a) => ({
      payment_method_id: a.payment_method_id,
      outcome: a.state === 'succeeded' ? 'succeeded' : a.state === 'declined' ? 'declined' : 'skipped',
      decline_code: a.state === 'succeeded' ? null : (a.decline_code ?? a.state),
      at: a.first_sent_at ?? a.created_at,
    })),
    recovered_with: recovery.recovered_with,
    stop_reason: recovery.state === 'stopped' ? recovery.reason : null,
    ...marker,
  };
}

/** The ledger's last change of a recovery (its report, start, end, erasure, or a charge's), as `as_of`. */
function asOf({ recovery, attempts }: LedgerRecord): { as_of?: string } {
  const times = [
    recovery.reported_at,
    recovery.started_at,
    recovery.ended_at,
    recovery.erased_at,
    ...attempts.flatMap((a) => [a.created_at, a.first_sent_at, a.last_sent_at, a.answered_at, a.erased_at]),
  ].filter((t): t is string => t !== null && !Number.isNaN(Date.parse(t)));
  if (times.length === 0) return {};
  return { as_of: new Date(Math.max(...times.map((t) => Date.parse(t)))).toISOString() };
}
