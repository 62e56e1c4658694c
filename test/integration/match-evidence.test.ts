/**
 * A customer's possible matches, end to end on the real api, worker, Temporal and Neo4j: each
 * found either way (the onboarding that recorded it, or the customer it named) or by what the two
 * share (device, card fingerprint, normalised address), with what links them in words and the match
 * model's probability and parts, the most likely first; from a bounded read.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDeviceFromCustomer } from '../../graph/devices';
import { eraseCustomer } from '../../graph/erasure';
import { setCardOfMethod } from '../../graph/cardHistory';
import { listMatchEvidence, type PossibleMatchEvidence } from '../../graph/matchEvidence';
import { MATCH_EVIDENCE, matchEvidenceParams } from '../../graph/matchEvidenceRead';
import { CUSTOMER_HOLDERS } from '../../graph/customerRecords';
import { SHARED_FACT_LIMIT } from '../../graph/matchParts';
import { MATCH_MODEL } from '../../resolution/weights';
import { startHarness, type Harness } from '../support/api';
import { onboardThroughApi } from '../support/builders';
import { cardInput, uniqueEmail } from '../support/graph';
import { send } from '../support/http';
import { removeDeviceCustomers, seedDeviceCustomers } from '../support/sharedDevice';

let h: Harness;
let onboarder: string;
let reviewer: string;

beforeAll(async () => {
  h = await startHarness();
  // The verification service: its verified identifiers count (scope identity:verify); with
  // identity:merge it is answered the possible matches' ids these tests look at.
  onboarder = await h.token('onboarding:write identity:verify identity:merge');
  reviewer = await h.token('identity:merge');
});
afterAll(() => h?.close());

interface Onboarded {
  customer_id: string;
  outcome: string;
  possible_matches: { customer_id: string; probability: number }[];
  workflow_id: string;
}

async function onboard(body: Record<string, unknown>): Promise<Onboarded> {
  const res = await onboardThroughApi<Onboarded>(h.app, onboarder, { customer: { segment: 'New', ltv: '0' }, ...body });
  expect(res.status).toBe(200);
  return res.json;
}

async function matchesOf(id: string, token = reviewer) {
  const res = await send<{ data: PossibleMatchEvidence[]; next_cursor: null }>(
    h.app,
    'GET',
    `/api/v1/customers/${id}/possible-matches`,
    { token },
  );
  return { status: res.status, text: res.text, body: res.json };
}

async function walletOf(id: string): Promise<string[]> {
  const rows = await h.graph.query<{ id: string }>(
    'MATCH (:Customer {id: $id})-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod) RETURN p.id AS id',
    { id },
  );
  return rows.map((r) => r.id);
}

const card = () => cardInput({ expiry_year: 2031 });

describe('possible matches with their evidence', () => {
  it('ranks two customers sharing a device, a card, an address and an email, and explains each part', async () => {
    const email = uniqueEmail('match');
    const fingerprint = `fp-match-${randomUUID()}`;
    const street = `${Math.floor(Math.random() * 1e6)} Acacia Avenue`;
    const address = { street1: street, city: 'London', zip_code: 'SW1A 2AA', country: 'GB', type: 'shipping' };

    // A: the email verified (the verification service said so), a card, a device and an address.
    const a = await onboard({
      digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
      device: { fingerprint },
      payment_method: card(),
      address,
    });
    // B: the same email unverified, the same device, the same card under another token, and the
    // address typed another way.
    const b = await onboard({
      digital_identifiers: [{ type: 'email', value: email.toUpperCase(), is_verified: false }],
      device: { fingerprint },
      payment_method: card(),
      address: { ...address, street1: `${street.toLowerCase().replace('avenue', 'ave.')}`, zip_code: 'sw1a2aa' },
    });
    expect([b.outcome, b.possible_matches.map((m) => m.customer_id)]).toEqual(['created', [a.customer_id]]);
    // C: the device only (a family tablet, now of three customers).
    const c = await onboard({ device: { fingerprint } });
    expect(c.possible_matches.map((m) => m.customer_id).sort()).toEqual([a.customer_id, b.customer_id].sort());
    // D: only the address, typed a third way: no onboarding recorded a match, the address finds it.
    const d = await onboard({
      payment_method: card(),
      address: { ...address, street1: `  ${street.replace('Avenue', 'Ave')}  `, zip_code: 'SW1A-2AA' },
    });
    expect(d.possible_matches).toEqual([]);
    // The processor names A's and B's cards as one card (the same fingerprint).
    const cardFingerprint = `card_fp_${randomUUID().replaceAll('-', '')}`;
    const [aCard] = await walletOf(a.customer_id);
    const [bCard] = await walletOf(b.customer_id);
    for (const pm of [aCard, bCard])
      await setCardOfMethod(h.graph, pm as string, { fingerprint: cardFingerprint, network: 'visa' });

    const { status, text, body } = await matchesOf(b.customer_id);
    expect(status).toBe(200);
    expect(body.next_cursor).toBeNull();
    expect(body.data.map((m) => m.customer_id).sort()).toEqual([a.customer_id, c.customer_id, d.customer_id].sort());
    expect(body.data[0]?.customer_id).toBe(a.customer_id);
    const chances = body.data.map((m) => m.probability);
    expect(chances).toEqual([...chances].sort((x, y) => y - x));
    const withA = body.data[0];
    const withD = body.data.find((m) => m.customer_id === d.customer_id);
    const withC = body.data.find((m) => m.customer_id === c.customer_id);

    expect(withA).toMatchObject({
      status: 'active',
      model_version: MATCH_MODEL.version,
      conflicts: [],
      signals: ['card_fingerprint', 'unverified_email', 'device', 'address'],
      found_at: expect.any(String),
      onboarding_id: b.workflow_id,
    });
    // The model weighs what the two records hold: the same card, email, device and address, each for.
    const levels = withA?.comparisons.map((p) => `${p.comparison}.${p.level}`).sort();
    expect(levels).toEqual(['address.exact', 'card.fingerprint', 'device.exact', 'email.exact']);
    for (const p of withA?.comparisons ?? []) expect(p.bits).toBeGreaterThan(0);
    expect(withA?.comparisons.find((p) => p.comparison === 'device')?.reason).toMatch(
      /^same device \((held by 1 in \d+ records|rare)\)$/,
    );
    expect(withA?.probability).toBeGreaterThan(withD?.probability ?? 1);
    expect(withA?.parts).toEqual([
      {
        signal: 'card_fingerprint',
        reason: 'card Visa •••• 4242 exp 12/2031 on both records (same card fingerprint)',
        details: {
          fingerprint_suffix: cardFingerprint.slice(-4),
          network: 'visa',
          this: { payment_method_id: bCard, brand: 'visa', last_four: '4242', expiry_month: 12, expiry_year: 2031 },
          other: { payment_method_id: aCard, brand: 'visa', last_four: '4242', expiry_month: 12, expiry_year: 2031 },
          shared_by: 2,
          shared_beyond_limit: false,
          limit: SHARED_FACT_LIMIT,
        },
      },
      {
        signal: 'unverified_email',
        reason: 'the same email address, verified on one record only',
        details: { type: 'email', verified: 'one_side' },
      },
      {
        signal: 'device',
        reason: `both log in from device …${fingerprint.slice(-4)}, which 3 customers use`,
        details: expect.objectContaining({ fingerprint_suffix: fingerprint.slice(-4), shared_by: 3, limit: 5 }),
      },
      {
        signal: 'address',
        reason: 'the same shipping address after normalisation',
        details: {
          compared: ['street1', 'street2', 'zip_code', 'country'],
          this: expect.objectContaining({ type: 'shipping', city: 'London', country: 'GB' }),
          other: expect.objectContaining({ type: 'shipping', city: 'London', country: 'GB' }),
          shared_by: 3,
          shared_beyond_limit: false,
          limit: SHARED_FACT_LIMIT,
        },
      },
    ]);
    // The address alone: no onboarding named D, so no time or onboarding.
    expect(withD).toMatchObject({ signals: ['address'], found_at: null, onboarding_id: null });
    expect(withC).toMatchObject({ signals: ['device'], onboarding_id: c.workflow_id });
    // Nothing personal in words or details: no email, street, postcode or whole fingerprint.
    for (const secret of [email, email.toUpperCase(), street, 'SW1A', 'sw1a', fingerprint, cardFingerprint])
      expect(text).not.toContain(secret);

    // The other way round: A never onboarded after B, yet B's onboarding named A, and is found.
    const ofA = await matchesOf(a.customer_id);
    expect(ofA.body.data[0]?.customer_id).toBe(b.customer_id);
    expect(ofA.body.data.map((m) => m.customer_id).sort()).toEqual(
      [b.customer_id, c.customer_id, d.customer_id].sort(),
    );
    expect(ofA.body.data[0]).toMatchObject({
      signals: ['card_fingerprint', 'unverified_email', 'device', 'address'],
      found_at: withA?.found_at,
      onboarding_id: b.workflow_id,
    });
    expect(ofA.body.data[0]?.parts[0]?.details).toMatchObject({
      this: { payment_method_id: aCard },
      other: { payment_method_id: bCard },
    });
  });

  it('ranks by the model: one person on a shared tablet above a stranger holding the same card', async () => {
    // Letters only, so that names fold to themselves; any of the 26, from the first, so that no other
    // customer's name sounds the same (a name key is its Soundex: a fixed prefix and a–f alone give a
    // few hundred keys, and an earlier run's customer on one of them is a third candidate).
    const letters = () => Array.from(randomBytes(9), (b) => String.fromCharCode(97 + (b % 26))).join('');
    // A birth date of its own too: a key of a birth date and an initial would find earlier runs' customers.
    const pick = (n: number) => String(1 + Math.floor(Math.random() * n)).padStart(2, '0');
    const birth = (from: number) => `${from + Math.floor(Math.random() * 20)}-${pick(12)}-${pick(28)}`;
    const person = { given_name: letters(), family_name: letters(), birth_date: birth(1950) };
    const tablet = { fingerprint: `fp-tablet-${randomUUID()}` };
    const me = await onboard({ person, device: tablet, payment_method: card() });
    // The same person again from the tablet (no proof: a new customer, a possible match).
    const again = await onboard({ person, device: tablet });
    // A stranger whose card the processor names as the same card as mine (a shared company card).
    const stranger = await onboard({
      person: { given_name: letters(), family_name: letters(), birth_date: birth(1980) },
      device: { fingerprint: `fp-${randomUUID()}` },
      payment_method: card(),
    });
    const fp = `card_fp_${randomUUID().replaceAll('-', '')}`;
    for (const id of [me.customer_id, stranger.customer_id])
      for (const pm of await walletOf(id)) await setCardOfMethod(h.graph, pm, { fingerprint: fp, network: 'visa' });

    const { body } = await matchesOf(me.customer_id);
    expect(body.data.map((m) => m.customer_id)).toEqual([again.customer_id, stranger.customer_id]);
    const [same, other] = body.data;
    expect(same?.probability).toBeGreaterThan(0.5);
    expect(other?.probability).toBeLessThan(0.05);
    expect(same?.conflicts).toEqual([]);
    expect(same?.comparisons.map((p) => `${p.comparison}.${p.level}`)).toEqual(
      expect.arrayContaining(['given_name.exact', 'family_name.exact', 'birth_date.exact', 'device.exact']),
    );
    expect(other?.conflicts.sort()).toEqual(['different dates of birth', 'different given names']);
    expect(other?.signals).toEqual(['card_fingerprint']);
    // Nothing of either person in words.
    const said = JSON.stringify(body);
    for (const secret of [person.given_name, person.family_name, person.birth_date]) expect(said).not.toContain(secret);

    // The same person removes the tablet from their devices: the evidence keeps it, and so does the model.
    const [tabletId] = (
      await h.graph.query<{ id: string }>(
        'MATCH (:Customer {id: $id})-[:LOGGED_IN_FROM]->(d:Device) RETURN d.id AS id',
        { id: again.customer_id },
      )
    ).map((r) => r.id);
    await removeDeviceFromCustomer(h.graph, again.customer_id, tabletId as string);
    const [after] = (await matchesOf(me.customer_id)).body.data;
    expect(after).toMatchObject({ customer_id: again.customer_id, probability: same?.probability });
    expect(after?.comparisons).toEqual(same?.comparisons);

    // Support staff (customers:read) get the probabilities and conflicts, not the model's comparisons.
    const staff = await matchesOf(me.customer_id, await h.token('customers:read'));
    expect(staff.body.data.map((m) => [m.customer_id, m.probability, m.comparisons])).toEqual([
      [again.customer_id, same?.probability, []],
      [stranger.customer_id, other?.probability, []],
    ]);
    expect(staff.body.data[1]?.conflicts).toEqual(other?.conflicts);
  });

  it('matches an address a shipment recorded with the same address given at onboarding', async () => {
    const street = `${Math.floor(Math.random() * 1e6)} Mill Road`;
    const shipper = await onboard({ device: { fingerprint: `fp-${randomUUID()}` } });
    const shipped = await h.app.request('/api/v1/interactions', {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.token('interactions:write')}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        data: [
          {
            id: `ship-${randomUUID()}`,
            type: 'shipment',
            customer_id: shipper.customer_id,
            occurred_at: new Date().toISOString(),
            address: { street1: street.toUpperCase(), city: 'Leeds', zip_code: 'LS1 4DY', country: 'GB' },
          },
        ],
      }),
    });
    expect(shipped.status).toBe(200);
    const later = await onboard({
      device: { fingerprint: `fp-${randomUUID()}` },
      address: { street1: street.replace('Road', 'Rd.'), city: 'Leeds', zip_code: 'ls14dy', country: 'GB' },
    });
    expect(await listMatchEvidence(h.graph, later.customer_id)).toMatchObject([
      { customer_id: shipper.customer_id, signals: ['address'], found_at: null },
    ]);
  });

  it('matches a US address given with its ZIP+4 to the same address given with its ZIP', async () => {
    const street = `${Math.floor(Math.random() * 1e6)} Forest St`;
    const address = { street1: street, city: 'San Francisco', state: 'CA', zip_code: '94134', country: 'US' };
    const first = await onboard({
      device: { fingerprint: `fp-${randomUUID()}` },
      address: { ...address, type: 'billing' },
    });
    const later = await onboard({
      device: { fingerprint: `fp-${randomUUID()}` },
      address: { ...address, street1: street.toUpperCase(), zip_code: '94134-8618', type: 'billing' },
    });
    expect(await listMatchEvidence(h.graph, later.customer_id)).toMatchObject([
      { customer_id: first.customer_id, signals: ['address'] },
    ]);
  });

  it('leaves out erased and merged records, and an erasure takes the name off its events', async () => {
    const fingerprint = `fp-gone-${randomUUID()}`;
    const first = await onboard({ device: { fingerprint } });
    const merged = await onboard({ device: { fingerprint } });
    const erased = await onboard({ device: { fingerprint } });
    const asked = await onboard({ device: { fingerprint } });
    expect(asked.possible_matches).toHaveLength(3);
    await h.graph.query("MATCH (c:Customer {id: $id}) SET c.status = 'merged', c.merged_into = $into", {
      id: merged.customer_id,
      into: first.customer_id,
    });
    expect(await eraseCustomer(h.graph, erased.customer_id)).toMatchObject({ erased: true });

    const { body } = await matchesOf(asked.customer_id);
    expect(body.data.map((m) => m.customer_id)).toEqual([first.customer_id]);
    // Three customers still log in from it (the erased one's login went with it).
    expect(body.data[0]?.parts).toEqual([
      expect.objectContaining({ signal: 'device', details: expect.objectContaining({ shared_by: 3 }) }),
    ]);
    const named = await h.graph.query<{ n: number }>(
      "MATCH (f:Fact {customer_id: $id, type: 'PossibleMatchFound'}) WHERE f.about IS NOT NULL " +
        'RETURN count(f) AS n',
      { id: erased.customer_id },
    );
    expect(named[0]?.n).toBe(0);
  });

  it('admits identity:merge and customers:read, and refuses a customer’s own token and other scopes', async () => {
    const me = await onboard({ device: { fingerprint: `fp-${randomUUID()}` } });
    expect((await matchesOf(me.customer_id, await h.token('customers:read'))).status).toBe(200);
    expect((await matchesOf(me.customer_id, await h.token('ops'))).status).toBe(200);
    expect((await matchesOf(me.customer_id, await h.token('self', me.customer_id))).status).toBe(403);
    expect((await matchesOf(me.customer_id, await h.token('context:read'))).status).toBe(403);
    expect((await matchesOf(randomUUID())).status).toBe(404);
  });
});

describe('the read is bounded', () => {
  const SHARED = 3_000;
  let deviceId: string;
  let crowd: string[] = [];

  beforeAll(async () => {
    deviceId = randomUUID();
    await h.graph.query('CREATE (:Device {id: $id, fingerprint: $fp, trust_score: 0.5})', {
      id: deviceId,
      fp: `fp-crowd-${randomUUID()}`,
    });
    crowd = await seedDeviceCustomers(h.graph, deviceId, SHARED);
  });
  afterAll(async () => {
    if (!deviceId) return;
    await h.graph.query(
      'UNWIND $ids AS id MATCH (:Customer {id: id})-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod) DETACH DELETE p',
      { ids: crowd.slice(0, 2) },
    );
    await removeDeviceCustomers(h.graph, deviceId, crowd);
    await h.graph.query('MATCH (d:Device {id: $id}) DETACH DELETE d', { id: deviceId });
  });

  it('a device of thousands names no candidate, costs a few rows, counts 0 in a match found otherwise', async () => {
    const [me, other] = crowd as [string, string];
    expect(await listMatchEvidence(h.graph, me)).toEqual([]);

    // The same card on two of them: a match, the crowded device in it naming nobody, weighed as common.
    const fp = `card_fp_${randomUUID()}`;
    await h.graph.query(
      `UNWIND $ids AS id MATCH (c:Customer {id: id})
       CREATE (c)-[:HAS_PAYMENT_METHOD {is_default: true}]->(:PaymentMethod {id: randomUUID(), type: 'card',
         status: 'active', brand: 'mastercard', last_four: '4444', expiry_month: 6, expiry_year: 2030,
         card_fingerprint: $fp, card_network: 'mastercard'})`,
      { ids: [me, other], fp },
    );
    const [match] = (await listMatchEvidence(h.graph, me)) ?? [];
    expect(match).toMatchObject({ customer_id: other, signals: ['card_fingerprint', 'device'] });
    expect(match?.parts[1]).toMatchObject({
      signal: 'device',
      reason: expect.stringMatching(/which more than 5 customers use: too widely shared to name candidates$/),
      details: { shared_by: 6, shared_beyond_limit: true },
    });
    // The model counts the device's holders up to 51: a crowd's device says less than the card.
    const device = match?.comparisons.find((p) => p.comparison === 'device');
    const card = match?.comparisons.find((p) => p.comparison === 'card');
    expect(device?.level).toBe('exact');
    expect(device?.bits).toBeLessThan(card?.bits ?? 0);

    const profiled = await h.graph.driver.executeQuery(`PROFILE ${MATCH_EVIDENCE}`, matchEvidenceParams(h.graph, me), {
      database: h.graph.database,
    });
    const hits = (p: { dbHits: number; children: unknown[] }): number =>
      p.dbHits + p.children.reduce<number>((n, c) => n + hits(c as typeof p), 0);
    const dbHits = hits(profiled.summary.profile as unknown as { dbHits: number; children: unknown[] });
    console.log(`match evidence on a device of ${SHARED} customers: ${dbHits} db hits`);
    expect(dbHits).toBeLessThan(SHARED / 3);
    // The model's count of the device's holders stops at 51 too.
    const fingerprint = (
      await h.graph.query<{ fp: string }>('MATCH (d:Device {id: $id}) RETURN d.fingerprint AS fp', { id: deviceId })
    )[0]?.fp;
    const counted = await h.graph.driver.executeQuery(
      `PROFILE ${CUSTOMER_HOLDERS}`,
      { identifiers: [], names: [], addresses: [], devices: [fingerprint], cards: [], cap: 51 },
      { database: h.graph.database },
    );
    const countHits = hits(counted.summary.profile as unknown as { dbHits: number; children: unknown[] });
    console.log(`the model's holder counts on a device of ${SHARED} customers: ${countHits} db hits`);
    expect(countHits).toBeLessThan(SHARED / 3);
  });

  it('finds the others by index seeks: facts naming the customer, a card fingerprint, an address key', async () => {
    const plan = await h.graph.driver.executeQuery(
      `EXPLAIN ${MATCH_EVIDENCE}`,
      matchEvidenceParams(h.graph, crowd[0] as string),
      { database: h.graph.database },
    );
    const ops: string[] = [];
    const walk = (p: { operatorType: string; arguments: { Details?: string }; children: unknown[] }) => {
      ops.push(`${p.operatorType} ${p.arguments.Details ?? ''}`);
      p.children.forEach((c) => walk(c as typeof p));
    };
    walk(plan.summary.plan as never);
    const said = ops.join('\n');
    expect(said).toMatch(/NodeIndexSeek.*Fact\(about, type, at\)/);
    expect(said).toMatch(/NodeIndexSeek.*Fact\(customer_id, type, at\)/);
    // Possible matches are facts: the event history is not read at all.
    expect(said).not.toMatch(/:Event/);
    expect(said).toMatch(/NodeIndexSeek.*PaymentMethod\(card_fingerprint\)/);
    expect(said).toMatch(/NodeIndexSeek.*Address\(match_key\)/);
    expect(said).not.toMatch(/NodeByLabelScan|AllNodesScan/);
  });
});
