/**
 * The backup and restore drill, on a private Neo4j and a private Temporal (a restore stops the
 * one and reconciles every running workflow of the other), with the real worker and api
 * processes, the stack's Kafka broker and a gateway simulator of its own:
 *
 *   a small graph and a recovery in dunning → backup → a new customer onboarded, a customer
 *   erased, a card added, a second recovery in dunning, a third that charges a card and ends, a
 *   fourth whose charge goes through at the gateway with its answer lost (and every request after
 *   it fails before the gateway), everything published to Kafka → the api and worker stopped →
 *   restore → the erased customer stays erased (keys destroyed), the new epoch numbers what
 *   follows, the recoveries started after the backup are terminated and written back into the
 *   charge ledger, the one from before the backup goes on untouched, and the api and worker serve
 *   again: the publisher goes on from its restored checkpoint without losing an event or repeating
 *   one silently, and the gateway reconciliation the restore started records the third and fourth
 *   recoveries' charges, which the restored graph had lost. A payment reported again under a new id
 *   that replaces the fourth is refused (no verdict, then: it was collected), and the gateway holds
 *   one charge for it; one that replaces the second, once it is settled stopped, is taken.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve as serveHttp, type ServerType } from '@hono/node-server';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowNotFoundError, type Client, type Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleStrandedRecoveries } from '../../activities/strandedRecoveries';
import { listArchives } from '../../backup/archive';
import { archiveWithinDeadline, erasureLedgerReaches, runBackup, runRestore } from '../../backup/run';
import type { Neo4jStore } from '../../backup/backup';
import { ensureTopics, KAFKA_HEADERS } from '../../clients/kafka';
import { HttpPaymentGateway } from '../../clients/paymentGateway';
import { loadConfig, profileRules, type Config } from '../../config/env';
import { createDriver } from '../../graph';
import { readRecoveryLedger, reserveRecovery } from '../../graph/chargeLedger';
import { toPlain } from '../../graph/convert';
import type { PersonaEvent } from '../../graph/events';
import { mergeCustomers } from '../../graph/identityMerge';
import { migrate } from '../../graph/schema';
import { graphFromConfig } from '../../runtime/graph';
import { connectTemporal } from '../../temporal/connection';
import { erasureWorkflowId, type ErasureOutcome } from '../../temporal/erasure';
import { onboardingWorkflowId } from '../../temporal/workflowIds';
import { kafkaCheckpointId } from '../../temporal/kafkaPublisher';
import { payloadCodecFromConfig } from '../../temporal/payloadCodec';
import { recoveryWorkflowId, recoveryStatusQuery, type RecoveryStatus } from '../../temporal/recovery';
import { signToken } from '../support/api';
import { overHttp, send } from '../support/http';
import { customerWithCards, paymentId } from '../support/recovery';
import type { TestGraph } from '../support/graph';
import { uniqueEmail } from '../support/graph';
import { privateNeo4j, privateTemporal, type PrivateNeo4j, type PrivateTemporal } from '../support/privateServices';
import {
  startApiProcess,
  startWorkerProcess,
  stopProcess,
  type ApiProcess,
  type RunningProcess,
} from '../support/processes';
import { until } from '../support/wait';
import {
  createGatewaySimulator,
  type ChargeAbout,
  type ChargeFault,
  type ChargeRecord,
} from '../../simulators/gateway/app';
import type { GatewayReconciliationProgress } from '../../temporal/reconciliation';
import { localKafkaBrokers } from '../../stack/install';
import { readTopic, type Msg } from '../support/kafka';

const run = randomUUID().slice(0, 8);
const topic = `test.${run}.restore.persona.events`;
/** Who restores in these tests, and why: kept on GraphRestored. */
const RESTORE_REQUEST = { by: 'ops-restore-test', reason: 'the disk under Neo4j was lost (INC-9)' };
let neo4j: PrivateNeo4j;
let temporal: PrivateTemporal;
let config: Config;
let env: Record<string, string>;
let graph: TestGraph;
let connection: Connection;
let client: Client;
let backups: string;
const processes: RunningProcess[] = [];
const received: Msg[] = [];
let gatewayServer: ServerType;
let reader: { stop(): Promise<void> } | undefined;
/** The faults the drill's gateway injects, asked once per charge request: none until a step sets them. */
let chargeFault: (req: ChargeAbout) => ChargeFault | null = () => null;

