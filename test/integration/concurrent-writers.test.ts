/**
 * Concurrent writers on one customer, on the real Neo4j and the real api: every event of a
 * customer is numbered in its own gap-free sequence under the customer's lock; fraud reversals
 * choose their target under that lock; a default payment method that stops being usable gives
 * way in the same transaction.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addPaymentMethod,
  linkDevice,
  updatePaymentMethodStatus,
  getPaymentMethodsByCustomer,
  listCustomerEvents,
  updateCustomer,
  type PersonaEvent,
} from '../../graph';
import { appendEvents } from '../../graph/events';
import { expireCards } from '../../graph/expiry';
import { claimNotifications, recordNotificationsSent } from '../../graph/notifications';
import { applyFraudOutcome } from '../../graph/fraud';
import { resolveFraudReview, reverseLatestFraudOutcome } from '../../graph/fraudReversal';
import { lockCustomersTx } from '../../graph/customers';
import { lockNode, writeTx } from '../../graph/graph';
import { recordInteractions, recordInteractionsTx } from '../../graph/interactions';
import { profileRules } from '../../config/env';
import { startHarness, type Harness } from '../support/api';
import { seedCustomer } from '../support/builders';
import { send } from '../support/http';
import { cardInput, feedCursorAtNow } from '../support/graph';
import { until } from '../support/wait';

const LAG_MS = 1500;
let h: Harness;
const created: string[] = [];
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  if (!h) return;
  await h.graph.query(
    `UNWIND $ids AS id
     OPTIONAL MATCH (e:Event {customer_id: id}) DETACH DELETE e`,
    { ids: created },
  );
  await h.graph.query(
    `UNWIND $ids AS id
     MATCH (c:Customer {id: id})
     OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD|HAS_DIGITAL_IDENTIFIER]->(n)
     DETACH DELETE n, c`,
    { ids: created },
  );
  await h.close();
});

async function newCustomer(): Promise<string> {
  const { customerId } = await seedCustomer(h.graph, { emailTag: 'order' });
  created.push(customerId);
  return customerId;
}

/** A customer's events in the order they were made (the feed's order). */
async function inOrder(customerId: string): Promise<PersonaEvent[]> {
  return (await listCustomerEvents(h.graph, customerId, { limit: 1000 })).reverse();
}

describe('the per-customer event sequence', () => {
  it('numbers concurrent writers’ events on one customer 1..N in order; feed and history carry it', async () => {
    const cursor = await feedCursorAtNow(h.graph);
    const customerId = await newCustomer();
    const writers = 24;
    await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        i % 2 === 0
          ? updateCustomer(h.graph, customerId, { ltv_minor: 100 + i })
          : addPaymentMethod(h.graph, customerId, cardInput()),
      ),
    );
    const events = await inOrder(customerId);
    // CustomerCreated + DigitalIdentifierAdded, then each writer's events (a first card also moves the default).
    expect(events.length).toBeGreaterThanOrEqual(2 + writers);
    expect(events.map((e) => e.customer_seq)).toEqual(events.map((_, i) => i + 1));

    // The feed, read past its lag, carries the sequence: for this customer it counts 1..N in feed order.
    const app = h.withDeps((deps) => ({ ...deps, events: { feedLagMs: LAG_MS } }));
    const feedToken = await h.token('events:read');
    const fromFeed: number[] = [];
    let after = cursor;
    await until(async () => {
      const res = await app.request(`/api/v1/events?limit=1000&after=${encodeURIComponent(after)}`, {
        headers: { authorization: `Bearer ${feedToken}` },
      });
      const page = (await res.json()) as { data: PersonaEvent[]; next_cursor: string };
      for (const e of page.data) if (e.customer_id === customerId) fromFeed.push(e.customer_seq as number);
      after = page.next_cursor;
      return fromFeed.length >= events.length;
    }, 30_000);
    expect(fromFeed).toEqual(events.map((_, i) => i + 1));

    // The customer's own history shows each event's number, newest first.
    const history = await send(h.app, 'GET', `/api/v1/customers/${customerId}/events?limit=100`, {
      token: await h.token('ops'),
    });
    expect(history.status).toBe(200);
    expect((history.json.data as { customer_seq: number }[]).map((e) => e.customer_seq)).toEqual(
      events.map((_, i) => events.length - i),
    );
  });

  it('numbers each customer of a batch writer (the expiry scan) in its own sequence, in one statement', async () => {
    const [a, b] = [await newCustomer(), await newCustomer()];
    const cards: { payment_method_id: string; expiry_year: number; expiry_month: number }[] = [];
    for (const customerId of [a, b, a, b, a]) {
      const pm = await addPaymentMethod(h.graph, customerId, cardInput({ expiry_month: 1, expiry_year: 2021 }));
      cards.push({ payment_method_id: pm.id, expiry_year: 2021, expiry_month: 1 });
    }
    await expireCards(h.graph, cards, '2021-02-01');
    for (const customerId of [a, b]) {
      const events = await inOrder(customerId);
      expect(events.map((e) => e.customer_seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.filter((e) => e.type === 'PaymentMethodStatusChanged')).toHaveLength(customerId === a ? 3 : 2);
    }
  });

  it('appends an event of no existing customer (or of none) without a number', async () => {
    const ghost = `ghost-${randomUUID()}`;
    const marker = `pay_${randomUUID()}`;
    created.push(ghost);
    await writeTx(h.graph, (tx) =>
      appendEvents(tx, [
        { type: 'PaymentRecoveryFailed', customerId: ghost, payload: { payment_id: marker, attempts: 1, reason: 't' } },
        { type: 'PaymentRecoveryFailed', customerId: null, payload: { payment_id: marker, attempts: 2, reason: 't' } },
      ]),
    );
    const rows = await h.graph.query<{ customer_id: string | null; customer_seq: number | null }>(
      `MATCH (e:Event {type: 'PaymentRecoveryFailed'}) WHERE e.payload CONTAINS $marker
       RETURN e.customer_id AS customer_id, e.customer_seq AS customer_seq ORDER BY e.seq`,
      { marker },
    );
    expect(rows).toEqual([
      { customer_id: ghost, customer_seq: null },
      { customer_id: null, customer_seq: null },
    ]);
    await h.graph.query(
      `MATCH (e:Event {type: 'PaymentRecoveryFailed'}) WHERE e.customer_id IS NULL AND e.payload CONTAINS $marker
       DETACH DELETE e`,
      { marker },
    );
  });
});

