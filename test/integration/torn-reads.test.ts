/**
 * A cache miss is a plain read: it takes no lock, so it never waits for a writer that holds the
 * customer. Neo4j reads at read committed, and a transaction's changes reach the store one by one
 * while it is applied, so a single read that runs while a write on the same customer is being
 * applied can see part of it (about one read in 500 under this load, with the lock taken away and
 * nothing else). A snapshot is therefore read twice, the second read after the first's bookmarks,
 * and only two that agree are answered and kept (graph/context.ts `readCustomerSnapshot`): what
 * the read cache answers from memory must never be such a mix.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { EventSequencer } from '../../workers/eventSequencer';
import { readCacheFromConfig } from '../../api/deps';
import { ReadCache } from '../../api/readCache';
import { readCustomerSnapshot, type CustomerSnapshot } from '../../graph/context';
import { appendEvent } from '../../graph/events';
import { onCommit, writeTx } from '../../graph/graph';
import { createLogger } from '../../runtime/logger';
import { openTestGraph } from '../support/graph';

const graph = openTestGraph();
afterAll(() => graph.close());

const logger = createLogger('torn-reads', 'silent');

function cacheOver(): ReadCache {
  const cache = new ReadCache(
    graph,
    {
      enabled: true,
      maxEntries: 100,
      maxBytes: 1024 * 1024,
      ttlMs: 600_000,
      freshMs: 600_000,
      breakerFailures: 1000,
      breakerHalfOpenMs: 1000,
      staleMaxMs: 1000,
    },
    logger,
    10_000,
  );
  onCommit(graph, (events) => cache.apply(events, 'local'));
  // The commits of this process are the only writes: what the tail would bring, they bring first.
  cache.polled(Date.now());
  return cache;
}

/** Cards per customer: a write that changes them all takes long enough to apply that reads overlap it. */
const CARDS = 20;

async function newCustomer(): Promise<string> {
  const id = randomUUID();
  await graph.query(
    `CREATE (c:Customer {id: $id, status: 'active', segment: 'Torn', ltv: 0, event_seq: 0})
     WITH c UNWIND range(1, $cards) AS i
     CREATE (c)-[:HAS_PAYMENT_METHOD]->(:PaymentMethod {id: randomUUID(), status: 'active', type: 'card',
                                                      created_at: '2026-01-01T00:00:00Z'})`,
    { id, cards: CARDS },
  );
  return id;
}

const removeCustomer = (id: string) =>
  graph.query('MATCH (c:Customer {id: $id}) OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(p) DETACH DELETE c, p', {
    id,
  });

/** Whole: active with all its cards, or suspended with every card compromised. */
const torn = (s: CustomerSnapshot) => (s.status === 'active' ? s.methods.length !== CARDS : s.methods.length !== 0);

describe('a customer snapshot', () => {
  it('is read without waiting for a writer that holds the customer', async () => {
    const id = await newCustomer();
    const cache = cacheOver();
    const session = graph.driver.session({ database: graph.database });
    const holder = await session.beginTransaction();
    try {
      // The writer holds the customer's lock (and has changed it) and has not committed.
      await holder.run("MATCH (c:Customer {id: $id}) SET c.status = 'suspended', c.event_seq = 1", { id });
      // A read that waited for the lock would wait for the rollback below, which waits for it.
      expect((await readCustomerSnapshot(graph, id)).status).toBe('active');
      const read = await cache.read(id, 10_000);
      expect(read).toMatchObject({ from: 'neo4j', snapshot: { status: 'active', seq: 0 } });
    } finally {
      await holder.rollback();
      await session.close();
    }
    await removeCustomer(id);
  });

  // The writer is this process (its commits reach the cache as they return) or another one (a
  // second driver; its events reach the cache only through the tail, tens of milliseconds later).
  it.each([
    ['this process', 'local'],
    ['another process', 'tail'],
  ] as const)(
    'kept by the read cache is never half of a transaction of %s',
    async (_who, by) => {
      const id = await newCustomer();
      const { readCache: cache, invalidations } = readCacheFromConfig(graph.config, graph, logger);
      const other = by === 'tail' ? openTestGraph() : undefined;
      const writerGraph = other ?? graph;
      // The writer's numbers the log, as a worker does; the cache polls it (no Kafka here).
      const sequencer = new EventSequencer(writerGraph, { pollMs: 20, tickMs: 200, batch: 500 }, logger);
      sequencer.start();
      invalidations.start();
      let stop = false;
      let writes = 0;
      const writer = (async () => {
        while (!stop) {
          const suspend = writes % 2 === 0;
          await writeTx(writerGraph, async (tx) => {
            await tx.run(
              `MATCH (c:Customer {id: $id})-[:HAS_PAYMENT_METHOD]->(p)
             SET p.status = $pm WITH DISTINCT c SET c.status = $status`,
              { id, pm: suspend ? 'compromised' : 'active', status: suspend ? 'suspended' : 'active' },
            );
            await appendEvent(
              tx,
              suspend ? 'CustomerSuspended' : 'CustomerReinstated',
              id,
              suspend
                ? { from: 'active', to: 'suspended', reason: 'torn-reads test' }
                : { from: 'suspended', to: 'active', reason: 'torn-reads test' },
            );
          });
          writes++;
        }
      })();
      const seen = { memory: 0, neo4j: 0 };
      const tornAnswers = { memory: [] as string[], neo4j: [] as string[] };
      const readers = Array.from({ length: 4 }, async () => {
        while (!stop) {
          const read = await cache.read(id, 10_000);
          // A hit answers without I/O: pause, or the readers would starve the writer and the timers.
          if (read.from === 'memory') await new Promise((resolve) => setTimeout(resolve, 1));
          seen[read.from]++;
          if (torn(read.snapshot))
            tornAnswers[read.from].push(
              `seq ${read.snapshot.seq}: ${read.snapshot.status} with ${read.snapshot.methods.length} cards`,
            );
        }
      });
      // Enough reads of both kinds that a kept torn snapshot would have been answered.
      // (The tail's writes are read a poll late, so hits far outnumber fills there.)
      const fills = by === 'local' ? 5000 : 1000;
      while (seen.neo4j < fills || seen.memory < 2000) await new Promise((resolve) => setTimeout(resolve, 100));
      stop = true;
      await Promise.all([writer, ...readers]);
      await invalidations.stop();
      await sequencer.stop();
      await other?.close();
      console.log(
        `torn reads (${by}): ${writes} writes; ${seen.neo4j} reads of Neo4j (${tornAnswers.neo4j.length} torn), ` +
          `${seen.memory} answers from memory (${tornAnswers.memory.length} torn)`,
      );
      expect(writes).toBeGreaterThan(100);
      expect(tornAnswers.memory).toEqual([]);
      await removeCustomer(id);
    },
    300_000,
  );
});
