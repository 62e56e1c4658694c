/**
 * Reads that a follower behind the leader answers are checked, not believed (issue 48). Neo4j
 * Community has no followers, so this harness makes one: two Neo4j servers of their own, the
 * second given a copy of the first's database taken while both were stopped (a backup), then the
 * leader written on. Every read session goes to the stale copy (`Graph.readDriver`, where a
 * `neo4j://` driver would send it to a follower); writes and leader reads go to the leader.
 */
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Driver } from 'neo4j-driver';
import { ReadCache, TokenNotMetError } from '../../api/readCache';
import { formatCustomerToken, parseToken } from '../../api/consistency';
import { loadConfig } from '../../config/env';
import {
  addPaymentMethod,
  createCustomer,
  createDriver,
  getCustomer,
  getPaymentMethodsByCustomer,
  NotFoundError,
  readCustomerSnapshot,
  setCustomerStatusTx,
  writeTx,
  type Graph,
} from '../../graph';
import { readsOnTheLeader } from '../../graph/graph';
import { leaderOnNotFoundActivityInterceptor } from '../../workers/logging';
import { migrate } from '../../graph/schema';
import { graphFromConfig } from '../../runtime/graph';
import { createLogger } from '../../runtime/logger';
import { cardInput } from '../support/graph';
import { privateNeo4j, type PrivateNeo4j } from '../support/privateServices';

let leader: PrivateNeo4j;
let follower: PrivateNeo4j;
let leaderDriver: Driver;
let followerDriver: Driver;
let graph: Graph;
/** A customer the copy has, then suspended on the leader; and one made on the leader after the copy. */
let before: { id: string; card: string };
let after: string;

beforeAll(async () => {
  [leader, follower] = await Promise.all([privateNeo4j(), privateNeo4j()]);
  await Promise.all([leader.start(), follower.start()]);
  const config = { ...loadConfig(), ...leader.env };
  leaderDriver = createDriver(leader.env);
  await migrate(leaderDriver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  graph = graphFromConfig(leaderDriver, config);
  const id = randomUUID();
  await createCustomer(graph, { id, segment: 'Subscriber' });
  before = { id, card: (await addPaymentMethod(graph, id, cardInput())).id };
  // The backup: the leader's database, copied into the follower while both are stopped.
  await leaderDriver.close();
  await Promise.all([leader.stop(), follower.stop()]);
  for (const part of ['databases', 'transactions']) {
    const to = path.join(follower.home, 'data', part, config.NEO4J_DATABASE);
    rmSync(to, { recursive: true, force: true });
    cpSync(path.join(leader.home, 'data', part, config.NEO4J_DATABASE), to, { recursive: true });
  }
  await Promise.all([leader.start(), follower.start()]);
  leaderDriver = createDriver(leader.env);
  followerDriver = createDriver(follower.env);
  graph = { ...graphFromConfig(leaderDriver, config), readDriver: followerDriver };
  // Written on the leader only: the follower never has these.
  await writeTx(graph, (tx) =>
    setCustomerStatusTx(tx, before.id, 'suspended', 'CustomerSuspended', { reason: 'stale follower test' }),
  );
  after = (await createCustomer(graph, { segment: 'Subscriber' })).id;
}, 300_000);

afterAll(async () => {
  await leaderDriver?.close();
  await followerDriver?.close();
  await Promise.all([leader?.dispose(), follower?.dispose()]);
});

const onFollower = async (cypher: string, params: Record<string, unknown>) =>
  (await followerDriver.executeQuery(cypher, params)).records.map((r) => r.toObject());

describe('a follower behind the leader', () => {
  it('is behind: it has neither the suspension nor the customer made after the copy', async () => {
    expect(await onFollower('MATCH (c:Customer {id: $id}) RETURN c.status AS s', { id: before.id })).toEqual([
      { s: 'active' },
    ]);
    expect(await onFollower('MATCH (c:Customer {id: $id}) RETURN c.id AS id', { id: after })).toEqual([]);
  });

  it('answers "not found" only when the leader says so too', async () => {
    // A read session's "not found" (a customer's list) is asked again on the leader.
    expect(await getPaymentMethodsByCustomer(graph, after)).toEqual([]);
    // A cache fill's too.
    expect((await readCustomerSnapshot(graph, after)).customer_id).toBe(after);
    // One the leader has never seen is not found.
    await expect(getPaymentMethodsByCustomer(graph, randomUUID())).rejects.toBeInstanceOf(NotFoundError);
    await expect(readCustomerSnapshot(graph, randomUUID())).rejects.toBeInstanceOf(NotFoundError);
  });

  it('serves a read with a consistency token from the leader when the follower is behind it', async () => {
    const cache = new ReadCache(
      graph,
      {
        enabled: true,
        maxEntries: 100,
        maxBytes: 1 << 20,
        ttlMs: 60_000,
        freshMs: 60_000,
        breakerFailures: 5,
        breakerHalfOpenMs: 1000,
        staleMaxMs: 0,
      },
      createLogger('stale-follower-test', 'silent'),
      10_000,
    );
    // Without a token, the follower's answer is what a read gets: behind, and allowed to be.
    expect((await cache.read(before.id, 10_000)).snapshot.status).toBe('active');
    // The suspension's token: the follower's answer does not reach it, the leader's does.
    const [leaderSeq] = (
      await leaderDriver.executeQuery('MATCH (c:Customer {id: $id}) RETURN c.event_seq AS n', { id: before.id })
    ).records.map((r) => Number(r.get('n')));
    const token = parseToken(formatCustomerToken(before.id, leaderSeq as number));
    const read = await cache.read(before.id, 10_000, token);
    expect(read.snapshot.status).toBe('suspended');
    expect(read.from).toBe('neo4j');
    // A token past what even the leader has is refused, never answered with what is behind it.
    const ahead = parseToken(formatCustomerToken(before.id, (leaderSeq as number) + 5));
    await expect(cache.read(before.id, 10_000, ahead)).rejects.toBeInstanceOf(TokenNotMetError);
  });

  it('runs an activity that found nothing again with every read on the leader', async () => {
    const inbound = leaderOnNotFoundActivityInterceptor()({} as never).inbound;
    // An activity of a workflow the api just started: it loads the customer it was started for,
    // and "not found" is its answer when the read comes back empty.
    const runs: boolean[] = [];
    const activity = async () => {
      runs.push(readsOnTheLeader());
      const customer = await getCustomer(graph, after);
      if (!customer) throw new NotFoundError('Customer', after);
      return customer.id;
    };
    expect(await inbound?.execute?.({ args: [], headers: {} }, activity as never)).toBe(after);
    // Once on the follower (nothing there), once with every read on the leader.
    expect(runs).toEqual([false, true]);
    // The leader's own "not found" goes back to the workflow.
    const missing = async () => {
      if (!(await getCustomer(graph, 'never-made'))) throw new NotFoundError('Customer', 'never-made');
    };
    await expect(inbound?.execute?.({ args: [], headers: {} }, missing as never)).rejects.toBeInstanceOf(NotFoundError);
  });
});
