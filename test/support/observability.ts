/** Reading what a process tells ops: its JSON log lines, its Prometheus /metrics page, the alert rules over them. */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { parse } from 'yaml';
import { repoRoot } from '../../config/env';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset exporters write: no escapes in label values). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((l) => [l[1] as string, l[2] as string]),
    );
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of every sample of `name` whose labels include `labels`. */
export function metricValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

export async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`${url}/metrics answered ${res.status}: ${await res.text()}`);
  return parseMetrics(await res.text());
}

export type LogLine = Record<string, unknown> & { msg: string; level: number };

/** A process's output as JSON log lines; any line that is not JSON is returned apart. */
export function logLines(output: string): { lines: LogLine[]; notJson: string[] } {
  const lines: LogLine[] = [];
  const notJson: string[] = [];
  for (const raw of output.split('\n')) {
    if (!raw.trim()) continue;
    try {
      lines.push(JSON.parse(raw) as LogLine);
    } catch {
      notJson.push(raw);
    }
  }
  return { lines, notJson };
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string; runbook_url: string };
}

/** The rules of ops/prometheus/alerts.yml. */
export function alertRules(): AlertRule[] {
  const file = path.join(repoRoot, 'ops', 'prometheus', 'alerts.yml');
  return (parse(readFileSync(file, 'utf8')) as { groups: { rules: AlertRule[] }[] }).groups.flatMap((g) => g.rules);
}

/**
 * What a PromQL expression refers to: its vector selectors (metric name, label names matched
 * on), the labels each aggregation groups by with the metrics beneath it, and how many parse
 * errors Prometheus's grammar finds.
 */
export function promqlSelectors(expr: string): {
  errors: number;
  found: { metric: string; labels: string[] }[];
  groupings: { labels: string[]; metrics: string[] }[];
} {
  const tree = parser.parse(expr);
  let errors = 0;
  const found: { metric: string; labels: string[]; at: number }[] = [];
  const aggregates: { labels: string[]; from: number; to: number }[] = [];
  const text = (n: { from: number; to: number }): string => expr.slice(n.from, n.to);
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) errors++;
      if (n.name === 'AggregateExpr') {
        const grouping = n.node.getChild('AggregateModifier')?.getChild('GroupingLabels');
        const labels = grouping?.getChildren('LabelName').map(text) ?? [];
        if (labels.length > 0) aggregates.push({ labels, from: n.from, to: n.to });
      }
      if (n.name !== 'VectorSelector') return;
      const metric = n.node.getChild('Identifier');
      const labels =
        n.node
          .getChild('LabelMatchers')
          ?.getChildren('UnquotedLabelMatcher')
          .map((m) => m.getChild('LabelName'))
          .filter((l) => l !== null) ?? [];
      found.push({ metric: metric ? text(metric) : '', labels: labels.map(text), at: n.from });
    },
  });
  return {
    errors,
    found: found.map(({ metric, labels }) => ({ metric, labels })),
    groupings: aggregates.map((a) => ({
      labels: a.labels,
      metrics: found.filter((f) => f.at >= a.from && f.at < a.to).map((f) => f.metric),
    })),
  };
}

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, unknown>;
}

/** A stand-in OpenTelemetry collector: accepts OTLP/HTTP JSON on POST /v1/traces and keeps the spans. */
export async function startTraceReceiver(): Promise<{
  url: string;
  spans: () => ReceivedSpan[];
  close: () => Promise<void>;
}> {
  const spans: ReceivedSpan[] = [];
  type AnyValue = { stringValue?: string; intValue?: number | string; boolValue?: boolean; doubleValue?: number };
  type KeyValue = { key: string; value: AnyValue };
  const plain = (kvs: KeyValue[] = []) =>
    Object.fromEntries(
      kvs.map(({ key, value }) => [key, value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue]),
    );
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const payload = JSON.parse(body) as {
          resourceSpans: {
            resource: { attributes: KeyValue[] };
            scopeSpans: { spans: (Omit<ReceivedSpan, 'service' | 'attributes'> & { attributes: KeyValue[] })[] }[];
          }[];
        };
        for (const rs of payload.resourceSpans) {
          const service = String(plain(rs.resource.attributes)['service.name']);
          for (const s of rs.scopeSpans.flatMap((ss) => ss.spans)) {
            spans.push({
              service,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              attributes: plain(s.attributes),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => [...spans],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
