// Original file: proto/persona/v1/persona.proto


export interface OnboardingCustomer {
  'segment'?: (string);
  'ltv'?: (number | string);
  'acquisition_date'?: (string);
  '_segment'?: "segment";
  '_ltv'?: "ltv";
  '_acquisition_date'?: "acquisition_date";
}

export interface OnboardingCustomer__Output {
  'segment'?: (string);
  'ltv'?: (number);
  'acquisition_date'?: (string);
  '_segment'?: "segment";
  '_ltv'?: "ltv";
  '_acquisition_date'?: "acquisition_date";
}
