/**
 * The payment-recovery benchmark, on the stack's Neo4j and gateway simulator:
 *
 *   npm run bench:recovery -- [--failures 1000] [--mix retry=20,cascade=15,...] [--lanes 1]
 *                             [--server-every 1000]
 *                             [--throughput 400] [--callers 8] [--rounds 4] [--seed 7]
 *
 * 1. The mix: `--failures` failed payments drawn from a decline mix (the kinds below, weights in
 *    `--mix`) run through the recovery workflow with the real activities (graph, simulator,
 *    account updater, network-rule table) on Temporal's time-skipping test server, so the days of
 *    dunning pass at once. Each payment is first charged and declined at the simulator, as the
 *    platform's charge was, and reported with the decline's code and advice code. Printed: the
 *    recovery rate by mechanism, per kind, and rule violations — every charge the simulator
 *    recorded checked against the networks' rules as the issue states them (written out below,
 *    independently of payments/networkRules.ts), at the workflow times the recovery charged.
 * 2. Throughput: on the stack's Temporal (a real server), `--throughput` recoveries that recover
 *    on the first cascade, `--callers` at a time, against a bare workflow (scripts/bench-workflows.ts)
 *    with as many no-op activities as one of those recoveries ran, on the same worker, in `--rounds`
 *    alternating rounds (the ratio printed overall and per round).
 * Figures go to bench/results/ as JSON. Payload encryption is off for both (bench:codec measures it).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type NativeConnection as Conn } from '@temporalio/worker';
import { activityFailureInterceptor } from '../activities/failures';
import { createActivities } from '../activities';
import { LocalChimeraClient } from '../clients/chimera';
import type { NotificationSink } from '../clients/notifications';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import { loadConfig, profileRules, repoRoot } from '../config/env';
import { addPaymentMethod, createCustomer, createDriver, migrate } from '../graph';
import type { Graph } from '../graph/graph';
import { loadRuleTable } from '../payments/ruleTables';
import { graphFromConfig } from '../runtime/graph';
import { connectTemporal } from '../temporal/connection';
import {
  offerPaymentMethodUpdate,
  paymentFailedSignal,
  RECOVERY_WORKFLOW_TYPE,
  recoveryWorkflowId,
  type PaymentFailure,
  type RecoveryStatus,
} from '../temporal/recovery';
import { personaCustomerId } from '../temporal/searchAttributes';
import { cardIdentity, simulatorCharges } from '../test/support/recovery';
import { createTimeSkippingEnv } from '../test/support/temporal';
import { f2, tally } from './benchKit';
import { mulberry32 } from './random';
import { nativeConnectionOptions } from '../temporal/transport';

const { values } = parseArgs({
  options: {
    failures: { type: 'string', default: '1000' },
    mix: { type: 'string' },
    lanes: { type: 'string', default: '1' },
    'server-every': { type: 'string', default: '1000' },
    throughput: { type: 'string', default: '400' },
    callers: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '4' },
    seed: { type: 'string', default: '7' },
    'skip-mix': { type: 'boolean', default: false },
    'skip-throughput': { type: 'boolean', default: false },
  },
});

/**
 * The kinds of failed payment, each a card (or two) the simulator answers as its token says
 * (simulators/gateway/app.ts), and what should recover it.
 */
