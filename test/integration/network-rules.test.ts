/**
 * The card networks' retry rules on a recovery's charge, against the real graph and the stack's
 * gateway simulator: the charge activity has the processor name the method's card once (network
 * and fingerprint), the graph's reservation asks the governor under the card's lock, and the
 * network's answer is counted against the card, whichever token or customer it comes from.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRecoveryActivities,
  type ChargeAttempt,
  type ChargeForecast,
  type ChargeOutcome,
} from '../../activities/recovery';
import { HttpPaymentGateway } from '../../clients/paymentGateway';
import { profileRules } from '../../config/env';
import { addPaymentMethod, createCustomer } from '../../graph';
import { cardOfMethod, readCardHistory } from '../../graph/cardHistory';
import { loadRuleTable } from '../../payments/ruleTables';
import { fingerprintOfToken } from '../../simulators/gateway/app';
import { seedCustomer } from '../support/builders';
import { cardInput, openTestGraph, type TestGraph } from '../support/graph';
import { cardIdentity } from '../support/recovery';

let g: TestGraph;
let gateway: HttpPaymentGateway;
const table = loadRuleTable();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

beforeAll(() => {
  g = openTestGraph();
  gateway = new HttpPaymentGateway(g.config.PERSONA_GATEWAY_URL, 5000);
});
afterAll(() => g.close());

const activities = () =>
  createRecoveryActivities({
    graph: g,
    gateway,
    cards: gateway,
    updater: gateway,
    networkRules: table,
    trustThreshold: g.config.PERSONA_TRUST_THRESHOLD,
    profileRules: profileRules(g.config),
  });

/** The charge activity, run as a worker runs it (with the start-to-close the workflow gives it). */
const charge = (a: ChargeAttempt): Promise<ChargeOutcome> =>
  new MockActivityEnvironment({ startToCloseTimeoutMs: 120_000 }).run(
    (x: ChargeAttempt) => activities().chargePaymentMethod(x),
    a,
  );

const cardId = cardIdentity;

async function holder(token: string) {
  const c = await seedCustomer(g, { cards: [{ token }] });
  return { customer: c.customerId, method: c.cardId };
}

const attempt = (who: { customer: string; method: string }, payment: string, round = 0): ChargeAttempt => ({
  payment_id: payment,
  customer_id: who.customer,
  payment_method_id: who.method,
  amount: 1999,
  currency: g.policy.reportingCurrency,
  idempotency_key: round === 0 ? `${payment}:${who.method}` : `${payment}:${who.method}:r${round}`,
});

