/**
 * The worker's /metrics: the Temporal SDK's runtime metrics (workflow and activity counts and
 * latencies, task-queue polling, sticky cache) together with Persona's business counters
 * (temporal/metrics.ts, recorded by the workflows through the same SDK meter), plus Node's own
 * process metrics. The SDK's exporter listens on loopback only; /metrics on the worker's HTTP
 * port serves its text and the process metrics as one page, so ops scrape one address.
 */
import type { MetricMeter } from '@temporalio/common';
import type { TelemetryOptions } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { BUSINESS_METRICS, labelSets, type BusinessMetric } from '../temporal/metrics';

/** Runtime telemetry: the SDK's Prometheus exporter on 127.0.0.1:`port`, seconds and `_total` as Prometheus expects. */
export function sdkMetricsTelemetry(port: number): TelemetryOptions {
  return {
    metrics: {
      prometheus: {
        bindAddress: `127.0.0.1:${port}`,
        countersTotalSuffix: true,
        unitSuffix: true,
        useSecondsForDurations: true,
      },
    },
  };
}

/** Renders the worker's whole /metrics page; rejects when the SDK's exporter does not answer. */
export function workerMetricsPage(sdkPort: number, processMetrics: Registry): () => Promise<string> {
  return async () => {
    const res = await fetch(`http://127.0.0.1:${sdkPort}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`the Temporal SDK's metrics exporter answered ${res.status}`);
    const [sdk, node] = await Promise.all([res.text(), processMetrics.metrics()]);
    return `${sdk.trimEnd()}\n${node}`;
  };
}

/**
 * Creates every business counter series at 0, with the labels the workflows will record them
 * under, so that Prometheus's `increase()` sees a series' first event too (a series that first
 * appears at 1 looks, to `increase()`, like no change).
 */
export function initBusinessCounters(
  meter: MetricMeter,
  worker: { namespace: string; queueOf: (workflowType: string) => string | undefined },
): void {
  for (const metric of Object.values(BUSINESS_METRICS) as BusinessMetric[]) {
    if (metric.kind !== 'counter') continue;
    // On the queue its workflow runs on (temporal/taskQueues.ts), as the workflow records it; none
    // for a kind this process does not run.
    const taskQueue = worker.queueOf(metric.workflowType);
    if (taskQueue === undefined) continue;
    const counter = meter
      .withTags({ namespace: worker.namespace, taskQueue, workflowType: metric.workflowType })
      .createCounter(metric.name, metric.unit, metric.help);
    for (const labels of labelSets(metric)) counter.add(0, labels);
  }
}
