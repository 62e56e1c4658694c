/**
 * A write whose request was answered 503 (out of time) must not commit afterwards: the caller
 * was told it did not happen and may retry. Here the write waits on a lock another transaction
 * holds longer than the request's budget; when the lock goes, the write's work completes, and it
 * rolls back instead of committing (graph/graph.ts `mayCommit`, set by api/deadlines.ts). Its
 * rollback is what was meant, so it is not logged as an error (the fleet test saw it logged as an
 * "unhandled error": Hono hands a route's late error to onError, not to the deadline's race).
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDepsFromConfig } from '../../api/deps';
import { createApp } from '../../api/rest/app';
import { createCustomer, getCustomer } from '../../graph';
import { createLogger } from '../../runtime/logger';
import { RequestContext } from '../../runtime/requestContext';
import { connectTemporal } from '../../temporal/connection';
import { signToken } from '../support/api';
import { logLines } from '../support/observability';
import { openTestGraph, type TestGraph, testPayloadCodec } from '../support/graph';
import { until } from '../support/wait';

describe('a write answered 503', () => {
  let graph: TestGraph;
  let temporal: Awaited<ReturnType<typeof connectTemporal>>;
  beforeAll(async () => {
    graph = openTestGraph();
    temporal = await connectTemporal(graph.config, { payloadCodec: testPayloadCodec(graph) });
  });
  afterAll(async () => {
    await temporal?.connection.close();
    await graph?.close();
  });

  it('rolls back when its work completes after the answer, instead of committing late', async () => {
    const requests = new RequestContext();
    let logged = '';
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged += chunk.toString();
        done();
      },
    });
    const deps = apiDepsFromConfig(graph.config, {
      logger: createLogger('test-api', 'debug', { destination }),
      readiness: [],
      // As the api's graph: a write commits only while its request still waits for it.
      graph: { ...graph, limits: { mayCommit: () => !requests.abandoned } },
      client: temporal.client,
      requests,
    });
    const app = createApp({ ...deps, limits: { ...deps.limits, requestDeadlineMs: 300 } });
    const customer = await createCustomer(graph, { segment: 'Before' });
    const ops = await signToken(graph.config.jwtSecret, 'ops');

    // Another transaction holds the customer's lock for longer than the request's budget.
    const blocker = graph.driver.session({ database: graph.database });
    const tx = await blocker.beginTransaction();
    await tx.run('MATCH (c:Customer {id: $id}) SET c.updated_at = datetime()', { id: customer.id });
    try {
      const res = await app.request(`/api/v1/customers/${customer.id}/profile`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
        body: JSON.stringify({ segment: 'After' }),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
    } finally {
      // The lock goes: the write that was waiting for it runs to its end now.
      await tx.rollback();
      await blocker.close();
    }
    // Wait until the write that was waiting has finished (whichever way), then look.
    await until(async () => {
      const running = await graph.query<{ query: string }>(
        'SHOW TRANSACTIONS YIELD currentQuery AS query WHERE query CONTAINS $text RETURN query',
        { text: 'SET c += $patch' },
      );
      return running.length === 0;
    });
    expect((await getCustomer(graph, customer.id))?.segment).toBe('Before');
    const [updates] = await graph.query<{ n: number }>(
      "MATCH (e:Event {customer_id: $id, type: 'CustomerProfileUpdated'}) RETURN count(e) AS n",
      { id: customer.id },
    );
    expect(updates?.n).toBe(0);
    // Answered 503 and rolled back, as it should: the route's late error (the rollback) reaches the
    // error handler after the answer; it is known for what it is, and nothing is logged as an error.
    const late = (l: { reason?: unknown; level: number }) =>
      l.level >= 50 || (typeof l.reason === 'string' && l.reason.includes('answered 503 before its work ended'));
    await until(async () => logLines(logged).lines.some(late));
    expect(logLines(logged).lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});
