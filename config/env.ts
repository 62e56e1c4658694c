/**
 * Persona's configuration: every address, port and secret comes from the environment, parsed
 * once at start-up with zod. A wrong value stops the process with a message that names the
 * variable; nothing runs on a half-valid configuration.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isTimeZone } from '../payments/expiry';
import { CURRENCY_PATTERN, decimalProblem, toMinorUnits } from '../payments/money';
import { workflowCodeBuildId } from './buildId';
import { matchWeightsVariable } from './matchWeights';
import { parseKeyRing, type KeyRing } from './keyRing';

/** The repository root (this file lives in `<root>/config`). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * No write transaction may run longer than this (graph/graph.ts enforces it on every write);
 * the change feed's lag must exceed it by FEED_LAG_MARGIN_MS (clock steps, commit latency).
 */
export const WRITE_TX_TIMEOUT_MS = 10_000;
export const FEED_LAG_MARGIN_MS = 2_000;

const port = z.coerce.number().int().min(1).max(65535);
/** A Kafka topic name as the broker accepts it. */
const kafkaTopic = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name (letters, digits, . _ -; at most 249)');
const mebibytes = z.coerce.number().int().min(16);
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
/**
 * The kinds of work Persona's workflows are grouped in, each on a task queue and a Worker of its own
 * (temporal/taskQueues.ts says which workflow is which kind, and why).
 */
export const WORK_KINDS = ['charges', 'interactive', 'bulk', 'deliveries'] as const;
export type WorkKind = (typeof WORK_KINDS)[number];
/** What one kind's Worker runs at once. */
export interface WorkerSlots {
  activities: number;
  workflowTasks: number;
}
/**
 * `<activities>,<workflow tasks>`, e.g. `20,10`. A Worker that caches workflows runs at least two
 * workflow tasks at once (the SDK raises fewer to two); more than 1000 of either is a typo.
 */
const slotsVariable = (fallback: string) =>
  z
    .string()
    .regex(/^\s*\d+\s*,\s*\d+\s*$/, 'expected <activities>,<workflow tasks> such as 20,10')
    .default(fallback)
    .transform((v): WorkerSlots => {
      const [activities, workflowTasks] = v.split(',').map(Number) as [number, number];
      return { activities, workflowTasks };
    })
    .refine(
      (s) => s.activities >= 1 && s.activities <= 1000 && s.workflowTasks >= 2 && s.workflowTasks <= 1000,
      'activities from 1 to 1000, workflow tasks from 2 to 1000',
    );
