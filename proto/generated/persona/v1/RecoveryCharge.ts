// Original file: proto/persona/v1/persona.proto

import type { Long } from '@grpc/proto-loader';

export interface RecoveryCharge {
  'payment_method_id'?: (string);
  'charge_id'?: (string);
  'amount'?: (number | string | Long);
  'currency'?: (string);
}

export interface RecoveryCharge__Output {
  'payment_method_id'?: (string);
  'charge_id'?: (string);
  'amount'?: (string);
  'currency'?: (string);
}
