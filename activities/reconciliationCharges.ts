/**
 * The gateway reconciliation's settling of one succeeded charge of a recovery
 * (activities/reconciliation.ts pages through them): compared with what the graph recorded,
 * recorded as its recovery would have when money moved and the graph does not know, or flagged
 * for ops.
 */
import { log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Graph } from '../graph/graph';
import type { ProfileRules } from '../graph/interactions';
import { retryOnSurvivor, survivorOf } from '../graph/mergedRecords';
import { recordedPayments, type PendingCharge, type RecordedPayment } from '../graph/reconciliation';
import { recordRecovery } from '../graph/recovery';
import type { Flag, PageResult, Repair } from '../temporal/reconciliation';
import { recoveryWorkflowId } from '../temporal/recovery';
import { personaCustomerId } from '../temporal/searchAttributes';
import { countRecoveredPayment } from './recovery';

/** What became of one charge: the last three settle it; `in_flight` leaves it to its recovery. */
export type Settled = 'matched' | 'repaired' | 'flagged' | 'in_flight';

/** What settling a charge needs: the graph, Temporal (asked about the recovery) and the profile rules. */
export interface ChargeSettling {
  graph: Graph;
  temporal: Client;
  profileRules: ProfileRules;
}

/**
 * The payment's recovery as Temporal has it: whether it still runs (then it records its own
 * charge) and whose it is (PersonaCustomerId, set by Persona when it started it); null when
 * Temporal has no such recovery (never started, or past the namespace's retention).
 */
async function recoveryOf(
  temporal: Client,
  paymentId: string,
): Promise<{ running: boolean; customer_id: string | null } | null> {
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
async function ownerOf(graph: Graph, ch: PendingCharge, recoveryCustomer: string | null): Promise<string | null> {
  if (recoveryCustomer === null) return null;
  if (ch.customer_id === recoveryCustomer) return recoveryCustomer;
  const survivor = await survivorOf(graph, ch.customer_id);
  return survivor?.merged_into && survivor.id === recoveryCustomer ? recoveryCustomer : null;
}

export function flag(out: PageResult, f: Flag): Settled {
  out.flags.push(f);
  log.warn('gateway reconciliation: flagged for ops', { ...f });
  return 'flagged';
}

export function repaired(out: PageResult, r: Repair): Settled {
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
export async function settle(
  { graph, temporal, profileRules }: ChargeSettling,
  out: PageResult,
  ch: PendingCharge,
  graphSays: RecordedPayment | undefined,
): Promise<Settled> {
  const compared = compare(out, ch, graphSays);
  if (compared) return compared;
  const recovery = await recoveryOf(temporal, ch.payment_id);
  if (recovery?.running) return 'in_flight';
  const base = { customer_id: ch.customer_id, payment_id: ch.payment_id, charge_id: ch.charge_id };
  // The key and the customer come from the gateway's record: written into the graph only when
  // Persona's own recovery of that payment, of that customer (or of a record merged into it since:
  // ownerOf), made it, and on the customer the graph has now. A charge no recovery of this
  // customer made (another system's key that looks like one, a forged one) is never recorded on
  // anyone: ops look at it.
  const owner = await ownerOf(graph, ch, recovery?.customer_id ?? null);
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
