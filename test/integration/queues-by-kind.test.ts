import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDepsFromConfig, type ApiDeps } from '../../api/deps';
import { reportPaymentFailure } from '../../api/services/recovery';
import { workerDeploymentVersion, type Config } from '../../config/env';
import { createLogger } from '../../runtime/logger';
import { RequestContext } from '../../runtime/requestContext';
import { connectTemporal } from '../../temporal/connection';
import { INTERACTION_PRUNE_WORKFLOW_TYPE } from '../../temporal/interactionPrune';
import { payloadCodecFromConfig } from '../../temporal/payloadCodec';
import { recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { polledTaskQueues, taskQueueFor, taskQueuesOf } from '../../temporal/taskQueues';
import { nativeConnectionOptions } from '../../temporal/transport';
import { promote } from '../../temporal/workerDeployment';
import { WORKFLOWS_PATH } from '../../workers/bundle';
import { workerInterceptors } from '../../workers/logging';
import { createWorkerSet, type WorkerSet } from '../../workers/workerSet';
import { harnessActivities } from '../support/api';
import { openTestGraph, type TestGraph, testPayloadCodec } from '../support/graph';
import { testDeploymentName } from '../support/processes';
import { customerWithCards, paymentId, simulatorCharges } from '../support/recovery';
import { until } from '../support/wait';
import { openProcessSinks } from '../../workers/openProcesses';

/**
 * A bulk backlog does not delay a charge. The worker set is built by the same function the worker
 * process uses (workers/workerSet.ts: one Worker per kind on its kind's queue, with its own slots,
 * one deployment version, promoted as a deploy would), with the real activities, except that the
 * interaction-id prune's activity blocks until the test releases it. Bulk gets two activity slots;
 * six prunes fill both and leave four waiting behind them. Then a payment recovery (its first card
 * soft-declines, its second succeeds) must charge the gateway and complete while every prune is
 * still blocked: a condition, checked after the recovery finished, not a timing.
 *
 * On the single-queue wiring this test would fail: there, every workflow and activity shared one
 * Worker and one pool of activity slots, so prunes holding every slot (50 of them then, two here)
 * would leave the recovery's activities (its graph reads, then the charge) scheduled with no slot to
 * run in until a prune was released; the recovery could not finish, and the test would time out.
 * (Checked: built with PERSONA_WORKER_KINDS=bulk and the api's starts all on the bulk queue, one
 * Worker with two slots for everything, the recovery never finishes and the test times out.)
 */
const base = `queues-${randomUUID()}`;
const queues = taskQueuesOf(base);
const BULK_SLOTS = 2;
const PRUNES = 6;

let graph: TestGraph;
let connection: Connection;
let client: Client;
let nativeConnection: NativeConnection;
let workers: WorkerSet;
let running: Promise<void>;
let deps: ApiDeps;
/** Prune activities in flight (holding a bulk slot), and the gate that releases them. */
let blocked = 0;
let release: () => void = () => undefined;
const released = new Promise<void>((resolve) => (release = resolve));
const prunes: WorkflowHandle[] = [];

beforeAll(async () => {
  graph = openTestGraph();
  const requests = new RequestContext();
  ({ connection, client } = await connectTemporal(graph.config, {
    requestId: () => requests.requestId,
    payloadCodec: testPayloadCodec(graph),
  }));
  // This worker's configuration: the queues named from its own base, bulk given two activity slots.
  const config: Config = {
    ...graph.config,
    TEMPORAL_TASK_QUEUE: base,
    PERSONA_DEPLOYMENT_NAME: testDeploymentName(),
    PERSONA_WORKER_SLOTS_BULK: { activities: BULK_SLOTS, workflowTasks: 2 },
  };
  nativeConnection = await NativeConnection.connect(nativeConnectionOptions(config));
  workers = await createWorkerSet(config, {
    connection: nativeConnection,
    workflowCode: { workflowsPath: WORKFLOWS_PATH },
    traced: false,
    interceptors: workerInterceptors(requests),
    sinks: openProcessSinks(graph, () => undefined),
    plugins: [],
    payloadCodec: () => payloadCodecFromConfig(graph.config, graph, 'all').marking(),
    activities: harnessActivities(graph, client, {
      wrapActivities: (real) => ({
        ...real,
        // Slow bulk work: holds its slot, heartbeating, until the test releases it.
        pruneInteractionClaims: async (req) => {
          blocked++;
          const beat = setInterval(() => Context.current().heartbeat(), 1000);
          try {
            await released;
          } finally {
            clearInterval(beat);
            blocked--;
          }
          return real.pruneInteractionClaims(req);
        },
      }),
    }),
  });
  running = workers.run();
  // As a deploy does: the version takes tasks once current, after its workers polled every queue.
  const version = workerDeploymentVersion(config);
  await promote(
    connection.workflowService,
    { namespace: config.TEMPORAL_NAMESPACE, deploymentName: version.deploymentName, identity: 'test' },
    version.buildId,
    { taskQueues: polledTaskQueues(config), timeoutMs: 90_000 },
  );
  deps = apiDepsFromConfig(config, {
    logger: createLogger('queues-test', 'silent'),
    readiness: [],
    graph,
    client,
    requests,
  });
});

afterAll(async () => {
  release();
  for (const p of prunes) await p.terminate('test over').catch(() => undefined);
  if (workers) {
    workers.shutdown();
    await running;
  }
  await nativeConnection?.close();
  await connection?.close();
  await graph?.close();
});

describe('task queues by kind of work', () => {
  it('runs one Worker per kind, each on its own queue with its own slots', () => {
    expect(workers.workers.map((w) => [w.kind, w.taskQueue])).toEqual([
      ['charges', queues.charges],
      ['interactive', queues.interactive],
      ['bulk', queues.bulk],
      ['deliveries', queues.deliveries],
    ]);
    expect(workers.notRunning()).toEqual([]);
  });

  it('charges a failed payment and completes its recovery while a bulk backlog holds every bulk slot', async () => {
    // The backlog: six prunes (keeping a century of ids: nothing of anyone's goes) on the bulk queue.
    for (let i = 0; i < PRUNES; i++)
      prunes.push(
        await client.workflow.start(INTERACTION_PRUNE_WORKFLOW_TYPE, {
          taskQueue: taskQueueFor(deps.temporal.taskQueues, INTERACTION_PRUNE_WORKFLOW_TYPE),
          workflowId: `${base}-prune-${i}`,
          args: [{ window_hours: 24 * 36_500, batch_size: 100 }],
        }),
      );
    // Both bulk slots are taken; the other four prunes wait for one.
    await until(async () => blocked === BULK_SLOTS, 60_000);

    const { customerId, cards } = await customerWithCards(graph, [
      'tok_decline_insufficient_funds_9',
      `tok_visa_${randomUUID()}`,
    ]);
    const payment = paymentId();
    await reportPaymentFailure(deps, {
      payment_id: payment,
      customer_id: customerId,
      payment_method_id: cards[0] as string,
      amount: 2500,
      currency: 'EUR',
      decline_code: 'insufficient_funds',
    });
    const recovery = client.workflow.getHandle(recoveryWorkflowId(payment));
    expect((await recovery.describe()).taskQueue).toBe(queues.charges);
    const result = (await recovery.result()) as RecoveryStatus;
    expect(result).toMatchObject({ state: 'recovered', recovered_with: cards[1] });
    const charges = await simulatorCharges(graph.config.PERSONA_GATEWAY_URL, customerId);
    expect(charges.filter((c) => c.status === 'succeeded')).toMatchObject([
      { idempotency_key: `${payment}:${cards[1]}`, amount: 2500 },
    ]);

    // The backlog was there the whole time: still both slots held, and no prune finished.
    expect(blocked).toBe(BULK_SLOTS);
    const states = await Promise.all(prunes.map(async (p) => (await p.describe()).status.name));
    expect(states).toEqual(Array(PRUNES).fill('RUNNING'));

    // Released, the backlog drains through the bulk slots.
    release();
    for (const p of prunes) expect(await p.result()).toMatchObject({ deleted: expect.any(Number) });
  });
});
