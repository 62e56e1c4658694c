/**
 * Fraud outcomes in the graph. Each outcome is applied in one transaction — every change with its
 * own event, plus a FraudOutcomeApplied event (idempotency key `fraud:<outcome id>`) listing each
 * change's old and new value — so a retry returns the first result and a false positive can put
 * back exactly what the outcome changed (graph/fraudReversal.ts, with the review's decision).
 */
import type { ManagedTransaction } from 'neo4j-driver';
import { lockCustomersTx, setCustomerStatusTx } from './customers';
import { survivorOfTx } from './mergedRecords';
import { earnDeviceTrustTx, INITIAL_TRUST_SCORE, setDeviceTrustTx } from './devices';
import { ConflictError, InvalidInputError, InvalidStateError, NotFoundError } from './errors';
import { appendEvent } from './events';
import { findFact } from './facts';
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
export async function lockCustomer(tx: ManagedTransaction, customerId: string): Promise<void> {
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
export async function earnedTrustHeldTx(
  tx: ManagedTransaction,
  customerId: string,
  deviceId: string,
): Promise<boolean> {
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
export async function deviceTrustHeldTx(tx: ManagedTransaction, deviceId: string): Promise<boolean> {
  const r = (
    await tx.run(
      `MATCH (d:Device {id: $id}) SET d.updated_at = datetime.transaction()
       RETURN coalesce(d.trust_held_by_ops, false) AS held`,
      { id: deviceId },
    )
  ).records[0];
  return r?.get('held') === true;
}

/** A change's value as it stands now, read under its entity's lock (the customer's for their trust on a device). */
export async function current(tx: ManagedTransaction, change: FraudChange, customerId: string): Promise<unknown> {
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

/** How the review of a suspending outcome ended (graph/fraudReversal.ts resolveFraudReview). */
export type ReviewDecision = 'reinstate' | 'confirm' | 'timed_out';

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
