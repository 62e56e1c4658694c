/**
 * The read-path benchmark: customer context over (a) gRPC GetCustomerContext, (b) the REST
 * route, and (c) the same Cypher through neo4j-driver directly — the floor — in one run, over
 * the same random customer ids, with N concurrent clients for T seconds each.
 *
 *   npm run bench:context -- [--clients 4] [--seconds 15] [--warmup 3] [--sample 20000]
 *
 * Starts its own api process (a separate process, as in production) unless --grpc and --rest
 * point at a running one. Prints p50/p95/p99 and throughput per target with ratios to the
 * floor, and writes the figures as JSON to bench/results/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { SignJWT } from 'jose';
import neo4j from 'neo4j-driver';
import { LOADER_OPTIONS, PROTO_FILE } from '../api/grpc/server';
import { loadConfig, repoRoot } from '../config/env';
import { createDriver } from '../graph';
import { CONTEXT_CYPHER } from '../graph/context';
import type { ProtoGrpcType } from '../proto/generated/persona';
import { freePort, startProcess, waitForOk } from '../test/support/processes';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    sample: { type: 'string', default: '20000' },
    grpc: { type: 'string' },
    rest: { type: 'string' },
  },
});
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const sampleSize = Number(values.sample);

interface Stats {
  target: string;
  requests: number;
  errors: number;
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

type Call = (customerId: string) => Promise<void>;

/** Runs `clients` loops for `durationS`, each walking the shared id list from its own offset. */
async function drive(target: string, call: Call, ids: string[], durationS: number): Promise<Stats> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + durationS * 1000;
  const loop = async (client: number): Promise<void> => {
    for (let k = client; performance.now() < deadline; k += clients) {
      const t0 = performance.now();
      try {
        await call(ids[k % ids.length] as string);
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, i) => loop(i)));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    target,
    requests: latencies.length,
    errors,
    throughput: latencies.length / elapsed,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    mean: latencies.reduce((s, x) => s + x, 0) / latencies.length,
    max: latencies.at(-1) ?? NaN,
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const driver = createDriver(config, { maxConnectionPoolSize: clients + 4 });
  const database = config.NEO4J_DATABASE;
  const customers = Number(
    (await driver.executeQuery('MATCH (c:Customer) RETURN count(c) AS n', {}, { database })).records[0]?.get('n'),
  );
  const p = Math.min(1, (sampleSize * 1.5) / customers);
  const ids = (
    await driver.executeQuery(
      'MATCH (c:Customer) WHERE rand() < $p RETURN c.id AS id LIMIT $n',
      { p, n: neo4j.int(sampleSize) },
      { database },
    )
  ).records.map((r) => r.get('id') as string);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [ids[i], ids[j]] = [ids[j] as string, ids[i] as string];
  }
  console.log(
    `bench: ${customers.toLocaleString()} customers in the graph; ${ids.length.toLocaleString()} random ids; ` +
      `${clients} clients; ${warmup}s warm-up + ${seconds}s per target`,
  );

  let api: ReturnType<typeof startProcess> | undefined;
  let grpcAddress = values.grpc;
  let restBase = values.rest;
  if (!grpcAddress || !restBase) {
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    api = startProcess('api/main.ts', {
      PERSONA_HTTP_PORT: String(httpPort),
      PERSONA_GRPC_PORT: String(grpcPort),
      PERSONA_HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    await waitForOk(`http://127.0.0.1:${httpPort}/readyz`, api);
    grpcAddress = `127.0.0.1:${grpcPort}`;
    restBase = `http://127.0.0.1:${httpPort}`;
    console.log(`bench: started an api process (REST ${restBase}, gRPC ${grpcAddress})`);
  }

  const token = await new SignJWT({ scope: 'context:read' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(config.jwtSecret));
  const proto = grpc.loadPackageDefinition(
    protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS),
  ) as unknown as ProtoGrpcType;
  const grpcClient = new proto.persona.v1.PersonaAgent(grpcAddress, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const headers = { authorization: `Bearer ${token}` };

  const targets: [string, Call][] = [
    [
      'floor (neo4j-driver)',
      async (customerId) => {
        const session = driver.session({ database, defaultAccessMode: neo4j.session.READ });
        try {
          const res = await session.run(CONTEXT_CYPHER, { customerId, trustThreshold: config.PERSONA_TRUST_THRESHOLD });
          if (res.records.length !== 1) throw new Error('no customer');
        } finally {
          await session.close();
        }
      },
    ],
    [
      'gRPC GetCustomerContext',
      (customerId) =>
        new Promise<void>((resolve, reject) =>
          grpcClient.GetCustomerContext({ customer_id: customerId }, metadata, (err) =>
            err ? reject(err) : resolve(),
          ),
        ),
    ],
    [
      'REST /context',
      async (customerId) => {
        const res = await fetch(`${restBase}/api/v1/customers/${customerId}/context`, { headers });
        await res.json();
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      },
    ],
  ];

  // Transport only: the same hops with no graph read behind them, to show where time goes.
  const healthProto = protoLoader.loadSync(
    path.join(
      path.dirname(createRequire(import.meta.url).resolve('grpc-health-check/package.json')),
      'proto/health/v1/health.proto',
    ),
    { keepCase: true, enums: String },
  );
  const Health = (
    grpc.loadPackageDefinition(healthProto) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    }
  ).grpc.health.v1.Health;
  const healthClient = new Health(grpcAddress, grpc.credentials.createInsecure()) as unknown as {
    Check(req: object, cb: (err: Error | null) => void): void;
    close(): void;
  };
  targets.push(
    [
      'gRPC transport (Health/Check)',
      () =>
        new Promise<void>((resolve, reject) =>
          healthClient.Check({ service: '' }, (err) => (err ? reject(err) : resolve())),
        ),
    ],
    [
      'REST transport (/healthz)',
      async () => {
        const res = await fetch(`${restBase}/healthz`);
        await res.json();
      },
    ],
  );

  const results: Stats[] = [];
  try {
    for (const [name, call] of targets) {
      await drive(name, call, ids, warmup);
      const stats = await drive(name, call, ids, seconds);
      results.push(stats);
      console.log(`bench: ${name}: ${stats.requests.toLocaleString()} requests, ${stats.errors} errors`);
    }
  } finally {
    grpcClient.close();
    healthClient.close();
    if (api) {
      api.child.kill('SIGTERM');
      await api.exited;
    }
    await driver.close();
  }

  const floor = results[0] as Stats;
  const fmt = (n: number): string => n.toFixed(2).padStart(8);
  console.log('\ntarget                          p50 ms   p95 ms   p99 ms  mean ms     req/s   p50/floor  p99/floor');
  for (const r of results) {
    console.log(
      `${r.target.padEnd(29)} ${fmt(r.p50)} ${fmt(r.p95)} ${fmt(r.p99)} ${fmt(r.mean)} ` +
        `${r.throughput.toFixed(0).padStart(9)}   ${(r.p50 / floor.p50).toFixed(2).padStart(8)}x ` +
        `${(r.p99 / floor.p99).toFixed(2).padStart(8)}x`,
    );
  }
  const grpcStats = results[1] as Stats;
  const verdicts = {
    grpc_p99_le_5ms: grpcStats.p99 <= 5,
    grpc_p50_le_1_3x_floor: grpcStats.p50 <= 1.3 * floor.p50,
  };
  console.log(
    `\ntargets: gRPC p99 ≤ 5 ms: ${verdicts.grpc_p99_le_5ms ? 'met' : 'NOT met'} (${grpcStats.p99.toFixed(2)} ms); ` +
      `gRPC p50 ≤ 1.3 × floor: ${verdicts.grpc_p50_le_1_3x_floor ? 'met' : 'NOT met'} ` +
      `(${(grpcStats.p50 / floor.p50).toFixed(2)}×)`,
  );

  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `context-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        customers,
        sample: ids.length,
        clients,
        seconds,
        warmup,
        node: process.version,
        results,
        verdicts,
      },
      null,
      2,
    ),
  );
  console.log(`bench: figures written to ${path.relative(repoRoot, file)}`);
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
