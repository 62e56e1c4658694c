// Original file: proto/persona/v1/persona.proto


export interface PossibleMatch {
  'customer_id'?: (string);
  'probability'?: (number | string);
}

export interface PossibleMatch__Output {
  'customer_id'?: (string);
  'probability'?: (number);
}
