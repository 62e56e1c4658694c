// Original file: proto/persona/v1/persona.proto


export interface GetCheckoutOptionsRequest {
  'customer_id'?: (string);
  'device_id'?: (string);
  'min_version'?: (string);
}

export interface GetCheckoutOptionsRequest__Output {
  'customer_id'?: (string);
  'device_id'?: (string);
  'min_version'?: (string);
}
