/**
 * Neo4j reads at read committed: a query running while a transaction is applied can see part of
 * it. A customer snapshot (what the read cache serves the agents) must never be such a mix: here
 * one writer flips a customer between "active with its card" and "suspended with the card
 * compromised", in one transaction each, as fast as it can, while readers take snapshots. Every
 * snapshot is one state or the other. (A single read without the lock gave about one torn
 * snapshot in 500 under this load; two reads in a row agreeing still let one through on a busy
 * CI machine; the snapshot is now read under the customer's lock.)
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { readCustomerSnapshot } from '../../graph/context';
import { openTestGraph } from '../support/graph';

const graph = openTestGraph();
afterAll(() => graph.close());

describe('a customer snapshot under concurrent writes', () => {
  it('is never half of a transaction', async () => {
    const id = randomUUID();
    await graph.query(
      `CREATE (c:Customer {id: $id, status: 'active', segment: 'Torn', ltv: 0, event_seq: 0})
         -[:HAS_PAYMENT_METHOD]->(:PaymentMethod {id: $pm, status: 'active', type: 'card'})`,
      { id, pm: randomUUID() },
    );
    let stop = false;
    let writes = 0;
    const writer = (async () => {
      while (!stop) {
        const [pm, status] = writes % 2 === 0 ? ['compromised', 'suspended'] : ['active', 'active'];
        await graph.query(
          `MATCH (c:Customer {id: $id})-[:HAS_PAYMENT_METHOD]->(p)
           SET p.status = $pm WITH c SET c.status = $status, c.event_seq = c.event_seq + 1`,
          { id, pm, status },
        );
        writes++;
      }
    })();
    const torn: string[] = [];
    let reads = 0;
    const readers = Array.from({ length: 3 }, async () => {
      while (!stop) {
        const snap = await readCustomerSnapshot(graph, id);
        reads++;
        if ((snap.status === 'active') !== (snap.methods.length === 1))
          torn.push(`seq ${snap.seq}: ${snap.status} with ${snap.methods.length} active methods`);
      }
    });
    // Enough reads that a single-read snapshot would have shown torn ones.
    while (reads < 3000) await new Promise((resolve) => setTimeout(resolve, 100));
    stop = true;
    await Promise.all([writer, ...readers]);
    expect(writes).toBeGreaterThan(100);
    expect(torn).toEqual([]);
    await graph.query('MATCH (c:Customer {id: $id})-[:HAS_PAYMENT_METHOD]->(p) DETACH DELETE c, p', { id });
  }, 120_000);
});
