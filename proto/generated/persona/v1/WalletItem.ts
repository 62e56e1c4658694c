// Original file: proto/persona/v1/persona.proto


export interface WalletItem {
  'id'?: (string);
  'type'?: (string);
  'status'?: (string);
  'brand'?: (string);
  'last_four'?: (string);
  'expiry_month'?: (number);
  'expiry_year'?: (number);
  'is_default'?: (boolean);
  'last_used'?: (string);
  'customer_id'?: (string);
  'consistency_token'?: (string);
}

export interface WalletItem__Output {
  'id'?: (string);
  'type'?: (string);
  'status'?: (string);
  'brand'?: (string);
  'last_four'?: (string);
  'expiry_month'?: (number);
  'expiry_year'?: (number);
  'is_default'?: (boolean);
  'last_used'?: (string);
  'customer_id'?: (string);
  'consistency_token'?: (string);
}
