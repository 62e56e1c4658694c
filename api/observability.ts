/**
 * What the api tells ops about every request, REST or gRPC: a request id (the caller's
 * `X-Request-Id`, or a new one) answered in the same header and carried into every log line
 * and every workflow the request starts or signals; one JSON log line per request; and a
 * latency histogram by route and status on /metrics.
 */
import { status as grpcStatus, Metadata, type handleUnaryCall } from '@grpc/grpc-js';
import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../runtime/logger';
import { createRegistry } from '../runtime/metrics';
import { REQUEST_ID_HEADER, requestIdFrom, type RequestContext } from '../runtime/requestContext';
import { inSpan } from '../runtime/tracing';
import { EVENT_RELAY_WORKFLOW_ID } from '../temporal/eventRelay';

export interface ApiMetrics {
  registry: Registry;
  http: Histogram<'method' | 'route' | 'status'>;
  grpc: Histogram<'method' | 'code'>;
  relayParked: Gauge<'workflow_id'>;
  relayBlocked: Gauge<'workflow_id'>;
  publisherBehindEvents: Gauge;
  publisherBehindSeconds: Gauge;
  /** Consumed messages sent to the dead-letter topic, by the topic they came from. */
  kafkaDeadLetters: Counter<'topic'>;
  /** Calls refused by the rate limiter (api/rateLimit.ts), by scope class and transport. */
  rateLimited: Counter<'class' | 'transport'>;
  /** Interaction items waiting per write lane; read at each scrape from `interactionLanes.queued`. */
  interactionsQueued: Gauge<'lane'>;
  /** Set by api/deps.ts when it builds this api's write lanes (`apiStateOf`). */
  interactionLanes: { queued?: () => number[] };
  /** Set by api/deps.ts: the read cache's figures, read at each scrape. */
  readCache: { view?: () => ReadCacheView };
  /** Set by api/main.ts when Kafka is on: the agents' topics' consumer, read at each scrape. */
  kafkaConsumer: { view?: () => { consuming: boolean; restarts: number } };
}

/** What the read cache's metrics show (api/readCache.ts, api/invalidations.ts). */
export interface ReadCacheView {
  hits: number;
  misses: Record<'absent' | 'behind_token' | 'tail_behind' | 'expired', number>;
  stale: number;
  applied: number;
  invalidated: { local: number; tail: number };
  entries: number;
  bytes: number;
  breaker: 'closed' | 'open' | 'half-open';
  /** Seconds since the log was last known drained and taken whole by the tail (Infinity before the first). */
  tailAgeSeconds: number;
  /** Holes in the invalidations read from Neo4j, and the events they held. */
  holes: number;
  holeEvents: number;
  /** Times the cache was emptied (a hole too wide to read, or the log numbered back). */
  resets: number;
  /** Invalidation messages dropped: not sealed under this deployment's payload keys, or malformed. */
  refused: number;
}

/** Seconds: from a cached context read (milliseconds) to `?wait=true` onboardings (up to the wait timeout). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface ApiMetricsOptions {
  processMetrics?: boolean;
  /** The relay's gauges now, from its graph checkpoint, or null when unknown (read at each scrape). */
  relay?: () => Promise<{ parked: number; blocked_seconds: number } | null>;
  /** The Kafka publisher's lag now, from its checkpoint, or null when Kafka is off or it never ran. */
  publisher?: () => Promise<{ behind_events: number; behind_seconds: number } | null>;
}

