import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, loadSettings } from '../../config/env';
import { createDriver, createGraph, createCustomer, getCustomer } from '../../graph';
import { localKafkaNodes } from '../../stack/install';
import { stackDown, stackStatus, stackUp } from '../../stack/services';
import { connectTemporal, describeNamespace } from '../../temporal/connection';
import { customerWorkflowsQuery, personaCustomerId, requiredSearchAttributes } from '../../temporal/searchAttributes';

const settings = loadSettings();
const quiet = (): void => undefined;

describe('the local stack', () => {
  it('reports Neo4j (Bolt RETURN 1), Temporal (namespace, UI), Kafka and the gateway answering', async () => {
    const statuses = await stackStatus(settings);
    const kafka = localKafkaNodes(settings).map((n) => [n.name, true]);
    expect(statuses.map((s) => [s.name, s.answering])).toEqual([
      ['neo4j', true],
      ['temporal', true],
      ...kafka,
      ['gateway', true],
    ]);
    const ui = await fetch(settings.TEMPORAL_UI_URL);
    expect(ui.status).toBe(200);
  });

  it("has Persona's search attributes registered as Keyword", async () => {
    const { connection } = await connectTemporal(settings);
    try {
      const res = await connection.operatorService.listSearchAttributes({ namespace: settings.TEMPORAL_NAMESPACE });
      // 2 = INDEXED_VALUE_TYPE_KEYWORD
      const names = requiredSearchAttributes.map((a) => a.name);
      expect(names).toEqual(['PersonaCustomerId', 'PersonaRecoveryState', 'PersonaAttentionReason', 'PersonaOverdue']);
      for (const name of names) expect(res.customAttributes?.[name], name).toBe(2);
    } finally {
      await connection.close();
    }
  });

  describe('restarts', async () => {
    const managed = (await stackStatus(settings)).every((s) => s.running);
    const config = loadConfig();
    let driver = createDriver(config);
    afterAll(() => driver.close());

    // Only when this stack started the services (not when reusing someone else's servers).
    it.skipIf(!managed)(
      'lose nothing: a running workflow and a customer survive a restart of both services',
      async () => {
        const customerId = randomUUID();
        const workflowId = `restart-probe-${customerId}`;
        const graph = createGraph(driver, config.NEO4J_DATABASE, config.tokenKeys);
        await createCustomer(graph, { id: customerId, segment: 'Restart' });
        let temporal = await connectTemporal(settings);
        await temporal.client.workflow.start('RestartProbe', {
          taskQueue: `restart-${customerId}`,
          workflowId,
          typedSearchAttributes: [{ key: personaCustomerId, value: customerId }],
        });
        await temporal.connection.close();
        await driver.close();

        await stackDown(settings, quiet);
        expect((await stackStatus(settings)).some((s) => s.answering)).toBe(false);
        await stackUp(settings, quiet);

        driver = createDriver(config);
        expect(
          await getCustomer(createGraph(driver, config.NEO4J_DATABASE, config.tokenKeys), customerId),
        ).toMatchObject({ segment: 'Restart' });
        temporal = await connectTemporal(settings);
        try {
          await describeNamespace(temporal.connection, settings.TEMPORAL_NAMESPACE);
          const handle = temporal.client.workflow.getHandle(workflowId);
          expect((await handle.describe()).status.name).toBe('RUNNING');
          const found: string[] = [];
          for await (const wf of temporal.client.workflow.list({ query: customerWorkflowsQuery(customerId) }))
            found.push(wf.workflowId);
          expect(found).toEqual([workflowId]);
          await handle.terminate('restart probe done');
        } finally {
          await temporal.connection.close();
        }
      },
      // Every service stopped and started again: Neo4j's and Kafka's JVMs boot on a busy machine.
      240_000,
    );
  });
});
