/**
 * Fraud outcomes in the graph. Each outcome is applied in one transaction — every change with its
 * own event, plus a FraudOutcomeApplied event (idempotency key `fraud:<outcome id>`) listing each
 * change's old and new value — so a retry returns the first result and a false positive can put
 * back exactly what the outcome changed.
 */
import type { ManagedTransaction } from 'neo4j-driver';
import { lockCustomersTx, setCustomerStatusTx } from './customers';
import { survivorOfTx } from './identityMerge';
import { earnDeviceTrustTx, INITIAL_TRUST_SCORE, setDeviceTrustTx } from './devices';
import { ConflictError, InvalidInputError, InvalidStateError, NotFoundError } from './errors';
import { appendEvent } from './events';
import { findFact, listFactsAboutTx, listFactsTx } from './facts';
import { readTx, writeTx, type Graph } from './graph';
import type { CustomerStatus, PaymentMethodStatus } from './model';
import { setPaymentMethodStatusTx } from './walletDefaults';

export const FRAUD_OUTCOMES = ['challenge_passed', 'confirmed_fraud', 'false_positive', 'account_takeover'] as const;
export type FraudOutcomeKind = (typeof FRAUD_OUTCOMES)[number];

export interface FraudOutcomeReport {
  outcome_id: string;
  customer_id: string;
  outcome: FraudOutcomeKind;
  device_id?: string | null;
  payment_method_id?: string | null;
}

/** One change an outcome made: what, and its value before and after. */
export type FraudChange =
  | { entity: 'payment_method'; id: string; field: 'status'; from: PaymentMethodStatus; to: PaymentMethodStatus }
  /** The device's own trust (it caps everyone on the device). */
  | { entity: 'device'; id: string; field: 'trust_score'; from: number; to: number }
  /** What this customer earned on the device (`id`: the device), their login edge's. */
  | { entity: 'customer_device'; id: string; field: 'trust_score'; from: number; to: number }
  | { entity: 'customer'; id: string; field: 'status'; from: CustomerStatus; to: CustomerStatus };

export interface AppliedFraudOutcome {
  outcome_id: string;
  outcome: FraudOutcomeKind;
  changes: FraudChange[];
  /** The customer is suspended by this outcome (and awaits review). */
  suspended: boolean;
}

export interface FraudReversal {
  /** The outcome put back, or null when the customer had none to put back (or it was not this caller's to). */
  reversed_outcome_id: string | null;
  restored: FraudChange[];
  /** Changes left alone because the value moved on since (someone else changed it). */
  skipped: FraudChange[];
  /**
   * Ops decided the latest outcome's review: only ops reverse it. Set when a false positive from
   * anyone else (an agent, Chimera over Kafka) came after that decision: nothing was changed.
   */
  refused?: { outcome_id: string; decision: 'reinstate' | 'confirm' };
}

/** Who reports a false positive: ops (who may reverse what ops decided), or an agent (Chimera, REST, gRPC, Kafka). */
export type FraudReporter = 'ops' | 'agent';

const CYPHER = {
  // A merge's tombstone (graph/identityMerge.ts) is followed to its survivor, which holds its methods and devices now.
  ownership: `
    MATCH (asked:Customer {id: $customerId})
    OPTIONAL MATCH (survivor:Customer {id: asked.merged_into}) WHERE asked.status = 'merged'
    WITH coalesce(survivor, asked) AS c
    OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    OPTIONAL MATCH (c)-[:LOGGED_IN_FROM]->(d:Device {id: $deviceId})
    RETURN c.id AS customerId, c.status AS status, p IS NOT NULL AS ownsMethod, d IS NOT NULL AS ownsDevice`,
  // Read under the entity's lock (the first SET takes it) before putting a value back.
  currentMethod: `MATCH (p:PaymentMethod {id: $id}) SET p.updated_at = datetime.transaction() RETURN p.status AS value`,
  currentDevice: `MATCH (d:Device {id: $id}) SET d.updated_at = datetime.transaction() RETURN d.trust_score AS value`,
  currentCustomer: `MATCH (c:Customer {id: $id}) SET c.updated_at = datetime.transaction() RETURN c.status AS value`,
} as const;

/**
 * Takes the customer's write lock, first thing in every fraud write (the lock order,
 * graph/graph.ts), so what it reads of the customer's outcomes no other writer can change.
 */
async function lockCustomer(tx: ManagedTransaction, customerId: string): Promise<void> {
  if (!(await lockCustomersTx(tx, [customerId])).has(customerId)) throw new NotFoundError('Customer', customerId);
}

/**
 * Checks a report against the graph: the customer exists, and the device and payment method, when
 * named, are the customer's; the fields each outcome needs are there. Throws InvalidInputError
 * naming the field (NotFoundError for an unknown customer); writes nothing. Answers the customer
 * the outcome is about: the one named, or — when that is the tombstone of a merge — its survivor
 * (checked in the same read), so that the outcome never lands on a tombstone.
 */
