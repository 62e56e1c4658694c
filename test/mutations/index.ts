/**
 * Every defence of docs/security.md taken out once (test/mutations/mutation.ts), in the order of
 * the threat table's lines: tokens, takeover and onboarding (access); fraud, locks, the read
 * cache, the feed and limits (graph); interactions and LTV; merges, buckets and the webhook;
 * charges and ops decisions; the read path and workflow histories; Kafka, transport and money;
 * payment data, the console and bulk actions (console).
 */
import type { Mutation } from './mutation';
import { accessMutations } from './access';
import { graphMutations } from './graph';
import { interactionsMutations } from './interactions';
import { mergesMutations } from './merges';
import { chargesMutations } from './charges';
import { historiesMutations } from './histories';
import { kafkaMutations } from './kafka';
import { consoleMutations } from './console';

export const SECTIONS: Record<string, Mutation[]> = {
  access: accessMutations,
  graph: graphMutations,
  interactions: interactionsMutations,
  merges: mergesMutations,
  charges: chargesMutations,
  histories: historiesMutations,
  kafka: kafkaMutations,
  console: consoleMutations,
};

export const MUTATIONS: Mutation[] = Object.values(SECTIONS).flat();
