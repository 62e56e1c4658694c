/**
 * Identity merges end to end: the api, a real worker on the real Temporal, the real Neo4j. Each
 * test builds its own customers. Notifications go to a sink that keeps them, so a test reads the
 * consent code a customer would read in their message.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eraseCustomer } from '../../graph/erasure';
import { createRecoveryActivities, type ChargeAttempt, type ChargeOutcome } from '../../activities/recovery';
import { HttpPaymentGateway } from '../../clients/paymentGateway';
import { profileRules } from '../../config/env';
import { applyFraudOutcome } from '../../graph/fraud';
import { loadRuleTable } from '../../payments/ruleTables';
import type { Notification, NotificationSink } from '../../clients/notifications';
import {
  addAddress,
  addPaymentMethod,
  getAddressesByCustomer,
  getDigitalIdentifiersByCustomer,
  getPaymentMethodsByCustomer,
  linkDevice,
  listCustomerEvents,
  readTx,
  removePaymentMethod,
  updateCustomer,
} from '../../graph';
import type { ErasureOutcome } from '../../temporal/erasure';
import { identityMergeWorkflowId, type IdentityMergeStatus } from '../../temporal/identityMerge';
import { startHarness, type Harness } from '../support/api';
import { mergeInGraph, seedCustomer } from '../support/builders';
import { send } from '../support/http';
import { until } from '../support/wait';
import { paymentId as newPaymentId } from '../support/recovery';

const sent: Notification[] = [];
const sink: NotificationSink = {
  async send(n) {
    sent.push(n);
  },
};

let h: Harness;
let ops: string;
beforeAll(async () => {
  h = await startHarness({ notifications: () => sink });
  ops = await h.token('ops');
});
afterAll(() => h?.close());

const call = (method: string, path: string, token: string, body?: unknown) =>
  send(h.app, method, path, { token, body });

/** A customer with a verified email, cards (the first the default), a device, an address and an LTV. */
async function customer(opts: { cards: number; ltvMinor: number; device?: string; logins?: number }) {
  const { customerId: id, cards } = await seedCustomer(h.graph, {
    ltvMinor: opts.ltvMinor,
    emailTag: 'user',
    cards: Array.from({ length: opts.cards }, (_, i) => ({
      token: `tok_visa_${randomUUID()}`,
      last_four: String(2000 + i),
    })),
  });
  const fingerprint = opts.device ?? `fp-${randomUUID()}`;
  const ip = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
  for (let i = 0; i < (opts.logins ?? 1); i++)
    await linkDevice(h.graph, id, { fingerprint, trust_score: 0.5, ip, user_agent: `agent-${id}` });
  const address = await addAddress(h.graph, id, {
    street1: `${Math.floor(Math.random() * 900) + 1} Main St`,
    city: 'Springfield',
    zip_code: '12345',
    country: 'US',
    type: 'shipping',
    is_default: true,
  });
  return { id, cards, fingerprint, address: address.id };
}

/** What the graph holds of a customer, read raw (a tombstone too). */
async function raw(id: string) {
  return readTx(h.graph, async (tx) => {
    const r = (
      await tx.run(
        `MATCH (c:Customer {id: $id})
         OPTIONAL MATCH (c)-[l:LOGGED_IN_FROM]->(d:Device)
         WITH c, collect({fingerprint: d.fingerprint, logins: l.login_count, ip: l.last_seen_ip,
                          agent: l.last_seen_user_agent, first: toString(l.first_login),
                          last: toString(l.last_login), trust: l.trust_score}) AS devices
         RETURN c.status AS status, c.merged_into AS mergedInto, c.ltv AS ltv, valueType(c.ltv) AS ltvType, devices`,
        { id },
      )
    ).records[0];
    return {
      status: r?.get('status') as string,
      merged_into: (r?.get('mergedInto') as string | null) ?? null,
      ltv: Number(r?.get('ltv')),
      // Minor units are integers in the graph: a float would be read as major units.
      ltvType: r?.get('ltvType') as string,
      devices: (
        r?.get('devices') as { fingerprint: string | null; logins: unknown; ip: string | null; trust: unknown }[]
      )
        .filter((d) => d.fingerprint)
        .map((d) => ({ ...d, logins: Number(d.logins) }))
        .sort((a, b) => (a.fingerprint ?? '').localeCompare(b.fingerprint ?? '')),
    };
  });
}

