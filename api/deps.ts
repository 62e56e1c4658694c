/** What the api's routes and services run on, built once in api/main.ts (or by a test). */
import type { BlockList } from 'node:net';
import type { Tracer } from '@opentelemetry/api';
import type { Client } from '@temporalio/client';
import type { ContextPolicy } from '../graph/context';
import type { ProfileRules } from '../graph/interactions';
import type { Graph } from '../graph/graph';
import type { ReadinessCheck } from '../runtime/health';
import type { Logger } from '../runtime/logger';
import type { RequestContext } from '../runtime/requestContext';
import { getHeapStatistics } from 'node:v8';
import {
  API_HEAP_BESIDES_CACHE_MB,
  attentionDeadline,
  chargeRetryFor,
  settleFor,
  erasureWaitDeadline,
  fraudReviewDue,
  profileRules,
  type Config,
} from '../config/env';
import type { ExpiryScanSettings } from '../temporal/expiry';
import { expiryScanSettings } from '../temporal/schedules';
import { oneTaskQueue, taskQueuesOf, type TaskQueues } from '../temporal/taskQueues';
import { createAuthenticator, type Authenticator } from './auth';
import { onCommit } from '../graph/graph';
import { processWorkflowCustomers, provisionHistoryKey } from '../graph/historyKeys';
import { payloadCodecFromConfig } from '../temporal/payloadCodec';
import type { PersonaPayloadCodec } from '../temporal/payloadCodec';
import { InvalidationFeed, InvalidationTail } from './invalidations';
import { createApiMetrics, type ApiMetrics } from './observability';
import { ReadCache } from './readCache';
import { RateLimiter } from './rateLimit';
import { blockListOf } from './clientAddress';
import { publisherGauges, relayGauges } from './services/relay';
import { TrustedDeviceReports } from './services/trustedDevices';
import { createWriteLanes, type WriteLanes } from './services/writeLanes';
import { kafkaEnabled } from '../clients/kafka';

export interface ApiDeps {
  logger: Logger;
  /** Which request the code running now serves (its id joins logs and workflow starts). */
  requests: RequestContext;
  metrics: ApiMetrics;
  /** Set when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT). */
  tracer?: Tracer | undefined;
  readiness: ReadinessCheck[];
  graph: Graph;
  /** Workflows start on their kind's queue: `taskQueueFor(temporal.taskQueues, type)` (temporal/taskQueues.ts). */
  temporal: { client: Client; taskQueues: TaskQueues };
  authenticate: Authenticator;
  /** Export and erasure with a customer's own token need a sign-in (`auth_time`) this recent. */
  auth: { recentAuthSeconds: number };
  limits: {
    maxBodyBytes: number;
    /** Largest body of an interactions batch (POST /api/v1/interactions, RecordInteractions). */
    maxInteractionsBodyBytes: number;
    /** Most items one group commit of interaction batches writes in one transaction. */
    maxInteractionsGroupItems: number;
    /** Group commits interaction batches are split over, by customer. */
    interactionWriteLanes: number;
    waitTimeoutMs: number;
    /** The longest a request waits on Neo4j or Temporal before it answers 503 / UNAVAILABLE. */
    requestDeadlineMs: number;
    /** The agents' context and checkout reads answer within this (or a shorter gRPC deadline). */
    readDeadlineMs: number;
    /** The most payment methods one customer's wallet holds. */
    maxPaymentMethods: number;
  };
  /** The proxies whose X-Forwarded-For names the client (empty: the socket's peer is the client). */
  trustedProxies: BlockList;
  /** Per-caller rate limits, shared by REST and gRPC (api/rateLimit.ts). */
  rateLimiter: RateLimiter;
  /** When set, GET /metrics needs this bearer token. */
  metricsToken?: string | undefined;
  /** Trust and VIP thresholds for context reads. */
  policy: ContextPolicy;
  /**
   * What a recovery starts with (workflow input): its dunning schedule, how long a charge retries,
   * how long ops have to answer it before it is overdue.
   */
  recovery: { dunningSchedule: string[]; chargeRetryFor: string; attentionDeadline: string; settleFor: string };
  /** What on-demand expiry scans start with (the schedule uses the same). */
  expiry: ExpiryScanSettings;
  /** Fraud outcomes: the trust step, how long a review waits, when its decision is due (absent: the workflow's). */
  fraud: { trustStep: number; reviewDays: number; reviewDue?: string };
  /** What an erasure starts with: how long it waits before it is overdue (absent: the workflow's default). */
  erasure?: { waitDeadline: string };
  /** Identity merges: how long consent is waited for, how long an undo stays possible. */
  merges: { consentDays: number; unmergeDays: number; proposalsPerDay: number };
  events: { feedLagMs: number };
  /** Segment and VIP rules applied when interactions are recorded. */
  interactions: ProfileRules;
  /** The agents' read cache (context and checkout options), kept current by this process's commits. */
  readCache: ReadCache;
  /** Brings other processes' writes to the cache: started by whoever serves (api/main.ts, tests). */
  invalidations: InvalidationFeed;
  /** The console (api/console): its CSRF secret, and where ops' links into the Temporal UI go. */
  console: {
    /** What the console's CSRF tokens are derived from: the api's JWT secret, or with a JWKS the active payload key. */
    secret: string;
    /** Whether tokens come from the platform's identity provider (PERSONA_JWKS_URL), for the sign-in page. */
    jwks: boolean;
    temporalUiUrl: string;
    namespace: string;
  };
  /** Temporal payloads (temporal/payloadCodec.ts). */
  payloads: {
    /** Makes a customer workflow's history key and links it to the customer, before the workflow starts. */
    provision: (workflowId: string, customerId: string) => Promise<void>;
    /**
     * Undoes what `provision` told this process's codecs when the start did not happen (refused,
     * or the id was taken meanwhile): the workflow id may be another customer's.
     */
    release?: (workflowId: string, customerId: string) => void;
    /** The codec server's codec (/codec/*): no key cache, so an erasure's destroyed keys are gone for it at once. */
    codec: PersonaPayloadCodec;
    /** The Temporal UI's origin, allowed to call the codec server from a browser (CORS); '' for none. */
    corsOrigin: string;
  };
  /**
   * This process's write lanes for interaction batches (api/services/writeLanes.ts): built from
   * `graph`, `interactions`, `requests` and `limits` (`interactionWriteLanes`,
   * `maxInteractionsGroupItems`); `metrics` reads their queues. Part of the process's state
   * (`ApiState`): a copy of the deps that changes what it is built from needs `withOwnState`.
   */
  interactionLanes: WriteLanes;
  /** The trusted-device reports this process started, and when it last warned one could not start. */
  trustedDeviceReports: TrustedDeviceReports;
}

