/**
 * Where customer notifications go. The default sink logs them; with PERSONA_NOTIFY_WEBHOOK_URL
 * set, each is POSTed there with its idempotency key (so the receiver can drop a resend), signed
 * with PERSONA_NOTIFY_WEBHOOK_SECRET as the events webhook is (a merge's consent code travels in
 * it). Either way the `notifyCustomer` activity records each notification once as a
 * CustomerNotified event.
 */
import type { Channel } from '../graph/notifications';
import type { Logger } from '../runtime/logger';
import { SIGNATURE_HEADER, webhookSignature } from './webhookSignature';

export type { Channel };

export interface Notification {
  customer_id: string;
  /** What it is about, e.g. payment_recovered, payment_failed, dunning_reminder, card_compromised. */
  kind: string;
  channel: Channel;
  /** Stable per workflow and step: the same notification always carries the same key. */
  key: string;
  data: Record<string, unknown>;
}

export interface NotificationSink {
  send(n: Notification): Promise<void>;
}

export class LogNotificationSink implements NotificationSink {
  constructor(
    private readonly logger: Logger,
    /**
     * Outside production the log stands in for the customer's inbox: a message's `code` (an
     * identity merge's consent code) is printed, so a developer can answer it. Never in production.
     */
    private readonly options: { revealCodes?: boolean } = {},
  ) {}

  async send(n: Notification): Promise<void> {
    const code = this.options.revealCodes && typeof n.data.code === 'string' ? { code: n.data.code } : {};
    this.logger.info(
      { customerId: n.customer_id, kind: n.kind, channel: n.channel, key: n.key, ...code },
      `notify customer: ${n.kind} by ${n.channel}`,
    );
  }
}

/** The webhook refused the notification (4xx but 408/429): retrying cannot help. */
export class NotificationRejectedError extends Error {
  constructor(status: number) {
    super(`the notification webhook refused the notification (${status})`);
    this.name = 'NotificationRejectedError';
  }
}

export class WebhookNotificationSink implements NotificationSink {
  constructor(
    private readonly url: string,
    private readonly timeoutMs = 5000,
    /** With a secret, every request carries `Persona-Signature` over its body (clients/webhookSignature.ts). */
    private readonly secret?: string,
  ) {}

  async send(n: Notification): Promise<void> {
    const body = JSON.stringify(n);
    const res = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': n.key,
        ...(this.secret ? { [SIGNATURE_HEADER]: webhookSignature(this.secret, body) } : {}),
      },
      body,
      signal: AbortSignal.timeout(this.timeoutMs),
      // Never followed: a redirect would carry the consent code, signed, to wherever it points.
      redirect: 'error',
    });
    if (res.ok) return;
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429)
      throw new NotificationRejectedError(res.status);
    throw new Error(`the notification webhook answered ${res.status}`);
  }
}

export function createNotificationSink(
  webhookUrl: string | undefined,
  logger: Logger,
  options: { revealCodes?: boolean; webhookSecret?: string | undefined } = {},
): NotificationSink {
  const { webhookSecret, ...logOptions } = options;
  return webhookUrl
    ? new WebhookNotificationSink(webhookUrl, undefined, webhookSecret)
    : new LogNotificationSink(logger, logOptions);
}
