/**
 * The expiry scan's batch activity and its graph queries on the real Neo4j. Each test works in
 * expiry years of its own (long past, so no other data is due in them) and asserts only on its
 * own customers.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExpiryActivities } from '../../activities/expiry';
import { deliverNotifications } from '../../activities/notifications';
import type { Notification, NotificationSink } from '../../clients/notifications';
import { readExpiryCandidates } from '../../graph/expiry';
import { claimNotifications } from '../../graph/notifications';
import { getPaymentMethodsByCustomer } from '../../graph';
import { expiryLanes, type ExpiryCursor } from '../../temporal/expiry';
import { expiryEvents, holderOfCard, type CardHolder } from '../support/expiry';
import { openTestGraph, type TestGraph } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

/** A sink that records every delivered notification, optionally slowly or failing on purpose. */
function recordingSink(
  options: { delayMs?: number; failOn?: (n: Notification) => boolean } = {},
): NotificationSink & { delivered: Notification[] } {
  const delivered: Notification[] = [];
  return {
    delivered,
    async send(n) {
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      if (options.failOn?.(n)) throw new Error('the notification service is unavailable');
      delivered.push(n);
    },
  };
}

/** Runs a whole scan with the batch activity alone (no workflow): what the workflow loops over. */
async function runScan(activities: ReturnType<typeof createExpiryActivities>, asOf: string, batchSize: number) {
  let cursor: ExpiryCursor | null = null;
  let batches = 0;
  do {
    const r = await activities.scanExpiryBatch({
      as_of: asOf,
      cursor,
      id_from: '',
      id_to: null,
      batch_size: batchSize,
    });
    cursor = r.next_cursor;
    batches++;
  } while (cursor);
  return batches;
}

describe('expiry candidates', () => {
  it('pages every active card up to the window once, in (year, month, id) order, across years', async () => {
    const ours: CardHolder[] = [];
    for (const [y, m] of [
      [2004, 11],
      [2004, 12],
      [2005, 1],
      [2005, 2],
      [2004, 12],
      [2005, 1],
      [2005, 3],
    ] as const)
      ours.push(await holderOfCard(g, y, m));
    const seen: { id: string; key: string }[] = [];
    let pos: Awaited<ReturnType<typeof readExpiryCandidates>>['next'] = null;
    let pages = 0;
    do {
      const page = await readExpiryCandidates(g, pos, { year: 2005, month: 2 }, 2);
      expect(page.cards.length).toBeLessThanOrEqual(2);
      for (const c of page.cards)
        seen.push({
          id: c.payment_method_id,
          key: `${c.expiry_year}-${String(c.expiry_month).padStart(2, '0')}/${c.payment_method_id}`,
        });
      pos = page.next;
      pages++;
    } while (pos && pages < 10_000);
    const ids = seen.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(seen.map((s) => s.key)).toEqual([...seen.map((s) => s.key)].sort());
    // All of ours up to February 2005; March 2005 is past the window's last month.
    expect(ours.slice(0, 6).every((h) => ids.includes(h.cardId))).toBe(true);
    expect(ids).not.toContain(ours[6]?.cardId);

    // The scan's lanes split the same read between them: together, the same cards, none twice.
    const byLane: string[] = [];
    for (const lane of expiryLanes(4)) {
      let at: typeof pos = null;
      do {
        const page = await readExpiryCandidates(g, at, { year: 2005, month: 2 }, 3, { from: lane.from, to: lane.to });
        byLane.push(...page.cards.map((c) => c.payment_method_id));
        at = page.next;
      } while (at);
    }
    expect(byLane.sort()).toEqual([...ids].sort());
  });
});

describe('scanExpiryBatch', () => {
  it('lets two overlapping scans warn each card once per stage and expire each card once', async () => {
    const asOf = '2006-06-30';
    const soon = await Promise.all(Array.from({ length: 8 }, () => holderOfCard(g, 2006, 6))); // today: 7 days
    const later = await Promise.all(Array.from({ length: 8 }, () => holderOfCard(g, 2006, 7))); // 31 days: 60
    const past = await Promise.all(Array.from({ length: 4 }, () => holderOfCard(g, 2006, 5)));
    const pastNotDefault = await holderOfCard(g, 2005, 12, { isDefault: false });
    const unreachable = await holderOfCard(g, 2006, 6, { reachable: false });
    const sink = recordingSink({ delayMs: 3 });
    const a = createExpiryActivities({ graph: g, notifications: sink });
    const b = createExpiryActivities({ graph: g, notifications: sink });
    await Promise.all([runScan(a, asOf, 3), runScan(b, asOf, 5)]);

    const ourIds = new Set([...soon, ...later, unreachable].map((h) => h.customerId));
    const delivered = sink.delivered.filter((n) => ourIds.has(n.customer_id));
    expect(delivered).toHaveLength(16);
    expect(new Set(delivered.map((n) => n.key)).size).toBe(16);
    expect(delivered.every((n) => n.kind === 'card_expiring' && n.channel === 'email')).toBe(true);

    const events = await expiryEvents(g, [...soon, ...later, ...past, pastNotDefault, unreachable]);
    const warned = events.filter((e) => e.type === 'CustomerNotified');
    expect(warned).toHaveLength(17); // 16 sent, and the unreachable customer's recorded without a channel
    expect(warned.filter((e) => e.payload.stage_days === 7)).toHaveLength(9);
    expect(warned.filter((e) => e.payload.stage_days === 60)).toHaveLength(8);
    expect(warned.find((e) => e.customer_id === unreachable.customerId)?.payload).toMatchObject({
      channel: null,
      payment_method_id: unreachable.cardId,
    });
    const changed = events.filter((e) => e.type === 'PaymentMethodStatusChanged');
    expect(changed.map((e) => e.payload.payment_method_id).sort()).toEqual(
      [...past, pastNotDefault].map((h) => h.cardId).sort(),
    );
    expect(changed.every((e) => e.payload.from === 'active' && e.payload.to === 'expired')).toBe(true);
    const wallet = await getPaymentMethodsByCustomer(g, pastNotDefault.customerId);
    expect(wallet.map((pm) => [pm.id === pastNotDefault.cardId, pm.status])).toEqual(
      expect.arrayContaining([
        [true, 'expired'],
        [false, 'active'],
      ]),
    );

    // A third scan the same day: nothing new.
    const before = sink.delivered.length;
    await runScan(createExpiryActivities({ graph: g, notifications: sink }), asOf, 4);
    expect(sink.delivered.length).toBe(before);
    expect(await expiryEvents(g, [...soon, ...later, ...past, pastNotDefault, unreachable])).toHaveLength(
      events.length,
    );
  });
});

