/**
 * The gateway reconciliation's activities (workflows/gatewayReconciliation.ts drives them a page
 * at a time). The gateway's records are the authority on money; the graph is the authority on
 * wallets. Every repair is idempotent (a recovery is recorded under its payment's idempotency
 * key, a status change to the status it already has writes nothing), so a page retried after a
 * worker died repairs nothing twice. Tokens are asked about and never logged.
 */
import { ApplicationFailure, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { GatewayCharge, GatewayRecords } from '../clients/paymentGateway';
import type { Graph } from '../graph/graph';
import type { ProfileRules } from '../graph/interactions';
import { updatePaymentMethodStatus } from '../graph/paymentMethods';
import {
  activeMethodTokens,
  chargeTargets,
  recordedPayments,
  recoveriesRecordedBetween,
} from '../graph/reconciliation';
import {
  emptyCounts,
  parseRecoveryChargeKey,
  type ChargesPageRequest,
  type ChargesPageResult,
  type Flag,
  type PageResult,
  type RecoveriesPageRequest,
  type RecoveriesPageResult,
  type Repair,
} from '../temporal/reconciliation';
import { recoveryWorkflowId } from '../temporal/recovery';
import { domain } from './domain';
import { createRecoveryActivities } from './recovery';

/** The status and reason a method whose token the issuer revoked gets. */
export const REVOKED_METHOD_STATUS = 'inactive';
export const REVOKED_REASON = 'gateway_token_revoked';

export function createReconciliationActivities(deps: {
  graph: Graph;
  gatewayRecords?: GatewayRecords | undefined;
  temporal: Client;
  trustThreshold: number;
  profileRules: ProfileRules;
}) {
  const { graph, temporal } = deps;
  const records = (): GatewayRecords => {
    if (deps.gatewayRecords) return deps.gatewayRecords;
    throw ApplicationFailure.create({
      type: 'GatewayRecordsUnavailable',
      message: "this worker has no client for the gateway's records",
      nonRetryable: true,
    });
  };
  // The same write a recovery makes when it charged: PaymentRecovered, the default, LTV.
  const recovery = createRecoveryActivities({
    ...deps,
    gateway: { charge: () => Promise.reject(new Error('the reconciliation never charges')) },
  });

  /** Whether the payment's recovery workflow still runs (it records its own charge). */
  async function recoveryRunning(paymentId: string): Promise<boolean> {
    try {
      const d = await temporal.workflow.getHandle(recoveryWorkflowId(paymentId)).describe();
      return d.status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  function flag(out: PageResult, f: Flag): void {
    out.flags.push(f);
    log.warn('gateway reconciliation: flagged for ops', { ...f });
  }

  function repaired(out: PageResult, r: Repair): void {
    out.repairs.push(r);
    log.info('gateway reconciliation: repaired', { ...r });
  }

  /** Methods the gateway charged that are still active here, whose token the issuer has revoked since. */
  async function checkTokens(out: PageResult, methodIds: string[]): Promise<void> {
    if (methodIds.length === 0) return;
    const active = await domain(() => activeMethodTokens(graph, methodIds));
    for (let i = 0; i < active.length; i += 100) {
      const slice = active.slice(i, i + 100);
      const statuses = await records().tokenStatuses(slice.map((m) => m.token));
      out.counts.methods_checked += slice.length;
      for (const [j, m] of slice.entries()) {
        if (statuses[j] !== 'revoked') continue;
        await domain(() =>
          updatePaymentMethodStatus(graph, m.payment_method_id, REVOKED_METHOD_STATUS, { reason: REVOKED_REASON }),
        );
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

  async function reconcileCharge(
    out: PageResult,
    ch: GatewayCharge,
    key: { payment_id: string; payment_method_id: string },
    recorded: Awaited<ReturnType<typeof recordedPayments>>,
    targets: Awaited<ReturnType<typeof chargeTargets>>,
  ): Promise<void> {
    const base = { customer_id: ch.customer_id, payment_id: key.payment_id, charge_id: ch.id };
    const graphSays = recorded.get(key.payment_id);
    const recovered = graphSays?.recovered ?? null;
    if (recovered) {
      if (recovered.charge_id !== ch.id) {
        flag(out, {
          kind: 'charged_twice',
          ...base,
          detail:
            `the gateway also charged ${ch.id} (${ch.amount} ${ch.currency}); ` +
            `the payment was recovered by ${recovered.charge_id}`,
        });
      } else if (recovered.amount !== ch.amount || recovered.currency !== ch.currency) {
        flag(out, {
          kind: 'amount_mismatch',
          ...base,
          detail:
            `the gateway charged ${ch.amount} ${ch.currency}; ` +
            `the graph recorded ${recovered.amount} ${recovered.currency}`,
        });
      } else out.counts.matched++;
      return;
    }
    if (await recoveryRunning(key.payment_id)) {
      out.counts.in_flight++;
      return;
    }
    if (graphSays?.failed) {
      flag(out, {
        kind: 'charged_but_recorded_failed',
        ...base,
        detail: `the gateway charged ${ch.amount} ${ch.currency}; the graph recorded the recovery as failed`,
      });
      return;
    }
    const target = targets.get(`${ch.customer_id}/${key.payment_method_id}`);
    const customer = target?.customer_status ?? null;
    if (customer === null || customer === 'erased' || target?.method_status === null) {
      flag(out, {
        kind: 'charge_not_recorded',
        ...base,
        detail:
          `the gateway charged ${ch.amount} ${ch.currency}; the graph has ` +
          (customer === null ? 'no such customer' : customer === 'erased' ? 'the customer erased' : 'no such method'),
      });
      return;
    }
    // Money moved and the graph does not know (its recovery ended without recording it, or a
    // restored graph lost it): record it as the recovery would have.
    const found = {
      customer_id: ch.customer_id,
      payment_method_id: key.payment_method_id,
      charge_id: ch.id,
      amount: ch.amount,
      currency: ch.currency,
    };
    await recovery.recordRecovery({ payment_id: key.payment_id, ...found });
    // A second charge of the same payment further on is then a double charge, not a second repair.
    recorded.set(key.payment_id, { recovered: found, failed: false });
    repaired(out, { kind: 'recovery_recorded', ...base, payment_method_id: key.payment_method_id });
  }

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
      const succeeded = ours.filter((o) => o.ch.status === 'succeeded');
      const recorded = await domain(() =>
        recordedPayments(graph, [...new Set(succeeded.map((o) => o.key.payment_id))]),
      );
      const targets = await domain(() =>
        chargeTargets(
          graph,
          succeeded.map((o) => ({ customer_id: o.ch.customer_id, payment_method_id: o.key.payment_method_id })),
        ),
      );
      for (const { ch, key } of succeeded) await reconcileCharge(out, ch, key, recorded, targets);
      await checkTokens(out, [...new Set(ours.map((o) => o.key.payment_method_id))]);
      return { ...out, next: done ? null : (last?.id ?? null) };
    },

    /** One page of the recoveries the graph recorded in the window, each asked of the gateway. */
    async reconcileRecoveriesPage(req: RecoveriesPageRequest): Promise<RecoveriesPageResult> {
      const out: PageResult = { counts: emptyCounts(), repairs: [], flags: [] };
      const page = await domain(() => recoveriesRecordedBetween(graph, req, req.after, req.limit));
      for (const r of page) {
        out.counts.recoveries++;
        const ch = await records().getCharge(r.charge_id);
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
