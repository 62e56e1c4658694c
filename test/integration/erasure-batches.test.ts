/**
 * Erasing a long history on the real Neo4j: the customer's events are emptied in batches of
 * their own transactions, an erasure stopped half-way goes on where it was, and the tombstone
 * and CustomerErased come last, continuing the customer's event sequence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCustomerEvents } from '../../graph';
import { eraseCustomer } from '../../graph/erasure';
import { seedCustomer } from '../support/builders';
import { openTestGraph, type TestGraph } from '../support/graph';

const HISTORY = 20_000;
let g: TestGraph;
const created: string[] = [];
beforeAll(() => {
  g = openTestGraph();
});
afterAll(async () => {
  for (;;) {
    const [row] = await g.query<{ n: number }>(
      `UNWIND $ids AS id
       MATCH (e:Event {customer_id: id}) WITH e LIMIT 5000 DETACH DELETE e RETURN count(*) AS n`,
      { ids: created },
    );
    if (!row?.n) break;
  }
  await g.query('UNWIND $ids AS id MATCH (c:Customer {id: id}) DETACH DELETE c', { ids: created });
  await g.close();
});

/**
 * A customer with `n` events seeded straight into the log (stamped in 2001, out of any live feed
 * reader's way), every other one with a cache hint (graph/events.ts NewEvent.cache) erasure removes.
 */
async function customerWithHistory(n: number): Promise<string> {
  const { customerId: id } = await seedCustomer(g, { emailTag: 'erase' });
  created.push(id);
  await g.query(
    `UNWIND range(1, $n) AS i
     CREATE (:Event {id: randomUUID(), type: 'CustomerProfileUpdated', customer_id: $id,
                     occurred_at: datetime('2001-01-01T00:00:00Z') + duration({milliseconds: i}), seq: 0,
                     payload: '{"changes":{"segment":{"from":"a","to":"b"}}}',
                     cache: CASE WHEN i % 2 = 0 THEN '{"device":{"fingerprint":"fp-erase"}}' END})`,
    { id, n },
  );
  return id;
}

async function unstripped(customerId: string): Promise<number> {
  const [row] = await g.query<{ n: number }>(
    `MATCH (e:Event {customer_id: $id})
     WHERE e.occurred_at IS NOT NULL AND (e.payload <> '{}' OR e.cache IS NOT NULL) AND e.type <> 'CustomerErased'
     RETURN count(e) AS n`,
    { id: customerId },
  );
  return row?.n ?? -1;
}

describe('erasing a long history', () => {
  it(`empties ${HISTORY.toLocaleString('en')} events in batches of their own, the tombstone last`, async () => {
    const id = await customerWithHistory(HISTORY);
    const batches: { batch: number; stripped: number; total: number }[] = [];
    const result = await eraseCustomer(g, id, { batchSize: 3000, onBatch: (p) => batches.push(p) });
    // The seeded history plus CustomerCreated and DigitalIdentifierAdded, 3,000 at a time.
    const own = HISTORY + 2;
    expect(batches.map((b) => b.stripped)).toEqual([...Array.from({ length: 6 }, () => 3000), own - 18_000]);
    expect(result).toMatchObject({ erased: true, deleted: { identifiers: 1, events_stripped: own } });
    expect(await unstripped(id)).toBe(0);
    const [latest] = await listCustomerEvents(g, id, { limit: 1 });
    // CustomerErased closes the history and takes the next number after the customer's events.
    expect(latest).toMatchObject({ type: 'CustomerErased', customer_seq: 3 });
    const [tombstone] = await g.query<{ c: Record<string, unknown> }>(
      'MATCH (c:Customer {id: $id}) RETURN properties(c) AS c',
      { id },
    );
    expect(tombstone?.c).toMatchObject({ status: 'erased', event_seq: 3 });
  }, 180_000);

  it('goes on where it was after an erasure stopped half-way, and changes nothing when asked again', async () => {
    const id = await customerWithHistory(5000);
    await expect(
      eraseCustomer(g, id, {
        batchSize: 1000,
        onBatch: (p) => {
          if (p.batch === 2) throw new Error('the worker died');
        },
      }),
    ).rejects.toThrow('the worker died');
    // Two batches committed; the customer is not erased yet.
    expect(await unstripped(id)).toBe(5002 - 2000);
    expect((await g.query<{ s: string }>('MATCH (c:Customer {id: $id}) RETURN c.status AS s', { id }))[0]?.s).toBe(
      'active',
    );
    const batches: number[] = [];
    const result = await eraseCustomer(g, id, { batchSize: 1000, onBatch: (p) => batches.push(p.stripped) });
    expect(batches).toEqual([1000, 1000, 1000, 2]);
    expect(result).toMatchObject({ erased: true, deleted: { events_stripped: 3002 } });
    expect(await unstripped(id)).toBe(0);
    expect(await eraseCustomer(g, id, { batchSize: 1000 })).toMatchObject({ erased: false });
  }, 120_000);
});