export function createApiMetrics(options: ApiMetricsOptions = {}): ApiMetrics {
  const registry = createRegistry(options);
  const { relay } = options;
  // Both relay gauges come from one checkpoint read per scrape: a collect that starts while the
  // other's read is in flight shares it; the next scrape reads again.
  let pending: Promise<{ parked: number; blocked_seconds: number } | null> | null = null;
  const relayNow = () => {
    if (!relay) return Promise.resolve(null);
    pending ??= relay().finally(() => {
      pending = null;
    });
    return pending;
  };
  let publishing: Promise<{ behind_events: number; behind_seconds: number } | null> | null = null;
  const publisherNow = () => {
    if (!options.publisher) return Promise.resolve(null);
    publishing ??= options.publisher().finally(() => {
      publishing = null;
    });
    return publishing;
  };
  const interactionLanes: ApiMetrics['interactionLanes'] = {};
  const readCache: ApiMetrics['readCache'] = {};
  const kafkaConsumer: ApiMetrics['kafkaConsumer'] = {};
  // The agents' topics' consumer (absent when Kafka is off): one that ended and has not been started
  // again reads nothing, and payment failures and fraud outcomes sent by Kafka wait.
  new Gauge({
    name: 'persona_kafka_consumer_up',
    help: "1 while this api consumes the agents' Kafka topics, 0 while its consumer is being started again",
    registers: [registry],
    collect() {
      const view = kafkaConsumer.view?.();
      if (view) this.set(view.consuming ? 1 : 0);
    },
  });
  new Counter({
    name: 'persona_kafka_consumer_restarts_total',
    help: "Times the agents' topics' consumer ended (its stream failed, or its group could not be rejoined)",
    registers: [registry],
    collect() {
      const view = kafkaConsumer.view?.();
      if (!view) return;
      this.reset();
      this.inc(view.restarts);
    },
  });
  // Counters that mirror the cache's own: set to its figure at each scrape.
  const mirror = (name: string, help: string, value: (v: ReadCacheView) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const view = readCache.view?.();
        if (!view) return;
        this.reset();
        this.inc(value(view));
      },
    });
  mirror('persona_read_cache_hits_total', 'Context and checkout reads answered from the read cache', (v) => v.hits);
  new Counter({
    name: 'persona_read_cache_misses_total',
    help: 'Context and checkout reads that went to Neo4j, by why (absent, behind_token, tail_behind, expired)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const view = readCache.view?.();
      if (!view) return;
      this.reset();
      for (const [reason, count] of Object.entries(view.misses)) this.inc({ reason }, count);
    },
  });
  mirror(
    'persona_read_cache_stale_answers_total',
    'Reads answered from the cache marked stale because Neo4j could not answer',
    (v) => v.stale,
  );
  mirror('persona_read_cache_applied_total', 'Events applied to cached customers in place', (v) => v.applied);
  mirror(
    'persona_read_cache_holes_total',
    'Holes in the invalidations (a message lost or crossed) the tail read from Neo4j',
    (v) => v.holes,
  );
  mirror('persona_read_cache_hole_events_total', 'Events the tail read from Neo4j to fill holes', (v) => v.holeEvents);
  mirror(
    'persona_read_cache_refused_messages_total',
    "Invalidation messages dropped: not sealed under this deployment's payload keys, or malformed",
    (v) => v.refused,
  );
  mirror(
    'persona_read_cache_resets_total',
    'Times the read cache was emptied: a hole wider than PERSONA_READ_CACHE_MAX_GAP, or the log numbered back',
    (v) => v.resets,
  );
  new Counter({
    name: 'persona_read_cache_invalidations_total',
    help: 'Cached customers dropped by an event, by where the event came from (local commit or the tail)',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      const view = readCache.view?.();
      if (!view) return;
      this.reset();
      this.inc({ source: 'local' }, view.invalidated.local);
      this.inc({ source: 'tail' }, view.invalidated.tail);
    },
  });
  // Gauges that show the cache's figure at each scrape.
  const gauge = (name: string, help: string, value: (v: ReadCacheView) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const view = readCache.view?.();
        if (view) this.set(value(view));
      },
    });
  gauge('persona_read_cache_entries', 'Customers held by the read cache', (v) => v.entries);
  gauge('persona_read_cache_bytes', 'Estimated memory of the read cache entries', (v) => v.bytes);
  gauge(
    'persona_read_cache_tail_age_seconds',
    'Seconds since the read cache last tailed the event log successfully, or since the tail started ' +
      'before its first poll (hits stop past PERSONA_READ_CACHE_FRESH_MS; -1 when the cache is off)',
    (v) => (Number.isFinite(v.tailAgeSeconds) ? v.tailAgeSeconds : -1),
  );
  gauge(
    'persona_read_breaker_open',
    'The read breaker: 0 closed, 1 open (reads fail fast or are served stale), 0.5 half-open (probing)',
    (v) => (v.breaker === 'closed' ? 0 : v.breaker === 'open' ? 1 : 0.5),
  );
  return {
    registry,
    interactionLanes,
    readCache,
    interactionsQueued: new Gauge({
      name: 'persona_interactions_queued_items',
      help: 'Interaction items waiting for their write lane (absent until the first batch)',
      labelNames: ['lane'],
      registers: [registry],
      collect() {
        this.reset();
        interactionLanes.queued?.().forEach((n, lane) => this.set({ lane: String(lane) }, n));
      },
    }),
    http: new Histogram({
      name: 'persona_http_request_duration_seconds',
      help: 'REST request latency, by method, route pattern and response status',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    grpc: new Histogram({
      name: 'persona_grpc_request_duration_seconds',
      help: 'gRPC call latency, by method and status code',
      labelNames: ['method', 'code'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'persona_rate_limited_total',
      help: 'Calls refused with 429 / RESOURCE_EXHAUSTED by the per-caller rate limit, by scope class and transport',
      labelNames: ['class', 'transport'],
      registers: [registry],
    }),
    // Read from the relay's checkpoint in the graph at each scrape, so it is right whichever
    // worker runs the relay, and while Temporal is down.
    relayParked: new Gauge({
      name: 'persona_event_relay_parked_events',
      help:
        'Events the relay has parked because the subscriber refused them for good ' +
        '(absent when the relay never ran)',
      labelNames: ['workflow_id'],
      registers: [registry],
      async collect() {
        this.reset();
        const now = await relayNow();
        if (now !== null) this.set({ workflow_id: EVENT_RELAY_WORKFLOW_ID }, now.parked);
      },
    }),
    relayBlocked: new Gauge({
      name: 'persona_event_relay_blocked_seconds',
      help:
        'How long the relay has waited on one event the subscriber keeps answering "not now" ' +
        '(0 when it is not blocked; absent when the relay never ran)',
      labelNames: ['workflow_id'],
      registers: [registry],
      async collect() {
        this.reset();
        const now = await relayNow();
        if (now !== null) this.set({ workflow_id: EVENT_RELAY_WORKFLOW_ID }, now.blocked_seconds);
      },
    }),
    kafkaConsumer,
    kafkaDeadLetters: new Counter({
      name: 'persona_kafka_dead_letters_total',
      help: "Messages of the agents' topics the api can never accept, sent to the dead-letter topic, by topic",
      labelNames: ['topic'],
      registers: [registry],
    }),
    // The Kafka publisher's lag, from its checkpoint at each scrape (whichever worker publishes).
    publisherBehindEvents: new Gauge({
      name: 'persona_kafka_publisher_behind_events',
      help:
        "Events in the log after the Kafka publisher's checkpoint, counted up to 100,000 " +
        '(0 when Kafka is off or the publisher never ran)',
      registers: [registry],
      async collect() {
        this.reset();
        const now = await publisherNow();
        if (now !== null) this.set(now.behind_events);
      },
    }),
    publisherBehindSeconds: new Gauge({
      name: 'persona_kafka_publisher_behind_seconds',
      help:
        'Age of the oldest event the Kafka publisher has not published yet (0 when it is at the end, ' +
        'when Kafka is off or the publisher never ran; the feed lag PERSONA_EVENTS_FEED_LAG_MS is always in it)',
      registers: [registry],
      async collect() {
        this.reset();
        const now = await publisherNow();
        if (now !== null) this.set(now.behind_seconds);
      },
    }),
  };
}

interface ObserveDeps {
  logger: Logger;
  requests: RequestContext;
  metrics: ApiMetrics;
  /** Set when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT). */
  tracer?: Tracer | undefined;
}

/** Probes and scrapes that succeed are logged at debug only: they come every few seconds. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
/**
 * The agents' reads, which come with every payment, are logged at debug too when they succeed (a
 * line each was 2.7 % of the api's CPU on the read path); the latency histogram still counts every
 * one, and one that fails is logged at its level.
 */
const HOT_READ_ROUTES = new Set(['/api/v1/customers/:id/context', '/api/v1/customers/:id/checkout-options']);
const HOT_READ_METHODS = new Set(['GetCustomerContext', 'GetCheckoutOptions']);

/** The route pattern that answered (`/api/v1/customers/:id/profile`), or `unmatched` (bounded label values). */
function routeOf(c: Parameters<MiddlewareHandler>[0]): string {
  // The last matched route that is not middleware (`ALL`), without building a second array.
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i];
    if (r && r.method !== 'ALL') return r.path;
  }
  return 'unmatched';
}

