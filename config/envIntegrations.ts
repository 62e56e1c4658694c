/**
 * The services Persona calls out to besides its stores: the customer-notifications webhook (signed,
 * over https, in production; or the log, which may show consent codes in development), Chimera, and
 * an OpenTelemetry collector.
 */
import { z } from 'zod';
import type { ConfigIssue, EnvOf } from './envCore';

export const integrationsShape = {
  /** When set, customer notifications are POSTed here (else they are logged); https:// in production. */
  PERSONA_NOTIFY_WEBHOOK_URL: z.url().optional(),
  /**
   * The notification webhook's signing secret: each POST carries `Persona-Signature` (an HMAC-SHA256
   * of the time and the body, as the events webhook's) for the receiver to verify. Required in
   * production with the webhook: a merge's consent code travels in it.
   */
  PERSONA_NOTIFY_WEBHOOK_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * Without a webhook, notifications are logged; `true` also logs a message's code (an identity
   * merge's consent code), so a developer can answer it (`npm run dev` sets it). Refused in production.
   */
  PERSONA_LOG_NOTIFICATION_CODES: z.enum(['true', 'false']).default('false'),
  /**
   * Chimera's base URL; unset, a local stand-in records each request as an event. https:// in
   * production (a sighting names the customer and the device), or http:// to this host only.
   */
  CHIMERA_URL: z.url().optional(),
  /**
   * When set, the api and the worker export OpenTelemetry traces here over OTLP/HTTP (`<url>/v1/traces`).
   * https:// in production, or http:// to this host only (a collector beside the process).
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
};

export type IntegrationsEnv = EnvOf<typeof integrationsShape>;

/**
 * What production refuses here: consent codes in the logs, and a notification webhook (which carries
 * them) over plain http or unsigned.
 */
export function notificationProductionIssues(
  env: Pick<
    IntegrationsEnv,
    'PERSONA_LOG_NOTIFICATION_CODES' | 'PERSONA_NOTIFY_WEBHOOK_URL' | 'PERSONA_NOTIFY_WEBHOOK_SECRET'
  >,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (env.PERSONA_LOG_NOTIFICATION_CODES === 'true')
    issues.push({
      path: ['PERSONA_LOG_NOTIFICATION_CODES'],
      message: 'not in production (NODE_ENV=production): consent codes must never reach the logs',
    });
  const url = env.PERSONA_NOTIFY_WEBHOOK_URL;
  if (url && !url.startsWith('https://'))
    issues.push({
      path: ['PERSONA_NOTIFY_WEBHOOK_URL'],
      message: 'must be https:// in production (NODE_ENV=production): notifications carry merge consent codes',
    });
  if (url && !env.PERSONA_NOTIFY_WEBHOOK_SECRET)
    issues.push({
      path: ['PERSONA_NOTIFY_WEBHOOK_SECRET'],
      message:
        'required in production with PERSONA_NOTIFY_WEBHOOK_URL (at least 32 characters): notifications carry ' +
        "merge consent codes, and the receiver must be able to tell Persona's from anyone else's",
    });
  return issues;
}

/** Whether `url` names this host (a sidecar or an agent on the node): plaintext leaves no machine. */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * What production refuses of the other services Persona calls: Chimera (customers' and devices' ids
 * in every sighting) and the trace collector (spans name customers and workflows) over plain http to
 * another host.
 */
export function integrationProductionIssues(
  env: Pick<IntegrationsEnv, 'CHIMERA_URL' | 'OTEL_EXPORTER_OTLP_ENDPOINT'>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [name, what] of [
    ['CHIMERA_URL', 'each sighting names a customer and a device'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'spans name customers and workflows'],
  ] as const) {
    const url = env[name];
    if (url && !url.startsWith('https://') && !isLoopback(url))
      issues.push({
        path: [name],
        message: `must be https:// in production (NODE_ENV=production), or http:// to this host only: ${what}`,
      });
  }
  return issues;
}
