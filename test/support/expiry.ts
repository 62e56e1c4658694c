/** Customers with cards at known expiry months, for the expiry-scan tests. */
import { addPaymentMethod, createCustomer, listCustomerEvents, type Graph, type PersonaEvent } from '../../graph';
import { cardInput, uniqueEmail } from './graph';

export interface CardHolder {
  customerId: string;
  /** The card under test. */
  cardId: string;
}

/**
 * A customer (verified email unless `reachable` is false) holding a card that expires in
 * `year`-`month`. By default that card is the default; with `isDefault: false` the customer's
 * default is another card that expires far in the future.
 */
export async function holderOfCard(
  g: Graph,
  year: number,
  month: number,
  options: { isDefault?: boolean; reachable?: boolean; token?: string } = {},
): Promise<CardHolder> {
  const customer = await createCustomer(g, {
    digital_identifiers:
      options.reachable === false ? [] : [{ type: 'email', value: uniqueEmail('expiry'), is_verified: true }],
  });
  if (options.isDefault === false)
    await addPaymentMethod(g, customer.id, cardInput({ expiry_year: 2035, expiry_month: 12 }), { makeDefault: true });
  const card = await addPaymentMethod(
    g,
    customer.id,
    cardInput({
      expiry_year: year,
      expiry_month: month,
      last_four: '1111',
      ...(options.token ? { token: options.token } : {}),
    }),
    {
      makeDefault: options.isDefault !== false,
    },
  );
  return { customerId: customer.id, cardId: card.id };
}

/** The expiry scan's events of these customers: warnings and status changes, oldest first. */
export async function expiryEvents(g: Graph, holders: CardHolder[]): Promise<PersonaEvent[]> {
  const events: PersonaEvent[] = [];
  for (const h of holders) {
    for (const type of ['CustomerNotified', 'PaymentMethodStatusChanged'] as const) {
      events.push(...(await listCustomerEvents(g, h.customerId, { type })));
    }
  }
  return events;
}
