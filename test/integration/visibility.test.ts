import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../config/env';
import { connectTemporal } from '../../temporal/connection';
import { customerWorkflowsQuery, personaCustomerId } from '../../temporal/searchAttributes';
import { createFixtureActivities } from '../fixtures/activities';
import { sleepThenWake } from '../fixtures/workflows';
import { nativeConnectionOptions } from '../../temporal/transport';

const settings = loadSettings();
let connection: Connection;
let client: Client;

beforeAll(async () => {
  ({ connection, client } = await connectTemporal(settings));
});
afterAll(() => connection?.close());

async function listIds(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

describe('the local Temporal dev server', () => {
  it('runs a workflow on a real worker and finds it by PersonaCustomerId', async () => {
    const customerId = randomUUID();
    const taskQueue = `visibility-${randomUUID()}`;
    const calls: string[] = [];
    const nativeConnection = await NativeConnection.connect(nativeConnectionOptions(settings));
    try {
      const worker = await Worker.create({
        connection: nativeConnection,
        namespace: settings.TEMPORAL_NAMESPACE,
        taskQueue,
        workflowsPath: fileURLToPath(new URL('../fixtures/workflows.ts', import.meta.url)),
        activities: createFixtureActivities(calls),
      });
      const workflowId = `visibility-${customerId}`;
      const result = await worker.runUntil(
        client.workflow.execute(sleepThenWake, {
          args: [0],
          taskQueue,
          workflowId,
          typedSearchAttributes: [{ key: personaCustomerId, value: customerId }],
        }),
      );
      expect(result.note).toBe(`woke ${workflowId}`);

      // Visibility is eventually consistent: poll briefly until the index has the workflow.
      let found: string[] = [];
      for (let i = 0; i < 40 && found.length === 0; i++) {
        found = await listIds(customerWorkflowsQuery(customerId));
        if (found.length === 0) await sleep(250);
      }
      expect(found).toEqual([workflowId]);
      expect(await listIds(customerWorkflowsQuery(randomUUID()))).toEqual([]);

      const described = await client.workflow.getHandle(workflowId).describe();
      expect(described.typedSearchAttributes.get(personaCustomerId)).toBe(customerId);
    } finally {
      await nativeConnection.close();
    }
  });
});