describe('a cancelled batch', () => {
  it('stops sending between two notifications, records what went out, and its retry sends only the rest', async () => {
    const asOf = '2007-06-30';
    const holders: CardHolder[] = [];
    for (let i = 0; i < 60; i++) holders.push(await holderOfCard(g, 2007, 6)); // due today: 7-day warnings
    const ours = new Set(holders.map((h) => h.customerId));
    const sink = recordingSink({ delayMs: 5 });
    const mine = () => sink.delivered.filter((n) => ours.has(n.customer_id));
    // The scan is cancelled once ten warnings are out.
    const env = new MockActivityEnvironment();
    let cancelled = false;
    const slow: NotificationSink = {
      async send(n) {
        await sink.send(n);
        if (mine().length >= 10 && !cancelled) {
          cancelled = true;
          env.cancel();
        }
      },
    };
    const batch = { as_of: asOf, cursor: null, id_from: '', id_to: null, batch_size: 500 };
    const activities = createExpiryActivities({ graph: g, notifications: slow });
    await expect(env.run((req: typeof batch) => activities.scanExpiryBatch(req), batch)).rejects.toThrow();
    const before = mine().length;
    expect(before).toBeGreaterThanOrEqual(10);
    expect(before).toBeLessThan(holders.length);
    // Every warning that went out is recorded (a CustomerNotified event each).
    const warned = (await expiryEvents(g, holders)).filter((e) => e.type === 'CustomerNotified');
    expect(warned).toHaveLength(before);

    // The batch's retry (the same activity, so the same claim owner) warns the others, nobody twice.
    const retry = createExpiryActivities({ graph: g, notifications: sink });
    await new MockActivityEnvironment().run((req: typeof batch) => retry.scanExpiryBatch(req), batch);
    expect(mine()).toHaveLength(holders.length);
    expect(new Set(mine().map((n) => n.key)).size).toBe(holders.length);

    // Out of the way of later scans in this graph (they would page through these cards too).
    await g.query("MATCH (p:PaymentMethod) WHERE p.id IN $ids SET p.status = 'inactive'", {
      ids: holders.map((h) => h.cardId),
    });
  });
});

describe('claimed notifications', () => {
  it('after a failed send, a retry by the same owner sends only what was not sent', async () => {
    const holders = await Promise.all(Array.from({ length: 5 }, () => holderOfCard(g, 2007, 1)));
    const requests = holders.map((h) => ({
      customer_id: h.customerId,
      kind: 'card_expiring',
      key: `test:${randomUUID()}`,
    }));
    const failing = recordingSink({ failOn: (n) => n.key === requests[2]?.key });
    const owner = `test-owner-${randomUUID()}`;
    await expect(
      deliverNotifications({ graph: g, notifications: failing }, requests, { owner, concurrency: 1 }),
    ).rejects.toThrow(/unavailable/);
    expect(failing.delivered.map((n) => n.key)).toEqual(requests.slice(0, 2).map((r) => r.key));

    const working = recordingSink();
    const results = await deliverNotifications({ graph: g, notifications: working }, requests, {
      owner,
      concurrency: 1,
    });
    expect(working.delivered.map((n) => n.key)).toEqual(requests.slice(2).map((r) => r.key));
    expect([...results.values()].map((r) => r.outcome)).toEqual(['duplicate', 'duplicate', 'sent', 'sent', 'sent']);
    const events = await expiryEvents(g, holders);
    expect(events.filter((e) => e.type === 'CustomerNotified')).toHaveLength(5);
  });

  it('leaves a claim with its owner until the lease ends, then lets another take it over', async () => {
    const holder = await holderOfCard(g, 2007, 2);
    const claim = [{ key: `test:${randomUUID()}`, customer_id: holder.customerId, kind: 'card_expiring' }];
    expect((await claimNotifications(g, claim, 'owner-a')).get(claim[0]!.key)).toMatchObject({
      mine: true,
      sent: false,
    });
    expect((await claimNotifications(g, claim, 'owner-b', 60_000)).get(claim[0]!.key)).toMatchObject({ mine: false });
    await new Promise((r) => setTimeout(r, 50));
    expect((await claimNotifications(g, claim, 'owner-b', 10)).get(claim[0]!.key)).toMatchObject({ mine: true });
    // The first owner, back after the lease, no longer holds it.
    expect((await claimNotifications(g, claim, 'owner-a', 60_000)).get(claim[0]!.key)).toMatchObject({ mine: false });
  });
});
