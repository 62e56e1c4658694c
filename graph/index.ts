/**
 * The identity graph: build its handle once per process and pass it down. Its sessions share one
 * bookmark manager (graph/bookmarks.ts): build a new handle after the graph was restored.
 */
import neo4j, { type Driver } from 'neo4j-driver';
import type { KeyRing } from '../config/keyRing';
import { DEFAULT_GRAPH_POLICY, type Graph, type GraphPolicy } from './graph';
import { TokenCipher } from './tokens';

export function createGraph(
  driver: Driver,
  database: string,
  tokenKeys: KeyRing,
  policy: Partial<GraphPolicy> = {},
): Graph {
  return {
    driver,
    database,
    bookmarks: neo4j.bookmarkManager(),
    tokens: new TokenCipher(tokenKeys),
    policy: { ...DEFAULT_GRAPH_POLICY, ...policy },
  };
}

export * from './addresses';
export * from './bookmarks';
export * from './context';
export * from './customers';
export * from './devices';
export * from './driver';
export * from './errors';
export * from './events';
export * from './graph';
export * from './identifiers';
export * from './identity';
export * from './model';
export * from './onboarding';
export * from './onboardingRequest';
export * from './resolution';
export * from './paymentMethods';
export * from './walletDefaults';
export * from './schema';
export * from './schemaRules';
export * from './tokens';
