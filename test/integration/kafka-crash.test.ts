/**
 * The real worker process is SIGKILLed while the Kafka publisher is in the middle of a backlog
 * (its activity publishing page after page); a new worker process takes the activity over once
 * its heartbeat times out and goes on from the graph checkpoint. Every customer's events reach
 * the topic in order, each once after de-duplication by the `event-id` header.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics, KAFKA_HEADERS } from '../../clients/kafka';
import { loadSettings } from '../../config/env';
import { addPaymentMethod, createCustomer, listCustomerEvents } from '../../graph';
import type { PersonaEvent } from '../../graph/events';
import { adoptRelayState } from '../../graph/relay';
import { connectTemporal } from '../../temporal/connection';
import { kafkaCheckpointId, KAFKA_PUBLISHER_WORKFLOW_TYPE } from '../../temporal/kafkaPublisher';
import { cardInput, feedCursorAtNow, openTestGraph, type TestGraph, testPayloadCodec } from '../support/graph';
import { noticeDeadWorkerIn, startWorkerProcess, type RunningProcess } from '../support/processes';
import { until } from '../support/wait';
import { taskQueueFor, taskQueuesOf } from '../../temporal/taskQueues';
import { localKafkaBrokers } from '../../stack/install';
import { readTopic, type Msg } from '../support/kafka';

const settings = loadSettings();
const brokers = localKafkaBrokers(settings).join(',');
const replication = Math.min(3, settings.PERSONA_KAFKA_NODES);
const run = randomUUID().slice(0, 8);
const topic = `test.${run}.crash.persona.events`;
const taskQueue = `kafka-crash-${run}`;
let graph: TestGraph;
let connection: Connection;
let client: Client;
const workers: RunningProcess[] = [];

async function startWorker(): Promise<RunningProcess> {
  const proc = await startWorkerProcess({
    TEMPORAL_TASK_QUEUE: taskQueue,
    KAFKA_BROKERS: brokers,
    PERSONA_KAFKA_REPLICATION: String(replication),
    PERSONA_KAFKA_EVENTS_TOPIC: topic,
  });
  workers.push(proc);
  return proc;
}

beforeAll(async () => {
  graph = openTestGraph();
  ({ connection, client } = await connectTemporal(loadSettings(), { payloadCodec: testPayloadCodec(graph) }));
  await ensureTopics({ ...settings, kafkaBrokers: brokers.split(','), PERSONA_KAFKA_REPLICATION: replication }, [
    { name: topic, partitions: 3 },
  ]);
});
afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await connection?.close();
  await graph?.close();
});

describe('a worker killed while the Kafka publisher works through a backlog', () => {
  it("publishes every customer's events in order, each once after de-duplication, on the next worker", async () => {
    await adoptRelayState(graph, kafkaCheckpointId(topic), {
      cursor: await feedCursorAtNow(graph),
      delivered: 0,
      parked: [],
    });
    const customers = await Promise.all(
      [0, 1, 2].map(async () => {
        const c = await createCustomer(graph, { segment: 'KafkaCrash' });
        for (let i = 0; i < 40; i++) await addPaymentMethod(graph, c.id, cardInput());
        return c.id;
      }),
    );
    const logged = new Map<string, string[]>();
    for (const id of customers)
      logged.set(
        id,
        (await listCustomerEvents(graph, id, { limit: 200 }))
          .sort((a, b) => (a.customer_seq ?? 0) - (b.customer_seq ?? 0))
          .map((e) => e.id),
      );
    const expected = [...logged.values()].flat();

    const received: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: brokers.split(',') }, topic, received);
    try {
      const first = await startWorker();
      const handle = await client.workflow.start(KAFKA_PUBLISHER_WORKFLOW_TYPE, {
        taskQueue: taskQueueFor(taskQueuesOf(taskQueue), KAFKA_PUBLISHER_WORKFLOW_TYPE),
        workflowId: `test-kafka-crash-${run}`,
        // One event a page: a long stretch of pages, one activity publishing them all.
        args: [{ topic, page_size: 1, budget_ms: 120_000, poll_interval: '1 second', batches_per_run: 5 }],
      });
      // Kill the worker once part of the backlog is on the topic, in the middle of the activity.
      const deadline = Date.now() + 60_000;
      while (received.length < 20) {
        if (Date.now() > deadline) throw new Error(`nothing reached the topic:\n${first.output()}`);
        await sleep(20);
      }
      first.child.kill('SIGKILL');
      await first.exited;
      await noticeDeadWorkerIn(client, handle.workflowId, 'publishEvents', 3);
      const beforeKill = received.length;
      expect(beforeKill).toBeLessThan(expected.length);

      await startWorker();
      const missing = () => {
        const got = new Set(received.map((m) => m.headers.get(KAFKA_HEADERS.eventId)));
        return expected.filter((id) => !got.has(id));
      };
      // The activity is taken over when its heartbeat times out, then goes on from the checkpoint.
      await until(async () => missing().length === 0, 120_000);
      await handle.terminate('test over');

      const byCustomer = new Map<string, string[]>();
      const seen = new Set<string>();
      for (const m of received) {
        const event = JSON.parse(m.value) as PersonaEvent;
        if (seen.has(event.id)) continue;
        seen.add(event.id);
        byCustomer.set(m.key, [...(byCustomer.get(m.key) ?? []), event.id]);
      }
      for (const id of customers) expect(byCustomer.get(id)).toEqual(logged.get(id));
    } finally {
      await reader.stop();
    }
  }, 240_000);
});
