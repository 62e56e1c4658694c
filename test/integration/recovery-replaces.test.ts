/**
 * A payment reported again under a new id that names the recovery it replaces (`replaces`), on the
 * shared stack, over REST and gRPC: the charge ledger takes it only when the replaced recovery is
 * known, the same customer's (or a record's merged into it), has a verdict, charged nothing and was
 * not replaced before; every refusal writes nothing and names the field; a replacement is linked
 * once. (After a restore, the drill in backup-restore.test.ts.)
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcServer, listen } from '../../api/grpc/server';
import { cancelRecovery } from '../../api/services/recovery';
import { addPaymentMethod } from '../../graph';
import { createAttemptTx, recordAttemptAnswerTx } from '../../graph/chargeAttempts';
import {
  endRecovery,
  readRecoveryLedger,
  reserveRecovery,
  startRecovery,
  type RecoveryEnd,
} from '../../graph/chargeLedger';
import { writeTx } from '../../graph/graph';
import { mergeCustomers } from '../../graph/identityMerge';
import type { PersonaAgentClient } from '../../proto/generated/persona/v1/PersonaAgent';
import { recoveryStatusQuery, recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { startHarness, type Harness } from '../support/api';
import { bearer, call, personaClient } from '../support/grpc';
import { send } from '../support/http';
import { cardIdentity, customerWithCards, paymentId, simulatorCharges } from '../support/recovery';
import { until } from '../support/wait';

let h: Harness;
let server: grpc.Server;
let client: PersonaAgentClient;

beforeAll(async () => {
  h = await startHarness();
  server = createGrpcServer(h.deps).server;
  client = personaClient(`127.0.0.1:${await listen(server, '127.0.0.1', 0)}`);
});
afterAll(async () => {
  client?.close();
  await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
  await h?.close();
});

/** A card of its own for a declining test token: the networks' caps count a card across runs. */
const declining = () => `tok_decline_insufficient_funds_card-${cardIdentity()}`;

const failure = (customerId: string, pm: string, extra: Record<string, unknown> = {}) => ({
  payment_id: paymentId(),
  customer_id: customerId,
  payment_method_id: pm,
  amount: 1250,
  currency: 'EUR',
  decline_code: 'insufficient_funds',
  ...extra,
});

async function report(body: Record<string, unknown>) {
  const res = await send(h.app, 'POST', '/api/v1/payment-failures', { token: await h.token('payments:report'), body });
  return { status: res.status, json: res.json as { workflow_id?: string; detail?: string; field?: string } };
}

/**
 * A recovery only the charge ledger has (no workflow runs it): reported and started, with an
 * attempt if asked, and ended as asked (or left recovering).
 */
async function ledgerRecovery(
  customerId: string,
  pm: string,
  options: { end?: Omit<RecoveryEnd, 'payment_id' | 'customer_id'>; attempt?: 'sent' | 'succeeded' } = {},
) {
  const f = failure(customerId, pm);
  await reserveRecovery(h.graph, f);
  await startRecovery(h.graph, f);
  const key = `${f.payment_id}:${pm}`;
  if (options.attempt) {
    const now = new Date();
    await writeTx(h.graph, async (tx) => {
      const { payment_id, customer_id, amount, currency } = f;
      const request = { payment_id, customer_id, payment_method_id: pm, amount, currency, reference: payment_id };
      await createAttemptTx(tx, { ...request, key, sealed: 'sealed-by-the-test', card: null, initiator: 'mit' }, now);
      if (options.attempt === 'succeeded')
        await recordAttemptAnswerTx(tx, key, { state: 'succeeded', charge_id: `ch_${f.payment_id}` }, now);
    });
  }
  if (options.end) await endRecovery(h.graph, { payment_id: f.payment_id, customer_id: customerId, ...options.end });
  return { payment: f.payment_id, key };
}

