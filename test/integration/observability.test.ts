/**
 * What ops see, end to end: an api process and a worker process on the real Temporal and
 * Neo4j (and the gateway simulator), driven over REST and gRPC with known request ids and with
 * secrets that must never reach a log — then their JSON logs, their /metrics pages and the
 * workflows' histories read the way ops read them.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaProducer } from '../../clients/kafka';
import { loadSettings, workerDeploymentVersion } from '../../config/env';
import { getDevicesByCustomer } from '../../graph';
import { requestIdOf, type Headers } from '../../temporal/requestId';
import { connectTemporal } from '../../temporal/connection';
import type { ExpiryScanProgress } from '../../temporal/expiry';
import { fraudOutcomeWorkflowId } from '../../temporal/fraud';
import { INTERACTION_PRUNE_WORKFLOW_TYPE, type InteractionPruneInput } from '../../temporal/interactionPrune';
import { EVENT_PRUNE_WORKFLOW_TYPE, type EventPruneInput, type EventPruneResult } from '../../temporal/eventPrune';
import { GATEWAY_RECONCILIATION_WORKFLOW_TYPE, type GatewayReconciliationInput } from '../../temporal/reconciliation';
import { customerWorkflowsQuery, personaCustomerId } from '../../temporal/searchAttributes';
import { signToken } from '../support/api';
import { holderOfCard } from '../support/expiry';
import { overHttp, send } from '../support/http';
import { openTestGraph, uniqueEmail, uniquePerson, type TestGraph, testPayloadCodec } from '../support/graph';
import { bearer, personaClient } from '../support/grpc';
import {
  alertRules,
  logLines,
  metricValue,
  promqlSelectors,
  scrape,
  startTraceReceiver,
} from '../support/observability';
import {
  startApiProcess,
  startWorkerProcess,
  stopProcess,
  type ApiProcess,
  type WorkerProcess,
} from '../support/processes';
import { privateTemporal } from '../support/privateServices';
import { paymentId } from '../support/recovery';
import { until } from '../support/wait';
import { taskQueueFor, taskQueuesOf } from '../../temporal/taskQueues';
import { localKafkaBrokers } from '../../stack/install';

const taskQueue = `observability-${randomUUID()}`;
/** The worker process's queues, one per kind of work. */
const queues = taskQueuesOf(taskQueue);
/** The local stack's Temporal server's own metrics (stack/launch.ts `--metrics-port`). */
const temporalMetrics = `http://127.0.0.1:${loadSettings().TEMPORAL_METRICS_PORT}`;
const run = randomUUID().slice(0, 8);
/** Request ids the test sends, one per call it will look for. */
const rid = {
  onboard: `obs-onboard-${run}`,
  match: `obs-match-${run}`,
  refused: `obs-refused-${run}`,
  card: `obs-card-${run}`,
  pan: `obs-pan-${run}`,
  pay: `obs-pay-${run}`,
  fraud: `obs-fraud-${run}`,
  grpc: `obs-grpc-${run}`,
  scan: `obs-scan-${run}`,
};
/** What must never appear in a log line. */
const secret = {
  token: `tok_obs_${randomUUID()}`,
  secondToken: `tok_obs_${randomUUID()}`,
  thirdToken: `tok_obs_${randomUUID()}`,
  email: uniqueEmail('obs'),
  phone: `+4479${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`,
  fingerprint: `fp-obs-${randomUUID()}`,
  pan: '4242424242424242',
  ...uniquePerson(),
};
const AS_OF = '2010-06-20';
/** A trace an agent started before calling Persona (W3C trace context). */
const CALLER_TRACE = randomUUID().replace(/-/g, '');
const CALLER_SPAN = randomUUID().replace(/-/g, '').slice(0, 16);
/** The trace Chimera's message carries in its Kafka headers. */
const KAFKA_TRACE = randomUUID().replace(/-/g, '');
const KAFKA_SPAN = randomUUID().replace(/-/g, '').slice(0, 16);
/** The api consumes the agents' topics of this run on the stack's broker (the worker publishes nothing). */
const kafkaEnv = {
  KAFKA_BROKERS: localKafkaBrokers(loadSettings()).join(','),
  PERSONA_KAFKA_EVENTS_TOPIC: `test.${run}.obs.events`,
  PERSONA_KAFKA_EVENTS_PARTITIONS: '1',
  PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: `test.${run}.obs.payment-failures`,
  PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: `test.${run}.obs.fraud-outcomes`,
  PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: `test.${run}.obs.routing-outcomes`,
  PERSONA_KAFKA_DEAD_LETTER_TOPIC: `test.${run}.obs.dead-letters`,
  PERSONA_KAFKA_CONSUMER_GROUP: `test-obs-${run}`,
};

