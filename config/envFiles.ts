/**
 * Secrets as files: each secret variable X may be given as X_FILE instead, the path of a file that
 * holds its value (a compose secret under /run/secrets, a mounted Kubernetes Secret), so that the
 * secret is in neither the process's environment nor `docker inspect`. The file's content, less
 * trailing whitespace (as shells, the databases and Prometheus read such files), is the value. X and
 * X_FILE together, or a file that cannot be read, are refused with the variable named.
 * (TEMPORAL_API_KEY has a _FILE of its own, re-read as it rotates.)
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ConfigIssue } from './envCore';

export const SECRET_VARIABLES = [
  'NEO4J_PASSWORD',
  'PERSONA_TOKEN_KEYS',
  'PERSONA_PAYLOAD_KEYS',
  'PERSONA_JWT_SECRET',
  'PERSONA_METRICS_TOKEN',
  'PERSONA_EVENTS_WEBHOOK_SECRET',
  'PERSONA_NOTIFY_WEBHOOK_SECRET',
  'KAFKA_SASL_PASSWORD',
] as const;

/** `<secret>_FILE` for every secret variable: a path. */
export const secretFilesShape = Object.fromEntries(
  SECRET_VARIABLES.map((v) => [`${v}_FILE`, z.string().min(1).optional()]),
) as Record<`${(typeof SECRET_VARIABLES)[number]}_FILE`, z.ZodOptional<z.ZodString>>;

/** `env` with each X_FILE's content as X, and what was wrong (X and X_FILE both, a file unread). */
export function withSecretFiles(env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; issues: ConfigIssue[] } {
  const out = { ...env };
  const issues: ConfigIssue[] = [];
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name] !== undefined) {
      issues.push({ path: [`${name}_FILE`], message: `set ${name} or ${name}_FILE, not both` });
      continue;
    }
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\s+$/, '');
    } catch (err) {
      issues.push({
        path: [`${name}_FILE`],
        message: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}): it holds ${name}`,
      });
    }
  }
  return { env: out, issues };
}
