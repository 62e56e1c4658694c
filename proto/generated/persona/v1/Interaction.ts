// Original file: proto/persona/v1/persona.proto

import type { OnboardingDevice as _persona_v1_OnboardingDevice, OnboardingDevice__Output as _persona_v1_OnboardingDevice__Output } from '../../persona/v1/OnboardingDevice';
import type { OnboardingAddress as _persona_v1_OnboardingAddress, OnboardingAddress__Output as _persona_v1_OnboardingAddress__Output } from '../../persona/v1/OnboardingAddress';
import type { Long } from '@grpc/proto-loader';

export interface Interaction {
  'id'?: (string);
  'type'?: (string);
  'customer_id'?: (string);
  'occurred_at'?: (string);
  'payment_method_id'?: (string);
  'amount'?: (number | string | Long);
  'currency'?: (string);
  'outcome'?: (string);
  'decline_code'?: (string);
  'transaction_id'?: (string);
  'device'?: (_persona_v1_OnboardingDevice | null);
  'shipping_address'?: (_persona_v1_OnboardingAddress | null);
  'address'?: (_persona_v1_OnboardingAddress | null);
  'predicted_ltv'?: (string);
  '_payment_method_id'?: "payment_method_id";
  '_amount'?: "amount";
  '_currency'?: "currency";
  '_outcome'?: "outcome";
  '_decline_code'?: "decline_code";
  '_transaction_id'?: "transaction_id";
  '_predicted_ltv'?: "predicted_ltv";
}

export interface Interaction__Output {
  'id'?: (string);
  'type'?: (string);
  'customer_id'?: (string);
  'occurred_at'?: (string);
  'payment_method_id'?: (string);
  'amount'?: (string);
  'currency'?: (string);
  'outcome'?: (string);
  'decline_code'?: (string);
  'transaction_id'?: (string);
  'device'?: (_persona_v1_OnboardingDevice__Output);
  'shipping_address'?: (_persona_v1_OnboardingAddress__Output);
  'address'?: (_persona_v1_OnboardingAddress__Output);
  'predicted_ltv'?: (string);
  '_payment_method_id'?: "payment_method_id";
  '_amount'?: "amount";
  '_currency'?: "currency";
  '_outcome'?: "outcome";
  '_decline_code'?: "decline_code";
  '_transaction_id'?: "transaction_id";
  '_predicted_ltv'?: "predicted_ltv";
}
