// Original file: proto/persona/v1/persona.proto

import type { Interaction as _persona_v1_Interaction, Interaction__Output as _persona_v1_Interaction__Output } from '../../persona/v1/Interaction';

export interface RecordInteractionsRequest {
  'data'?: (_persona_v1_Interaction)[];
}

export interface RecordInteractionsRequest__Output {
  'data'?: (_persona_v1_Interaction__Output)[];
}
