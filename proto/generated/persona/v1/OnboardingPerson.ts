// Original file: proto/persona/v1/persona.proto


export interface OnboardingPerson {
  'given_name'?: (string);
  'family_name'?: (string);
  'birth_date'?: (string);
  '_given_name'?: "given_name";
  '_family_name'?: "family_name";
  '_birth_date'?: "birth_date";
}

export interface OnboardingPerson__Output {
  'given_name'?: (string);
  'family_name'?: (string);
  'birth_date'?: (string);
  '_given_name'?: "given_name";
  '_family_name'?: "family_name";
  '_birth_date'?: "birth_date";
}
