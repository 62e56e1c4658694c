/**
 * Recoveries the charge ledger has `recovering` that no workflow runs: terminated by hand, or
 * lost in a restore (the restore writes the ones it terminated into the ledger). Nothing would
 * ever end them, and a new report of the payment would be answered "running" while nothing runs:
 * the gateway reconciliation's stranded pass finds them and flags them (`stranded_recovery`, an
 * alert), a new report is refused with 409 saying so (api/services/recovery.ts), and ops settle
 * them with one command (`npm run ops:settle-recoveries`, scripts/settle-recoveries.ts), which
 * writes a stop first (nothing for the payment is sent from then on, whatever still runs), reads
 * the ledger on the leader, and asks the gateway — the authority on money — what was charged,
 * never sending anything:
 *   - one charge went through, the recovery's (its customer, amount and currency): the recovery is
 *     recorded recovered with it (the method becomes the default, PaymentRecovered, LTV), as its
 *     workflow would have; a charge that is not the recovery's, or two, are left to ops;
 *   - a charge has not ended (processing, or any status but succeeded and declined), or "no
 *     charge" is not believable yet (the settle window since the last request, or since the
 *     workflow closed, has not passed): left, and said why;
 *   - nothing was charged: its open attempts are settled and it is recorded stopped, with the
 *     reason. A payment that still needs recovering is then reported again under a new id that
 *     names it (`replaces`), which the ledger links and checks.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { GatewayCharge, PaymentGateway } from '../clients/paymentGateway';
import { recordAttemptAnswerTx, settleAttempt, type LedgerAttempt } from '../graph/chargeAttempts';
import {
  endRecovery,
  readRecoveryLedger,
  recoveringRecoveries,
  requestRecoveryStop,
  type RecoveryLedger,
} from '../graph/chargeLedger';
import { InvalidInputError } from '../graph/errors';
import { writeTx, type Graph } from '../graph/graph';
import type { ProfileRules } from '../graph/interactions';
import { retryOnSurvivor } from '../graph/mergedRecords';
import { recordRecovery } from '../graph/recovery';
import { parseRecoveryChargeKey } from '../temporal/reconciliation';
import { recoveryWorkflowId } from '../temporal/recovery';
import { recordRecoveredPayment } from './recovery';

/** A recovery's workflow as Temporal has it: running, or closed (when), or unknown to it (null). */
export interface RecoveryWorkflow {
  running: boolean;
  closed_at: string | null;
  status: string;
}

