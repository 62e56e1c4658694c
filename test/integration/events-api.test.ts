/**
 * The change feed and a customer's history on the real Neo4j: many writers at once while a
 * reader pages, resuming from stored cursors; the REST routes' shape, access and errors.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { createApp } from '../../api/rest/app';
import { addPaymentMethod, createCustomer, listCustomerEvents, updateCustomer, type PersonaEvent } from '../../graph';
import { readFeed } from '../../graph/feed';
import { startHarness, type Harness } from '../support/api';
import { send } from '../support/http';
import { cardInput, feedCursorAtNow, uniqueEmail } from '../support/graph';

const LAG_MS = 1500;
let h: Harness;
let app: ReturnType<typeof createApp>;
beforeAll(async () => {
  h = await startHarness();
  // The same app with a short feed lag, so the tests need not wait 15 s for events to settle.
  app = h.withDeps((deps) => ({ ...deps, events: { feedLagMs: LAG_MS } }));
});
afterAll(() => h?.close());

const cursorAtNow = () => feedCursorAtNow(h.graph);

const get = (path: string, token: string) => send(app, 'GET', path, { token });

describe('the change feed', () => {
  it('never skips an event while many writers commit at once, and keeps each customer’s order', async () => {
    let cursor = await cursorAtNow();
    const seen: PersonaEvent[] = [];
    let writing = true;
    const reader = (async () => {
      // Pages of 7 while the writers run, then until the last write has settled past the lag.
      let quietSince = 0;
      for (;;) {
        const page = await readFeed(h.graph, { after: cursor, limit: 7, lagMs: LAG_MS });
        seen.push(...page.data);
        cursor = page.next_cursor as string;
        if (page.data.length > 0 || writing) quietSince = Date.now();
        else if (Date.now() - quietSince > LAG_MS * 2) return;
        await sleep(page.data.length === 7 ? 0 : 50);
      }
    })();
    const customers = await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const c = await createCustomer(h.graph, {
          digital_identifiers: [{ type: 'email', value: uniqueEmail(`feed${i}`), is_verified: true }],
        });
        for (let k = 0; k < 4; k++) {
          await addPaymentMethod(h.graph, c.id, cardInput({ last_four: String(1000 + k) }));
          await updateCustomer(h.graph, c.id, { ltv_minor: i * 100 + k });
        }
        return c.id;
      }),
    );
    writing = false;
    await reader;

    for (const id of customers) {
      const written = (await listCustomerEvents(h.graph, id, { limit: 1000 })).reverse(); // oldest first
      const delivered = seen.filter((e) => e.customer_id === id);
      expect(written.length).toBeGreaterThanOrEqual(10);
      // Every event at least once, and in the customer's order.
      expect([...new Set(delivered.map((e) => e.id))]).toEqual(written.map((e) => e.id));
    }
    expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
  });

  it('pages over REST with an opaque cursor, and refuses what it did not give out', async () => {
    const token = await h.token('events:read');
    const start = await cursorAtNow();
    const c = await createCustomer(h.graph, {
      digital_identifiers: [{ type: 'email', value: uniqueEmail('rest'), is_verified: false }],
    });
    await addPaymentMethod(h.graph, c.id, cardInput());
    await sleep(LAG_MS + 200);
    const first = await get(`/api/v1/events?after=${start}&limit=2`, token);
    expect(first.status).toBe(200);
    const data = first.json.data as PersonaEvent[];
    expect(data.map((e) => e.type)).toEqual(['CustomerCreated', 'DigitalIdentifierAdded']);
    expect(data[0]).toMatchObject({ customer_id: c.id, payload: { segment: expect.any(String) } });
    const second = await get(`/api/v1/events?after=${first.json.next_cursor as string}&limit=10`, token);
    expect((second.json.data as PersonaEvent[]).filter((e) => e.customer_id === c.id).map((e) => e.type)).toEqual([
      'PaymentMethodAdded',
      'DefaultPaymentMethodChanged',
    ]);
    // Nothing new: the same cursor back.
    const end = second.json.next_cursor as string;
    const idle = await get(`/api/v1/events?after=${end}`, token);
    expect(idle.json).toEqual({ data: [], next_cursor: end });

    expect((await get('/api/v1/events', await h.token('customers:read'))).status).toBe(403);
    expect((await get('/api/v1/events?after=bm90LWEtY3Vyc29y', token)).json).toMatchObject({
      status: 400,
      field: 'after',
    });
    expect((await get('/api/v1/events?limit=5000', token)).json).toMatchObject({ status: 400, field: 'limit' });
  });

  it('does not serve an event until it is older than the lag', async () => {
    const start = await cursorAtNow();
    const c = await createCustomer(h.graph, {});
    const early = await readFeed(h.graph, { after: start, limit: 100, lagMs: 60_000 });
    expect(early.data.some((e) => e.customer_id === c.id)).toBe(false);
    await sleep(LAG_MS + 200);
    const later = await readFeed(h.graph, { after: start, limit: 100, lagMs: LAG_MS });
    expect(later.data.some((e) => e.customer_id === c.id)).toBe(true);
  });
});

describe('GET /api/v1/customers/{id}/events', () => {
  it('tells the customer their history, newest first, page by page, in words and without a token', async () => {
    const c = await createCustomer(h.graph, {
      digital_identifiers: [{ type: 'email', value: uniqueEmail('hist'), is_verified: true }],
    });
    const token = `tok_secret_${randomUUID()}`;
    await addPaymentMethod(
      h.graph,
      c.id,
      cardInput({ token, brand: 'visa', last_four: '4242', expiry_month: 3, expiry_year: 2031 }),
    );
    await updateCustomer(h.graph, c.id, { segment: 'VIP' });
    const self = await h.token('self', c.id);

    const pages: { summary: string; type: string }[][] = [];
    let next: string | null = null;
    do {
      const res = await get(`/api/v1/customers/${c.id}/events?limit=2${next ? `&before=${next}` : ''}`, self);
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.json)).not.toContain(token);
      pages.push(res.json.data as { summary: string; type: string }[]);
      next = res.json.next_cursor as string | null;
    } while (next);
    const all = pages.flat();
    expect(all.map((e) => e.type)).toEqual([
      'CustomerProfileUpdated',
      'DefaultPaymentMethodChanged',
      'PaymentMethodAdded',
      'DigitalIdentifierAdded',
      'CustomerCreated',
    ]);
    expect(all.map((e) => e.summary)).toEqual([
      'Profile updated: segment New → VIP',
      'Default payment method changed',
      'Payment method added: visa ending 4242, expires 03/2031 — now the default',
      'Email address added (verified)',
      'Profile created (segment New)',
    ]);

    const stranger = await h.token('self', randomUUID());
    expect((await get(`/api/v1/customers/${c.id}/events`, stranger)).status).toBe(403);
    expect((await get(`/api/v1/customers/${c.id}/events`, await h.token('customers:read'))).status).toBe(403);
    expect((await get(`/api/v1/customers/${c.id}/events?limit=1`, await h.token('ops'))).json.data).toHaveLength(1);
    expect((await get(`/api/v1/customers/${randomUUID()}/events`, await h.token('ops'))).status).toBe(404);
  });
});
