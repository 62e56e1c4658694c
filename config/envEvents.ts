/**
 * The graph's events and what it keeps: how long interaction ids are remembered and their daily
 * prune, the event prune and a customer's history, the change feed's lag, and the events webhook
 * (signed, in production).
 */
import { z } from 'zod';
import type { ConfigIssue, EnvOf } from './envCore';
import { FEED_LAG_MARGIN_MS, WRITE_TX_TIMEOUT_MS } from './envNeo4j';

/** Interaction ids and events: how long they are kept and how they are pruned. */
export const retentionShape = {
  /**
   * How long an interaction's id is remembered (a redelivery within it is a no-op): as long as the
   * longest redelivery window upstream. The daily prune (Schedule `persona-interaction-prune`, at
   * PERSONA_INTERACTION_PRUNE_AT) deletes the ids recorded longer ago; a redelivery after that
   * records again. So an id is kept at least this many hours (and a day more, at most, while the runs
   * succeed). A day by default: the claims are the graph's largest set after the customers'.
   */
  PERSONA_INTERACTION_ID_WINDOW_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24),
  /** When the daily prune of interaction ids older than the retention runs (HH:MM, 24-hour clock, UTC). */
  PERSONA_INTERACTION_PRUNE_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day HH:MM such as 03:00')
    .default('03:00'),
  /** Interaction ids the prune deletes per write transaction (each within the write-transaction limit). */
  PERSONA_INTERACTION_PRUNE_BATCH_SIZE: z.coerce.number().int().min(1).max(50_000).default(10_000),
  /**
   * The bounded graph (graph/eventPrune.ts): every this many minutes the Schedule
   * `persona-event-prune` deletes the events every consumer of the feed (the webhook relay, the
   * Kafka publisher) has had for PERSONA_EVENTS_PRUNE_SAFETY_MINUTES; a customer's history
   * (docs/events.md) stays PERSONA_EVENTS_HISTORY_DAYS besides. Kafka's events topic is the log
   * of record. A consumer more than PERSONA_EVENTS_PRUNE_CAP_HOURS behind no longer holds pruning
   * back, and `persona_event_consumers_behind_cap` says so.
   */
  PERSONA_EVENTS_PRUNE_EVERY_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),
  PERSONA_EVENTS_PRUNE_SAFETY_MINUTES: z.coerce.number().int().min(1).max(43_200).default(60),
  PERSONA_EVENTS_PRUNE_CAP_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(72),
  PERSONA_EVENTS_PRUNE_BATCH_SIZE: z.coerce.number().int().min(1).max(50_000).default(5_000),
  PERSONA_EVENTS_HISTORY_DAYS: z.coerce.number().int().min(1).max(3_650).default(400),
};

/** The change feed and the events webhook. */
export const eventsShape = {
  /**
   * The change feed serves events stamped at least this long ago, so no event can appear behind a
   * reader's cursor: refused below the write-transaction timeout plus a margin (12 s).
   */
  PERSONA_EVENTS_FEED_LAG_MS: z.coerce
    .number()
    .int()
    .refine(
      (lag) => lag >= WRITE_TX_TIMEOUT_MS + FEED_LAG_MARGIN_MS,
      `must be at least the write-transaction timeout WRITE_TX_TIMEOUT_MS (${WRITE_TX_TIMEOUT_MS} ms) plus ` +
        `${FEED_LAG_MARGIN_MS} ms: a shorter PERSONA_EVENTS_FEED_LAG_MS lets the feed pass an event a ` +
        'slower write transaction commits later',
    )
    .default(15_000),
  /**
   * When set, the worker keeps the event relay running: every event is POSTed here, in order.
   * https:// in production.
   */
  PERSONA_EVENTS_WEBHOOK_URL: z.url().optional(),
  /**
   * The events webhook's signing secret: each POST carries `Persona-Signature` (an HMAC-SHA256 of
   * the time and the body) for the subscriber to verify. Required in production with the webhook.
   */
  PERSONA_EVENTS_WEBHOOK_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * Posts to the events webhook at once, each for a different customer (a customer's events go
   * one after another, in order): 1 delivers the feed one event at a time. bench:relay measured 64.
   */
  PERSONA_EVENTS_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(512).default(64),
};

export type EventsEnv = EnvOf<typeof retentionShape> & EnvOf<typeof eventsShape>;

/** What production requires of the events webhook: https:// and a signing secret. */
export function eventsProductionIssues(
  env: Pick<EventsEnv, 'PERSONA_EVENTS_WEBHOOK_URL' | 'PERSONA_EVENTS_WEBHOOK_SECRET'>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (env.PERSONA_EVENTS_WEBHOOK_URL && !env.PERSONA_EVENTS_WEBHOOK_URL.startsWith('https://'))
    issues.push({
      path: ['PERSONA_EVENTS_WEBHOOK_URL'],
      message:
        "must be https:// in production (NODE_ENV=production): the events hold customers' data, ops' " +
        "reasons and a customer's words",
    });
  if (env.PERSONA_EVENTS_WEBHOOK_URL && !env.PERSONA_EVENTS_WEBHOOK_SECRET)
    issues.push({
      path: ['PERSONA_EVENTS_WEBHOOK_SECRET'],
      message:
        'required in production with PERSONA_EVENTS_WEBHOOK_URL: the subscriber must be able to tell ' +
        "Persona's events from anyone else's",
    });
  return issues;
}
