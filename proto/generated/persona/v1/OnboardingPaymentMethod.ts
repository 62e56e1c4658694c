// Original file: proto/persona/v1/persona.proto


export interface OnboardingPaymentMethod {
  'type'?: (string);
  'token'?: (string);
  'brand'?: (string);
  'last_four'?: (string);
  'expiry_month'?: (number);
  'expiry_year'?: (number);
  '_brand'?: "brand";
  '_last_four'?: "last_four";
  '_expiry_month'?: "expiry_month";
  '_expiry_year'?: "expiry_year";
}

export interface OnboardingPaymentMethod__Output {
  'type'?: (string);
  'token'?: (string);
  'brand'?: (string);
  'last_four'?: (string);
  'expiry_month'?: (number);
  'expiry_year'?: (number);
  '_brand'?: "brand";
  '_last_four'?: "last_four";
  '_expiry_month'?: "expiry_month";
  '_expiry_year'?: "expiry_year";
}
