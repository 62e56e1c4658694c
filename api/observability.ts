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
import {
  kafkaConsumerMetrics,
  kafkaDeadLetterCounter,
  kafkaPublisherMetrics,
  type KafkaConsumerSource,
  type PublisherLag,
} from './kafkaMetrics';
import { certificateExpiryGauge } from '../runtime/certificates';
import { readCacheCounters, readCacheGauges, type ReadCacheSource } from './readCacheMetrics';

export type { ReadCacheView } from './readCacheMetrics';

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
  readCache: ReadCacheSource;
  /** Set by api/main.ts when Kafka is on: the agents' topics' consumer, read at each scrape. */
  kafkaConsumer: KafkaConsumerSource;
}

/** Seconds: from a cached context read (milliseconds) to `?wait=true` onboardings (up to the wait timeout). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface ApiMetricsOptions {
  processMetrics?: boolean;
  /** The relay's gauges now, from its graph checkpoint, or null when unknown (read at each scrape). */
  relay?: () => Promise<{ parked: number; blocked_seconds: number } | null>;
  /** The Kafka publisher's lag now, from its checkpoint, or null when Kafka is off or it never ran. */
  publisher?: PublisherLag;
  /** The certificate files the process runs on (runtime/certificates.ts): their expiry on /metrics. */
  certificates?: Parameters<typeof certificateExpiryGauge>[1];
}

/**
 * The api's registry and every metric on its /metrics, registered in a fixed order (the order
 * /metrics lists them in): the Kafka consumer's, the read cache's, the write lanes' queue, request
 * latency and refusals, the relay's, the dead letters and the Kafka publisher's lag. The views the
 * scrape-time metrics read (lanes, read cache, consumer) are left for api/deps.ts and api/main.ts
 * to set once they have built what they read.
 */
export function createApiMetrics(options: ApiMetricsOptions = {}): ApiMetrics {
  const registry = createRegistry(options);
  certificateExpiryGauge(registry, options.certificates ?? {});
  const interactionLanes: ApiMetrics['interactionLanes'] = {};
  const readCache: ApiMetrics['readCache'] = {};
  const kafkaConsumer: ApiMetrics['kafkaConsumer'] = {};
  kafkaConsumerMetrics(registry, kafkaConsumer);
  readCacheCounters(registry, readCache);
  readCacheGauges(registry, readCache);
  return {
    registry,
    interactionLanes,
    readCache,
    interactionsQueued: interactionsQueuedGauge(registry, interactionLanes),
    ...requestMetrics(registry),
    ...relayMetrics(registry, options.relay),
    kafkaConsumer,
    kafkaDeadLetters: kafkaDeadLetterCounter(registry),
    ...kafkaPublisherMetrics(registry, options.publisher),
  };
}

/**
 * Interaction items waiting per write lane, by lane: read at each scrape from the lanes api/deps.ts
 * builds, so nothing is shown until it has built them.
 */
function interactionsQueuedGauge(
  registry: Registry,
  interactionLanes: ApiMetrics['interactionLanes'],
): ApiMetrics['interactionsQueued'] {
  return new Gauge({
    name: 'persona_interactions_queued_items',
    help: 'Interaction items waiting for their write lane (absent until the first batch)',
    labelNames: ['lane'],
    registers: [registry],
    collect() {
      this.reset();
      interactionLanes.queued?.().forEach((n, lane) => this.set({ lane: String(lane) }, n));
    },
  });
}

/**
 * What every call gets counted in: the REST and gRPC latency histograms (observed by
 * `observeRequests` and `observeUnary` below) and the rate limiter's refusals (api/rateLimit.ts).
 */
function requestMetrics(registry: Registry): Pick<ApiMetrics, 'http' | 'grpc' | 'rateLimited'> {
  return {
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
  };
}

/**
 * The event relay workflow's gauges, by its workflow id: the events it parked for good, and how
 * long it has waited on one event; both read through `relay` at each scrape, absent when it never ran.
 */
function relayMetrics(
  registry: Registry,
  relay: ApiMetricsOptions['relay'],
): Pick<ApiMetrics, 'relayParked' | 'relayBlocked'> {
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
  return {
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