const KINDS = {
  /** Insufficient funds, topped up after two declines: the same card, charged again while dunning. */
  retry: { cards: ['tok_visa_card-{a}_decline_insufficient_funds_pays_after_2'], expect: 'retry' },
  /** Mastercard MAC 25 (not before 24 hours), then topped up: the retry waits for the rule. */
  mastercard_wait: {
    cards: ['tok_mastercard_card-{a}_decline_insufficient_funds_mac_25_pays_after_2'],
    expect: 'retry',
  },
  /** Declined; another card of the customer's pays at once. */
  cascade: { cards: ['tok_visa_card-{a}_decline_do_not_honor', 'tok_visa_card-{b}'], expect: 'cascade' },
  /** An expired card the account updater reissued: charged again at once. */
  updater: { cards: ['tok_visa_card-{a}_au_replaced_decline_expired_card'], expect: 'account_updater' },
  /** Insufficient funds for good; the customer adds a card, offered to the recovery (the Update). */
  customer_card: { cards: ['tok_visa_card-{a}_decline_insufficient_funds'], expect: 'customer_added_card' },
  /** Visa category 1 (invalid account): never charged again. */
  visa_never: { cards: ['tok_visa_card-{a}_decline_invalid_account'], expect: null },
  /** Mastercard MAC 03 (do not try again): never charged again. */
  mastercard_never: { cards: ['tok_mastercard_card-{a}_decline_do_not_honor_mac_03'], expect: null },
  /** Mastercard declines every time: the schedule's rounds, within the excessive-attempts caps. */
  mastercard_declines: { cards: ['tok_mastercard_card-{a}_decline_insufficient_funds'], expect: null },
  /** Visa declines every time (category 2): dunned to the end. */
  visa_declines: { cards: ['tok_visa_card-{a}_decline_insufficient_funds'], expect: null },
} as const satisfies Record<string, { cards: readonly string[]; expect: string | null }>;
type Kind = keyof typeof KINDS;
const DEFAULT_MIX: Record<Kind, number> = {
  retry: 20,
  mastercard_wait: 10,
  cascade: 15,
  updater: 10,
  customer_card: 10,
  visa_never: 5,
  mastercard_never: 5,
  mastercard_declines: 10,
  visa_declines: 15,
};

function parseMix(spec: string | undefined): Record<Kind, number> {
  if (!spec) return DEFAULT_MIX;
  const mix = Object.fromEntries(Object.keys(KINDS).map((k) => [k, 0])) as Record<Kind, number>;
  for (const part of spec.split(',')) {
    const [k, w] = part.split('=');
    if (!k || !(k in KINDS) || !(Number(w) >= 0))
      throw new Error(`--mix: "${part}" is not <kind>=<weight>; kinds: ${Object.keys(KINDS).join(', ')}`);
    mix[k as Kind] = Number(w);
  }
  return mix;
}

const config = loadConfig();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Mastercard's advice codes 24–30: the earliest retry after the decline (the issue's table). */
const MAC_WAIT: Record<string, number> = {
  '24': HOUR,
  '25': DAY,
  '26': 2 * DAY,
  '27': 4 * DAY,
  '28': 6 * DAY,
  '29': 8 * DAY,
  '30': 10 * DAY,
};

interface Charge {
  at: number;
  /** `processing`: made, its outcome not known yet (a reattempt all the same; never a decline). */
  status: 'succeeded' | 'declined' | 'processing';
  network: string;
  category: number | null;
  advice: string | null;
}

/**
 * The networks' rules as the issue states them, checked for each charge of one card given the
 * charges before it (its first is the platform's declined charge). Answers what it broke.
 */
export function violationsOf(charges: Charge[]): string[] {
  const found: string[] = [];
  charges.forEach((c, i) => {
    if (i === 0) return;
    const before = charges.slice(0, i);
    const declines = before.filter((b) => b.status === 'declined');
    if (c.network === 'visa') {
      if (declines.some((d) => d.category === 1)) found.push('visa: a reattempt after a category 1 decline');
      const reattempts = charges.slice(1, i + 1).filter((r) => r.at > c.at - 30 * DAY).length;
      if (reattempts > 15) found.push('visa: more than 15 reattempts in 30 days');
    }
    if (c.network === 'mastercard') {
      if (declines.some((d) => (d.advice === '03' || d.advice === '21') && d.at > c.at - 30 * DAY))
        found.push('mastercard: a retry within 30 days of MAC 03/21');
      const last = declines.at(-1);
      const wait = last?.advice ? MAC_WAIT[last.advice] : undefined;
      if (last && wait !== undefined && c.at < last.at + wait)
        found.push(`mastercard: a retry before MAC ${last.advice} allowed it`);
      if (declines.filter((d) => d.at > c.at - DAY).length >= 10)
        found.push('mastercard: an attempt after 10 declines in 24 hours');
      if (declines.filter((d) => d.at > c.at - 30 * DAY).length >= 35)
        found.push('mastercard: an attempt after 35 declines in 30 days');
    }
  });
  return found;
}

