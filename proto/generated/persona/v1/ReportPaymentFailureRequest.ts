// Original file: proto/persona/v1/persona.proto

import type { Long } from '@grpc/proto-loader';

export interface ReportPaymentFailureRequest {
  'payment_id'?: (string);
  'customer_id'?: (string);
  'payment_method_id'?: (string);
  'amount'?: (number | string | Long);
  'currency'?: (string);
  'decline_code'?: (string);
  'advice_code'?: (string);
  'replaces'?: (string);
  '_advice_code'?: "advice_code";
  '_replaces'?: "replaces";
}

export interface ReportPaymentFailureRequest__Output {
  'payment_id'?: (string);
  'customer_id'?: (string);
  'payment_method_id'?: (string);
  'amount'?: (string);
  'currency'?: (string);
  'decline_code'?: (string);
  'advice_code'?: (string);
  'replaces'?: (string);
  '_advice_code'?: "advice_code";
  '_replaces'?: "replaces";
}
