// Original file: proto/persona/v1/persona.proto


export interface MarkPaymentMethodInactiveRequest {
  'payment_method_id'?: (string);
  'reason'?: (string);
}

export interface MarkPaymentMethodInactiveRequest__Output {
  'payment_method_id'?: (string);
  'reason'?: (string);
}
