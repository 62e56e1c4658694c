/**
 * Structured JSON logs (pino) for every process. Anything that could carry a payment token or
 * a personal identifier is redacted by key wherever it appears; what the work in progress is
 * (a request id, a workflow and run) joins every line through `context`.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACTED_KEYS = [
  'token',
  'encryptedToken',
  'encrypted_token',
  'password',
  'authorization',
  'value',
  'email',
  'phone',
  'phone_number',
  'fingerprint',
  // Where a person is and what they use: an IP, a user agent, a street.
  'ip',
  'last_seen_ip',
  'remoteAddress',
  'user_agent',
  'userAgent',
  'last_seen_user_agent',
  'street1',
  'street2',
  'zip_code',
  // Who a person is (an onboarding's `person`).
  'person',
  'given_name',
  'family_name',
  'birth_date',
];

export interface LoggerOptions {
  destination?: pino.DestinationStream;
  /** Fields every line gets, e.g. the request id of the work in progress. A line's own fields win. */
  context?: () => Record<string, unknown>;
}

export function createLogger(name: string, level: string, options: LoggerOptions = {}): Logger {
  return pino(
    {
      name,
      level,
      base: { service: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      // At the top of a line and up to three objects deep.
      redact: { paths: REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]), censor: '[redacted]' },
      ...(options.context ? { mixin: options.context } : {}),
    },
    options.destination,
  );
}