describe('fraud reversals under the customer lock', () => {
  it('reverses distinct outcomes when false positives for one customer race each other', async () => {
    const customerId = await newCustomer();
    const n = 4;
    const cards: string[] = [];
    for (let i = 0; i < n; i++) cards.push((await addPaymentMethod(h.graph, customerId, cardInput())).id);
    for (const card of cards)
      await applyFraudOutcome(
        h.graph,
        { outcome_id: randomUUID(), customer_id: customerId, outcome: 'confirmed_fraud', payment_method_id: card },
        { trustStep: 0.1 },
      );
    const reversals = await Promise.all(
      Array.from({ length: n }, () =>
        reverseLatestFraudOutcome(h.graph, { outcome_id: randomUUID(), customer_id: customerId, reported_by: 'agent' }),
      ),
    );
    const targets = reversals.map((r) => r.reversed_outcome_id);
    expect(targets.every((t) => t !== null)).toBe(true);
    expect(new Set(targets).size).toBe(n);
    // Every card is back: each reversal restored its own outcome's card.
    const wallet = await getPaymentMethodsByCustomer(h.graph, customerId);
    expect(wallet.map((p) => p.status)).toEqual(cards.map(() => 'active'));
  });

  it('serialises a reversal with an outcome applied at once: a reversal made after it reverses it', async () => {
    for (let round = 0; round < 5; round++) {
      const customerId = await newCustomer();
      const [first, second] = [
        (await addPaymentMethod(h.graph, customerId, cardInput())).id,
        (await addPaymentMethod(h.graph, customerId, cardInput())).id,
      ];
      const report = (card: string) => ({
        outcome_id: randomUUID(),
        customer_id: customerId,
        outcome: 'confirmed_fraud' as const,
        payment_method_id: card,
      });
      const earlier = await applyFraudOutcome(h.graph, report(first), { trustStep: 0.1 });
      const [applied, reversal] = await Promise.all([
        applyFraudOutcome(h.graph, report(second), { trustStep: 0.1 }),
        reverseLatestFraudOutcome(h.graph, { outcome_id: randomUUID(), customer_id: customerId, reported_by: 'agent' }),
      ]);
      const events = await inOrder(customerId);
      const seqOf = (type: string, match: (e: PersonaEvent) => boolean) =>
        events.find((e) => e.type === type && match(e))?.customer_seq as number;
      const appliedAt = seqOf('FraudOutcomeApplied', (e) => e.payload.outcome_id === applied.outcome_id);
      const reversedAt = seqOf('FraudOutcomeReversed', () => true);
      // Whichever committed first, the reversal undid the latest outcome there was when it ran.
      expect(reversal.reversed_outcome_id).toBe(reversedAt > appliedAt ? applied.outcome_id : earlier.outcome_id);
      const wallet = await getPaymentMethodsByCustomer(h.graph, customerId);
      expect(wallet.filter((p) => p.status === 'compromised')).toHaveLength(1);
    }
  });
});

