/** Activities of the event relay: read the feed, deliver one event to the subscriber's webhook. */
import { ApplicationFailure } from '@temporalio/activity';
import type { PersonaEvent } from '../graph/events';
import { readFeed, type FeedPage } from '../graph/feed';
import type { Graph } from '../graph/graph';

export function createEventActivities({ graph }: { graph: Graph }) {
  return {
    async readEventFeed(req: { after: string | null; limit: number; lag_ms: number }): Promise<FeedPage> {
      return readFeed(graph, { after: req.after ?? undefined, limit: req.limit, lagMs: req.lag_ms });
    },
    /**
     * POSTs one event with `Idempotency-Key: <event id>` (a redelivery is recognisable). 2xx is
     * delivered; 408, 429 and 5xx or no answer are retried with backoff; other 4xx are refused
     * for good.
     */
    async deliverEvent(req: { webhook_url: string; event: PersonaEvent }): Promise<void> {
      let res: Response;
      try {
        res = await fetch(req.webhook_url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': req.event.id },
          body: JSON.stringify(req.event),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (err) {
        throw new Error(`the events webhook did not answer: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (res.ok) return;
      const text = (await res.text()).slice(0, 200);
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        throw ApplicationFailure.create({
          type: 'EventRefused',
          message: `the events webhook refused ${req.event.id} (${res.status}): ${text}`,
          nonRetryable: true,
        });
      }
      throw new Error(`the events webhook answered ${res.status}: ${text}`);
    },
  };
}

export type EventActivities = ReturnType<typeof createEventActivities>;
