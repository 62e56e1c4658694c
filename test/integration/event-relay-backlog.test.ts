/**
 * The event relay with a backlog of 20,000 events, on the real Temporal and Neo4j: every event
 * reaches the subscriber in order, each run continues as new after its pages and no run's history
 * grows past what those pages write (measured by walking the relay's chain of runs and fetching
 * each run's history), and a relay terminated in the middle and started again resumes from its
 * checkpoint in the graph, sending again at most the page it was in.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../graph/feed';
import { adoptRelayState, readRelayCheckpoint } from '../../graph/relay';
import { eventRelaySettings } from '../../temporal/singletons';
import type { eventRelayWorkflow } from '../../workflows/eventRelay';
import { startHarness, type Harness } from '../support/api';
import { until } from '../support/wait';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

const BACKLOG = 20_000;
/** Pages a run relays before it continues as new: 80 pages of the deployment's size make several runs. */
const PAGES_PER_RUN = 20;
/**
 * History events a page may cost a run, generously (an activity's three and a workflow task's
 * three, a timer's two): a run that did not continue as new after its pages writes past it.
 */
const EVENTS_PER_PAGE = 10;
const prefix = `backlog-${randomUUID().slice(0, 8)}`;
const relayId = `persona-event-relay-${prefix}`;
/** Seeded events sort before anything real: they are stamped in 2001, a millisecond apart. */
const BASE = Date.parse('2001-01-01T00:00:00Z');

let h: Harness;
let receiver: Server;
let url: string;
/** Every POST of a seeded event, by its index, in the order the subscriber got them. */
const posts: number[] = [];
const firstSeen = new Set<number>();
let outOfOrder = 0;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const key = String(req.headers['idempotency-key']);
    req.resume();
    req.on('end', () => {
      if (key.startsWith(prefix)) {
        const i = Number(key.slice(prefix.length + 1));
        posts.push(i);
        // In order: a first delivery is always the next index (a resend may repeat older ones).
        if (!firstSeen.has(i)) {
          if (i !== firstSeen.size) outOfOrder++;
          firstSeen.add(i);
        }
      }
      res.writeHead(204).end();
    });
  });
  receiver.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
  // The worker's own subscriber: where its relay delivers (never a workflow's input).
  h = await startHarness({ eventsWebhookUrl: url });

  // The events of one made-up customer, in batches (one transaction each).
  for (let from = 0; from < BACKLOG; from += 20_000) {
    await h.graph.query(
      `UNWIND range($from, $to) AS i
       CREATE (:Event {id: $prefix + '-' + toString(i), type: 'CustomerUpdated', customer_id: $prefix,
                       occurred_at: datetime({epochMillis: toInteger($base) + i}), seq: 0, payload: '{"changes":{}}'})`,
      { from, to: Math.min(from + 20_000, BACKLOG) - 1, prefix, base: BASE },
    );
  }
  // The checkpoint starts just before the backlog.
  const start = encodeCursor({ t: '2000-12-31T23:59:59Z', s: -1, id: '' });
  await adoptRelayState(h.graph, relayId, { cursor: start, delivered: 0, parked: [] });
}, 300_000);

afterAll(async () => {
  await h?.client.workflow
    .getHandle(relayId)
    .terminate('test over')
    .catch(() => undefined);
  for (;;) {
    const [gone] = (await h?.graph.query<{ n: number }>(
      `MATCH (e:Event) WHERE e.customer_id = $prefix
       WITH e LIMIT 20000 DETACH DELETE e RETURN count(*) AS n`,
      { prefix },
    )) ?? [{ n: 0 }];
    if (!gone?.n) break;
  }
  await h?.graph.query('MATCH (r:RelayCheckpoint {id: $id}) DETACH DELETE r', { id: relayId });
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  await h?.close();
}, 300_000);

/** Every run of a relay started once: its first run, then each run it continued as new into. */
async function historySizes(handle: WorkflowHandleWithFirstExecutionRunId): Promise<number[]> {
  const sizes: number[] = [];
  let runId: string | undefined = handle.firstExecutionRunId;
  while (runId) {
    const history: { events?: HistoryEvent[] | null } = await h.client.workflow
      .getHandle(handle.workflowId, runId)
      .fetchHistory();
    const events: HistoryEvent[] = history.events ?? [];
    sizes.push(events.length);
    runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return sizes;
}

describe('the event relay with a backlog', () => {
  it(
    `delivers ${BACKLOG.toLocaleString('en')} events in order, continues as new every ${PAGES_PER_RUN} pages, ` +
      'and resumes from its graph checkpoint after a terminate',
    async () => {
      // The deployment's own settings but for fewer pages per run, with a checkpoint of its own.
      const input = {
        ...eventRelaySettings({ PERSONA_EVENTS_FEED_LAG_MS: 1000 }),
        pages_per_run: PAGES_PER_RUN,
        checkpoint_id: relayId,
      };
      const start = () =>
        h.client.workflow.start<typeof eventRelayWorkflow>('eventRelayWorkflow', {
          workflowId: relayId,
          taskQueue: h.taskQueue,
          args: [input],
        });
      const began = Date.now();
      const first = await start();
      await until(async () => firstSeen.size >= BACKLOG / 3, 300_000);
      await first.terminate('the test stops the relay in the middle of its backlog');
      const sentBeforeTerminate = posts.length;
      const checkpoint = await readRelayCheckpoint(h.graph, relayId);
      expect(checkpoint.delivered).toBeGreaterThan(0);

      const second = await start();
      await until(async () => firstSeen.size === BACKLOG, 600_000);
      const seconds = (Date.now() - began) / 1000;

      expect(outOfOrder).toBe(0);
      // At least once (the wait above), and resent at most the page the terminated run was in (or
      // less): nothing behind the checkpoint it had recorded goes out again.
      const resent = posts.length - BACKLOG;
      expect(resent).toBeLessThanOrEqual(input.page_size);
      const sentFirst = new Set(posts.slice(0, sentBeforeTerminate));
      const again = posts.slice(sentBeforeTerminate).filter((i) => sentFirst.has(i));
      expect(again.filter((i) => i < checkpoint.delivered)).toEqual([]);
      // The second relay did not start over: it sent only what came after the checkpoint.
      expect(posts.length - sentBeforeTerminate).toBeLessThanOrEqual(BACKLOG - checkpoint.delivered + input.page_size);

      const sizes = [...(await historySizes(first)), ...(await historySizes(second))];
      console.log(
        `relay backlog: ${BACKLOG} events in ${seconds.toFixed(0)} s (${(BACKLOG / seconds).toFixed(0)}/s), ` +
          `${resent} resent after the terminate; ${sizes.length} runs, history events per run: ` +
          `max ${Math.max(...sizes)}, all ${sizes.join(' ')}`,
      );
      // Each relay continued as new after its pages: the first ran a third of the pages, the second
      // the rest, so there are more runs than relays, and no run holds more than its pages.
      const pages = BACKLOG / input.page_size;
      expect(sizes.length).toBeGreaterThanOrEqual(Math.floor(pages / PAGES_PER_RUN));
      expect(Math.max(...sizes)).toBeLessThanOrEqual(PAGES_PER_RUN * EVENTS_PER_PAGE + EVENTS_PER_PAGE);
    },
    900_000,
  );
});