let graph: TestGraph;
let temporal: { connection: Connection; client: Client };
let worker: WorkerProcess;
let api: ApiProcess;
let collector: Awaited<ReturnType<typeof startTraceReceiver>>;
let ops: string;
const seen: {
  customerId: string;
  onboardingId: string;
  recoveryId: string;
  fraudId: string;
  scanId: string;
  scan: ExpiryScanProgress;
  pruneStartedAt: number;
  eventPruneStartedAt: number;
  eventPrune: EventPruneResult;
  reconciliationStartedAt: number;
  grpcRequestId: string;
} = {} as never;

/** A call to the api process as ops, with this request id: what it answered, and the request id it echoed. */
async function call(
  method: string,
  path: string,
  requestId: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await send(overHttp(api.url), method, path, {
    token: ops,
    body,
    headers: { 'x-request-id': requestId, ...headers },
  });
  return { status: res.status, requestId: res.headers.get('x-request-id'), json: res.json };
}

/** The secret person signing up, or (`otherBirthDate`) someone with their email and phone and another birth date. */
const onboarding = (key: string, requestId: string, otherBirthDate?: string) =>
  call(
    'POST',
    '/api/v1/onboarding?wait=true',
    requestId,
    {
      customer: { segment: 'Subscriber', ltv: '120' },
      payment_method: {
        type: 'card',
        token: otherBirthDate ? secret.thirdToken : secret.token,
        brand: 'visa',
        last_four: '4242',
        expiry_month: 12,
        expiry_year: 2035,
      },
      device: { fingerprint: secret.fingerprint, ip: '203.0.113.7', user_agent: 'observability-test' },
      digital_identifiers: [
        { type: 'email', value: secret.email, is_verified: true },
        { type: 'phone_number', value: secret.phone, is_verified: true },
      ],
      person: {
        given_name: secret.given_name,
        family_name: secret.family_name,
        birth_date: otherBirthDate ?? secret.birth_date,
      },
    },
    { 'idempotency-key': key },
  );

