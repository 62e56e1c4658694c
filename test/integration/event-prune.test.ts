/**
 * The bounded graph on the real Neo4j (graph/eventPrune.ts): events are pruned once every
 * consumer's checkpoint has passed them, a consumer past the cap holds nothing back and is named,
 * a parked event stays, a customer's history and export are the same after a prune, the feed
 * refuses a cursor from before it, and the facts read back from what happened (a fraud outcome and
 * its reversal, a merge and its undoing, a contest, an erasure) work as before once their events
 * are gone.
 *
 * Integration files run one after another on one database: the consumers of the files before this
 * one are gone, so their checkpoints are removed first, and this file's consumers are the only ones.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { contestHistoryEntry, listHistoryContests } from '../../graph/audit';
import { eraseCustomer, pendingFraudReviews } from '../../graph/erasure';
import { PRUNE_BATCHES, pruneEvents, pruneHorizon, prunedBefore, type PruneSettings } from '../../graph/eventPrune';
import { encodeCursor, readCustomerHistory, readFeed } from '../../graph/feed';
import { applyFraudOutcome } from '../../graph/fraud';
import { reverseLatestFraudOutcome } from '../../graph/fraudReversal';
import { recordInteractions } from '../../graph/interactions';
import { mergeCustomers } from '../../graph/identityMerge';
import { unmergeCustomers } from '../../graph/identityUnmerge';
import { ensureRelayCheckpoint, recordRelayProgress } from '../../graph/relay';
import { profileRules } from '../../config/env';
import { startHarness, type Harness } from '../support/api';
import { seedCustomer } from '../support/builders';
import { queryPlan } from '../support/graph';
import { until } from '../support/wait';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.graph.query('MATCH (r:RelayCheckpoint) DETACH DELETE r');
});
// Each test's consumers are its own.
const OURS = "r.id STARTS WITH 'prune-test-' OR r.id STARTS WITH 'kafka:prune-test-'";
beforeEach(() => h.graph.query(`MATCH (r:RelayCheckpoint) WHERE ${OURS} DETACH DELETE r`));
afterAll(async () => {
  await h?.graph.query(`MATCH (r:RelayCheckpoint) WHERE ${OURS} DETACH DELETE r`);
  await h?.close();
});

const HOUR_MS = 60 * 60 * 1000;
/** Nothing kept past what consumers have (safety 0), history a year: the transient events go first. */
const KEEP_HISTORY: PruneSettings = { safetyMs: 0, capMs: HOUR_MS, historyMs: 365 * 24 * HOUR_MS };

async function customer() {
  const c = await seedCustomer(h.graph, { segment: 'Regular', ltvMinor: 0, emailTag: 'prune', cards: 1 });
  return { id: c.customerId, cardId: c.cardId };
}

/** A succeeded payment of a Regular customer: it moves the LTV alone, so its event is transient. */
async function pay(who: { id: string; cardId: string }): Promise<string> {
  await recordInteractions(
    h.graph,
    [
      {
        id: `pay-${randomUUID()}`,
        type: 'payment',
        customer_id: who.id,
        occurred_at: new Date().toISOString(),
        payment_method_id: who.cardId,
        amount: '12.50',
        currency: h.graph.policy.reportingCurrency,
        outcome: 'succeeded',
      } as never,
    ],
    profileRules(h.graph.config),
  );
  const [last] = await h.graph.query<{ id: string }>(
    `MATCH (e:Event {customer_id: $id}) WHERE e.occurred_at IS NOT NULL AND e.type = 'CustomerProfileUpdated'
     RETURN e.id AS id ORDER BY e.occurred_at DESC LIMIT 1`,
    { id: who.id },
  );
  return last?.id as string;
}

/** The feed cursor right after an event (as a consumer that has it stores it). */
async function cursorAt(eventId: string): Promise<string> {
  const [e] = await h.graph.query<{ t: string; s: number }>(
    'MATCH (e:Event {id: $id}) RETURN toString(e.occurred_at) AS t, e.seq AS s',
    { id: eventId },
  );
  return encodeCursor({ t: e?.t as string, s: e?.s as number, id: eventId });
}

/** Waits until every committed event has its number (the harness's sequencer): the prune takes none without one. */
async function allNumbered(): Promise<void> {
  await until(async () => {
    const [row] = await h.graph.query<{ n: number }>('MATCH (e:Unsequenced) RETURN count(e) AS n');
    return row?.n === 0;
  });
}

async function exists(ids: string[]): Promise<string[]> {
  const rows = await h.graph.query<{ id: string }>('MATCH (e:Event) WHERE e.id IN $ids RETURN e.id AS id', { ids });
  return ids.filter((id) => rows.some((r) => r.id === id));
}