const hostPort = z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7233');

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

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),

  NEO4J_URI: z
    .string()
    .regex(/^(bolt|neo4j)(\+s|\+ssc)?:\/\//, 'expected a bolt:// or neo4j:// URI')
    // Routing: a cluster's driver sends read sessions to followers, writes to the leader; a single
    // server answers both (its advertised address must be the one clients reach it at).
    .default('neo4j://127.0.0.1:7687'),
  NEO4J_USER: z.string().min(1).default('neo4j'),
  NEO4J_PASSWORD: z.string().min(8, 'Neo4j needs a password of at least 8 characters').default('persona-local'),
  NEO4J_DATABASE: z.string().min(1).default('neo4j'),

  TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('persona'),
  TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
  /**
   * TLS to Temporal's frontend (docs/deployment.md#temporal-tls-and-api-keys): `true` verifies the
   * server against the system's CAs, or TEMPORAL_TLS_CA_FILE's PEM file when set; unset, TLS is on
   * when any of the TEMPORAL_TLS_* files, the server name or an API key is set. TEMPORAL_TLS_CERT_FILE
   * and _KEY_FILE (PEM files, both or neither) authenticate Persona by its certificate (mTLS);
   * TEMPORAL_TLS_SERVER_NAME is the name the server's certificate must carry (and the SNI) when it
   * is not TEMPORAL_ADDRESS's host. Required in production unless TEMPORAL_ALLOW_PLAINTEXT=true.
   */
  TEMPORAL_TLS: z.enum(['true', 'false']).optional(),
  TEMPORAL_TLS_CA_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z
    .string()
    .regex(/^[A-Za-z0-9.-]{1,253}$/, 'expected a host name such as temporal.internal')
    .optional(),
  /**
   * An API key Temporal authenticates Persona by (sent as `Authorization: Bearer <key>`, over TLS
   * only), or a file holding it (one or the other). In production Persona authenticates by an API
   * key or by a client certificate.
   */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_API_KEY_FILE: z.string().min(1).optional(),
  /**
   * `true` lets production talk to Temporal without TLS and without authenticating (a mesh that
   * does both), and lets an API key travel without TLS.
   */
  TEMPORAL_ALLOW_PLAINTEXT: z.enum(['true', 'false']).default('false'),

  PERSONA_HTTP_HOST: z.string().min(1).default('0.0.0.0'),
  PERSONA_HTTP_PORT: port.default(8080),
  PERSONA_GRPC_PORT: port.default(50051),
  PERSONA_WORKER_HTTP_PORT: port.default(8081),
  /** Loopback port of the Temporal SDK's metrics exporter; the worker serves its text on /metrics. */
  PERSONA_WORKER_SDK_METRICS_PORT: port.default(9464),
  /**
   * The kinds of work this worker process runs (temporal/taskQueues.ts: one task queue, one
   * Worker each): a comma-separated subset of charges, interactive, bulk, deliveries; all four by
   * default. A fleet may run some processes with `bulk` only, sized apart (docs/deployment.md).
   */
  PERSONA_WORKER_KINDS: z
    .string()
    .default(WORK_KINDS.join(','))
    .transform((v, ctx) => {
      const kinds = v
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== '');
      const unknown = kinds.filter((k) => !(WORK_KINDS as readonly string[]).includes(k));
      if (kinds.length === 0 || unknown.length > 0 || new Set(kinds).size !== kinds.length) {
        ctx.addIssue({
          code: 'custom',
          message:
            `expected a comma-separated list of ${WORK_KINDS.join(', ')} without repeats` +
            (unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''),
        });
        return z.NEVER;
      }
      return kinds as WorkKind[];
    }),
  /**
   * Each kind's slots, `<activities>,<workflow tasks>`: how many of its activities and workflow
   * tasks its Worker runs at once. An activity holds at most one Neo4j connection at a time, so the
   * worker's Neo4j pool is the sum of the activity slots of the kinds it runs, plus 10.
   * docs/deployment.md#task-queues-and-sizing says how to size them.
   */
  PERSONA_WORKER_SLOTS_CHARGES: slotsVariable('20,10'),
  PERSONA_WORKER_SLOTS_INTERACTIVE: slotsVariable('20,10'),
  PERSONA_WORKER_SLOTS_BULK: slotsVariable('6,4'),
  PERSONA_WORKER_SLOTS_DELIVERIES: slotsVariable('4,4'),
  /**
   * A folder with the workflow bundles `npm run build:workflows` wrote (the image sets it): the
   * worker loads them instead of bundling the workflow code at start. Unset, it bundles.
   */
  PERSONA_WORKFLOW_BUNDLE_DIR: z.string().min(1).optional(),
  /**
   * The Worker Deployment the worker belongs to (Temporal's Worker Versioning): every worker of one
   * build polls as version `<name>.<PERSONA_BUILD_ID>`, and gets tasks only once that version is
   * current or ramping (`npm run deploy:promote`, docs/deployment.md). No dots: Temporal joins
   * name and build id with one.
   */
  PERSONA_DEPLOYMENT_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/, 'expected letters, digits, _ or - (no dots), at most 100')
    .default('persona'),
  /**
   * The worker's build id within its deployment. Unset, it is derived from the code
   * (`workflowCodeBuildId()`: the package version and a hash of the workflow code the worker
   * bundles), so the same code is always the same version and a change to the workflows is a new one.
   */
  PERSONA_BUILD_ID: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/, 'expected letters, digits, . _ + -, at most 100')
    .optional(),

  /**
   * The payment-token keys (graph/tokens.ts): `id:base64[,id:base64…]`, each 32 bytes, the first
   * one active (a token names the key that sealed it; `npm run tokens:rotate` re-seals every
   * token under the active one). Locally generated by the stack; required in production.
   */
  PERSONA_TOKEN_KEYS: z.string().min(1).optional(),
  /**
   * The payload codec's service keys (temporal/payloadCodec.ts): `id:base64[,id:base64…]`, each
   * 32 bytes, the first one active (it encrypts; all of them decrypt, so a rotation prepends a new
   * key and keeps the old ones). Locally generated by the stack; required in production.
   */
  PERSONA_PAYLOAD_KEYS: z.string().min(1).optional(),
  /** Unwrapped history keys a worker or api keeps in memory, and for how long (the codec server keeps none). */
  PERSONA_HISTORY_KEY_CACHE_ENTRIES: z.coerce.number().int().min(0).default(10_000),
  PERSONA_HISTORY_KEY_CACHE_TTL_MS: z.coerce.number().int().min(1).default(300_000),
  /**
   * The origin of the Temporal UI allowed to call the codec server (`/codec/*`) from a browser
   * (CORS); empty allows none. Default: the local UI (http://localhost:8233), none in production.
   */
  PERSONA_CODEC_CORS_ORIGIN: z
    .string()
    .regex(/^(?:https?:\/\/[^/\s*?#]+)?$/, 'one origin (http[s]://host[:port]), or empty for none; never a pattern')
    .optional(),
  /** HS256 secret for JWTs (at least 32 characters). Locally generated by the stack. */
  PERSONA_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** When set, JWTs are verified against this JWKS (RS256/ES256) instead of the HS256 secret. */
  PERSONA_JWKS_URL: z.url().optional(),
  /** Every token must carry this `iss` (required in production). */
  PERSONA_JWT_ISSUER: z.string().min(1).optional(),
  /** Every token must carry this `aud` (required in production). */
  PERSONA_JWT_AUDIENCE: z.string().min(1).optional(),
  /**
   * The longest a token may live (exp - iat) and the oldest its `iat` may be; tokens without
   * `exp` and `iat` are refused whatever this says.
   */
  PERSONA_JWT_MAX_AGE_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 86_400)
    .default(86_400),
  /**
   * Export and erasure with a customer's own token need a sign-in this recent (the token's
   * `auth_time`); ops and other scopes are not asked.
   */
  PERSONA_RECENT_AUTH_SECONDS: z.coerce.number().int().min(30).max(86_400).default(300),
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

  /**
   * Rate limits per caller, by scope class, as `<per second>,<burst>`: a token bucket per caller
   * (a token's subject; the client address without a valid token), in each api replica's memory.
   */
  PERSONA_RATE_LIMIT_ANONYMOUS: rateLimit('5,20'),
  PERSONA_RATE_LIMIT_SELF: rateLimit('5,20'),
  PERSONA_RATE_LIMIT_AGENT: rateLimit('5000,10000'),
  PERSONA_RATE_LIMIT_OPS: rateLimit('20,100'),
  /** A person's console session that is neither ops nor a customer's own (staff who read): people's pace. */
  PERSONA_RATE_LIMIT_CONSOLE: rateLimit('10,40'),
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
  /** When set, GET /metrics needs `Authorization: Bearer <this>` (401 without it). */
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

  /** Region national phone numbers are read in (ISO 3166-1 alpha-2). */
  PERSONA_DEFAULT_PHONE_REGION: z
    .string()
    .regex(/^[A-Z]{2}$/, 'expected an ISO 3166-1 alpha-2 code such as US')
    .default('US'),
  /** A fingerprint linked to more customers than this stops being a matching signal. */
  PERSONA_SHARED_DEVICE_LIMIT: z.coerce.number().int().min(1).default(5),
  /**
   * What each kind of evidence counts towards a possible match's score (config/matchWeights.ts): a JSON
   * object naming the weights to change, e.g. `{"device": 10}`; the others keep their defaults.
   */
  PERSONA_MATCH_WEIGHTS: matchWeightsVariable,
  /** A device is trusted when its trust score is at least this. */
  PERSONA_TRUST_THRESHOLD: z.coerce.number().min(0).max(1).default(0.7),
  /** The ISO 4217 currency lifetime values are counted in (integer minor units in the graph). */
  PERSONA_REPORTING_CURRENCY: z
    .string()
    .regex(CURRENCY_PATTERN, 'expected an ISO 4217 code such as USD')
    .default('USD'),
  /**
   * A customer is VIP when its segment is VIP or its lifetime value is at least this: an exact
   * decimal in the reporting currency (checked against it below).
   */
  PERSONA_VIP_LTV: z.string().trim().default('10000'),
  /**
   * Which lifetime value the VIP rule compares with PERSONA_VIP_LTV: `measured` (the sum of recorded
   * payments), `predicted` (The Oracle's predicted_ltv) or `either` (VIP when one of them reaches it).
   */
  PERSONA_VIP_BASIS: z.enum(['measured', 'predicted', 'either']).default('measured'),
  /** A customer in segment New becomes Subscriber after this many recorded succeeded payments. */
  PERSONA_SUBSCRIBER_AFTER_PAYMENTS: z.coerce.number().int().min(1).default(3),
  /**
   * How long an interaction's id is remembered (a redelivery within it is a no-op): as long as the
   * longest redelivery window upstream. The daily prune (Schedule `persona-interaction-prune`, at
   * PERSONA_INTERACTION_PRUNE_AT) deletes the ids recorded longer ago; a redelivery after that
   * records again. So an id is kept at least this many hours (and a day more, at most, while the runs
   * succeed). A day by default: the claims are the graph's largest set after the customers'.
   */
  PERSONA_INTERACTION_ID_WINDOW_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24),
  /** When the daily prune of interaction ids older than the retention runs (HH:MM, 24-hour clock, UTC). */
  PERSONA_INTERACTION_PRUNE_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day HH:MM such as 03:00')
    .default('03:00'),
  /** Interaction ids the prune deletes per write transaction (each within the write-transaction limit). */
  PERSONA_INTERACTION_PRUNE_BATCH_SIZE: z.coerce.number().int().min(1).max(50_000).default(10_000),
  /**
   * The bounded graph (graph/eventPrune.ts): every this many minutes the Schedule
   * `persona-event-prune` deletes the events every consumer of the feed (the webhook relay, the
   * Kafka publisher) has had for PERSONA_EVENTS_PRUNE_SAFETY_MINUTES; a customer's history
   * (docs/events.md) stays PERSONA_EVENTS_HISTORY_DAYS besides. Kafka's events topic is the log
   * of record. A consumer more than PERSONA_EVENTS_PRUNE_CAP_HOURS behind no longer holds pruning
   * back, and `persona_event_consumers_behind_cap` says so.
   */
  PERSONA_EVENTS_PRUNE_EVERY_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),
  PERSONA_EVENTS_PRUNE_SAFETY_MINUTES: z.coerce.number().int().min(1).max(43_200).default(60),
  PERSONA_EVENTS_PRUNE_CAP_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(72),
  PERSONA_EVENTS_PRUNE_BATCH_SIZE: z.coerce.number().int().min(1).max(50_000).default(5_000),
  PERSONA_EVENTS_HISTORY_DAYS: z.coerce.number().int().min(1).max(3_650).default(400),
  /** When the daily gateway reconciliation runs (HH:MM, 24-hour clock, UTC). */
  PERSONA_GATEWAY_RECONCILE_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day HH:MM such as 04:00')
    .default('04:00'),
  /**
   * The hours of charges and recorded recoveries each reconciliation compares, back from when it
   * was due: more than a day, so consecutive daily runs overlap (a repair is idempotent).
   */
  PERSONA_GATEWAY_RECONCILE_LOOKBACK_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 31)
    .default(26),
  /**
   * Time slices of the window each scheduled reconciliation pages through side by side (one
   * lane: one page after another). bench:reconciliation measured a day of 100,000 charges.
   */
  PERSONA_GATEWAY_RECONCILE_LANES: z.coerce.number().int().min(1).max(64).default(4),
  /** The local payment-gateway simulator's port (the stack starts it). */
  PERSONA_GATEWAY_PORT: port.default(4010),
  /** The address the gateway simulator listens on (0.0.0.0 in a container). */
  PERSONA_GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  /** The payment gateway's base URL. */
  PERSONA_GATEWAY_URL: z.url().default('http://127.0.0.1:4010'),
  /** Timeout of one gateway call; a timeout is transient and retried by Temporal. */
  PERSONA_GATEWAY_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
  /**
   * How long the payment gateway is known to remember an idempotency key (its documented minimum):
   * a charge of unknown outcome older than this is never sent again, only looked for by reference.
   */
  PERSONA_GATEWAY_KEY_TTL_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 365)
    .default(24),
  /**
   * How long after a charge's last request "the gateway has no charge under its key" is believed
   * (the gateway's listing may lag, and a request may still be in flight): at least 5 minutes, more
   * than twice the charge activity's start-to-close, so no attempt of it can still be sending.
   */
  PERSONA_CHARGE_SETTLE_MINUTES: z.coerce
    .number()
    .min(5)
    .max(24 * 60)
    .default(10),
  /**
   * How long a charge's transient failures (5xx, timeouts, 429, an outcome not known yet) are
   * retried, under the same key, before the recovery asks ops (who may then only retry it).
   */
  PERSONA_CHARGE_RETRY_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(6),
  /**
   * How long ops have to answer a recovery that needs attention before it is counted overdue
   * (a metric and an alert); the recovery waits on past it.
   */
  PERSONA_ATTENTION_DEADLINE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  /**
   * How long a stopping recovery asks the gateway what became of a charge of unknown outcome
   * (nothing is sent again) before the settling is overdue (a metric, an alert, PersonaOverdue);
   * it asks on.
   */
  PERSONA_SETTLE_DEADLINE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  /** The card-network rule table (config/network-rules/<version>.json); the newest when unset. */
  PERSONA_NETWORK_RULES_VERSION: z
    .string()
    .regex(/^\d{4}-\d{2}(-[a-z0-9]+)?$/, 'expected a table version such as 2026-11')
    .optional(),
  /** Dunning rounds after every method failed: delays such as 1d, 12h, 30m, comma-separated. */
  PERSONA_DUNNING_SCHEDULE: z
    .string()
    .regex(/^\s*\d+\s*[dhms]\s*(,\s*\d+\s*[dhms]\s*)*$/, 'expected delays such as 1d,3d,5d,7d')
    .default('1d,3d,5d,7d')
    .transform((v) => v.split(',').map((d) => d.trim())),
  /** `apply`: the worker creates or updates the Temporal Schedules at start-up; `skip`: it leaves them alone. */
  PERSONA_SCHEDULES: z.enum(['apply', 'skip']).default('apply'),
  /** When the daily card-expiry scan runs (HH:MM, 24-hour clock) in PERSONA_EXPIRY_SCAN_TIMEZONE. */
  PERSONA_EXPIRY_SCAN_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day HH:MM such as 06:00')
    .default('06:00'),
  /** The IANA time zone of the scan's schedule and of "today" for its expiry arithmetic. */
  PERSONA_EXPIRY_SCAN_TIMEZONE: z
    .string()
    .refine(isTimeZone, 'expected an IANA time zone such as UTC or Europe/Berlin')
    .default('UTC'),
  /** Cards read, expired and warned per batch activity of the expiry scan. */
  PERSONA_EXPIRY_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(5000),
  /** Batches per workflow run of the expiry scan before it continues as new. */
  PERSONA_EXPIRY_BATCHES_PER_RUN: z.coerce.number().int().min(1).max(10_000).default(200),
  /** Slices of the card-id space the expiry scan pages through side by side (1–16). */
  PERSONA_EXPIRY_SCAN_LANES: z.coerce.number().int().min(1).max(16).default(2),
  /** Events an erasure empties per transaction (a long history is erased in batches of this many). */
  PERSONA_ERASURE_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** How far a passed fraud challenge raises the device's trust score (bounded at 1). */
  PERSONA_FRAUD_TRUST_STEP: z.coerce.number().gt(0).max(1).default(0.1),
  /** How long a fraud suspension waits for ops' review before it stays as it is. */
  PERSONA_FRAUD_REVIEW_DAYS: z.coerce.number().int().min(1).max(365).default(30),
  /** How long an identity merge waits for both customers' consent; silence means no merge. */
  PERSONA_MERGE_CONSENT_DAYS: z.coerce.number().int().min(1).max(90).default(7),
  /** Merges one customer's own token may propose in 24 hours (each sends the other record's owner a request). */
  PERSONA_MERGE_PROPOSALS_PER_DAY: z.coerce.number().int().min(1).max(100).default(3),
  /** The most payment methods one customer's wallet holds; adding another is refused (409) until one is removed. */
  PERSONA_MAX_PAYMENT_METHODS: z.coerce.number().int().min(1).max(1000).default(20),
  /** How long after an identity merge ops may still undo it. */
  PERSONA_UNMERGE_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  /**
   * The change feed serves events stamped at least this long ago, so no event can appear behind a
   * reader's cursor: refused below the write-transaction timeout plus a margin (12 s).
   */
  PERSONA_EVENTS_FEED_LAG_MS: z.coerce
    .number()
    .int()
    .refine(
      (lag) => lag >= WRITE_TX_TIMEOUT_MS + FEED_LAG_MARGIN_MS,
      `must be at least the write-transaction timeout WRITE_TX_TIMEOUT_MS (${WRITE_TX_TIMEOUT_MS} ms) plus ` +
        `${FEED_LAG_MARGIN_MS} ms: a shorter PERSONA_EVENTS_FEED_LAG_MS lets the feed pass an event a ` +
        'slower write transaction commits later',
    )
    .default(15_000),
  /** When set, the worker keeps the event relay running: every event is POSTed here, in order. */
  PERSONA_EVENTS_WEBHOOK_URL: z.url().optional(),
  /**
   * The events webhook's signing secret: each POST carries `Persona-Signature` (an HMAC-SHA256 of
   * the time and the body) for the subscriber to verify. Required in production with the webhook.
   */
  PERSONA_EVENTS_WEBHOOK_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * Posts to the events webhook at once, each for a different customer (a customer's events go
   * one after another, in order): 1 delivers the feed one event at a time. bench:relay measured 64.
   */
  PERSONA_EVENTS_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(512).default(64),
  /**
   * Kafka's bootstrap brokers (`host:port,…`). Empty (the default) turns Kafka off: the feed and
   * the webhooks go on as before. `npm run dev` sets it to the local stack's broker.
   */
  KAFKA_BROKERS: z
    .string()
    .default('')
    .refine(
      (v) => v === '' || v.split(',').every((b) => /^[A-Za-z0-9.-]+:\d{1,5}$/.test(b.trim())),
      'expected host:port[,host:port…] (empty turns Kafka off)',
    ),
  /** The topic the graph's events are published to, keyed by customer id. */
  PERSONA_KAFKA_EVENTS_TOPIC: kafkaTopic.default('persona.events.v1'),
  /**
   * The invalidation topic (workers/eventSequencer.ts → api/invalidations.ts): one partition, every
   * api replica reads all of it. Its messages hold ids, sequence numbers and the few values the
   * cache applies in place (a lifetime value, a segment, a trust score), for
   * PERSONA_KAFKA_INVALIDATIONS_RETENTION_MS only.
   */
  PERSONA_KAFKA_INVALIDATIONS_TOPIC: kafkaTopic.default('persona.invalidations.v1'),
  /** How long the invalidation topic keeps a message (a replica further behind empties its cache). */
  PERSONA_KAFKA_INVALIDATIONS_RETENTION_MS: z.coerce.number().int().min(60_000).default(600_000),
  /** How often each worker's event sequencer looks for committed events to number (graph/sequencer.ts). */
  PERSONA_EVENT_SEQUENCER_POLL_MS: z.coerce.number().int().min(1).max(10_000).default(20),
  /**
   * With nothing to number, how often the sequencer still says so on the invalidation topic: below
   * PERSONA_READ_CACHE_FRESH_MS, or the replicas' hits stop while the log is quiet.
   */
  PERSONA_EVENT_SEQUENCER_TICK_MS: z.coerce.number().int().min(10).max(60_000).default(200),
  /** `off`: this worker does not number events (another process does; at least one must). */
  PERSONA_EVENT_SEQUENCER: z.enum(['on', 'off']).default('on'),
  /** Partitions of the events topic when Persona creates it (a customer's events stay on one). */
  PERSONA_KAFKA_EVENTS_PARTITIONS: z.coerce.number().int().min(1).max(10_000).default(12),
  /** How long the events topic keeps a message when Persona creates it (default 7 days; -1: for ever). */
  PERSONA_KAFKA_EVENTS_RETENTION_MS: z.coerce
    .number()
    .int()
    .min(-1)
    .default(7 * 24 * 3600 * 1000),
  /**
   * Replication factor of the topics Persona creates (1 for a one-broker stack). In production at
   * least 3 (the events topic is the log of record: a broker lost loses nothing acknowledged),
   * unless KAFKA_ALLOW_UNREPLICATED=true (a single-machine deployment that knows it).
   */
  PERSONA_KAFKA_REPLICATION: z.coerce.number().int().min(1).max(16).default(1),
  /**
   * `min.insync.replicas` of the topics Persona creates: a write the producer (acks from every
   * in-sync replica) is told succeeded is on at least this many brokers. Default: 2 with a
   * replication of 3 or more (one broker may be down, none lost), else 1.
   */
  PERSONA_KAFKA_MIN_INSYNC_REPLICAS: z.coerce.number().int().min(1).max(16).optional(),
  KAFKA_ALLOW_UNREPLICATED: z.enum(['true', 'false']).default('false'),
  /** Events per page the publisher reads from the graph and sends in one produce request. */
  PERSONA_KAFKA_PUBLISH_PAGE: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** The agents' topics the api consumes, and where a message that can never be valid goes. */
  PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: kafkaTopic.default('synapse.payment-failures.v1'),
  PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: kafkaTopic.default('chimera.fraud-outcomes.v1'),
  PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: kafkaTopic.default('cerebrum.routing-outcomes.v1'),
  PERSONA_KAFKA_DEAD_LETTER_TOPIC: kafkaTopic.default('persona.dead-letters.v1'),
  /** The consumer group of the api's consumers (every api replica joins it). */
  PERSONA_KAFKA_CONSUMER_GROUP: z.string().min(1).max(200).default('persona-api'),
  /**
   * TLS to the brokers: `true` verifies them against the system's CAs, or KAFKA_TLS_CA's PEM file
   * when set; KAFKA_TLS_CERT and _KEY (PEM files, both or neither) authenticate Persona by its
   * certificate (mTLS). Required in production unless KAFKA_ALLOW_PLAINTEXT=true.
   */
  KAFKA_TLS: z.enum(['true', 'false']).default('false'),
  KAFKA_TLS_CA: z.string().min(1).optional(),
  KAFKA_TLS_CERT: z.string().min(1).optional(),
  KAFKA_TLS_KEY: z.string().min(1).optional(),
  /**
   * SASL authentication: PLAIN (over TLS only in production), SCRAM-SHA-256 or SCRAM-SHA-512, with
   * KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD. In production Persona authenticates to Kafka by
   * SASL or by a TLS client certificate.
   */
  KAFKA_SASL_MECHANISM: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  /** `true` lets production talk to Kafka without TLS and without authenticating (a mesh that does both). */
  KAFKA_ALLOW_PLAINTEXT: z.enum(['true', 'false']).default('false'),
  /** When set, customer notifications are POSTed here (else they are logged). */
  PERSONA_NOTIFY_WEBHOOK_URL: z.url().optional(),
  /**
   * Without a webhook, notifications are logged; `true` also logs a message's code (an identity
   * merge's consent code), so a developer can answer it (`npm run dev` sets it). Refused in production.
   */
  PERSONA_LOG_NOTIFICATION_CODES: z.enum(['true', 'false']).default('false'),
  /** Chimera's base URL; unset, a local stand-in records each request as an event. */
  CHIMERA_URL: z.url().optional(),
  /** When set, the api and the worker export OpenTelemetry traces here over OTLP/HTTP (`<url>/v1/traces`). */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),

  /** Where `npm run backup` writes archives (default: `backups/` in the stack's folder). */
  PERSONA_BACKUP_DIR: z.string().optional(),
  /** How many archives `npm run backup` keeps; older ones are deleted after a backup. */
  PERSONA_BACKUP_KEEP: z.coerce.number().int().min(1).default(7),
  /**
   * The erasure deadline for archives: an archive holds the history keys of every customer erased
   * after it was taken, so none lives longer than this (deleted by the next backup, refused by a
   * restore). At most 30: an erasure is complete within a month, archives included.
   */
  PERSONA_BACKUP_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(30).default(30),
  /** The git-ignored folder the local stack installs into and keeps its data in. */
  PERSONA_STACK_DIR: z.string().default(path.join(repoRoot, '.stack')),
  NEO4J_HEAP: z
    .string()
    .regex(/^\d+[mMgG]$/, 'expected a JVM size such as 512m or 1g')
    .default('512m'),
  NEO4J_PAGECACHE_MB: mebibytes.default(256),
  NEO4J_TX_MEMORY_MB: z.coerce.number().int().min(0).default(512),
  TEMPORAL_UI_PORT: port.default(8233),
  /**
   * How many Kafka nodes the local stack runs (KRaft, each broker and controller): 1, or 3 for a
   * replicated log (topics with replication 3 and min ISR 2, as in production). Node n listens
   * 10·(n−1) above the ports below.
   */
  PERSONA_KAFKA_NODES: z
    .enum(['1', '3'], { message: 'expected 1 or 3' })
    .default('1')
    .transform((v) => Number(v) as 1 | 3),
  /** The local stack's first Kafka node: its client and controller ports, and each node's heap. */
  KAFKA_PORT: port.default(9092),
  KAFKA_CONTROLLER_PORT: port.default(9093),
  /** The local brokers' second listener: TLS with SASL/PLAIN, what `npm run dev` connects to. */
  KAFKA_SECURE_PORT: port.default(9094),
  KAFKA_HEAP: z
    .string()
    .regex(/^\d+[mMgG]$/, 'expected a JVM size such as 256m or 1g')
    .default('256m'),
  /** Path of the time-skipping test server; defaults to the stack's installed binary. */
  TEMPORAL_TEST_SERVER_PATH: z.string().optional(),
  /**
   * Waits with a deadline (issue 46): how long an erasure may wait (for a fraud review, recoveries
   * stopping, the customer's workflows closing) before it is overdue — counted, alerted, the
   * erasure's status naming what holds it; it waits on (a key is never destroyed under an open workflow).
   */
  PERSONA_ERASURE_WAIT_DEADLINE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  /** How long ops have to decide a fraud review before it is overdue (counted, alerted; it waits on to its days). */
  PERSONA_FRAUD_REVIEW_DUE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  // History keys off the hot path (graph/historyKeys.ts).
  /** The namespace's retention in days (how long a closed history is kept): an onboarding's own key lives as long. */
  PERSONA_HISTORY_RETENTION_DAYS: z.coerce.number().int().min(1).default(30),
});