const log = (): void => undefined;

function testGraph(c: Config): TestGraph {
  const driver = createDriver(c);
  return {
    ...graphFromConfig(driver, c),
    config: c,
    close: () => driver.close(),
    query: async <T>(cypher: string, params: Record<string, unknown> = {}) =>
      (await driver.executeQuery(cypher, params, { database: c.NEO4J_DATABASE })).records.map(
        (r) => toPlain(r.toObject()) as T,
      ),
  };
}

beforeAll(async () => {
  [neo4j, temporal] = await Promise.all([privateNeo4j(), privateTemporal()]);
  await Promise.all([neo4j.start(), temporal.start()]);
  backups = mkdtempSync(path.join(os.tmpdir(), 'persona-backups-'));
  // A gateway of its own: the reconciliation after the restore compares only this drill's charges.
  await new Promise<void>((resolve) => {
    gatewayServer = serveHttp(
      {
        fetch: createGatewaySimulator(path.join(backups, 'gateway', 'charges.jsonl'), undefined, {
          fault: (req) => chargeFault(req),
        }).fetch,
        hostname: '127.0.0.1',
        port: 0,
      },
      () => resolve(),
    );
  });
  const gatewayUrl = `http://127.0.0.1:${(gatewayServer.address() as AddressInfo).port}`;
  const stackKafka = localKafkaBrokers(loadConfig()).join(',');
  env = {
    ...neo4j.env,
    ...temporal.env,
    KAFKA_BROKERS: stackKafka,
    KAFKA_ALLOW_PLAINTEXT: 'true',
    PERSONA_KAFKA_EVENTS_TOPIC: topic,
    PERSONA_BACKUP_DIR: path.join(backups, 'archives'),
    PERSONA_GATEWAY_URL: gatewayUrl,
    // A recovery in dunning waits days: nothing but the test moves it on.
    PERSONA_DUNNING_SCHEDULE: '7d,7d',
  };
  config = loadConfig({ ...process.env, ...env });
  const driver = createDriver(config);
  await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  await driver.close();
  await openClients();
  await ensureTopics({ ...config, kafkaBrokers: stackKafka.split(',') }, [{ name: topic, partitions: 3 }]);
  reader = await readTopic({ kafkaBrokers: stackKafka.split(',') }, topic, received);
}, 240_000);

async function openClients(): Promise<void> {
  graph = testGraph(config);
  ({ connection, client } = await connectTemporal(config, {
    payloadCodec: payloadCodecFromConfig(config, graph, 'none'),
  }));
}

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await reader?.stop();
  await connection?.close();
  await graph?.close();
  await new Promise<void>((resolve) => (gatewayServer ? gatewayServer.close(() => resolve()) : resolve()));
  await Promise.all([neo4j?.dispose(), temporal?.dispose()]);
  if (backups) rmSync(backups, { recursive: true, force: true });
});

/** The private Neo4j as the store a backup copies and a restore replaces. */
const store = (): Neo4jStore => ({
  home: path.join(neo4j.dir, 'home'),
  stop: async () => {
    await neo4j.stop();
  },
  start: () => neo4j.start(),
});

async function serve(): Promise<{ api: ApiProcess; worker: RunningProcess }> {
  // The worker applies the schedules and starts the Kafka publisher on this (private) Temporal.
  const worker = await startWorkerProcess({ ...env, PERSONA_SCHEDULES: 'apply' });
  processes.push(worker);
  const api = await startApiProcess(env);
  processes.push(api);
  return { api, worker };
}

/** A call to the api process with a token of every scope the drill needs, as JSON, with ops' reason. */
const call = async (api: ApiProcess, method: string, route: string, body?: unknown, headers = {}) =>
  send(overHttp(api.url), method, route, {
    token: await signToken(
      config.jwtSecret,
      'ops onboarding:write identity:verify customers:write customers:read context:read payments:report',
    ),
    body,
    headers: { 'content-type': 'application/json', 'persona-reason': 'backup drill', ...headers },
    // As read before: an empty body is null, and one that is not JSON only fails where it is read.
    read: 'text',
    empty: null,
  });

