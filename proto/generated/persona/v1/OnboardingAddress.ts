// Original file: proto/persona/v1/persona.proto


export interface OnboardingAddress {
  'street1'?: (string);
  'street2'?: (string);
  'city'?: (string);
  'state'?: (string);
  'zip_code'?: (string);
  'country'?: (string);
  'type'?: (string);
  '_street2'?: "street2";
  '_state'?: "state";
  '_type'?: "type";
}

export interface OnboardingAddress__Output {
  'street1'?: (string);
  'street2'?: (string);
  'city'?: (string);
  'state'?: (string);
  'zip_code'?: (string);
  'country'?: (string);
  'type'?: (string);
  '_street2'?: "street2";
  '_state'?: "state";
  '_type'?: "type";
}