describe('ops’ review against an agent’s false positive', () => {
  it('keeps ops’ confirmation whichever commits first: the agent’s reversal is refused or undone', async () => {
    for (let round = 0; round < 5; round++) {
      const customerId = await newCustomer();
      const card = (await addPaymentMethod(h.graph, customerId, cardInput())).id;
      const outcome = { outcome_id: randomUUID(), customer_id: customerId, outcome: 'confirmed_fraud' as const };
      await applyFraudOutcome(h.graph, { ...outcome, payment_method_id: card }, { trustStep: 0.1 });
      // Ops' decision (already taken in the workflow) is recorded while Chimera's false positive arrives.
      const [, reversal] = await Promise.all([
        resolveFraudReview(h.graph, { outcome_id: outcome.outcome_id, customer_id: customerId, decision: 'confirm' }),
        reverseLatestFraudOutcome(h.graph, { outcome_id: randomUUID(), customer_id: customerId, reported_by: 'agent' }),
      ]);
      const [state] = await h.graph.query<{ status: string }>(
        'MATCH (c:Customer {id: $id}) RETURN c.status AS status',
        {
          id: customerId,
        },
      );
      const wallet = await getPaymentMethodsByCustomer(h.graph, customerId);
      // Either way ops' confirmation stands: suspended, the card compromised.
      expect([state?.status, wallet[0]?.status], `round ${round}`).toEqual(['suspended', 'compromised']);
      const resolved = (await inOrder(customerId)).find((e) => e.type === 'FraudReviewResolved');
      if (reversal.refused) expect(resolved?.payload).not.toHaveProperty('reapplied');
      else expect((resolved?.payload.reapplied as unknown[]).length).toBe(2);
    }
  });
});

describe('a default payment method that stops being usable', () => {
  it('moves to the latest-used active card in the fraud write; context never shows a compromised default', async () => {
    const customerId = await newCustomer();
    const stolen = (await addPaymentMethod(h.graph, customerId, cardInput({ last_four: '1111' }))).id;
    const older = (await addPaymentMethod(h.graph, customerId, cardInput({ last_four: '2222' }))).id;
    const newer = (await addPaymentMethod(h.graph, customerId, cardInput({ last_four: '3333' }))).id;
    await addPaymentMethod(h.graph, customerId, cardInput({ last_four: '4444', status: 'inactive' }));
    // The older card was used more recently than the newer one.
    await h.graph.query(
      `MATCH (:Customer {id: $customerId})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
       SET r.last_used = CASE p.id WHEN $older THEN datetime() - duration('P1D')
                                   WHEN $newer THEN datetime() - duration('P10D') END`,
      { customerId, older, newer },
    );
    expect((await getPaymentMethodsByCustomer(h.graph, customerId))[0]).toMatchObject({ id: stolen, is_default: true });

    await applyFraudOutcome(
      h.graph,
      { outcome_id: randomUUID(), customer_id: customerId, outcome: 'confirmed_fraud', payment_method_id: stolen },
      { trustStep: 0.1 },
    );
    const wallet = await getPaymentMethodsByCustomer(h.graph, customerId);
    expect(wallet.filter((p) => p.is_default).map((p) => p.id)).toEqual([older]);
    expect(wallet.find((p) => p.id === stolen)).toMatchObject({ status: 'compromised', is_default: false });
    const events = await inOrder(customerId);
    const status = events.findIndex((e) => e.type === 'PaymentMethodStatusChanged');
    // In the same transaction, right after the status change: the next number in the sequence.
    expect(events[status + 1]).toMatchObject({
      type: 'DefaultPaymentMethodChanged',
      customer_seq: (events[status]?.customer_seq as number) + 1,
      payload: { from: stolen, to: older },
    });
    const context = await send(h.app, 'GET', `/api/v1/customers/${customerId}/context`, {
      token: await h.token('context:read'),
    });
    expect(context.status).toBe(200);
    expect(context.json.default_payment_method_id).toBe(older);
  });

  it('is cleared when no active method is left, and an expired default gives way in the expiry scan', async () => {
    const alone = await newCustomer();
    const only = (await addPaymentMethod(h.graph, alone, cardInput())).id;
    await applyFraudOutcome(
      h.graph,
      { outcome_id: randomUUID(), customer_id: alone, outcome: 'confirmed_fraud', payment_method_id: only },
      { trustStep: 0.1 },
    );
    expect(await getPaymentMethodsByCustomer(h.graph, alone)).toMatchObject([
      { id: only, status: 'compromised', is_default: false },
    ]);
    expect((await inOrder(alone)).filter((e) => e.type === 'DefaultPaymentMethodChanged').at(-1)).toMatchObject({
      payload: { from: only, to: null },
    });
    // A false positive makes it active again, and, with no other default, the default again.
    await reverseLatestFraudOutcome(h.graph, { outcome_id: randomUUID(), customer_id: alone, reported_by: 'agent' });
    expect(await getPaymentMethodsByCustomer(h.graph, alone)).toMatchObject([
      { id: only, status: 'active', is_default: true },
    ]);

    const scanned = await newCustomer();
    const expiring = (await addPaymentMethod(h.graph, scanned, cardInput({ expiry_month: 1, expiry_year: 2021 }))).id;
    const next = (await addPaymentMethod(h.graph, scanned, cardInput())).id;
    await expireCards(h.graph, [{ payment_method_id: expiring, expiry_year: 2021, expiry_month: 1 }], '2021-02-01');
    const wallet = await getPaymentMethodsByCustomer(h.graph, scanned);
    expect(wallet.filter((p) => p.is_default).map((p) => p.id)).toEqual([next]);
    expect((await inOrder(scanned)).at(-1)).toMatchObject({
      type: 'DefaultPaymentMethodChanged',
      payload: { from: expiring, to: next },
    });
  });
});

