/**
 * Temporal: the frontend's address, namespace, task queue and UI (TEMPORAL_*), and how Persona
 * reaches it: TLS, a client certificate or an API key, and what production requires of them.
 */
import { z } from 'zod';
import type { ConfigIssue, CoreEnv, EnvOf } from './envCore';

const hostPort = z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7233');

export const temporalShape = {
  TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('persona'),
  TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
  /**
   * TLS to Temporal's frontend (docs/deployment.md#temporal-tls-and-api-keys): `true` verifies the
   * server against the system's CAs, or TEMPORAL_TLS_CA_FILE's PEM file when set; unset, TLS is on
   * when any of the TEMPORAL_TLS_* files, the server name or an API key is set. TEMPORAL_TLS_CERT_FILE
   * and _KEY_FILE (PEM files, both or neither) authenticate Persona by its certificate (mTLS);
   * TEMPORAL_TLS_SERVER_NAME is the name the server's certificate must carry (and the SNI) when it
   * is not TEMPORAL_ADDRESS's host. Required in production unless TEMPORAL_ALLOW_PLAINTEXT=true.
   */
  TEMPORAL_TLS: z.enum(['true', 'false']).optional(),
  TEMPORAL_TLS_CA_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z
    .string()
    .regex(/^[A-Za-z0-9.-]{1,253}$/, 'expected a host name such as temporal.internal')
    .optional(),
  /**
   * An API key Temporal authenticates Persona by (sent as `Authorization: Bearer <key>`, over TLS
   * only), or a file holding it (one or the other). In production Persona authenticates by an API
   * key or by a client certificate.
   */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_API_KEY_FILE: z.string().min(1).optional(),
  /**
   * `true` lets production talk to Temporal without TLS and without authenticating (a mesh that
   * does both), and lets an API key travel without TLS.
   */
  TEMPORAL_ALLOW_PLAINTEXT: z.enum(['true', 'false']).default('false'),
};

export type TemporalEnv = EnvOf<typeof temporalShape>;

/**
 * Whether Persona speaks TLS to Temporal: TEMPORAL_TLS when set; otherwise when anything that only
 * makes sense over TLS is set (a CA, a client certificate, a server name, an API key), as the
 * Temporal SDK itself turns TLS on for an API key.
 */
export function temporalTlsOn(
  env: Partial<
    Pick<
      TemporalEnv,
      | 'TEMPORAL_TLS'
      | 'TEMPORAL_TLS_CA_FILE'
      | 'TEMPORAL_TLS_CERT_FILE'
      | 'TEMPORAL_TLS_KEY_FILE'
      | 'TEMPORAL_TLS_SERVER_NAME'
      | 'TEMPORAL_API_KEY'
      | 'TEMPORAL_API_KEY_FILE'
    >
  >,
): boolean {
  if (env.TEMPORAL_TLS !== undefined) return env.TEMPORAL_TLS === 'true';
  return Boolean(
    env.TEMPORAL_TLS_CA_FILE ||
    env.TEMPORAL_TLS_CERT_FILE ||
    env.TEMPORAL_TLS_KEY_FILE ||
    env.TEMPORAL_TLS_SERVER_NAME ||
    env.TEMPORAL_API_KEY ||
    env.TEMPORAL_API_KEY_FILE,
  );
}

/**
 * What is wrong with Temporal's TLS and API-key settings: half a certificate pair, TLS files with
 * TEMPORAL_TLS=false, both forms of the API key, an API key that would travel in plaintext, and,
 * in production, a connection that is not encrypted or not authenticated (unless
 * TEMPORAL_ALLOW_PLAINTEXT=true).
 */
export function temporalSecurityIssues(env: TemporalEnv & Pick<CoreEnv, 'NODE_ENV'>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const tls = temporalTlsOn(env);
  const allowPlaintext = env.TEMPORAL_ALLOW_PLAINTEXT === 'true';
  if (Boolean(env.TEMPORAL_TLS_CERT_FILE) !== Boolean(env.TEMPORAL_TLS_KEY_FILE))
    issues.push({
      path: [env.TEMPORAL_TLS_CERT_FILE ? 'TEMPORAL_TLS_KEY_FILE' : 'TEMPORAL_TLS_CERT_FILE'],
      message: 'TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together',
    });
  if (!tls)
    for (const name of [
      'TEMPORAL_TLS_CA_FILE',
      'TEMPORAL_TLS_CERT_FILE',
      'TEMPORAL_TLS_KEY_FILE',
      'TEMPORAL_TLS_SERVER_NAME',
    ] as const)
      if (env[name]) issues.push({ path: [name], message: 'needs TLS, but TEMPORAL_TLS=false' });
  if (env.TEMPORAL_API_KEY && env.TEMPORAL_API_KEY_FILE)
    issues.push({
      path: ['TEMPORAL_API_KEY_FILE'],
      message: 'set TEMPORAL_API_KEY or TEMPORAL_API_KEY_FILE, not both',
    });
  const apiKey = Boolean(env.TEMPORAL_API_KEY || env.TEMPORAL_API_KEY_FILE);
  if (apiKey && !tls && !allowPlaintext)
    issues.push({
      path: [env.TEMPORAL_API_KEY ? 'TEMPORAL_API_KEY' : 'TEMPORAL_API_KEY_FILE'],
      message:
        'would be sent in plaintext with TEMPORAL_TLS=false: turn TLS on, or set TEMPORAL_ALLOW_PLAINTEXT=true ' +
        'where a mesh encrypts',
    });
  if (env.NODE_ENV === 'production' && !allowPlaintext) {
    if (!tls)
      issues.push({
        path: ['TEMPORAL_TLS'],
        message:
          'required in production: set TEMPORAL_TLS=true (and TEMPORAL_TLS_CA_FILE for a private CA), ' +
          'or TEMPORAL_ALLOW_PLAINTEXT=true where a mesh encrypts and authenticates',
      });
    else if (!apiKey && !env.TEMPORAL_TLS_CERT_FILE)
      issues.push({
        path: ['TEMPORAL_TLS_CERT_FILE'],
        message:
          'required in production: Persona authenticates to Temporal by a client certificate ' +
          '(TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE) or by an API key (TEMPORAL_API_KEY or _FILE)',
      });
  }
  return issues;
}
