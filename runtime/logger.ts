/**
 * Structured JSON logs (pino) for every process. Anything that could carry a payment token or
 * a personal identifier is redacted by key wherever it appears.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACTED_KEYS = ['token', 'encryptedToken', 'password', 'authorization', 'value', 'email', 'phone', 'fingerprint'];

export function createLogger(name: string, level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name,
      level,
      base: { service: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]), censor: '[redacted]' },
    },
    destination,
  );
}
