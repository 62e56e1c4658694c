/** The defences of docs/security.md taken out one by one (test/mutations/mutation.ts). */
import type { Mutation } from './mutation';

export const graphMutations: Mutation[] = [];
