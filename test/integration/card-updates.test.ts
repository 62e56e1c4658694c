/**
 * The account updater's answer applied to a stored card (graph/cardUpdates.ts), on the real graph:
 * what it renews, what it refuses, and that the same answer twice is one renewal.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPaymentMethodsByCustomer, listCustomerEvents } from '../../graph';
import { cardOfMethod, methodCards, readCardHistory, setCardOfMethod } from '../../graph/cardHistory';
import { CardRenamedError, reserveGovernedCharge } from '../../graph/chargeReservation';
import { loadRuleTable } from '../../payments/ruleTables';
import { applyUpdaterAnswer } from '../../graph/cardUpdates';
import { revealPaymentToken } from '../../graph/paymentMethods';
import { updatePaymentMethodStatus } from '../../graph/walletDefaults';
import { seedCustomer } from '../support/builders';
import { openTestGraph, type TestGraph } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

async function card(expiry = { expiry_month: 4, expiry_year: 2027 }) {
  const c = await seedCustomer(g, { cards: [{ token: `tok_visa_${randomUUID()}`, ...expiry }] });
  return { customerId: c.customerId, id: c.cardId };
}
const renewedEvents = async (customerId: string) =>
  (await listCustomerEvents(g, customerId, { type: 'PaymentMethodUpdatedByNetwork' })).map((e) => e.payload);

describe('applying the account updater’s answer', () => {
  it('renews an expired card once: a retried call is told it has the renewal, and writes nothing', async () => {
    const c = await card();
    await updatePaymentMethodStatus(g, c.id, 'expired', { reason: 'declined: expired_card' });
    const answer = { status: 'updated' as const, expiry_month: 9, expiry_year: 2031 };
    expect(await applyUpdaterAnswer(g, c.id, answer)).toEqual({
      outcome: 'updated',
      token_replaced: false,
      reactivated: true,
      expiry: '2031-09',
    });
    expect(await applyUpdaterAnswer(g, c.id, answer)).toMatchObject({ outcome: 'updated', already: true });
    expect(await renewedEvents(c.customerId)).toEqual([
      {
        payment_method_id: c.id,
        source: 'account_updater',
        expiry_from: '2027-04',
        expiry_to: '2031-09',
        token_replaced: false,
      },
    ]);
    const [pm] = await getPaymentMethodsByCustomer(g, c.customerId);
    expect(pm).toMatchObject({ status: 'active', is_default: true, expiry_month: 9, expiry_year: 2031 });
  });

  it('stores a reissued token encrypted, with its own expiry, and has the processor name the card again', async () => {
    // The new card expires before the old one would have: it is another card, with its own expiry.
    const c = await card({ expiry_month: 4, expiry_year: 2032 });
    await setCardOfMethod(g, c.id, { fingerprint: `fp_${randomUUID()}`, network: 'visa' });
    const token = `tok_visa_${randomUUID()}`;
    expect(
      await applyUpdaterAnswer(g, c.id, { status: 'replaced', token, expiry_month: 1, expiry_year: 2030 }),
    ).toMatchObject({ outcome: 'updated', token_replaced: true, reactivated: false });
    expect(await revealPaymentToken(g, c.id)).toBe(token);
    expect(await cardOfMethod(g, c.id)).toBeNull();
    expect(JSON.stringify(await listCustomerEvents(g, c.customerId))).not.toContain(token);
  });

  it('refuses what it must not apply, and writes nothing for it', async () => {
    const now = new Date('2026-11-25T00:00:00Z');
    const c = await card();
    const refusals: [Parameters<typeof applyUpdaterAnswer>[2], RegExp][] = [
      [{ status: 'updated', expiry_month: 13, expiry_year: 2030 }, /not a month/],
      [{ status: 'updated', expiry_month: 1, expiry_year: 2999 }, /not a month/],
      [{ status: 'updated', expiry_month: 10, expiry_year: 2026 }, /is past/],
      [{ status: 'updated', expiry_month: 1, expiry_year: 2027 }, /earlier than the card's 2027-04/],
      [{ status: 'replaced', token: '4242424242424242', expiry_month: 1, expiry_year: 2030 }, /not a gateway token/],
      [{ status: 'closed' }, /closed/],
    ];
    for (const [answer, reason] of refusals)
      expect(await applyUpdaterAnswer(g, c.id, answer, now)).toEqual({
        outcome: 'not_applied',
        reason: expect.stringMatching(reason),
      });
    expect(await applyUpdaterAnswer(g, c.id, { status: 'no_change' }, now)).toEqual({ outcome: 'unchanged' });
    // The expiry it already has: nothing new, and an expired card stays expired.
    await updatePaymentMethodStatus(g, c.id, 'expired');
    expect(await applyUpdaterAnswer(g, c.id, { status: 'updated', expiry_month: 4, expiry_year: 2027 }, now)).toEqual({
      outcome: 'unchanged',
    });
    expect(await renewedEvents(c.customerId)).toEqual([]);
  });

  it('never renews a card blocked for fraud or deactivated, nor one that is gone', async () => {
    for (const status of ['compromised', 'inactive'] as const) {
      const c = await card();
      await updatePaymentMethodStatus(g, c.id, status);
      expect(await applyUpdaterAnswer(g, c.id, { status: 'updated', expiry_month: 9, expiry_year: 2031 })).toEqual({
        outcome: 'not_applied',
        reason: `the payment method is ${status}`,
      });
    }
    expect(
      await applyUpdaterAnswer(g, randomUUID(), { status: 'updated', expiry_month: 9, expiry_year: 2031 }),
    ).toEqual({ outcome: 'not_applied', reason: 'the payment method is gone' });
  });
});

describe('a card renewed while its charge is prepared', () => {
  it('keeps no name for the token it replaced, and is not charged under the old card: named again', async () => {
    const c = await card();
    const table = loadRuleTable();
    // The charge read the method and had its token named (before the renewal)...
    const [read] = (await methodCards(g, c.customerId, [c.id])).values();
    const old = { fingerprint: `fp_${randomUUID()}`, network: 'visa' };
    // ...then the updater replaced the token, and the renewal cleared the name.
    await applyUpdaterAnswer(g, c.id, {
      status: 'replaced',
      token: `tok_visa_${randomUUID()}`,
      expiry_month: 1,
      expiry_year: 2031,
    });
    const reserve = () =>
      reserveGovernedCharge(g, {
        payment_id: `pay_${randomUUID()}`,
        customer_id: c.customerId,
        payment_method_id: c.id,
        key: `pay_${randomUUID()}:${c.id}`,
        amount: 1999,
        currency: 'USD',
        initiator: 'mit',
        max: 15,
        card: { identity: old, table },
        names: [{ payment_method_id: c.id, card: old, sealed: (read as { sealed: string }).sealed }],
      });
    await expect(reserve()).rejects.toBeInstanceOf(CardRenamedError);
    expect(await cardOfMethod(g, c.id)).toBeNull();
    expect(await readCardHistory(g, old.fingerprint)).toBeNull();
  });

  it('never names or counts another customer’s method', async () => {
    const mine = await card();
    const theirs = await card();
    expect([...(await methodCards(g, mine.customerId, [mine.id, theirs.id])).keys()]).toEqual([mine.id]);
  });
});
