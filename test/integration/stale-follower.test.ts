/**
 * Reads that a follower behind the leader answers are checked, not believed (issue 48). Neo4j
 * Community has no followers, so this harness makes one: two Neo4j servers of their own, the
 * second given a copy of the first's databases taken while both were stopped (a backup: the same
 * database, so it understands the leader's bookmarks), then the leader written on. Every read
 * session goes to the stale copy (`Graph.readDriver`, where a `neo4j://` driver would send it to a
 * follower); writes and leader reads go to the leader. The copy waits a second (Neo4j's least) for bookmarks
 * it cannot reach (a follower that does not catch up), then fails them.
 *
 * `writer` is the process that wrote (its sessions share a bookmark manager); `graph` is another
 * process reading the same cluster, which knows nothing of those writes but what it is given.
 */
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Driver } from 'neo4j-driver';
import { TokenNotMetError } from '../../api/consistency';
import { ReadCache } from '../../api/readCache';
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
import { carriedBookmarks, readsOnTheLeader, withCarriedBookmarks } from '../../graph/graph';
import { carriedBookmarksActivityInterceptor, leaderOnNotFoundActivityInterceptor } from '../../workers/logging';
import { bookmarksReached, bookmarksToCarry } from '../../graph/bookmarks';
import { MAX_CARRIED_BOOKMARKS, withBookmarks } from '../../temporal/bookmarks';
import { signBookmarks } from '../../temporal/bookmarkSeal';
import type { Headers } from '../../temporal/requestId';
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
let writer: Graph;
/** A customer the copy has, then suspended on the leader; and one made on the leader after the copy. */
let before: { id: string; card: string };
let after: string;

beforeAll(async () => {
  [leader, follower] = await Promise.all([privateNeo4j(), privateNeo4j({ bookmarkWaitMs: 1000 })]);
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
  // Both databases: the system one names the database (its id is in every bookmark).
  for (const part of ['databases', 'transactions'])
    for (const database of [config.NEO4J_DATABASE, 'system']) {
      const to = path.join(follower.home, 'data', part, database);
      rmSync(to, { recursive: true, force: true });
      cpSync(path.join(leader.home, 'data', part, database), to, { recursive: true });
    }
  await Promise.all([leader.start(), follower.start()]);
  leaderDriver = createDriver(leader.env);
  // A short retry budget: a transaction whose bookmarks the follower fails is not retried for 30 s.
  followerDriver = createDriver(follower.env, { deadlineMs: 3000 });
  writer = { ...graphFromConfig(leaderDriver, config), readDriver: followerDriver };
  graph = { ...writer, bookmarks: undefined };
  // Written on the leader only: the follower never has these.
  await writeTx(writer, (tx) =>
    setCustomerStatusTx(tx, before.id, 'suspended', 'CustomerSuspended', { reason: 'stale follower test' }),
  );
  after = (await createCustomer(writer, { segment: 'Subscriber' })).id;
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

describe('bookmarks: reads at or past the writes they were given', () => {
  it("waits for its process's own writes: a follower that cannot reach them is passed over", async () => {
    // Another process, given nothing, reads what the follower has.
    expect((await getCustomer(graph, before.id))?.status).toBe('active');
    // The process that suspended the customer never reads from before its own write.
    expect((await getCustomer(writer, before.id))?.status).toBe('suspended');
    // A cache fill (the api's hot read) is the exception: it would wait for the api's latest write
    // of any customer. A read that must reach a write carries its consistency token (above).
    expect((await readCustomerSnapshot(writer, before.id)).status).toBe('active');
    // Its writes go on after such reads; what it hands on are its writes' bookmarks, the newest last.
    const made = await createCustomer(writer, { segment: 'Subscriber' });
    const carried = await bookmarksToCarry(writer, MAX_CARRIED_BOOKMARKS);
    expect(carried?.bookmarks.length).toBeGreaterThan(0);
    const newest = carried?.bookmarks.at(-1) ?? '';
    // The newest names the write just made: the leader reaches it at once, the stale copy never.
    expect(await bookmarksReached({ ...graph, readDriver: leaderDriver }, [newest])).toBe(true);
    expect(await bookmarksReached(graph, [newest])).toBe(false);
    expect(made.id).toBeTruthy();
  });

  it("runs an activity inside its workflow's signed bookmarks, unless they are of another epoch", async () => {
    const warnings: string[] = [];
    const ctx = { log: { warn: (message: string) => warnings.push(message) } };
    const keys = loadConfig().payloadKeys;
    const intercept = (g: Graph) => carriedBookmarksActivityInterceptor(g, keys)(ctx as never).inbound;
    // What the api that wrote would put on the workflow's start (temporal/bookmarkSeal.ts).
    const carried = await bookmarksToCarry(writer, MAX_CARRIED_BOOKMARKS);
    if (!carried) throw new Error('the writer holds no bookmarks');
    const signed = [signBookmarks(keys, carried)];
    const ran: { status?: string; onLeader: boolean; carried: readonly string[] }[] = [];
    const run = (g: Graph, headers: Headers) =>
      intercept(g)?.execute?.({ args: [], headers }, async () => {
        const status = (await getCustomer(g, before.id))?.status;
        ran.push({ status, onLeader: readsOnTheLeader(), carried: carriedBookmarks() });
        return status;
      });
    // The follower cannot reach them: one wait, in a transaction the driver does not retry, then
    // every read of the activity on the leader, which has the write.
    expect(await run(graph, withBookmarks({}, signed))).toBe('suspended');
    expect(ran.at(-1)).toMatchObject({ onLeader: true, carried: [] });
    // Without them, another process reads what the follower has.
    expect(await run(graph, {})).toBe('active');
    expect(ran.at(-1)).toMatchObject({ onLeader: false, carried: [] });
    // A member that reaches them (here the leader, as a cluster's caught-up follower would): the
    // activity's sessions carry them.
    const caughtUp: Graph = { ...graph, readDriver: leaderDriver };
    expect(await run(caughtUp, withBookmarks({}, signed))).toBe('suspended');
    expect(ran.at(-1)).toMatchObject({ onLeader: false, carried: carried.bookmarks });
    // The same bookmarks without a signature that holds (made up by whoever can signal the
    // workflow, or signed by a key the ring does not hold): not waited for, and said so.
    const forged = [{ ...signed[0], mac: signBookmarks(keys, { ...carried, epoch: carried.epoch + 9 }).mac }];
    expect(await run(graph, withBookmarks({}, forged as typeof signed))).toBe('active');
    expect(ran.at(-1)).toMatchObject({ onLeader: false, carried: [] });
    expect(warnings).toEqual(['bookmarks whose signature does not hold: ignored']);
    // Taken before a restore (another epoch): not waited for, never a read held on a store that is
    // gone; one of an epoch the graph has not reached is no bookmark of Persona's, and is said so.
    const later = [signBookmarks(keys, { epoch: carried.epoch + 1, bookmarks: carried.bookmarks })];
    expect(await run(graph, withBookmarks({}, later))).toBe('active');
    expect(ran.at(-1)).toMatchObject({ onLeader: false, carried: [] });
    expect(warnings.at(-1)).toBe('bookmarks of an epoch the graph has not reached: ignored');
    // A read session given bookmarks no member reaches (a server alone that never had those
    // writes): it fails them, and the leader, never held on carried bookmarks, answers.
    const alone: Graph = { ...graph, driver: followerDriver, readDriver: undefined };
    const aloneRead = async () => (await getCustomer(alone, before.id))?.status;
    expect(await withCarriedBookmarks(carried.bookmarks, aloneRead)).toBe('active');
  });
});
