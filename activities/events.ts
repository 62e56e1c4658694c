/**
 * Activities of the event relay. `relayPage` delivers a stretch of the change feed in order from
 * the graph checkpoint and moves the checkpoint; `retryParkedEvents` tries parked events again.
 * Both deliver to this worker's own subscriber (PERSONA_EVENTS_WEBHOOK_URL, signed with
 * PERSONA_EVENTS_WEBHOOK_SECRET), never to an address a workflow names: a worker without one
 * delivers nothing, and says so in a failure the relay retries (another worker may have it).
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { SIGNATURE_HEADER, webhookSignature } from '../clients/webhookSignature';
import type { PersonaEvent } from '../graph/events';
import { readFeedEntries, type FeedEntry } from '../graph/feed';
import type { Graph } from '../graph/graph';
import {
  listParkedEvents,
  ensureRelayCheckpoint,
  readRelayCheckpoint,
  recordRelayProgress,
  settleParkedEvents,
  type RelayCheckpoint,
  type RelayProgress,
} from '../graph/relay';
import type { RetryParkedResult } from '../temporal/eventRelay';
import { inLanes } from '../runtime/lanes';

/** How many parked events one retry request tries (oldest first); ask again for more. */
export const RETRY_PARKED_LIMIT = 1000;

/** Posts a relay page has in flight at once, each to a different customer (bench:relay measured it). */
export const RELAY_CONCURRENCY = 64;

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

// The signature the notification webhook carries too (clients/webhookSignature.ts); exported here
// for the relay's own importers.
export { SIGNATURE_HEADER, webhookSignature };

/** Keep-alive connections to the subscriber, one pool per worker's activities (not per post). */
export interface SubscriberAgents {
  http: HttpAgent;
  https: HttpsAgent;
}

export function subscriberAgents(maxSockets: number): SubscriberAgents {
  return {
    http: new HttpAgent({ keepAlive: true, maxSockets }),
    https: new HttpsAgent({ keepAlive: true, maxSockets }),
  };
}

/**
 * POSTs one event with `Idempotency-Key: <event id>` (a redelivery is recognisable). 2xx is
 * delivered; 408, 429, 5xx, a redirect and no answer (none within 10 s) mean "not now"; any other
 * 4xx is a refusal for good. Plain node:http on kept-alive connections: a relay posts thousands a
 * second, and fetch's per-request streams and signals cost twice the CPU (docs/performance.md).
 */
function post(
  agents: SubscriberAgents,
  url: URL,
  event: PersonaEvent,
  secret: string | undefined,
  cancelled?: AbortSignal,
): Promise<Answer> {
  const body = JSON.stringify(event);
  const https = url.protocol === 'https:';
  return new Promise<Answer>((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(
      url,
      {
        method: 'POST',
        agent: https ? agents.https : agents.http,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'idempotency-key': event.id,
          ...(secret ? { [SIGNATURE_HEADER]: webhookSignature(secret, body) } : {}),
        },
        ...(cancelled ? { signal: cancelled } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          res.resume();
          res.on('end', () => resolve({ kind: 'delivered' }));
          res.on('error', (err) => fail(err));
          return;
        }
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < 200) text += chunk;
        });
        res.on('error', (err) => fail(err));
        res.on('end', () => {
          const error = `${status}: ${text.slice(0, 200)}`;
          const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
          resolve(permanent ? { kind: 'refused', error } : { kind: 'unavailable', error });
        });
      },
    );
    const fail = (err: Error): void => {
      if (cancelled?.aborted) reject(cancelled.reason instanceof Error ? cancelled.reason : err);
      else resolve({ kind: 'unavailable', error: `no answer: ${err.message}` });
    };
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    // The whole post too, not only silence: a subscriber trickling a byte at a time must not hold
    // a lane past the activity's heartbeat (Temporal would retry the page beside this attempt).
    const whole = setTimeout(() => req.destroy(new Error('no complete answer within 10 s')), 10_000);
    req.on('close', () => clearTimeout(whole));
    req.on('error', fail);
    req.end(body);
  });
}

/**
 * Events delivered alone, after everything before them and before anything after: those of no
 * customer (a device's), and those about two customers at once (a merge and its undo), so a
 * consumer mirroring merges never sees the survivor's later events before the merge.
 */