export type Env = z.infer<typeof envSchema>;

/**
 * In production a token must name who issued it and for whom: one minted for another service
 * with the same key (or by the same identity provider) is not ours.
 */
const withProductionRules = envSchema.superRefine((env, ctx) => {
  for (const issue of [...kafkaSecurityIssues(env), ...temporalSecurityIssues(env)])
    ctx.addIssue({ code: 'custom', ...issue });
  if (env.NODE_ENV !== 'production') return;
  if (env.PERSONA_LOG_NOTIFICATION_CODES === 'true')
    ctx.addIssue({
      code: 'custom',
      path: ['PERSONA_LOG_NOTIFICATION_CODES'],
      message: 'not in production (NODE_ENV=production): consent codes must never reach the logs',
    });
  if (env.PERSONA_EVENTS_WEBHOOK_URL && !env.PERSONA_EVENTS_WEBHOOK_SECRET)
    ctx.addIssue({
      code: 'custom',
      path: ['PERSONA_EVENTS_WEBHOOK_SECRET'],
      message:
        'required in production with PERSONA_EVENTS_WEBHOOK_URL: the subscriber must be able to tell ' +
        "Persona's events from anyone else's",
    });
  if (env.PERSONA_JWKS_URL && !env.PERSONA_JWKS_URL.startsWith('https://'))
    ctx.addIssue({
      code: 'custom',
      path: ['PERSONA_JWKS_URL'],
      message: 'must be https:// in production (NODE_ENV=production): whoever can answer it mints tokens',
    });
  for (const name of ['PERSONA_JWT_ISSUER', 'PERSONA_JWT_AUDIENCE'] as const)
    if (!env[name])
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message:
          'required in production (NODE_ENV=production): set PERSONA_JWT_ISSUER and PERSONA_JWT_AUDIENCE ' +
          'to the iss and aud your tokens carry',
      });
});

