// Original file: proto/persona/v1/persona.proto


export interface InteractionResult {
  'id'?: (string);
  'result'?: (string);
  'field'?: (string);
  'problem'?: (string);
  'consistency_token'?: (string);
}

export interface InteractionResult__Output {
  'id'?: (string);
  'result'?: (string);
  'field'?: (string);
  'problem'?: (string);
  'consistency_token'?: (string);
}