const CROSS_CUSTOMER_TYPES: ReadonlySet<string> = new Set(['CustomersMerged', 'CustomersUnmerged']);
function isBarrier(event: { customer_id: string | null; type: string }): boolean {
  return event.customer_id === null || CROSS_CUSTOMER_TYPES.has(event.type);
}

/** The running activity's context, or null when called directly (a test). */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/** Where a relay page posts and how: the subscriber, its connections, and how many posts at once. */
interface Delivery {
  agents: SubscriberAgents;
  url: URL;
  secret: string | undefined;
  concurrency: number;
  ctx: Context | null;
}

/** A relay page's entries and what its lanes have made of them so far. */
interface PageState {
  entries: FeedEntry[];
  /** Per entry: settled (delivered, parked, or delivered by an earlier try: in `ahead`). */
  settled: boolean[];
  parked: { index: number; event_id: string; error: string }[];
  blocks: { index: number; event_id: string; error: string; type: string }[];
  delivered: number;
  cancelled: Error | null;
  beatAt: number;
}

function beat(d: Delivery, s: PageState): void {
  // A heartbeat at most every half second: often enough for the 30 s timeout and for a
  // cancel to arrive, rare enough to cost nothing per event in a backlog.
  if (Date.now() - s.beatAt < 500) return;
  s.beatAt = Date.now();
  d.ctx?.heartbeat({ delivered: s.delivered, parked: s.parked.length, blocked: s.blocks.length });
}

/** One customer's events of a segment, in feed order, until one is not taken. */
async function deliverLane(d: Delivery, s: PageState, lane: number[]): Promise<void> {
  for (const i of lane) {
    if (s.settled[i]) continue;
    if (s.cancelled || s.blocks.length > 0) return;
    beat(d, s);
    const { event } = s.entries[i] as FeedEntry;
    let answer: Answer;
    try {
      answer = await post(d.agents, d.url, event, d.secret, d.ctx?.cancellationSignal);
    } catch (err) {
      s.cancelled ??= err instanceof Error ? err : new Error(String(err));
      return;
    }
    if (answer.kind === 'unavailable') {
      s.blocks.push({ index: i, event_id: event.id, error: answer.error, type: event.type });
      return;
    }
    if (answer.kind === 'delivered') s.delivered++;
    else s.parked.push({ index: i, event_id: event.id, error: answer.error });
    s.settled[i] = true;
  }
}

/** Segments between barriers (events of no customer), each split into its customers' lanes. */
async function deliverSegments(d: Delivery, s: PageState): Promise<void> {
  const { entries } = s;
  let from = 0;
  while (from < entries.length && !s.cancelled && s.blocks.length === 0) {
    const first = entries[from] as FeedEntry;
    if (isBarrier(first.event)) {
      await deliverLane(d, s, [from]);
      from++;
      continue;
    }
    const lanes = new Map<string, number[]>();
    let to = from;
    for (; to < entries.length; to++) {
      const { event } = entries[to] as FeedEntry;
      const customer = event.customer_id;
      if (customer === null || isBarrier(event)) break;
      const lane = lanes.get(customer);
      if (lane) lane.push(to);
      else lanes.set(customer, [to]);
    }
    await inLanes([...lanes.values()], d.concurrency, (lane) => deliverLane(d, s, lane));
    from = to;
  }
}

/** What a page records in its checkpoint, and the first event the subscriber did not take for now. */
function progressOf(checkpoint: RelayCheckpoint, s: PageState) {
  const { entries, settled, parked, blocks, delivered } = s;
  // The cursor stops before the first event not settled; what was settled after it is `ahead`.
  const firstOpen = settled.indexOf(false);
  const upTo = firstOpen === -1 ? entries.length : firstOpen;
  const inPage = new Set(entries.map((e) => e.event.id));
  const ahead = [
    ...checkpoint.ahead.filter((id) => !inPage.has(id)),
    ...entries.filter((_, i) => i > upTo && settled[i]).map((e) => e.event.id),
  ];
  blocks.sort((a, b) => a.index - b.index);
  const block = blocks[0];
  const progress: RelayProgress = {
    cursor: upTo > 0 ? (entries[upTo - 1] as FeedEntry).cursor : checkpoint.cursor,
    delivered,
    parked: parked.sort((a, b) => a.index - b.index).map(({ event_id, error }) => ({ event_id, error })),
    blocked: block ? { event_id: block.event_id, error: block.error } : null,
    ahead,
  };
  return { progress, block };
}

