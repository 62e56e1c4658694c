// Original file: proto/persona/v1/persona.proto

import type { PossibleMatch as _persona_v1_PossibleMatch, PossibleMatch__Output as _persona_v1_PossibleMatch__Output } from '../../persona/v1/PossibleMatch';

export interface OnboardCustomerResponse {
  'workflow_id'?: (string);
  'outcome'?: (string);
  'customer_id'?: (string);
  'possible_match_count'?: (number);
  'possible_matches'?: (_persona_v1_PossibleMatch)[];
}

export interface OnboardCustomerResponse__Output {
  'workflow_id'?: (string);
  'outcome'?: (string);
  'customer_id'?: (string);
  'possible_match_count'?: (number);
  'possible_matches'?: (_persona_v1_PossibleMatch__Output)[];
}
