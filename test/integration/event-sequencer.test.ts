/**
 * The event log's numbering (graph/sequencer.ts) on the real Neo4j, against an adversary: three
 * sequencers on three drivers (three workers) number while writers commit, some of them after
 * holding their transaction open well past the others'. Every committed event gets exactly one
 * number, no number is given twice or skipped, and each customer's events are numbered in the
 * order they were written.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { appendEvent } from '../../graph/events';
import { writeTx } from '../../graph/graph';
import { readSequenced } from '../../graph/sequencer';
import { createLogger } from '../../runtime/logger';
import { EventSequencer } from '../../workers/eventSequencer';
import { openTestGraph, type TestGraph } from '../support/graph';
import { until } from '../support/wait';

const logger = createLogger('event-sequencer-test', process.env.TEST_API_LOG ?? 'silent');
let graphs: TestGraph[];
const SUSPENDED = { from: 'active', to: 'suspended', reason: 'sequencer test' };

beforeAll(() => {
  graphs = [openTestGraph(), openTestGraph(), openTestGraph()];
});

afterAll(async () => {
  await Promise.all(graphs.map((g) => g.close()));
});

/** The numbers given to `ids`' events, by customer, in customer_seq order. */
async function numbersOf(g: TestGraph, ids: string[]) {
  return g.query<{ customer: string; seqs: number[]; numbers: (number | null)[] }>(
    `MATCH (e:Event) WHERE e.customer_id IN $ids
     WITH e ORDER BY e.customer_seq
     RETURN e.customer_id AS customer, collect(e.customer_seq) AS seqs, collect(e.log_seq) AS numbers`,
    { ids },
  );
}

