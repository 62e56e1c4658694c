/**
 * The local Neo4j restarts any number of times, cleanly and fast, on data it wrote: every stop
 * is a clean shutdown (the launcher's shutdown hook ran, Neo4j checkpointed), so no start has
 * to recover the store — which on a million-customer graph took minutes. A private instance,
 * so the shared stack the other tests use keeps running.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriver } from '../../graph/driver';
import { privateNeo4j, type PrivateNeo4j } from '../support/privateServices';

const RECOVERY = /Recovery required|recovery is required|Recovery in '[a-z]+' mode completed/;

async function write(n: PrivateNeo4j, id: string): Promise<void> {
  const driver = createDriver(n.env, { maxConnectionPoolSize: 1 });
  try {
    await driver.executeQuery('CREATE (:RestartProbe {id: $id})', { id }, { database: n.env.NEO4J_DATABASE });
  } finally {
    await driver.close();
  }
}

async function readAll(n: PrivateNeo4j): Promise<string[]> {
  const driver = createDriver(n.env, { maxConnectionPoolSize: 1 });
  try {
    const { records } = await driver.executeQuery(
      'MATCH (p:RestartProbe) RETURN p.id AS id ORDER BY id',
      {},
      { database: n.env.NEO4J_DATABASE },
    );
    return records.map((r) => r.get('id') as string);
  } finally {
    await driver.close();
  }
}

/** What the launcher and Neo4j wrote since the given lengths of their outputs. */
function since(n: PrivateNeo4j, mark: { out: number; debug: number }): { out: string; debug: string } {
  return { out: n.output().slice(mark.out), debug: n.debugLog().slice(mark.debug) };
}

describe('the local Neo4j', () => {
  let neo4j: PrivateNeo4j;
  beforeAll(async () => {
    neo4j = await privateNeo4j();
  });
  afterAll(() => neo4j?.dispose());

  it('starts, stops and starts twice on data it wrote, stopping cleanly each time; a kill is recovered', async () => {
    const written: string[] = [];
    const timings: string[] = [];
    let mark = { out: 0, debug: 0 };

    await neo4j.start();
    for (let round = 1; round <= 3; round++) {
      const started = since(neo4j, mark);
      // Every start gets as far as "ready" (credentials set, the second time to the same password).
      expect(started.out).toMatch(/persona-neo4j: Neo4j \S+ ready on bolt:/);
      expect(started.out).not.toContain('did not shut down cleanly');
      expect(started.out).not.toMatch(/Exception|could not/);
      expect(started.debug).not.toMatch(RECOVERY);
      expect(await readAll(neo4j)).toEqual([...written].sort());

      const id = `${round}-${randomUUID()}`;
      await write(neo4j, id);
      written.push(id);

      mark = { out: neo4j.output().length, debug: neo4j.debugLog().length };
      const t = Date.now();
      // SIGTERM as `stack:down` sends it; a grace shorter than the stack's, to catch a slow stop.
      expect(await neo4j.stop(30_000)).toBe('stopped');
      timings.push(`stop ${round}: ${Date.now() - t} ms`);
      const stopped = since(neo4j, mark);
      expect(stopped.out).toMatch(/persona-neo4j: stopped cleanly in \d+ ms/);
      expect(stopped.debug).toContain('Checkpoint triggered by "Database shutdown"');

      if (round < 3) {
        mark = { out: neo4j.output().length, debug: neo4j.debugLog().length };
        const s = Date.now();
        await neo4j.start();
        timings.push(`start ${round + 1}: ${Date.now() - s} ms`);
      }
    }
    console.log(`local Neo4j restarts: ${timings.join(', ')}`);

    // A kill is the one way to an unclean stop: the next start says so, and Neo4j recovers.
    await neo4j.start();
    const id = `killed-${randomUUID()}`;
    await write(neo4j, id);
    neo4j.kill();
    mark = { out: neo4j.output().length, debug: neo4j.debugLog().length };
    await expect.poll(() => neo4j.running(), { timeout: 30_000 }).toBe(false);
    await neo4j.start();
    const restarted = since(neo4j, mark);
    expect(restarted.out).toContain('the previous run did not shut down cleanly');
    expect(restarted.debug).toMatch(RECOVERY);
    expect(await readAll(neo4j)).toEqual([...written, id].sort());
    expect(await neo4j.stop(30_000)).toBe('stopped');
  }, 420_000);
});
