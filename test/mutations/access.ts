/** The defences of docs/security.md taken out one by one (test/mutations/mutation.ts). */
import type { Mutation } from './mutation';

export const accessMutations: Mutation[] = [
  {
    id: 'token-claims-required',
    threat: 'A token without `exp`/`iat`',
    removes: 'exp and iat no longer required',
    file: 'api/auth.ts',
    find: "requiredClaims: ['exp', 'iat'],",
    replace: 'requiredClaims: [],',
    test: 'test/integration/token-rules.test.ts',
    title: 'refuses a token without exp or iat',
  },
];
