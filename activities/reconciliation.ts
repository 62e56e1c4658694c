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
 * is still caught, however long after the window it ends.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { GatewayCharge, GatewayRecords } from '../clients/paymentGateway';
import { NotFoundError } from '../graph/errors';
import type { Graph } from '../graph/graph';
import type { ProfileRules } from '../graph/interactions';
import { retryOnSurvivor, survivorOf } from '../graph/identityMerge';
import { updatePaymentMethodStatus } from '../graph/paymentMethods';
import {
  activeMethodTokens,
  keepPendingCharge,
  pendingCharges,
  recordedPayments,
  recoveriesRecordedBetween,
  settlePendingCharge,
  type PendingCharge,
  type RecordedPayment,
} from '../graph/reconciliation';
import { recordRecovery } from '../graph/recovery';
import {
  emptyCounts,
  parseRecoveryChargeKey,
  type ChargesPageRequest,
  type ChargesPageResult,
  type Flag,
  type PageResult,
  type PendingPageRequest,
  type PendingPageResult,
  type RecoveriesPageRequest,
  type RecoveriesPageResult,
  type Repair,
} from '../temporal/reconciliation';
import { recoveryWorkflowId } from '../temporal/recovery';
import { personaCustomerId } from '../temporal/searchAttributes';
import { countRecoveredPayment } from './recovery';
import { inLanes } from '../runtime/lanes';

/** The status and reason a method whose token the issuer revoked gets. */
export const REVOKED_METHOD_STATUS = 'inactive';
export const REVOKED_REASON = 'gateway_token_revoked';

