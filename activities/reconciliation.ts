/**
 * The gateway reconciliation's activities (workflows/gatewayReconciliation.ts drives them a page
 * at a time). The gateway's records are the authority on money; the graph is the authority on
 * wallets. Every repair is idempotent (a recovery is recorded under its payment's idempotency
 * key, a status change to the status it already has writes nothing), so a page retried after a
 * worker died repairs nothing twice. Tokens are asked about and never logged.
 *
 * A charge whose recovery still runs is the recovery's to record; it is kept as pending in the
 * graph and looked at again by every later run until it is recorded, repaired or flagged, so a
 * recovery that ends without recording it (cancelled by ops while a charge's outcome was unknown)
 * is still caught, however long after the window it ends. A charge the gateway still has as
 * `processing` has no outcome yet: it is kept as pending too, neither recorded nor flagged, and
 * every later run asks the gateway again until it has ended (a decline then settles nothing).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { GatewayCharge, GatewayRecords } from '../clients/paymentGateway';
import { NotFoundError } from '../graph/errors';
import type { Graph } from '../graph/graph';
import type { ProfileRules } from '../graph/interactions';
import { updatePaymentMethodStatus } from '../graph/walletDefaults';
import {
  activeMethodTokens,
  keepPendingCharge,
  pendingCharges,
  recordedPayments,
  recoveriesRecordedBetween,
  settlePendingCharge,
  type PendingCharge,
} from '../graph/reconciliation';
import {
  emptyCounts,
  parseRecoveryChargeKey,
  type ChargesPageRequest,
  type ChargesPageResult,
  type PageResult,
  type PendingPageRequest,
  type PendingPageResult,
  type RecoveriesPageRequest,
  type RecoveriesPageResult,
  type StrandedPageRequest,
  type StrandedPageResult,
} from '../temporal/reconciliation';
import { recoveringRecoveries } from '../graph/chargeLedger';
import { strandedWhy, workflowOfRecovery } from './strandedRecoveries';
import { flag, repaired, settle, type ChargeSettling } from './reconciliationCharges';
import { inLanes } from '../runtime/lanes';

/** The status and reason a method whose token the issuer revoked gets. */
export const REVOKED_METHOD_STATUS = 'inactive';
export const REVOKED_REASON = 'gateway_token_revoked';

/** The running activity's context, or null when called directly. */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/** Charges a page settles at once (each may describe its recovery in Temporal): bench:reconciliation measured it. */
export const SETTLE_CONCURRENCY = 16;

/** What the reconciliation's pages share: what settling a charge needs, the gateway's records, the lanes. */
interface Reconciler extends ChargeSettling {
  /** The gateway's records, or a failure for good when this worker has no client for them. */
  records: () => GatewayRecords;
  /** Charges settled at once on a page. */
  settleConcurrency: number;
}

/** A sign of life between two calls: a dead worker's page is taken over within the heartbeat timeout. */
const beat = () => activityContext()?.heartbeat();

/** Methods the gateway charged that are still active here, whose token the issuer has revoked since. */
async function checkTokens({ graph, records }: Reconciler, out: PageResult, methodIds: string[]): Promise<void> {
  if (methodIds.length === 0) return;
  const active = await activeMethodTokens(graph, methodIds);
  for (let i = 0; i < active.length; i += 100) {
    const slice = active.slice(i, i + 100);
    const statuses = await records().tokenStatuses(slice.map((m) => m.token));
    beat();
    out.counts.methods_checked += slice.length;
    for (const [j, m] of slice.entries()) {
      if (statuses[j] !== 'revoked') continue;
      try {
        await updatePaymentMethodStatus(graph, m.payment_method_id, REVOKED_METHOD_STATUS, {
          reason: REVOKED_REASON,
        });
      } catch (err) {
        // Removed from the wallet meanwhile: nothing left to deactivate.
        if (err instanceof NotFoundError) continue;
        throw err;
      }
      repaired(out, {
        kind: 'method_deactivated',
        customer_id: m.customer_id,
        payment_method_id: m.payment_method_id,
        payment_id: null,
        charge_id: null,
      });
    }
  }
}

const pendingOf = (ch: GatewayCharge, key: { payment_id: string; payment_method_id: string }): PendingCharge => ({
  payment_id: key.payment_id,
  payment_method_id: key.payment_method_id,
  charge_id: ch.id,
  customer_id: ch.customer_id,
  amount: ch.amount,
  currency: ch.currency,
  created_at: ch.created_at,
  ...(ch.status === 'processing' ? { processing: true } : {}),
});

