// Original file: proto/persona/v1/persona.proto


export interface TrustedDevice {
  'device_id'?: (string);
  'fingerprint'?: (string);
  'trust_score'?: (number | string);
}

export interface TrustedDevice__Output {
  'device_id'?: (string);
  'fingerprint'?: (string);
  'trust_score'?: (number);
}
