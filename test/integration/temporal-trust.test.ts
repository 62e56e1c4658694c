/**
 * Temporal as a trust boundary, and configuration that takes.
 *
 * A workflow started straight at Temporal's frontend with a plaintext input (the CLI, another
 * SDK: anything but Persona's own clients) does nothing to any customer: a real worker process
 * refuses the payload, the workflow fails at once, and the worker says so in a log line naming it
 * and on /metrics. An event relay so started with an address of its own sends nothing there: the
 * relay's address is the worker's configuration alone.
 *
 * The running relay takes the settings of the worker that starts after a change, a changed
 * webhook URL takes at the next page (the old endpoint gets nothing more), and an unset one stops it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../config/env';
import { createCustomer } from '../../graph';
import { adoptRelayState } from '../../graph/relay';
import { EVENT_RELAY_WORKFLOW_ID, EVENT_RELAY_WORKFLOW_TYPE, eventRelayStatusQuery } from '../../temporal/eventRelay';
import { ERASURE_WORKFLOW_TYPE } from '../../temporal/erasure';
import { PAYLOAD_REFUSED_TYPE } from '../../temporal/refusedPayload';
import { ensureEventRelay, reconcileEventRelay } from '../../temporal/singletons';
import { startHarness, type Harness } from '../support/api';
import { feedCursorAtNow, openTestGraph, testPayloadCodec, uniqueEmail, type TestGraph } from '../support/graph';
import { metricValue, parseMetrics } from '../support/observability';
import { startWorkerProcess, stopProcess, type WorkerProcess } from '../support/processes';
import { until } from '../support/wait';
import { taskQueueFor, taskQueuesOf } from '../../temporal/taskQueues';

const settings = loadSettings();

/** An HTTP endpoint that records the idempotency key of every POST it gets. */
async function endpoint(): Promise<{ server: Server; url: string; got: string[] }> {
  const got: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      got.push(String(req.headers['idempotency-key']));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`, got };
}

/** A client as anyone with Temporal's address has: no payload codec. */
async function plainClient(): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: settings.TEMPORAL_ADDRESS });
  return { client: new Client({ connection, namespace: settings.TEMPORAL_NAMESPACE }), connection };
}

describe('a workflow started straight at Temporal with a plaintext input', () => {
  let graph: TestGraph;
  let worker: WorkerProcess;
  let plain: Awaited<ReturnType<typeof plainClient>>;
  let attacker: Awaited<ReturnType<typeof endpoint>>;
  const taskQueue = `trust-${randomUUID()}`;
  /** The worker process's queues, one per kind of work. */
  const queues = taskQueuesOf(taskQueue);

  beforeAll(async () => {
    graph = openTestGraph();
    attacker = await endpoint();
    worker = await startWorkerProcess({ TEMPORAL_TASK_QUEUE: taskQueue });
    plain = await plainClient();
  }, 120_000);
  afterAll(async () => {
    if (worker) await stopProcess(worker);
    await plain?.connection.close();
    await new Promise<void>((resolve) => attacker?.server.close(() => resolve()));
    await graph?.close();
  });

  it('erases nobody: the worker refuses the payload, the erasure fails at once, ops see it', async () => {
    const customer = await createCustomer(graph, {
      digital_identifiers: [{ type: 'email', value: uniqueEmail('plain-erasure'), is_verified: true }],
    });
    const workflowId = `erasure-${customer.id}`;
    const handle = await plain.client.workflow.start('erasureWorkflow', {
      workflowId,
      taskQueue: taskQueueFor(queues, ERASURE_WORKFLOW_TYPE),
      args: [{ customer_id: customer.id }],
    });
    const failure = await handle.result().then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe(PAYLOAD_REFUSED_TYPE);
    expect(cause?.message).toMatch(/did not write/);
    // Nothing was scheduled: no activity ran for it.
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
    // The customer is whole.
    const [row] = await graph.query<{ status: string; identifiers: unknown }>(
      'MATCH (c:Customer {id: $id}) ' +
        'RETURN c.status AS status, COUNT { (c)-[:HAS_DIGITAL_IDENTIFIER]->() } AS identifiers',
      { id: customer.id },
    );
    expect(row?.status).toBe('active');
    expect(Number(row?.identifiers)).toBe(1);
    // Ops see it: a log line naming the workflow, and the count on the worker's /metrics.
    await until(async () => worker.output().includes(`refused a payload for workflow ${workflowId}`), 30_000);
    const refused = async () =>
      metricValue(parseMetrics(await (await fetch(`${worker.url}/metrics`)).text()), 'persona_payloads_refused_total', {
        taskQueue: taskQueueFor(queues, ERASURE_WORKFLOW_TYPE),
      });
    await until(async () => ((await refused()) ?? 0) >= 1, 30_000);
    await graph.query('MATCH (c:Customer {id: $id}) DETACH DELETE c', { id: customer.id });
  });

  it("erases nobody with ciphertext copied from another workflow's history either", async () => {
    const customer = await createCustomer(graph, {
      digital_identifiers: [{ type: 'email', value: uniqueEmail('copied-erasure'), is_verified: true }],
    });
    // What an attacker who reads histories finds: the customer's id, encrypted by Persona for
    // another workflow (here, a trusted-device sighting of theirs).
    const [copied] = await testPayloadCodec(graph).encode(
      [defaultPayloadConverter.toPayload({ customer_id: customer.id })],
      { type: 'workflow', namespace: settings.TEMPORAL_NAMESPACE, workflowId: `trusted-device-${customer.id}` },
    );
    const replaying = new Client({
      connection: plain.connection,
      namespace: settings.TEMPORAL_NAMESPACE,
      dataConverter: {
        payloadCodecs: [{ encode: async () => [copied as Payload], decode: async (p: Payload[]) => p }],
      },
    });
    const workflowId = `erasure-${customer.id}`;
    const handle = await replaying.workflow.start('erasureWorkflow', {
      workflowId,
      taskQueue: taskQueueFor(queues, ERASURE_WORKFLOW_TYPE),
      args: [{}],
    });
    const failure = await handle.result().then(
      () => null,
      (err: unknown) => err,
    );
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: PAYLOAD_REFUSED_TYPE });
    expect((failure as WorkflowFailedError).cause?.message).toMatch(/written for workflow trusted-device-/);
    const [row] = await graph.query<{ status: string }>('MATCH (c:Customer {id: $id}) RETURN c.status AS status', {
      id: customer.id,
    });
    expect(row?.status).toBe('active');
    await graph.query('MATCH (c:Customer {id: $id}) DETACH DELETE c', { id: customer.id });
  });

  it('an event relay so started with an address of its own sends nothing there', async () => {
    const handle = await plain.client.workflow.start('eventRelayWorkflow', {
      workflowId: `plain-relay-${randomUUID()}`,
      taskQueue: taskQueueFor(queues, EVENT_RELAY_WORKFLOW_TYPE),
      args: [{ webhook_url: attacker.url, lag_ms: 0, page_size: 1000, poll_interval: '1 second', pages_per_run: 10 }],
    });
    const failure = await handle.result().then(
      () => null,
      (err: unknown) => err,
    );
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: PAYLOAD_REFUSED_TYPE });
    expect(attacker.got).toEqual([]);
  });
});

describe("the running event relay and the worker's configuration", () => {
  let first: Harness | undefined;
  let second: Harness | undefined;
  const [a, b] = [endpoint(), endpoint()];
  const taskQueue = `relay-config-${randomUUID()}`;
  // The relay starts on the deliveries queue of TEMPORAL_TASK_QUEUE (temporal/taskQueues.ts): the
  // harness's one worker polls that.
  const deliveries = taskQueuesOf(taskQueue).deliveries;

  afterAll(async () => {
    await (second ?? first)?.client.workflow
      .getHandle(EVENT_RELAY_WORKFLOW_ID)
      .terminate('test over')
      .catch(() => undefined);
    await first?.close();
    await second?.close();
    for (const e of await Promise.all([a, b])) await new Promise<void>((resolve) => e.server.close(() => resolve()));
  });

  it('takes a new webhook URL at the next page, new settings through the Update, and stops when unset', async () => {
    const [oldEndpoint, newEndpoint] = await Promise.all([a, b]);
    first = await startHarness({ eventsWebhookUrl: oldEndpoint.url, taskQueue: deliveries });
    const { client } = first;
    // The graph of whichever harness runs now (the first one's closes with it).
    const graph = openTestGraph();
    await client.workflow
      .getHandle(EVENT_RELAY_WORKFLOW_ID)
      .terminate('test set-up')
      .catch(() => undefined);
    await graph.query('MATCH (r:RelayCheckpoint {id: $id}) DETACH DELETE r', { id: EVENT_RELAY_WORKFLOW_ID });
    await adoptRelayState(graph, EVENT_RELAY_WORKFLOW_ID, {
      cursor: await feedCursorAtNow(graph),
      delivered: 0,
      parked: [],
    });
    const config = { TEMPORAL_TASK_QUEUE: taskQueue, PERSONA_EVENTS_FEED_LAG_MS: 1000 };
    const created = async (tag: string) =>
      (
        await createCustomer(graph, {
          digital_identifiers: [{ type: 'email', value: uniqueEmail(tag), is_verified: true }],
        })
      ).id;
    const delivered = async (e: { got: string[] }, customerId: string) => {
      const [row] = await graph.query<{ id: string }>(
        "MATCH (e:Event {customer_id: $customerId, type: 'CustomerCreated'}) RETURN e.id AS id",
        { customerId },
      );
      return e.got.includes(row?.id ?? '-');
    };

    // Worker 1 (URL A): the relay starts with its settings and delivers to A.
    expect(await ensureEventRelay(client, { ...config, PERSONA_EVENTS_WEBHOOK_URL: oldEndpoint.url })).toBe('running');
    expect((await reconcileEventRelay(client, config)).changed).toBe(false);
    const before = await created('relay-config-a');
    await until(() => delivered(oldEndpoint, before), 60_000);

    // Worker 2 replaces it with URL B and a longer lag: the running relay takes both.
    await first.close();
    first = undefined;
    second = await startHarness({ eventsWebhookUrl: newEndpoint.url, taskQueue: deliveries });
    const changed = { ...config, PERSONA_EVENTS_FEED_LAG_MS: 1500 };
    expect(await ensureEventRelay(second.client, { ...changed, PERSONA_EVENTS_WEBHOOK_URL: newEndpoint.url })).toBe(
      'running',
    );
    const reconciled = await reconcileEventRelay(second.client, changed);
    expect(reconciled).toMatchObject({ changed: true, before: { lag_ms: 1000 }, now: { lag_ms: 1500 } });
    const relay = second.client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID);
    expect((await relay.query(eventRelayStatusQuery)).settings.lag_ms).toBe(1500);
    const after = await created('relay-config-b');
    await until(() => delivered(newEndpoint, after), 60_000);
    expect(await delivered(oldEndpoint, after)).toBe(false);
    // The status names the subscriber once the page's activity has completed, which can be after
    // the subscriber has the event.
    const newHost = new URL(newEndpoint.url).host;
    await until(async () => (await relay.query(eventRelayStatusQuery)).subscriber === newHost, 60_000);

    // A worker without a URL stops the relay; its checkpoint stays in the graph.
    expect(await ensureEventRelay(second.client, config)).toBe('stopped');
    await until(async () => (await relay.describe()).status.name === 'CANCELLED', 60_000);
    expect(await ensureEventRelay(second.client, config)).toBe('off');
    await graph.close();
  }, 300_000);
});
