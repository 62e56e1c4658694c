/**
 * Optional OpenTelemetry tracing. With OTEL_EXPORTER_OTLP_ENDPOINT set, a process exports its
 * spans there over OTLP/HTTP: the api a span per REST request and gRPC call (continuing the
 * caller's `traceparent`), the Temporal client, workflows and activities theirs through
 * @temporalio/interceptors-opentelemetry — so one trace runs from an agent's request through
 * the workflow it starts to each activity. Unset, nothing is traced.
 */
import { context, propagation, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';

export interface Tracing {
  tracer: Tracer;
  /** For a Temporal Client and Worker: traces starts, signals, workflows and activities. */
  temporal: OpenTelemetryPlugin;
  /** Flushes what is buffered; call on shutdown. */
  shutdown(): Promise<void>;
}

/** Tracing for `service` when `endpoint` (OTEL_EXPORTER_OTLP_ENDPOINT) is set, else null. */
export function startTracing(service: string, endpoint: string | undefined): Tracing | null {
  if (!endpoint) return null;
  const resource = new Resource({ 'service.name': service });
  const spanProcessor = new BatchSpanProcessor(
    new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` }),
  );
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // The global provider, context manager (AsyncLocalStorage) and W3C trace-context propagator.
  provider.register();
  const tracer = trace.getTracer(service);
  return {
    tracer,
    temporal: new OpenTelemetryPlugin({ resource, spanProcessor, tracer }),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Runs `work` in a span that continues the caller's trace (W3C `traceparent` among the
 * headers `carrier` gives, read only when tracing is on); `work` gets the span to name it and
 * set its attributes once the outcome is known. Without tracing, just runs `work`.
 */
export async function inSpan<T>(
  tracer: Tracer | undefined,
  name: string,
  carrier: () => Record<string, string>,
  work: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  if (!tracer) return work(undefined);
  const parent = propagation.extract(context.active(), carrier());
  return tracer.startActiveSpan(name, {}, parent, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
