// Original file: proto/persona/v1/persona.proto

import type { WalletItem as _persona_v1_WalletItem, WalletItem__Output as _persona_v1_WalletItem__Output } from '../../persona/v1/WalletItem';

export interface CheckoutOptions {
  'data'?: (_persona_v1_WalletItem)[];
  'trusted_device'?: (boolean);
  'stale'?: (boolean);
  'as_of'?: (string);
  'merged_into'?: (string);
}

export interface CheckoutOptions__Output {
  'data'?: (_persona_v1_WalletItem__Output)[];
  'trusted_device'?: (boolean);
  'stale'?: (boolean);
  'as_of'?: (string);
  'merged_into'?: (string);
}