/** The relayPage activity (see createEventActivities), posting as `d` says. */
async function relayPageWith(graph: Graph, d: Delivery, req: RelayPageRequest): Promise<RelayPageResult> {
  const checkpoint = await readRelayCheckpoint(graph, req.checkpoint_id);
  // The relay holds the event prune back from its first start, before it delivered anything.
  if (checkpoint.updated_at === null) await ensureRelayCheckpoint(graph, req.checkpoint_id);
  const entries = await readFeedEntries(graph, {
    after: checkpoint.cursor ?? undefined,
    limit: req.page_size,
    lagMs: req.lag_ms,
  });
  const wasAhead = new Set(checkpoint.ahead);
  const s: PageState = {
    entries,
    settled: entries.map((e) => wasAhead.has(e.event.id)),
    parked: [],
    blocks: [],
    delivered: 0,
    cancelled: null,
    beatAt: 0,
  };
  await deliverSegments(d, s);
  const { progress, block } = progressOf(checkpoint, s);
  if (entries.length > 0 || checkpoint.blocked || checkpoint.ahead.length > 0)
    await recordRelayProgress(graph, req.checkpoint_id, progress);
  if (s.cancelled) throw s.cancelled;
  if (block)
    throw ApplicationFailure.retryable(
      `the events webhook did not take ${block.event_id} (${block.type}) for now (${block.error}); ` +
        'the relay sends it again with backoff, and nothing after it of its customer before it is taken',
      'SubscriberUnavailable',
    );
  return {
    read: entries.length,
    delivered: s.delivered,
    parked: s.parked.length,
    subscriber: d.url.host,
  };
}

/** Where this worker delivers events: its own configuration. */
export interface EventSubscriber {
  /** PERSONA_EVENTS_WEBHOOK_URL (unset: this worker relays nothing). */
  url?: string | undefined;
  /** PERSONA_EVENTS_WEBHOOK_SECRET. */
  secret?: string | undefined;
  /** Posts at once, each to a different customer (default RELAY_CONCURRENCY; 1 delivers one event at a time). */
  concurrency?: number | undefined;
}

export function createEventActivities({ graph, events }: { graph: Graph; events?: EventSubscriber | undefined }) {
  const webhookSecret = events?.secret;
  const concurrency = Math.max(1, events?.concurrency ?? RELAY_CONCURRENCY);
  /** This worker's subscriber, or a failure the relay retries (with the activity's backoff) until a worker has one. */
  const agents = subscriberAgents(Math.max(concurrency, 8));
  const subscriberUrl = (): URL => {
    if (events?.url) return new URL(events.url);
    throw ApplicationFailure.retryable(
      'this worker has no PERSONA_EVENTS_WEBHOOK_URL: it delivers events nowhere. Set it, or stop the relay ' +
        '(a worker started without it stops a running relay)',
      'RelayNotConfigured',
    );
  };
  return {
    /**
     * Delivers up to `page_size` events after the graph checkpoint, by customer: each customer's
     * events go out one after another in feed order, different customers' side by side (up to
     * `concurrency` posts at once). An event of no customer (a device's) or of two (a merge) is
     * a barrier: everything before it is delivered first, then it, then what follows. A refusal for good parks that
     * event and its customer goes on; "not now" (5xx, 408, 429, no answer) stops that customer
     * there, and nothing after it of that customer goes out. The checkpoint's cursor then stops
     * before the first event not delivered, the events after it already delivered or parked are
     * kept as `ahead` (the next page skips them), and the activity fails so that Temporal retries
     * it with backoff, from that event, for as long as it takes (order is kept). Heartbeats as it
     * goes (every half second); a cancelled page records its progress and stops. At least once: a
     * worker that dies before the checkpoint moves sends that stretch again, under the same
     * idempotency keys.
     */
    async relayPage(req: RelayPageRequest): Promise<RelayPageResult> {
      const url = subscriberUrl();
      const ctx = activityContext();
      return relayPageWith(graph, { agents, url, secret: webhookSecret, concurrency, ctx }, req);
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
          const answer = await post(agents, url, p.event, webhookSecret, ctx?.cancellationSignal);
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
