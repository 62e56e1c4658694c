/**
 * A batch's payments and LTV feedback applied to its customers' profiles (graph/interactions.ts):
 * LTV, segment, the methods' first and last use, the Oracle's prediction. Each customer is locked
 * already; what each statement read before and after its writes goes to `ProfileChanges`
 * (graph/profileChanges.ts), which decides the CustomerProfileUpdated events.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { toPlain } from './convert';
import { ltvMinorFromGraph, predictedLtvMinorFromGraph } from './customers';
import { latestFeedbackOf, methodUsesOf, paymentTotalsOf } from './interactionRows';
import type { Interaction, InteractionOf, ProfileRules } from './interactionModel';
import type { ProfileChanges } from './profileChanges';

const CYPHER = {
  // LTV, segment, and the methods' first and last use (succeeded payments only): one row per customer.
  profile: `
    UNWIND $rows AS row
    MATCH (c:Customer {id: row.customerId})
    WITH c, row, c.ltv AS ltvBefore, c.segment AS segmentBefore
    SET c.ltv = coalesce(c.ltv, 0) + row.ltvDelta,
        c.succeeded_payments = coalesce(c.succeeded_payments, 0) + row.succeeded,
        c.updated_at = datetime.transaction()
    WITH c, row, ltvBefore, segmentBefore
    SET c.segment = CASE WHEN c.segment = 'New' AND c.succeeded_payments >= $subscriberAfter
                         THEN 'Subscriber' ELSE c.segment END
    WITH c, row, ltvBefore, segmentBefore
    // The methods whose last_used moved, with its value after the SET (the event says where to).
    CALL (c, row) {
      UNWIND row.uses AS u
      MATCH (c)-[r:HAS_PAYMENT_METHOD]->(:PaymentMethod {id: u.paymentMethodId})
      WITH u, r, r.last_used AS lastBefore
      SET r.last_used = CASE WHEN r.last_used IS NULL OR r.last_used < datetime(u.last)
                             THEN datetime(u.last) ELSE r.last_used END,
          r.first_used = CASE WHEN r.first_used IS NULL OR r.first_used > datetime(u.first)
                              THEN datetime(u.first) ELSE r.first_used END
      RETURN collect(CASE WHEN lastBefore IS NULL OR lastBefore <> r.last_used
                          THEN {paymentMethodId: u.paymentMethodId, lastUsed: r.last_used} END) AS used
    }
    RETURN c.id AS id, ltvBefore, c.ltv AS ltvAfter, segmentBefore, c.segment AS segmentAfter,
           c.succeeded_payments AS succeededPayments, c.predicted_ltv AS predicted, used`,
  // The latest prediction by occurred_at wins, whatever order the feedback arrives in.
  feedback: `
    UNWIND $rows AS f
    MATCH (c:Customer {id: f.customerId})
    WITH c, f, c.predicted_ltv AS before
    FOREACH (_ IN CASE WHEN c.predicted_ltv_at IS NULL OR c.predicted_ltv_at <= datetime(f.at) THEN [1] ELSE [] END |
      SET c.predicted_ltv = f.value, c.predicted_ltv_at = datetime(f.at))
    RETURN c.id AS id, before, c.predicted_ltv AS after, c.ltv AS ltv, c.segment AS segment`,
} as const;

/**
 * LTV, the succeeded-payment count and the methods' use, from the batch's payments: one row per
 * customer, one statement.
 */
export async function applyPayments(
  tx: ManagedTransaction,
  payments: InteractionOf<'payment'>[],
  rules: ProfileRules,
  currency: string,
  profile: ProfileChanges,
): Promise<void> {
  const usesOf = methodUsesOf(payments);
  const profileRows = paymentTotalsOf(payments);
  if (profileRows.length === 0) return;
  const res = await tx.run(CYPHER.profile, {
    rows: profileRows.map((r) => ({
      customerId: r.customerId,
      ltvDelta: neo4j.int(r.ltvDelta),
      succeeded: neo4j.int(r.succeeded),
      uses: usesOf.get(r.customerId) ?? [],
    })),
    subscriberAfter: neo4j.int(rules.subscriberAfterPayments),
  });
  const byCustomer = new Map(profileRows.map((r) => [r.customerId, r]));
  for (const r of res.records) {
    const id = r.get('id') as string;
    const row = byCustomer.get(id);
    if (!row) continue;
    profile.notePayments(
      id,
      {
        succeeded: row.succeeded,
        refunded: row.refunded,
        ltvFrom: ltvMinorFromGraph(r.get('ltvBefore'), currency),
        ltvTo: ltvMinorFromGraph(r.get('ltvAfter'), currency),
        segmentFrom: r.get('segmentBefore') as string,
        segmentTo: r.get('segmentAfter') as string,
        succeededPayments: String(r.get('succeededPayments')),
        predicted: predictedLtvMinorFromGraph(r.get('predicted'), currency),
        used: toPlain(r.get('used')) as unknown as { paymentMethodId: string; lastUsed: string }[],
      },
      currency,
    );
  }
}

/** The Oracle's prediction, the latest per customer: its own field, never added to the measured LTV. */
export async function applyLtvFeedback(
  tx: ManagedTransaction,
  recorded: Interaction[],
  currency: string,
  profile: ProfileChanges,
): Promise<void> {
  const feedbackRows = latestFeedbackOf(recorded, currency).map((f) => ({ ...f, value: neo4j.int(f.value) }));
  if (feedbackRows.length === 0) return;
  for (const r of (await tx.run(CYPHER.feedback, { rows: feedbackRows })).records)
    profile.noteFeedback(
      r.get('id') as string,
      {
        segment: r.get('segment') as string,
        ltv: ltvMinorFromGraph(r.get('ltv'), currency),
        predictedFrom: predictedLtvMinorFromGraph(r.get('before'), currency),
        predictedTo: predictedLtvMinorFromGraph(r.get('after'), currency),
      },
      currency,
    );
}