/**
 * What an api process keeps between requests: state built from the rest of its deps, once, with
 * them (`apiDepsFromConfig`, `withOwnState`), never on a first request.
 */
export type ApiState = Pick<ApiDeps, 'interactionLanes' | 'trustedDeviceReports'>;

/** Fresh state for these deps; their `metrics` report its queues from now on. */
export function apiStateOf(deps: Omit<ApiDeps, keyof ApiState>): ApiState {
  const interactionLanes = createWriteLanes({
    graph: deps.graph,
    rules: deps.interactions,
    requests: deps.requests,
    limits: { maxItems: deps.limits.maxInteractionsGroupItems, lanes: deps.limits.interactionWriteLanes },
  });
  deps.metrics.interactionLanes.queued = () => interactionLanes.queuedPerLane();
  return { interactionLanes, trustedDeviceReports: new TrustedDeviceReports() };
}

/**
 * The deps with state of their own: for a copy made by spreading other deps and changing what
 * their state is built from (a test's graph, limits or metrics), which would otherwise share the
 * original's lanes, built with the original's.
 */
export function withOwnState(deps: ApiDeps): ApiDeps {
  return { ...deps, ...apiStateOf(deps) };
}

/** The deps every api process builds the same way from its configuration. */
export function apiDepsFromConfig(
  config: Config,
  parts: {
    logger: Logger;
    readiness: ReadinessCheck[];
    graph: Graph;
    client: Client;
    /**
     * The request context the client's interceptor reads (connectTemporal's `requestId`): the same
     * one, or request ids stop at the api.
     */
    requests: RequestContext;
    /** Every kind of work on this one queue (a test's single Worker); default: TEMPORAL_TASK_QUEUE's queues. */
    taskQueue?: string;
    metrics?: ApiMetrics;
    tracer?: Tracer | undefined;
  },
): ApiDeps {
  const metrics = parts.metrics ?? defaultApiMetrics(config, parts.graph);
  const { readCache, invalidations } = readCacheFromConfig(config, parts.graph, parts.logger);
  reportReadCache(metrics, readCache, invalidations);
  const deps: Omit<ApiDeps, keyof ApiState> = {
    logger: parts.logger,
    requests: parts.requests,
    metrics,
    tracer: parts.tracer,
    readiness: parts.readiness,
    graph: parts.graph,
    temporal: {
      client: parts.client,
      taskQueues: parts.taskQueue ? oneTaskQueue(parts.taskQueue) : taskQueuesOf(config.TEMPORAL_TASK_QUEUE),
    },
    ...callersFromConfig(config),
    ...workflowSettingsFromConfig(config),
    readCache,
    invalidations,
    console: consoleFromConfig(config),
    payloads: payloadsFromConfig(config, parts.graph),
  };
  return { ...deps, ...apiStateOf(deps) };
}