/**
 * A newcomer onboarded through the api, waiting for the answer: on a busy machine the api's wait
 * can end first (202, still running), and the same request again (its key) answers once it is done.
 */
async function onboard(api: ApiProcess) {
  const body = {
    customer: { segment: 'Subscriber' },
    device: { fingerprint: `fp-${randomUUID()}` },
    digital_identifiers: [{ type: 'email', value: uniqueEmail('drill'), is_verified: true }],
  };
  const key = randomUUID();
  const once = () => call(api, 'POST', '/api/v1/onboarding?wait=true', body, { 'idempotency-key': key });
  let answer = await once();
  await until(async () => answer.status !== 202 || (answer = await once()).status !== 202, 60_000);
  return answer;
}

/** Every event of the log, oldest first (the feed's order). */
async function logEvents(): Promise<PersonaEvent[]> {
  const rows = await graph.query<{ e: PersonaEvent }>(
    `MATCH (e:Event) WHERE e.occurred_at IS NOT NULL
     RETURN e {.id, .type, .customer_id, .customer_seq, .epoch} AS e ORDER BY e.occurred_at, e.seq, e.id`,
  );
  return rows.map((r) => r.e);
}

const receivedIds = () => new Set(received.map((m) => m.headers.get(KAFKA_HEADERS.eventId)));
/** Until every event of the log (read again each time: workflows may still be writing) is on the topic. */
async function allPublished(): Promise<void> {
  await until(async () => {
    const got = receivedIds();
    return (await logEvents()).every((e) => got.has(e.id));
  }, 90_000);
}

async function reportFailure(api: ApiProcess, customerId: string, method: string): Promise<string> {
  const payment = paymentId();
  const res = await call(api, 'POST', '/api/v1/payment-failures', {
    payment_id: payment,
    customer_id: customerId,
    payment_method_id: method,
    amount: 1500,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  });
  expect(res.status).toBe(202);
  const handle = client.workflow.getHandle(recoveryWorkflowId(payment));
  // Every card declines: the recovery waits in dunning.
  await until(async () => (await handle.query<RecoveryStatus>(recoveryStatusQuery)).state === 'dunning', 60_000);
  return payment;
}

/** A failed payment on the customer's first card (it declines), recovered on their second. */
async function recoveredOnSecondCard(
  api: ApiProcess,
  who: { customerId: string; cards: string[] },
  amount: number,
): Promise<string> {
  const payment = paymentId();
  const res = await call(api, 'POST', '/api/v1/payment-failures', {
    payment_id: payment,
    customer_id: who.customerId,
    payment_method_id: who.cards[0],
    amount,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  });
  expect(res.status).toBe(202);
  expect(await client.workflow.getHandle(recoveryWorkflowId(payment)).result()).toMatchObject({ state: 'recovered' });
  return payment;
}

/** The charges the drill's gateway holds for a payment (its reference). */
async function chargesOf(payment: string): Promise<ChargeRecord[]> {
  const res = await fetch(`${config.PERSONA_GATEWAY_URL}/v1/charges?reference=${payment}`);
  return ((await res.json()) as { data: ChargeRecord[] }).data;
}

/** A report of the same payment under a new id, naming the one it replaces. */
const reportedAgain = (replaces: string, who: { customerId: string; cards: string[] }) => ({
  payment_id: paymentId(),
  customer_id: who.customerId,
  payment_method_id: who.cards[1] as string,
  amount: 1500,
  currency: 'EUR',
  decline_code: 'insufficient_funds',
  replaces,
});

