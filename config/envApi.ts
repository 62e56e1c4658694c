/**
 * The api: where it and the worker listen, its heap, request bodies and deadlines, the interaction
 * write path, the agents' read cache and read breaker, rate limits and trusted proxies, the metrics
 * token, and the gRPC server (reflection, TLS, keepalive, connection age).
 */
import { z } from 'zod';
import { port, type ConfigIssue, type EnvOf } from './envCore';

/**
 * The api's V8 heap limit. Left to itself, V8 sizes the heap from the machine's memory and lets
 * garbage from the read path pile up to hundreds of MiB before collecting it; capped, the api
 * stays near what it holds (about 64 MiB of its own, the read cache's bound, and room for
 * requests in flight). Every way the api is started passes API_NODE_ARGS (package.json,
 * Dockerfile, docker-compose.yml, `npm run dev`, the tests' and benchmarks' api processes);
 * raise both together with PERSONA_READ_CACHE_MAX_MB.
 */
export const API_HEAP_MB = 192;
export const API_NODE_ARGS = [`--max-old-space-size=${API_HEAP_MB}`];
/** What the api needs besides its read cache: its own objects, requests in flight, the collector's room. */
export const API_HEAP_BESIDES_CACHE_MB = 128;

/** `<per second>,<burst>`, e.g. `5,20`: 5 requests a second sustained, 20 at once. */
const rateLimit = (fallback: string) =>
  z
    .string()
    .regex(/^\s*\d+(\.\d+)?\s*,\s*\d+\s*$/, 'expected <per second>,<burst> such as 5,20')
    .default(fallback)
    .transform((v) => {
      const [perSecond, burst] = v.split(',').map(Number) as [number, number];
      return { perSecond, burst };
    })
    .refine((l) => l.perSecond > 0 && l.burst >= 1, 'both must be positive');

/** Where the api (HTTP and gRPC) and the worker (HTTP, the SDK's metrics) listen. */
export const listenShape = {
  PERSONA_HTTP_HOST: z.string().min(1).default('0.0.0.0'),
  PERSONA_HTTP_PORT: port.default(8080),
  PERSONA_GRPC_PORT: port.default(50051),
  PERSONA_WORKER_HTTP_PORT: port.default(8081),
  /** Loopback port of the Temporal SDK's metrics exporter; the worker serves its text on /metrics. */
  PERSONA_WORKER_SDK_METRICS_PORT: port.default(9464),
};

/** Request bodies and deadlines, the interaction write path, the read cache and the read breaker. */
export const requestsShape = {
  /** Largest request body the api accepts. */
  PERSONA_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  /**
   * Interaction batches arriving while one is written go together in the next transaction, up to
   * this many items (api/services/interactions.ts GroupCommit); a group always takes at least one batch,
   * so 1 writes every batch in its own transaction.
   */
  PERSONA_INTERACTIONS_GROUP_MAX_ITEMS: z.coerce.number().int().min(1).max(5000).default(1000),
  /**
   * Interaction write lanes per api process: a batch's items are split by customer over this many
   * group commits, each writing its own transactions, so Neo4j writes on as many threads (the lanes
   * never share a customer, hence never a customer's lock). 1 writes every group in one lane.
   */
  PERSONA_INTERACTIONS_WRITE_LANES: z.coerce.number().int().min(1).max(16).default(2),
  /**
   * Largest body of POST /api/v1/interactions (and a RecordInteractions message): a full batch of 500
   * items with devices and addresses is about 250 KiB, so the default leaves room for it.
   */
  PERSONA_MAX_INTERACTIONS_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(512 * 1024),
  /**
   * The longest a REST or gRPC request waits on Neo4j or Temporal before it answers 503 (gRPC:
   * UNAVAILABLE): a pooled connection, the driver's retries, a Temporal call and its retries.
   */
  PERSONA_REQUEST_DEADLINE_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  /** The agents' context and checkout reads answer within this (or the caller's shorter gRPC deadline). */
  PERSONA_READ_DEADLINE_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /**
   * The agents' read cache (api/readCache.ts): `on` serves context and checkout reads from memory,
   * kept current by the event log; `off` reads Neo4j every time.
   */
  PERSONA_READ_CACHE: z.enum(['on', 'off']).default('on'),
  /** Most customers the read cache holds (least recently read are dropped first). */
  PERSONA_READ_CACHE_MAX_ENTRIES: z.coerce.number().int().min(1).default(20_000),
  /**
   * Most memory the read cache's entries take, in MiB (estimated per entry); with
   * API_HEAP_BESIDES_CACHE_MB it must fit the api's heap limit (API_HEAP_MB), or the api warns.
   */
  PERSONA_READ_CACHE_MAX_MB: z.coerce.number().int().min(1).default(48),
  /** A cached customer is read again after this long even without an event (writes that append none). */
  PERSONA_READ_CACHE_TTL_MS: z.coerce.number().int().min(100).default(300_000),
  /**
   * Without Kafka, how often the read cache reads the event log by number for other processes'
   * writes (api/invalidations.ts); with Kafka it reads the invalidation topic instead.
   */
  PERSONA_READ_CACHE_POLL_MS: z.coerce.number().int().min(5).max(600_000).default(50),
  /**
   * A hole in the invalidations wider than this many events (a replica cut off from Kafka for long)
   * empties the read cache instead of being read from Neo4j.
   */
  PERSONA_READ_CACHE_MAX_GAP: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * A hit is served only while the log was known drained (every committed event numbered and taken
   * by the tail) less than this ago: the bound on how stale a hit can be when the tail or the
   * sequencer cannot keep up (a read goes to Neo4j instead).
   */
  PERSONA_READ_CACHE_FRESH_MS: z.coerce.number().int().min(50).max(3_600_000).default(1000),
  /**
   * While Neo4j cannot answer, a cached customer is answered stale only if it was last known
   * current less than this ago; past it, 503 (a denying change it cannot see may exist).
   */
  PERSONA_READ_CACHE_STALE_MAX_MS: z.coerce.number().int().min(0).default(300_000),
  /** Consecutive failed context or checkout reads that open the read breaker. */
  PERSONA_READ_BREAKER_FAILURES: z.coerce.number().int().min(1).default(5),
  /** How long the open read breaker waits before letting one read probe Neo4j. */
  PERSONA_READ_BREAKER_HALF_OPEN_MS: z.coerce.number().int().min(100).default(2000),
  /** How long `?wait=true` waits for a workflow's result before answering 202. */
  PERSONA_WAIT_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
};

