import type { Driver, ManagedTransaction } from 'neo4j-driver';
import neo4j from 'neo4j-driver';
import { describe, expect, it } from 'vitest';
import { readFeedEntries } from './feed';
import type { Graph } from './graph';

/** A driver that records how each session was opened and which transaction function ran, and returns no rows. */
function recordingGraph() {
  const sessions: { accessMode: string | undefined; ran: 'read' | 'write' | null }[] = [];
  const tx = { run: () => Promise.resolve({ records: [] }) } as unknown as ManagedTransaction;
  const driver = {
    session: (config: { defaultAccessMode?: string }) => {
      const s: (typeof sessions)[number] = { accessMode: config.defaultAccessMode, ran: null };
      sessions.push(s);
      return {
        executeRead: <T>(work: (t: ManagedTransaction) => Promise<T>) => ((s.ran = 'read'), work(tx)),
        executeWrite: <T>(work: (t: ManagedTransaction) => Promise<T>) => ((s.ran = 'write'), work(tx)),
        close: () => Promise.resolve(),
      };
    },
  } as unknown as Driver;
  return { graph: { driver, database: 'neo4j' } as unknown as Graph, sessions };
}

describe('the change feed in a cluster', () => {
  it('is read with write routing (from the leader): a lagging follower cannot make a cursor skip', async () => {
    const { graph, sessions } = recordingGraph();
    await readFeedEntries(graph, { limit: 10, lagMs: 15_000 });
    expect(sessions).toEqual([{ accessMode: neo4j.session.WRITE, ran: 'write' }]);
  });
});
