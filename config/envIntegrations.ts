/**
 * The services Persona calls out to besides its stores: the customer-notifications webhook (or the
 * log, which may show consent codes in development), Chimera, and an OpenTelemetry collector.
 */
import { z } from 'zod';
import type { ConfigIssue, EnvOf } from './envCore';

export const integrationsShape = {
  /** When set, customer notifications are POSTed here (else they are logged). */
  PERSONA_NOTIFY_WEBHOOK_URL: z.url().optional(),
  /**
   * Without a webhook, notifications are logged; `true` also logs a message's code (an identity
   * merge's consent code), so a developer can answer it (`npm run dev` sets it). Refused in production.
   */
  PERSONA_LOG_NOTIFICATION_CODES: z.enum(['true', 'false']).default('false'),
  /** Chimera's base URL; unset, a local stand-in records each request as an event. */
  CHIMERA_URL: z.url().optional(),
  /** When set, the api and the worker export OpenTelemetry traces here over OTLP/HTTP (`<url>/v1/traces`). */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
};

export type IntegrationsEnv = EnvOf<typeof integrationsShape>;

/** What production refuses here: consent codes in the logs. */
export function notificationProductionIssues(
  env: Pick<IntegrationsEnv, 'PERSONA_LOG_NOTIFICATION_CODES'>,
): ConfigIssue[] {
  if (env.PERSONA_LOG_NOTIFICATION_CODES === 'true')
    return [
      {
        path: ['PERSONA_LOG_NOTIFICATION_CODES'],
        message: 'not in production (NODE_ENV=production): consent codes must never reach the logs',
      },
    ];
  return [];
}
