/** The identity-graph handle as configured for this deployment. */
import type { CountryCode } from 'libphonenumber-js';
import type { Driver } from 'neo4j-driver';
import type { Config } from '../config/env';
import type { RequestContext } from './requestContext';
import { createGraph, type Graph, type TransactionLimits } from '../graph';
import { graphHistoryKeys, type HistoryKeyStore } from '../graph/historyKeys';

export function graphFromConfig(driver: Driver, config: Config, limits?: TransactionLimits): Graph {
  const graph = createGraph(driver, config.NEO4J_DATABASE, config.tokenKeys, {
    defaultPhoneRegion: config.PERSONA_DEFAULT_PHONE_REGION as CountryCode,
    sharedDeviceLimit: config.PERSONA_SHARED_DEVICE_LIMIT,
    reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
    maxPaymentMethods: config.PERSONA_MAX_PAYMENT_METHODS,
  });
  return limits ? { ...graph, limits } : graph;
}

/**
 * The api's limits: no transaction outlives the request that waits for it, and a write whose
 * request was already answered 503 (out of time) rolls back instead of committing late.
 */
export function requestLimits(config: Config, requests: RequestContext): TransactionLimits {
  return {
    transactionMs: config.PERSONA_REQUEST_DEADLINE_MS,
    hotReadMs: config.PERSONA_READ_DEADLINE_MS,
    mayCommit: () => !requests.abandoned,
  };
}

/**
 * The customers' keys as the Kafka publisher seals payloads with them (graph/eventCipher.ts): a
 * page reads each customer's key once a while, not per event; a key an erasure destroyed is gone
 * for the publisher when its cache entry ends (TTL).
 */
export function publisherEventKeys(graph: Graph, config: Config): HistoryKeyStore {
  return graphHistoryKeys(graph, config.payloadKeys, {
    maxEntries: config.PERSONA_HISTORY_KEY_CACHE_ENTRIES,
    ttlMs: config.PERSONA_HISTORY_KEY_CACHE_TTL_MS,
    decodes: false,
  });
}
