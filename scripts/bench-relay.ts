/**
 * The event relay's delivery rate to a loopback subscriber, one event at a time against customers
 * side by side, in one run:
 *
 *   npm run bench:relay -- [--events 20000] [--customers 1000] [--page 250] [--concurrency 64] [--latency 0]
 *
 * Seeds `--events` events of `--customers` made-up customers (interleaved, stamped in 2005, so
 * they sort before anything real), then runs the relay's activity (`relayPage`, as the worker runs
 * it, without Temporal around it: pages of `--page` events read from the graph, each event signed
 * and POSTed, the checkpoint moved in the graph) over them, from its own checkpoint each time:
 * first the delivery as it was (kept below: fetch, one event at a time in feed order), then
 * today's activity with concurrency 1, then with `--concurrency` posts at once, each to a
 * different customer. `--latency` makes the subscriber answer that many ms late (a subscriber
 * across a network rather than on loopback). The subscriber is a plain Node HTTP
 * server in a child process (its own CPU, as a real one would be); it checks each customer's
 * order (an event arriving before an earlier one of its customer is a violation) and counts
 * duplicates. Prints events/s of each and the order check. The seeded events are removed at the end.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createEventActivities, SIGNATURE_HEADER, webhookSignature } from '../activities/events';
import { loadConfig } from '../config/env';
import { createDriver } from '../graph';
import { encodeCursor, readFeedEntries } from '../graph/feed';
import { toPlain } from '../graph/convert';
import { writeTx, type Graph } from '../graph/graph';
import { adoptRelayState, readRelayCheckpoint, recordRelayProgress, type RelayProgress } from '../graph/relay';
import { graphFromConfig } from '../runtime/graph';

interface Tally {
  /** First deliveries of seeded events. */
  events: number;
  duplicates: number;
  violations: number;
}

const log = (line: string): void => console.log(`[bench-relay] ${line}`);

/** One write statement; answers its rows' `n` (how many it touched). */
async function write(graph: Graph, cypher: string, params: Record<string, unknown>): Promise<number> {
  const res = await writeTx(graph, (tx) => tx.run(cypher, params));
  return res.records[0] ? Number(toPlain(res.records[0].get('n'))) : 0;
}

/**
 * The delivery as it was before customers went side by side (kept here as the baseline): one
 * event at a time in feed order, each POSTed with fetch, the checkpoint moved once a page.
 */
async function relayPageAsItWas(
  graph: Graph,
  req: { checkpoint_id: string; page_size: number; lag_ms: number },
  url: string,
  secret: string,
): Promise<void> {
  const checkpoint = await readRelayCheckpoint(graph, req.checkpoint_id);
  const entries = await readFeedEntries(graph, {
    after: checkpoint.cursor ?? undefined,
    limit: req.page_size,
    lagMs: req.lag_ms,
  });
  const progress: RelayProgress = { cursor: checkpoint.cursor, delivered: 0, parked: [], blocked: null };
  for (const { event, cursor } of entries) {
    const body = JSON.stringify(event);
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': event.id,
        [SIGNATURE_HEADER]: webhookSignature(secret, body),
      },
      body,
      signal: AbortSignal.any([new AbortController().signal, AbortSignal.timeout(10_000)]),
    });
    if (!res.ok) throw new Error(`the subscriber answered ${res.status}`);
    await res.body?.cancel();
    progress.delivered++;
    progress.cursor = cursor;
  }
  if (entries.length > 0) await recordRelayProgress(graph, req.checkpoint_id, progress);
}

/** The child: a loopback subscriber that checks per-customer order of the events under `prefix`. */
function serve(latencyMs: number): void {
  const tallies = new Map<string, { next: Map<string, number>; seen: Set<string>; tally: Tally }>();
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const key = String(req.headers['idempotency-key']);
      const m = /^(bench-relay-[0-9a-f]{8}-[a-z0-9]+)-c(\d+)-(\d+)$/.exec(key);
      if (m && body.length > 0) {
        const [, run = '', customer = '', index = ''] = m;
        let t = tallies.get(run);
        if (!t) tallies.set(run, (t = { next: new Map(), seen: new Set(), tally: emptyTally() }));
        if (t.seen.has(key)) t.tally.duplicates++;
        else {
          t.seen.add(key);
          t.tally.events++;
          const expected = t.next.get(customer) ?? 0;
          if (Number(index) !== expected) t.tally.violations++;
          t.next.set(customer, Math.max(expected, Number(index) + 1));
        }
      }
      if (latencyMs > 0) setTimeout(() => res.writeHead(204).end(), latencyMs);
      else res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  process.on('message', (msg: { tally?: string }) => {
    if (msg.tally) process.send?.({ tally: tallies.get(msg.tally)?.tally ?? emptyTally() });
  });
}

const emptyTally = (): Tally => ({ events: 0, duplicates: 0, violations: 0 });

