/**
 * Activities of the event relay. `relayPage` delivers a stretch of the change feed in order from
 * the graph checkpoint and moves the checkpoint; `retryParkedEvents` tries parked events again.
 * Both deliver to this worker's own subscriber (PERSONA_EVENTS_WEBHOOK_URL, signed with
 * PERSONA_EVENTS_WEBHOOK_SECRET), never to an address a workflow names: a worker without one
 * delivers nothing, and says so in a failure the relay retries (another worker may have it).
 */
import { createHmac } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { PersonaEvent } from '../graph/events';
import { readFeedEntries } from '../graph/feed';
import type { Graph } from '../graph/graph';
import {
  listParkedEvents,
  readRelayCheckpoint,
  recordRelayProgress,
  settleParkedEvents,
  type RelayProgress,
} from '../graph/relay';
import type { RetryParkedResult } from '../temporal/eventRelay';

/** How many parked events one retry request tries (oldest first); ask again for more. */
export const RETRY_PARKED_LIMIT = 1000;

export interface RelayPageRequest {
  checkpoint_id: string;
  page_size: number;
  lag_ms: number;
}

export interface RelayPageResult {
  /** Events read from the feed after the checkpoint (0: nothing new). */
  read: number;
  delivered: number;
  parked: number;
  /** The host this worker delivers to. */
  subscriber: string;
}

/** What the subscriber made of one event. */
type Answer = { kind: 'delivered' } | { kind: 'refused'; error: string } | { kind: 'unavailable'; error: string };

/** The header a subscriber verifies an event by (docs/events.md, "Webhook"). */
export const SIGNATURE_HEADER = 'persona-signature';

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>`: the subscriber
 * recomputes it over the body as received and refuses a mismatch, or a `t` older than it accepts
 * (a replayed delivery). The time is the send's, so a redelivery is signed afresh.
 */
export function webhookSignature(secret: string, body: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * POSTs one event with `Idempotency-Key: <event id>` (a redelivery is recognisable). 2xx is
 * delivered; 408, 429, 5xx and no answer mean "not now"; any other 4xx is a refusal for good.
 */
async function post(
  url: string,
  event: PersonaEvent,
  secret: string | undefined,
  cancelled?: AbortSignal,
): Promise<Answer> {
  let res: Response;
  const body = JSON.stringify(event);
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': event.id,
        ...(secret ? { [SIGNATURE_HEADER]: webhookSignature(secret, body) } : {}),
      },
      body,
      signal: cancelled ? AbortSignal.any([cancelled, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000),
    });
  } catch (err) {
    if (cancelled?.aborted) throw cancelled.reason;
    return { kind: 'unavailable', error: `no answer: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (res.ok) {
    await res.body?.cancel();
    return { kind: 'delivered' };
  }
  const error = `${res.status}: ${(await res.text()).slice(0, 200)}`;
  const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
  return permanent ? { kind: 'refused', error } : { kind: 'unavailable', error };
}

/** The running activity's context, or null when called directly (a test). */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/** Where this worker delivers events: its own configuration. */
export interface EventSubscriber {
  /** PERSONA_EVENTS_WEBHOOK_URL (unset: this worker relays nothing). */
  url?: string | undefined;
  /** PERSONA_EVENTS_WEBHOOK_SECRET. */
  secret?: string | undefined;
}

export function createEventActivities({ graph, events }: { graph: Graph; events?: EventSubscriber | undefined }) {
  const webhookSecret = events?.secret;
  /** This worker's subscriber, or a failure the relay retries (with the activity's backoff) until a worker has one. */
  const subscriberUrl = (): string => {
    if (events?.url) return events.url;
    throw ApplicationFailure.retryable(
      'this worker has no PERSONA_EVENTS_WEBHOOK_URL: it delivers events nowhere. Set it, or stop the relay ' +
        '(a worker started without it stops a running relay)',
      'RelayNotConfigured',
    );
  };
  return {
    /**
     * Delivers up to `page_size` events after the graph checkpoint, in feed order. A refusal
     * for good parks that event and the relay goes on; "not now" (5xx, 408, 429, no answer)
     * stops the page there: the checkpoint records what went through and what it is blocked on,
     * and the activity fails so that Temporal retries it with backoff, from that event, for as
     * long as it takes (order is kept). Heartbeats as it goes (every half second); a cancelled page records
     * its progress and stops. At least once: a worker that dies before the checkpoint moves
     * sends that stretch again, under the same idempotency keys.
     */
    async relayPage(req: RelayPageRequest): Promise<RelayPageResult> {
      const url = subscriberUrl();
      const ctx = activityContext();
      const checkpoint = await readRelayCheckpoint(graph, req.checkpoint_id);
      const entries = await readFeedEntries(graph, {
        after: checkpoint.cursor ?? undefined,
        limit: req.page_size,
        lagMs: req.lag_ms,
      });
      const progress: RelayProgress = { cursor: checkpoint.cursor, delivered: 0, parked: [], blocked: null };
      const commit = () => recordRelayProgress(graph, req.checkpoint_id, progress);
      let beatAt = 0;
      for (const { event, cursor } of entries) {
        // A heartbeat at most every half second: often enough for the 30 s timeout and for a
        // cancel to arrive, rare enough to cost nothing per event in a backlog.
        if (Date.now() - beatAt >= 500) {
          beatAt = Date.now();
          ctx?.heartbeat({ cursor: progress.cursor, delivered: progress.delivered, parked: progress.parked.length });
        }
        let answer: Answer;
        try {
          answer = await post(url, event, webhookSecret, ctx?.cancellationSignal);
        } catch (cancelled) {
          await commit();
          throw cancelled;
        }
        if (answer.kind === 'unavailable') {
          progress.blocked = { event_id: event.id, error: answer.error };
          await commit();
          throw ApplicationFailure.retryable(
            `the events webhook did not take ${event.id} (${event.type}) for now (${answer.error}); ` +
              'the relay sends it again with backoff, and nothing after it before it is taken',
            'SubscriberUnavailable',
          );
        }
        if (answer.kind === 'delivered') progress.delivered++;
        else progress.parked.push({ event_id: event.id, error: answer.error });
        progress.cursor = cursor;
      }
      if (entries.length > 0 || checkpoint.blocked) await commit();
      return {
        read: entries.length,
        delivered: progress.delivered,
        parked: progress.parked.length,
        subscriber: new URL(url).host,
      };
    },

    /**
     * Tries parked events again (the one named, or the oldest RETRY_PARKED_LIMIT), one attempt
     * each: the delivered ones leave the parked list, the others stay with their new error.
     */
    async retryParkedEvents(req: { checkpoint_id: string; event_id?: string }): Promise<RetryParkedResult> {
      const url = subscriberUrl();
      const ctx = activityContext();
      const parked = await listParkedEvents(graph, req.checkpoint_id, {
        eventId: req.event_id,
        limit: RETRY_PARKED_LIMIT,
      });
      const delivered: string[] = [];
      const failed: { event_id: string; error: string }[] = [];
      try {
        for (const p of parked) {
          ctx?.heartbeat({ delivered: delivered.length, failed: failed.length, of: parked.length });
          const answer = await post(url, p.event, webhookSecret, ctx?.cancellationSignal);
          if (answer.kind === 'delivered') delivered.push(p.event.id);
          else failed.push({ event_id: p.event.id, error: answer.error });
        }
      } finally {
        await settleParkedEvents(graph, req.checkpoint_id, { delivered, failed });
      }
      return { retried: parked.length, delivered: delivered.length, still_parked: failed.length };
    },
  };
}

export type EventActivities = ReturnType<typeof createEventActivities>;
