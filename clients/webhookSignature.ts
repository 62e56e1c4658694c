/**
 * How Persona signs what it POSTs to a webhook (the events webhook, the notification webhook), so
 * the receiver can tell Persona's requests from anyone else's: docs/events.md ("Verify every
 * delivery") says how to verify.
 */
import { createHmac } from 'node:crypto';

/** The header a receiver verifies a request by (docs/events.md, "Webhook"). */
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
