/** What the api's routes and services run on, built once in api/main.ts (or by a test). */
import type { Tracer } from '@opentelemetry/api';
import type { Client } from '@temporalio/client';
import type { ContextPolicy } from '../graph/context';
import type { ProfileRules } from '../graph/interactions';
import type { Graph } from '../graph/graph';
import type { ReadinessCheck } from '../runtime/health';
import type { Logger } from '../runtime/logger';
import type { RequestContext } from '../runtime/requestContext';
import { profileRules, type Config } from '../config/env';
import type { ExpiryScanSettings } from '../temporal/expiry';
import { expiryScanSettings } from '../temporal/schedules';
import { createAuthenticator, type Authenticator } from './auth';
import { createApiMetrics, type ApiMetrics } from './observability';
import { RateLimiter } from './rateLimit';
import { relayGauges } from './services/relay';

export interface ApiDeps {
  logger: Logger;
  /** Which request the code running now serves (its id joins logs and workflow starts). */
  requests: RequestContext;
  metrics: ApiMetrics;
  /** Set when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT). */
  tracer?: Tracer | undefined;
  readiness: ReadinessCheck[];
  graph: Graph;
  temporal: { client: Client; taskQueue: string };
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
  };
  /** Per-caller rate limits, shared by REST and gRPC (api/rateLimit.ts). */
  rateLimiter: RateLimiter;
  /** When set, GET /metrics needs this bearer token. */
  metricsToken?: string | undefined;
  /** Trust and VIP thresholds for context reads. */
  policy: ContextPolicy;
  recovery: { dunningSchedule: string[] };
  /** What on-demand expiry scans start with (the schedule uses the same). */
  expiry: ExpiryScanSettings;
  fraud: { trustStep: number; reviewDays: number };
  events: { feedLagMs: number };
  /** Segment and VIP rules applied when interactions are recorded. */
  interactions: ProfileRules;
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
    taskQueue?: string;
    metrics?: ApiMetrics;
    tracer?: Tracer | undefined;
  },
): ApiDeps {
  return {
    logger: parts.logger,
    requests: parts.requests,
    metrics: parts.metrics ?? createApiMetrics({ relay: () => relayGauges(parts.graph) }),
    tracer: parts.tracer,
    readiness: parts.readiness,
    graph: parts.graph,
    temporal: { client: parts.client, taskQueue: parts.taskQueue ?? config.TEMPORAL_TASK_QUEUE },
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
    },
    rateLimiter: rateLimiterFromConfig(config),
    metricsToken: config.PERSONA_METRICS_TOKEN,
    policy: {
      trustThreshold: config.PERSONA_TRUST_THRESHOLD,
      vipLtvMinor: config.vipLtvMinor,
      vipBasis: config.PERSONA_VIP_BASIS,
    },
    recovery: { dunningSchedule: config.PERSONA_DUNNING_SCHEDULE },
    expiry: expiryScanSettings(config),
    fraud: { trustStep: config.PERSONA_FRAUD_TRUST_STEP, reviewDays: config.PERSONA_FRAUD_REVIEW_DAYS },
    events: { feedLagMs: config.PERSONA_EVENTS_FEED_LAG_MS },
    interactions: profileRules(config),
  };
}

export function rateLimiterFromConfig(config: Config): RateLimiter {
  return new RateLimiter({
    limits: {
      anonymous: config.PERSONA_RATE_LIMIT_ANONYMOUS,
      self: config.PERSONA_RATE_LIMIT_SELF,
      agent: config.PERSONA_RATE_LIMIT_AGENT,
      ops: config.PERSONA_RATE_LIMIT_OPS,
    },
    maxKeys: config.PERSONA_RATE_LIMIT_MAX_KEYS,
  });
}
