// Original file: proto/persona/v1/persona.proto


export interface ReportPaymentNoLongerOwedRequest {
  'payment_id'?: (string);
  'reason'?: (string);
  'note'?: (string);
  'wait'?: (boolean);
  '_note'?: "note";
}

export interface ReportPaymentNoLongerOwedRequest__Output {
  'payment_id'?: (string);
  'reason'?: (string);
  'note'?: (string);
  'wait'?: (boolean);
  '_note'?: "note";
}