/** Rate limits and trusted proxies, the metrics token, and the gRPC server. */
export const edgeShape = {
  /**
   * Rate limits per caller, by scope class, as `<per second>,<burst>`: a token bucket per caller
   * (a token's subject; the client address without a valid token), in each api replica's memory.
   */
  PERSONA_RATE_LIMIT_ANONYMOUS: rateLimit('5,20'),
  PERSONA_RATE_LIMIT_SELF: rateLimit('5,20'),
  PERSONA_RATE_LIMIT_AGENT: rateLimit('5000,10000'),
  PERSONA_RATE_LIMIT_OPS: rateLimit('20,100'),
  /** Support staff (`customers:read`, no service's scope), every console session but ops' and a customer's. */
  PERSONA_RATE_LIMIT_STAFF: rateLimit('10,40'),
  /**
   * Tokens not verified yet, per client address: paid before the signature is checked (a token
   * verified already is remembered for up to a minute and costs nothing here).
   */
  PERSONA_RATE_LIMIT_VERIFY: rateLimit('50,200'),
  /**
   * The proxies in front of the api (addresses or CIDRs, comma-separated), whose
   * `X-Forwarded-For` names the client: a caller without a valid token is counted by that address
   * (the right-most one no trusted proxy added). Empty (the default): the socket's peer, and the
   * header is ignored — anyone can write it.
   */
  PERSONA_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean),
    )
    .refine(
      (list) => list.every((a) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(a)),
      'expected addresses or CIDRs, comma-separated',
    ),
  /** The most callers the rate limiter remembers at once (the idlest is forgotten past it). */
  PERSONA_RATE_LIMIT_MAX_KEYS: z.coerce.number().int().min(100).default(100_000),
  /**
   * When set, GET /metrics of the api and of the worker (PERSONA_WORKER_HTTP_PORT) needs
   * `Authorization: Bearer <this>` (401 without it). Required in production.
   */
  PERSONA_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** gRPC server reflection: `on` or `off`; unset, off when NODE_ENV=production and on otherwise. */
  PERSONA_GRPC_REFLECTION: z.enum(['on', 'off']).optional(),
  /**
   * PEM files for gRPC TLS: certificate chain and key (both or neither); with a CA, clients must
   * present a certificate it signed (mTLS).
   */
  PERSONA_GRPC_TLS_CERT: z.string().min(1).optional(),
  PERSONA_GRPC_TLS_KEY: z.string().min(1).optional(),
  PERSONA_GRPC_TLS_CA: z.string().min(1).optional(),
  /** `true` lets a production api serve gRPC without TLS (e.g. behind a mesh that terminates it). */
  PERSONA_GRPC_ALLOW_INSECURE: z.enum(['true', 'false']).default('false'),
  /** How often the gRPC server pings an idle connection, and how long it waits for the answer. */
  PERSONA_GRPC_KEEPALIVE_MS: z.coerce.number().int().min(1000).default(60_000),
  /** A gRPC connection is closed (gracefully) after this long, so clients rebalance over replicas. */
  PERSONA_GRPC_MAX_CONNECTION_AGE_MS: z.coerce
    .number()
    .int()
    .min(10_000)
    .default(30 * 60_000),
};

export type ApiEnv = EnvOf<typeof listenShape> & EnvOf<typeof requestsShape> & EnvOf<typeof edgeShape>;

/**
 * What production requires of /metrics: a token. The api's and every worker's /metrics (on
 * PERSONA_WORKER_HTTP_PORT, which a Service, an ingress or a scraper's network reaches) tell
 * whoever asks what runs, how much, and what fails.
 */
export function metricsProductionIssues(env: Pick<ApiEnv, 'PERSONA_METRICS_TOKEN'>): ConfigIssue[] {
  if (!env.PERSONA_METRICS_TOKEN)
    return [
      {
        path: ['PERSONA_METRICS_TOKEN'],
        message:
          "required in production (NODE_ENV=production): the api's and the worker's /metrics would answer " +
          'anyone; set it (at least 16 characters) and give it to Prometheus as its bearer token',
      },
    ];
  return [];
}

/** What is wrong with the read cache's freshness bound beside its poll (naming the variable), if anything. */
export function readCacheProblem(
  env: Pick<ApiEnv, 'PERSONA_READ_CACHE_FRESH_MS' | 'PERSONA_READ_CACHE_POLL_MS'>,
): string | undefined {
  if (env.PERSONA_READ_CACHE_FRESH_MS <= 2 * env.PERSONA_READ_CACHE_POLL_MS)
    return (
      `PERSONA_READ_CACHE_FRESH_MS: must be more than twice PERSONA_READ_CACHE_POLL_MS ` +
      `(${env.PERSONA_READ_CACHE_POLL_MS} ms), or the read cache would never answer a hit`
    );
  return undefined;
}