const checkpoint = (id: string, cursor: string) =>
  recordRelayProgress(h.graph, `prune-test-${id}`, { cursor, delivered: 1, parked: [], blocked: null });

describe('the event prune', () => {
  it('deletes the transient events every consumer has, keeps the rest, and the history is the same', async () => {
    const a = await customer();
    const t1 = await pay(a);
    const t2 = await pay(a);
    const t3 = await pay(a);
    const historyBefore = await readCustomerHistory(h.graph, a.id, { limit: 200 });
    const self = await h.token('self', a.id);
    const exportBefore = (await (
      await h.app.request(`/api/v1/customers/${a.id}/export`, {
        headers: { authorization: `Bearer ${self}` },
      })
    ).json()) as { events: unknown[] };
    // The relay has everything; the Kafka publisher is at t2: it holds t2 and t3 back.
    await checkpoint('relay', await cursorAt(t3));
    await checkpoint('kafka', await cursorAt(t2));

    const at = await pruneHorizon(h.graph, KEEP_HISTORY);
    expect(at.consumers.map((c) => [c.id, c.behind_cap])).toEqual([
      ['prune-test-kafka', false],
      ['prune-test-relay', false],
    ]);
    await allNumbered();
    const deleted = await pruneEvents(h.graph, at, { batchSize: 2 });
    expect(deleted.transient).toBeGreaterThanOrEqual(1);
    expect(deleted.history).toBe(0);
    expect(await exists([t1, t2, t3])).toEqual([t2, t3]);
    // Transient events were never the customer's history: it and the export are as they were.
    expect(await readCustomerHistory(h.graph, a.id, { limit: 200 })).toEqual(historyBefore);
    const exportAfter = (await (
      await h.app.request(`/api/v1/customers/${a.id}/export`, {
        headers: { authorization: `Bearer ${self}` },
      })
    ).json()) as { events: unknown[] };
    expect(exportAfter.events).toEqual(exportBefore.events);
    expect(exportAfter.events.length).toBeGreaterThan(0);
    expect(JSON.stringify(exportAfter.events)).not.toContain('CustomerProfileUpdated');

    // The feed: a cursor from before what was pruned is refused, naming `after`; one after it reads on.
    expect(Date.parse((await prunedBefore(h.graph)) ?? '')).toBe(Date.parse(at.horizon));
    const behind = encodeCursor({ t: new Date(Date.parse(at.horizon) - 60_000).toISOString(), s: 0, id: randomUUID() });
    await expect(readFeed(h.graph, { after: behind, limit: 10, lagMs: 0 })).rejects.toMatchObject({ field: 'after' });
    const page = await readFeed(h.graph, { after: await cursorAt(t2), limit: 10, lagMs: 0 });
    expect(page.data.map((e) => e.id)).toContain(t3);
    // A new reader starts where the graph holds the feed whole, and reads on from there.
    const fresh = await readFeed(h.graph, { limit: 2, lagMs: 0 });
    expect(Date.parse(fresh.data[0]?.occurred_at ?? '')).toBeGreaterThanOrEqual(Date.parse(at.horizon) - 1);
    await readFeed(h.graph, { after: fresh.next_cursor ?? undefined, limit: 2, lagMs: 0 });
  });

  it('lets a consumer past the cap hold nothing back, names it, and keeps a parked event', async () => {
    const a = await customer();
    const t1 = await pay(a);
    const parked = await pay(a);
    const t3 = await pay(a);
    // A consumer that stopped two hours ago (its cursor's time), another that has everything (and,
    // caught up, is never past the cap).
    await checkpoint('relay', await cursorAt(t3));
    await checkpoint('dead', encodeCursor({ t: new Date(Date.now() - 2 * HOUR_MS).toISOString(), s: 0, id: 'x' }));
    // The relay's subscriber refused one of them for good: it stays until ops retry it.
    await recordRelayProgress(h.graph, 'prune-test-relay', {
      cursor: await cursorAt(t3),
      delivered: 0,
      parked: [{ event_id: parked, error: '400 Bad Request' }],
      blocked: null,
    });
    // A cap of a millisecond: the events it has not had (t1 on) have waited longer.
    const at = await pruneHorizon(h.graph, { ...KEEP_HISTORY, capMs: 1 });
    expect(at.consumers.find((c) => c.id === 'prune-test-dead')?.behind_cap).toBe(true);
    expect(at.consumers.find((c) => c.id === 'prune-test-relay')).toMatchObject({
      behind_cap: false,
      holds_back: true,
    });
    await allNumbered();
    await pruneEvents(h.graph, at, { batchSize: 100 });
    expect(await exists([t1, parked, t3])).toEqual([parked, t3]);
    // Within the cap, the same consumer holds everything after its position back.
    const held = await pruneHorizon(h.graph, { ...KEEP_HISTORY, capMs: 3 * HOUR_MS });
    expect(Date.parse(held.horizon)).toBeLessThan(Date.now() - 2 * HOUR_MS + 60_000);
  });

  it('lets the log of record’s publisher hold back past the cap, and one that has not started hold all', async () => {
    const a = await customer();
    const t1 = await pay(a);
    await checkpoint('relay', await cursorAt(t1));
    // A Kafka publisher whose broker has been away two hours: paged on, and still holding back.
    const stuck = encodeCursor({ t: new Date(Date.now() - 2 * HOUR_MS).toISOString(), s: 0, id: 'x' });
    await recordRelayProgress(h.graph, 'kafka:prune-test-log', {
      cursor: stuck,
      delivered: 1,
      parked: [],
      blocked: null,
    });
    let at = await pruneHorizon(h.graph, { ...KEEP_HISTORY, capMs: 1 });
    expect(at.consumers.find((c) => c.id === 'kafka:prune-test-log')).toMatchObject({
      behind_cap: true,
      holds_back: true,
    });
    expect(Date.parse(at.horizon)).toBeLessThan(Date.now() - 2 * HOUR_MS + 60_000);
    // A consumer made but at the start of the feed (it has delivered nothing): nothing is pruned.
    await h.graph.query(`MATCH (r:RelayCheckpoint) WHERE ${OURS} DETACH DELETE r`);
    await ensureRelayCheckpoint(h.graph, 'prune-test-new');
    at = await pruneHorizon(h.graph, KEEP_HISTORY);
    expect(at.consumers.find((c) => c.id === 'prune-test-new')).toMatchObject({ position: null, holds_back: true });
    expect(at.horizon).toBe(new Date(0).toISOString());
    await allNumbered();
    await pruneEvents(h.graph, at, { batchSize: 100 });
    expect(await exists([t1])).toEqual([t1]);
  });

  it('keeps an event numbered after the log of record’s publisher, however old its stamp', async () => {
    const a = await customer();
    const t0 = await pay(a);
    const t1 = await pay(a);
    await allNumbered();
    const [n1] = await h.graph.query<{ n: number }>('MATCH (e:Event {id: $id}) RETURN e.log_seq AS n', { id: t1 });
    // The publisher has published through t1's number; t2 committed after, stamped (as a
    // transaction held open for hours would have stamped it) before t1.
    const t2 = await pay(a);
    await allNumbered();
    await h.graph.query('MATCH (e:Event {id: $id}) SET e.occurred_at = datetime.realtime() - duration({hours: 2})', {
      id: t2,
    });
    const [e1] = await h.graph.query<{ t: string; s: number }>(
      'MATCH (e:Event {id: $id}) RETURN toString(e.occurred_at) AS t, e.seq AS s',
      { id: t1 },
    );
    await recordRelayProgress(h.graph, 'kafka:prune-test-numbered', {
      cursor: encodeCursor({ t: e1?.t as string, s: e1?.s as number, id: t1, n: n1?.n }),
      delivered: 1,
      parked: [],
      blocked: null,
    });
    const at = await pruneHorizon(h.graph, { safetyMs: 0, capMs: HOUR_MS, historyMs: 0 });
    expect(at.numbered_through).toBe(n1?.n);
    await pruneEvents(h.graph, at, { batchSize: 100 });
    // t0 is before the publisher in time and number: pruned. t2 is before it in time only: kept.
    expect(await exists([t0, t1, t2])).toEqual([t1, t2]);
  });

  it('keeps the facts read back: outcomes, merges, contests, erasures work after a prune', async () => {
    const a = await customer();
    const b = await customer();
    const outcome = { outcome_id: randomUUID(), customer_id: a.id, outcome: 'account_takeover' as const };
    const applied = await applyFraudOutcome(h.graph, outcome, { trustStep: 0.1 });
    const mergeId = randomUUID();
    await mergeCustomers(h.graph, {
      merge_id: mergeId,
      survivor_id: b.id,
      merged_id: (await customer()).id,
      decided_by: 'ops',
      requested_by: 'ops@example.com',
      reason: 'the same person',
    });
    const [created] = (await readCustomerHistory(h.graph, b.id, { limit: 200 })).data.slice(-1);
    const contest = await contestHistoryEntry(h.graph, b.id, {
      event_id: created?.id as string,
      words: 'I never asked for this',
      request_id: randomUUID(),
    });
    const erased = await customer();
    await eraseCustomer(h.graph, erased.id);

    // No consumer: everything before now goes, history included; only the facts are left.
    const all = await pruneHorizon(h.graph, { safetyMs: 0, capMs: HOUR_MS, historyMs: 0 });
    await allNumbered();
    await pruneEvents(h.graph, all, { batchSize: 500 });
    const [left] = await h.graph.query<{ n: number }>(
      'MATCH (e:Event) WHERE e.customer_id IN $ids RETURN count(e) AS n',
      { ids: [a.id, b.id, erased.id] },
    );
    expect(left?.n).toBe(0);

    // The review the outcome awaits is still known (an erasure waits for it); the outcome applied
    // again answers what it did the first time; a false positive reverses it.
    expect(await pendingFraudReviews(h.graph, a.id)).toEqual([outcome.outcome_id]);
    expect(await applyFraudOutcome(h.graph, outcome, { trustStep: 0.1 })).toEqual(applied);
    const reversal = await reverseLatestFraudOutcome(h.graph, {
      outcome_id: randomUUID(),
      customer_id: a.id,
      reported_by: 'agent',
    });
    expect(reversal.reversed_outcome_id).toBe(outcome.outcome_id);
    // The merge is undone from its manifest; the contest is listed (its entry pruned).
    const merged = (
      await h.graph.query<{ id: string }>("MATCH (c:Customer {merged_into: $id, status: 'merged'}) RETURN c.id AS id", {
        id: b.id,
      })
    )[0]?.id as string;
    const undone = await unmergeCustomers(h.graph, {
      merge_id: mergeId,
      survivor_id: b.id,
      merged_id: merged,
      requested_by: 'ops@example.com',
      reason: 'not the same person after all',
    });
    expect(undone.outcome).toBe('unmerged');
    const contests = await listHistoryContests(h.graph, b.id, 10);
    expect(contests.map((c) => c.contest.id)).toEqual([contest.contest_id]);
    expect(contests[0]?.entry).toBeNull();
    // An erasure asked again answers from its fact: erased before, nothing more deleted.
    expect(await eraseCustomer(h.graph, erased.id)).toMatchObject({ erased: false });

    // The export holds what the graph keeps of the customer beyond the history: the outcome, whose
    // event was pruned; the reversal made since is in the history.
    const exported = (await (
      await h.app.request(`/api/v1/customers/${a.id}/export`, {
        headers: { authorization: `Bearer ${await h.token('self', a.id)}` },
      })
    ).json()) as { events: { type: string }[]; kept_beyond_history: { type: string }[] };
    expect(exported.kept_beyond_history.map((e) => e.type)).toEqual(['FraudOutcomeApplied']);
    expect(exported.events.map((e) => e.type)).toContain('FraudOutcomeReversed');
    expect(exported.events.map((e) => e.type)).not.toContain('FraudOutcomeApplied');

    // Erasing the record once merged: the survivor's facts about it (the merge's manifest) are emptied too.
    await eraseCustomer(h.graph, merged);
    const about = await h.graph.query<{ result: string; about: string | null }>(
      "MATCH (f:Fact {customer_id: $id}) WHERE f.type IN ['CustomersMerged', 'CustomersUnmerged'] " +
        'RETURN f.result AS result, f.about AS about',
      { id: b.id },
    );
    expect(about).toHaveLength(2);
    for (const f of about) expect(f).toEqual({ result: '{}', about: null });
  });

  it('finds facts by index seeks: a customer’s of a type, those about another, an erasure’s', async () => {
    const seeks = [
      await queryPlan(h.graph, 'MATCH (f:Fact {about: $about, type: $type}) WHERE f.at IS NOT NULL RETURN f', {
        about: 'x',
        type: 'PossibleMatchFound',
      }),
      await queryPlan(
        h.graph,
        'MATCH (f:Fact {customer_id: $id}) WHERE f.type IS NOT NULL AND f.at IS NOT NULL RETURN f',
        {
          id: 'x',
        },
      ),
    ];
    for (const p of seeks) {
      expect(p).toMatch(/NodeIndexSeek/);
      expect(p).not.toMatch(/NodeByLabelScan|AllNodesScan/);
    }
  });

  it('finds each batch by an index seek, oldest first, however large the log', async () => {
    const params = {
      horizon: new Date().toISOString(),
      cutoff: new Date().toISOString(),
      batch: 10,
      numberedThrough: 1_000,
    };
    const plan = (cypher: string) => queryPlan(h.graph, cypher, params);
    const transient = await plan(PRUNE_BATCHES.transient);
    expect(transient).toMatch(/NodeIndexSeek.*Event\(transient, occurred_at\)/);
    const history = await plan(PRUNE_BATCHES.history);
    expect(history).toMatch(/NodeIndexSeek.*Event\(occurred_at\)/);
    for (const p of [transient, history]) expect(p).not.toMatch(/NodeByLabelScan|AllNodesScan|Sort@/);
  });
});
