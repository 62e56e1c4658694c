// Original file: proto/persona/v1/persona.proto

import type { InteractionResult as _persona_v1_InteractionResult, InteractionResult__Output as _persona_v1_InteractionResult__Output } from '../../persona/v1/InteractionResult';

export interface RecordInteractionsResponse {
  'data'?: (_persona_v1_InteractionResult)[];
}

export interface RecordInteractionsResponse__Output {
  'data'?: (_persona_v1_InteractionResult__Output)[];
}
