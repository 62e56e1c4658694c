/**
 * When the certificates a process runs on expire, on its /metrics: a gauge per configured PEM file
 * (a CA or a certificate of Temporal's, Kafka's or the api's gRPC TLS), read as the process starts,
 * as its connections read them: a file replaced since is not what it runs on until it restarts. A
 * bundle of several certificates counts by the one that expires first. The alerts
 * PersonaCertificateExpiresSoon and PersonaCertificateExpiring read it (docs/runbook.md).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/env';

/** The variables that name a PEM file holding certificates. */
export const CERTIFICATE_VARIABLES = [
  'TEMPORAL_TLS_CA_FILE',
  'TEMPORAL_TLS_CERT_FILE',
  'KAFKA_TLS_CA',
  'KAFKA_TLS_CERT',
  'PERSONA_GRPC_TLS_CA',
  'PERSONA_GRPC_TLS_CERT',
] as const;

type CertificateSettings = Partial<Pick<Config, (typeof CERTIFICATE_VARIABLES)[number]>>;

/** The earliest `notAfter` (epoch seconds) among the certificates in PEM `text`, or null when it holds none. */
export function earliestExpiry(text: string): number | null {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const ends = blocks.map((b) => Date.parse(new X509Certificate(b).validTo) / 1000);
  return ends.length > 0 ? Math.min(...ends) : null;
}

/** Each configured certificate file's earliest expiry, read now; a file that cannot be read or parsed is left out. */
export function certificateExpiries(settings: CertificateSettings): { variable: string; expires: number }[] {
  const found: { variable: string; expires: number }[] = [];
  for (const variable of CERTIFICATE_VARIABLES) {
    const file = settings[variable];
    if (!file) continue;
    try {
      const expires = earliestExpiry(readFileSync(file, 'utf8'));
      if (expires !== null) found.push({ variable, expires });
    } catch {
      // The connection that uses it refuses it, loudly; the gauge has nothing to say.
    }
  }
  return found;
}

/** Registers `persona_tls_certificate_expiry_timestamp_seconds{variable}` with the expiries read now. */
export function certificateExpiryGauge(registry: Registry, settings: CertificateSettings): Gauge<'variable'> {
  const gauge = new Gauge({
    name: 'persona_tls_certificate_expiry_timestamp_seconds',
    help: 'When the certificate a configured PEM file held at start expires (the earliest of a bundle), Unix seconds',
    labelNames: ['variable'],
    registers: [registry],
  });
  for (const { variable, expires } of certificateExpiries(settings)) gauge.set({ variable }, expires);
  return gauge;
}
