// Original file: proto/persona/v1/persona.proto

import type { StringValue as _google_protobuf_StringValue, StringValue__Output as _google_protobuf_StringValue__Output } from '../../google/protobuf/StringValue';

export interface ReportFraudOutcomeRequest {
  'outcome_id'?: (string);
  'customer_id'?: (string);
  'outcome'?: (string);
  'device_id'?: (_google_protobuf_StringValue | null);
  'payment_method_id'?: (_google_protobuf_StringValue | null);
}

export interface ReportFraudOutcomeRequest__Output {
  'outcome_id'?: (string);
  'customer_id'?: (string);
  'outcome'?: (string);
  'device_id'?: (_google_protobuf_StringValue__Output);
  'payment_method_id'?: (_google_protobuf_StringValue__Output);
}
