// Original file: proto/persona/v1/persona.proto


export interface OnboardingCustomer {
  'segment'?: (string);
  'acquisition_date'?: (string);
  'ltv'?: (string);
  '_segment'?: "segment";
  '_acquisition_date'?: "acquisition_date";
  '_ltv'?: "ltv";
}

export interface OnboardingCustomer__Output {
  'segment'?: (string);
  'acquisition_date'?: (string);
  'ltv'?: (string);
  '_segment'?: "segment";
  '_acquisition_date'?: "acquisition_date";
  '_ltv'?: "ltv";
}
