// Original file: proto/persona/v1/persona.proto

import type { RecoveryCharge as _persona_v1_RecoveryCharge, RecoveryCharge__Output as _persona_v1_RecoveryCharge__Output } from '../../persona/v1/RecoveryCharge';

export interface OwnerStopAnswer {
  'payment_id'?: (string);
  'outcome'?: (string);
  'charge'?: (_persona_v1_RecoveryCharge | null);
  'state'?: (string);
  'stop_reason'?: (string);
  'status_url'?: (string);
  'unknown_charge'?: (string);
}

export interface OwnerStopAnswer__Output {
  'payment_id'?: (string);
  'outcome'?: (string);
  'charge'?: (_persona_v1_RecoveryCharge__Output);
  'state'?: (string);
  'stop_reason'?: (string);
  'status_url'?: (string);
  'unknown_charge'?: (string);
}
