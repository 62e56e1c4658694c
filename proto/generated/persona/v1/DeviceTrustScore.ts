// Original file: proto/persona/v1/persona.proto


export interface DeviceTrustScore {
  'device_id'?: (string);
  'trust_score'?: (number | string);
  'previous_trust_score'?: (number | string);
  'consistency_token'?: (string);
}

export interface DeviceTrustScore__Output {
  'device_id'?: (string);
  'trust_score'?: (number);
  'previous_trust_score'?: (number);
  'consistency_token'?: (string);
}
