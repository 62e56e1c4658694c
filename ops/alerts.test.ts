/**
 * The alert rules, checked against the code without a Prometheus at hand: every expression
 * parses as PromQL (Prometheus's own grammar), names only metrics that exist — the api's
 * histograms and the workflows' business metrics as the code defines them, the Temporal SDK's
 * as its bundled Core source defines them, the Temporal server's backlog gauges as its source
 * defines them — with labels they have; every alert has its section in the runbook; the scrape
 * config names the jobs the rules refer to, and a rule fires when a job's targets vanish.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Histogram } from 'prom-client';
import { parse } from 'yaml';
import { createApiMetrics } from '../api/observability';
import { envSchema, repoRoot } from '../config/env';
import { BUSINESS_METRICS, exportedName, type BusinessMetric } from '../temporal/metrics';
import { taskQueuesOf } from '../temporal/taskQueues';
import { alertRules, promqlSelectors as selectors } from '../test/support/observability';

const dir = path.join(repoRoot, 'ops', 'prometheus');
const rules = alertRules();
const prometheus = parse(readFileSync(path.join(dir, 'prometheus.yml'), 'utf8')) as {
  rule_files: string[];
  scrape_configs: { job_name: string }[];
};
const runbook = readFileSync(path.join(repoRoot, 'docs', 'runbook.md'), 'utf8');

/** Metric name (as exported) → the labels it has (`le` on buckets), for the metrics Persona itself exports. */
function personaMetrics(): Map<string, string[]> {
  const known = new Map<string, string[]>();
  const api = createApiMetrics();
  for (const histogram of [api.http, api.grpc]) {
    const { name, labelNames } = histogram as unknown as { name: string; labelNames: string[] };
    known.set(`${name}_bucket`, [...labelNames, 'le']);
    for (const suffix of ['_count', '_sum']) known.set(`${name}${suffix}`, labelNames);
  }
  // Every counter and gauge of the api's registry (the relay's, the rate limiter's, the read cache's, …).
  for (const metric of api.registry.getMetricsAsArray()) {
    const { name, labelNames } = metric as unknown as { name: string; labelNames: string[] };
    if (metric instanceof Histogram) continue;
    known.set(name, labelNames);
  }
  // Workflow metrics also carry the worker's labels (namespace, taskQueue) and the workflow type.
  for (const m of Object.values(BUSINESS_METRICS) as BusinessMetric[])
    known.set(exportedName(m), [...Object.keys(m.values), 'namespace', 'taskQueue', 'workflowType']);
  return known;
}

/**
 * The metrics the installed Temporal Core defines, under the names the worker exports them
 * (`temporal_` prefix; counters `_total`, duration histograms `_seconds_bucket|_count|_sum`),
 * each with the label keys Core uses.
 */