export async function checkFraudOutcome(g: Graph, r: FraudOutcomeReport): Promise<{ customer_id: string }> {
  if (r.outcome === 'challenge_passed' && !r.device_id)
    throw new InvalidInputError('device_id', 'required for challenge_passed: the device that passed the challenge');
  if (r.outcome === 'confirmed_fraud' && !r.payment_method_id)
    throw new InvalidInputError(
      'payment_method_id',
      'required for confirmed_fraud: the payment method used in the fraud',
    );
  const record = await readTx(
    g,
    async (tx) =>
      (
        await tx.run(CYPHER.ownership, {
          customerId: r.customer_id,
          paymentMethodId: r.payment_method_id ?? '',
          deviceId: r.device_id ?? '',
        })
      ).records[0],
  );
  if (!record) throw new NotFoundError('Customer', r.customer_id);
  const customerId = record.get('customerId') as string;
  // A tombstone has nothing left to protect: an outcome would only turn it back into `suspended`.
  if (record.get('status') === 'erased') throw new InvalidStateError(`customer ${customerId} is erased`);
  // A merge's tombstone whose survivor was merged in turn (chains are shortened at once): not guessed at.
  if (record.get('status') === 'merged')
    throw new InvalidStateError(`customer ${r.customer_id} is being merged: report the outcome again`);
  if (r.payment_method_id && !record.get('ownsMethod'))
    throw new InvalidInputError('payment_method_id', 'is not a payment method of this customer');
  if (r.device_id && !record.get('ownsDevice'))
    throw new InvalidInputError('device_id', 'is not a device this customer has logged in from');
  return { customer_id: customerId };
}

/**
 * Applies an outcome's changes in one transaction:
 *   challenge_passed  → the customer's trust on the device rises by `trustStep` (at most 1): theirs,
 *                       on their login edge, never another account's on the same fingerprint, and
 *                       never above what the device's own trust allows (refused to an agent when
 *                       ops confirmed an outcome that zeroed it);
 *   confirmed_fraud   → the method becomes `compromised`, the device's own trust 0 (for everyone on
 *                       it) and the customer's on it 0, the customer `suspended`;
 *   account_takeover  → the customer `suspended`, the device's own trust and theirs on it 0.
 * Once ops confirm a suspending outcome on review, what it did to the device's trust and to the
 * customer's is held: only ops raise either again.
 * Applying the same outcome again returns what the first application did.
 */
export async function applyFraudOutcome(
  g: Graph,
  r: FraudOutcomeReport,
  options: { trustStep: number; reportedBy?: FraudReporter },
): Promise<AppliedFraudOutcome> {
  if (r.outcome === 'false_positive')
    throw new InvalidInputError('outcome', 'a false positive is reversed, not applied');
  const key = `fraud:${r.outcome_id}`;
  return writeTx(g, async (tx) => {
    // A customer merged into another since the report: the outcome is the survivor's (its cards and
    // devices are there now). Never a suspension written over a tombstone.
    const customerId = (await survivorOfTx(tx, r.customer_id))?.id ?? r.customer_id;
    await lockCustomer(tx, customerId);
    const prior = await findFact(tx, key);
    if (prior) return prior.payload as unknown as AppliedFraudOutcome;
    const current = (await tx.run(CYPHER.currentCustomer, { id: customerId })).records[0];
    const status = current?.get('value') as string | undefined;
    if (status === 'erased') throw new InvalidStateError(`customer ${customerId} is erased`);
    // Merged between the read above and the lock: a retry follows it.
    if (status === 'merged') throw new ConflictError(`customer ${customerId} was merged meanwhile: retry`);
    const reason = `fraud outcome ${r.outcome_id}: ${r.outcome}`;
    const extra = { fraud_outcome_id: r.outcome_id };
    const changes: FraudChange[] = [];
    if (r.payment_method_id && r.outcome === 'confirmed_fraud') {
      const { from } = await setPaymentMethodStatusTx(tx, r.payment_method_id, 'compromised', { reason, extra });
      changes.push({ entity: 'payment_method', id: r.payment_method_id, field: 'status', from, to: 'compromised' });
    }
    if (r.device_id && r.outcome === 'challenge_passed') {
      // What ops confirmed on review (a suspending outcome that zeroed it) only ops raise again.
      if (options.reportedBy !== 'ops' && (await earnedTrustHeldTx(tx, customerId, r.device_id)))
        throw new InvalidStateError(
          `customer ${customerId}'s trust on device ${r.device_id} was zeroed by a fraud outcome ops confirmed ` +
            'on review: a passed challenge does not raise it; ops may',
        );
      const step = { delta: options.trustStep };
      const { from, to } = await earnDeviceTrustTx(tx, customerId, r.device_id, step, { reason, extra });
      changes.push({ entity: 'customer_device', id: r.device_id, field: 'trust_score', from, to });
    } else if (r.device_id) {
      // The device, for everyone on it; and what this customer earned there, so that lifting the
      // device's trust later (for the others) does not lift theirs.
      const device = await setDeviceTrustTx(tx, r.device_id, { score: 0 }, { reason, extra });
      changes.push({ entity: 'device', id: r.device_id, field: 'trust_score', ...device });
      const earned = await earnDeviceTrustTx(tx, customerId, r.device_id, { score: 0 }, { reason, extra });
      changes.push({ entity: 'customer_device', id: r.device_id, field: 'trust_score', ...earned });
    }
    const suspends = r.outcome === 'confirmed_fraud' || r.outcome === 'account_takeover';
    if (suspends) {
      const from = await setCustomerStatusTx(tx, customerId, 'suspended', 'CustomerSuspended', { reason, ...extra });
      changes.push({ entity: 'customer', id: customerId, field: 'status', from, to: 'suspended' });
    }
    const applied: AppliedFraudOutcome = { outcome_id: r.outcome_id, outcome: r.outcome, changes, suspended: suspends };
    await appendEvent(tx, 'FraudOutcomeApplied', customerId, { ...applied }, { idempotencyKey: key });
    return applied;
  });
}