describe('a lock taken while another writer changes the customer', () => {
  it('never writes back what it read before the lock: a suspension committed meanwhile stays', async () => {
    const customerId = await newCustomer();
    const holder = h.graph.driver.session({ database: h.graph.database });
    const suspending = holder.beginTransaction();
    let locking: Promise<unknown> | undefined;
    try {
      await suspending.run(`MATCH (c:Customer {id: $id}) SET c.status = 'suspended'`, { id: customerId });
      // Another writer asks for the customer's lock while the suspension holds it.
      locking = writeTx(h.graph, (tx) => lockCustomersTx(tx, [customerId]));
      await until(async () => {
        const blocked = await h.graph.query<{ parameters: unknown }>(
          "SHOW TRANSACTIONS YIELD status, parameters WHERE status STARTS WITH 'Blocked' RETURN parameters",
        );
        return blocked.some((b) => JSON.stringify(b.parameters).includes(customerId));
      });
      await suspending.commit();
      await locking;
    } finally {
      await holder.close();
    }
    // A same-value SET (`SET c.status = c.status`) read 'active' before it waited, and wrote it back.
    const [row] = await h.graph.query<{ status: string }>('MATCH (c:Customer {id: $id}) RETURN c.status AS status', {
      id: customerId,
    });
    expect(row?.status).toBe('suspended');
  });
});