/**
 * A pending charge that was `processing`, as the gateway has it now: `ended` when it succeeded
 * (settled as any succeeded charge), `declined` (nothing moved: nothing to settle), or `unknown`
 * (still processing, or not found): left for a later run.
 */
async function outcomeOfPending({ records }: Reconciler, ch: PendingCharge): Promise<'ended' | 'declined' | 'unknown'> {
  if (!ch.processing) return 'ended';
  const now = await records().getCharge(ch.charge_id);
  return now?.status === 'succeeded' ? 'ended' : now?.status === 'declined' ? 'declined' : 'unknown';
}

/** The body of the reconcileChargesPage activity (see createReconciliationActivities). */
async function reconcileChargesPage(r: Reconciler, req: ChargesPageRequest): Promise<ChargesPageResult> {
  const { graph, records, settleConcurrency } = r;
  const out: PageResult = { counts: emptyCounts(), repairs: [], flags: [] };
  const page = await records().listCharges({
    created_gte: req.from,
    starting_after: req.starting_after,
    limit: req.limit,
  });
  const to = Date.parse(req.to);
  const inWindow = page.data.filter((c) => Date.parse(c.created_at) < to);
  const last = page.data.at(-1);
  // The listing is in creation order: a charge past the window ends it.
  const done = !page.has_more || inWindow.length < page.data.length || last === undefined;
  const ours = inWindow.flatMap((ch) => {
    const key = parseRecoveryChargeKey(ch.idempotency_key);
    if (!key) out.counts.foreign++;
    return key ? [{ ch, key }] : [];
  });
  out.counts.charges += inWindow.length;
  // A charge still processing has no outcome yet: left for a later run, neither recorded nor flagged.
  for (const o of ours) if (o.ch.status === 'processing') await keepPendingCharge(graph, pendingOf(o.ch, o.key));
  const succeeded = ours.filter((o) => o.ch.status === 'succeeded').map((o) => pendingOf(o.ch, o.key));
  const recorded = await recordedPayments(graph, [...new Set(succeeded.map((c) => c.payment_id))]);
  // Each payment's charges one after another (a later charge of a payment repaired on this page
  // compares with that repair); different payments side by side, up to `settleConcurrency`
  // (each may ask Temporal about its recovery). Repairs and flags are listed in charge order.
  const parts = succeeded.map((): PageResult => ({ counts: emptyCounts(), repairs: [], flags: [] }));
  const byPayment = new Map<string, number[]>();
  for (const [i, ch] of succeeded.entries()) byPayment.set(ch.payment_id, [...(byPayment.get(ch.payment_id) ?? []), i]);
  await inLanes([...byPayment.values()], settleConcurrency, async (indexes) => {
    for (const i of indexes) {
      const ch = succeeded[i] as PendingCharge;
      const part = parts[i] as PageResult;
      const settled = await settle(r, part, ch, recorded.get(ch.payment_id));
      beat();
      if (settled === 'in_flight' || settled === 'matched') part.counts[settled]++;
      if (settled === 'in_flight') await keepPendingCharge(graph, ch);
      if (settled === 'repaired')
        recorded.set(ch.payment_id, {
          recovered: {
            customer_id: ch.customer_id,
            payment_method_id: ch.payment_method_id,
            charge_id: ch.charge_id,
            amount: ch.amount,
            currency: ch.currency,
          },
          failed: false,
        });
    }
  });
  for (const part of parts) {
    out.counts.matched += part.counts.matched;
    out.counts.in_flight += part.counts.in_flight;
    out.repairs.push(...part.repairs);
    out.flags.push(...part.flags);
  }
  await checkTokens(r, out, [...new Set(ours.map((o) => o.key.payment_method_id))]);
  return { ...out, next: done ? null : (last?.id ?? null) };
}

/** One page of the charges kept pending by earlier runs: settled now, or kept. */
async function reconcilePendingPage(reconciler: Reconciler, req: PendingPageRequest): Promise<PendingPageResult> {
  const { graph } = reconciler;
  const out: PageResult = { counts: emptyCounts(), repairs: [], flags: [] };
  const page = await pendingCharges(graph, req.after, req.limit);
  const recorded = await recordedPayments(
    graph,
    page.map((c) => c.payment_id),
  );
  for (const ch of page) {
    out.counts.pending++;
    const outcome = await outcomeOfPending(reconciler, ch);
    beat();
    if (outcome === 'unknown') continue;
    if (outcome === 'declined') {
      await settlePendingCharge(graph, ch.payment_id);
      continue;
    }
    const settled = await settle(reconciler, out, ch, recorded.get(ch.payment_id));
    beat();
    if (settled === 'in_flight') out.counts.in_flight++;
    else await settlePendingCharge(graph, ch.payment_id);
  }
  const last = page.at(-1);
  return { ...out, next: page.length < req.limit || !last ? null : last.payment_id };
}

