/**
 * Routing by customer: behind a balancer, a payment's three reads (routing's context, fraud's
 * context, the checkout) land on different api replicas, each with a read cache of its own, so each
 * replica misses once per customer. With HAProxy hashing the `x-persona-customer` header (gRPC:
 * the same metadata key) onto a consistent ring, a customer's reads go to one replica and miss once
 * (docs/deployment.md, "Routing reads by customer"). Three api processes, HAProxy in front of 1, 2
 * and 3 of them in both modes; the hit rate of each is printed and compared.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/api';
import { metricValue, scrape } from '../support/observability';
import { freePort, startApiProcess, stopProcess, type ApiProcess } from '../support/processes';
import { startHaproxy, type TlsProxy } from '../support/tlsProxy';

const MODES = ['round robin', 'by customer'] as const;
type Mode = (typeof MODES)[number];
/**
 * The hit rates follow from the order of the reads alone, whatever the count: a customer misses once
 * on each replica its reads reach.
 */
const CUSTOMERS = 12;
const PAYMENTS_EACH = 3;

let h: Harness;
let agent: string;
const apis: ApiProcess[] = [];
let proxy: TlsProxy | undefined;
const ports = new Map<string, number>();
const dir = mkdtempSync(path.join(os.tmpdir(), 'persona-routing-'));

/** The balancing lines of each mode: the second is what docs/deployment.md gives. */
const BALANCE: Record<Mode, string[]> = {
  'round robin': ['  balance roundrobin'],
  'by customer': ['  balance hdr(x-persona-customer)', '  hash-type consistent'],
};

beforeAll(async () => {
  h = await startHarness();
  agent = await h.token('context:read');
  const started = await Promise.allSettled([1, 2, 3].map(() => startApiProcess({}).then((p) => apis.push(p))));
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  const lines = [
    'global',
    'defaults',
    '  mode http',
    '  timeout connect 5s',
    '  timeout client 1m',
    '  timeout server 1m',
  ];
  for (const replicas of [1, 2, 3])
    for (const mode of MODES) {
      const port = await freePort();
      ports.set(`${replicas} ${mode}`, port);
      lines.push(
        `listen persona_${replicas}_${mode.replace(' ', '_')}`,
        `  bind 127.0.0.1:${port}`,
        ...BALANCE[mode],
        // Names the replica that answered (newCustomers draws customers that reach each one).
        '  http-response set-header x-persona-replica %[srv_name]',
      );
      apis.slice(0, replicas).forEach((api, i) => lines.push(`  server api${i} ${new URL(api.url).host}`));
    }
  const conf = path.join(dir, 'routing.cfg');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  proxy = await startHaproxy(conf, ports.get('3 by customer') as number);
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  await Promise.all(apis.map((p) => stopProcess(p)));
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The replica the balancer on `port` sends a customer's requests to (asked of /healthz, which reads no cache). */
async function replicaOf(port: number, id: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { 'x-persona-customer': id } });
  await res.arrayBuffer();
  return res.headers.get('x-persona-replica') ?? '';
}

/**
 * Customers of this run only (each configuration reads its own, so no cache is warm for it). With
 * `spreadOver`, drawn until the balancer sends some to each of its replicas: hashed by customer, a
 * dozen random ones miss one of three replicas in about 2.5 % of runs (round robin reaches each anyway).
 */
async function newCustomers(n: number, spreadOver?: { port: number; replicas: number }): Promise<string[]> {
  const ids: string[] = [];
  const reached = new Set<string>();
  while (ids.length < n) {
    const id = randomUUID();
    if (spreadOver) {
      const replica = await replicaOf(spreadOver.port, id);
      // The last places are kept for the replicas not reached yet.
      if (reached.has(replica) && n - ids.length <= spreadOver.replicas - reached.size) continue;
      reached.add(replica);
    }
    ids.push(id);
  }
  await h.graph.query(
    `UNWIND $ids AS id
     CREATE (:Customer {id: id, status: 'active', segment: 'Standard', ltv: 0, event_seq: 0,
                        created_at: datetime(), updated_at: datetime()})`,
    { ids },
  );
  return ids;
}

/** Each api's read cache: its hits and its reads (hits and misses). */
const cacheCounts = async () =>
  Promise.all(
    apis.map(async (api) => {
      const samples = await scrape(api.url);
      const hits = metricValue(samples, 'persona_read_cache_hits_total');
      return { hits, reads: hits + metricValue(samples, 'persona_read_cache_misses_total') };
    }),
  );

/**
 * Each customer pays PAYMENTS_EACH times; a payment is three reads through the balancer. The hit
 * rate, and the reads each api served.
 */
async function payments(port: number, customers: string[]): Promise<{ rate: number; served: number[] }> {
  const before = await cacheCounts();
  const base = `http://127.0.0.1:${port}/api/v1/customers`;
  for (let round = 0; round < PAYMENTS_EACH; round++)
    for (const id of customers)
      for (const what of ['context', 'context', 'checkout-options']) {
        const res = await fetch(`${base}/${id}/${what}`, {
          headers: { authorization: `Bearer ${agent}`, 'x-persona-customer': id },
        });
        expect(res.status, `${what} of ${id}`).toBe(200);
        await res.arrayBuffer();
      }
  const after = await cacheCounts();
  const sum = (counts: { hits: number; reads: number }[], k: 'hits' | 'reads') => counts.reduce((n, c) => n + c[k], 0);
  return {
    rate: (sum(after, 'hits') - sum(before, 'hits')) / (sum(after, 'reads') - sum(before, 'reads')),
    served: after.map((c, i) => c.reads - (before[i]?.reads ?? 0)),
  };
}

describe('reads routed by customer', () => {
  it('keep one replica’s cache per customer: the hit rate holds as replicas are added', async () => {
    const rates = new Map<string, number>();
    for (const replicas of [1, 2, 3])
      for (const mode of MODES) {
        const key = `${replicas} ${mode}`;
        const port = ports.get(key) as number;
        const customers = await newCustomers(CUSTOMERS, mode === 'by customer' ? { port, replicas } : undefined);
        const { rate, served } = await payments(port, customers);
        rates.set(key, rate);
        // Each replica behind the balancer served reads, and no other did.
        expect(
          served.map((n) => n > 0),
          `${key}: reads each api served (${served.join(', ')})`,
        ).toEqual(apis.map((_, i) => i < replicas));
      }
    const pct = (key: string) => `${((rates.get(key) ?? 0) * 100).toFixed(1)} %`;
    console.log(
      `hit rate of ${CUSTOMERS} customers × ${PAYMENTS_EACH} payments × 3 reads: ` +
        [1, 2, 3]
          .map((n) => `${n} replica(s): round robin ${pct(`${n} round robin`)}, by customer ${pct(`${n} by customer`)}`)
          .join('; '),
    );
    // One miss per customer and replica it reaches: 8 of 9 reads hit on one replica.
    const routed = rates.get('3 by customer') ?? 0;
    const spread = rates.get('3 round robin') ?? 0;
    expect(routed).toBeGreaterThan(spread);
    expect(routed).toBeGreaterThanOrEqual((rates.get('1 by customer') ?? 0) - 0.05);
  }, 300_000);
});
