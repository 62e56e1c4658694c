// Original file: proto/persona/v1/persona.proto


export interface OnboardCustomerResponse {
  'workflow_id'?: (string);
  'outcome'?: (string);
  'customer_id'?: (string);
  'possible_matches'?: (string)[];
  'possible_match_count'?: (number);
}

export interface OnboardCustomerResponse__Output {
  'workflow_id'?: (string);
  'outcome'?: (string);
  'customer_id'?: (string);
  'possible_matches'?: (string)[];
  'possible_match_count'?: (number);
}