/**
 * The per-request line's logger: the line holds only fixed fields (request id, method, route
 * pattern, status, time), never a body, a path or a header, so the key redaction every other line
 * goes through (runtime/logger.ts), a fifth of the line's cost on the read path, is left out.
 */
const requestLineLogger = (logger: Logger): Logger => logger.child({}, { redact: [] });

/** REST middleware: request id, one log line, the latency histogram. */
export function observeRequests(deps: ObserveDeps): MiddlewareHandler {
  const lines = requestLineLogger(deps.logger);
  return async (c, next) => {
    const requestId = requestIdFrom(c.req.header(REQUEST_ID_HEADER));
    const started = performance.now();
    c.header('X-Request-Id', requestId);
    const method = c.req.method;
    const { route, traceId } = await inSpan(
      deps.tracer,
      method,
      () => c.req.header(),
      async (span) => {
        await deps.requests.run({ requestId }, next);
        const answered = routeOf(c);
        span?.updateName(`${method} ${answered}`);
        span?.setAttributes({
          'http.request.method': method,
          'http.route': answered,
          'http.response.status_code': c.res.status,
          'persona.request_id': requestId,
        });
        if (c.res.status >= 500) span?.setStatus({ code: SpanStatusCode.ERROR });
        return { route: answered, traceId: span?.spanContext().traceId };
      },
    );
    const seconds = (performance.now() - started) / 1000;
    const status = c.res.status;
    deps.metrics.http.observe({ method, route, status: String(status) }, seconds);
    // Not the path: a caller may put an email or a phone number where an id belongs.
    // A 503 is a dependency that is down (said once per request at warn, and by readiness), not a bug.
    const level = QUIET_ROUTES.has(route)
      ? status < 400
        ? 'debug'
        : 'warn'
      : status === 503
        ? 'warn'
        : status >= 500
          ? 'error'
          : status < 400 && HOT_READ_ROUTES.has(route)
            ? 'debug'
            : 'info';
    if (lines.isLevelEnabled(level))
      lines[level](
        { requestId, ...(traceId ? { traceId } : {}), method, route, status, ms: Math.round(seconds * 1000) },
        `${method} ${route} ${status}`,
      );
  };
}

