// Original file: proto/persona/v1/persona.proto


export interface OnboardingIdentifier {
  'type'?: (string);
  'value'?: (string);
  'is_verified'?: (boolean);
}

export interface OnboardingIdentifier__Output {
  'type'?: (string);
  'value'?: (string);
  'is_verified'?: (boolean);
}