/** The latest run of a payment's recovery, or null when Temporal has none (never started, or past retention). */
export async function workflowOfRecovery(temporal: Client, paymentId: string): Promise<RecoveryWorkflow | null> {
  try {
    const d = await temporal.workflow.getHandle(recoveryWorkflowId(paymentId)).describe();
    return {
      running: d.status.name === 'RUNNING',
      closed_at: d.closeTime?.toISOString() ?? null,
      status: d.status.name,
    };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** Why a recovery the ledger has recovering is stranded, in words (states and times only). */
export function strandedWhy(r: RecoveryLedger, wf: RecoveryWorkflow | null): string {
  if (r.started_at === null)
    return `reserved at ${r.reported_at ?? 'an unknown time'} and never started (Temporal has no recovery of it)`;
  if (wf === null)
    return `started at ${r.started_at}; Temporal has no workflow of it (past its retention, or restored away)`;
  const since = wf.closed_at ? ` since ${wf.closed_at}` : '';
  return `started at ${r.started_at}; its workflow is ${wf.status.toLowerCase()}${since}`;
}

export interface StrandedDeps {
  graph: Graph;
  /** The gateway, asked for the payment's charges by reference (nothing is sent). */
  gateway: Pick<PaymentGateway, 'chargesByReference'>;
  temporal: Client;
  /** How long after the last request, or the workflow's close, "no charge" is believed (the settle window). */
  settleMs: number;
  profileRules: ProfileRules;
}

/** What settling came to, by payment id. */
export interface SettleReport {
  /** A charge went through: recorded recovered with it. */
  recovered: string[];
  /** Nothing was charged: recorded stopped. */
  stopped: string[];
  /** Not settled yet (a charge processing, "no charge" not believable yet, a charge of no method): `why`. */
  unknown: string[];
  /** Their workflow runs after all: not stranded, left to it. */
  running: string[];
  why: Record<string, string>;
}

export interface SettleOptions {
  /** Only these payments (default: every recovery the ledger has recovering, begun before `before`). */
  paymentIds?: string[];
  /**
   * Only recoveries begun before this (default: STRANDED_GRACE_MS ago: one reserved a moment ago may
   * be about to start); a page at a time.
   */
  before?: string;
  /** Say what would be done, change nothing. */
  dryRun?: boolean;
  /**
   * Who settles and why: required unless `dryRun`, written into each settled recovery's stop and end
   * in the charge ledger (erased with the customer, as the ledger's words are).
   */
  requested?: { by: string; reason: string };
  /** Told of each recovery as it is settled (a command prints progress). */
  onSettled?: (paymentId: string, outcome: keyof Omit<SettleReport, 'why'>, why: string) => void;
  now?: () => Date;
}

const PAGE = 200;

/** How long after it began a recovery no workflow runs is taken for stranded (the reconciliation's grace). */
export const STRANDED_GRACE_MS = 30 * 60_000;

/** Settles every stranded recovery (or those named): see the module comment. */
export async function settleStrandedRecoveries(deps: StrandedDeps, options: SettleOptions = {}): Promise<SettleReport> {
  if (!options.dryRun && !options.requested?.reason.trim())
    throw new InvalidInputError('reason', 'say why the stranded recoveries are settled now (and who settles them)');
  const report: SettleReport = { recovered: [], stopped: [], unknown: [], running: [], why: {} };
  const settleOne = async (paymentId: string) => {
    const { outcome, why } = await settleRecovery(deps, paymentId, options);
    if (outcome === null) return;
    report[outcome].push(paymentId);
    report.why[paymentId] = why;
    options.onSettled?.(paymentId, outcome, why);
  };
  if (options.paymentIds) {
    for (const id of options.paymentIds) await settleOne(id);
    return report;
  }
  const before =
    options.before ?? new Date((options.now?.() ?? new Date()).getTime() - STRANDED_GRACE_MS).toISOString();
  for (let after: string | null = null; ;) {
    const page = await recoveringRecoveries(deps.graph, { after, before, limit: PAGE });
    for (const r of page) await settleOne(r.payment_id);
    if (page.length < PAGE) return report;
    after = page.at(-1)?.payment_id ?? null;
  }
}

type Outcome = keyof Omit<SettleReport, 'why'>;

/** Who settled, and why, in the ledger's words. */
const settledBy = ({ requested }: SettleOptions): string =>
  requested ? `settled by ${requested.by} (${requested.reason.trim()})` : 'settled by ops';

/** One recovery: null when the ledger has it ended (or has none); else what became of it. */
async function settleRecovery(
  deps: StrandedDeps,
  paymentId: string,
  options: SettleOptions,
): Promise<{ outcome: Outcome | null; why: string }> {
  const first = await readRecoveryLedger(deps.graph, paymentId, { leader: true });
  if (!first || first.recovery.state !== 'recovering') return { outcome: null, why: 'not recovering' };
  const wf = await workflowOfRecovery(deps.temporal, paymentId);
  if (wf?.running) return { outcome: 'running', why: 'its workflow runs: it settles its own charges' };
  // A stop first (unless only looking): from its commit no request for the payment goes to the
  // gateway — not from a leftover activity of the terminated run, nor from a run reset meanwhile —
  // so the attempts read after it are all there will be.
  if (!options.dryRun)
    await requestRecoveryStop(deps.graph, paymentId, {
      by: 'ops',
      reason: `${settledBy(options)} with the gateway: no workflow runs it`,
    });
  const recorded = options.dryRun ? first : await readRecoveryLedger(deps.graph, paymentId, { leader: true });
  if (!recorded || recorded.recovery.state !== 'recovering') return { outcome: null, why: 'not recovering' };
  const { recovery, attempts } = recorded;
  const stranded = strandedWhy(recovery, wf);
  const charges = (await deps.gateway.chargesByReference(paymentId)).filter(
    (c) => parseRecoveryChargeKey(c.idempotency_key)?.payment_id === paymentId,
  );
  const succeeded = charges.filter((c) => c.status === 'succeeded');
  if (succeeded.length > 1)
    return {
      outcome: 'unknown',
      why:
        `${stranded}; the gateway charged it ${succeeded.length} times ` +
        `(${succeeded.map((c) => c.id).join(', ')}): ops refund all but one, then settle by hand`,
    };
  if (succeeded[0]) return recordCharged(deps, recovery, attempts, succeeded[0], stranded, options);
  // The gateway answered a charge succeeded that its listing does not have (yet): never "stopped".
  const answered = attempts.find((a) => a.state === 'succeeded');
  if (answered)
    return {
      outcome: 'unknown',
      why:
        `${stranded}; the gateway answered its charge under ${answered.key} succeeded ` +
        `(${answered.charge_id ?? 'no id'}) and does not list it: run again later; if it stays so, ops look`,
    };
  // Only a decline has ended; any other status is a charge not ended yet.
  const open = charges.find((c) => c.status !== 'declined');
  if (open)
    return { outcome: 'unknown', why: `${stranded}; the gateway lists ${open.id} as ${open.status}, not ended yet` };
  // "No charge" is believed only once a request still on its way would have been listed.
  const now = options.now?.() ?? new Date();
  const times = [
    recovery.started_at,
    wf?.closed_at ?? null,
    ...attempts.map((a) => a.last_sent_at ?? a.created_at),
  ].map((t) => (t === null ? 0 : Date.parse(t)));
  const believedAt = Math.max(...times) + deps.settleMs;
  if (now.getTime() < believedAt)
    return {
      outcome: 'unknown',
      why: `${stranded}; the gateway has no charge for it yet, believed from ${new Date(believedAt).toISOString()}`,
    };
  const why = `${stranded}; the gateway charged nothing for it`;
  if (options.dryRun) return { outcome: 'stopped', why };
  for (const a of attempts.filter((x) => x.state === 'sent')) {
    const listed = charges.find((c) => c.idempotency_key === a.key && c.status === 'declined');
    if (listed) await recordAnswer(deps.graph, a, listed, now);
    else if (!(await settleAttempt(deps.graph, a.key, 'absent', 'gateway_has_no_charge', now, a.sends)))
      return { outcome: 'unknown', why: `${stranded}; its charge under ${a.key} was sent again meanwhile: run again` };
  }
  await endRecovery(deps.graph, {
    payment_id: paymentId,
    customer_id: recovery.customer_id,
    state: 'stopped',
    reason: `${settledBy(options)}: ${why}`,
  });
  return { outcome: 'stopped', why };
}

/**
 * A charge the gateway made for a stranded recovery: recorded as its workflow would have — only
 * when it is the recovery's (the customer, amount and currency its attempt, or else the recovery,
 * was sent with): anything else is not Persona's to record, and ops look.
 */
async function recordCharged(
  deps: StrandedDeps,
  recovery: RecoveryLedger,
  attempts: LedgerAttempt[],
  charged: GatewayCharge,
  stranded: string,
  options: SettleOptions,
): Promise<{ outcome: Outcome; why: string }> {
  const attempt = attempts.find((a) => a.key === charged.idempotency_key);
  const method = attempt?.payment_method_id ?? parseRecoveryChargeKey(charged.idempotency_key)?.payment_method_id;
  const why = `${stranded}; the gateway charged ${charged.id} (${charged.amount} ${charged.currency})`;
  if (!method) return { outcome: 'unknown', why: `${why} under a key that names no payment method: ops look` };
  const sent = attempt ?? recovery;
  const mismatch = [
    sent.customer_id !== null && charged.customer_id !== sent.customer_id ? `customer ${charged.customer_id}` : null,
    sent.amount !== null && charged.amount !== sent.amount ? `amount ${charged.amount}` : null,
    sent.currency !== null && charged.currency !== sent.currency ? `currency ${charged.currency}` : null,
    charged.reference !== null && charged.reference !== recovery.payment_id ? `reference ${charged.reference}` : null,
  ].filter((m): m is string => m !== null);
  if (mismatch.length > 0)
    return { outcome: 'unknown', why: `${why}, not the recovery's (${mismatch.join(', ')}): ops look` };
  if (options.dryRun) return { outcome: 'recovered', why };
  if (attempt) await recordAnswer(deps.graph, attempt, charged, options.now?.() ?? new Date());
  const rec = {
    payment_id: recovery.payment_id,
    payment_method_id: method,
    charge_id: charged.id,
    amount: charged.amount,
    currency: charged.currency,
  };
  // The customer may have been merged since: the recovery (and the payment) are the survivor's.
  const { customerId } = await retryOnSurvivor(recovery.customer_id, (customer_id) =>
    recordRecovery(deps.graph, { ...rec, customer_id }),
  );
  const counted = await recordRecoveredPayment(deps.graph, deps.profileRules, { ...rec, customer_id: customerId });
  const uncounted =
    counted?.result === 'invalid'
      ? `; not counted in the customer's profile (${counted.field}: ${counted.problem})`
      : '';
  return { outcome: 'recovered', why: why + uncounted };
}

/** The gateway's answer recorded on the ledger's attempt (the first answer stays). */
async function recordAnswer(graph: Graph, a: LedgerAttempt, c: GatewayCharge, now: Date): Promise<void> {
  if (c.status !== 'succeeded' && c.status !== 'declined') return;
  await writeTx(graph, (tx) =>
    recordAttemptAnswerTx(
      tx,
      a.key,
      { state: c.status as 'succeeded' | 'declined', charge_id: c.id, decline_code: c.decline_code },
      now,
    ),
  );
}
