/**
 * Notification activities: every notification is claimed, sent and recorded once per key
 * (graph/notifications.ts), whether it is one recovery message or a scan's batch of thousands.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { randomUUID } from 'node:crypto';
import { NotificationRejectedError, type Channel, type NotificationSink } from '../clients/notifications';
import type { Graph } from '../graph/graph';
import {
  claimNotificationsAndReach,
  recordNotificationsRejected,
  recordNotificationsSent,
  type SentNotification,
} from '../graph/notifications';
import { inLanes } from '../runtime/lanes';

export interface NotifyRequest {
  customer_id: string;
  kind: string;
  /** Stable per workflow and step, e.g. `<workflow id>:recovered`. */
  key: string;
  /** What the message says (goes to the sink, not into the event). */
  data?: Record<string, unknown>;
  /** What the notification is about, kept in the CustomerNotified event (ids, never personal data). */
  subject?: SentNotification['subject'];
  /** Only through a verified email or phone (e.g. an account-takeover alert). */
  verified_only?: boolean;
}

/**
 * What happened to one notification:
 *   sent        — this call sent it;
 *   unreachable — the customer has no channel; recorded, nothing sent;
 *   duplicate   — sent (or refused) before, or another run holds it: nothing sent now;
 *   rejected    — the receiver refused it for good; recorded, never sent again.
 */
export type DeliveryOutcome = 'sent' | 'unreachable' | 'duplicate' | 'rejected';

export interface DeliveryResult {
  outcome: DeliveryOutcome;
  channel: Channel | null;
  /** Nobody will send it again (sent, recorded unreachable, or refused) — false while another run holds it. */
  settled: boolean;
}

export interface DeliveryOptions {
  /** Who claims the notifications; the same owner on a retry resends what it had not recorded. */
  owner: string;
  /** Sends in flight at once. */
  concurrency?: number;
  /** Called after each send (heartbeats); must not throw. */
  onSent?: (done: number, total: number) => void;
  /**
   * Checked before each send: once true, nothing more is sent, what was sent is recorded, and
   * the results so far are returned (the caller stops there: a cancelled activity).
   */
  stopped?: () => boolean;
}

/** Who claims notifications: the activity (stable across its retries), or a one-off caller. */
export function activityOwner(): string {
  try {
    const { workflowExecution, activityId } = Context.current().info;
    return `${workflowExecution?.workflowId ?? 'standalone'}/${workflowExecution?.runId ?? '-'}/${activityId}`;
  } catch {
    return `direct/${randomUUID()}`;
  }
}

/**
 * Claims, sends and records a batch of notifications. A transient send failure is thrown after
 * the sends that did succeed are recorded, so a retry (same owner) resends only the rest.
 */
export async function deliverNotifications(
  deps: { graph: Graph; notifications: NotificationSink },
  requests: NotifyRequest[],
  options: DeliveryOptions,
): Promise<Map<string, DeliveryResult>> {
  const { graph, notifications } = deps;
  const results = new Map<string, DeliveryResult>();
  // The claim reads, in its transaction, how to reach the customers whose notifications it took.
  const { claims, channels, verifiedChannels } = await claimNotificationsAndReach(graph, requests, options.owner);
  const mine = requests.filter((r) => claims.get(r.key)?.mine);
  for (const r of requests) {
    const claim = claims.get(r.key);
    if (!claim?.mine)
      results.set(r.key, { outcome: 'duplicate', channel: claim?.channel ?? null, settled: claim?.settled ?? false });
  }

  const toRecord: SentNotification[] = [];
  const rejected: { key: string; reason: string }[] = [];
  const failures: Error[] = [];
  let done = 0;
  const sendOne = async (r: NotifyRequest): Promise<void> => {
    const channel = (r.verified_only ? verifiedChannels : channels).get(r.customer_id) ?? null;
    if (channel) {
      try {
        await notifications.send({ customer_id: r.customer_id, kind: r.kind, channel, key: r.key, data: r.data ?? {} });
      } catch (err) {
        if (!(err instanceof NotificationRejectedError)) throw err;
        rejected.push({ key: r.key, reason: err.message });
        results.set(r.key, { outcome: 'rejected', channel, settled: true });
        return;
      }
    }
    toRecord.push({ key: r.key, customer_id: r.customer_id, kind: r.kind, channel, subject: r.subject ?? {} });
  };
  // A failure stops the sending, not the recording: what was sent is recorded before it is thrown.
  await inLanes(
    mine,
    options.concurrency ?? 8,
    async (r) => {
      try {
        await sendOne(r);
        options.onSent?.(++done, mine.length);
      } catch (err) {
        failures.push(err instanceof Error ? err : new Error(String(err)));
      }
    },
    () => failures.length > 0 || options.stopped?.() === true,
  );

  const recorded = await recordNotificationsSent(graph, toRecord, options.owner);
  await recordNotificationsRejected(graph, rejected);
  for (const n of toRecord) {
    results.set(n.key, {
      outcome: !recorded.has(n.key) ? 'duplicate' : n.channel ? 'sent' : 'unreachable',
      channel: n.channel,
      settled: true,
    });
  }
  if (failures[0]) throw failures[0];
  return results;
}

export function createNotificationActivities({
  graph,
  notifications,
}: {
  graph: Graph;
  notifications: NotificationSink;
}) {
  return {
    /**
     * Sends one notification unless its key was sent (or is being sent) already, and records
     * it as a CustomerNotified event keyed by the same key. A crash between sending and
     * recording resends with the same key, which the webhook receiver deduplicates on.
     */
    async notifyCustomer(req: NotifyRequest): Promise<{ sent: boolean; channel: Channel | null }> {
      const result = (await deliverNotifications({ graph, notifications }, [req], { owner: activityOwner() })).get(
        req.key,
      );
      if (result?.outcome === 'rejected') {
        throw ApplicationFailure.create({
          type: 'NotificationRejectedError',
          message: `the notification ${req.key} was refused by the receiver`,
          nonRetryable: true,
        });
      }
      return { sent: result?.outcome === 'sent', channel: result?.channel ?? null };
    },
  };
}

export type NotificationActivities = ReturnType<typeof createNotificationActivities>;
