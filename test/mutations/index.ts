/**
 * Every defence of docs/security.md taken out once (test/mutations/mutation.ts), by part of the
 * threat table: tokens, takeover and onboarding (access); fraud, locks, the read
 * cache, the feed and limits (graph); interactions and LTV; LTV feedback, batches, buckets and
 * rate classes (limits); merges and the webhook; charges and ops decisions; the read path and
 * workflow histories; Kafka, transport and money; payment data and the console; bulk actions.
 */
import type { Mutation } from './mutation';
import { accessMutations } from './access';
import { graphMutations } from './graph';
import { interactionsMutations } from './interactions';
import { limitsMutations } from './limits';
import { mergesMutations } from './merges';
import { chargesMutations } from './charges';
import { historiesMutations } from './histories';
import { kafkaMutations } from './kafka';
import { consoleMutations } from './console';
import { bulkMutations } from './bulk';

export const SECTIONS: Record<string, Mutation[]> = {
  access: accessMutations,
  graph: graphMutations,
  interactions: interactionsMutations,
  limits: limitsMutations,
  merges: mergesMutations,
  charges: chargesMutations,
  histories: historiesMutations,
  kafka: kafkaMutations,
  console: consoleMutations,
  bulk: bulkMutations,
};

export const MUTATIONS: Mutation[] = Object.values(SECTIONS).flat();