/** What became of one charge: the last three settle it; `in_flight` leaves it to its recovery. */
type Settled = 'matched' | 'repaired' | 'flagged' | 'in_flight';

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
  /** A sign of life between two calls: a dead worker's page is taken over within the heartbeat timeout. */
  const beat = () => activityContext()?.heartbeat();

  /**
   * The payment's recovery as Temporal has it: whether it still runs (then it records its own
   * charge) and whose it is (PersonaCustomerId, set by Persona when it started it); null when
   * Temporal has no such recovery (never started, or past the namespace's retention).
   */
  async function recoveryOf(paymentId: string): Promise<{ running: boolean; customer_id: string | null } | null> {
    try {
      const d = await temporal.workflow.getHandle(recoveryWorkflowId(paymentId)).describe();
      return {
        running: d.status.name === 'RUNNING',
        customer_id: d.typedSearchAttributes.get(personaCustomerId) ?? null,
      };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /**
   * The customer a recovery's charge is recorded on, or null when the charge is not the
   * recovery's customer's. The gateway's record names the customer the charge's first request was
   * sent for; the recovery's PersonaCustomerId names its customer now (the workflow moves it to the
   * survivor when the customer is merged). So a charge made before a merge names the merged record
   * (a tombstone: its methods moved to the survivor with the same ids) while the recovery names the
   * survivor; it is the recovery's all the same when the merged record's merges (followed through
   * a chain) lead to the recovery's customer. Any other customer, a live one or a tombstone merged
   * elsewhere, is not: a forged key is never recorded on anyone.
   */
  async function ownerOf(ch: PendingCharge, recoveryCustomer: string | null): Promise<string | null> {
    if (recoveryCustomer === null) return null;
    if (ch.customer_id === recoveryCustomer) return recoveryCustomer;
    const survivor = await survivorOf(graph, ch.customer_id);
    return survivor?.merged_into && survivor.id === recoveryCustomer ? recoveryCustomer : null;
  }

  function flag(out: PageResult, f: Flag): Settled {
    out.flags.push(f);
    log.warn('gateway reconciliation: flagged for ops', { ...f });
    return 'flagged';
  }

  function repaired(out: PageResult, r: Repair): Settled {
    out.repairs.push(r);
    log.info('gateway reconciliation: repaired', { ...r });
    return 'repaired';
  }

  /** A charge against what the graph recorded for its payment (read before). */
  function compare(out: PageResult, ch: PendingCharge, graphSays: RecordedPayment | undefined): Settled | null {
    const base = { customer_id: ch.customer_id, payment_id: ch.payment_id, charge_id: ch.charge_id };
    const recovered = graphSays?.recovered ?? null;
    if (recovered === null) return null;
    // The customer was erased since: their records are emptied, nothing is left to dispute.
    if (recovered === 'erased') return 'matched';
    if (recovered.charge_id !== ch.charge_id)
      return flag(out, {
        kind: 'charged_twice',
        ...base,
        detail:
          `the gateway also charged ${ch.charge_id} (${ch.amount} ${ch.currency}); ` +
          `the payment was recovered by ${recovered.charge_id}`,
      });
    if (recovered.amount !== ch.amount || recovered.currency !== ch.currency)
      return flag(out, {
        kind: 'amount_mismatch',
        ...base,
        detail:
          `the gateway charged ${ch.amount} ${ch.currency}; ` +
          `the graph recorded ${recovered.amount} ${recovered.currency}`,
      });
    return 'matched';
  }

  /**
   * One succeeded charge of a recovery. The order matters: the recovery is asked whether it still
   * runs before anything is written, and the write itself refuses, under the customer's lock, a
   * payment recorded as failed meanwhile, or a customer or method gone.
   */
  async function settle(out: PageResult, ch: PendingCharge, graphSays: RecordedPayment | undefined): Promise<Settled> {
    const compared = compare(out, ch, graphSays);
    if (compared) return compared;
    const recovery = await recoveryOf(ch.payment_id);
    if (recovery?.running) return 'in_flight';
    const base = { customer_id: ch.customer_id, payment_id: ch.payment_id, charge_id: ch.charge_id };
    // The key and the customer come from the gateway's record: written into the graph only when
    // Persona's own recovery of that payment, of that customer (or of a record merged into it since:
    // ownerOf), made it, and on the customer the graph has now. A charge no recovery of this
    // customer made (another system's key that looks like one, a forged one) is never recorded on
    // anyone: ops look at it.
    const owner = await ownerOf(ch, recovery?.customer_id ?? null);
    if (owner === null)
      return flag(out, {
        kind: 'charge_not_recorded',
        ...base,
        detail:
          `the gateway charged ${ch.amount} ${ch.currency} under a recovery's key; ` +
          (recovery
            ? `the recovery ${recoveryWorkflowId(ch.payment_id)} is another customer's`
            : `Temporal has no recovery ${recoveryWorkflowId(ch.payment_id)} (never started, or past its retention)`),
      });
    const charged = {
      payment_id: ch.payment_id,
      payment_method_id: ch.payment_method_id,
      charge_id: ch.charge_id,
      amount: ch.amount,
      currency: ch.currency,
    };
    // Money moved and the graph does not know (its recovery ended without recording it, or a
    // restored graph lost it): record it as the recovery would have. The recovery's customer may be
    // a tombstone now (merged after the recovery ended, or while this was read): the survivor's then.
    const { customerId, result: outcome } = await retryOnSurvivor(owner, (customer_id) =>
      recordRecovery(graph, { ...charged, customer_id }, { repair: true }),
    );
    const rec = { ...charged, customer_id: customerId };
    switch (outcome) {
      case 'recorded':
        await countRecoveredPayment(graph, profileRules, rec);
        return repaired(out, {
          kind: 'recovery_recorded',
          ...base,
          customer_id: rec.customer_id,
          payment_method_id: ch.payment_method_id,
        });
      case 'already_recorded': {
        // The recovery recorded it after all, just before it ended: compare with that.
        const now = (await recordedPayments(graph, [ch.payment_id])).get(ch.payment_id);
        return compare(out, ch, now) ?? 'matched';
      }
      case 'recorded_failed':
        return flag(out, {
          kind: 'charged_but_recorded_failed',
          ...base,
          detail: `the gateway charged ${ch.amount} ${ch.currency}; the graph recorded the recovery as failed`,
        });
      case 'customer_gone':
      case 'method_gone':
        return flag(out, {
          kind: 'charge_not_recorded',
          ...base,
          detail:
            `the gateway charged ${ch.amount} ${ch.currency}; the graph has ` +
            (outcome === 'customer_gone' ? 'the customer erased, or no such customer' : 'no such method'),
        });
    }
  }

  /** Methods the gateway charged that are still active here, whose token the issuer has revoked since. */
  async function checkTokens(out: PageResult, methodIds: string[]): Promise<void> {
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
  });

  return {
    /** One page of the gateway's charges in the window, compared with the graph. */
    async reconcileChargesPage(req: ChargesPageRequest): Promise<ChargesPageResult> {
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
      const succeeded = ours.filter((o) => o.ch.status === 'succeeded').map((o) => pendingOf(o.ch, o.key));
      const recorded = await recordedPayments(graph, [...new Set(succeeded.map((c) => c.payment_id))]);
      // Each payment's charges one after another (a later charge of a payment repaired on this page
      // compares with that repair); different payments side by side, up to `settleConcurrency`
      // (each may ask Temporal about its recovery). Repairs and flags are listed in charge order.
      const parts = succeeded.map((): PageResult => ({ counts: emptyCounts(), repairs: [], flags: [] }));
      const byPayment = new Map<string, number[]>();
      for (const [i, ch] of succeeded.entries())
        byPayment.set(ch.payment_id, [...(byPayment.get(ch.payment_id) ?? []), i]);
      await inLanes([...byPayment.values()], settleConcurrency, async (indexes) => {
        for (const i of indexes) {
          const ch = succeeded[i] as PendingCharge;
          const part = parts[i] as PageResult;
          const settled = await settle(part, ch, recorded.get(ch.payment_id));
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
      await checkTokens(out, [...new Set(ours.map((o) => o.key.payment_method_id))]);
      return { ...out, next: done ? null : (last?.id ?? null) };
    },

    /** One page of the charges kept pending by earlier runs: settled now, or kept. */
    async reconcilePendingPage(req: PendingPageRequest): Promise<PendingPageResult> {
      const out: PageResult = { counts: emptyCounts(), repairs: [], flags: [] };
      const page = await pendingCharges(graph, req.after, req.limit);
      const recorded = await recordedPayments(
        graph,
        page.map((c) => c.payment_id),
      );
      for (const ch of page) {
        out.counts.pending++;
        const settled = await settle(out, ch, recorded.get(ch.payment_id));
        beat();
        if (settled === 'in_flight') out.counts.in_flight++;
        else await settlePendingCharge(graph, ch.payment_id);
      }
      const last = page.at(-1);
      return { ...out, next: page.length < req.limit || !last ? null : last.payment_id };
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