describe('the networks’ retry rules on the charge', () => {
  it('wait as long as a Mastercard advice code says, for every token of the card and every customer', async () => {
    const id = cardId();
    const a = await holder(`tok_mastercard_card-${id}_decline_insufficient_funds_mac_25`);
    const declinedAt = Date.now();
    expect(await charge(attempt(a, `pay_${id}`))).toMatchObject({
      outcome: 'declined',
      network: 'mastercard',
      advice_code: '25',
    });
    // The method now carries its card as the processor named it.
    expect(await cardOfMethod(g, a.method)).toEqual({
      fingerprint: fingerprintOfToken(`tok_mastercard_card-${id}`),
      network: 'mastercard',
    });

    const again = await charge(attempt(a, `pay_${id}`, 1));
    expect(again).toMatchObject({ outcome: 'limited', never: false });
    const limited = again as Extract<ChargeOutcome, { outcome: 'limited' }>;
    expect(limited.rule).toMatch(/mastercard-mac-25-after-24-hours \(rules 2026-11\)/);
    const notBefore = Date.parse(limited.not_before ?? '');
    expect(notBefore).toBeGreaterThanOrEqual(declinedAt + DAY);
    expect(notBefore).toBeLessThanOrEqual(Date.now() + DAY);

    // The same card stored again by another customer, under another token: one history.
    const b = await holder(`tok_mastercard_card-${id}_stored_again`);
    expect(await charge(attempt(b, `pay_${id}_b`))).toMatchObject({
      outcome: 'limited',
      not_before: limited.not_before,
    });
    const history = await readCardHistory(g, fingerprintOfToken(`tok_mastercard_card-${id}`));
    expect(history?.attempts).toMatchObject([{ outcome: 'declined', advice_code: '25', network: 'mastercard' }]);
    // Only the first charge reached the gateway.
    const gatewayCharges = async (customer: string) =>
      (await (await fetch(`${g.config.PERSONA_GATEWAY_URL}/v1/charges?customer_id=${customer}`)).json()) as {
        data: unknown[];
      };
    expect((await gatewayCharges(a.customer)).data).toHaveLength(1);
    expect((await gatewayCharges(b.customer)).data).toHaveLength(0);
  });

  it('never charge a Visa card again after a category 1 decline; a retried activity is the same charge', async () => {
    const id = cardId();
    const a = await holder(`tok_visa_card-${id}_decline_lost_card`);
    const first = attempt(a, `pay_${id}`);
    const declined = await charge(first);
    expect(declined).toMatchObject({ outcome: 'declined', category: 1, network_response_code: '41' });
    // The activity retried after its answer was lost: the same charge, the same answer, counted once.
    expect(await charge(first)).toEqual(declined);
    const fingerprint = fingerprintOfToken(`tok_visa_card-${id}`);
    expect((await readCardHistory(g, fingerprint))?.attempts).toHaveLength(1);

    expect(await charge(attempt(a, `pay_${id}`, 1))).toMatchObject({
      outcome: 'limited',
      never: true,
      rule: expect.stringMatching(/^never again: visa-category-1-never/),
    });
    // Barred for good, beyond the 31 days its attempt is kept.
    expect((await readCardHistory(g, fingerprint))?.barred).toMatchObject({
      verdict: 'never',
      rule: { id: 'visa-category-1-never', table: '2026-11' },
    });
  });

  it('forecast when a dunning round may charge: the earliest candidate, with the rule that sets it', async () => {
    const id = cardId();
    const c = await createCustomer(g, {});
    const held = await addPaymentMethod(
      g,
      c.id,
      cardInput({ token: `tok_mastercard_card-${id}_decline_insufficient_funds_mac_26` }),
    );
    const who = { customer: c.id, method: held.id };
    const forecast = (exclude: string[], at = new Date().toISOString()): Promise<ChargeForecast> =>
      new MockActivityEnvironment().run(
        (x: { customer_id: string; exclude: string[]; at: string }) => activities().forecastCharges(x),
        { customer_id: c.id, exclude, at },
      );
    /** A forecast that a charge may go now: at the time asked, or the worker's clock when that is later. */
    const expectNow = async (exclude: string[], candidates: number) => {
      const asked = Date.now();
      const f = await forecast(exclude, new Date(asked).toISOString());
      expect(f).toMatchObject({ rule: null, candidates });
      expect(Date.parse(f.earliest ?? '')).toBeGreaterThanOrEqual(asked);
      expect(Date.parse(f.earliest ?? '')).toBeLessThanOrEqual(Date.now());
    };
    // A card never charged may be charged now.
    await expectNow([], 1);

    expect(await charge(attempt(who, `pay_${id}`))).toMatchObject({ outcome: 'declined', advice_code: '26' });
    const history = await readCardHistory(g, fingerprintOfToken(`tok_mastercard_card-${id}`));
    const declinedAt = Date.parse(history?.attempts[0]?.at ?? '');
    const waiting = await forecast([]);
    const allowedAt = new Date(declinedAt + 2 * DAY).toISOString();
    expect(waiting).toEqual({
      earliest: allowedAt,
      rule: `not before ${allowedAt}: mastercard-mac-26-after-2-days (rules 2026-11)`,
      candidates: 1,
    });
    // Two days on (the workflow's time, as a time-skipping test runs it) the card may be charged.
    const later = new Date(declinedAt + 2 * DAY).toISOString();
    expect(await forecast([], later)).toEqual({ earliest: later, rule: null, candidates: 1 });

    // A second card the customer may charge now wins; an excluded one does not count.
    const free = await addPaymentMethod(g, c.id, cardInput({ token: `tok_visa_card-${cardId()}_ok` }));
    await expectNow([], 2);
    expect(await forecast([free.id])).toMatchObject({ earliest: waiting.earliest, candidates: 1 });
  });

  it('count the decline a recovery starts from against its card, so another token of it is not charged', async () => {
    const id = cardId();
    const c = await createCustomer(g, {});
    const reported = await addPaymentMethod(g, c.id, cardInput({ token: `tok_visa_card-${id}_decline_stolen_card` }));
    const again = await addPaymentMethod(g, c.id, cardInput({ token: `tok_visa_card-${id}_stored_twice` }));
    const a = {
      ...attempt({ customer: c.id, method: again.id }, `pay_${id}`),
      reported: { payment_method_id: reported.id, decline_code: 'stolen_card' },
    };
    expect(await charge(a)).toMatchObject({
      outcome: 'limited',
      never: true,
      rule: expect.stringContaining('visa-category-1-never'),
    });
    // Counted once, however often the recovery charges.
    await charge({ ...a, idempotency_key: `${a.idempotency_key}:r1` });
    const history = await readCardHistory(g, fingerprintOfToken(`tok_visa_card-${id}`));
    expect(history?.attempts).toMatchObject([{ outcome: 'declined', decline_code: 'stolen_card' }]);
    // The attempt keys are digests: nothing in the card's history names the payment.
    expect(JSON.stringify(history)).not.toContain(`pay_${id}`);
    const charged = (await (await fetch(`${g.config.PERSONA_GATEWAY_URL}/v1/charges?customer_id=${c.id}`)).json()) as {
      data: unknown[];
    };
    expect(charged.data).toEqual([]);
  });

  it('count a reported Mastercard decline with its advice code: 03 bars the card, with no charge', async () => {
    const id = cardId();
    const c = await createCustomer(g, {});
    const pm = await addPaymentMethod(g, c.id, cardInput({ token: `tok_mastercard_card-${id}_decline_do_not_honor` }));
    const a = {
      ...attempt({ customer: c.id, method: pm.id }, `pay_${id}`),
      reported: { payment_method_id: pm.id, decline_code: 'do_not_honor', advice_code: '03' },
    };
    expect(await charge(a)).toMatchObject({ outcome: 'limited', rule: expect.stringContaining('mac-03') });
    const history = await readCardHistory(g, fingerprintOfToken(`tok_mastercard_card-${id}`));
    expect(history?.attempts).toMatchObject([{ outcome: 'declined', decline_code: 'do_not_honor', advice_code: '03' }]);
    // Only while the decline is kept: a reporter's advice code never bars a shared card for good.
    expect(history?.barred ?? null).toBeNull();
    const charged = (await (await fetch(`${g.config.PERSONA_GATEWAY_URL}/v1/charges?customer_id=${c.id}`)).json()) as {
      data: unknown[];
    };
    expect(charged.data).toEqual([]);
  });

  it('ask the account updater after Mastercard advice code 01, then retry', async () => {
    const id = cardId();
    const token = `tok_mastercard_card-${id}_decline_do_not_honor_mac_01`;
    const a = await holder(token);
    expect(await charge(attempt(a, `pay_${id}`))).toMatchObject({ outcome: 'declined', advice_code: '01' });
    const lookups = async () =>
      (
        (await (
          await fetch(
            `${g.config.PERSONA_GATEWAY_URL}/v1/account_updater/lookups?fingerprint=${fingerprintOfToken(token)}`,
          )
        ).json()) as { data: unknown[] }
      ).data;
    expect(await lookups()).toEqual([]);
    // The next charge asks the updater first, then goes ahead.
    expect(await charge(attempt(a, `pay_${id}`, 1))).toMatchObject({ outcome: 'declined', advice_code: '01' });
    expect(await lookups()).toHaveLength(1);
    expect((await readCardHistory(g, fingerprintOfToken(token)))?.lookups).toHaveLength(1);
  });

  it('hold a card of a network the table does not name to 15 charges in 30 days', async () => {
    const id = cardId();
    const a = await holder(`tok_amex_card-${id}`);
    const started = Date.now();
    for (let n = 0; n < 15; n++)
      expect(await charge(attempt(a, `pay_${id}_${n}`))).toMatchObject({ outcome: 'succeeded', network: 'amex' });
    const sixteenth = await charge(attempt(a, `pay_${id}_15`));
    expect(sixteenth).toMatchObject({
      outcome: 'limited',
      rule: expect.stringContaining('persona-other-networks-15-in-30-days'),
    });
    const notBefore = Date.parse((sixteenth as { not_before: string }).not_before);
    expect(notBefore).toBeGreaterThanOrEqual(started + 30 * DAY);
    expect(notBefore).toBeLessThanOrEqual(Date.now() + 30 * DAY);
  });
});
