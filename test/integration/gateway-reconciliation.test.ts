/**
 * The gateway reconciliation's activities on the real Neo4j and Temporal, against a private
 * gateway simulator (so the window holds only this test's charges): a charge the graph lost is
 * recorded, a token the issuer revoked deactivates its method, and what is not safe to repair is
 * flagged — a second charge of a recovered payment, a charge of an erased customer, a charge of a
 * payment recorded as failed, a recorded recovery the gateway never charged. A charge whose
 * recovery still runs is left to it. Run again, nothing is repaired twice. A recovery's charge
 * of a customer merged since, made before the merge or after, is recorded on the survivor; a
 * charge of anyone else under its key is not. A charge the gateway still has as processing is
 * left for a later run, neither recorded nor flagged, until it has ended. A recovery the charge
 * ledger has still recovering that no workflow runs (terminated, never started) is flagged
 * stranded; one whose workflow runs is not.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReconciliationActivities, REVOKED_REASON } from '../../activities/reconciliation';
import { HttpPaymentGateway } from '../../clients/paymentGateway';
import { loadSettings, profileRules } from '../../config/env';
import {
  addPaymentMethod,
  createCustomer,
  getCustomer,
  getPaymentMethodsByCustomer,
  listCustomerEvents,
} from '../../graph';
import { eraseCustomer } from '../../graph/erasure';
import { recordRecovery, recordRecoveryFailed } from '../../graph/recovery';
import { createGatewaySimulator } from '../../simulators/gateway/app';
import { connectTemporal } from '../../temporal/connection';
import {
  emptyCounts,
  type ChargesPageResult,
  type Flag,
  type PageResult,
  type PendingPageResult,
  type RecoveriesPageResult,
  type Repair,
  type StrandedPageResult,
} from '../../temporal/reconciliation';
import {
  paymentFailedSignal,
  RECOVERY_WORKFLOW_TYPE,
  recoveryWorkflowId,
  type PaymentFailure,
} from '../../temporal/recovery';
import { reserveRecovery, startRecovery } from '../../graph/chargeLedger';
import { provisionHistoryKey } from '../../graph/historyKeys';
import { personaCustomerId } from '../../temporal/searchAttributes';
import { mergeInGraph, seedCustomer } from '../support/builders';
import { cardInput, openTestGraph, testPayloadCodec, type TestGraph } from '../support/graph';

let g: TestGraph;
let server: ServerType;
let base: string;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  g = openTestGraph();
  ({ connection, client } = await connectTemporal(loadSettings(), { payloadCodec: testPayloadCodec(g) }));
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'gateway-reconcile-')), 'charges.jsonl');
  await new Promise<void>((resolve) => {
    server = serve({ fetch: createGatewaySimulator(file).fetch, hostname: '127.0.0.1', port: 0 }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await connection.close();
  await g.close();
});

const gateway = () => new HttpPaymentGateway(base, 5000);

async function customerWithCard(token = `tok_${randomUUID()}`) {
  const c = await seedCustomer(g, { cards: [{ token }] });
  return { customer: c.customerId, card: c.cardId, token };
}

async function charge(who: { customer: string; token: string }, key: string, amount = 1999) {
  return gateway().charge({
    idempotency_key: key,
    token: who.token,
    amount,
    currency: g.policy.reportingCurrency,
    customer_id: who.customer,
    initiator: 'mit',
    reference: key.split(':')[0] as string,
  });
}

/** Both passes over the window, a page of three at a time, as the workflow runs them. */
async function reconcile(window: { from: string; to: string }, gatewayRecords = gateway()) {
  const activities = createReconciliationActivities({
    graph: g,
    gatewayRecords,
    temporal: client,
    profileRules: profileRules(loadSettings()),
  });
  const env = new MockActivityEnvironment();
  const all: PageResult = {
    counts: emptyCounts(),
    repairs: [],
    flags: [],
  };
  const add = (p: PageResult) => {
    for (const k of Object.keys(all.counts) as (keyof PageResult['counts'])[]) all.counts[k] += p.counts[k];
    all.repairs.push(...p.repairs);
    all.flags.push(...p.flags);
  };
  let after: string | null = null;
  do {
    const page: ChargesPageResult = await env.run((req) => activities.reconcileChargesPage(req), {
      ...window,
      starting_after: after,
      limit: 3,
    });
    add(page);
    after = page.next;
  } while (after !== null);
  let pending: string | null = null;
  do {
    const page: PendingPageResult = await env.run((req) => activities.reconcilePendingPage(req), {
      after: pending,
      limit: 3,
    });
    add(page);
    pending = page.next;
  } while (pending !== null);
  let cursor: { occurred_at: string; id: string } | null = null;
  do {
    const page: RecoveriesPageResult = await env.run((req) => activities.reconcileRecoveriesPage(req), {
      ...window,
      after: cursor,
      limit: 50,
    });
    add(page);
    cursor = page.next;
  } while (cursor !== null);
  return all;
}