/** Drives every lifecycle once through the api: what the tests below then read back. */
async function exercise(): Promise<void> {
  const onboarded = await onboarding(`obs-${run}-1`, rid.onboard);
  expect(onboarded).toMatchObject({ status: 200, requestId: rid.onboard, json: { outcome: 'created' } });
  seen.customerId = onboarded.json.customer_id as string;
  seen.onboardingId = onboarded.json.workflow_id as string;
  expect((await onboarding(`obs-${run}-2`, rid.match)).json).toMatchObject({
    outcome: 'matched',
    customer_id: seen.customerId,
  });
  // The same verified email and phone with another birth date: the link is refused (a new customer).
  const otherBirthDate = secret.birth_date.startsWith('1950') ? '1960-01-01' : '1950-01-01';
  const refused = await onboarding(`obs-${run}-3`, rid.refused, otherBirthDate);
  expect(refused).toMatchObject({ status: 200, json: { outcome: 'created' } });
  expect(refused.json.customer_id).not.toBe(seen.customerId);
  expect(refused.json).not.toHaveProperty('link_refused');

  const wallet = `/api/v1/customers/${seen.customerId}/payment-methods`;
  const card = { type: 'card', brand: 'visa', last_four: '4444', expiry_month: 11, expiry_year: 2034 };
  expect(await call('POST', wallet, rid.card, { ...card, token: secret.secondToken })).toMatchObject({
    status: 201,
    requestId: rid.card,
  });
  expect(await call('POST', wallet, rid.pan, { ...card, token: secret.pan })).toMatchObject({
    status: 400,
    json: { field: 'payment_method.token' },
  });
  const first = (
    (await call('GET', wallet, `obs-wallet-${run}`)).json.data as { id: string; last_four: string }[]
  ).find((pm) => pm.last_four === '4242');

  const payment = paymentId();
  const failure = {
    payment_id: payment,
    customer_id: seen.customerId,
    payment_method_id: first?.id,
    amount: 2599,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  };
  seen.recoveryId = (await call('POST', '/api/v1/payment-failures', rid.pay, failure)).json.workflow_id as string;
  await until(
    async () =>
      (await call('GET', `/api/v1/payment-recoveries/${payment}`, `obs-poll-${run}`)).json.state === 'recovered',
  );

  // Chimera reports its outcome over Kafka, with its request id and its trace in the headers.
  const [device] = await getDevicesByCustomer(graph, seen.customerId);
  const outcomeId = randomUUID();
  seen.fraudId = fraudOutcomeWorkflowId(outcomeId);
  const chimera = createKafkaProducer({ kafkaBrokers: kafkaEnv.KAFKA_BROKERS.split(',') }, 'obs-chimera');
  try {
    // The api makes the topics when its consumer starts: send once it has.
    await until(async () => {
      try {
        await chimera.send({
          messages: [
            {
              topic: kafkaEnv.PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC,
              key: seen.customerId,
              value: JSON.stringify({
                outcome_id: outcomeId,
                customer_id: seen.customerId,
                outcome: 'challenge_passed',
                device_id: device?.id,
              }),
              headers: { 'x-request-id': rid.fraud, traceparent: `00-${KAFKA_TRACE}-${KAFKA_SPAN}-01` },
            },
          ],
        });
        return true;
      } catch {
        return false;
      }
    });
  } finally {
    await chimera.close();
  }
  await until(
    async () => (await call('GET', `/api/v1/fraud-outcomes/${outcomeId}`, `obs-poll-${run}`)).json.state === 'done',
  );

  const client = personaClient(api.grpcAddress);
  const metadata = bearer(ops);
  metadata.set('x-request-id', rid.grpc);
  metadata.set('traceparent', `00-${CALLER_TRACE}-${CALLER_SPAN}-01`);
  seen.grpcRequestId = await new Promise<string>((resolve, reject) => {
    const pending = client.GetCustomerContext({ customer_id: seen.customerId }, metadata, (err) => err && reject(err));
    pending.on('metadata', (md: grpc.Metadata) => resolve(String(md.get('x-request-id')[0])));
  });
  client.close();

  // Cards around a long-past day, so that only this test's cards are due: 41 days, 10 days, last month.
  await holderOfCard(graph, 2010, 7);
  await holderOfCard(graph, 2010, 6);
  await holderOfCard(graph, 2010, 5);
  seen.scanId = (await call('POST', '/api/v1/admin/expiry-scan', rid.scan, { as_of: AS_OF, reason: 'observed' })).json
    .workflow_id as string;
  await until(async () => {
    seen.scan = (await call('GET', `/api/v1/admin/expiry-scans/${seen.scanId}`, `obs-poll-${run}`))
      .json as unknown as ExpiryScanProgress;
    return seen.scan.state === 'done';
  });

  // A prune that keeps everything younger than a century (nothing of anyone's goes): its gauge.
  seen.pruneStartedAt = Date.now();
  const prune: InteractionPruneInput = { window_hours: 24 * 36_500, batch_size: 100 };
  await temporal.client.workflow.execute(INTERACTION_PRUNE_WORKFLOW_TYPE, {
    taskQueue: taskQueueFor(queues, INTERACTION_PRUNE_WORKFLOW_TYPE),
    workflowId: `obs-prune-${run}`,
    args: [prune],
  });

  // An event prune that keeps everything of the last 30 days (nothing of this run goes): its gauges.
  seen.eventPruneStartedAt = Date.now();
  const eventPrune: EventPruneInput = { safety_minutes: 43_200, cap_hours: 72, history_days: 3650, batch_size: 100 };
  seen.eventPrune = (await temporal.client.workflow.execute(EVENT_PRUNE_WORKFLOW_TYPE, {
    taskQueue: taskQueueFor(queues, EVENT_PRUNE_WORKFLOW_TYPE),
    workflowId: `obs-event-prune-${run}`,
    args: [eventPrune],
  })) as EventPruneResult;

  // A gateway reconciliation over a window long past (nothing charged or recovered then): its gauge.
  seen.reconciliationStartedAt = Date.now();
  const reconciliation: GatewayReconciliationInput = {
    lookback_hours: 26,
    window: { from: '2010-01-01T00:00:00Z', to: '2010-01-01T01:00:00Z' },
    grace_minutes: 0,
    page_size: 100,
  };
  await temporal.client.workflow.execute(GATEWAY_RECONCILIATION_WORKFLOW_TYPE, {
    taskQueue: taskQueueFor(queues, GATEWAY_RECONCILIATION_WORKFLOW_TYPE),
    workflowId: `obs-reconciliation-${run}`,
    args: [reconciliation],
  });
}

/**
 * A worker whose Temporal goes away: a private Temporal, a worker on it, the Temporal stopped, until
 * the SDK core has said at WARN that it retries its polls (or a line that is not JSON came first).
 * Started in beforeAll beside the exercise: most of it is the core's backoff, waiting.
 */
