/**
 * The real worker process is SIGKILLed while an expiry scan's warnings are in flight at the
 * notification webhook; a new worker process retries the batch. Every card is warned once: the
 * webhook sees one key per card (a resend carries the same key, so the receiver drops it), and
 * the graph holds exactly one CustomerNotified per card.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../config/env';
import { connectTemporal } from '../../temporal/connection';
import { EXPIRY_SCAN_WORKFLOW_TYPE, type ExpiryScanProgress } from '../../temporal/expiry';
import { expiryEvents, holderOfCard } from '../support/expiry';
import { openTestGraph, type TestGraph, testPayloadCodec } from '../support/graph';
import { noticeDeadWorkerIn, startWorkerProcess, type RunningProcess } from '../support/processes';
import { taskQueueFor, taskQueuesOf } from '../../temporal/taskQueues';

const AS_OF = '2008-06-30'; // June 2008 cards end today: the 7-day warning
let graph: TestGraph;
let connection: Connection;
let client: Client;
let receiver: Server;
let webhookUrl: string;
let delayMs = 4000;
const requests: { key: string; customer_id: string }[] = [];
const taskQueue = `expiry-crash-${randomUUID()}`;
const workers: RunningProcess[] = [];

async function startWorker(): Promise<RunningProcess> {
  const proc = await startWorkerProcess({ TEMPORAL_TASK_QUEUE: taskQueue, PERSONA_NOTIFY_WEBHOOK_URL: webhookUrl });
  workers.push(proc);
  return proc;
}

beforeAll(async () => {
  graph = openTestGraph();
  ({ connection, client } = await connectTemporal(loadSettings(), { payloadCodec: testPayloadCodec(graph) }));
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const n = JSON.parse(body) as { customer_id: string };
      requests.push({ key: String(req.headers['idempotency-key']), customer_id: n.customer_id });
      setTimeout(() => res.writeHead(204).end(), delayMs);
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notify`;
});
afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  await connection?.close();
  await graph?.close();
});

describe('a worker killed while expiry warnings are in flight', () => {
  it('warns every card once, and the scan completes on the next worker', async () => {
    const holders = await Promise.all(Array.from({ length: 6 }, () => holderOfCard(graph, 2008, 6)));
    const ours = new Set(holders.map((h) => h.customerId));
    const first = await startWorker();

    const handle = await client.workflow.start(EXPIRY_SCAN_WORKFLOW_TYPE, {
      workflowId: `expiry-scan-crash-${randomUUID()}`,
      taskQueue: taskQueueFor(taskQueuesOf(taskQueue), EXPIRY_SCAN_WORKFLOW_TYPE),
      args: [{ as_of: AS_OF, time_zone: 'UTC', batch_size: 50, batches_per_run: 100, lanes: 1 }],
    });
    // Wait until the webhook holds some of our warnings, then kill the worker that sent them.
    const deadline = Date.now() + 30_000;
    while (!requests.some((r) => ours.has(r.customer_id))) {
      if (Date.now() > deadline) throw new Error(`no warning reached the webhook:\n${first.output()}`);
      await sleep(100);
    }
    first.child.kill('SIGKILL');
    await first.exited;
    await noticeDeadWorkerIn(client, handle.workflowId, 'scanExpiryBatch', 3);
    const beforeRetry = requests.filter((r) => ours.has(r.customer_id)).length;
    delayMs = 0;

    await startWorker();
    const progress = (await handle.result()) as ExpiryScanProgress;
    expect(progress.state).toBe('done');

    const ourRequests = requests.filter((r) => ours.has(r.customer_id));
    expect(beforeRetry).toBeGreaterThan(0);
    // One key per card; a warning the dead worker had sent is resent only with its own key.
    expect(new Set(ourRequests.map((r) => r.key)).size).toBe(6);
    expect(new Set(ourRequests.map((r) => r.customer_id)).size).toBe(6);
    const events = (await expiryEvents(graph, holders)).filter((e) => e.type === 'CustomerNotified');
    expect(events).toHaveLength(6);
    expect(events.every((e) => e.payload.stage_days === 7 && e.payload.channel === 'email')).toBe(true);
  });
});