/**
 * What is wrong with Kafka's TLS and SASL settings: each half of a pair without the other, SASL
 * without its credentials, and, in production with Kafka on, a connection that is not encrypted
 * or not authenticated (unless KAFKA_ALLOW_PLAINTEXT=true).
 */
export function kafkaSecurityIssues(env: Env): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  const tls = env.KAFKA_TLS === 'true';
  if (Boolean(env.KAFKA_TLS_CERT) !== Boolean(env.KAFKA_TLS_KEY))
    issues.push({
      path: [env.KAFKA_TLS_CERT ? 'KAFKA_TLS_KEY' : 'KAFKA_TLS_CERT'],
      message: 'KAFKA_TLS_CERT and KAFKA_TLS_KEY go together',
    });
  for (const name of ['KAFKA_TLS_CA', 'KAFKA_TLS_CERT', 'KAFKA_TLS_KEY'] as const)
    if (env[name] && !tls) issues.push({ path: [name], message: 'needs KAFKA_TLS=true' });
  if (env.KAFKA_SASL_MECHANISM)
    for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const)
      if (!env[name])
        issues.push({ path: [name], message: `required with KAFKA_SASL_MECHANISM=${env.KAFKA_SASL_MECHANISM}` });
  if (!env.KAFKA_SASL_MECHANISM && (env.KAFKA_SASL_USERNAME || env.KAFKA_SASL_PASSWORD))
    issues.push({
      path: ['KAFKA_SASL_MECHANISM'],
      message: 'required with KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD',
    });
  const kafkaOn = env.KAFKA_BROKERS.trim() !== '';
  const minInsync = env.PERSONA_KAFKA_MIN_INSYNC_REPLICAS;
  if (minInsync !== undefined && minInsync > env.PERSONA_KAFKA_REPLICATION)
    issues.push({
      path: ['PERSONA_KAFKA_MIN_INSYNC_REPLICAS'],
      message: `at most PERSONA_KAFKA_REPLICATION (${env.PERSONA_KAFKA_REPLICATION}): no write could succeed`,
    });
  if (
    env.NODE_ENV === 'production' &&
    kafkaOn &&
    env.PERSONA_KAFKA_REPLICATION < 3 &&
    env.KAFKA_ALLOW_UNREPLICATED !== 'true'
  )
    issues.push({
      path: ['PERSONA_KAFKA_REPLICATION'],
      message:
        'at least 3 in production with KAFKA_BROKERS: the events topic is the log of record, and a broker lost ' +
        'must lose nothing acknowledged; KAFKA_ALLOW_UNREPLICATED=true for a single-machine deployment',
    });
  if (env.NODE_ENV === 'production' && kafkaOn && env.KAFKA_ALLOW_PLAINTEXT !== 'true') {
    if (!tls)
      issues.push({
        path: ['KAFKA_TLS'],
        message:
          'required in production with KAFKA_BROKERS: set KAFKA_TLS=true (and KAFKA_TLS_CA for a private CA), ' +
          'or KAFKA_ALLOW_PLAINTEXT=true where a mesh encrypts and authenticates',
      });
    if (!env.KAFKA_SASL_MECHANISM && !env.KAFKA_TLS_CERT)
      issues.push({
        path: ['KAFKA_SASL_MECHANISM'],
        message:
          'required in production with KAFKA_BROKERS: Persona authenticates by SASL (KAFKA_SASL_MECHANISM, ' +
          '_USERNAME, _PASSWORD) or by a client certificate (KAFKA_TLS_CERT and KAFKA_TLS_KEY)',
      });
  }
  return issues;
}