/** Asks the child for the tally of one run. */
function tallyOf(child: ChildProcess, run: string): Promise<Tally> {
  return new Promise((resolve) => {
    const on = (msg: { tally?: Tally }): void => {
      if (!msg.tally) return;
      child.off('message', on);
      resolve(msg.tally);
    };
    child.on('message', on);
    child.send({ tally: run });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '20000' },
      customers: { type: 'string', default: '1000' },
      page: { type: 'string', default: '250' },
      concurrency: { type: 'string', default: '64' },
      latency: { type: 'string', default: '0' },
    },
  });
  const total = Number(values.events);
  const customers = Number(values.customers);
  const page = Number(values.page);
  const concurrency = Number(values.concurrency);
  const config = loadConfig();
  const driver = createDriver(config);
  const graph = graphFromConfig(driver, config);
  const child = fork(process.argv[1] as string, ['--serve', String(Number(values.latency))], {
    stdio: 'inherit',
  });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (msg: { port: number }) => resolve(msg.port)),
  );
  const url = `http://127.0.0.1:${port}/events`;
  const secret = randomBytes(32).toString('hex');
  const prefix = `bench-relay-${randomUUID().slice(0, 8)}`;
  const base = Date.parse('2005-01-01T00:00:00Z') + Math.floor(Math.random() * 1_000_000) * 1000;
  log(
    `${total} events of ${customers} customers, pages of ${page}, to ${url} (a child process answering ` +
      `after ${Number(values.latency)} ms)`,
  );
  try {
    for (let from = 0; from < total; from += 20_000) {
      await write(
        graph,
        `UNWIND range(toInteger($from), toInteger($to)) AS i
         WITH i, i % toInteger($customers) AS c, i / toInteger($customers) AS j
         CREATE (:Event {id: $prefix + '-c' + toString(c) + '-' + toString(j), type: 'CustomerUpdated',
                         customer_id: $prefix + '-c' + toString(c),
                         occurred_at: datetime({epochMillis: toInteger($base) + i}), seq: 0,
                         payload: '{"changes":{"segment":"Bench"}}'})`,
        { from, to: Math.min(from + 20_000, total) - 1, customers, prefix, base },
      );
    }
    const rates: number[] = [];
    const runs = [
      ['as it was (fetch, one at a time)', 0],
      ['now, one at a time', 1],
      [`now, ${concurrency} at once, by customer`, concurrency],
    ] as const;
    for (const [name, n] of runs) {
      const run = `${prefix}-${n}`;
      // Each run delivers the same events under its own ids' prefix: the subscriber tells them apart.
      await write(
        graph,
        `MATCH (e:Event) WHERE e.id STARTS WITH $prefix + '-c'
         SET e.id = $run + substring(e.id, size($prefix))`,
        { prefix: rates.length === 0 ? prefix : `${prefix}-${runs[rates.length - 1]?.[1]}`, run },
      );
      const checkpoint = `bench-relay-${run}`;
      await adoptRelayState(graph, checkpoint, {
        cursor: encodeCursor({ t: new Date(base - 1000).toISOString(), s: -1, id: '' }),
        delivered: 0,
        parked: [],
      });
      const relay = createEventActivities({ graph, events: { url, secret, concurrency: Math.max(n, 1) } });
      const t0 = performance.now();
      let pages = 0;
      for (;;) {
        const req = { checkpoint_id: checkpoint, page_size: page, lag_ms: config.PERSONA_EVENTS_FEED_LAG_MS };
        if (n === 0) await relayPageAsItWas(graph, req, url, secret);
        else await relay.relayPage(req);
        pages++;
        // Seeded events are all delivered once the subscriber has every one (the page that
        // reached past them delivered some of the real feed too, as a relay would).
        if (pages % 4 === 0 || pages * page >= total) {
          if ((await tallyOf(child, run)).events >= total) break;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const t = await tallyOf(child, run);
      rates.push(total / seconds);
      log(
        `${name}: ${total} events in ${seconds.toFixed(1)} s = ${(total / seconds).toFixed(0)} events/s; ` +
          `per-customer order violations ${t.violations}, duplicates ${t.duplicates}`,
      );
      await write(graph, 'MATCH (r:RelayCheckpoint {id: $id}) DETACH DELETE r', { id: checkpoint });
    }
    log(
      `now by customer / as it was: ${((rates[2] ?? 0) / (rates[0] ?? 1)).toFixed(2)}x; ` +
        `now one at a time / as it was: ${((rates[1] ?? 0) / (rates[0] ?? 1)).toFixed(2)}x`,
    );
  } finally {
    for (;;) {
      const gone = await write(
        graph,
        `MATCH (e:Event) WHERE e.id STARTS WITH $prefix WITH e LIMIT 20000 DETACH DELETE e RETURN count(*) AS n`,
        { prefix },
      );
      if (gone === 0) break;
    }
    child.kill();
    await driver.close();
  }
}

if (process.argv.includes('--serve')) serve(Number(process.argv[process.argv.indexOf('--serve') + 1] ?? 0));
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