/** A merge straight in the graph: no workflow, so no signal tells anyone. */
const mergeDirectly = (survivorId: string, mergedId: string) => mergeInGraph(h.graph, survivorId, mergedId);
const propose = (body: Record<string, unknown>, token = ops) => call('POST', '/api/v1/identity-merges', token, body);
const statusOf = async (mergeId: string) =>
  (await call('GET', `/api/v1/identity-merges/${mergeId}`, ops)).json as unknown as IdentityMergeStatus;
const waitFor = async (mergeId: string, state: IdentityMergeStatus['state']) =>
  until(async () => (await statusOf(mergeId)).state === state);
const defaults = async (id: string) =>
  (await getPaymentMethodsByCustomer(h.graph, id)).filter((m) => m.is_default).map((m) => m.id);

describe('identity merge, end to end', () => {
  it('ops merge: everything moves, one default, exact LTV, a tombstone, both histories; undo restores it', async () => {
    const shared = `fp-${randomUUID()}`;
    const a = await customer({ cards: 1, ltvMinor: 1000, device: shared, logins: 2 });
    const b = await customer({ cards: 2, ltvMinor: 525, device: shared, logins: 3 });
    const bOwnDevice = `fp-${randomUUID()}`;
    await linkDevice(h.graph, b.id, { fingerprint: bOwnDevice, trust_score: 0.85 });
    // What each earned on the shared device is theirs: the undo gives each its own back.
    await h.graph.query(
      `MATCH (c:Customer)-[l:LOGGED_IN_FROM]->(:Device {fingerprint: $shared}) WHERE c.id IN [$a, $b]
       SET l.trust_score = CASE c.id WHEN $a THEN 0.8 ELSE 0.6 END`,
      { shared, a: a.id, b: b.id },
    );
    const before = { a: await raw(a.id), b: await raw(b.id) };
    const bIdentifiers = (await getDigitalIdentifiersByCustomer(h.graph, b.id)).map((i) => i.id);

    const started = await propose({ survivor_id: a.id, merged_id: b.id, consent: false, reason: 'same person' });
    expect(started.status).toBe(202);
    const mergeId = started.json.merge_id as string;
    expect(mergeId).toBe(identityMergeWorkflowId(b.id, a.id));
    await waitFor(mergeId, 'merged');

    const wallet = await getPaymentMethodsByCustomer(h.graph, a.id);
    expect(wallet.map((m) => m.id).sort()).toEqual([...a.cards, ...b.cards].sort());
    expect(await defaults(a.id)).toEqual([a.cards[0]]);
    const after = await raw(a.id);
    expect(after).toMatchObject({ ltv: 1525, ltvType: 'INTEGER NOT NULL' });
    expect(after.devices.map((d) => ({ fingerprint: d.fingerprint, logins: d.logins, trust: d.trust }))).toEqual(
      [
        { fingerprint: shared, logins: 5, trust: 0.8 },
        { fingerprint: bOwnDevice, logins: 1, trust: 0.85 },
      ].sort((x, y) => x.fingerprint.localeCompare(y.fingerprint)),
    );
    // The login details stay out of the event log: the manifest has counts and times, never an IP.
    const [mergedEvent] = await listCustomerEvents(h.graph, b.id, { type: 'CustomersMerged' });
    expect(JSON.stringify(mergedEvent?.payload)).not.toContain('203.0.113.');
    expect((await getAddressesByCustomer(h.graph, a.id)).map((x) => x.id).sort()).toEqual(
      [a.address, b.address].sort(),
    );
    // Exactly one default shipping address: the survivor's.
    expect((await getAddressesByCustomer(h.graph, a.id)).filter((x) => x.is_default).map((x) => x.id)).toEqual([
      a.address,
    ]);
    expect((await getDigitalIdentifiersByCustomer(h.graph, a.id)).map((i) => i.id)).toEqual(
      expect.arrayContaining(bIdentifiers),
    );
    expect(await raw(b.id)).toMatchObject({ status: 'merged', merged_into: a.id, ltv: 0, devices: [] });
    expect(await getPaymentMethodsByCustomer(h.graph, b.id)).toEqual([]);

    // The manifest on both customers' logs; both histories say it in words.
    for (const id of [a.id, b.id]) {
      const [event] = await listCustomerEvents(h.graph, id, { type: 'CustomersMerged' });
      expect(event?.payload).toMatchObject({ survivor_id: a.id, merged_id: b.id, decided_by: 'ops' });
      expect(event?.payload.manifest).toMatchObject({
        ltv: { survivor_before: 1000, merged: 525, survivor_after: 1525 },
      });
    }
    const history = await call('GET', `/api/v1/customers/${a.id}/events`, ops);
    expect(JSON.stringify(history.json)).toContain(`was merged into ${a.id} by support`);

    // A repeat, either way round, is the same merge.
    const repeat = await propose({ survivor_id: b.id, merged_id: a.id, consent: false });
    expect(repeat).toMatchObject({ status: 200, json: { merge_id: mergeId, survivor_id: a.id } });

    const undone = await call('POST', `/api/v1/identity-merges/${mergeId}/undo`, ops, { reason: 'two people' });
    expect(undone.status).toBe(200);
    expect(undone.json).toMatchObject({ state: 'undone', unmerge: { not_restored: [] } });
    expect(await raw(a.id)).toEqual(before.a);
    expect(await raw(b.id)).toEqual(before.b);
    expect((await getPaymentMethodsByCustomer(h.graph, b.id)).map((m) => m.id).sort()).toEqual([...b.cards].sort());
    expect(await defaults(b.id)).toEqual([b.cards[0]]);
    expect(await defaults(a.id)).toEqual([a.cards[0]]);
    expect((await getDigitalIdentifiersByCustomer(h.graph, b.id)).map((i) => i.id).sort()).toEqual(
      [...bIdentifiers].sort(),
    );
    expect((await getAddressesByCustomer(h.graph, b.id)).map((x) => [x.id, x.is_default])).toEqual([[b.address, true]]);
    const [unmerged] = await listCustomerEvents(h.graph, b.id, { type: 'CustomersUnmerged' });
    expect(unmerged?.payload).toMatchObject({ reason: 'two people', not_restored: [] });
    // The workflow closed: no second undo.
    expect((await call('POST', `/api/v1/identity-merges/${mergeId}/undo`, ops, { reason: 'again' })).status).toBe(409);
  });

  it('with consent: each record asked by its verified email; the second consent merges at once', async () => {
    const a = await customer({ cards: 1, ltvMinor: 0 });
    const b = await customer({ cards: 1, ltvMinor: 100 });
    // A customer of one record proposes: consent is always asked of both.
    const self = await h.token('self', b.id);
    const started = await propose({ survivor_id: a.id, merged_id: b.id, consent: false }, self);
    expect(started.status).toBe(202);
    const mergeId = started.json.merge_id as string;
    await waitFor(mergeId, 'awaiting_consent');
    const code = (id: string) =>
      String(sent.find((n) => n.customer_id === id && n.kind === 'merge_consent')?.data.code);
    expect(sent.filter((n) => n.kind === 'merge_consent' && [a.id, b.id].includes(n.customer_id))).toHaveLength(2);

    // The other record's token cannot answer for it, and a wrong code is refused.
    const wrongSelf = await call('POST', `/api/v1/identity-merges/${mergeId}/confirm`, self, {
      customer_id: a.id,
      code: code(a.id),
    });
    expect(wrongSelf.status).toBe(403);
    const wrong = await call('POST', `/api/v1/identity-merges/${mergeId}/confirm`, self, {
      customer_id: b.id,
      code: 'NOTTHECODE',
    });
    expect(wrong).toMatchObject({ status: 409 });
    expect(String(wrong.json.detail)).toContain('not the one sent');

    const first = await call('POST', `/api/v1/identity-merges/${mergeId}/confirm`, self, {
      customer_id: b.id,
      code: code(b.id),
    });
    expect(first).toMatchObject({ status: 200, json: { state: 'awaiting_consent' } });
    expect((await raw(b.id)).status).toBe('active');
    const aSelf = await h.token('self', a.id);
    const second = await call('POST', `/api/v1/identity-merges/${mergeId}/confirm`, aSelf, {
      customer_id: a.id,
      code: code(a.id),
    });
    expect(second).toMatchObject({ status: 200, json: { state: 'merged', decided_by: 'consent' } });
    expect(await raw(b.id)).toMatchObject({ status: 'merged', merged_into: a.id });
    // A second answer is refused.
    const again = await call('POST', `/api/v1/identity-merges/${mergeId}/decline`, aSelf, {
      customer_id: a.id,
      code: code(a.id),
    });
    expect(again.status).toBe(409);
  });

  it('a suspended customer is never merged: 409 naming why, and nothing is started or written', async () => {
    const a = await customer({ cards: 1, ltvMinor: 0 });
    const b = await customer({ cards: 1, ltvMinor: 0 });
    await updateCustomer(h.graph, b.id, { status: 'suspended' });
    const eventsBefore = await listCustomerEvents(h.graph, b.id, { limit: 500 });
    const refused = await propose({ survivor_id: a.id, merged_id: b.id, consent: false });
    expect(refused.status).toBe(409);
    expect(String(refused.json.detail)).toContain(`customer ${b.id} is suspended`);
    expect(await listCustomerEvents(h.graph, b.id, { limit: 500 })).toEqual(eventsBefore);
    expect((await call('GET', `/api/v1/identity-merges/${identityMergeWorkflowId(a.id, b.id)}`, ops)).status).toBe(404);
    expect((await raw(b.id)).status).toBe('suspended');
    // Nor by the suspended customer's own token (a taken-over account cannot merge itself away).
    const suspendedSelf = await propose({ survivor_id: a.id, merged_id: b.id }, await h.token('self', b.id));
    expect(suspendedSelf.status).toBe(409);
    expect(await listCustomerEvents(h.graph, b.id, { limit: 500 })).toEqual(eventsBefore);
    // Nor is a customer merged into itself (well-formed, so 409, not 400).
    const itself = await propose({ survivor_id: a.id, merged_id: a.id, consent: false });
    expect(itself.status).toBe(409);
    expect(String(itself.json.detail)).toContain('cannot be merged into itself');
  });

  it('two merges racing on the same pair, either way round, end as one', async () => {
    const a = await customer({ cards: 1, ltvMinor: 300 });
    const b = await customer({ cards: 1, ltvMinor: 200 });
    const answers = await Promise.all([
      propose({ survivor_id: a.id, merged_id: b.id, consent: false }),
      propose({ survivor_id: b.id, merged_id: a.id, consent: false }),
      propose({ survivor_id: a.id, merged_id: b.id, consent: false }),
    ]);
    expect(answers.filter((r) => r.status === 202)).toHaveLength(1);
    expect(answers.every((r) => r.status === 202 || r.status === 200)).toBe(true);
    const mergeId = identityMergeWorkflowId(a.id, b.id);
    expect(new Set(answers.map((r) => r.json.merge_id))).toEqual(new Set([mergeId]));
    await waitFor(mergeId, 'merged');
    const states = [await raw(a.id), await raw(b.id)];
    expect(states.filter((s) => s.status === 'merged')).toHaveLength(1);
    expect(states.reduce((sum, s) => sum + s.ltv, 0)).toBe(500);
    const events = [
      ...(await listCustomerEvents(h.graph, a.id, { type: 'CustomersMerged' })),
      ...(await listCustomerEvents(h.graph, b.id, { type: 'CustomersMerged' })),
    ];
    expect(events).toHaveLength(2);
  });

  it('a chain A→B then B→C leaves A pointing at C; the undo of the first waits for the second', async () => {
    const a = await customer({ cards: 1, ltvMinor: 1 });
    const b = await customer({ cards: 1, ltvMinor: 2 });
    const c = await customer({ cards: 1, ltvMinor: 4 });
    const first = await propose({ survivor_id: b.id, merged_id: a.id, consent: false });
    await waitFor(first.json.merge_id as string, 'merged');
    const second = await propose({ survivor_id: c.id, merged_id: b.id, consent: false });
    await waitFor(second.json.merge_id as string, 'merged');
    expect(await raw(a.id)).toMatchObject({ status: 'merged', merged_into: c.id });
    expect(await raw(c.id)).toMatchObject({ status: 'active', ltv: 7 });
    expect((await getPaymentMethodsByCustomer(h.graph, c.id)).map((m) => m.id).sort()).toEqual(
      [...a.cards, ...b.cards, ...c.cards].sort(),
    );
    // A merged record is never merged again.
    const again = await propose({ survivor_id: c.id, merged_id: a.id, consent: false });
    expect(again.status).toBe(409);
    // The first merge's survivor is a tombstone now: undo the later merge first.
    const early = await call('POST', `/api/v1/identity-merges/${first.json.merge_id as string}/undo`, ops, {
      reason: 'too early',
    });
    expect(early.status).toBe(409);
    expect(String(early.json.detail)).toContain('undo that merge first');
    const undoSecond = await call('POST', `/api/v1/identity-merges/${second.json.merge_id as string}/undo`, ops, {
      reason: 'b is not c',
    });
    expect(undoSecond.status).toBe(200);
    expect(await raw(a.id)).toMatchObject({ status: 'merged', merged_into: b.id });
    expect(await raw(b.id)).toMatchObject({ status: 'active', ltv: 3 });
    const undoFirst = await call('POST', `/api/v1/identity-merges/${first.json.merge_id as string}/undo`, ops, {
      reason: 'a is not b',
    });
    expect(undoFirst.status).toBe(200);
    expect(await raw(a.id)).toMatchObject({ status: 'active', ltv: 1 });
  });

  it('an undo reports what changed since, and what was added to the survivor stays with it', async () => {
    const a = await customer({ cards: 1, ltvMinor: 0 });
    const b = await customer({ cards: 2, ltvMinor: 0 });
    const started = await propose({ survivor_id: a.id, merged_id: b.id, consent: false });
    const mergeId = started.json.merge_id as string;
    await waitFor(mergeId, 'merged');
    await removePaymentMethod(h.graph, a.id, b.cards[1] as string);
    const added = await addPaymentMethod(h.graph, a.id, {
      type: 'card',
      token: `tok_visa_${randomUUID()}`,
      brand: 'visa',
      last_four: '4242',
      expiry_month: 1,
      expiry_year: 2036,
    });
    const undone = await call('POST', `/api/v1/identity-merges/${mergeId}/undo`, ops, { reason: 'mistake' });
    expect(undone.status).toBe(200);
    expect(undone.json.unmerge).toMatchObject({
      restored: { payment_methods: [b.cards[0]] },
      not_restored: [{ kind: 'payment_method', id: b.cards[1], reason: expect.stringContaining('removed') }],
    });
    expect((await getPaymentMethodsByCustomer(h.graph, a.id)).map((m) => m.id).sort()).toEqual(
      [a.cards[0], added.id].sort(),
    );
    expect((await getPaymentMethodsByCustomer(h.graph, b.id)).map((m) => m.id)).toEqual([b.cards[0]]);
  });

  it('a recovery of the merged id, not yet told of the merge, charges and records the survivor', async () => {
    // The merge commits before its signal reaches the recovery: the activities, given the old id,
    // follow the tombstone (here with no workflow at all, so no signal can help).
    const a = await customer({ cards: 1, ltvMinor: 0 });
    const b = await customer({ cards: 1, ltvMinor: 0 });
    const token = `card-${randomUUID().replace(/[^a-f]/g, 'g')}`;
    const card = await addPaymentMethod(h.graph, b.id, {
      type: 'card',
      token,
      brand: 'visa',
      last_four: '4242',
      expiry_month: 12,
      expiry_year: 2035,
    });
    await mergeDirectly(a.id, b.id);
    const gateway = new HttpPaymentGateway(h.graph.config.PERSONA_GATEWAY_URL, 5000);
    const activities = createRecoveryActivities({
      graph: h.graph,
      gateway,
      cards: gateway,
      updater: gateway,
      networkRules: loadRuleTable(),
      trustThreshold: h.graph.config.PERSONA_TRUST_THRESHOLD,
      profileRules: profileRules(h.graph.config),
    });
    // With the start-to-close the workflow gives the charge.
    const env = () => new MockActivityEnvironment({ startToCloseTimeoutMs: 120_000 });
    type Req = { customer_id: string; exclude: string[] };
    type Candidates = { payment_method_id: string }[];
    const candidates = await env().run<[Req], Candidates, (x: Req) => Promise<Candidates>>(
      (x) => activities.listRecoveryCandidates(x),
      { customer_id: b.id, exclude: [] },
    );
    expect(candidates.map((c) => c.payment_method_id)).toContain(card.id);
    const paymentId = newPaymentId();
    const attempt: ChargeAttempt = {
      payment_id: paymentId,
      customer_id: b.id,
      payment_method_id: card.id,
      amount: 1999,
      currency: 'USD',
      idempotency_key: `${paymentId}:${card.id}`,
    };
    const outcome = await env().run<[ChargeAttempt], ChargeOutcome, (x: ChargeAttempt) => Promise<ChargeOutcome>>(
      (x) => activities.chargePaymentMethod(x),
      attempt,
    );
    expect(outcome).toMatchObject({ outcome: 'succeeded' });
    await env().run((x: Parameters<typeof activities.recordRecovery>[0]) => activities.recordRecovery(x), {
      payment_id: paymentId,
      customer_id: b.id,
      payment_method_id: card.id,
      charge_id: 'charge_id' in outcome ? (outcome.charge_id as string) : 'none',
      amount: 1999,
      currency: 'USD',
    });
    const [recovered] = await listCustomerEvents(h.graph, a.id, { type: 'PaymentRecovered' });
    expect(recovered?.payload).toMatchObject({ payment_id: paymentId, payment_method_id: card.id });
    expect(await listCustomerEvents(h.graph, b.id, { type: 'PaymentRecovered' })).toEqual([]);
    expect(await raw(b.id)).toMatchObject({ status: 'merged', ltv: 0 });
  });

  it('a fraud outcome for the merged id, reported before the merge, suspends the survivor only', async () => {
    const a = await customer({ cards: 1, ltvMinor: 0 });
    const b = await customer({ cards: 1, ltvMinor: 0 });
    await mergeDirectly(a.id, b.id);
    const applied = await applyFraudOutcome(
      h.graph,
      { outcome_id: `o-${randomUUID()}`, customer_id: b.id, outcome: 'account_takeover' },
      { trustStep: 0.1 },
    );
    expect(applied).toMatchObject({ suspended: true, changes: [{ entity: 'customer', id: a.id, to: 'suspended' }] });
    expect(await raw(a.id)).toMatchObject({ status: 'suspended' });
    expect(await raw(b.id)).toMatchObject({ status: 'merged', merged_into: a.id });
  });

  it('erasing the survivor after a merge erases both records’ personal data', async () => {
    const a = await customer({ cards: 1, ltvMinor: 0 });
    const b = await customer({ cards: 1, ltvMinor: 0 });
    const started = await propose({ survivor_id: a.id, merged_id: b.id, consent: false });
    await waitFor(started.json.merge_id as string, 'merged');
    const erase = await call('DELETE', `/api/v1/customers/${a.id}`, ops);
    expect(erase.status).toBe(202);
    const outcome = (await h.client.workflow.getHandle(`erasure-${a.id}`).result()) as ErasureOutcome;
    // The erasure names both records as erased, the merged one too.
    expect(outcome).toMatchObject({ customer_id: a.id, erased: true });
    expect([...(outcome.erased_records ?? [])].sort()).toEqual([a.id, b.id].sort());
    for (const id of [a.id, b.id]) {
      expect((await raw(id)).status).toBe('erased');
      const events = await listCustomerEvents(h.graph, id, { limit: 500 });
      // Every event of both records is emptied (CustomerErased itself says only what was deleted).
      for (const e of events.filter((x) => x.type !== 'CustomerErased')) expect(e.payload).toEqual({});
    }
    expect(await getDigitalIdentifiersByCustomer(h.graph, a.id)).toEqual([]);
    expect(outcome.erased_records).toEqual([a.id, b.id]);
  });

  it('names every record it erased even when an attempt that died had erased the merged one already', async () => {
    const a = await customer({ cards: 1, ltvMinor: 0 });
    const b = await customer({ cards: 1, ltvMinor: 0 });
    const started = await propose({ survivor_id: a.id, merged_id: b.id, consent: false });
    await waitFor(started.json.merge_id as string, 'merged');
    // The first attempt erased the merged record, then its worker died before the survivor's turn.
    await eraseCustomer(h.graph, b.id, { asMergedInto: a.id });
    expect((await raw(b.id)).status).toBe('erased');
    // The retry still knows b was a's: the erasure's record (and so a restore) misses nothing.
    const retried = await eraseCustomer(h.graph, a.id);
    expect(retried).toMatchObject({ erased: true, merged_records: [b.id] });
    const again = await eraseCustomer(h.graph, a.id);
    expect(again).toMatchObject({ erased: false, merged_records: [b.id] });
  });
});