/**
 * Whether Persona speaks TLS to Temporal: TEMPORAL_TLS when set; otherwise when anything that only
 * makes sense over TLS is set (a CA, a client certificate, a server name, an API key), as the
 * Temporal SDK itself turns TLS on for an API key.
 */
export function temporalTlsOn(
  env: Partial<
    Pick<
      Env,
      | 'TEMPORAL_TLS'
      | 'TEMPORAL_TLS_CA_FILE'
      | 'TEMPORAL_TLS_CERT_FILE'
      | 'TEMPORAL_TLS_KEY_FILE'
      | 'TEMPORAL_TLS_SERVER_NAME'
      | 'TEMPORAL_API_KEY'
      | 'TEMPORAL_API_KEY_FILE'
    >
  >,
): boolean {
  if (env.TEMPORAL_TLS !== undefined) return env.TEMPORAL_TLS === 'true';
  return Boolean(
    env.TEMPORAL_TLS_CA_FILE ||
    env.TEMPORAL_TLS_CERT_FILE ||
    env.TEMPORAL_TLS_KEY_FILE ||
    env.TEMPORAL_TLS_SERVER_NAME ||
    env.TEMPORAL_API_KEY ||
    env.TEMPORAL_API_KEY_FILE,
  );
}

/**
 * What is wrong with Temporal's TLS and API-key settings: half a certificate pair, TLS files with
 * TEMPORAL_TLS=false, both forms of the API key, an API key that would travel in plaintext, and,
 * in production, a connection that is not encrypted or not authenticated (unless
 * TEMPORAL_ALLOW_PLAINTEXT=true).
 */
