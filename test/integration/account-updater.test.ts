/**
 * The networks' account updater, end to end on the real graph, worker and gateway simulator:
 * asked before an expiry warning (a card it renews is not warned about, and gets its new expiry
 * with PaymentMethodUpdatedByNetwork), and after an `expired_card` decline (the recovery charges
 * the renewed card at once and credits the recovery to the updater).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExpiryActivities } from '../../activities/expiry';
import { withoutRenewedCards } from '../../activities/accountUpdater';
import { HttpPaymentGateway, type AccountUpdater } from '../../clients/paymentGateway';
import type { Notification, NotificationSink } from '../../clients/notifications';
import { getPaymentMethodsByCustomer, listCustomerEvents } from '../../graph';
import { recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { fingerprintOfToken } from '../../simulators/gateway/app';
import { startHarness, type Harness } from '../support/api';
import { holderOfCard } from '../support/expiry';
import { cardIdentity, customerWithCards, paymentId, simulatorCharges } from '../support/recovery';

let h: Harness;
let gateway: HttpPaymentGateway;
beforeAll(async () => {
  h = await startHarness();
  gateway = new HttpPaymentGateway(h.graph.config.PERSONA_GATEWAY_URL, 5000);
});
afterAll(() => h?.close());

const cardId = cardIdentity;

async function lookups(token: string): Promise<unknown[]> {
  const fingerprint = fingerprintOfToken(token);
  const url = `${h.graph.config.PERSONA_GATEWAY_URL}/v1/account_updater/lookups?fingerprint=${fingerprint}`;
  return ((await (await fetch(url)).json()) as { data: unknown[] }).data;
}

describe('the account updater', () => {
  it('renews a card before its expiry warning: no warning, the new expiry, PaymentMethodUpdatedByNetwork', async () => {
    const token = `tok_visa_card-${cardId()}_au_expiry_09_2031`;
    // As of a day in 2003, whose window no other test's cards are in: both cards are due a warning.
    const renewed = await holderOfCard(h.graph, 2003, 4, { token });
    const unchanged = await holderOfCard(h.graph, 2003, 4);
    const delivered: Notification[] = [];
    const sink: NotificationSink = {
      async send(n) {
        delivered.push(n);
      },
    };
    const scan = createExpiryActivities({ graph: h.graph, notifications: sink, updater: gateway });
    const batch = { as_of: '2003-03-31', cursor: null, id_from: '', id_to: null, batch_size: 100 };
    const result = await scan.scanExpiryBatch(batch);
    expect(result.renewed).toBe(1);

    expect(delivered.filter((n) => n.customer_id === renewed.customerId)).toEqual([]);
    expect(delivered.filter((n) => n.customer_id === unchanged.customerId)).toHaveLength(1);
    const [card] = await getPaymentMethodsByCustomer(h.graph, renewed.customerId);
    expect(card).toMatchObject({ id: renewed.cardId, status: 'active', expiry_month: 9, expiry_year: 2031 });
    const events = await listCustomerEvents(h.graph, renewed.customerId, { type: 'PaymentMethodUpdatedByNetwork' });
    expect(events.map((e) => e.payload)).toEqual([
      {
        payment_method_id: renewed.cardId,
        source: 'account_updater',
        expiry_from: '2003-04',
        expiry_to: '2031-09',
        token_replaced: false,
      },
    ]);
    expect(await lookups(token)).toHaveLength(1);

    // The renewed card is out of the window: a second scan neither asks nor warns again.
    const again = await scan.scanExpiryBatch(batch);
    expect(again.renewed).toBe(0);
    expect(await lookups(token)).toHaveLength(1);
    expect(delivered.filter((n) => n.customer_id === renewed.customerId)).toEqual([]);
  });

  it('stops asking an updater that failed three times in a row: every card is warned about as it is', async () => {
    const { cards } = await customerWithCards(
      h.graph,
      Array.from({ length: 6 }, () => `tok_visa_card-${cardId()}_au_expiry_09_2040`),
    );
    let asked = 0;
    const down: AccountUpdater = {
      async lookup() {
        asked++;
        throw new Error('the account updater is unavailable');
      },
    };
    const beats: number[] = [];
    const result = await withoutRenewedCards(h.graph, down, cards, (id) => id, {
      lanes: 1,
      progress: (done) => beats.push(done),
    });
    expect(result).toEqual({ kept: cards, renewed: 0, not_asked: 3 });
    expect(asked).toBe(3);
    expect(beats).toEqual([1, 2, 3]);
    // One that answers again resets the count: a failure now and then never stops the batch.
    let calls = 0;
    const flaky: AccountUpdater = {
      async lookup(token) {
        if (++calls % 2 === 0) throw new Error('a timeout');
        return gateway.lookup(token);
      },
    };
    const again = await withoutRenewedCards(h.graph, flaky, cards, (id) => id, { lanes: 1 });
    expect(again).toEqual({ kept: cards.filter((_, i) => i % 2 === 1), renewed: 3, not_asked: 0 });
  });

  it('recovers an expired_card payment on the card the updater reissued, at once, credited to it', async () => {
    const token = `tok_visa_card-${cardId()}_au_replaced_decline_expired_card`;
    const { customerId, cards } = await customerWithCards(h.graph, [token, `tok_visa_${randomUUID()}`]);
    const payment = paymentId();
    const res = await h.app.request('/api/v1/payment-failures', {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.token('payments:report')}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        payment_id: payment,
        customer_id: customerId,
        payment_method_id: cards[0],
        amount: 2599,
        currency: 'EUR',
        decline_code: 'expired_card',
      }),
    });
    expect(res.status).toBe(202);
    const status = (await h.client.workflow.getHandle(recoveryWorkflowId(payment)).result()) as RecoveryStatus;
    expect(status).toMatchObject({ state: 'recovered', recovered_with: cards[0], recovered_by: 'account_updater' });

    // One charge, on the reissued token (it charges; the old one declines), none on the other card.
    const charges = await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, customerId);
    expect(charges).toMatchObject([{ idempotency_key: `${payment}:${cards[0]}`, status: 'succeeded' }]);
    const wallet = await getPaymentMethodsByCustomer(h.graph, customerId);
    expect(wallet.find((p) => p.id === cards[0])).toMatchObject({
      status: 'active',
      is_default: true,
      expiry_month: 12,
    });
    const types = (await listCustomerEvents(h.graph, customerId)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['PaymentMethodUpdatedByNetwork', 'PaymentRecovered']));
    // Expired by the decline, then active again by the updater (the history lists the newest first).
    const statuses = await listCustomerEvents(h.graph, customerId, { type: 'PaymentMethodStatusChanged' });
    expect(statuses.map((e) => [e.payload.from, e.payload.to])).toEqual([
      ['expired', 'active'],
      ['active', 'expired'],
    ]);
    const recovered = await listCustomerEvents(h.graph, customerId, { type: 'PaymentRecovered' });
    expect(recovered.map((e) => e.payload.mechanism)).toEqual(['account_updater']);
    const updated = await listCustomerEvents(h.graph, customerId, { type: 'PaymentMethodUpdatedByNetwork' });
    expect(updated.map((e) => e.payload)).toMatchObject([{ token_replaced: true, expiry_from: '2035-12' }]);
    // The token never leaves the graph in an event.
    expect(JSON.stringify(updated)).not.toContain('tok_');
  });
});
