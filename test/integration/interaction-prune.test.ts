/**
 * The prune of interaction claims on the real Neo4j: claims recorded before the cutoff go, in
 * batches, newer ones stay; a redelivered id whose claim was pruned records again (the contract
 * past the retention window); the activity resumes its count from a retry's heartbeat; an erased
 * customer's claims are left to the prune. The claims these tests prune are backdated to 2001, so
 * the cutoff (mid-2001) never reaches a claim anyone else records on this shared graph.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInteractionPruneActivities } from '../../activities/interactionPrune';
import { profileRules } from '../../config/env';
import { eraseCustomer } from '../../graph/erasure';
import { pruneInteractionClaims, recordInteractions, type Interaction } from '../../graph/interactions';
import { seedCustomer } from '../support/builders';
import { openTestGraph, type TestGraph } from '../support/graph';

let g: TestGraph;
const created: string[] = [];
const CUTOFF = new Date('2001-06-01T00:00:00Z');

beforeAll(() => {
  g = openTestGraph();
});

afterAll(async () => {
  await g.query(
    `MATCH (c:Customer) WHERE c.id IN $ids
     OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD|HAS_DIGITAL_IDENTIFIER]->(n)
     DETACH DELETE n, c`,
    { ids: created },
  );
  await g.query('MATCH (i:Interaction) WHERE i.customer_id IN $ids DELETE i', { ids: created });
  await g.query('MATCH (e:Event) WHERE e.customer_id IN $ids DETACH DELETE e', { ids: created });
  await g.close();
});

async function customer(): Promise<{ customerId: string; cardId: string }> {
  const c = await seedCustomer(g, { segment: 'New', ltvMinor: 0, emailTag: 'prune', cards: 1 });
  created.push(c.customerId);
  return { customerId: c.customerId, cardId: c.cardId };
}

function payment(who: { customerId: string; cardId: string }, amount: number, id = `pay-${randomUUID()}`) {
  return {
    id,
    type: 'payment',
    customer_id: who.customerId,
    occurred_at: new Date().toISOString(),
    payment_method_id: who.cardId,
    amount,
    currency: g.policy.reportingCurrency,
    outcome: 'succeeded',
  } satisfies Interaction;
}

const record = async (items: Interaction[]) =>
  (await recordInteractions(g, items, profileRules(g.config))).map((r) => r.result);

/** As if these claims had been recorded on the given day of 2001. */
async function backdate(customerId: string, senderIds: string[], day = '2001-01-01'): Promise<void> {
  await g.query('MATCH (i:Interaction) WHERE i.id IN $keys SET i.recorded_at = datetime($at)', {
    keys: senderIds.map((id) => `${customerId}:${id}`),
    at: `${day}T00:00:00Z`,
  });
}

async function claims(customerId: string): Promise<string[]> {
  const rows = await g.query<{ id: string }>(
    'MATCH (i:Interaction) WHERE i.customer_id = $customerId RETURN i.id AS id ORDER BY id',
    { customerId },
  );
  return rows.map((r) => r.id.slice(customerId.length + 1));
}

async function ltvMinor(customerId: string): Promise<number> {
  const [row] = await g.query<{ ltv: number }>('MATCH (c:Customer {id: $id}) RETURN c.ltv AS ltv', { id: customerId });
  return row?.ltv as number;
}

describe('pruneInteractionClaims', () => {
  it('deletes the claims older than the cutoff in batches, keeps the newer ones', async () => {
    const who = await customer();
    const [old1, old2, fresh] = [payment(who, 100), payment(who, 200), payment(who, 400)];
    expect(await record([old1, old2, fresh])).toEqual(['recorded', 'recorded', 'recorded']);
    await backdate(who.customerId, [old1.id, old2.id]);

    const progress: number[] = [];
    const deleted = await pruneInteractionClaims(g, {
      olderThan: CUTOFF,
      batchSize: 1,
      onBatch: (soFar) => progress.push(soFar),
    });
    expect(deleted).toBe(2);
    // One transaction per batch of one: two that deleted, and a last one that found nothing.
    expect(progress).toEqual([1, 2, 2]);
    expect(await claims(who.customerId)).toEqual([fresh.id]);
    // Pruning again changes nothing.
    expect(await pruneInteractionClaims(g, { olderThan: CUTOFF, batchSize: 10 })).toBe(0);
    expect(await claims(who.customerId)).toEqual([fresh.id]);
  });

  it('forgets a pruned id: redelivered after its retention, the item records again', async () => {
    const who = await customer();
    const [old, fresh] = [payment(who, 1000), payment(who, 10)];
    expect(await record([old, fresh])).toEqual(['recorded', 'recorded']);
    await backdate(who.customerId, [old.id]);
    expect(await record([old, fresh])).toEqual(['duplicate', 'duplicate']);
    expect(await ltvMinor(who.customerId)).toBe(1010);

    await pruneInteractionClaims(g, { olderThan: CUTOFF, batchSize: 100 });
    // The documented contract: past PERSONA_INTERACTION_ID_WINDOW_HOURS an id is unknown again,
    // so a redelivery that late counts again; one within the retention is still a duplicate.
    expect(await record([old, fresh])).toEqual(['recorded', 'duplicate']);
    expect(await ltvMinor(who.customerId)).toBe(2010);
    expect(await claims(who.customerId)).toEqual([old.id, fresh.id].sort());
  });

  it("leaves an erased customer's claims to the prune, and refuses its redeliveries meanwhile", async () => {
    const who = await customer();
    const item = payment(who, 500);
    expect(await record([item])).toEqual(['recorded']);
    await eraseCustomer(g, who.customerId);
    expect(await claims(who.customerId)).toEqual([item.id]);
    const [refused] = await recordInteractions(g, [item], profileRules(g.config));
    expect(refused).toMatchObject({ result: 'invalid', field: 'customer_id' });

    await backdate(who.customerId, [item.id]);
    await pruneInteractionClaims(g, { olderThan: CUTOFF, batchSize: 100 });
    expect(await claims(who.customerId)).toEqual([]);
    // With its claim gone, a redelivery is still refused: the customer is erased.
    const [again] = await recordInteractions(g, [item], profileRules(g.config));
    expect(again).toMatchObject({ result: 'invalid', field: 'customer_id' });
  });
});

describe('the pruneInteractionClaims activity', () => {
  it("heartbeats its count after each batch and, on a retry, goes on from the last attempt's count", async () => {
    const who = await customer();
    const items = [payment(who, 1), payment(who, 2), payment(who, 3)];
    await record(items);
    await backdate(
      who.customerId,
      items.map((i) => i.id),
    );
    // A second attempt: the first had deleted 5 claims (heartbeat) before its worker died.
    const env = new MockActivityEnvironment({ heartbeatDetails: { deleted: 5 }, attempt: 2 });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const activities = createInteractionPruneActivities({ graph: g });
    const cutoff = CUTOFF.toISOString();
    const req = { cutoff, batch_size: 2 };
    const result = await env.run((r: typeof req) => activities.pruneInteractionClaims(r), req);
    expect(result).toEqual({ deleted: 8, cutoff });
    expect(beats).toEqual([{ deleted: 7 }, { deleted: 8 }]);
    expect(await claims(who.customerId)).toEqual([]);
  });
});