async function workerDuringOutage(): Promise<{ output: string; since: ReturnType<typeof logLines> }> {
  const lost = await privateTemporal();
  let outageWorker: WorkerProcess | undefined;
  try {
    await lost.start();
    outageWorker = await startWorkerProcess({ ...lost.env, TEMPORAL_TASK_QUEUE: `outage-${run}` });
    const before = outageWorker.output().length;
    expect(await lost.stop()).toBe('stopped');
    // The core retries its polls and says so at WARN: that line must arrive as JSON (a line
    // that is not JSON ends the wait at once).
    const since = () => logLines(outageWorker!.output().slice(before));
    // Its own loop, not `until`: this runs beside the file's tests, whose budgets are not its own.
    const deadline = Date.now() + 120_000;
    const seen = () =>
      since().notJson.length > 0 || since().lines.some((l) => l.sdkComponent === 'core' && l.level === 40);
    while (!seen()) {
      if (Date.now() > deadline) throw new Error(`the SDK core said nothing at WARN:\n${outageWorker.output()}`);
      await sleep(200);
    }
    return { output: outageWorker.output(), since: since() };
  } finally {
    if (outageWorker) await stopProcess(outageWorker, 5_000);
    await lost.dispose();
  }
}
let outage: Promise<{ output: string; since: ReturnType<typeof logLines> }>;

