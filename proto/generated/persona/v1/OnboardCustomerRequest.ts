// Original file: proto/persona/v1/persona.proto

import type { OnboardingCustomer as _persona_v1_OnboardingCustomer, OnboardingCustomer__Output as _persona_v1_OnboardingCustomer__Output } from '../../persona/v1/OnboardingCustomer';
import type { OnboardingPaymentMethod as _persona_v1_OnboardingPaymentMethod, OnboardingPaymentMethod__Output as _persona_v1_OnboardingPaymentMethod__Output } from '../../persona/v1/OnboardingPaymentMethod';
import type { OnboardingDevice as _persona_v1_OnboardingDevice, OnboardingDevice__Output as _persona_v1_OnboardingDevice__Output } from '../../persona/v1/OnboardingDevice';
import type { OnboardingAddress as _persona_v1_OnboardingAddress, OnboardingAddress__Output as _persona_v1_OnboardingAddress__Output } from '../../persona/v1/OnboardingAddress';
import type { OnboardingIdentifier as _persona_v1_OnboardingIdentifier, OnboardingIdentifier__Output as _persona_v1_OnboardingIdentifier__Output } from '../../persona/v1/OnboardingIdentifier';
import type { OnboardingPerson as _persona_v1_OnboardingPerson, OnboardingPerson__Output as _persona_v1_OnboardingPerson__Output } from '../../persona/v1/OnboardingPerson';

export interface OnboardCustomerRequest {
  'idempotency_key'?: (string);
  'wait'?: (boolean);
  'customer'?: (_persona_v1_OnboardingCustomer | null);
  'payment_method'?: (_persona_v1_OnboardingPaymentMethod | null);
  'device'?: (_persona_v1_OnboardingDevice | null);
  'address'?: (_persona_v1_OnboardingAddress | null);
  'digital_identifiers'?: (_persona_v1_OnboardingIdentifier)[];
  'person'?: (_persona_v1_OnboardingPerson | null);
}

export interface OnboardCustomerRequest__Output {
  'idempotency_key'?: (string);
  'wait'?: (boolean);
  'customer'?: (_persona_v1_OnboardingCustomer__Output);
  'payment_method'?: (_persona_v1_OnboardingPaymentMethod__Output);
  'device'?: (_persona_v1_OnboardingDevice__Output);
  'address'?: (_persona_v1_OnboardingAddress__Output);
  'digital_identifiers'?: (_persona_v1_OnboardingIdentifier__Output)[];
  'person'?: (_persona_v1_OnboardingPerson__Output);
}