/** Whether ops confirmed, on review, an outcome that zeroed what the customer earned on the device. */
async function earnedTrustHeldTx(tx: ManagedTransaction, customerId: string, deviceId: string): Promise<boolean> {
  const r = (
    await tx.run(
      `MATCH (c:Customer {id: $customerId})-[r:LOGGED_IN_FROM]->(d:Device) USING INDEX c:Customer(id)
       WHERE d.id = $deviceId RETURN coalesce(r.trust_held_by_ops, false) AS held`,
      { customerId, deviceId },
    )
  ).records[0];
  return r?.get('held') === true;
}

/** Whether ops decided about the device (their own change, a review they confirmed); read under its lock. */
async function deviceTrustHeldTx(tx: ManagedTransaction, deviceId: string): Promise<boolean> {
  const r = (
    await tx.run(
      `MATCH (d:Device {id: $id}) SET d.updated_at = datetime.transaction()
       RETURN coalesce(d.trust_held_by_ops, false) AS held`,
      { id: deviceId },
    )
  ).records[0];
  return r?.get('held') === true;
}

async function current(tx: ManagedTransaction, change: FraudChange, customerId: string): Promise<unknown> {
  if (change.entity === 'customer_device') {
    const r = (
      await tx.run(
        `MATCH (c:Customer {id: $customerId})-[r:LOGGED_IN_FROM]->(d:Device) USING INDEX c:Customer(id)
         WHERE d.id = $deviceId RETURN coalesce(r.trust_score, $initial) AS value`,
        { customerId, deviceId: change.id, initial: INITIAL_TRUST_SCORE },
      )
    ).records[0];
    return r?.get('value');
  }
  const cypher = {
    payment_method: CYPHER.currentMethod,
    device: CYPHER.currentDevice,
    customer: CYPHER.currentCustomer,
  }[change.entity];
  return (await tx.run(cypher, { id: change.id })).records[0]?.get('value');
}

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

export type ReviewDecision = 'reinstate' | 'confirm' | 'timed_out';

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

/**
 * A device-level trust signal (`PUT /devices/{id}/trust-score`, Chimera or ops): sets the device's
 * own trust, which caps every customer on it, with one device-level DeviceTrustScoreUpdated. Once
 * ops decided about the device — confirmed on review an outcome that changed it, or set it
 * themselves — an agent does not raise it (InvalidStateError, 409); lowering stays anyone's.
 * Setting the same score emits nothing.
 */
export async function setDeviceTrustScore(
  g: Graph,
  deviceId: string,
  score: number,
  options: { reason?: string | undefined; reportedBy: FraudReporter },
): Promise<{ device_id: string; trust_score: number; previous_trust_score: number }> {
  if (!(score >= 0 && score <= 1)) throw new InvalidInputError('trust_score', 'must be between 0 and 1');
  return writeTx(g, async (tx) => {
    // The device's lock first (updated_at), so the mark and the score are read as they stand.
    const now = (
      await tx.run(
        `MATCH (d:Device {id: $id}) SET d.updated_at = datetime.transaction()
         RETURN d.trust_score AS trust, coalesce(d.trust_held_by_ops, false) AS held`,
        { id: deviceId },
      )
    ).records[0];
    if (!now) throw new NotFoundError('Device', deviceId);
    if (options.reportedBy !== 'ops' && now.get('held') === true && score > (now.get('trust') as number))
      throw new InvalidStateError(
        `device ${deviceId}'s trust was decided by ops (a fraud outcome ops confirmed on review, or their own ` +
          'change): only ops raise it',
      );
    const { from } = await setDeviceTrustTx(
      tx,
      deviceId,
      { score },
      { reason: options.reason, byOps: options.reportedBy === 'ops' },
    );
    return { device_id: deviceId, trust_score: score, previous_trust_score: from };
  });
}
