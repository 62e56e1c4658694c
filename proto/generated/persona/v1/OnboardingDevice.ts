// Original file: proto/persona/v1/persona.proto


export interface OnboardingDevice {
  'fingerprint'?: (string);
  'ip'?: (string);
  'user_agent'?: (string);
  '_ip'?: "ip";
  '_user_agent'?: "user_agent";
}

export interface OnboardingDevice__Output {
  'fingerprint'?: (string);
  'ip'?: (string);
  'user_agent'?: (string);
  '_ip'?: "ip";
  '_user_agent'?: "user_agent";
}