/** The refusal, and that nothing was written: no recovery of the new payment, the old one not replaced. */
async function refused(res: Awaited<ReturnType<typeof report>>, newPayment: string, old: string, detail: RegExp) {
  expect(res).toMatchObject({ status: 409, json: { field: 'replaces', detail: expect.stringMatching(detail) } });
  expect(await readRecoveryLedger(h.graph, newPayment)).toBeNull();
  expect((await readRecoveryLedger(h.graph, old))?.recovery.replaced_by ?? null).toBeNull();
}

/** Ops merge `merged` into `survivor`: the same person. */
async function mergeInto(survivor: string, merged: string) {
  await mergeCustomers(h.graph, {
    merge_id: `replaces-merge-${randomUUID()}`,
    survivor_id: survivor,
    merged_id: merged,
    decided_by: 'ops',
    requested_by: null,
    reason: 'the same person (test)',
  });
}

describe('a payment reported again names the recovery it replaces (`replaces`)', () => {
  it('refuses, writing nothing, a payment unknown to the charge ledger, another customer’s, or itself', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [declining()]);
    const other = await customerWithCards(h.graph, [declining()]);
    const unknown = paymentId();
    const f1 = failure(customerId, cards[0] as string, { replaces: unknown });
    await refused(
      await report(f1),
      f1.payment_id,
      unknown,
      new RegExp(`payment ${unknown} is unknown to the charge ledger`),
    );

    const theirs = await ledgerRecovery(other.customerId, other.cards[0] as string, { end: { state: 'stopped' } });
    const f2 = failure(customerId, cards[0] as string, { replaces: theirs.payment });
    await refused(await report(f2), f2.payment_id, theirs.payment, /recovery is another customer's/);

    const f3 = failure(customerId, cards[0] as string);
    const itself = await report({ ...f3, replaces: f3.payment_id });
    expect(itself).toMatchObject({ status: 400, json: { field: 'replaces' } });
    expect(await readRecoveryLedger(h.graph, f3.payment_id)).toBeNull();
  });

  it('refuses a recovery with no verdict yet, and takes it once it has one: the two linked', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [declining()]);
    const old = await ledgerRecovery(customerId, cards[0] as string);
    const f = failure(customerId, cards[0] as string, { replaces: old.payment });
    await refused(
      await report(f),
      f.payment_id,
      old.payment,
      new RegExp(
        `payment ${old.payment}'s recovery has no verdict yet: the gateway reconciliation or ` +
          '`npm run ops:settle-recoveries` gives it one; report again then',
      ),
    );

    await endRecovery(h.graph, { payment_id: old.payment, customer_id: customerId, state: 'stopped', reason: 'test' });
    expect(await report(f)).toEqual({ status: 202, json: { workflow_id: recoveryWorkflowId(f.payment_id) } });
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery).toMatchObject({ replaces: old.payment });
    expect((await readRecoveryLedger(h.graph, old.payment))?.recovery).toMatchObject({ replaced_by: f.payment_id });
    // Its workflow is gone (none ever ran): the status is the ledger's, and says what replaced it.
    const status = await send(h.app, 'GET', `/api/v1/payment-recoveries/${old.payment}`, {
      token: await h.token('payments:report'),
    });
    expect(status.json).toMatchObject({ state: 'stopped', source: 'ledger', replaced_by: f.payment_id });
    await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).cancel();
  });

  it('refuses a recovery that charged: recorded recovered, a charge through, one of unknown outcome', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [declining()]);
    const pm = cards[0] as string;
    const recovered = await ledgerRecovery(customerId, pm, {
      end: { state: 'recovered', charge_id: 'ch_recorded', recovered_with: pm },
    });
    const f1 = failure(customerId, pm, { replaces: recovered.payment });
    await refused(await report(f1), f1.payment_id, recovered.payment, /was recovered by charge ch_recorded/);

    // Recorded failed, yet its charge went through (the gateway answered it after the end).
    const through = await ledgerRecovery(customerId, pm, { attempt: 'succeeded', end: { state: 'failed' } });
    const f2 = failure(customerId, pm, { replaces: through.payment });
    await refused(await report(f2), f2.payment_id, through.payment, new RegExp(`by charge ch_${through.payment}`));

    const unknown = await ledgerRecovery(customerId, pm, { attempt: 'sent', end: { state: 'stopped' } });
    const f3 = failure(customerId, pm, { replaces: unknown.payment });
    await refused(
      await report(f3),
      f3.payment_id,
      unknown.payment,
      new RegExp(`charge ${unknown.key} has an unknown outcome`),
    );
  });

  it('refuses a recovery of another amount or currency: a replacement is the same debt', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [declining()]);
    const old = await ledgerRecovery(customerId, cards[0] as string, { end: { state: 'stopped', reason: 'test' } });
    const f1 = failure(customerId, cards[0] as string, { replaces: old.payment, amount: 999 });
    await refused(await report(f1), f1.payment_id, old.payment, /not 999 EUR: a report replaces only the same debt/);
    const f2 = failure(customerId, cards[0] as string, { replaces: old.payment, currency: 'USD' });
    await refused(await report(f2), f2.payment_id, old.payment, /not 1250 USD: a report replaces only the same debt/);
  });

  it('refuses a new payment naming none beside a stranded recovery of its amount, until ops settle it', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [declining()]);
    const pm = cards[0] as string;
    // Recovering and started, and no workflow runs it: terminated, or lost in a restore.
    const stranded = await ledgerRecovery(customerId, pm);
    const f = failure(customerId, pm);
    const res = await report(f);
    expect(res).toMatchObject({
      status: 409,
      json: {
        field: 'replaces',
        detail: expect.stringMatching(
          new RegExp(
            `payment ${stranded.payment} of the same amount .* no workflow runs it .*replaces: "${stranded.payment}"`,
          ),
        ),
      },
    });
    expect(await readRecoveryLedger(h.graph, f.payment_id)).toBeNull();
    // Naming another payment in `replaces` (one that failed, charging nothing) does not get past it.
    const failed = await ledgerRecovery(customerId, pm, { end: { state: 'failed' } });
    expect(await report({ ...f, replaces: failed.payment })).toMatchObject({
      status: 409,
      json: { field: 'replaces', detail: expect.stringContaining(`payment ${stranded.payment} of the same amount`) },
    });
    // Another amount is another debt: taken.
    const other = failure(customerId, pm, { amount: 999 });
    expect((await report(other)).status).toBe(202);
    // Settled by ops (stopped: nothing charged): the payment is taken, as itself or as the replacement.
    await endRecovery(h.graph, {
      payment_id: stranded.payment,
      customer_id: customerId,
      state: 'stopped',
      reason: 'test',
    });
    expect((await report({ ...f, replaces: stranded.payment })).status).toBe(202);
    expect((await readRecoveryLedger(h.graph, f.payment_id))?.recovery).toMatchObject({ replaces: stranded.payment });
    for (const p of [other.payment_id, f.payment_id]) await h.client.workflow.getHandle(recoveryWorkflowId(p)).cancel();
  });

  it('refuses a new payment of a survivor beside a stranded recovery of a record merged into it', async () => {
    const survivor = await customerWithCards(h.graph, [declining()]);
    const merged = await customerWithCards(h.graph, [declining()]);
    const stranded = await ledgerRecovery(merged.customerId, merged.cards[0] as string);
    await mergeInto(survivor.customerId, merged.customerId);
    const f = failure(survivor.customerId, survivor.cards[0] as string);
    expect(await report(f)).toMatchObject({
      status: 409,
      json: { field: 'replaces', detail: expect.stringContaining(`payment ${stranded.payment} of the same amount`) },
    });
    expect(await readRecoveryLedger(h.graph, f.payment_id)).toBeNull();
  });

  it('takes the recovery of a record merged into the customer', async () => {
    const survivor = await customerWithCards(h.graph, [declining()]);
    const merged = await customerWithCards(h.graph, [declining()]);
    const old = await ledgerRecovery(merged.customerId, merged.cards[0] as string, { end: { state: 'failed' } });
    await mergeInto(survivor.customerId, merged.customerId);
    const f = failure(survivor.customerId, survivor.cards[0] as string, { replaces: old.payment });
    expect(await report(f)).toMatchObject({ status: 202 });
    expect((await readRecoveryLedger(h.graph, old.payment))?.recovery.replaced_by).toBe(f.payment_id);
    await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).cancel();
  });

  it('replaces a cancelled recovery once: the replacement charges, a resend is taken, a second refused', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [declining(), declining()]);
    const old = failure(customerId, cards[0] as string);
    expect(await report(old)).toMatchObject({ status: 202 });
    const handle = h.client.workflow.getHandle(recoveryWorkflowId(old.payment_id));
    await until(async () => (await handle.query<RecoveryStatus>(recoveryStatusQuery)).state === 'dunning', 60_000);
    expect(await cancelRecovery(h.deps, old.payment_id, 'reported again under a new id', 120_000)).toMatchObject({
      status: { state: 'stopped' },
    });
    // The customer's new card, which the replacement recovers with.
    const good = await addPaymentMethod(h.graph, customerId, {
      type: 'card',
      token: `tok_visa_${randomUUID()}`,
      brand: 'visa',
      last_four: '4242',
      expiry_month: 12,
      expiry_year: 2035,
    });
    const f = failure(customerId, cards[0] as string, { replaces: old.payment_id });
    expect(await report(f)).toEqual({ status: 202, json: { workflow_id: recoveryWorkflowId(f.payment_id) } });
    expect(await h.client.workflow.getHandle(recoveryWorkflowId(f.payment_id)).result()).toMatchObject({
      state: 'recovered',
      recovered_with: good.id,
    });
    expect(await report(f)).toEqual({ status: 202, json: { workflow_id: recoveryWorkflowId(f.payment_id) } });
    const second = failure(customerId, cards[0] as string, { replaces: old.payment_id });
    const again = await report(second);
    expect(again).toMatchObject({
      status: 409,
      json: { field: 'replaces', detail: expect.stringContaining(`was replaced by payment ${f.payment_id} already`) },
    });
    expect(await readRecoveryLedger(h.graph, second.payment_id)).toBeNull();
    const succeeded = (await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, customerId)).filter(
      (c) => c.status === 'succeeded',
    );
    expect(succeeded.map((c) => c.reference)).toEqual([f.payment_id]);
  });

  it('ReportPaymentFailure over gRPC takes replaces, and refuses it FAILED_PRECONDITION naming the field', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [declining()]);
    const pm = cards[0] as string;
    const token = bearer(await h.token('payments:report'));
    const open = await ledgerRecovery(customerId, pm);
    const f = { ...failure(customerId, pm, { replaces: open.payment }), amount: '1250' };
    expect(await call(client, 'ReportPaymentFailure', f, token)).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      field: 'replaces',
      details: expect.stringContaining('has no verdict yet'),
    });
    expect(await readRecoveryLedger(h.graph, f.payment_id)).toBeNull();
    // Settled by ops, as a stranded recovery of the same amount must be before any new payment is taken.
    await endRecovery(h.graph, { payment_id: open.payment, customer_id: customerId, state: 'failed', reason: 'test' });
    const stopped = await ledgerRecovery(customerId, pm, { end: { state: 'stopped' } });
    const g = { ...failure(customerId, pm, { replaces: stopped.payment }), amount: '1250' };
    expect(await call(client, 'ReportPaymentFailure', g, token)).toMatchObject({
      code: grpc.status.OK,
      res: { workflow_id: recoveryWorkflowId(g.payment_id) },
    });
    expect((await readRecoveryLedger(h.graph, g.payment_id))?.recovery.replaces).toBe(stopped.payment);
    await h.client.workflow.getHandle(recoveryWorkflowId(g.payment_id)).cancel();
  });
});