function coreMetrics(): Map<string, string[]> {
  const bridge = path.dirname(createRequire(import.meta.url).resolve('@temporalio/core-bridge/package.json'));
  const source = ['sdk-core/src/telemetry/metrics.rs', 'common/src/telemetry/metrics.rs', 'client/src/metrics.rs']
    .map((file) => readFileSync(path.join(bridge, 'sdk-core', 'crates', file), 'utf8'))
    .join('\n');
  const consts = new Map(
    [...source.matchAll(/const (\w+): &str =\s*"([a-z_]+)"/g)].map((m) => [m[1] as string, m[2] as string]),
  );
  const labels = [...consts.entries()].filter(([k]) => k.startsWith('KEY_')).map(([, v]) => v);
  labels.push('service_name');
  const known = new Map<string, string[]>();
  for (const m of source.matchAll(
    /(counter|gauge|histogram_duration)\w*\(MetricParameters \{\s*name: (?:"([a-z_]+)"|([A-Z_]+))\.into\(\)/g,
  )) {
    const name = m[2] ?? consts.get(m[3] as string);
    if (!name) continue;
    const base = `temporal_${name}`;
    if (m[1] === 'counter') known.set(`${base}_total`, labels);
    else if (m[1] === 'gauge') known.set(base, labels);
    else {
      known.set(`${base}_seconds_bucket`, [...labels, 'le']);
      for (const suffix of ['_seconds_count', '_seconds_sum']) known.set(`${base}${suffix}`, labels);
    }
  }
  return known;
}

/**
 * The Temporal server's metrics the rules read (it has no package here to read them from), as
 * temporalio/temporal v1.29.7, the server both compose files run, exports them to Prometheus:
 * the gauges of common/metrics/metric_defs.go (ApproximateBacklogCount, ApproximateBacklogAgeSeconds),
 * set by matching per partition of a physical task queue (service/matching/db.go,
 * emitBacklogGaugesLocked), with the tags of common/metrics/task_queues.go (namespace, taskqueue,
 * task_type, partition), service/matching/physical_task_queue_manager.go (operation,
 * worker-build-id) and temporal/fx.go (service_name). Its metrics library (tally, with the
 * sanitizer of common/metrics/config.go) writes worker-build-id as worker_build_id.
 */
const TEMPORAL_SERVER_METRICS: Record<string, string[]> = Object.fromEntries(
  ['approximate_backlog_age_seconds', 'approximate_backlog_count'].map((name) => [
    name,
    ['service_name', 'operation', 'namespace', 'taskqueue', 'task_type', 'partition', 'worker_build_id'],
  ]),
);

/**
 * The selector that says a job's targets are gone, by scrape job: `up` for a job of Persona's,
 * whose own job name the rule can name. Temporal's job name is whatever scrapes it (this file's
 * `temporal`, another chart's ServiceMonitor in Kubernetes), so its rule asks for the metrics
 * the task-queue rules need instead.
 */
const vanished = (job: string): string =>
  job === 'temporal' ? 'absent(approximate_backlog_age_seconds{' : `absent(up{job="${job}"})`;

describe('ops/prometheus/alerts.yml', () => {
  it('has alerts, each with a severity, words for ops and a runbook link', () => {
    expect(rules.length).toBeGreaterThanOrEqual(10);
    for (const r of rules) {
      expect(r.alert).toMatch(/^Persona[A-Z]\w+$/);
      expect(['page', 'ticket']).toContain(r.labels.severity);
      expect(r.annotations.summary.length, r.alert).toBeGreaterThan(10);
      expect(r.annotations.description.length, r.alert).toBeGreaterThan(10);
      expect(r.annotations.runbook_url).toBe(`docs/runbook.md#${r.alert.toLowerCase()}`);
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it('says in the runbook what each alert means, and lists no alert that does not exist', () => {
    const documented = [...runbook.matchAll(/^### (Persona\w+)$/gm)].map((m) => m[1]);
    expect(documented).toEqual(rules.map((r) => r.alert));
  });

  it('parses as PromQL and names only metrics and labels that exist', () => {
    const known = new Map([...personaMetrics(), ...coreMetrics(), ...Object.entries(TEMPORAL_SERVER_METRICS)]);
    expect(known.get('temporal_workflow_completed_total')).toContain('workflow_type');
    const problems: string[] = [];
    for (const r of rules) {
      const { errors, found, groupings } = selectors(r.expr);
      if (errors > 0) problems.push(`${r.alert}: does not parse`);
      if (found.length === 0) problems.push(`${r.alert}: no metric`);
      for (const { metric, labels } of found) {
        if (metric === 'up') continue; // Prometheus's own, per scrape job
        const has = known.get(metric);
        if (!has) problems.push(`${r.alert}: ${metric} is not a metric Persona or Temporal (SDK, server) exports`);
        for (const label of has ? labels : [])
          if (!has?.includes(label)) problems.push(`${r.alert}: ${metric} has no label ${label}`);
      }
      for (const { labels, metrics } of groupings) {
        for (const label of labels)
          for (const metric of metrics)
            if (known.get(metric) && !known.get(metric)?.includes(label))
              problems.push(`${r.alert}: groups ${metric} by ${label}, which it does not have`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('alerts on every wait past its deadline: each overdue counter has a rule naming it', () => {
    const overdue = (Object.values(BUSINESS_METRICS) as BusinessMetric[])
      .filter((m) => /overdue/.test(m.name))
      .map(exportedName);
    expect(overdue).toEqual(
      expect.arrayContaining([
        'persona_payment_recoveries_attention_overdue_total',
        'persona_erasures_overdue_total',
        'persona_fraud_reviews_overdue_total',
      ]),
    );
    const unalerted = overdue.filter(
      (name) => !rules.some((r) => selectors(r.expr).found.some((f) => f.metric === name)),
    );
    expect(unalerted).toEqual([]);
  });

  it('is what prometheus.yml loads, and the jobs the rules name are scraped', () => {
    expect(prometheus.rule_files).toEqual(['alerts.yml']);
    const jobs = prometheus.scrape_configs.map((s) => s.job_name);
    const named = rules.flatMap((r) => [...r.expr.matchAll(/job="([^"]+)"/g)].map((m) => m[1]));
    for (const job of named) expect(jobs).toContain(job);
  });

  it('pages when a scrape job has no target left: no `up` to be 0, or no Temporal backlog figures', () => {
    const jobs = prometheus.scrape_configs.map((s) => s.job_name);
    expect(jobs).toEqual(expect.arrayContaining(['persona-api', 'persona-worker', 'temporal']));
    for (const job of jobs) {
      const rule = rules.find((r) => r.expr.includes(vanished(job)));
      expect(rule, job).toBeDefined();
      expect(rule?.labels.severity, job).toBe('page');
    }
  });

  it("reads the backlog of every task queue of Persona's default TEMPORAL_TASK_QUEUE, as the server names them", () => {
    const queues = Object.values(taskQueuesOf(envSchema.parse({}).TEMPORAL_TASK_QUEUE));
    expect(queues).toContain('persona-charges');
    // As the server's metrics library writes them (persona_charges), and as an OpenTelemetry exporter would.
    const names = queues.flatMap((q) => [q, q.replace(/[^A-Za-z0-9_]/g, '_')]);
    const backlogRules = rules.filter((r) => r.expr.includes('approximate_backlog_age_seconds'));
    expect(backlogRules.map((r) => r.alert)).toEqual([
      'PersonaTemporalMetricsMissing',
      'PersonaTaskQueueStalled',
      'PersonaPinnedWorkStalled',
    ]);
    for (const r of backlogRules) {
      const patterns = [...r.expr.matchAll(/taskqueue=~"([^"]+)"/g)].map((m) => new RegExp(`^(?:${m[1]})$`));
      expect(patterns.length, r.alert).toBeGreaterThan(0);
      for (const name of names)
        expect(
          patterns.some((p) => p.test(name)),
          `${r.alert}: ${name}`,
        ).toBe(true);
      // Another service's queue on the same Temporal is not Persona's.
      expect(
        patterns.some((p) => p.test('orders-charges')),
        r.alert,
      ).toBe(false);
    }
  });

  it(
    'catches what it should: a misspelt metric, a wrong label, a wrong suffix, ' + 'a wrong grouping, broken PromQL',
    () => {
      expect(selectors('sum by (taskQueue) (rate(persona_onboardings_total{outcome="failed"}[5m]))')).toEqual({
        errors: 0,
        found: [{ metric: 'persona_onboardings_total', labels: ['outcome'] }],
        groupings: [{ labels: ['taskQueue'], metrics: ['persona_onboardings_total'] }],
      });
      expect(selectors('sum(rate(foo[5m]) >').errors).toBeGreaterThan(0);
      const persona = personaMetrics();
      expect(persona.get('persona_onboardings_total')).toContain('outcome');
      expect(persona.get('persona_onboardings_total')).not.toContain('task_queue');
      expect(persona.has('persona_onboarding_total')).toBe(false);
      const core = coreMetrics();
      expect(core.has('temporal_workflow_failed_total')).toBe(true);
      expect(core.has('temporal_workflow_failed_seconds_bucket')).toBe(false);
      expect(core.has('temporal_workflow_task_schedule_to_start_latency_seconds_bucket')).toBe(true);
      expect(core.has('temporal_workflow_task_schedule_to_start_latency_total')).toBe(false);
      expect(core.get('temporal_activity_execution_failed_total')).toContain('activity_type');
      expect(core.get('temporal_activity_execution_failed_total')).not.toContain('taskQueue');
    },
  );
});