export function temporalSecurityIssues(env: Env): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  const tls = temporalTlsOn(env);
  const allowPlaintext = env.TEMPORAL_ALLOW_PLAINTEXT === 'true';
  if (Boolean(env.TEMPORAL_TLS_CERT_FILE) !== Boolean(env.TEMPORAL_TLS_KEY_FILE))
    issues.push({
      path: [env.TEMPORAL_TLS_CERT_FILE ? 'TEMPORAL_TLS_KEY_FILE' : 'TEMPORAL_TLS_CERT_FILE'],
      message: 'TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together',
    });
  if (!tls)
    for (const name of [
      'TEMPORAL_TLS_CA_FILE',
      'TEMPORAL_TLS_CERT_FILE',
      'TEMPORAL_TLS_KEY_FILE',
      'TEMPORAL_TLS_SERVER_NAME',
    ] as const)
      if (env[name]) issues.push({ path: [name], message: 'needs TLS, but TEMPORAL_TLS=false' });
  if (env.TEMPORAL_API_KEY && env.TEMPORAL_API_KEY_FILE)
    issues.push({
      path: ['TEMPORAL_API_KEY_FILE'],
      message: 'set TEMPORAL_API_KEY or TEMPORAL_API_KEY_FILE, not both',
    });
  const apiKey = Boolean(env.TEMPORAL_API_KEY || env.TEMPORAL_API_KEY_FILE);
  if (apiKey && !tls && !allowPlaintext)
    issues.push({
      path: [env.TEMPORAL_API_KEY ? 'TEMPORAL_API_KEY' : 'TEMPORAL_API_KEY_FILE'],
      message:
        'would be sent in plaintext with TEMPORAL_TLS=false: turn TLS on, or set TEMPORAL_ALLOW_PLAINTEXT=true ' +
        'where a mesh encrypts',
    });
  if (env.NODE_ENV === 'production' && !allowPlaintext) {
    if (!tls)
      issues.push({
        path: ['TEMPORAL_TLS'],
        message:
          'required in production: set TEMPORAL_TLS=true (and TEMPORAL_TLS_CA_FILE for a private CA), ' +
          'or TEMPORAL_ALLOW_PLAINTEXT=true where a mesh encrypts and authenticates',
      });
    else if (!apiKey && !env.TEMPORAL_TLS_CERT_FILE)
      issues.push({
        path: ['TEMPORAL_TLS_CERT_FILE'],
        message:
          'required in production: Persona authenticates to Temporal by a client certificate ' +
          '(TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE) or by an API key (TEMPORAL_API_KEY or _FILE)',
      });
  }
  return issues;
}

