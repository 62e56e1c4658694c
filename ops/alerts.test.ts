/**
 * The alert rules, checked against the code without a Prometheus at hand: every expression
 * parses as PromQL (Prometheus's own grammar), names only metrics that exist — the api's
 * histograms and the workflows' business metrics as the code defines them, the Temporal SDK's
 * as its bundled Core source defines them — with labels they have; every alert has its section
 * in the runbook; and the scrape config names the jobs the rules refer to.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createApiMetrics } from '../api/observability';
import { repoRoot } from '../config/env';
import { BUSINESS_METRICS, exportedName } from '../temporal/metrics';
import { alertRules, promqlSelectors as selectors } from '../test/support/observability';

const dir = path.join(repoRoot, 'ops', 'prometheus');
const rules = alertRules();
const prometheus = parse(readFileSync(path.join(dir, 'prometheus.yml'), 'utf8')) as { rule_files: string[]; scrape_configs: { job_name: string }[] };
const runbook = readFileSync(path.join(repoRoot, 'docs', 'runbook.md'), 'utf8');

/** Metric name → the labels it has (besides `le` on buckets), for the metrics Persona itself exports. */
function personaMetrics(): Map<string, string[]> {
  const known = new Map<string, string[]>();
  const api = createApiMetrics();
  for (const histogram of [api.http, api.grpc]) {
    const { name, labelNames } = histogram as unknown as { name: string; labelNames: string[] };
    for (const suffix of ['_bucket', '_count', '_sum']) known.set(`${name}${suffix}`, labelNames);
  }
  // Workflow metrics also carry the worker's labels (namespace, taskQueue) and the workflow type.
  for (const m of Object.values(BUSINESS_METRICS)) known.set(exportedName(m), [...m.labels, 'namespace', 'taskQueue', 'workflowType']);
  return known;
}

/** The metric names the installed Temporal Core defines (exported with the `temporal_` prefix). */
function coreMetricNames(): Set<string> {
  const bridge = path.dirname(createRequire(import.meta.url).resolve('@temporalio/core-bridge/package.json'));
  const source = ['sdk-core', 'common']
    .map((crate) => readFileSync(path.join(bridge, 'sdk-core', 'crates', crate, 'src', 'telemetry', 'metrics.rs'), 'utf8'))
    .join('\n');
  return new Set([...source.matchAll(/name: "([a-z_]+)"\.into\(\)|const \w+_NAME: &str =\s*"([a-z_]+)"/g)].map((m) => (m[1] ?? m[2]) as string));
}

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
    const persona = personaMetrics();
    const core = coreMetricNames();
    expect(core.has('workflow_completed')).toBe(true);
    const problems: string[] = [];
    for (const r of rules) {
      const { errors, found } = selectors(r.expr);
      if (errors > 0) problems.push(`${r.alert}: does not parse`);
      for (const { metric, labels } of found) {
        if (metric === 'up') continue; // Prometheus's own, per scrape job
        const core_ = /^temporal_(\w+?)(?:_total|_seconds_(?:bucket|count|sum))$/.exec(metric)?.[1];
        if (core_ !== undefined) {
          if (!core.has(core_)) problems.push(`${r.alert}: ${metric} is not a Temporal SDK metric`);
          continue;
        }
        const known = persona.get(metric);
        if (!known) problems.push(`${r.alert}: ${metric} is not a metric Persona exports`);
        for (const label of labels) if (known && !known.includes(label) && label !== 'le') problems.push(`${r.alert}: ${metric} has no label ${label}`);
      }
      if (found.length === 0) problems.push(`${r.alert}: no metric`);
    }
    expect(problems).toEqual([]);
  });

  it('is what prometheus.yml loads, and the jobs the rules name are scraped', () => {
    expect(prometheus.rule_files).toEqual(['alerts.yml']);
    const jobs = prometheus.scrape_configs.map((s) => s.job_name);
    const named = rules.flatMap((r) => [...r.expr.matchAll(/job="([^"]+)"/g)].map((m) => m[1]));
    for (const job of named) expect(jobs).toContain(job);
  });

  it('catches what it should: a misspelt metric, a wrong label, broken PromQL', () => {
    expect(selectors('sum(rate(persona_onboardings_total{outcome="failed"}[5m]))').found).toEqual([{ metric: 'persona_onboardings_total', labels: ['outcome'] }]);
    expect(selectors('sum(rate(foo[5m]) >').errors).toBeGreaterThan(0);
    expect(personaMetrics().get('persona_onboardings_total')).toContain('outcome');
    expect(personaMetrics().has('persona_onboarding_total')).toBe(false);
    expect(coreMetricNames().has('workflow_finished')).toBe(false);
  });
});
