/**
 * What one customer may see of another, end to end (the api, a real worker, Temporal, Neo4j):
 * two customers on one device keep their own last IP and user agent; an export names no other
 * customer; erasing one leaves the other's login facts alone; and only the verification service
 * may say that an identifier is verified.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDevicesByCustomer, getPaymentMethodsByCustomer } from '../../graph';
import { eraseCustomer } from '../../graph/erasure';
import { EXPORT_EVENTS_PAGE } from '../../api/services/privacy';
import { startHarness, type Harness } from '../support/api';
import { onboardThroughApi } from '../support/builders';
import { cardInput, uniqueEmail, uniquePerson } from '../support/graph';
import { send } from '../support/http';

let h: Harness;
let onboarder: string;
let verifier: string;
beforeAll(async () => {
  h = await startHarness();
  onboarder = await h.token('onboarding:write');
  verifier = await h.token('onboarding:write identity:verify');
});
afterAll(() => h?.close());

const created: string[] = [];
afterAll(async () => {
  // Everything these tests made: their customers, and what hangs off them only.
  await h?.graph.query(
    `MATCH (c:Customer) WHERE c.id IN $ids
     OPTIONAL MATCH (c)-->(x)
     WHERE NOT EXISTS { MATCH (x)<--(o:Customer) WHERE NOT o.id IN $ids }
     WITH collect(DISTINCT c) + collect(DISTINCT x) AS nodes
     FOREACH (n IN nodes | DETACH DELETE n)
     WITH 1 AS done
     MATCH (e:Event) WHERE e.customer_id IN $ids
     DETACH DELETE e`,
    { ids: created },
  );
});

async function onboard(body: Record<string, unknown>, token = onboarder) {
  const res = await onboardThroughApi<{
    customer_id: string;
    outcome: string;
    possible_match_count: number;
    possible_matches?: { customer_id: string; probability: number }[];
  }>(h.app, token, { customer: { segment: 'New', ltv: '0' }, ...body });
  expect(res.status).toBe(200);
  created.push(res.json.customer_id);
  return res.json;
}

const read = (path: string, token: string) => send(h.app, 'GET', path, { token, read: 'text' });

const card = () => cardInput({ expiry_year: 2034 });

describe('one device, two customers', () => {
  it("shows each customer only its own last IP and user agent, and never the other's id", async () => {
    const fingerprint = `fp-shared-${randomUUID()}`;
    const a = await onboard({
      device: { fingerprint, ip: '198.51.100.10', user_agent: 'A-Browser/1.0' },
      digital_identifiers: [{ type: 'email', value: uniqueEmail('a') }],
    });
    // B signs up later on the same device, from another address and browser: a possible match of A.
    const b = await onboard({
      device: { fingerprint, ip: '203.0.113.20', user_agent: 'B-Browser/2.0' },
      digital_identifiers: [{ type: 'email', value: uniqueEmail('b') }],
    });
    // Told there is one, not whose: the onboarding caller has no identity:merge.
    expect([b.possible_match_count, b.possible_matches]).toEqual([1, undefined]);

    // The devices list: one shared node, each customer's own login facts.
    const [aDevice] = await getDevicesByCustomer(h.graph, a.customer_id);
    const [bDevice] = await getDevicesByCustomer(h.graph, b.customer_id);
    expect(aDevice?.id).toBe(bDevice?.id);
    expect(aDevice).toMatchObject({ last_seen_ip: '198.51.100.10', last_seen_user_agent: 'A-Browser/1.0' });
    expect(bDevice).toMatchObject({ last_seen_ip: '203.0.113.20', last_seen_user_agent: 'B-Browser/2.0' });
    // Nothing of either login is left on the node both read.
    const [node] = await h.graph.query<{ props: Record<string, unknown> }>(
      'MATCH (d:Device {fingerprint: $fingerprint}) RETURN properties(d) AS props',
      { fingerprint },
    );
    expect(Object.keys(node?.props ?? {}).sort()).toEqual([
      'created_at',
      'fingerprint',
      'id',
      'trust_score',
      'updated_at',
    ]);

    // A's export and context: A's own address and browser, nothing of B.
    const aExport = await read(`/api/v1/customers/${a.customer_id}/export`, await h.token('self', a.customer_id));
    expect(aExport.status).toBe(200);
    const aBody = JSON.parse(aExport.text) as { devices: unknown[] };
    expect(aBody.devices).toEqual([
      expect.objectContaining({ fingerprint, last_seen_ip: '198.51.100.10', last_seen_user_agent: 'A-Browser/1.0' }),
    ]);
    for (const ofB of [b.customer_id, '203.0.113.20', 'B-Browser/2.0']) expect(aExport.text).not.toContain(ofB);
    const aContext = await read(`/api/v1/customers/${a.customer_id}/context`, await h.token('context:read'));
    expect(aContext.status).toBe(200);
    for (const ofB of [b.customer_id, '203.0.113.20', 'B-Browser/2.0']) expect(aContext.text).not.toContain(ofB);

    // B's export: B's own facts, and not the id of A that B's onboarding noted as a possible match.
    const bExport = await read(`/api/v1/customers/${b.customer_id}/export`, await h.token('self', b.customer_id));
    expect(bExport.status).toBe(200);
    const bBody = JSON.parse(bExport.text) as Record<string, unknown>;
    expect(bBody).not.toHaveProperty('possible_matches');
    expect(bBody.devices).toEqual([expect.objectContaining({ last_seen_ip: '203.0.113.20' })]);
    for (const ofA of [a.customer_id, '198.51.100.10', 'A-Browser/1.0']) expect(bExport.text).not.toContain(ofA);
    // Ops still see the match.
    const matches = await read(`/api/v1/customers/${b.customer_id}/possible-matches`, await h.token('ops'));
    expect(matches.text).toContain(a.customer_id);
  });

  it("erasing one customer takes its login facts and leaves the other's", async () => {
    const fingerprint = `fp-shared-${randomUUID()}`;
    const b = await onboard({ device: { fingerprint, ip: '203.0.113.30', user_agent: 'Stays/1.0' } });
    // A logs in last: under the old model the shared device carried A's address afterwards.
    const a = await onboard({ device: { fingerprint, ip: '198.51.100.31', user_agent: 'Goes/1.0' } });

    // What the erasure workflow's activity does (the api's own guards on erasure are not the point here).
    expect(await eraseCustomer(h.graph, a.customer_id)).toMatchObject({ erased: true, deleted: { devices: 0 } });

    expect(await getDevicesByCustomer(h.graph, b.customer_id)).toEqual([
      expect.objectContaining({ last_seen_ip: '203.0.113.30', last_seen_user_agent: 'Stays/1.0', login_count: 1 }),
    ]);
    // Whatever the device and its edges hold: B's login, nothing of A's.
    const left = JSON.stringify(
      await h.graph.query(
        'MATCH (d:Device {fingerprint: $fingerprint}) ' +
          'RETURN properties(d) AS d, [(d)<-[r]-() | properties(r)] AS edges',
        { fingerprint },
      ),
    );
    expect(left).toContain('203.0.113.30');
    expect(left).not.toContain('198.51.100.31');
    expect(left).not.toContain('Goes/1.0');
  });
});

describe('the export of a long history', () => {
  it('streams every event, page after page, newest first', async () => {
    const fingerprint = `fp-${randomUUID()}`;
    const c = await onboard({ device: { fingerprint } });
    // More logins than one page of events holds: each is a DeviceLinked event.
    const logins = EXPORT_EVENTS_PAGE + 20;
    await h.graph.query(
      `UNWIND range(1, $logins) AS n
       CREATE (:Event {id: randomUUID(), type: 'DeviceLinked', customer_id: $id,
                       occurred_at: datetime.realtime() + duration({milliseconds: n}), seq: 0,
                       payload: '{"device_id":"x","new_device":false,"login_count":' + toString(n) + '}'})`,
      { id: c.customer_id, logins },
    );
    const res = await h.app.request(`/api/v1/customers/${c.customer_id}/export`, {
      headers: { authorization: `Bearer ${await h.token('self', c.customer_id)}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    // Read as it is sent: a page of events at a time, never the whole history in one piece.
    const pieces: string[] = [];
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) pieces.push(decoder.decode(chunk));
    const perPiece = pieces.map((p) => p.split('"login_count":').length - 1).filter((n) => n > 0);
    expect(perPiece.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...perPiece)).toBeLessThanOrEqual(EXPORT_EVENTS_PAGE);
    const body = JSON.parse(pieces.join('')) as {
      events: { id: string; type: string; payload: { login_count?: number } }[];
    };
    const counts = body.events.filter((e) => e.payload.login_count !== undefined).map((e) => e.payload.login_count);
    // Every one, once, newest first: none lost or repeated at a page boundary.
    expect(counts.slice(0, logins)).toEqual(Array.from({ length: logins }, (_, i) => logins - i));
    expect(new Set(body.events.map((e) => e.id)).size).toBe(body.events.length);
    expect(body.events.map((e) => e.type)).toContain('CustomerOnboarded');
  });

  it('answers 404 before streaming for a customer it does not know', async () => {
    expect((await read(`/api/v1/customers/${randomUUID()}/export`, await h.token('ops'))).status).toBe(404);
  });
});

describe('who may say an identifier is verified', () => {
  it("a caller without identity:verify asserting a customer's verified email is no match for it", async () => {
    const email = uniqueEmail('victim');
    // The attacker knows the victim's name and birth date too: only who vouches for the email differs.
    const person = uniquePerson();
    const victim = await onboard(
      { payment_method: card(), digital_identifiers: [{ type: 'email', value: email, is_verified: true }], person },
      verifier,
    );
    expect(victim.outcome).toBe('created');
    const before = await getPaymentMethodsByCustomer(h.graph, victim.customer_id);

    const attacker = await onboard({
      payment_method: card(),
      device: { fingerprint: `fp-attacker-${randomUUID()}`, ip: '192.0.2.66' },
      digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
      person,
    });
    expect(attacker.outcome).toBe('created');
    expect(attacker.customer_id).not.toBe(victim.customer_id);
    // At most a possible match for ops to look at, whose id the attacker is not told; nothing joined the victim.
    expect([attacker.possible_match_count, attacker.possible_matches]).toEqual([1, undefined]);
    expect(await getPaymentMethodsByCustomer(h.graph, victim.customer_id)).toEqual(before);
    expect(await getDevicesByCustomer(h.graph, victim.customer_id)).toEqual([]);

    // The same claim from the verification service is the same customer.
    const verified = await onboard(
      { payment_method: card(), digital_identifiers: [{ type: 'email', value: email, is_verified: true }], person },
      verifier,
    );
    expect(verified).toMatchObject({ outcome: 'matched', customer_id: victim.customer_id });
  });

  it('stores an identifier unverified when the caller may not vouch for it, and ops may not either', async () => {
    for (const token of [onboarder, await h.token('ops')]) {
      const email = uniqueEmail('claimed');
      const c = await onboard({ digital_identifiers: [{ type: 'email', value: email, is_verified: true }] }, token);
      const profile = await read(`/api/v1/customers/${c.customer_id}/profile`, await h.token('ops'));
      expect(JSON.parse(profile.text)).toMatchObject({
        digital_identifiers: [{ type: 'email', value: email, is_verified: false }],
      });
      // And so a later verified claim of it does not match on it either.
      const later = await onboard(
        { digital_identifiers: [{ type: 'email', value: email, is_verified: true }] },
        verifier,
      );
      expect(later.outcome).toBe('created');
    }
  });
});
