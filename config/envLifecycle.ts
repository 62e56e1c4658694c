/**
 * The lifecycle workflows: whether the worker applies the Schedules, the card-expiry scan,
 * erasure, fraud reviews, identity merges and the wallet's size, and how long an erasure or a
 * fraud review may wait before it is overdue.
 */
import { z } from 'zod';
import { isTimeZone } from '../payments/expiry';
import type { EnvOf } from './envCore';

export const lifecycleShape = {
  /** `apply`: the worker creates or updates the Temporal Schedules at start-up; `skip`: it leaves them alone. */
  PERSONA_SCHEDULES: z.enum(['apply', 'skip']).default('apply'),
  /** When the daily card-expiry scan runs (HH:MM, 24-hour clock) in PERSONA_EXPIRY_SCAN_TIMEZONE. */
  PERSONA_EXPIRY_SCAN_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day HH:MM such as 06:00')
    .default('06:00'),
  /** The IANA time zone of the scan's schedule and of "today" for its expiry arithmetic. */
  PERSONA_EXPIRY_SCAN_TIMEZONE: z
    .string()
    .refine(isTimeZone, 'expected an IANA time zone such as UTC or Europe/Berlin')
    .default('UTC'),
  /** Cards read, expired and warned per batch activity of the expiry scan. */
  PERSONA_EXPIRY_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(5000),
  /** Batches per workflow run of the expiry scan before it continues as new. */
  PERSONA_EXPIRY_BATCHES_PER_RUN: z.coerce.number().int().min(1).max(10_000).default(200),
  /** Slices of the card-id space the expiry scan pages through side by side (1–16). */
  PERSONA_EXPIRY_SCAN_LANES: z.coerce.number().int().min(1).max(16).default(2),
  /** Events an erasure empties per transaction (a long history is erased in batches of this many). */
  PERSONA_ERASURE_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** How far a passed fraud challenge raises the device's trust score (bounded at 1). */
  PERSONA_FRAUD_TRUST_STEP: z.coerce.number().gt(0).max(1).default(0.1),
  /** How long a fraud suspension waits for ops' review before it stays as it is. */
  PERSONA_FRAUD_REVIEW_DAYS: z.coerce.number().int().min(1).max(365).default(30),
  /** How long an identity merge waits for both customers' consent; silence means no merge. */
  PERSONA_MERGE_CONSENT_DAYS: z.coerce.number().int().min(1).max(90).default(7),
  /** Merges one customer's own token may propose in 24 hours (each sends the other record's owner a request). */
  PERSONA_MERGE_PROPOSALS_PER_DAY: z.coerce.number().int().min(1).max(100).default(3),
  /** The most payment methods one customer's wallet holds; adding another is refused (409) until one is removed. */
  PERSONA_MAX_PAYMENT_METHODS: z.coerce.number().int().min(1).max(1000).default(20),
  /** How long after an identity merge ops may still undo it. */
  PERSONA_UNMERGE_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
};

/** Waits with a deadline (listed last in config/env.ts's schema, where they were added). */
export const lifecycleDeadlinesShape = {
  /**
   * Waits with a deadline (issue 46): how long an erasure may wait (for a fraud review, recoveries
   * stopping, the customer's workflows closing) before it is overdue — counted, alerted, the
   * erasure's status naming what holds it; it waits on (a key is never destroyed under an open workflow).
   */
  PERSONA_ERASURE_WAIT_DEADLINE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  /** How long ops have to decide a fraud review before it is overdue (counted, alerted; it waits on to its days). */
  PERSONA_FRAUD_REVIEW_DUE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
};

export type LifecycleEnv = EnvOf<typeof lifecycleShape> & EnvOf<typeof lifecycleDeadlinesShape>;

/** How long an erasure waits before it is overdue, as a workflow duration ('1440m'). */
export function erasureWaitDeadline(settings: Pick<LifecycleEnv, 'PERSONA_ERASURE_WAIT_DEADLINE_HOURS'>): string {
  return `${Math.max(1, Math.round(settings.PERSONA_ERASURE_WAIT_DEADLINE_HOURS * 60))}m`;
}

/** When ops should have decided a fraud review, as a workflow duration ('1440m'). */
export function fraudReviewDue(settings: Pick<LifecycleEnv, 'PERSONA_FRAUD_REVIEW_DUE_HOURS'>): string {
  return `${Math.max(1, Math.round(settings.PERSONA_FRAUD_REVIEW_DUE_HOURS * 60))}m`;
}