/** The metrics of a process that brought none (a test's, a script's): the relay's and publisher's gauges, no Node's. */
function defaultApiMetrics(config: Config, graph: Graph): ApiMetrics {
  return createApiMetrics({
    relay: () => relayGauges(graph),
    ...(kafkaEnabled(config) ? { publisher: () => publisherGauges(graph, config.PERSONA_KAFKA_EVENTS_TOPIC) } : {}),
  });
}

/** Lets /metrics read the read cache's figures and its tail's at each scrape. */
function reportReadCache(metrics: ApiMetrics, readCache: ReadCache, invalidations: InvalidationFeed): void {
  metrics.readCache.view = () => ({
    ...readCache.stats,
    entries: readCache.size,
    bytes: readCache.bytes,
    breaker: readCache.breakerState,
    // Before its first message, the tail is as far behind as it has been running.
    tailAgeSeconds:
      (Date.now() - (readCache.lastPolledAt || invalidations.startedAt || Number.POSITIVE_INFINITY)) / 1000,
    holes: invalidations.tail.stats.holes,
    holeEvents: invalidations.tail.stats.holeEvents,
    resets: invalidations.tail.stats.resets,
    refused: invalidations.tail.stats.refused,
  });
}

/** Who may call and how much: authentication, request limits, trusted proxies, rate limits, the metrics token. */
function callersFromConfig(
  config: Config,
): Pick<ApiDeps, 'authenticate' | 'auth' | 'limits' | 'trustedProxies' | 'rateLimiter' | 'metricsToken'> {
  return {
    authenticate: createAuthenticator(config),
    auth: { recentAuthSeconds: config.PERSONA_RECENT_AUTH_SECONDS },
    limits: {
      maxBodyBytes: config.PERSONA_MAX_BODY_BYTES,
      maxInteractionsBodyBytes: config.PERSONA_MAX_INTERACTIONS_BODY_BYTES,
      maxInteractionsGroupItems: config.PERSONA_INTERACTIONS_GROUP_MAX_ITEMS,
      interactionWriteLanes: config.PERSONA_INTERACTIONS_WRITE_LANES,
      waitTimeoutMs: config.PERSONA_WAIT_TIMEOUT_MS,
      requestDeadlineMs: config.PERSONA_REQUEST_DEADLINE_MS,
      readDeadlineMs: config.PERSONA_READ_DEADLINE_MS,
      maxPaymentMethods: config.PERSONA_MAX_PAYMENT_METHODS,
    },
    trustedProxies: blockListOf(config.PERSONA_TRUSTED_PROXIES),
    rateLimiter: rateLimiterFromConfig(config),
    metricsToken: config.PERSONA_METRICS_TOKEN,
  };
}

/**
 * What the services decide with and the workflows start with: the context policy, recovery, expiry,
 * fraud, erasure and merge settings, the feed's lag and the interactions' profile rules.
 */
function workflowSettingsFromConfig(
  config: Config,
): Pick<ApiDeps, 'policy' | 'recovery' | 'expiry' | 'fraud' | 'erasure' | 'merges' | 'events' | 'interactions'> {
  return {
    policy: {
      trustThreshold: config.PERSONA_TRUST_THRESHOLD,
      vipLtvMinor: config.vipLtvMinor,
      vipBasis: config.PERSONA_VIP_BASIS,
    },
    recovery: {
      dunningSchedule: config.PERSONA_DUNNING_SCHEDULE,
      chargeRetryFor: chargeRetryFor(config),
      attentionDeadline: attentionDeadline(config),
      settleFor: settleFor(config),
    },
    expiry: expiryScanSettings(config),
    fraud: {
      trustStep: config.PERSONA_FRAUD_TRUST_STEP,
      reviewDays: config.PERSONA_FRAUD_REVIEW_DAYS,
      reviewDue: fraudReviewDue(config),
    },
    erasure: { waitDeadline: erasureWaitDeadline(config) },
    merges: {
      consentDays: config.PERSONA_MERGE_CONSENT_DAYS,
      unmergeDays: config.PERSONA_UNMERGE_DAYS,
      proposalsPerDay: config.PERSONA_MERGE_PROPOSALS_PER_DAY,
    },
    events: { feedLagMs: config.PERSONA_EVENTS_FEED_LAG_MS },
    interactions: profileRules(config),
  };
}