describe('the event sequencer', () => {
  it('numbers every committed event once, densely, in each customer’s order, three sequencers at once', async () => {
    const [g0, g1, g2] = graphs as [TestGraph, TestGraph, TestGraph];
    const start = (await readSequenced(g0, 1, 0, 1)).state.through;
    const sequencers = graphs.map((g) => new EventSequencer(g, { pollMs: 5, tickMs: 200, batch: 7 }, logger));
    for (const s of sequencers) s.start();
    const customers = Array.from({ length: 6 }, () => `seq-test-${randomUUID()}`);
    try {
      const writes: Promise<unknown>[] = [];
      for (const [i, id] of customers.entries()) {
        const g = graphs[i % 3] as TestGraph;
        await writeTx(g, (tx) => tx.run('CREATE (:Customer {id: $id, status: "active"})', { id }));
        writes.push(
          (async () => {
            for (let n = 0; n < 25; n++) await writeTx(g, (tx) => appendEvent(tx, 'CustomerSuspended', id, SUSPENDED));
          })(),
        );
      }
      // A writer that holds its transaction open while hundreds of later events are numbered.
      const held = g2.driver.session({ database: g2.database, defaultAccessMode: neo4j.session.WRITE });
      const tx = held.beginTransaction({ timeout: 60_000 });
      const late = `seq-test-${randomUUID()}`;
      await tx.run('CREATE (:Customer {id: $id, status: "active"})', { id: late });
      await appendEvent(tx as unknown as ManagedTransaction, 'CustomerSuspended', late, SUSPENDED);
      await Promise.all(writes);
      // Later-stamped events are numbered while it is open.
      await until(async () => (await readSequenced(g0, 1, 0, 1)).state.through > start);
      const numberedBefore = (await readSequenced(g0, 1, 0, 1)).state.through;
      await tx.commit();
      await held.close();
      customers.push(late);

      await until(async () => {
        const [row] = await g1.query<{ n: number }>('MATCH (e:Unsequenced) RETURN count(e) AS n');
        return row?.n === 0;
      });
      const rows = await numbersOf(g0, customers);
      expect(rows).toHaveLength(customers.length);
      const all: number[] = [];
      for (const r of rows) {
        expect(r.numbers.every((n) => typeof n === 'number')).toBe(true);
        // One customer's events are numbered in the order they were written.
        expect([...(r.numbers as number[])].sort((a, b) => a - b)).toEqual(r.numbers);
        all.push(...(r.numbers as number[]));
      }
      expect(all).toHaveLength(6 * 25 + 1);
      expect(new Set(all).size).toBe(all.length);
      // Dense: every number after the start is one event's (ours or anyone's), none skipped.
      const through = Math.max(...all);
      const read = await readSequenced(g0, start + 1, through, 100_000);
      expect(read.events.map((e) => e.log_seq)).toEqual(
        Array.from({ length: through - start }, (_, i) => start + 1 + i),
      );
      // The late one, stamped before them all, committed last: numbered after every number given
      // before its commit (and in the same round as the others still waiting then).
      const lateNumber = rows.find((r) => r.customer === late)?.numbers[0] as number;
      expect(lateNumber).toBeGreaterThan(numberedBefore);
      // One holds the lease and numbers; stopped (a worker gone), another takes over once it lapses.
      const holder = sequencers.reduce((a, b) => (b.stats.numbered > a.stats.numbered ? b : a));
      await holder.stop();
      const others = sequencers.filter((x) => x !== holder);
      const numberedByOthers = others.reduce((n, x) => n + x.stats.numbered, 0);
      const afterStop = `seq-test-${randomUUID()}`;
      customers.push(afterStop);
      await writeTx(g0, (tx) => tx.run('CREATE (:Customer {id: $id, status: "active"})', { id: afterStop }));
      await writeTx(g0, (tx) => appendEvent(tx, 'CustomerSuspended', afterStop, SUSPENDED));
      await until(async () => others.reduce((n, x) => n + x.stats.numbered, 0) > numberedByOthers);
      console.log(
        `sequencers: ${sequencers
          .map((s) => `${s.stats.rounds} rounds, ${s.stats.numbered} numbered, ${s.stats.failures} failed`)
          .join('; ')}`,
      );
    } finally {
      await Promise.all(sequencers.map((s) => s.stop()));
      await g0.query('MATCH (c:Customer) WHERE c.id IN $ids DETACH DELETE c', { ids: customers });
    }
  });

  it('numbers a later event of a transaction only with or after that transaction’s earlier one', async () => {
    const [g0] = graphs as [TestGraph];
    const id = `seq-test-${randomUUID()}`;
    const other = `seq-test-${randomUUID()}`;
    const payload = JSON.stringify(SUSPENDED);
    // One transaction's two events are stamped one after the other: the first a moment before.
    const stampedAt = Date.now();
    const event = (customer: string, seq: number, customerSeq: number, txnPrev: boolean) =>
      g0.query(
        `CREATE (:Event:Unsequenced {id: $eid, type: 'CustomerSuspended', customer_id: $customer, seq: $seq,
           customer_seq: $customerSeq, txn_prev: $txnPrev, occurred_at: datetime({epochMillis: $at}), epoch: 0,
           payload: $payload})`,
        {
          eid: randomUUID(),
          customer,
          seq,
          customerSeq,
          txnPrev: txnPrev ? true : null,
          payload,
          at: neo4j.int(stampedAt + seq),
        },
      );
    const numbers = async (customer: string) =>
      (
        await g0.query<{ n: number | null }>(
          'MATCH (e:Event {customer_id: $customer}) RETURN e.log_seq AS n ORDER BY e.customer_seq',
          { customer },
        )
      ).map((r) => r.n);
    const sequencer = new EventSequencer(g0, { pollMs: 5, tickMs: 200, batch: 50 }, logger);
    try {
      // A transaction half visible: its second event of a customer is, its first is not yet.
      await event(id, 1, 2, true);
      await event(other, 0, 1, false);
      sequencer.start();
      await until(async () => (await numbers(other))[0] !== null);
      expect(await numbers(id)).toEqual([null]);
      // The first becomes visible: both are numbered, in the customer's order.
      await event(id, 0, 1, false);
      await until(async () => (await numbers(id)).every((n) => n !== null));
      const [first, second] = (await numbers(id)) as [number, number];
      expect(first).toBeLessThan(second);
    } finally {
      await sequencer.stop();
      await g0.query('MATCH (e:Event) WHERE e.customer_id IN $ids DETACH DELETE e', { ids: [id, other] });
    }
  });
});
