/**
 * What a fraud outcome changed, put back or held (graph/fraud.ts applies it): a false positive
 * reverses the customer's latest suspending outcome, each value only if it is still what the
 * outcome set; a review's decision reinstates the customer, or confirms the outcome, after which
 * only ops raise the trust it lowered, and what an agent's false positive put back meanwhile is
 * set again.
 */
import type { ManagedTransaction } from 'neo4j-driver';
import { setCustomerStatusTx } from './customers';
import { survivorOfTx } from './mergedRecords';
import { earnDeviceTrustTx, setDeviceTrustTx } from './devices';
import { appendEvent } from './events';
import { findFact, listFactsAboutTx, listFactsTx } from './facts';
import {
  current,
  deviceTrustHeldTx,
  earnedTrustHeldTx,
  lockCustomer,
  type AppliedFraudOutcome,
  type FraudChange,
  type FraudReporter,
  type FraudReversal,
  type ReviewDecision,
} from './fraud';
import { writeTx, type Graph } from './graph';
import type { CustomerStatus } from './model';
import { setPaymentMethodStatusTx } from './walletDefaults';

/**
 * A false positive: puts back what the customer's latest confirmed_fraud or account_takeover
 * outcome (not reversed yet) changed — each value only if it is still what the outcome set —
 * with each change's event and a FraudOutcomeReversed event (idempotency key
 * `fraud:<false positive's outcome id>`). Reversing again returns the first result.
 */
export async function reverseLatestFraudOutcome(
  g: Graph,
  r: { outcome_id: string; customer_id: string; reported_by: FraudReporter },
): Promise<FraudReversal> {
  const key = `fraud:${r.outcome_id}`;
  return writeTx(g, async (tx) => {
    // The target is chosen under the customer's lock: two false positives at once reverse two
    // outcomes (or one, and nothing), never the same one twice, and an outcome applied meanwhile
    // is either seen here or applied after this reversal commits.
    await lockCustomer(tx, r.customer_id);
    const prior = await findFact(tx, key);
    if (prior) return prior.payload as unknown as FraudReversal;
    const applied = await listFactsTx(tx, r.customer_id, 'FraudOutcomeApplied', 1000);
    const reversed = await listFactsTx(tx, r.customer_id, 'FraudOutcomeReversed', 1000);
    const done = new Set(reversed.map((e) => e.payload.reversed_outcome_id));
    const target = applied
      .map((e) => e.payload as unknown as AppliedFraudOutcome)
      .find((a) => (a.outcome === 'confirmed_fraud' || a.outcome === 'account_takeover') && !done.has(a.outcome_id));
    // Ops decided that outcome's review: an agent's word does not undo it (recorded, nothing changed).
    const decided = target && r.reported_by !== 'ops' ? await opsDecisionTx(tx, target.outcome_id) : null;
    const result: FraudReversal =
      target && decided
        ? {
            reversed_outcome_id: null,
            restored: [],
            skipped: [],
            refused: { outcome_id: target.outcome_id, decision: decided },
          }
        : { reversed_outcome_id: target?.outcome_id ?? null, restored: [], skipped: [] };
    const reason = `false positive ${r.outcome_id}${target ? ` reverses ${target.outcome_id}` : ''}`;
    const extra = { fraud_outcome_id: r.outcome_id };
    for (const change of result.refused ? [] : (target?.changes ?? [])) {
      const byAgent = r.reported_by !== 'ops';
      if (await undoChangeTx(tx, change, { reason, extra }, 'CustomerReinstated', r.customer_id, byAgent))
        result.restored.push({ ...change, from: change.to, to: change.from } as FraudChange);
      else result.skipped.push(change);
    }
    await appendEvent(
      tx,
      'FraudOutcomeReversed',
      r.customer_id,
      { outcome_id: r.outcome_id, reported_by: r.reported_by, ...result },
      { idempotencyKey: key },
    );
    return result;
  });
}

/**
 * 'confirm' when ops confirmed the outcome's suspension on review; null otherwise (no decision
 * yet, a timeout, or a reinstate — which only gives the customer back, and which an agent's false
 * positive sends too: the method and the device's trust stay a false positive's to put back).
 */
async function opsDecisionTx(tx: ManagedTransaction, outcomeId: string): Promise<'confirm' | null> {
  const d = (await findFact(tx, `fraud-review:${outcomeId}`))?.payload.decision;
  return d === 'confirm' ? d : null;
}

/**
 * What an agent's reversal of `outcomeId` put back, set again (each value only if it is still what
 * the reversal set); the changes made. Nothing when no agent reversed it.
 */