const mine = (ids: string[]) => (x: Flag | Repair) => ids.includes(x.customer_id);

/** A recovery of the customer's payment as Temporal has it, on a queue nobody polls: running, or ended. */
async function recoveryRun(paymentId: string, customerId: string, ended: boolean) {
  const handle = await client.workflow.start('paymentRecoveryWorkflow', {
    taskQueue: `nobody-${randomUUID()}`,
    workflowId: recoveryWorkflowId(paymentId),
    args: [],
    typedSearchAttributes: [{ key: personaCustomerId, value: customerId }],
  });
  if (ended) await handle.terminate('ended by the test (as a recovery cancelled by ops)');
  return handle;
}

describe('reconciliation with the gateway', () => {
  it('repairs what is safe, flags the rest, settles what was pending, and repairs nothing twice', async () => {
    const from = new Date(Date.now() - 60_000).toISOString();
    const pay = (tag: string) => `pay-${tag}-${randomUUID()}`;
    const currency = g.policy.reportingCurrency;

    // A: charged by its recovery, which ended without recording it (or a restore lost the record).
    const a = await customerWithCard();
    const payA = pay('a');
    await recoveryRun(payA, a.customer, true);
    const chargedA = await charge(a, `${payA}:${a.card}`);
    // B: recovered by its first charge, then charged again by another method.
    const b = await customerWithCard();
    const b2Token = `tok_${randomUUID()}`;
    const b2 = await addPaymentMethod(g, b.customer, cardInput({ token: b2Token }));
    const payB = pay('b');
    const first = await charge(b, `${payB}:${b.card}`);
    if (first.outcome !== 'succeeded') throw new Error('the first charge should succeed');
    await recordRecovery(g, {
      payment_id: payB,
      customer_id: b.customer,
      payment_method_id: b.card,
      charge_id: first.charge_id,
      amount: 1999,
      currency,
    });
    await charge({ customer: b.customer, token: b2Token }, `${payB}:${b2.id}:r1`);
    // C: recovered and recorded; the issuer revokes the card's token afterwards.
    const c = await customerWithCard();
    const payC = pay('c');
    const chargedC = await charge(c, `${payC}:${c.card}`);
    if (chargedC.outcome !== 'succeeded') throw new Error('the charge should succeed');
    await recordRecovery(g, {
      payment_id: payC,
      customer_id: c.customer,
      payment_method_id: c.card,
      charge_id: chargedC.charge_id,
      amount: 1999,
      currency,
    });
    await fetch(`${base}/_sim/revoke`, { method: 'PUT', body: JSON.stringify({ token: c.token }) });
    // D: charged by its recovery, then the customer was erased.
    const d = await customerWithCard();
    const payD = pay('d');
    await recoveryRun(payD, d.customer, true);
    await charge(d, `${payD}:${d.card}`);
    await eraseCustomer(g, d.customer);
    // E: charged by a recovery that still runs (it records its own charge).
    const e = await customerWithCard();
    const payE = pay('e');
    const runningE = await recoveryRun(payE, e.customer, false);
    const chargedE = await charge(e, `${payE}:${e.card}`);
    // F: the graph says recovered by a charge the gateway never made.
    const f = await customerWithCard();
    const payF = pay('f');
    await recordRecovery(g, {
      payment_id: payF,
      customer_id: f.customer,
      payment_method_id: f.card,
      charge_id: `ch_never_${randomUUID()}`,
      amount: 500,
      currency,
    });
    // G: a decline (nothing to record); H: another system's charge on the account.
    const gc = await customerWithCard(`tok_decline_insufficient_funds_${randomUUID()}`);
    await charge(gc, `${pay('g')}:${gc.card}`);
    await charge(a, `order-${randomUUID()}`);
    // I: charged, and the graph recorded the recovery as failed.
    const i = await customerWithCard();
    const payI = pay('i');
    await recoveryRun(payI, i.customer, true);
    await charge(i, `${payI}:${i.card}`);
    await recordRecoveryFailed(g, { payment_id: payI, customer_id: i.customer, attempts: 3, reason: 'exhausted' });
    // X: a charge under a key naming A's recovery, on another customer's card: never written on either.
    const x = await customerWithCard();
    const payX = pay('x');
    await recoveryRun(payX, a.customer, true);
    await charge(x, `${payX}:${x.card}`);

    const ours = [a, b, c, d, e, f, gc, i, x].map((who) => who.customer);
    const window = { from, to: new Date(Date.now() + 60_000).toISOString() };
    const kinds = (r: PageResult) =>
      r.flags
        .filter(mine(ours))
        .map((fl) => [fl.kind, fl.payment_id])
        .sort();
    const expectedFlags = [
      ['charge_not_recorded', payD],
      ['charge_not_recorded', payX],
      ['charged_but_recorded_failed', payI],
      ['charged_twice', payB],
      ['recovery_without_charge', payF],
    ].sort();
    try {
      const result = await reconcile(window);
      expect(result.counts).toMatchObject({ charges: 10, foreign: 1, matched: 2 }); // B's first charge and C's
      expect(result.counts.in_flight).toBeGreaterThanOrEqual(1);
      expect(
        result.repairs
          .filter(mine(ours))
          .map((r) => [r.kind, r.customer_id])
          .sort(),
      ).toEqual(
        [
          ['method_deactivated', c.customer],
          ['recovery_recorded', a.customer],
        ].sort(),
      );
      expect(kinds(result)).toEqual(expectedFlags);

      // A's charge is now recorded as its recovery would have: PaymentRecovered with the gateway's charge.
      if (chargedA.outcome !== 'succeeded') throw new Error('the charge should succeed');
      const recovered = await listCustomerEvents(g, a.customer, { type: 'PaymentRecovered' });
      expect(recovered.map((ev) => ev.payload)).toEqual([
        { payment_id: payA, payment_method_id: a.card, charge_id: chargedA.charge_id, amount: 1999, currency },
      ]);
      // X's forged key wrote nothing on X, nor on A.
      expect(await listCustomerEvents(g, x.customer, { type: 'PaymentRecovered' })).toEqual([]);
      // C's revoked card is inactive, with the reason.
      expect((await getPaymentMethodsByCustomer(g, c.customer)).find((m) => m.id === c.card)?.status).toBe('inactive');
      const changed = await listCustomerEvents(g, c.customer, { type: 'PaymentMethodStatusChanged' });
      expect(changed.map((ev) => ev.payload)).toEqual([
        { payment_method_id: c.card, from: 'active', to: 'inactive', reason: REVOKED_REASON },
      ]);
      // E's charge waits for its recovery, kept pending in the graph.
      const pendingE = async () =>
        (
          await g.query<{ n: number }>('MATCH (r:ReconciliationPending {id: $id}) RETURN count(r) AS n', { id: payE })
        )[0]?.n;
      expect(await pendingE()).toBe(1);
      expect(await listCustomerEvents(g, e.customer, { type: 'PaymentRecovered' })).toEqual([]);

      // E's recovery ends without recording its charge (ops cancelled it while the charge's outcome
      // was unknown). A later run, whose window no longer holds the charge, settles it from the pending.
      await runningE.terminate('cancelled by ops');
      const later = await reconcile({ from: window.to, to: new Date(Date.now() + 120_000).toISOString() });
      expect(later.repairs.filter(mine(ours)).map((r) => [r.kind, r.customer_id])).toEqual([
        ['recovery_recorded', e.customer],
      ]);
      if (chargedE.outcome !== 'succeeded') throw new Error('the charge should succeed');
      expect(
        (await listCustomerEvents(g, e.customer, { type: 'PaymentRecovered' })).map((ev) => ev.payload.charge_id),
      ).toEqual([chargedE.charge_id]);
      expect(await pendingE()).toBe(0);

      // Again over the first window (tomorrow's overlapping run, or a page retried after a worker
      // died): nothing repaired twice, the same flags.
      const again = await reconcile(window);
      expect(again.repairs.filter(mine(ours))).toEqual([]);
      expect(again.counts.matched).toBe(4); // A, B's first, C, E
      expect(kinds(again)).toEqual(expectedFlags);
      expect(await listCustomerEvents(g, a.customer, { type: 'PaymentRecovered' })).toHaveLength(1);
      expect(await listCustomerEvents(g, e.customer, { type: 'PaymentRecovered' })).toHaveLength(1);
      expect(await listCustomerEvents(g, c.customer, { type: 'PaymentMethodStatusChanged' })).toHaveLength(1);
    } finally {
      await runningE.terminate('test over').catch(() => undefined);
    }
  });

  it("records a merged customer's charges on the survivor, made before or after the merge; no one else's", async () => {
    // This test's charges only: the first test's were all made before.
    const from = new Date().toISOString();
    const pay = (tag: string) => `pay-${tag}-${randomUUID()}`;
    const currency = g.policy.reportingCurrency;
    const merge = (mergedId: string, survivorId: string) => mergeInGraph(g, survivorId, mergedId);
    // Each recovery below stands for one that ended without recording its charge. Those started
    // with the survivor as PersonaCustomerId stand for a recovery that heard of the merge
    // (customerMerged: the workflow moves the attribute to the survivor).

    // Before: charged while the customer was M, then M was merged into S. The gateway names M.
    const m = await customerWithCard();
    const s = await customerWithCard();
    const payBefore = pay('before');
    const chargedBefore = await charge(m, `${payBefore}:${m.card}`);
    await merge(m.customer, s.customer);
    await recoveryRun(payBefore, s.customer, true);
    // After: M2 merged into S2 first; the recovery charged M2's card (moved, same id) for S2.
    const m2 = await customerWithCard();
    const s2 = await customerWithCard();
    await merge(m2.customer, s2.customer);
    const payAfter = pay('after');
    await recoveryRun(payAfter, s2.customer, true);
    const chargedAfter = await charge({ customer: s2.customer, token: m2.token }, `${payAfter}:${m2.card}`);
    // The recovery ended before M3 was merged into S3: its PersonaCustomerId still names M3.
    const m3 = await customerWithCard();
    const s3 = await customerWithCard();
    const payEnded = pay('ended');
    await recoveryRun(payEnded, m3.customer, true);
    const chargedEnded = await charge(m3, `${payEnded}:${m3.card}`);
    await merge(m3.customer, s3.customer);
    // A chain: C1 merged into C2, then C2 into S4 (C1's tombstone points at S4 since).
    const c1 = await customerWithCard();
    const c2 = await createCustomer(g, {});
    const s4 = await customerWithCard();
    const payChain = pay('chain');
    const chargedChain = await charge(c1, `${payChain}:${c1.card}`);
    await merge(c1.customer, c2.id);
    await merge(c2.id, s4.customer);
    await recoveryRun(payChain, s4.customer, true);
    // Under keys of recoveries of S: a charge of an unrelated customer U, and one of a record O
    // merged into another customer (V), not into S. Neither is S's: never recorded on anyone.
    const u = await customerWithCard();
    const payUnrelated = pay('unrelated');
    await recoveryRun(payUnrelated, s.customer, true);
    await charge(u, `${payUnrelated}:${u.card}`);
    const o = await customerWithCard();
    const v = await customerWithCard();
    const payElsewhere = pay('elsewhere');
    await recoveryRun(payElsewhere, s.customer, true);
    await charge(o, `${payElsewhere}:${o.card}`);
    await merge(o.customer, v.customer);

    const ours = [m, s, m2, s2, m3, s3, c1, s4, u, o, v].map((who) => who.customer).concat(c2.id);
    const window = { from, to: new Date(Date.now() + 60_000).toISOString() };
    const repairsOf = (r: PageResult) =>
      r.repairs
        .filter(mine(ours))
        .map((x) => [x.kind, x.payment_id, x.customer_id, x.payment_method_id])
        .sort();
    const flagsOf = (r: PageResult) =>
      r.flags
        .filter(mine(ours))
        .map((x) => [x.kind, x.payment_id, x.customer_id])
        .sort();
    const expectedFlags = [
      ['charge_not_recorded', payUnrelated, u.customer],
      ['charge_not_recorded', payElsewhere, o.customer],
    ].sort();

    const result = await reconcile(window);
    expect(result.counts).toMatchObject({ charges: 6, foreign: 0, matched: 0 });
    expect(repairsOf(result)).toEqual(
      [
        ['recovery_recorded', payBefore, s.customer, m.card],
        ['recovery_recorded', payAfter, s2.customer, m2.card],
        ['recovery_recorded', payEnded, s3.customer, m3.card],
        ['recovery_recorded', payChain, s4.customer, c1.card],
      ].sort(),
    );
    expect(flagsOf(result)).toEqual(expectedFlags);

    // Each is recorded on the survivor as its recovery would have: PaymentRecovered with the
    // gateway's charge, the moved card its default, the amount in its LTV; nothing on a tombstone.
    for (const [survivor, tombstone, card, paymentId, charged] of [
      [s, m, m.card, payBefore, chargedBefore],
      [s2, m2, m2.card, payAfter, chargedAfter],
      [s3, m3, m3.card, payEnded, chargedEnded],
      [s4, c1, c1.card, payChain, chargedChain],
    ] as const) {
      if (charged.outcome !== 'succeeded') throw new Error('the charge should succeed');
      const recovered = await listCustomerEvents(g, survivor.customer, { type: 'PaymentRecovered' });
      expect(recovered.map((ev) => ev.payload)).toEqual([
        { payment_id: paymentId, payment_method_id: card, charge_id: charged.charge_id, amount: 1999, currency },
      ]);
      expect((await getPaymentMethodsByCustomer(g, survivor.customer)).find((pm) => pm.id === card)?.is_default).toBe(
        true,
      );
      expect((await getCustomer(g, survivor.customer))?.ltv_minor).toBe(1999);
      expect(await listCustomerEvents(g, tombstone.customer, { type: 'PaymentRecovered' })).toEqual([]);
    }
    // The two charges that were not S's wrote nothing on anyone (S has only its own, above).
    for (const who of [u.customer, o.customer, v.customer, c2.id])
      expect(await listCustomerEvents(g, who, { type: 'PaymentRecovered' })).toEqual([]);
    expect((await getCustomer(g, v.customer))?.ltv_minor).toBe(0);

    // Again (tomorrow's overlapping run): the four match what was recorded, the same two flags.
    const again = await reconcile(window);
    expect(repairsOf(again)).toEqual([]);
    expect(again.counts.matched).toBe(4);
    expect(flagsOf(again)).toEqual(expectedFlags);
    expect(await listCustomerEvents(g, s.customer, { type: 'PaymentRecovered' })).toHaveLength(1);
  });

  it('leaves a charge still processing for a later run, neither recorded nor flagged, until it has ended', async () => {
    // A simulator of this test's own: its clock is moved on to settle the charges.
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'gateway-reconcile-')), 'charges.jsonl');
    let own: ServerType | undefined;
    await new Promise<void>((resolve) => {
      own = serve({ fetch: createGatewaySimulator(file).fetch, hostname: '127.0.0.1', port: 0 }, () => resolve());
    });
    const at = `http://127.0.0.1:${((own as ServerType).address() as AddressInfo).port}`;
    const records = new HttpPaymentGateway(at, 5000);
    const put = (route: string, body: unknown) => fetch(`${at}${route}`, { method: 'PUT', body: JSON.stringify(body) });
    try {
      const from = new Date().toISOString();
      const pay = (tag: string) => `pay-${tag}-${randomUUID()}`;
      // P pays, Q declines; each answered processing while its recovery ran, which ops then cancelled.
      const p = await customerWithCard();
      const q = await customerWithCard(`tok_decline_insufficient_funds_${randomUUID()}`);
      const payP = pay('p');
      const payQ = pay('q');
      await put('/_sim/faults', { processing_next: 2, processing_ms: 3_600_000 });
      for (const [who, paymentId] of [
        [p, payP],
        [q, payQ],
      ] as const) {
        await recoveryRun(paymentId, who.customer, true);
        await expect(
          records.charge({
            idempotency_key: `${paymentId}:${who.card}`,
            token: who.token,
            amount: 1999,
            currency: g.policy.reportingCurrency,
            customer_id: who.customer,
            initiator: 'mit',
            reference: paymentId,
          }),
        ).rejects.toThrow(/processing/);
      }
      const ours = [p.customer, q.customer];
      const pending = async () =>
        (
          await g.query<{ id: string }>('MATCH (r:ReconciliationPending) WHERE r.id IN $ids RETURN r.id AS id', {
            ids: [payP, payQ],
          })
        )
          .map((r) => r.id)
          .sort();
      const window = { from, to: new Date(Date.now() + 60_000).toISOString() };
      const first = await reconcile(window, records);
      expect(first.counts).toMatchObject({ charges: 2, matched: 0 });
      expect([...first.repairs, ...first.flags].filter(mine(ours))).toEqual([]);
      expect(await pending()).toEqual([payP, payQ].sort());
      // A later run, whose window no longer holds them: still processing, still left.
      const later = { from: window.to, to: new Date(Date.now() + 120_000).toISOString() };
      const second = await reconcile(later, records);
      expect([...second.repairs, ...second.flags].filter(mine(ours))).toEqual([]);
      expect(await pending()).toEqual([payP, payQ].sort());
      expect(await listCustomerEvents(g, p.customer, { type: 'PaymentRecovered' })).toEqual([]);

      // Settled: P's charge is recorded as its recovery would have; Q's decline moved nothing.
      expect((await put('/_sim/clock', { advance_ms: 3_600_000 })).status).toBe(200);
      const third = await reconcile(later, records);
      expect(third.repairs.filter(mine(ours)).map((r) => [r.kind, r.customer_id])).toEqual([
        ['recovery_recorded', p.customer],
      ]);
      expect(third.flags.filter(mine(ours))).toEqual([]);
      const [charged] = await records.chargesByReference(payP);
      expect(
        (await listCustomerEvents(g, p.customer, { type: 'PaymentRecovered' })).map((ev) => ev.payload.charge_id),
      ).toEqual([charged?.id]);
      expect(await listCustomerEvents(g, q.customer, { type: 'PaymentRecovered' })).toEqual([]);
      expect(await pending()).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => (own as ServerType).close(() => resolve()));
    }
  });

  it('flags a recovery the ledger has recovering that no workflow runs; not one whose workflow runs', async () => {
    const prefix = `strand_${randomUUID().slice(0, 8)}_`;
    const { customer, card } = await customerWithCard();
    const failure = (id: string): PaymentFailure => ({
      payment_id: `${prefix}${id}`,
      customer_id: customer,
      payment_method_id: card,
      amount: 1999,
      currency: g.policy.reportingCurrency,
      decline_code: 'insufficient_funds',
    });
    // a: started by a workflow that is gone (terminated); b: reserved, never started; c: its workflow runs.
    const [a, b, c] = [failure('a'), failure('b'), failure('c')];
    for (const f of [a, b, c]) await reserveRecovery(g, f);
    await startRecovery(g, a);
    await startRecovery(g, c);
    // Running, on a queue no worker polls: Temporal has it running all the same.
    await provisionHistoryKey(g, g.config.payloadKeys, recoveryWorkflowId(c.payment_id), customer);
    const running = await client.workflow.signalWithStart(RECOVERY_WORKFLOW_TYPE, {
      workflowId: recoveryWorkflowId(c.payment_id),
      taskQueue: `nobody-polls-${randomUUID()}`,
      args: [{ dunningSchedule: ['1d'] }],
      signal: paymentFailedSignal,
      signalArgs: [c],
    });
    try {
      const activities = createReconciliationActivities({
        graph: g,
        gatewayRecords: gateway(),
        temporal: client,
        profileRules: profileRules(loadSettings()),
      });
      const page: StrandedPageResult = await new MockActivityEnvironment().run(
        (req) => activities.reconcileStrandedPage(req),
        { after: prefix, before: new Date(Date.now() + 60_000).toISOString(), limit: 3 },
      );
      expect(page.counts.open_recoveries).toBe(3);
      expect(page.flags.map((f) => [f.kind, f.payment_id])).toEqual([
        ['stranded_recovery', a.payment_id],
        ['stranded_recovery', b.payment_id],
      ]);
      expect(page.flags[0]?.detail).toMatch(/no workflow runs it: started at .*Temporal has no workflow of it/);
      expect(page.flags[1]?.detail).toMatch(/reserved at .* and never started/);
      expect(page.next).toBe(c.payment_id);
    } finally {
      await running.terminate('test over');
    }
  });
});