/**
 * One page of the recoveries the charge ledger has still recovering (begun before the window's
 * end), each looked for in Temporal: one no workflow runs (terminated, lost in a restore, reserved
 * and never started) is flagged `stranded_recovery` — ops settle it with the gateway
 * (`npm run ops:settle-recoveries`). Nothing is repaired here: settling may end a recovery.
 */
async function reconcileStrandedPage(
  { graph, temporal, settleConcurrency }: Reconciler,
  req: StrandedPageRequest,
): Promise<StrandedPageResult> {
  const out: PageResult = { counts: emptyCounts(), repairs: [], flags: [] };
  const page = await recoveringRecoveries(graph, req);
  // Looked up in lanes, flagged in the page's order: the report reads the same whichever lane ends first.
  const stranded: (string | null)[] = page.map(() => null);
  await inLanes(page, settleConcurrency, async (r, i) => {
    out.counts.open_recoveries++;
    const wf = await workflowOfRecovery(temporal, r.payment_id);
    beat();
    if (!wf?.running) stranded[i] = strandedWhy(r, wf);
  });
  page.forEach((r, i) => {
    const why = stranded[i];
    if (why === null || why === undefined) return;
    flag(out, {
      kind: 'stranded_recovery',
      customer_id: r.customer_id,
      payment_id: r.payment_id,
      charge_id: '',
      detail: `the charge ledger has it recovering, and no workflow runs it: ${why}`,
    });
  });
  const last = page.at(-1);
  return { ...out, next: page.length < req.limit || !last ? null : last.payment_id };
}

export function createReconciliationActivities(deps: {
  graph: Graph;
  gatewayRecords?: GatewayRecords | undefined;
  temporal: Client;
  profileRules: ProfileRules;
  /** Charges settled at once on a page (default SETTLE_CONCURRENCY; 1: one after another). */
  settleConcurrency?: number | undefined;
}) {
  const { graph, temporal, profileRules } = deps;
  const settleConcurrency = deps.settleConcurrency ?? SETTLE_CONCURRENCY;
  const records = (): GatewayRecords => {
    if (deps.gatewayRecords) return deps.gatewayRecords;
    throw ApplicationFailure.create({
      type: 'GatewayRecordsUnavailable',
      message: "this worker has no client for the gateway's records",
      nonRetryable: true,
    });
  };
  const reconciler: Reconciler = { graph, temporal, profileRules, records, settleConcurrency };

  return {
    /** One page of the gateway's charges in the window, compared with the graph. */
    async reconcileChargesPage(req: ChargesPageRequest): Promise<ChargesPageResult> {
      return reconcileChargesPage(reconciler, req);
    },

    /** One page of the charges kept pending by earlier runs: settled now, or kept. */
    async reconcilePendingPage(req: PendingPageRequest): Promise<PendingPageResult> {
      return reconcilePendingPage(reconciler, req);
    },

    /**
     * One page of the recoveries the charge ledger has still recovering, each looked for in
     * Temporal: those no workflow runs are flagged `stranded_recovery` (`reconcileStrandedPage`).
     */
    async reconcileStrandedPage(req: StrandedPageRequest): Promise<StrandedPageResult> {
      return reconcileStrandedPage(reconciler, req);
    },

    /** One page of the recoveries the graph recorded in the window, each asked of the gateway. */
    async reconcileRecoveriesPage(req: RecoveriesPageRequest): Promise<RecoveriesPageResult> {
      const out: PageResult = { counts: emptyCounts(), repairs: [], flags: [] };
      const page = await recoveriesRecordedBetween(graph, req, req.after, req.limit);
      for (const r of page) {
        out.counts.recoveries++;
        const ch = await records().getCharge(r.charge_id);
        beat();
        if (ch?.status === 'succeeded') continue;
        flag(out, {
          kind: 'recovery_without_charge',
          customer_id: r.customer_id,
          payment_id: r.payment_id,
          charge_id: r.charge_id,
          detail: ch
            ? `the graph recorded the payment as recovered; the gateway has the charge as ${ch.status}`
            : 'the graph recorded the payment as recovered; the gateway has no such charge',
        });
      }
      const last = page.at(-1);
      return {
        ...out,
        next: page.length < req.limit || !last ? null : { occurred_at: last.occurred_at, id: last.event_id },
      };
    },
  };
}

export type ReconciliationActivities = ReturnType<typeof createReconciliationActivities>;