describe('one lock order: the customer first', () => {
  /**
   * Holds the customer's lock in an open transaction, starts `write`, waits until it is blocked,
   * then asks whether `entity` (the thing the writer changes) can still be locked at once: it can
   * only if the writer waits for the customer before taking the entity's lock.
   */
  async function entityFreeWhileWriterWaits(
    customerId: string,
    ids: string[],
    write: () => Promise<unknown>,
    entity: { match: string; id: string },
  ): Promise<boolean> {
    const holder = h.graph.driver.session({ database: h.graph.database });
    const probe = h.graph.driver.session({ database: h.graph.database });
    const tx = holder.beginTransaction();
    let writing: Promise<unknown> | undefined;
    try {
      await tx.run(`MATCH (c:Customer {id: $id}) ${lockNode('c')}`, { id: customerId });
      writing = write();
      await until(async () => {
        const blocked = await h.graph.query<{ parameters: unknown }>(
          "SHOW TRANSACTIONS YIELD status, parameters WHERE status STARTS WITH 'Blocked' RETURN parameters",
        );
        return blocked.some((b) => ids.some((id) => JSON.stringify(b.parameters).includes(id)));
      });
      try {
        await probe.run(`MATCH ${entity.match} ${lockNode('n')}`, { id: entity.id }, { timeout: 2000 });
        return true;
      } catch {
        return false;
      }
    } finally {
      await tx.rollback();
      await writing;
      await Promise.all([holder.close(), probe.close()]);
    }
  }

  it('a payment method’s status change waits for the customer before it locks the method', async () => {
    const customerId = await newCustomer();
    const pm = (await addPaymentMethod(h.graph, customerId, cardInput())).id;
    const free = await entityFreeWhileWriterWaits(
      customerId,
      [customerId, pm],
      () => updatePaymentMethodStatus(h.graph, pm, 'inactive', { reason: 'lock order test' }),
      { match: '(n:PaymentMethod {id: $id})', id: pm },
    );
    expect(free).toBe(true);
  });

  it('the expiry scan waits for each customer before it locks the card', async () => {
    const customerId = await newCustomer();
    const pm = (await addPaymentMethod(h.graph, customerId, cardInput({ expiry_month: 1, expiry_year: 2021 }))).id;
    const free = await entityFreeWhileWriterWaits(
      customerId,
      [customerId, pm],
      () => expireCards(h.graph, [{ payment_method_id: pm, expiry_year: 2021, expiry_month: 1 }], '2021-02-01'),
      { match: '(n:PaymentMethod {id: $id})', id: pm },
    );
    expect(free).toBe(true);
  });

  it('a login waits for the customer before the device', async () => {
    const customerId = await newCustomer();
    const fingerprint = `fp-${randomUUID()}`;
    const device = (await linkDevice(h.graph, customerId, { fingerprint })).id;
    const login = await entityFreeWhileWriterWaits(
      customerId,
      [customerId, fingerprint],
      () => linkDevice(h.graph, customerId, { fingerprint }),
      { match: '(n:Device {id: $id})', id: device },
    );
    expect(login).toBe(true);
    await h.graph.query('MATCH (d:Device {id: $id}) DETACH DELETE d', { id: device });
  });

  it('locks a shared device only to give it a new edge: repeat logins from it do not wait on each other', async () => {
    const [a, b, c] = [await newCustomer(), await newCustomer(), await newCustomer()];
    const fingerprint = `fp-${randomUUID()}`;
    const device = (await linkDevice(h.graph, a, { fingerprint })).id;
    await linkDevice(h.graph, b, { fingerprint });
    const rules = profileRules(h.graph.config);
    const login = (customerId: string) => ({
      id: `login-${randomUUID()}`,
      type: 'login' as const,
      customer_id: customerId,
      occurred_at: new Date().toISOString(),
      device: { fingerprint },
    });
    // A's repeat login, its transaction held open until B's has committed.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const held = writeTx(h.graph, async (tx) => {
      await recordInteractionsTx(tx, h.graph, [login(a)], rules);
      entered();
      await gate;
    });
    await inside;
    // B's repeat login and C's first (a new edge, the device locked) commit while A's is open: had
    // A's batch locked the device, they would wait until its transaction timed out, and A would fail.
    expect(await recordInteractions(h.graph, [login(b)], rules)).toEqual([{ result: 'recorded' }]);
    expect(await recordInteractions(h.graph, [login(c)], rules)).toEqual([{ result: 'recorded' }]);
    release();
    await held;
    const edges = await h.graph.query<{ id: string; logins: number }>(
      'MATCH (c:Customer)-[r:LOGGED_IN_FROM]->(:Device {id: $id}) RETURN c.id AS id, r.login_count AS logins',
      { id: device },
    );
    expect(new Map(edges.map((e) => [e.id, e.logins]))).toEqual(
      new Map([
        [a, 2],
        [b, 2],
        [c, 1],
      ]),
    );
    await h.graph.query('MATCH (d:Device {id: $id}) DETACH DELETE d', { id: device });
  });

  it('recording a notification waits for the customer before it locks the claim', async () => {
    const customerId = await newCustomer();
    const key = `lock-order:${randomUUID()}`;
    const item = { key, customer_id: customerId, kind: 'payment_recovered' };
    await claimNotifications(h.graph, [item], 'lock-order-test');
    const free = await entityFreeWhileWriterWaits(
      customerId,
      [customerId, key],
      () => recordNotificationsSent(h.graph, [{ ...item, channel: 'email' }], 'lock-order-test'),
      { match: '(n:Notification {key: $id})', id: key },
    );
    expect(free).toBe(true);
  });
});
