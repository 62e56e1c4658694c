/** The notification activity: each notification goes out and is recorded once per key. */
import { ApplicationFailure } from '@temporalio/activity';
import { NotificationRejectedError, type Channel, type NotificationSink } from '../clients/notifications';
import { ConflictError } from '../graph/errors';
import { appendEvent, findEventByIdempotencyKey } from '../graph/events';
import { readTx, writeTx, type Graph } from '../graph/graph';
import { getDigitalIdentifiersByCustomer } from '../graph/identifiers';

export interface NotifyRequest {
  customer_id: string;
  kind: string;
  /** Stable per workflow and step, e.g. `<workflow id>:recovered`. */
  key: string;
  data?: Record<string, unknown>;
}

/** A verified email first, then a verified phone; an unverified email as a last resort. */
async function channelFor(graph: Graph, customerId: string): Promise<Channel | null> {
  const identifiers = await getDigitalIdentifiersByCustomer(graph, customerId);
  if (identifiers.some((i) => i.type === 'email' && i.is_verified)) return 'email';
  if (identifiers.some((i) => i.type === 'phone_number' && i.is_verified)) return 'sms';
  if (identifiers.some((i) => i.type === 'email')) return 'email';
  return null;
}

export function createNotificationActivities({ graph, notifications }: { graph: Graph; notifications: NotificationSink }) {
  return {
    /**
     * Sends a notification unless one with this key was already recorded, then records it as a
     * CustomerNotified event keyed by the same key. A crash between sending and recording
     * resends with the same key, which the webhook receiver deduplicates on.
     */
    async notifyCustomer(req: NotifyRequest): Promise<{ sent: boolean; channel: Channel | null }> {
      const idempotencyKey = `notify:${req.key}`;
      const prior = await readTx(graph, (tx) => findEventByIdempotencyKey(tx, idempotencyKey));
      if (prior) return { sent: false, channel: (prior.payload.channel as Channel | null) ?? null };
      const channel = await channelFor(graph, req.customer_id);
      if (channel) {
        try {
          await notifications.send({ customer_id: req.customer_id, kind: req.kind, channel, key: req.key, data: req.data ?? {} });
        } catch (err) {
          if (err instanceof NotificationRejectedError) throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
          throw err;
        }
      }
      try {
        await writeTx(graph, (tx) => appendEvent(tx, 'CustomerNotified', req.customer_id, { kind: req.kind, channel }, { idempotencyKey }));
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      return { sent: channel !== null, channel };
    },
  };
}

export type NotificationActivities = ReturnType<typeof createNotificationActivities>;
