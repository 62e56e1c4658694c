// Original file: proto/persona/v1/persona.proto

import type { TrustedDevice as _persona_v1_TrustedDevice, TrustedDevice__Output as _persona_v1_TrustedDevice__Output } from '../../persona/v1/TrustedDevice';

export interface CustomerContext {
  'customer_id'?: (string);
  'status'?: (string);
  'segment'?: (string);
  'is_vip'?: (boolean);
  'trusted_devices'?: (_persona_v1_TrustedDevice)[];
  'default_payment_method_id'?: (string);
  'active_payment_methods'?: (string)[];
  'ltv'?: (string);
  'ltv_currency'?: (string);
  'predicted_ltv'?: (string);
  'stale'?: (boolean);
  'as_of'?: (string);
  'merged_into'?: (string);
}

export interface CustomerContext__Output {
  'customer_id'?: (string);
  'status'?: (string);
  'segment'?: (string);
  'is_vip'?: (boolean);
  'trusted_devices'?: (_persona_v1_TrustedDevice__Output)[];
  'default_payment_method_id'?: (string);
  'active_payment_methods'?: (string)[];
  'ltv'?: (string);
  'ltv_currency'?: (string);
  'predicted_ltv'?: (string);
  'stale'?: (boolean);
  'as_of'?: (string);
  'merged_into'?: (string);
}