/** The parsed environment with the derived values every process needs. */
export interface Settings extends Omit<
  Env,
  | 'PERSONA_TOKEN_KEYS'
  | 'PERSONA_JWT_SECRET'
  | 'PERSONA_PAYLOAD_KEYS'
  | 'TEMPORAL_TEST_SERVER_PATH'
  | 'PERSONA_CODEC_CORS_ORIGIN'
  | 'KAFKA_SASL_PASSWORD'
  | 'TEMPORAL_API_KEY'
  | 'PERSONA_BACKUP_DIR'
> {
  /** TEMPORAL_API_KEY, behind a function: a settings object logged or serialised never carries it. */
  temporalApiKey?: () => string;
  /** Resolved: PERSONA_BACKUP_DIR, or `backups/` in the stack's folder. */
  PERSONA_BACKUP_DIR: string;
  /** KAFKA_SASL_PASSWORD, behind a function: a settings object logged or serialised never carries it. */
  kafkaSaslPassword?: () => string;
  /** Resolved: the local UI's origin by default, none in production. */
  PERSONA_CODEC_CORS_ORIGIN: string;
  temporalTestServerPath: string;
  /** PERSONA_VIP_LTV in minor units of PERSONA_REPORTING_CURRENCY. */
  vipLtvMinor: number;
  neo4jBoltHost: string;
  neo4jBoltPort: number;
  /** KAFKA_BROKERS split; empty when Kafka is off. */
  kafkaBrokers: string[];
}

/** Settings plus the secrets: what the api and worker run on. */
export interface Config extends Settings {
  /** The payment-token keys (PERSONA_TOKEN_KEYS). */
  tokenKeys: KeyRing;
  /** The HS256 secret for JWTs (unused when PERSONA_JWKS_URL is set). */
  jwtSecret: string;
  /** The payload codec's service keys (PERSONA_PAYLOAD_KEYS). */
  payloadKeys: KeyRing;
}

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Where the stack keeps the locally generated payment-token key ring. */
export function localTokenKeysPath(stackDir: string): string {
  return path.join(stackDir, 'secrets', 'token.keys');
}

/** Where the stack keeps the locally generated payload key ring. */
export function localPayloadKeysPath(stackDir: string): string {
  return path.join(stackDir, 'secrets', 'payload.keys');
}

/** Where the stack keeps its broker's TLS keystore, the CA clients trust, and the SASL password. */
export function localKafkaSecretsDir(stackDir: string): string {
  return path.join(stackDir, 'secrets', 'kafka');
}

/** Where the stack keeps the locally generated JWT secret. */
export function localJwtSecretPath(stackDir: string): string {
  return path.join(stackDir, 'secrets', 'jwt.secret');
}

/** Parses the environment without secrets (the stack CLI runs on this). Throws ConfigError. */
export function loadSettings(
  env: NodeJS.ProcessEnv = process.env,
): Settings & { tokenKeysFromEnv?: string; jwtSecretFromEnv?: string; payloadKeysFromEnv?: string } {
  const parsed = withProductionRules.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const {
    PERSONA_TOKEN_KEYS,
    PERSONA_JWT_SECRET,
    PERSONA_PAYLOAD_KEYS,
    TEMPORAL_TEST_SERVER_PATH,
    KAFKA_SASL_PASSWORD,
    TEMPORAL_API_KEY,
    ...values
  } = parsed.data;
  const vipProblem = decimalProblem(values.PERSONA_VIP_LTV, values.PERSONA_REPORTING_CURRENCY);
  if (vipProblem) throw new ConfigError([`PERSONA_VIP_LTV: ${vipProblem} (in ${values.PERSONA_REPORTING_CURRENCY})`]);
  if (values.PERSONA_READ_CACHE_FRESH_MS <= 2 * values.PERSONA_READ_CACHE_POLL_MS)
    throw new ConfigError([
      `PERSONA_READ_CACHE_FRESH_MS: must be more than twice PERSONA_READ_CACHE_POLL_MS ` +
        `(${values.PERSONA_READ_CACHE_POLL_MS} ms), or the read cache would never answer a hit`,
    ]);
  const stackDir = path.resolve(values.PERSONA_STACK_DIR);
  const bolt = new URL(values.NEO4J_URI.replace(/^[a-z+]+:/, 'http:'));
  return {
    ...values,
    PERSONA_STACK_DIR: stackDir,
    PERSONA_BACKUP_DIR: path.resolve(values.PERSONA_BACKUP_DIR ?? path.join(stackDir, 'backups')),
    PERSONA_CODEC_CORS_ORIGIN:
      values.PERSONA_CODEC_CORS_ORIGIN ?? (values.NODE_ENV === 'production' ? '' : 'http://localhost:8233'),
    temporalTestServerPath: TEMPORAL_TEST_SERVER_PATH ?? path.join(stackDir, 'venv', 'bin', 'temporal-test-server'),
    vipLtvMinor: toMinorUnits(values.PERSONA_VIP_LTV, values.PERSONA_REPORTING_CURRENCY),
    neo4jBoltHost: bolt.hostname,
    neo4jBoltPort: bolt.port ? Number(bolt.port) : 7687,
    kafkaBrokers: values.KAFKA_BROKERS.split(',')
      .map((b) => b.trim())
      .filter((b) => b !== ''),
    ...(KAFKA_SASL_PASSWORD ? { kafkaSaslPassword: () => KAFKA_SASL_PASSWORD } : {}),
    ...(TEMPORAL_API_KEY ? { temporalApiKey: () => TEMPORAL_API_KEY } : {}),
    ...(PERSONA_TOKEN_KEYS ? { tokenKeysFromEnv: PERSONA_TOKEN_KEYS } : {}),
    ...(PERSONA_JWT_SECRET ? { jwtSecretFromEnv: PERSONA_JWT_SECRET } : {}),
    ...(PERSONA_PAYLOAD_KEYS ? { payloadKeysFromEnv: PERSONA_PAYLOAD_KEYS } : {}),
  };
}

