/**
 * What the write-path benchmarks send (`bench:interactions`, `bench:soak`): customers sampled from
 * the graph, ranked for a Zipf draw; a stream of interactions shaped like production's (payments
 * 87 % — succeeded 85 %, declined 10 %, refunded 5 %, 30 % with a device from a pool of fresh
 * fingerprints —, logins 10 % from a few devices per customer, shipments 3 % to one address per
 * customer); and REST senders, as fast as answers come or paced (open loop).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import neo4j from 'neo4j-driver';
import type { Config } from '../config/env';
import { createDriver } from '../graph';
import { summarise, tally, type Latencies } from './benchKit';
import { mulberry32, type Zipf } from './random';

/** A paced sender's batches in flight at once, at most (more wait, and count as late). */
const PACED_IN_FLIGHT = 4;

export interface WriteStats {
  senders: number;
  seconds: number;
  batches: number;
  items: number;
  recorded: number;
  duplicate: number;
  invalid: number;
  interactionsPerSecond: number;
  batchesPerSecond: number;
  batchMs: Latencies;
  /** Paced runs: the rate asked, batches due, and those sent more than one interval after they were due. */
  paced?: { perSecond: number; due: number; late: number };
  /** Invalid items by field (without the index) and problem. */
  invalidReasons: Record<string, number>;
  /** Batches that got no per-item answer: HTTP status and problem, or the network error. */
  errors: Record<string, number>;
}

// ---- what the senders send ----------------------------------------------------------------

export interface Sampled {
  id: string;
  paymentMethodId: string;
}

const USER_AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36',
];
const CITIES: [string, string, string, string][] = [
  ['Austin', 'TX', 'US', '787'],
  ['Seattle', 'WA', 'US', '981'],
  ['Denver', 'CO', 'US', '802'],
  ['Boston', 'MA', 'US', '021'],
];