beforeAll(async () => {
  outage = workerDuringOutage();
  // Its failure is its test's; the file's hooks go on.
  outage.catch(() => undefined);
  graph = openTestGraph();
  temporal = await connectTemporal(graph.config, { payloadCodec: testPayloadCodec(graph) });
  // Ops, and the verification service (only it may say an identifier is verified).
  ops = await signToken(graph.config.jwtSecret, 'ops identity:verify');
  collector = await startTraceReceiver();
  // Debug level: the most a process ever logs is what must hold no secret. Traces go to the stand-in collector.
  const env = {
    TEMPORAL_TASK_QUEUE: taskQueue,
    LOG_LEVEL: 'debug',
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
  worker = await startWorkerProcess(env);
  // Scans in small batches, one per run: the scan continues as new, and its request id must follow.
  api = await startApiProcess({
    ...env,
    ...kafkaEnv,
    PERSONA_EXPIRY_BATCH_SIZE: '2',
    PERSONA_EXPIRY_BATCHES_PER_RUN: '1',
    PERSONA_EXPIRY_SCAN_LANES: '1',
  });
  await exercise();
  // The worker forwards the SDK core's lines, so the SDK holds every line up to 100 ms to keep
  // them in order: wait for the last one of the exercise to be written.
  await until(async () =>
    logLines(worker.output()).lines.some((l) => l.msg === 'expiry scan finished' && l.workflowId === seen.scanId),
  );
}, 240_000);

afterAll(async () => {
  await outage?.catch(() => undefined);
  await Promise.all([api && stopProcess(api), worker && stopProcess(worker)]);
  await temporal?.connection.close();
  await graph?.close();
  await collector?.close();
});

const apiLogs = () => logLines(api.output());
const workerLogs = () => logLines(worker.output());

describe('structured logs', () => {
  it('are JSON, one line per request in the api, each naming its request id, route and status', () => {
    const { lines, notJson } = apiLogs();
    expect(notJson).toEqual([]);
    const find = (requestId: string) => lines.filter((l) => l.requestId === requestId && 'status' in l);
    expect(find(rid.onboard)).toMatchObject([{ method: 'POST', route: '/api/v1/onboarding', status: 200 }]);
    expect(find(rid.pan)).toMatchObject([
      { method: 'POST', route: '/api/v1/customers/:id/payment-methods', status: 400 },
    ]);
    expect(lines.filter((l) => l.requestId === rid.grpc)).toMatchObject([
      { grpcMethod: 'GetCustomerContext', code: 'OK' },
    ]);
    expect(seen.grpcRequestId).toBe(rid.grpc);
  });

  it(
    'follow a request into the workflow it starts: ' +
      'every worker line of it names the workflow, the run and the request',
    async () => {
      const { lines, notJson } = workerLogs();
      expect(notJson).toEqual([]);
      for (const [workflowId, requestId, expected] of [
        [seen.onboardingId, rid.onboard, 'customer created'],
        [seen.recoveryId, rid.pay, 'notify customer: payment_recovered by email'],
        [seen.fraudId, rid.fraud, 'fraud outcome challenge_passed applied'],
        [seen.scanId, rid.scan, 'expiry scan finished'],
      ] as const) {
        // Every run of the workflow (the scan continues as new).
        const runIds: string[] = [];
        for await (const wf of temporal.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
          runIds.push(wf.runId);
        const mine = lines.filter((l) => JSON.stringify(l).includes(workflowId) && l.otherWorkflowId !== workflowId);
        expect(mine.map((l) => l.msg)).toContain(expected);
        for (const line of mine) {
          expect(line.workflowId, JSON.stringify(line)).toBe(workflowId);
          expect(runIds, JSON.stringify(line)).toContain(line.runId);
        }
        if (workflowId === seen.scanId) expect(new Set(mine.map((l) => l.runId)).size).toBe(seen.scan.runs);
        // The SDK writes "Activity started" before any interceptor can see the activity's headers.
        const withoutRequest = mine.filter((l) => l.requestId !== requestId && l.msg !== 'Activity started');
        expect(withoutRequest).toEqual([]);
      }
    },
  );

  it('never hold a payment token, a card number, an email, a phone number, a fingerprint or a bearer token', () => {
    const output = `${api.output()}\n${worker.output()}`;
    // The secrets did pass through both processes (the worker wrote the card and the identifiers).
    expect(workerLogs().lines.some((l) => l.workflowId === seen.onboardingId && l.msg === 'customer created')).toBe(
      true,
    );
    const digits = secret.phone.replace(/\D/g, '').slice(-9);
    const leaks = Object.entries({ ...secret, phone: digits, bearer: ops }).filter(([, value]) =>
      output.includes(value),
    );
    expect(leaks.map(([name]) => name)).toEqual([]);
  });
});

describe('/metrics', () => {
  it('the api: request latency histograms by route and status, REST and gRPC, and process metrics', async () => {
    const m = await scrape(api.url);
    const http = (route: string, status: string, method = 'POST') =>
      metricValue(m, 'persona_http_request_duration_seconds_count', { method, route, status });
    expect(http('/api/v1/onboarding', '200')).toBe(3);
    expect(http('/api/v1/customers/:id/payment-methods', '201')).toBe(1);
    expect(http('/api/v1/customers/:id/payment-methods', '400')).toBe(1);
    expect(http('/api/v1/payment-failures', '202')).toBe(1);
    expect(
      metricValue(m, 'persona_http_request_duration_seconds_bucket', {
        route: '/api/v1/onboarding',
        status: '200',
        le: '+Inf',
      }),
    ).toBe(3);
    expect(
      metricValue(m, 'persona_http_request_duration_seconds_sum', { route: '/api/v1/onboarding', status: '200' }),
    ).toBeGreaterThan(0);
    expect(
      metricValue(m, 'persona_grpc_request_duration_seconds_count', { method: 'GetCustomerContext', code: 'OK' }),
    ).toBe(1);
    expect(m.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it(
    'the worker: business counters by outcome, stage and kind, ' + 'the Temporal SDK runtime metrics, process metrics',
    async () => {
      const m = await scrape(worker.url);
      // Each workflow's counters carry the queue of its kind of work (temporal/taskQueues.ts).
      const [interactive, charges, bulk] = [
        { taskQueue: queues.interactive },
        { taskQueue: queues.charges },
        { taskQueue: queues.bulk },
      ];
      expect(metricValue(m, 'persona_onboardings_total', { ...interactive, outcome: 'created' })).toBe(2);
      // One series per label set: the worker's series at 0 and the workflows' additions are the same series,
      // and outcomes nothing reached are there at 0 (so that increase() sees their first event).
      expect(
        m.filter(
          (s) =>
            s.name === 'persona_onboardings_total' &&
            s.labels.taskQueue === queues.interactive &&
            s.labels.outcome === 'created',
        ),
      ).toHaveLength(1);
      expect(metricValue(m, 'persona_onboardings_total', { ...interactive, outcome: 'failed' })).toBe(0);
      expect(
        m.some(
          (s) =>
            s.name === 'persona_onboardings_total' &&
            s.labels.taskQueue === queues.interactive &&
            s.labels.outcome === 'failed',
        ),
      ).toBe(true);
      expect(metricValue(m, 'persona_expiry_scan_last_success_timestamp_seconds', bulk)).toBeGreaterThan(
        Date.parse(seen.scan.started_at) / 1000 - 60,
      );
      expect(metricValue(m, 'persona_interaction_prune_last_success_timestamp_seconds', bulk)).toBeGreaterThan(
        seen.pruneStartedAt / 1000 - 60,
      );
      expect(metricValue(m, 'persona_event_prune_last_success_timestamp_seconds', bulk)).toBeGreaterThan(
        seen.eventPruneStartedAt / 1000 - 60,
      );
      expect(metricValue(m, 'persona_event_consumers_behind_cap', bulk)).toBe(
        seen.eventPrune.consumers.filter((c) => c.behind_cap).length,
      );
      expect(metricValue(m, 'persona_gateway_reconciliation_last_success_timestamp_seconds', bulk)).toBeGreaterThan(
        seen.reconciliationStartedAt / 1000 - 60,
      );
      expect(metricValue(m, 'persona_onboardings_total', { ...interactive, outcome: 'matched' })).toBe(1);
      // The third sign-up's proof pointed at the first customer, with another birth date.
      expect(
        metricValue(m, 'persona_onboarding_links_refused_total', { ...interactive, reason: 'proof_conflicts' }),
      ).toBe(1);
      expect(
        metricValue(m, 'persona_onboarding_links_refused_total', { ...interactive, reason: 'too_many_recent_links' }),
      ).toBe(0);
      expect(metricValue(m, 'persona_payment_recoveries_total', { ...charges, outcome: 'recovered' })).toBe(1);
      expect(metricValue(m, 'persona_fraud_outcomes_total', { ...interactive, kind: 'challenge_passed' })).toBe(1);
      // A kind's counters are on its queue only: no recovery counted on the bulk queue.
      expect(
        m.some((s) => s.name === 'persona_payment_recoveries_total' && s.labels.taskQueue !== queues.charges),
      ).toBe(false);
      // The counters say what the scan itself reports, and this test's cards were among them.
      for (const stage of ['60', '30', '7'] as const) {
        expect(metricValue(m, 'persona_expiry_notifications_total', { ...bulk, stage })).toBe(
          seen.scan.notified[stage],
        );
      }
      expect(seen.scan.notified['60']).toBeGreaterThanOrEqual(1);
      expect(seen.scan.notified['30']).toBeGreaterThanOrEqual(1);
      expect(metricValue(m, 'persona_cards_expired_total', bulk)).toBe(seen.scan.expired);
      expect(seen.scan.expired).toBeGreaterThanOrEqual(1);
      expect(seen.scan.runs).toBeGreaterThanOrEqual(2);

      const sdk = { task_queue: queues.interactive };
      expect(metricValue(m, 'temporal_workflow_completed_total', { ...sdk, workflow_type: 'onboardingWorkflow' })).toBe(
        3,
      );
      // The charge ran in the charges Worker: its activity's metrics carry the charges queue.
      expect(
        metricValue(m, 'temporal_activity_execution_latency_seconds_count', {
          task_queue: queues.charges,
          activity_type: 'chargePaymentMethod',
        }),
      ).toBe(1);
      expect(metricValue(m, 'temporal_workflow_task_schedule_to_start_latency_seconds_count', sdk)).toBeGreaterThan(0);
      expect(m.some((s) => s.name === 'process_cpu_seconds_total')).toBe(true);
    },
  );

  it("show the worker's queues in the Temporal server's backlog under the labels the stall alerts select", async () => {
    // The server writes a label value with every character but a letter, digit or _ as _.
    const asLabel = (v: string) => v.replace(/[^a-zA-Z0-9_]/g, '_');
    // What the stall rules take for "unpinned" (PersonaTaskQueueStalled's worker_build_id=~, which
    // PersonaPinnedWorkStalled's !~ negates), read from ops/prometheus/alerts.yml, as PromQL anchors it.
    const matcher = (alert: string, op: string) => {
      const expr = alertRules().find((r) => r.alert === alert)?.expr ?? '';
      return new RegExp(`^(?:${new RegExp(`worker_build_id${op}"([^"]*)"`).exec(expr)?.[1] ?? 'no matcher'})$`);
    };
    const stalled = matcher('PersonaTaskQueueStalled', '=~');
    expect(matcher('PersonaPinnedWorkStalled', '!~').source).toBe(stalled.source);
    const unpinned = (s: { labels: Record<string, string> }) => stalled.test(s.labels.worker_build_id ?? '');
    let backlog: Awaited<ReturnType<typeof scrape>> = [];
    // Matching sets the gauges at least once a minute for each queue it has loaded.
    await until(async () => {
      backlog = (await scrape(temporalMetrics)).filter((s) => s.name === 'approximate_backlog_age_seconds');
      return Object.values(queues).every((q) =>
        ['Workflow', 'Activity'].some((type) =>
          backlog.some((s) => s.labels.taskqueue === asLabel(q) && s.labels.task_type === type && unpinned(s)),
        ),
      );
    }, 150_000);
    for (const q of Object.values(queues)) {
      const mine = backlog.filter((s) => s.labels.taskqueue === asLabel(q));
      expect(mine.filter(unpinned).length, q).toBeGreaterThan(0);
      expect(
        mine.every((s) => s.labels.namespace === 'default' && /^(\d+|__sticky__)$/.test(s.labels.partition ?? '')),
      ).toBe(true);
    }
    // The worker is a version: the tasks pinned to it have series of their own, by its build id.
    const pinned = backlog.filter(
      (s) =>
        Object.values(queues)
          .map(asLabel)
          .includes(s.labels.taskqueue ?? '') && !unpinned(s),
    );
    expect(pinned.map((s) => s.labels.worker_build_id)).toContain(
      asLabel(workerDeploymentVersion(loadSettings()).buildId),
    );
  }, 180_000);

  it('carry, under the names the alert rules use, every metric this run had reason to produce', async () => {
    const onPage = new Set(
      [...(await scrape(api.url)), ...(await scrape(worker.url)), ...(await scrape(temporalMetrics))].map(
        (s) => s.name,
      ),
    );
    const named = new Set(alertRules().flatMap((r) => promqlSelectors(r.expr).found.map((f) => f.metric)));
    const absent = [...named].filter((n) => !onPage.has(n)).sort();
    // The relay's gauges come from its graph checkpoint: both there once a relay ran on this
    // graph (another test file may have), neither before.
    const relay = ['persona_event_relay_blocked_seconds', 'persona_event_relay_parked_events'];
    expect(relay.filter((n) => onPage.has(n)).length % relay.length).toBe(0);
    // Only what takes a failure to appear (a dead-lettered Kafka message: none in this run), a
    // certificate's expiry (these processes run on no certificate file), and `up`, which Prometheus adds.
    expect(absent.filter((n) => !relay.includes(n))).toEqual(
      [
        'persona_kafka_dead_letters_total',
        'persona_tls_certificate_expiry_timestamp_seconds',
        'temporal_activity_execution_failed_total',
        'temporal_workflow_failed_total',
        'temporal_workflow_task_execution_failed_total',
        'up',
      ].sort(),
    );
  });
});

describe('the Temporal UI', () => {
  it(
    'finds the customer’s workflows by PersonaCustomerId, ' +
      'each with a summary in words and a summary on every activity',
    async () => {
      let found: { workflowId: string; type: string }[] = [];
      await until(async () => {
        found = [];
        for await (const wf of temporal.client.workflow.list({ query: customerWorkflowsQuery(seen.customerId) }))
          found.push({ workflowId: wf.workflowId, type: wf.type });
        return found.length >= 4;
      });
      expect(new Set(found.map((f) => f.type))).toEqual(
        new Set(['onboardingWorkflow', 'paymentRecoveryWorkflow', 'fraudOutcomeWorkflow']),
      );

      const startedBy = new Map([
        [seen.onboardingId, rid.onboard],
        [seen.onboardingId.replace(/-1$/, '-2'), rid.match],
        [seen.recoveryId, rid.pay],
        [seen.fraudId, rid.fraud],
        [seen.scanId, rid.scan],
      ]);
      for (const { workflowId } of [...found, { workflowId: seen.scanId }]) {
        const handle = temporal.client.workflow.getHandle(workflowId);
        const described = await handle.describe();
        if (workflowId !== seen.scanId)
          expect(described.typedSearchAttributes.get(personaCustomerId)).toBe(seen.customerId);
        const { events } = await handle.fetchHistory();
        const started = events?.[0]?.workflowExecutionStartedEventAttributes;
        // The latest run carries the id of the request that started the workflow — through continue-as-new too.
        expect(requestIdOf(started?.header?.fields as Headers), workflowId).toBe(startedBy.get(workflowId));

        // The summary is the first run's (Temporal keeps no static summary across continue-as-new:
        // a continued run says what it is about in its current details).
        const first = temporal.client.workflow.getHandle(workflowId, started?.firstExecutionRunId ?? undefined);
        expect((await (await first.describe()).staticSummary())?.split(' ').length, workflowId).toBeGreaterThanOrEqual(
          5,
        );
        if (started?.continuedExecutionRunId) {
          const { currentDetails } = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
          expect(currentDetails).toMatch(/^\*\*Card-expiry scan as of 2010-06-20\*\* — done/);
        }
        const activities = (events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
        expect(activities.length).toBeGreaterThan(0);
        for (const e of activities) {
          // The history as Temporal keeps it: the summary is encrypted like every payload.
          const [plain] = e.userMetadata?.summary ? await testPayloadCodec(graph).decode([e.userMetadata.summary]) : [];
          const summary = JSON.parse(Buffer.from(plain?.data ?? new Uint8Array()).toString() || '""') as string;
          expect(
            summary.split(' ').length,
            `${workflowId}: ${e.activityTaskScheduledEventAttributes?.activityType?.name}`,
          ).toBeGreaterThanOrEqual(5);
        }
      }
    },
  );
});

describe('traces (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  it('follow a request from the api through the workflow it starts to each activity, in one trace', async () => {
    const spans = () => collector.spans();
    const request = () =>
      spans().find((s) => s.name === 'POST /api/v1/onboarding' && s.attributes['persona.request_id'] === rid.onboard);
    await until(async () => {
      const root = request();
      return (
        root !== undefined &&
        spans().some((s) => s.traceId === root.traceId && s.name === 'RunActivity:requestBehavioralProfile')
      );
    });
    const root = request() as NonNullable<ReturnType<typeof request>>;
    expect(root).toMatchObject({
      service: 'persona-api',
      parentSpanId: '',
      attributes: { 'http.route': '/api/v1/onboarding', 'http.response.status_code': 200 },
    });
    const trace = spans().filter((s) => s.traceId === root.traceId);
    expect(new Set(trace.map((s) => s.name))).toEqual(
      new Set([
        'POST /api/v1/onboarding',
        // A waited onboarding starts its run with the Update that answers once the customer is written.
        'UpdateWithStartWorkflow:customerWritten',
        'DescribeWorkflow', // the api checks the Idempotency-Key's body
        'RunWorkflow:onboardingWorkflow',
        'HandleUpdate:customerWritten',
        'StartActivity:onboardCustomer',
        'RunActivity:onboardCustomer',
        'StartActivity:requestBehavioralProfile',
        'RunActivity:requestBehavioralProfile',
      ]),
    );
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(['persona-api', 'persona-worker']));
    // Every span but the request's own has its parent in the trace.
    const ids = new Set(trace.map((s) => s.spanId));
    for (const s of trace.filter((t) => t !== root)) expect(ids.has(s.parentSpanId), s.name).toBe(true);
    // The api's log line of the request names the trace.
    expect(apiLogs().lines.find((l) => l.requestId === rid.onboard && 'status' in l)?.traceId).toBe(root.traceId);
  });

  it('continue a caller’s trace from a Kafka message’s headers into the workflow it starts', async () => {
    const spans = () => collector.spans().filter((s) => s.traceId === KAFKA_TRACE);
    await until(async () => spans().some((s) => s.name === 'RunActivity:applyFraudOutcome'));
    expect(spans().find((s) => s.name === 'kafka fraud-outcome')).toMatchObject({
      service: 'persona-api',
      parentSpanId: KAFKA_SPAN,
      attributes: { 'persona.request_id': rid.fraud },
    });
    expect(new Set(spans().map((s) => s.service))).toEqual(new Set(['persona-api', 'persona-worker']));
    expect(spans().map((s) => s.name)).toContain('RunWorkflow:fraudOutcomeWorkflow');
  });

  it('continue a caller’s trace (W3C traceparent) over gRPC', async () => {
    const grpcSpan = collector
      .spans()
      .find((s) => s.name === 'gRPC GetCustomerContext' && s.attributes['persona.request_id'] === rid.grpc);
    expect(grpcSpan).toMatchObject({ service: 'persona-api', traceId: CALLER_TRACE, parentSpanId: CALLER_SPAN });
  });
});

describe('during an outage', () => {
  it(
    'the worker still writes nothing but JSON: the SDK core’s retry warnings too, ' +
      'with the component and what it retried',
    async () => {
      const { output, since } = await outage;
      const fromCore = since.lines.filter((l) => l.sdkComponent === 'core');
      expect(logLines(output).notJson).toEqual([]);
      expect(fromCore.find((l) => l.level === 40)).toMatchObject({
        service: 'persona-worker',
        msg: expect.any(String),
      });
      expect(output).not.toContain('\u001b['); // no terminal colours anywhere
    },
    // It started in beforeAll: a private Temporal and a worker, then up to 120 s of the core's retries.
    240_000,
  );
});