/** The segment and VIP rules interactions are recorded under (graph/interactions.ts ProfileRules). */
/** How the recovery's charge treats the gateway (activities/recovery.ts ChargePolicy). */
export function chargePolicy(settings: Settings): { keyTtlMs: number; settleMs: number; clientTimeoutMs: number } {
  return {
    keyTtlMs: settings.PERSONA_GATEWAY_KEY_TTL_HOURS * 3_600_000,
    settleMs: settings.PERSONA_CHARGE_SETTLE_MINUTES * 60_000,
    clientTimeoutMs: settings.PERSONA_GATEWAY_TIMEOUT_MS,
  };
}

/** How long a recovery's charge retries before ops are asked, as a workflow duration ('6h', '90m'). */
export function chargeRetryFor(settings: Settings): string {
  return `${Math.max(1, Math.round(settings.PERSONA_CHARGE_RETRY_HOURS * 60))}m`;
}

/** How long a stopping recovery asks the gateway about an unknown charge before it is overdue ('1440m'). */
export function settleFor(settings: Settings): string {
  return `${Math.max(1, Math.round(settings.PERSONA_SETTLE_DEADLINE_HOURS * 60))}m`;
}

/** How long a recovery waits for ops before it is overdue, as a workflow duration ('24h', '90m'). */
export function attentionDeadline(settings: Settings): string {
  return `${Math.max(1, Math.round(settings.PERSONA_ATTENTION_DEADLINE_HOURS * 60))}m`;
}

/** How long an erasure waits before it is overdue, as a workflow duration ('1440m'). */
export function erasureWaitDeadline(settings: Settings): string {
  return `${Math.max(1, Math.round(settings.PERSONA_ERASURE_WAIT_DEADLINE_HOURS * 60))}m`;
}

/** When ops should have decided a fraud review, as a workflow duration ('1440m'). */
export function fraudReviewDue(settings: Settings): string {
  return `${Math.max(1, Math.round(settings.PERSONA_FRAUD_REVIEW_DUE_HOURS * 60))}m`;
}

export function profileRules(settings: Settings): {
  vipLtvMinor: number;
  vipBasis: Settings['PERSONA_VIP_BASIS'];
  subscriberAfterPayments: number;
} {
  return {
    vipLtvMinor: settings.vipLtvMinor,
    vipBasis: settings.PERSONA_VIP_BASIS,
    subscriberAfterPayments: settings.PERSONA_SUBSCRIBER_AFTER_PAYMENTS,
  };
}

/** Parses the environment and resolves the key rings and secrets. Throws ConfigError naming every wrong variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const { tokenKeysFromEnv, jwtSecretFromEnv, payloadKeysFromEnv, ...settings } = loadSettings(env);
  return {
    ...settings,
    tokenKeys: resolveKeyRing(tokenKeysFromEnv, settings, {
      variable: 'PERSONA_TOKEN_KEYS',
      what: 'payment-token key',
      file: localTokenKeysPath(settings.PERSONA_STACK_DIR),
    }),
    jwtSecret: resolveJwtSecret(jwtSecretFromEnv, settings),
    payloadKeys: resolveKeyRing(payloadKeysFromEnv, settings, {
      variable: 'PERSONA_PAYLOAD_KEYS',
      what: 'payload key',
      file: localPayloadKeysPath(settings.PERSONA_STACK_DIR),
    }),
  };
}

type SlotSettings = Pick<
  Settings,
  | 'PERSONA_WORKER_SLOTS_CHARGES'
  | 'PERSONA_WORKER_SLOTS_INTERACTIVE'
  | 'PERSONA_WORKER_SLOTS_BULK'
  | 'PERSONA_WORKER_SLOTS_DELIVERIES'
>;

/** A kind's slots as configured (PERSONA_WORKER_SLOTS_<KIND>). */
export function workerSlots(s: SlotSettings, kind: WorkKind): WorkerSlots {
  const slots: Record<WorkKind, WorkerSlots> = {
    charges: s.PERSONA_WORKER_SLOTS_CHARGES,
    interactive: s.PERSONA_WORKER_SLOTS_INTERACTIVE,
    bulk: s.PERSONA_WORKER_SLOTS_BULK,
    deliveries: s.PERSONA_WORKER_SLOTS_DELIVERIES,
  };
  return slots[kind];
}

/**
 * The Worker Deployment version a worker of this configuration polls as: PERSONA_DEPLOYMENT_NAME and
 * PERSONA_BUILD_ID, or the build id derived from the workflow code (config/buildId.ts).
 */
export function workerDeploymentVersion(s: Pick<Settings, 'PERSONA_DEPLOYMENT_NAME' | 'PERSONA_BUILD_ID'>): {
  deploymentName: string;
  buildId: string;
} {
  return { deploymentName: s.PERSONA_DEPLOYMENT_NAME, buildId: s.PERSONA_BUILD_ID ?? workflowCodeBuildId(repoRoot) };
}

/** A key ring from its variable, or locally from the file the stack generated. */
function resolveKeyRing(
  fromEnv: string | undefined,
  s: Settings,
  ring: { variable: string; what: string; file: string },
): KeyRing {
  let spec = fromEnv;
  let source = ring.variable;
  if (!spec && s.NODE_ENV !== 'production' && existsSync(ring.file)) {
    spec = readFileSync(ring.file, 'utf8').trim();
    source = `${ring.variable} (from ${ring.file})`;
  }
  const shape = 'id:base64 of 32 random bytes, the active key first';
  if (!spec)
    throw new ConfigError([
      s.NODE_ENV === 'production'
        ? `${ring.variable}: required in production (${shape})`
        : `${ring.variable}: not set and no local key ring yet; run \`npm run stack:up\` once or set it (${shape})`,
    ]);
  try {
    return parseKeyRing(spec, ring.what);
  } catch (err) {
    throw new ConfigError([`${source}: ${err instanceof Error ? err.message : String(err)}`]);
  }
}

function resolveJwtSecret(fromEnv: string | undefined, s: Settings): string {
  if (fromEnv) return fromEnv;
  if (s.PERSONA_JWKS_URL) return '';
  const file = localJwtSecretPath(s.PERSONA_STACK_DIR);
  if (s.NODE_ENV !== 'production' && existsSync(file)) return readFileSync(file, 'utf8').trim();
  throw new ConfigError([
    s.NODE_ENV === 'production'
      ? 'PERSONA_JWT_SECRET: required in production unless PERSONA_JWKS_URL is set'
      : 'PERSONA_JWT_SECRET: not set and no local secret yet; run `npm run stack:up` once or set it ' +
        '(at least 32 characters)',
  ]);
}
