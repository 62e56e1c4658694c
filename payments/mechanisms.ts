/**
 * What recovered a failed payment, exactly one per recovery, in this order of precedence:
 *   account_updater     — a card the networks' account updater renewed during the recovery;
 *   customer_added_card — a card the customer added while the recovery ran;
 *   retry               — the method that failed, charged again;
 *   cascade             — another of the customer's methods, there before the payment failed.
 */
export const RECOVERY_MECHANISMS = ['account_updater', 'customer_added_card', 'retry', 'cascade'] as const;
export type RecoveryMechanism = (typeof RECOVERY_MECHANISMS)[number];

/** The one mechanism that recovered a payment with `paymentMethodId`. */
export function recoveryMechanism(
  paymentMethodId: string,
  facts: { failed: string; renewed: readonly string[]; added: readonly string[] },
): RecoveryMechanism {
  if (facts.renewed.includes(paymentMethodId)) return 'account_updater';
  if (facts.added.includes(paymentMethodId)) return 'customer_added_card';
  return paymentMethodId === facts.failed ? 'retry' : 'cascade';
}