async function workflowStatus(id: string): Promise<string | null> {
  try {
    return (await client.workflow.getHandle(id).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

describe('backup and restore drill', () => {
  it('restores without undoing an erasure, reusing an event, or losing the publisher’s place', async () => {
    let { api, worker } = await serve();
    // Before the backup: three customers, one recovery in dunning.
    // The customer erased after the backup had a recovery before it: a history key of theirs.
    const erased = await customerWithCards(graph, ['tok_decline_insufficient_funds_e', `tok_${randomUUID()}`]);
    const erasedPayment = await recoveredOnSecondCard(api, erased, 900);
    const kept = await customerWithCards(graph, [
      'tok_decline_insufficient_funds_a',
      'tok_decline_insufficient_funds_b',
    ]);
    const before = await reportFailure(api, kept.customerId, kept.cards[0] as string);
    // A customer whose failed payment, reported after the backup, is recovered on their other card.
    const payer = await customerWithCards(graph, ['tok_decline_insufficient_funds_p', `tok_${randomUUID()}`]);
    // A record that ops merge into the customer erased after the backup (the backup has it on its own).
    const mergedAway = await customerWithCards(graph, [`tok_${randomUUID()}`]);
    // A customer whose payment, reported after the backup, is charged on their good card, the answer lost.
    const unanswered = await customerWithCards(graph, ['tok_decline_insufficient_funds_u', `tok_${randomUUID()}`]);
    await allPublished();

    const backup = await runBackup(config, store(), log);
    expect(listArchives(config.PERSONA_BACKUP_DIR)).toEqual([backup.file]);
    expect(backup.manifest.marks.customers).toBe(5);
    expect(backup.manifest.marks.checkpoints.map((c) => c.id)).toContain(kafkaCheckpointId(topic));
    await expect(runBackupAgainAtSameInstant(backup.manifest.taken_at)).rejects.toThrow(/never overwrites/);

    // After the backup: an onboarding, an erasure, a card, a second recovery.
    const onboarded = await onboard(api);
    expect(onboarded).toMatchObject({ status: 200 });
    const newcomer = onboarded.json.customer_id as string;
    await mergeCustomers(graph, {
      merge_id: `drill-merge-${randomUUID()}`,
      survivor_id: erased.customerId,
      merged_id: mergedAway.customerId,
      decided_by: 'ops',
      requested_by: null,
      reason: 'the same person (drill)',
    });
    expect((await call(api, 'DELETE', `/api/v1/customers/${erased.customerId}`)).status).toBe(202);
    const erasure = (await client.workflow.getHandle(erasureWorkflowId(erased.customerId)).result()) as ErasureOutcome;
    expect(erasure.erased_records).toEqual([erased.customerId, mergedAway.customerId]);
    // The wallet finds the customer's running recoveries through visibility: until it lists this one.
    await until(async () => {
      const query = `WorkflowId = '${recoveryWorkflowId(before)}' AND ExecutionStatus = 'Running'`;
      for await (const _ of client.workflow.list({ query })) return true;
      return false;
    });
    const card = await call(api, 'POST', `/api/v1/customers/${kept.customerId}/payment-methods`, {
      type: 'card',
      token: 'tok_decline_insufficient_funds_c',
      brand: 'visa',
      last_four: '4000',
      expiry_month: 1,
      expiry_year: 2036,
    });
    // Offered to the customer's recovery in dunning, which charges it; nobody waits: 202, pending.
    expect(card).toMatchObject({ status: 202, json: { recoveries: [{ outcome: 'pending' }] } });
    const after = await reportFailure(api, kept.customerId, kept.cards[1] as string);
    const recoveredAfter = await recoveredOnSecondCard(api, payer, 700);
    // A charge of the good card that goes through at the gateway with its answer lost; every request
    // of its key after that fails before the gateway while the drill holds them: its outcome stays
    // unknown to the recovery.
    const lostAnswer = paymentId();
    let lostAnswerRequests = 0;
    chargeFault = (req) => {
      if (req.reference !== lostAnswer || !req.idempotency_key.includes(unanswered.cards[1] as string)) return null;
      lostAnswerRequests += 1;
      return lostAnswerRequests === 1 ? { kind: 'lose_answer' } : { kind: 'fail_before' };
    };
    const lostReport = await call(api, 'POST', '/api/v1/payment-failures', {
      ...reportedAgain(lostAnswer, unanswered),
      payment_id: lostAnswer,
      payment_method_id: unanswered.cards[0],
      replaces: undefined,
    });
    // The whole answer, so that a refusal says which field and why.
    expect(lostReport).toMatchObject({ status: 202, json: { workflow_id: expect.any(String) } });
    await until(async () => lostAnswerRequests >= 2, 60_000);
    // An onboarding still running at the restore, its memo encrypted under a history key made
    // after the backup (the api keeps the request's hash there): listed, and terminated.
    const pendingOnboarding = onboardingWorkflowId(`drill-${randomUUID()}`);
    await client.workflow.start('onboardingWorkflow', {
      taskQueue: `nobody-${run}`,
      workflowId: pendingOnboarding,
      args: [],
      memo: { request_sha256: 'a hash' },
    });
    await allPublished();
    const beforeRestore = await logEvents();
    const publishedBefore = received.length;

    // The api and the worker stop; the graph is restored.
    await Promise.all([stopProcess(api), stopProcess(worker)]);
    // Released: from here on, a charge of that payment would go through, and show.
    chargeFault = () => null;
    const restored = await runRestore(config, store(), backup.file, log, { requested: RESTORE_REQUEST });
    const { report } = restored;
    // Like the api and worker, this test's own driver must be a new one: the old one's bookmarks
    // name transactions the restored store never had.
    await connection.close();
    await graph.close();
    await openClients();

    // The erased customer stays erased, and so does the record merged into it after the backup
    // (which the backup holds as an active customer); the keys of their histories are destroyed again.
    expect(report.erasures_reapplied).toEqual([erased.customerId, mergedAway.customerId]);
    const [away] = await graph.query<{ status: string; facts: number }>(
      `MATCH (c:Customer {id: $id})
       RETURN c.status AS status, COUNT { (c)-[:HAS_PAYMENT_METHOD|HAS_IDENTIFIER|HAS_HISTORY_KEY]->() } AS facts`,
      { id: mergedAway.customerId },
    );
    expect(away).toEqual({ status: 'erased', facts: 0 });
    // Two keys: the erased customer's (its recovery), and the merged record's, which the publisher made
    // to seal its events on the topic before the backup (graph/eventCipher.ts) — both back with the
    // restored graph, both destroyed again, so neither's messages on the topic read again.
    expect(report.history_keys_destroyed).toBe(2);
    await expect(client.workflow.getHandle(recoveryWorkflowId(erasedPayment)).result()).rejects.toThrow(
      /history key .* is gone/,
    );
    const [customer] = await graph.query<{ status: string; keys: number }>(
      `MATCH (c:Customer {id: $id})
       RETURN c.status AS status, COUNT { (c)-[:HAS_HISTORY_KEY]->(k:HistoryKey) WHERE k.wrapped IS NOT NULL } AS keys`,
      { id: erased.customerId },
    );
    expect(customer).toEqual({ status: 'erased', keys: 0 });
    expect(
      await graph.query('MATCH (:Customer {id: $id})-[:HAS_PAYMENT_METHOD|HAS_IDENTIFIER]->(n) RETURN n', {
        id: erased.customerId,
      }),
    ).toEqual([]);
    // What came after the backup and was not an erasure is gone (the recovery point).
    expect(await graph.query('MATCH (c:Customer {id: $id}) RETURN c.id', { id: newcomer })).toEqual([]);

    // A new epoch: the restore's events carry it, and no (epoch, customer, sequence) is given twice.
    expect(report.epoch).toBeGreaterThan(report.previous_epoch);
    expect(report.previous_epoch).toBe(0);
    const restoredLog = await logEvents();
    const graphRestored = restoredLog.find((e) => e.type === 'GraphRestored');
    expect(graphRestored).toMatchObject({ customer_id: null, epoch: report.epoch });
    // Who restored on the event; why, on the event log's node only (an event goes out whole on the feed).
    const [stored] = await graph.query<{ p: string; by: string; reason: string }>(
      `MATCH (e:Event {type: 'GraphRestored'}) WHERE e.epoch = $epoch MATCH (l:EventLog)
       RETURN e.payload AS p, l.restored_by AS by, l.restore_reason AS reason`,
      { epoch: report.epoch },
    );
    expect(JSON.parse(stored?.p ?? '{}')).toMatchObject({ requested_by: RESTORE_REQUEST.by });
    expect(stored?.p).not.toContain(RESTORE_REQUEST.reason);
    expect({ by: stored?.by, reason: stored?.reason }).toEqual(RESTORE_REQUEST);

    // The recoveries from after the backup ran against a graph that never saw them: terminated, said why.
    expect(report.workflows.map((w) => [w.workflow_id, w.action]).sort()).toEqual(
      [
        [recoveryWorkflowId(after), 'terminated'],
        [recoveryWorkflowId(lostAnswer), 'terminated'],
        [pendingOnboarding, 'terminated'],
      ].sort(),
    );
    expect(await workflowStatus(recoveryWorkflowId(after))).toBe('TERMINATED');
    expect(await workflowStatus(recoveryWorkflowId(before))).toBe('RUNNING');
    // Written back into the charge ledger, which lost them with the graph (and with the one that
    // ended after the backup): recovering, and no workflow runs them.
    expect([...report.recoveries_written_back].sort()).toEqual([after, lostAnswer, recoveredAfter].sort());
    // With its customer and start; and, its history being under a key the backup holds (the customer's:
    // the publisher sealed their events with it), what it was reported with. Its attempts are lost.
    const writtenBack = await readRecoveryLedger(graph, lostAnswer);
    expect(writtenBack).toMatchObject({
      recovery: {
        state: 'recovering',
        customer_id: unanswered.customerId,
        payment_method_id: unanswered.cards[0],
        amount: 1500,
        currency: 'EUR',
        reason: expect.stringContaining(`terminated by the restore: it started after backup ${backup.manifest.id}`),
      },
      attempts: [],
    });
    expect(writtenBack?.recovery.started_at).not.toBeNull();
    expect((await readRecoveryLedger(graph, after))?.recovery).toMatchObject({
      state: 'recovering',
      customer_id: kept.customerId,
      payment_method_id: kept.cards[1],
      amount: 1500,
      currency: 'EUR',
    });
    // Reported again under a new id before anything settled it: no verdict yet, nothing written.
    const replacingLost = reportedAgain(lostAnswer, unanswered);
    await expect(reserveRecovery(graph, replacingLost)).rejects.toThrow(
      `payment ${lostAnswer}'s recovery has no verdict yet`,
    );
    expect(await readRecoveryLedger(graph, replacingLost.payment_id)).toBeNull();

    // The third recovery's PaymentRecovered was lost with the graph (it came after the backup).
    const recoveredEvents = () =>
      graph.query<{ customer_id: string; epoch: number }>(
        "MATCH (f:Fact {key: 'recovered:' + $id}) RETURN f.customer_id AS customer_id, f.epoch AS epoch",
        { id: recoveredAfter },
      );
    expect(await recoveredEvents()).toEqual([]);
    expect(report.gateway_reconciliation).toMatch(/^persona-gateway-reconciliation-restore-/);

    // The api and the worker serve again; the publisher goes on from its restored checkpoint.
    ({ api, worker } = await serve());
    // The reconciliation the restore started runs now: the lost charge is recorded again, and the
    // erased customer's recovery (its records emptied) is not disputed.
    const reconciled = (await client.workflow
      .getHandle(report.gateway_reconciliation ?? '')
      .result()) as GatewayReconciliationProgress;
    // The lost answer's charge too, onto the recovery the restore wrote back; the second recovery,
    // which charged nothing, is flagged stranded until ops settle it.
    expect(reconciled.repairs.map((r) => [r.kind, r.customer_id, r.payment_id, r.payment_method_id]).sort()).toEqual(
      [
        ['recovery_recorded', payer.customerId, recoveredAfter, payer.cards[1]],
        ['recovery_recorded', unanswered.customerId, lostAnswer, unanswered.cards[1]],
      ].sort(),
    );
    expect(reconciled.flags).toEqual([
      expect.objectContaining({ kind: 'stranded_recovery', customer_id: kept.customerId, payment_id: after }),
    ]);
    expect(reconciled.counts.matched).toBe(1);
    expect(await recoveredEvents()).toEqual([{ customer_id: payer.customerId, epoch: report.epoch }]);
    const [lostCharge, ...more] = (await chargesOf(lostAnswer)).filter((c) => c.status === 'succeeded');
    expect(more).toEqual([]);
    expect((await readRecoveryLedger(graph, lostAnswer))?.recovery).toMatchObject({
      state: 'recovered',
      charge_id: lostCharge?.id,
      recovered_with: unanswered.cards[1],
    });
    // The payment was collected: reported again, it is refused naming the charge, and nothing is charged.
    const collected = await call(api, 'POST', '/api/v1/payment-failures', replacingLost);
    expect(collected).toMatchObject({
      status: 409,
      json: { field: 'replaces', detail: expect.stringContaining(`recovered by charge ${lostCharge?.id}`) },
    });
    expect(await chargesOf(replacingLost.payment_id)).toEqual([]);
    expect((await chargesOf(lostAnswer)).filter((c) => c.status === 'succeeded')).toEqual([lostCharge]);

    // The second recovery charged nothing: settled stopped with the gateway, then replaced.
    const settled = await settleStrandedRecoveries(
      {
        graph,
        gateway: new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, config.PERSONA_GATEWAY_TIMEOUT_MS),
        temporal: client,
        settleMs: 1_000,
        profileRules: profileRules(config),
      },
      { paymentIds: [after], requested: { by: 'ops-restore-test', reason: 'written back by the restore' } },
    );
    expect(settled).toMatchObject({ stopped: [after], recovered: [], unknown: [], running: [] });
    const replacingAfter = reportedAgain(after, kept);
    expect(await call(api, 'POST', '/api/v1/payment-failures', replacingAfter)).toMatchObject({
      status: 202,
      json: { workflow_id: recoveryWorkflowId(replacingAfter.payment_id) },
    });
    const replacement = client.workflow.getHandle(recoveryWorkflowId(replacingAfter.payment_id));
    await until(async () => (await replacement.query<RecoveryStatus>(recoveryStatusQuery)).state === 'dunning', 60_000);
    expect((await readRecoveryLedger(graph, after))?.recovery).toMatchObject({
      state: 'stopped',
      replaced_by: replacingAfter.payment_id,
    });
    expect(
      ((await call(api, 'GET', `/api/v1/customers/${kept.customerId}/context`)).json as { customer_id?: string })
        .customer_id,
    ).toBe(kept.customerId);
    const again = await onboard(api);
    expect(again).toMatchObject({ status: 200 });
    await allPublished();
    expect(
      (await client.workflow.getHandle(recoveryWorkflowId(before)).query<RecoveryStatus>(recoveryStatusQuery)).state,
    ).toBe('dunning');

    const published = received.map((m) => JSON.parse(m.value) as PersonaEvent);
    // Nothing of the restored log is missing from the topic (allPublished, above).
    // A message sent twice is the same event, byte for byte (consumers drop it by its event-id).
    const byId = new Map<string, string>();
    for (const m of received) {
      const id = m.headers.get(KAFKA_HEADERS.eventId) as string;
      if (byId.has(id)) expect(m.value).toBe(byId.get(id));
      byId.set(id, m.value);
    }
    // No (epoch, customer, sequence) names two events.
    const seqs = new Map<string, string>();
    for (const e of published) {
      if (e.customer_seq === null) continue;
      const k = `${e.epoch}/${e.customer_id}/${e.customer_seq}`;
      expect(seqs.get(k) ?? e.id, `${k} names one event`).toBe(e.id);
      seqs.set(k, e.id);
    }
    // The events lost with the graph were published before the restore, in the old epoch; what
    // the restore and everything after it wrote is in the new one.
    const lost = beforeRestore.filter((e) => !restoredLog.some((r) => r.id === e.id));
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.every((e) => e.epoch === 0)).toBe(true);
    const newEvents = published.slice(publishedBefore).filter((e) => !beforeRestore.some((b) => b.id === e.id));
    expect(newEvents.map((e) => e.type)).toEqual(expect.arrayContaining(['CustomerErased', 'GraphRestored']));
    // GraphRestored says which recoveries the restore wrote back into the charge ledger.
    const restoredEvent = newEvents.find((e) => e.type === 'GraphRestored');
    expect(
      [...((restoredEvent?.payload as { recoveries_written_back?: string[] }).recoveries_written_back ?? [])].sort(),
    ).toEqual([...report.recoveries_written_back].sort());
    expect(JSON.stringify(restoredEvent?.payload)).not.toContain(RESTORE_REQUEST.reason);
    expect(newEvents.every((e) => e.epoch === report.epoch)).toBe(true);
    // The store the restore replaced is kept beside it, named in its answer.
    expect(restored.replaced).not.toBeNull();
    expect(readdirSync(path.join(neo4j.dir, 'home')).some((f) => f.startsWith('data.replaced-'))).toBe(true);
  }, 600_000);

  it('refuses an archive whose checksum does not match, and changes nothing', async () => {
    // A well-formed gzip'd tar (so that only the checksum can tell), changed since its .sha256 was written.
    const dir = path.join(config.PERSONA_BACKUP_DIR, 'archives');
    mkdirSync(dir, { recursive: true });
    const content = mkdtempSync(path.join(os.tmpdir(), 'persona-tampered-'));
    writeFileSync(path.join(content, 'manifest.json'), '{"tampered":true}');
    const corrupt = path.join(dir, `persona-backup-tampered-${randomUUID().slice(0, 8)}.tar.gz`);
    execFileSync('tar', ['-czf', corrupt, '-C', content, '.']);
    rmSync(content, { recursive: true, force: true });
    writeFileSync(`${corrupt}.sha256`, `${'0'.repeat(64)}  ${path.basename(corrupt)}\n`);
    const epoch = async () => (await graph.query<{ e: number }>('MATCH (l:EventLog) RETURN l.epoch AS e'))[0]?.e;
    const was = await epoch();
    try {
      // Never without a reason, whatever the archive;
      await expect(
        runRestore(config, store(), corrupt, log, { requested: { by: 'ops', reason: ' ' } }),
      ).rejects.toThrow(/reason/);
      // and never an archive that is not the one the backup wrote.
      await expect(runRestore(config, store(), corrupt, log, { requested: RESTORE_REQUEST })).rejects.toThrow(
        /does not match its checksum/,
      );
      expect(await epoch()).toBe(was);
    } finally {
      rmSync(corrupt, { force: true });
      rmSync(`${corrupt}.sha256`, { force: true });
    }
  }, 120_000);

  it('refuses an archive older than the erasure deadline, whatever flag is passed', () => {
    expect(() => archiveWithinDeadline(config, new Date(Date.now() - 31 * 86_400_000).toISOString())).toThrow(
      /more than PERSONA_BACKUP_MAX_AGE_DAYS \(30\) days ago/,
    );
    expect(() => archiveWithinDeadline(config, new Date().toISOString())).not.toThrow();
    // A taken_at that does not parse, or one from the future, passes no check by being NaN or negative.
    for (const takenAt of ['yesterday', '', new Date(Date.now() + 3 * 86_400_000).toISOString()])
      expect(() => archiveWithinDeadline(config, takenAt)).toThrow(/not a time it could have been taken at/);
  });

  it("refuses a backup older than Temporal's record of erasures (customers erased since would come back)", async () => {
    await expect(erasureLedgerReaches(config, '2001-01-01T00:00:00Z')).rejects.toThrow(
      /longer ago than Temporal keeps its record of erasures/,
    );
    await expect(erasureLedgerReaches(config, new Date().toISOString())).resolves.toBeUndefined();
  });
});

/** A second backup named like the first: refused before anything is stopped or written. */
async function runBackupAgainAtSameInstant(takenAt: string): Promise<void> {
  const { backupGraph } = await import('../../backup/backup');
  const driver = createDriver(config);
  try {
    await backupGraph({
      store: store(),
      driver,
      database: config.NEO4J_DATABASE,
      dir: config.PERSONA_BACKUP_DIR,
      keep: 7,
      log,
      now: () => new Date(takenAt),
    });
  } finally {
    await driver.close();
  }
}
