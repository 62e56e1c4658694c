// Original file: proto/persona/v1/persona.proto


export interface GetCustomerContextRequest {
  'customer_id'?: (string);
  'min_version'?: (string);
}

export interface GetCustomerContextRequest__Output {
  'customer_id'?: (string);
  'min_version'?: (string);
}
