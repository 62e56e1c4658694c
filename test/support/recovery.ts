/** Shared set-up for payment-recovery end-to-end tests: customers with cards, the simulator's records. */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { ChargeRecord } from '../../simulators/gateway/app';
import { addPaymentMethod, createCustomer } from '../../graph';
import { containsIssuedCardNumber } from '../../graph/tokens';
import type { TestGraph } from './graph';
import { uniqueEmail } from './graph';
import { until } from './wait';

/** A customer with a verified email and one card per token, the first one the default. */
export async function customerWithCards(graph: TestGraph, tokens: string[]) {
  const customer = await createCustomer(graph, {
    digital_identifiers: [{ type: 'email', value: uniqueEmail(), is_verified: true }],
  });
  const cards: string[] = [];
  for (const [i, token] of tokens.entries()) {
    const pm = await addPaymentMethod(graph, customer.id, {
      type: 'card',
      token,
      brand: 'visa',
      last_four: String(1000 + i),
      expiry_month: 12,
      expiry_year: 2035,
    });
    cards.push(pm.id);
  }
  return { customerId: customer.id, cards };
}

/**
 * A card identity for the simulator's test tokens (`card-<id>`): letters only, since 13 or more
 * digits in a row of a hex id can pass Luhn, and a token that looks like a card number is refused.
 */
export function cardIdentity(): string {
  return randomUUID()
    .replace(/-/g, '')
    .replace(/\d/g, (d) => 'ghijklmnop'.charAt(Number(d)));
}

/** Every charge attempt the gateway simulator recorded for the customer. */
export async function simulatorCharges(gatewayUrl: string, customerId: string): Promise<ChargeRecord[]> {
  const res = await fetch(`${gatewayUrl}/v1/charges?customer_id=${customerId}`);
  return ((await res.json()) as { data: ChargeRecord[] }).data;
}

/**
 * A fresh payment id. About one random hex id in 7,400 holds a run of 15 or 16 digits that passes
 * Luhn under a card network's prefix, which the api refuses as a card number (400 `payment_id`):
 * such a draw is drawn again.
 */
export function paymentId(): string {
  for (;;) {
    const id = `pay_${randomUUID().replace(/-/g, '')}`;
    if (!containsIssuedCardNumber(id)) return id;
  }
}

/**
 * Temporal forgets a workflow's closed run, as its namespace retention does after 30 days: deleted,
 * and waited for (the server deletes in the background once its transfer queue checkpoints past the
 * run's close, every second on the stack: stack/launch.ts).
 */
export async function forgetWorkflow(client: Client, namespace: string, workflowId: string): Promise<void> {
  await client.workflowService.deleteWorkflowExecution({ namespace, workflowExecution: { workflowId } });
  const handle = client.workflow.getHandle(workflowId);
  await until(
    async () =>
      await handle.describe().then(
        () => false,
        () => true,
      ),
    120_000,
  );
}
