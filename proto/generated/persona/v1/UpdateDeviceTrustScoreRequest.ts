// Original file: proto/persona/v1/persona.proto


export interface UpdateDeviceTrustScoreRequest {
  'device_id'?: (string);
  'trust_score'?: (number | string);
  'reason'?: (string);
}

export interface UpdateDeviceTrustScoreRequest__Output {
  'device_id'?: (string);
  'trust_score'?: (number);
  'reason'?: (string);
}