async function withCards(graph: Graph, tokens: string[]) {
  const customer = await createCustomer(graph, {
    digital_identifiers: [{ type: 'email', value: `bench-${randomUUID()}@example.com`, is_verified: true }],
  });
  const cards: string[] = [];
  for (const [i, token] of tokens.entries()) {
    const pm = await addPaymentMethod(graph, customer.id, {
      type: 'card',
      token,
      brand: token.includes('mastercard') ? 'mastercard' : 'visa',
      last_four: String(1000 + i),
      expiry_month: 12,
      expiry_year: 2035,
    });
    cards.push(pm.id);
  }
  return { customerId: customer.id, cards };
}

const tokensOf = (kind: Kind) => {
  const a = cardIdentity();
  const b = cardIdentity();
  return KINDS[kind].cards.map((t) => t.replace('{a}', a).replace('{b}', b));
};

/** A customer whose payment was charged and declined at the simulator (as the platform's was). */
async function failedPayment(graph: Graph, gateway: HttpPaymentGateway, kind: Kind) {
  const tokens = tokensOf(kind);
  const { customerId, cards } = await withCards(graph, tokens);
  const paymentId = `bench_${randomUUID().replace(/-/g, '')}`;
  const first = await gateway.charge({
    idempotency_key: `${paymentId}:original`,
    token: tokens[0] as string,
    amount: 2599,
    currency: graph.policy.reportingCurrency,
    customer_id: customerId,
    initiator: 'mit',
    reference: paymentId,
  });
  if (first.outcome !== 'declined') throw new Error(`the ${kind} card paid at first: its token is wrong`);
  const failure: PaymentFailure = {
    payment_id: paymentId,
    customer_id: customerId,
    payment_method_id: cards[0] as string,
    amount: 2599,
    currency: graph.policy.reportingCurrency,
    decline_code: first.decline_code,
    ...(first.advice_code ? { advice_code: first.advice_code } : {}),
  };
  return { kind, failure, tokens, cards };
}

const report = (client: Client, taskQueue: string, f: PaymentFailure, schedule: string[]) =>
  client.workflow.signalWithStart(RECOVERY_WORKFLOW_TYPE, {
    workflowId: recoveryWorkflowId(f.payment_id),
    taskQueue,
    args: [{ dunningSchedule: schedule }],
    signal: paymentFailedSignal,
    signalArgs: [f],
    typedSearchAttributes: [{ key: personaCustomerId, value: f.customer_id }],
    staticSummary: `Benchmark: recover payment ${f.payment_id} (${f.decline_code})`,
  });

/** Runs `count` jobs, `lanes` at a time. */
async function inLanes(count: number, lanes: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, count) }, async () => {
      while (next < count) await job(next++);
    }),
  );
}

function workerFor(connection: Conn, namespace: string, taskQueue: string, graph: Graph, client: Client) {
  const gateway = new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, config.PERSONA_GATEWAY_TIMEOUT_MS);
  const sink: NotificationSink = { send: async () => undefined };
  return Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('./bench-workflows.ts', import.meta.url)),
    interceptors: { activity: [activityFailureInterceptor()] },
    activities: {
      ...createActivities({
        graph,
        chimera: new LocalChimeraClient(graph),
        gateway,
        gatewayRecords: gateway,
        cards: gateway,
        updater: gateway,
        networkRules: loadRuleTable(config.PERSONA_NETWORK_RULES_VERSION),
        notifications: sink,
        trustThreshold: config.PERSONA_TRUST_THRESHOLD,
        profileRules: profileRules(config),
        temporal: client,
      }),
      benchNoop: async (i: number) => (i >= 0 ? 1 : 0),
    },
  });
}