/** The console's CSRF secret, whether sign-in goes through a JWKS, and where its Temporal UI links go. */
function consoleFromConfig(config: Config): ApiDeps['console'] {
  return {
    secret: config.jwtSecret || config.payloadKeys.active.key.toString('base64'),
    jwks: Boolean(config.PERSONA_JWKS_URL),
    // The UI origin the codec server answers (where ops read decoded histories), else the UI's address.
    temporalUiUrl: config.PERSONA_CODEC_CORS_ORIGIN || config.TEMPORAL_UI_URL,
    namespace: config.TEMPORAL_NAMESPACE,
  };
}

/** Temporal payloads: history keys provisioned (and released) around starts, the codec server's codec, its CORS. */
function payloadsFromConfig(config: Config, graph: Graph): ApiDeps['payloads'] {
  return {
    provision: (workflowId, customerId) => provisionHistoryKey(graph, config.payloadKeys, workflowId, customerId),
    release: (workflowId, customerId) => processWorkflowCustomers.forget(workflowId, customerId),
    codec: payloadCodecFromConfig(config, graph, 'none'),
    corsOrigin: config.PERSONA_CODEC_CORS_ORIGIN,
  };
}

/**
 * The read cache and its tail, from configuration. Every commit made through `graph` (and any copy
 * of it) reaches the cache before the writer answers; the tail is started by the caller.
 */
export function readCacheFromConfig(config: Config, graph: Graph, logger: Logger) {
  const readCache = new ReadCache(
    graph,
    {
      enabled: config.PERSONA_READ_CACHE === 'on',
      maxEntries: config.PERSONA_READ_CACHE_MAX_ENTRIES,
      maxBytes: config.PERSONA_READ_CACHE_MAX_MB * 1024 * 1024,
      ttlMs: config.PERSONA_READ_CACHE_TTL_MS,
      freshMs: config.PERSONA_READ_CACHE_FRESH_MS,
      breakerFailures: config.PERSONA_READ_BREAKER_FAILURES,
      breakerHalfOpenMs: config.PERSONA_READ_BREAKER_HALF_OPEN_MS,
      staleMaxMs: config.PERSONA_READ_CACHE_STALE_MAX_MS,
    },
    logger,
    config.PERSONA_READ_DEADLINE_MS,
  );
  onCommit(graph, (events) => readCache.apply(events, 'local'));
  const heapMb = Math.floor(getHeapStatistics().heap_size_limit / 1024 / 1024);
  if (config.PERSONA_READ_CACHE === 'on' && config.PERSONA_READ_CACHE_MAX_MB + API_HEAP_BESIDES_CACHE_MB > heapMb)
    logger.warn(
      { heapMb, cacheMb: config.PERSONA_READ_CACHE_MAX_MB },
      `the read cache's bound (PERSONA_READ_CACHE_MAX_MB) leaves less than ${API_HEAP_BESIDES_CACHE_MB} MiB of ` +
        'the heap limit to the rest of the api: raise --max-old-space-size or lower the bound',
    );
  const tail = new InvalidationTail(
    graph,
    readCache,
    { maxGap: config.PERSONA_READ_CACHE_MAX_GAP, pageSize: 2000 },
    logger,
  );
  const invalidations = new InvalidationFeed(
    tail,
    {
      pollMs: config.PERSONA_READ_CACHE_POLL_MS,
      ...(kafkaEnabled(config)
        ? { kafka: { connection: config, topic: config.PERSONA_KAFKA_INVALIDATIONS_TOPIC, keys: config.payloadKeys } }
        : {}),
    },
    logger,
  );
  return { readCache, invalidations };
}

/** The per-caller rate limits REST and gRPC share (api/rateLimit.ts), from configuration. */
export function rateLimiterFromConfig(config: Config): RateLimiter {
  return new RateLimiter({
    limits: {
      anonymous: config.PERSONA_RATE_LIMIT_ANONYMOUS,
      self: config.PERSONA_RATE_LIMIT_SELF,
      agent: config.PERSONA_RATE_LIMIT_AGENT,
      ops: config.PERSONA_RATE_LIMIT_OPS,
      staff: config.PERSONA_RATE_LIMIT_STAFF,
      verify: config.PERSONA_RATE_LIMIT_VERIFY,
    },
    maxKeys: config.PERSONA_RATE_LIMIT_MAX_KEYS,
  });
}
