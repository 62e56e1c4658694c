/**
 * Payments: the gateway and its daily reconciliation, how a recovery's charge is sent, retried and
 * settled, how long ops have before a recovery is overdue, the card-network rule table and the
 * dunning rounds.
 */
import { z } from 'zod';
import { port, type ConfigIssue, type EnvOf } from './envCore';

export const paymentsShape = {
  /** When the daily gateway reconciliation runs (HH:MM, 24-hour clock, UTC). */
  PERSONA_GATEWAY_RECONCILE_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day HH:MM such as 04:00')
    .default('04:00'),
  /**
   * The hours of charges and recorded recoveries each reconciliation compares, back from when it
   * was due: more than a day, so consecutive daily runs overlap (a repair is idempotent).
   */
  PERSONA_GATEWAY_RECONCILE_LOOKBACK_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 31)
    .default(26),
  /**
   * Time slices of the window each scheduled reconciliation pages through side by side (one
   * lane: one page after another). bench:reconciliation measured a day of 100,000 charges.
   */
  PERSONA_GATEWAY_RECONCILE_LANES: z.coerce.number().int().min(1).max(64).default(4),
  /** The local payment-gateway simulator's port (the stack starts it). */
  PERSONA_GATEWAY_PORT: port.default(4010),
  /** The address the gateway simulator listens on (0.0.0.0 in a container). */
  PERSONA_GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * The payment gateway's base URL: https:// in production (charges and card tokens travel on it),
   * unless PERSONA_GATEWAY_ALLOW_PLAINTEXT=true.
   */
  PERSONA_GATEWAY_URL: z.url().default('http://127.0.0.1:4010'),
  /** `true` lets production reach the gateway over http:// (a simulator on a private network, a mesh that encrypts). */
  PERSONA_GATEWAY_ALLOW_PLAINTEXT: z.enum(['true', 'false']).default('false'),
  /** Timeout of one gateway call; a timeout is transient and retried by Temporal. */
  PERSONA_GATEWAY_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
  /**
   * How long the payment gateway is known to remember an idempotency key (its documented minimum):
   * a charge of unknown outcome older than this is never sent again, only looked for by reference.
   */
  PERSONA_GATEWAY_KEY_TTL_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 365)
    .default(24),
  /**
   * How long after a charge's last request "the gateway has no charge under its key" is believed
   * (the gateway's listing may lag, and a request may still be in flight): at least 5 minutes, more
   * than twice the charge activity's start-to-close, so no attempt of it can still be sending.
   */
  PERSONA_CHARGE_SETTLE_MINUTES: z.coerce
    .number()
    .min(5)
    .max(24 * 60)
    .default(10),
  /**
   * How long a charge's transient failures (5xx, timeouts, 429, an outcome not known yet) are
   * retried, under the same key, before the recovery asks ops (who may then only retry it).
   */
  PERSONA_CHARGE_RETRY_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(6),
  /**
   * How long ops have to answer a recovery that needs attention before it is counted overdue
   * (a metric and an alert); the recovery waits on past it.
   */
  PERSONA_ATTENTION_DEADLINE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  /**
   * How long a stopping recovery asks the gateway what became of a charge of unknown outcome
   * (nothing is sent again) before the settling is overdue (a metric, an alert, PersonaOverdue);
   * it asks on.
   */
  PERSONA_SETTLE_DEADLINE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  /** The card-network rule table (config/network-rules/<version>.json); the newest when unset. */
  PERSONA_NETWORK_RULES_VERSION: z
    .string()
    .regex(/^\d{4}-\d{2}(-[a-z0-9]+)?$/, 'expected a table version such as 2026-11')
    .optional(),
  /** Dunning rounds after every method failed: delays such as 1d, 12h, 30m, comma-separated. */
  PERSONA_DUNNING_SCHEDULE: z
    .string()
    .regex(/^\s*\d+\s*[dhms]\s*(,\s*\d+\s*[dhms]\s*)*$/, 'expected delays such as 1d,3d,5d,7d')
    .default('1d,3d,5d,7d')
    .transform((v) => v.split(',').map((d) => d.trim())),
};

export type PaymentsEnv = EnvOf<typeof paymentsShape>;

/** What production requires of the gateway: https://, unless PERSONA_GATEWAY_ALLOW_PLAINTEXT=true says otherwise. */
export function gatewayProductionIssues(
  env: Pick<PaymentsEnv, 'PERSONA_GATEWAY_URL' | 'PERSONA_GATEWAY_ALLOW_PLAINTEXT'>,
): ConfigIssue[] {
  if (!env.PERSONA_GATEWAY_URL.startsWith('https://') && env.PERSONA_GATEWAY_ALLOW_PLAINTEXT !== 'true')
    return [
      {
        path: ['PERSONA_GATEWAY_URL'],
        message:
          'must be https:// in production (NODE_ENV=production): charges and card tokens travel on it; ' +
          'PERSONA_GATEWAY_ALLOW_PLAINTEXT=true where a mesh encrypts for it',
      },
    ];
  return [];
}

/** How the recovery's charge treats the gateway (activities/recovery.ts ChargePolicy). */
export function chargePolicy(
  settings: Pick<
    PaymentsEnv,
    'PERSONA_GATEWAY_KEY_TTL_HOURS' | 'PERSONA_CHARGE_SETTLE_MINUTES' | 'PERSONA_GATEWAY_TIMEOUT_MS'
  >,
): { keyTtlMs: number; settleMs: number; clientTimeoutMs: number } {
  return {
    keyTtlMs: settings.PERSONA_GATEWAY_KEY_TTL_HOURS * 3_600_000,
    settleMs: settings.PERSONA_CHARGE_SETTLE_MINUTES * 60_000,
    clientTimeoutMs: settings.PERSONA_GATEWAY_TIMEOUT_MS,
  };
}

/** How long a recovery's charge retries before ops are asked, as a workflow duration ('6h', '90m'). */
export function chargeRetryFor(settings: Pick<PaymentsEnv, 'PERSONA_CHARGE_RETRY_HOURS'>): string {
  return `${Math.max(1, Math.round(settings.PERSONA_CHARGE_RETRY_HOURS * 60))}m`;
}

/** How long a stopping recovery asks the gateway about an unknown charge before it is overdue ('1440m'). */
export function settleFor(settings: Pick<PaymentsEnv, 'PERSONA_SETTLE_DEADLINE_HOURS'>): string {
  return `${Math.max(1, Math.round(settings.PERSONA_SETTLE_DEADLINE_HOURS * 60))}m`;
}

/** How long a recovery waits for ops before it is overdue, as a workflow duration ('24h', '90m'). */
export function attentionDeadline(settings: Pick<PaymentsEnv, 'PERSONA_ATTENTION_DEADLINE_HOURS'>): string {
  return `${Math.max(1, Math.round(settings.PERSONA_ATTENTION_DEADLINE_HOURS * 60))}m`;
}