async function mixPhase(graph: Graph, gateway: HttpPaymentGateway) {
  const n = Number(values.failures);
  const lanes = Number(values.lanes);
  const perServer = Number(values['server-every']);
  if (!Number.isInteger(perServer) || perServer < 1)
    throw new Error(`--server-every: "${values['server-every']}" is not a whole number of failures`);
  const mix = parseMix(values.mix);
  const total = Object.values(mix).reduce((a, b) => a + b, 0);
  const rand = mulberry32(Number(values.seed));
  const draw = (): Kind => {
    let r = rand() * total;
    for (const [k, w] of Object.entries(mix) as [Kind, number][]) if ((r -= w) < 0) return k;
    return 'visa_declines';
  };
  console.log(`mix: ${n} failed payments, ${lanes} at a time, schedule ${config.PERSONA_DUNNING_SCHEDULE.join(',')}`);
  const byKind = new Map<Kind, Map<string, number>>();
  const violations = new Map<string, number>();
  const unexpected: string[] = [];
  let charges = 0;
  let done = 0;
  const started = performance.now();
  const ticker = setInterval(
    () => console.log(`  ${done}/${n} recoveries ended, ${Math.round((performance.now() - started) / 1000)} s`),
    10_000,
  );
  // The test server keeps every workflow it ran in memory and slows as they pile up (to half its
  // pace after 3,000): a fresh one, with its worker, for each `--server-every` failures.
  for (let from = 0; from < n; from += perServer) {
    const env = await createTimeSkippingEnv();
    const taskQueue = `bench-recovery-${randomUUID()}`;
    const worker = await workerFor(env.nativeConnection, env.namespace ?? 'default', taskQueue, graph, env.client);
    await worker.runUntil(inLanes(Math.min(perServer, n - from), lanes, one(env, taskQueue)));
    await env.teardown();
  }
  clearInterval(ticker);
  function one(env: Awaited<ReturnType<typeof createTimeSkippingEnv>>, taskQueue: string) {
    return async () => {
      const p = await failedPayment(graph, gateway, draw());
      const handle = await report(env.client, taskQueue, p.failure, config.PERSONA_DUNNING_SCHEDULE);
      if (p.kind === 'customer_card') {
        const pm = await addPaymentMethod(graph, p.failure.customer_id, {
          type: 'card',
          token: `tok_visa_card-${cardIdentity()}`,
          brand: 'visa',
          last_four: '4242',
          expiry_month: 12,
          expiry_year: 2035,
        });
        p.cards.push(pm.id);
        await handle.executeUpdate(offerPaymentMethodUpdate, { args: [{ payment_method_id: pm.id }] });
      }
      const status = (await handle.result()) as RecoveryStatus;
      const outcome = status.recovered_by ?? status.state;
      const kindTally = byKind.get(p.kind) ?? new Map<string, number>();
      tally(kindTally, outcome);
      byKind.set(p.kind, kindTally);
      if ((KINDS[p.kind].expect ?? status.state) !== outcome) unexpected.push(`${p.kind}: ${outcome}`);
      // Each card's charges at the simulator, at the workflow times the recovery made them.
      const recorded = await simulatorCharges(config.PERSONA_GATEWAY_URL, p.failure.customer_id);
      charges += recorded.length;
      for (const [i, pm] of p.cards.entries()) {
        const made = status.attempts.filter((a) => a.payment_method_id === pm && a.outcome !== 'skipped');
        const atSim = recorded.filter(
          (r) => r.idempotency_key.includes(pm) || (i === 0 && r.idempotency_key.endsWith(':original')),
        );
        // The status lists the reported decline first (the platform's charge, `:original` here).
        if (atSim.length !== made.length)
          unexpected.push(`${p.kind}: ${atSim.length} charges at the simulator, ${made.length} in the status`);
        const times = made.map((a) => Date.parse(a.at));
        const history: Charge[] = atSim.map((r, j) => ({
          at: times[j] ?? NaN,
          status: r.status,
          network: r.network ?? 'visa',
          category: (r as { category?: number | null }).category ?? null,
          advice: (r as { advice_code?: string | null }).advice_code ?? null,
        }));
        for (const v of violationsOf(history)) tally(violations, v);
      }
      done++;
    };
  }
  const seconds = (performance.now() - started) / 1000;
  const overall = new Map<string, number>();
  for (const t of byKind.values()) for (const [k, v] of t) overall.set(k, (overall.get(k) ?? 0) + v);
  const recovered = [...overall].filter(([k]) => !['failed', 'stopped', 'needs_attention'].includes(k));
  const recoveredCount = recovered.reduce((a, [, v]) => a + v, 0);
  console.log(`\n${n} failed payments in ${f2(seconds)} s; ${charges} charges at the simulator`);
  console.log(`recovered ${recoveredCount} (${f2((100 * recoveredCount) / n)} %), by mechanism:`);
  for (const [k, v] of [...overall].sort((a, b) => b[1] - a[1]))
    console.log(`  ${k.padEnd(22)} ${String(v).padStart(6)}  ${f2((100 * v) / n).padStart(6)} %`);
  console.log('by kind (what ended each):');
  for (const [kind, t] of byKind) console.log(`  ${kind.padEnd(22)} ${[...t].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const violationCount = [...violations.values()].reduce((a, b) => a + b, 0);
  console.log(
    `rule violations: ${violationCount}${violationCount ? ` ${JSON.stringify(Object.fromEntries(violations))}` : ''}`,
  );
  if (unexpected.length)
    console.log(`not as the kind expects (${unexpected.length}): ${unexpected.slice(0, 10).join('; ')}`);
  return {
    failures: n,
    seconds: Math.round(seconds),
    charges,
    recovered: recoveredCount,
    by_mechanism: Object.fromEntries(overall),
    by_kind: Object.fromEntries([...byKind].map(([k, t]) => [k, Object.fromEntries(t)])),
    rule_violations: violationCount,
    violations: Object.fromEntries(violations),
    unexpected: unexpected.length,
  };
}

async function throughputPhase(graph: Graph, gateway: HttpPaymentGateway) {
  const n = Number(values.throughput);
  const callers = Number(values.callers);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > n)
    throw new Error(`--rounds: "${values.rounds}" is not a whole number from 1 to --throughput (${n})`);
  const nativeConnection = await NativeConnection.connect(nativeConnectionOptions(config));
  const { client, connection } = await connectTemporal(config);
  const taskQueue = `bench-recovery-${randomUUID()}`;
  const worker = await workerFor(nativeConnection, config.TEMPORAL_NAMESPACE, taskQueue, graph, client);
  const schedule = config.PERSONA_DUNNING_SCHEDULE;
  console.log(`\nthroughput: ${n} recoveries on the first cascade and ${n} bare workflows, ${callers} callers`);
  // Set up outside the timing: each payment charged and declined, its customer with a card that pays.
  const payments: Awaited<ReturnType<typeof failedPayment>>[] = [];
  for (let i = 0; i < n + 20; i++) payments.push(await failedPayment(graph, gateway, 'cascade'));
  const figures = await worker.runUntil(async () => {
    // How many activities one such recovery runs: the bare workflow runs as many.
    const probe = payments.pop()!;
    const handle = await report(client, taskQueue, probe.failure, schedule);
    await handle.result();
    let activities = 0;
    for (const e of (await handle.fetchHistory()).events ?? [])
      if (e.activityTaskScheduledEventAttributes) activities++;
    const bare = (count: number) => async () => {
      const h = await client.workflow.start('benchBareWorkflow', {
        workflowId: `bench-bare-${randomUUID()}`,
        taskQueue,
        args: [count],
      });
      await h.result();
    };
    const timed = async (label: string, count: number, run: (i: number) => Promise<void>) => {
      const t0 = performance.now();
      await inLanes(count, callers, run);
      const perSecond = count / ((performance.now() - t0) / 1000);
      console.log(
        `  ${label.padEnd(10)} ${count} in ${f2((performance.now() - t0) / 1000)} s = ${f2(perSecond)} workflows/s`,
      );
      return perSecond;
    };
    const recover = async (i: number) => {
      const p = payments[i]!;
      await (await report(client, taskQueue, p.failure, schedule)).result();
    };
    // Warm both (bundles, connections, the graph's caches), then `rounds` rounds of each, the
    // first of a round swapping, so that both meet the same machine (two shared cores are noisy).
    await timed('warm-up', 20, bare(activities));
    await timed('warm-up', 19, (i) => recover(n + i));
    const perRound = Math.floor(n / rounds);
    const rates: { bare: number; recovery: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      const size = r === rounds - 1 ? n - perRound * r : perRound;
      const runBare = () => timed('bare', size, bare(activities));
      const runRecovery = () => timed('recovery', size, (i) => recover(perRound * r + i));
      const first = r % 2 === 0 ? await runBare() : await runRecovery();
      const second = r % 2 === 0 ? await runRecovery() : await runBare();
      rates.push(r % 2 === 0 ? { bare: first, recovery: second } : { bare: second, recovery: first });
    }
    const bareRate = rates.reduce((a, x) => a + x.bare, 0) / rounds;
    const recoveryRate = rates.reduce((a, x) => a + x.recovery, 0) / rounds;
    const ratios = rates.map((x) => x.recovery / x.bare).sort((a, b) => a - b);
    const median =
      ratios.length % 2
        ? ratios[(ratios.length - 1) / 2]!
        : (ratios[ratios.length / 2 - 1]! + ratios[ratios.length / 2]!) / 2;
    console.log(
      `recovery ${f2(recoveryRate)}/s vs bare ${f2(bareRate)}/s (${activities} no-op activities each): ` +
        `${f2(recoveryRate / bareRate)}× the bare workflow; per round ${ratios.map(f2).join(', ')} ` +
        `(median ${f2(median)}×)`,
    );
    const spent = await whereTheTimeGoes(
      client,
      payments.slice(n - 40, n).map((p) => p.failure.payment_id),
    );
    return {
      activities_per_recovery: activities,
      bare_per_second: bareRate,
      recovery_per_second: recoveryRate,
      ratio_per_round: ratios,
      ratio_median: median,
      where_the_time_goes_ms: spent,
    };
  });
  await connection.close();
  await nativeConnection.close();
  return { callers, recoveries: n, ...figures, ratio: figures.recovery_per_second / figures.bare_per_second };
}

/**
 * From the histories of the last recoveries measured: per activity type, the mean time from
 * scheduled to completed (queueing in the worker included), and the mean from start to close.
 */
async function whereTheTimeGoes(client: Client, paymentIds: string[]): Promise<Record<string, number>> {
  const sums = new Map<string, { ms: number; n: number }>();
  const add = (key: string, ms: number) => {
    const e = sums.get(key) ?? { ms: 0, n: 0 };
    sums.set(key, { ms: e.ms + ms, n: e.n + 1 });
  };
  const ms = (t: unknown) => {
    const ts = t as { seconds?: { toNumber(): number } | number | null; nanos?: number | null } | null | undefined;
    const seconds = typeof ts?.seconds === 'number' ? ts.seconds : (ts?.seconds?.toNumber() ?? 0);
    return seconds * 1000 + (ts?.nanos ?? 0) / 1e6;
  };
  for (const id of paymentIds) {
    const events = (await client.workflow.getHandle(recoveryWorkflowId(id)).fetchHistory()).events ?? [];
    const scheduled = new Map<string, { type: string; at: number }>();
    for (const e of events) {
      const at = ms(e.eventTime);
      const a = e.activityTaskScheduledEventAttributes;
      if (a) scheduled.set(String(e.eventId), { type: a.activityType?.name ?? '?', at });
      const done = e.activityTaskCompletedEventAttributes;
      const s = done ? scheduled.get(String(done.scheduledEventId)) : undefined;
      if (s) add(`activity ${s.type}`, at - s.at);
    }
    if (events.length > 1) add('workflow, start to close', ms(events.at(-1)?.eventTime) - ms(events[0]?.eventTime));
  }
  const out: Record<string, number> = {};
  console.log('where a recovery spends its time (mean over the last 40 measured, scheduled to completed):');
  for (const [k, v] of sums) {
    out[k] = Math.round((10 * v.ms) / v.n) / 10;
    console.log(`  ${k.padEnd(40)} ${f2(v.ms / v.n).padStart(8)} ms`);
  }
  return out;
}

async function main(): Promise<void> {
  // The figures are the output: the SDK says only what went wrong (the time-skipping env installs its own).
  if (values['skip-mix']) Runtime.install({ logger: new DefaultLogger('WARN') });
  const driver = createDriver(config);
  await driver.verifyConnectivity({ database: config.NEO4J_DATABASE });
  await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  const graph = graphFromConfig(driver, config);
  const gateway = new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, config.PERSONA_GATEWAY_TIMEOUT_MS);
  const results: Record<string, unknown> = { at: new Date().toISOString() };
  if (!values['skip-mix']) results.mix = await mixPhase(graph, gateway);
  if (!values['skip-throughput']) results.throughput = await throughputPhase(graph, gateway);
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `recovery-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nfigures written to ${path.relative(repoRoot, file)}`);
  await driver.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
