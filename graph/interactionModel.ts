/**
 * The vocabulary of interactions (graph/interactions.ts): what the agents report and what each
 * item's answer is. Types only, and the payment outcomes; graph/interactions.ts re-exports them.
 */
import type { ContextPolicy } from './context';

export const PAYMENT_OUTCOMES = ['succeeded', 'declined', 'refunded', 'charged_back'] as const;
export type PaymentOutcome = (typeof PAYMENT_OUTCOMES)[number];

export interface SeenDevice {
  fingerprint: string;
  ip?: string | undefined;
  user_agent?: string | undefined;
}

export interface ShippingAddress {
  street1: string;
  street2?: string | undefined;
  city: string;
  state?: string | undefined;
  zip_code: string;
  country: string;
  type: string;
}

interface Common {
  /** The sender's id: the same id for the same customer again is a no-op. */
  id: string;
  customer_id: string;
  /** RFC 3339. */
  occurred_at: string;
}

export type Interaction =
  | (Common & {
      type: 'payment';
      payment_method_id: string;
      /** Minor units of `currency`. */
      amount: number;
      currency: string;
      outcome: PaymentOutcome;
      decline_code?: string | undefined;
      transaction_id?: string | undefined;
      device?: SeenDevice | undefined;
      shipping_address?: ShippingAddress | undefined;
    })
  | (Common & { type: 'login'; device: SeenDevice })
  | (Common & { type: 'shipment'; address: ShippingAddress })
  /** The Oracle's predicted LTV: an exact decimal in the reporting currency, kept apart from `ltv`. */
  | (Common & { type: 'ltv_feedback'; predicted_ltv: string });

/** One kind of item. */
export type InteractionOf<T extends Interaction['type']> = Extract<Interaction, { type: T }>;

export type InteractionResult =
  /** `merged_into`: the item named a merged customer and was recorded on its survivor (graph/identityMerge.ts). */
  | { result: 'recorded'; merged_into?: string }
  | { result: 'duplicate' }
  /**
   * `field` is the item's own field (`currency`, `customer_id`, …); `retry`: refused only for now
   * (its customer is being merged), the same item sent again is recorded.
   */
  | { result: 'invalid'; field: string; problem: string; retry?: true };

export interface ProfileRules extends Pick<ContextPolicy, 'vipLtvMinor' | 'vipBasis'> {
  /** A customer in segment `New` becomes `Subscriber` after this many succeeded payments. */
  subscriberAfterPayments: number;
}