async function reapplyAgentReversalTx(
  tx: ManagedTransaction,
  outcomeId: string,
  customerId: string,
): Promise<FraudChange[]> {
  // Every reversal naming the outcome, however many other events the customer has (not a page of them).
  const payloads = (await listFactsAboutTx(tx, customerId, 'FraudOutcomeReversed', outcomeId)).map(
    (f) => f.payload as Partial<FraudReversal> & { reported_by?: string },
  );
  const byAgent = payloads.find((p) => p.reversed_outcome_id === outcomeId && p.reported_by !== 'ops');
  const reapplied: FraudChange[] = [];
  const reason = `review of fraud outcome ${outcomeId}: ops confirmed it; the false positive reported after is undone`;
  const extra = { fraud_outcome_id: outcomeId };
  for (const change of byAgent?.restored ?? [])
    if (await undoChangeTx(tx, change, { reason, extra }, 'CustomerSuspended', customerId, false))
      reapplied.push({ ...change, from: change.to, to: change.from } as FraudChange);
  // An agent raised, while the review waited, a device trust this outcome had lowered (ops' own
  // change clears the outcome's mark, and stands): ops confirmed the outcome, so the device's own
  // trust is the outcome's again.
  const applied = (await findFact(tx, `fraud:${outcomeId}`))?.payload as Partial<AppliedFraudOutcome> | undefined;
  for (const change of applied?.changes ?? []) {
    // Ops confirmed what the outcome did to the device and to the customer's trust on it: from now
    // on only ops raise either (an agent's signal, challenge or false positive is refused).
    if (change.entity === 'customer_device') {
      await tx.run(
        `MATCH (c:Customer {id: $customerId})-[r:LOGGED_IN_FROM]->(d:Device) USING INDEX c:Customer(id)
         WHERE d.id = $deviceId SET r.trust_held_by_ops = true`,
        { customerId, deviceId: change.id },
      );
      // A challenge an agent reported while the review waited raised it: the outcome's value again
      // (the customer's lock is held, so nothing moves it meanwhile).
      const earned = (await current(tx, change, customerId)) as number | undefined;
      if (earned !== undefined && earned > change.to) {
        await earnDeviceTrustTx(tx, customerId, change.id, { score: change.to }, { reason, extra });
        reapplied.push({ ...change, from: earned, to: change.to });
      }
      continue;
    }
    if (change.entity !== 'device') continue;
    // The device's lock before it is read: an agent's signal commits wholly before or after this.
    const now = (
      await tx.run(
        `MATCH (d:Device {id: $id}) SET d.updated_at = datetime.transaction(), d.trust_held_by_ops = true
         RETURN d.trust_score AS trust, d.trust_set_by_outcome AS setBy`,
        { id: change.id },
      )
    ).records[0];
    const trust = now?.get('trust') as number | undefined;
    const setBy = now?.get('setBy') as string | null | undefined;
    if (trust === undefined || !setBy || trust <= change.to) continue;
    await setDeviceTrustTx(tx, change.id, { score: change.to }, { reason, extra });
    reapplied.push({ entity: 'device', id: change.id, field: 'trust_score', from: trust, to: change.to });
  }
  return reapplied;
}

/**
 * Sets a change's value back to its `from`, with the change's event, if the value is still the
 * change's `to` (someone else may have changed it since); whether it did.
 */
async function undoChangeTx(
  tx: ManagedTransaction,
  change: FraudChange,
  why: { reason: string; extra: { fraud_outcome_id: string } },
  customerEvent: 'CustomerReinstated' | 'CustomerSuspended',
  customerId: string,
  byAgent: boolean,
): Promise<boolean> {
  // Unchanged by the outcome (a customer suspended already, a device at 0 already), or changed since.
  if (change.from === change.to || (await current(tx, change, customerId)) !== change.to) return false;
  // A trust ops decided about is not raised by an agent's false positive.
  const raises = typeof change.from === 'number' && typeof change.to === 'number' && change.from > change.to;
  if (byAgent && raises && change.entity === 'device' && (await deviceTrustHeldTx(tx, change.id))) return false;
  if (byAgent && raises && change.entity === 'customer_device' && (await earnedTrustHeldTx(tx, customerId, change.id)))
    return false;
  if (change.entity === 'payment_method') await setPaymentMethodStatusTx(tx, change.id, change.from, why);
  if (change.entity === 'device') await setDeviceTrustTx(tx, change.id, { score: change.from }, why);
  if (change.entity === 'customer_device')
    await earnDeviceTrustTx(tx, customerId, change.id, { score: change.from }, why);
  if (change.entity === 'customer')
    await setCustomerStatusTx(tx, change.id, change.from, customerEvent, { reason: why.reason, ...why.extra });
  return true;
}

/**
 * Records how the review of a suspending outcome ended (FraudReviewResolved, once per outcome).
 * `reinstate` restores the customer's status from before the outcome, if the customer is still
 * suspended (CustomerReinstated); `confirm` and `timed_out` leave the customer suspended.
 */
export async function resolveFraudReview(
  g: Graph,
  r: { outcome_id: string; customer_id: string; decision: ReviewDecision; restore_to?: CustomerStatus },
): Promise<{ reinstated: boolean }> {
  const key = `fraud-review:${r.outcome_id}`;
  return writeTx(g, async (tx) => {
    // The customer's lock before the decision is read or made: a reversal or another outcome
    // on this customer commits wholly before or after it. A merged customer's is the survivor's.
    const customerId = (await survivorOfTx(tx, r.customer_id))?.id ?? r.customer_id;
    await lockCustomer(tx, customerId);
    const prior = await findFact(tx, key);
    if (prior) return { reinstated: prior.payload.reinstated === true };
    let reinstated = false;
    // Ops confirmed, but an agent's false positive reversed the outcome after ops decided (before
    // this record was made): ops' decision stands, what the agent put back is set again.
    const reapplied = r.decision === 'confirm' ? await reapplyAgentReversalTx(tx, r.outcome_id, customerId) : [];
    // The status from before the outcome was `suspended` (another suspension stands): nothing to reinstate.
    if (r.decision === 'reinstate' && r.restore_to !== 'suspended') {
      const status = await current(
        tx,
        { entity: 'customer', id: customerId, field: 'status', from: 'active', to: 'suspended' },
        customerId,
      );
      if (status === 'suspended') {
        await setCustomerStatusTx(tx, customerId, r.restore_to ?? 'active', 'CustomerReinstated', {
          reason: `review of fraud outcome ${r.outcome_id}: reinstated`,
          fraud_outcome_id: r.outcome_id,
        });
        reinstated = true;
      }
    }
    await appendEvent(
      tx,
      'FraudReviewResolved',
      customerId,
      { outcome_id: r.outcome_id, decision: r.decision, reinstated, ...(reapplied.length ? { reapplied } : {}) },
      { idempotencyKey: key },
    );
    return { reinstated };
  });
}
