// Original file: proto/persona/v1/persona.proto


export interface ReportFraudOutcomeRequest {
  'outcome_id'?: (string);
  'customer_id'?: (string);
  'outcome'?: (string);
  'device_id'?: (string);
  'payment_method_id'?: (string);
  '_device_id'?: "device_id";
  '_payment_method_id'?: "payment_method_id";
}

export interface ReportFraudOutcomeRequest__Output {
  'outcome_id'?: (string);
  'customer_id'?: (string);
  'outcome'?: (string);
  'device_id'?: (string);
  'payment_method_id'?: (string);
  '_device_id'?: "device_id";
  '_payment_method_id'?: "payment_method_id";
}