/** gRPC: the same for one unary method — request id in and out as `x-request-id` metadata. */
export function observeUnary<Req, Res>(
  deps: ObserveDeps,
  method: string,
  handler: handleUnaryCall<Req, Res>,
): handleUnaryCall<Req, Res> {
  const lines = requestLineLogger(deps.logger);
  return (call, callback) => {
    const requestId = requestIdFrom(call.metadata.get(REQUEST_ID_HEADER)[0]?.toString());
    const started = performance.now();
    const answer = new Metadata();
    answer.set(REQUEST_ID_HEADER, requestId);
    call.sendMetadata(answer);
    const carrier = () => Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, v.toString()]));
    void inSpan(
      deps.tracer,
      `gRPC ${method}`,
      carrier,
      (span) =>
        new Promise<void>((done) => {
          const respond: Parameters<typeof handler>[1] = (err, value) => {
            const seconds = (performance.now() - started) / 1000;
            const code = grpcStatus[err ? (err.code ?? grpcStatus.UNKNOWN) : grpcStatus.OK];
            deps.metrics.grpc.observe({ method, code }, seconds);
            span?.setAttributes({
              'rpc.system': 'grpc',
              'rpc.method': method,
              'rpc.grpc.status_code': err?.code ?? grpcStatus.OK,
              'persona.request_id': requestId,
            });
            if (err) span?.setStatus({ code: SpanStatusCode.ERROR, message: code });
            const traceId = span?.spanContext().traceId;
            const level =
              err?.code === grpcStatus.INTERNAL || err?.code === grpcStatus.UNKNOWN
                ? 'error'
                : !err && HOT_READ_METHODS.has(method)
                  ? 'debug'
                  : 'info';
            if (lines.isLevelEnabled(level))
              lines[level](
                {
                  requestId,
                  ...(traceId ? { traceId } : {}),
                  grpcMethod: method,
                  code,
                  ms: Math.round(seconds * 1000),
                },
                `gRPC ${method} ${code}`,
              );
            callback(err, value);
            done();
          };
          deps.requests.run({ requestId }, () => {
            try {
              handler(call, respond);
            } catch (err) {
              deps.logger.error({ err, requestId, grpcMethod: method }, 'gRPC handler threw');
              respond({ code: grpcStatus.INTERNAL, details: 'Internal error; it was logged.' });
            }
          });
        }),
    );
  };
}