/** A small stable number from a customer id, so its login devices and address stay the same across runs. */
function idHash(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

export class ItemMaker {
  private counter = 0;
  private readonly rand: () => number;
  constructor(
    private readonly runId: string,
    private readonly lane: string,
    private readonly customers: Sampled[],
    private readonly zipf: Zipf,
    private readonly paymentDevices: string[],
    laneSeed: number,
  ) {
    this.rand = mulberry32(laneSeed);
  }

  private ip(): string {
    return `198.51.100.${String(1 + Math.floor(this.rand() * 254))}`;
  }

  private ua(): string {
    return USER_AGENTS[Math.floor(this.rand() * USER_AGENTS.length)] as string;
  }

  item(): Record<string, unknown> {
    const r = this.rand;
    const c = this.customers[this.zipf.draw(r)] as Sampled;
    const common = {
      id: `${this.runId}-${this.lane}-${String(this.counter++)}`,
      customer_id: c.id,
      occurred_at: new Date(Date.now() + Math.round((r() * 2 - 1) * 30_000)).toISOString(),
    };
    const kind = r();
    if (kind < 0.1)
      return {
        ...common,
        type: 'login',
        device: { fingerprint: `fp-${c.id}-${String(Math.floor(r() * 3))}`, ip: this.ip(), user_agent: this.ua() },
      };
    if (kind < 0.13) {
      const h = idHash(c.id);
      const [city, state, country, zip] = CITIES[h % CITIES.length] as [string, string, string, string];
      return {
        ...common,
        type: 'shipment',
        address: {
          street1: `${String(1 + (h % 9000))} Benchmark Avenue`,
          city,
          state,
          zip_code: `${zip}${String(h % 100).padStart(2, '0')}`,
          country,
          type: 'shipping',
        },
      };
    }
    const o = r();
    const outcome = o < 0.85 ? 'succeeded' : o < 0.95 ? 'declined' : 'refunded';
    return {
      ...common,
      type: 'payment',
      payment_method_id: c.paymentMethodId,
      amount: 100 + Math.floor(r() * 49_900),
      currency: 'USD',
      outcome,
      ...(outcome === 'declined' ? { decline_code: 'insufficient_funds' } : {}),
      transaction_id: `tx-${common.id}`,
      ...(r() < 0.3
        ? {
            device: {
              fingerprint: this.paymentDevices[Math.floor(r() * this.paymentDevices.length)] as string,
              ip: this.ip(),
              user_agent: this.ua(),
            },
          }
        : {}),
    };
  }

  batch(size: number): Record<string, unknown>[] {
    return Array.from({ length: size }, () => this.item());
  }
}

// ---- the senders ----------------------------------------------------------------------------

export interface Answer {
  data?: { id: string | null; result: string; field?: string; problem?: string }[];
  title?: string;
  detail?: string;
}

export async function driveWrites(
  post: (items: Record<string, unknown>[]) => Promise<{ status: number; body: Answer }>,
  makers: ItemMaker[],
  senders: number,
  durationS: number,
  /** Items a batch (1–500). */
  batchSize: number,
  /** Paced: each sender starts a batch on its own schedule, together `perSecond` items a second. */
  perSecond?: number,
): Promise<WriteStats> {
  const latencies: number[] = [];
  const invalidReasons = new Map<string, number>();
  const errors = new Map<string, number>();
  let batches = 0;
  let items = 0;
  let recorded = 0;
  let duplicate = 0;
  let invalid = 0;
  const deadline = performance.now() + durationS * 1000;
  /** One batch, its latency counted from `from` (when it was due, paced; when it was sent, otherwise). */
  const send = async (batch: Record<string, unknown>[], from: number): Promise<void> => {
    try {
      const { status, body } = await post(batch);
      const ms = performance.now() - from;
      if (status !== 200 || !Array.isArray(body.data)) {
        tally(errors, `HTTP ${String(status)}: ${body.detail ?? body.title ?? 'no detail'}`);
        return;
      }
      latencies.push(ms);
      batches++;
      items += batch.length;
      for (const a of body.data) {
        if (a.result === 'recorded') recorded++;
        else if (a.result === 'duplicate') duplicate++;
        else {
          invalid++;
          tally(invalidReasons, `${(a.field ?? '').replace(/^data\[\d+\]\.?/, '')}: ${a.problem ?? ''}`);
        }
      }
    } catch (err) {
      tally(errors, err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    }
  };
  // Paced (open loop): sender i's k-th batch is due at start + (k + i / senders) × interval and is sent
  // then whether or not its earlier ones were answered (up to PACED_IN_FLIGHT at once); its latency counts
  // from when it was due, so falling behind shows in the figures instead of slowing the load down.
  const interval = perSecond ? (senders * batchSize * 1000) / perSecond : 0;
  let due = 0;
  let late = 0;
  const begin = performance.now();
  const loop = async (maker: ItemMaker, lane: number): Promise<void> => {
    if (interval === 0) {
      while (performance.now() < deadline) await send(maker.batch(batchSize), performance.now());
      return;
    }
    const inFlight = new Set<Promise<void>>();
    for (let k = 0; ; k++) {
      const at = begin + (k + lane / senders) * interval;
      if (at >= deadline) break;
      due++;
      const wait = at - performance.now();
      if (wait > 0) await sleep(wait);
      while (inFlight.size >= PACED_IN_FLIGHT) await Promise.race(inFlight);
      if (performance.now() - at > interval) late++;
      const sent: Promise<void> = send(maker.batch(batchSize), at).finally(() => inFlight.delete(sent));
      inFlight.add(sent);
    }
    await Promise.all(inFlight);
  };
  const started = performance.now();
  await Promise.all(makers.slice(0, senders).map((m, lane) => loop(m, lane)));
  const elapsed = (performance.now() - started) / 1000;
  return {
    senders,
    seconds: elapsed,
    batches,
    items,
    recorded,
    duplicate,
    invalid,
    interactionsPerSecond: recorded / elapsed,
    batchesPerSecond: batches / elapsed,
    batchMs: summarise(latencies),
    ...(interval > 0 ? { paced: { perSecond: perSecond as number, due, late } } : {}),
    invalidReasons: Object.fromEntries(invalidReasons),
    errors: Object.fromEntries(errors),
  };
}

// ---- the customers ----------------------------------------------------------------------------

/** Random active customers with an active payment method, in one read (a random filter over a label scan). */
export async function sampleCustomers(
  config: Config,
  sampleSize: number,
  seed: number,
): Promise<{ total: number; customers: Sampled[] }> {
  const driver = createDriver(config, { maxConnectionPoolSize: 2 });
  const database = config.NEO4J_DATABASE;
  try {
    const total = Number(
      (await driver.executeQuery('MATCH (c:Customer) RETURN count(c) AS n', {}, { database })).records[0]?.get('n'),
    );
    // About 97 % of seeded customers are active and nearly all of those have an active method.
    const p = Math.min(1, (sampleSize * 1.3) / Math.max(1, total));
    const res = await driver.executeQuery(
      `MATCH (c:Customer)
       WHERE c.status = 'active' AND rand() < $p
       CALL (c) {
         MATCH (c)-[:HAS_PAYMENT_METHOD]->(m:PaymentMethod {status: 'active'})
         RETURN m.id AS paymentMethodId LIMIT 1
       }
       RETURN c.id AS id, paymentMethodId LIMIT $n`,
      { p, n: neo4j.int(sampleSize) },
      { database, routing: neo4j.routing.READ },
    );
    const customers = res.records.map((r) => ({
      id: r.get('id') as string,
      paymentMethodId: r.get('paymentMethodId') as string,
    }));
    // The Zipf rank: a seeded random order, so the hot customers are not the oldest ones.
    const rand = mulberry32(seed);
    for (let i = customers.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [customers[i], customers[j]] = [customers[j] as Sampled, customers[i] as Sampled];
    }
    return { total, customers };
  } finally {
    await driver.close();
  }
}
