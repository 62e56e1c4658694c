/**
 * How every Temporal connection of Persona travels: TLS (mTLS with a client certificate) and the
 * API key, from configuration (config/env.ts, TEMPORAL_TLS*, TEMPORAL_API_KEY*). One set of
 * options for the client's Connection (temporal/connection.ts) and the worker's NativeConnection,
 * so no connection goes out in plaintext while the others use TLS. The files are read, and
 * checked, when a connection is made: at start-up, so a missing or wrong file stops the process
 * with a ConfigError naming its variable.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { ConfigError, temporalTlsOn, type Settings } from '../config/env';

/** Where Temporal is and how to reach it; without the TLS fields, plaintext (the local dev server). */
export type TemporalTransportSettings = Pick<Settings, 'TEMPORAL_ADDRESS'> &
  Partial<
    Pick<
      Settings,
      | 'TEMPORAL_TLS'
      | 'TEMPORAL_TLS_CA_FILE'
      | 'TEMPORAL_TLS_CERT_FILE'
      | 'TEMPORAL_TLS_KEY_FILE'
      | 'TEMPORAL_TLS_SERVER_NAME'
      | 'TEMPORAL_API_KEY_FILE'
      | 'temporalApiKey'
    >
  >;

export interface TemporalTransport {
  /** false: plaintext. */
  tls: TLSConfig | false;
  /** Sent as `Authorization: Bearer <key>` on every call. */
  apiKey?: string;
}

function read(name: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError([`${name}: cannot read ${file} (${err instanceof Error ? err.message : String(err)})`]);
  }
}

function certificate(name: string, file: string): { pem: Buffer; cert: X509Certificate } {
  const pem = read(name, file);
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no "BEGIN CERTIFICATE" block');
    return { pem, cert: new X509Certificate(pem) };
  } catch (err) {
    throw new ConfigError([
      `${name}: ${file} is not a PEM certificate (${err instanceof Error ? err.message : String(err)})`,
    ]);
  }
}

/** The API key from TEMPORAL_API_KEY, or TEMPORAL_API_KEY_FILE's one line. */
function apiKeyOf(s: TemporalTransportSettings): string | undefined {
  if (s.temporalApiKey) return s.temporalApiKey();
  if (!s.TEMPORAL_API_KEY_FILE) return undefined;
  const key = read('TEMPORAL_API_KEY_FILE', s.TEMPORAL_API_KEY_FILE).toString('utf8').trim();
  if (key === '' || /\s/.test(key))
    throw new ConfigError([
      `TEMPORAL_API_KEY_FILE: ${s.TEMPORAL_API_KEY_FILE} must hold the API key alone, on one line` +
        (key === '' ? ' (it is empty)' : ''),
    ]);
  return key;
}

/**
 * The `tls` and `apiKey` options of a Temporal connection (client or worker), the files read and
 * checked: a CA and a client certificate that are certificates, a key that is the certificate's.
 * Throws ConfigError naming the variable.
 */
export function temporalTransport(s: TemporalTransportSettings): TemporalTransport {
  const apiKey = apiKeyOf(s);
  if (!temporalTlsOn({ ...s, ...(apiKey ? { TEMPORAL_API_KEY: apiKey } : {}) }))
    // The SDK would turn TLS on for an API key: plaintext was asked for explicitly (and allowed).
    return { tls: false, ...(apiKey ? { apiKey } : {}) };
  const tls: TLSConfig = {};
  if (s.TEMPORAL_TLS_CA_FILE)
    tls.serverRootCACertificate = certificate('TEMPORAL_TLS_CA_FILE', s.TEMPORAL_TLS_CA_FILE).pem;
  if (s.TEMPORAL_TLS_CERT_FILE || s.TEMPORAL_TLS_KEY_FILE) {
    if (!s.TEMPORAL_TLS_CERT_FILE || !s.TEMPORAL_TLS_KEY_FILE)
      throw new ConfigError([
        `${s.TEMPORAL_TLS_CERT_FILE ? 'TEMPORAL_TLS_KEY_FILE' : 'TEMPORAL_TLS_CERT_FILE'}: needed with the other`,
      ]);
    const { pem: crt, cert } = certificate('TEMPORAL_TLS_CERT_FILE', s.TEMPORAL_TLS_CERT_FILE);
    const key = read('TEMPORAL_TLS_KEY_FILE', s.TEMPORAL_TLS_KEY_FILE);
    let matches: boolean;
    try {
      matches = cert.checkPrivateKey(createPrivateKey(key));
    } catch (err) {
      throw new ConfigError([
        `TEMPORAL_TLS_KEY_FILE: ${s.TEMPORAL_TLS_KEY_FILE} is not a PEM private key ` +
          `(${err instanceof Error ? err.message : String(err)})`,
      ]);
    }
    if (!matches)
      throw new ConfigError([
        `TEMPORAL_TLS_KEY_FILE: ${s.TEMPORAL_TLS_KEY_FILE} is not the key of the certificate in ` +
          `TEMPORAL_TLS_CERT_FILE (${s.TEMPORAL_TLS_CERT_FILE})`,
      ]);
    tls.clientCertPair = { crt, key };
  }
  if (s.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = s.TEMPORAL_TLS_SERVER_NAME;
  return { tls, ...(apiKey ? { apiKey } : {}) };
}

/** The worker's NativeConnection options: the address and the same transport as the client's. */
export function nativeConnectionOptions(s: TemporalTransportSettings): NativeConnectionOptions & TemporalTransport {
  return { address: s.TEMPORAL_ADDRESS, ...temporalTransport(s) };
}

/** What a log line may say about the transport (never the key). */
export function describeTransport(t: TemporalTransport): { tls: boolean; mtls: boolean; apiKey: boolean } {
  return { tls: t.tls !== false, mtls: t.tls !== false && Boolean(t.tls.clientCertPair), apiKey: Boolean(t.apiKey) };
}
