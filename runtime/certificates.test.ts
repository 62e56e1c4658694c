import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { certificateExpiries, certificateExpiryGauge, earliestExpiry } from './certificates';

const dir = mkdtempSync(path.join(tmpdir(), 'persona-certs-'));
/** A self-signed certificate valid `days` days, made by openssl: its PEM path and its notAfter. */
function certificate(name: string, days: number): { file: string; notAfter: number } {
  const file = path.join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      path.join(dir, `${name}.key`),
      '-out',
      file,
      '-days',
      String(days),
      '-subj',
      `/CN=${name}`,
    ]),
    { stdio: 'ignore' },
  );
  const end = execFileSync('openssl', ['x509', '-in', file, '-noout', '-enddate'], { encoding: 'utf8' });
  return { file, notAfter: Date.parse(end.replace('notAfter=', '').trim()) / 1000 };
}

describe('certificate expiry', () => {
  it('is the earliest notAfter of a bundle, and none for a file without a certificate', () => {
    const soon = certificate('soon', 10);
    const later = certificate('later', 400);
    expect(soon.notAfter).toBeLessThan(later.notAfter);
    const bundle = readFileSync(later.file, 'utf8') + readFileSync(soon.file, 'utf8');
    expect(earliestExpiry(bundle)).toBe(soon.notAfter);
    expect(earliestExpiry(readFileSync(path.join(dir, 'soon.key'), 'utf8'))).toBeNull();
  });

  it('reports each configured file by its variable, leaving out what is unset or unreadable', () => {
    const temporal = certificate('temporal', 30);
    const kafka = certificate('kafka-ca', 90);
    writeFileSync(path.join(dir, 'not-a-cert.pem'), 'hello');
    const found = certificateExpiries({
      TEMPORAL_TLS_CERT_FILE: temporal.file,
      KAFKA_TLS_CA: kafka.file,
      TEMPORAL_TLS_CA_FILE: path.join(dir, 'missing.pem'),
      PERSONA_GRPC_TLS_CERT: path.join(dir, 'not-a-cert.pem'),
    });
    expect(found).toEqual([
      { variable: 'TEMPORAL_TLS_CERT_FILE', expires: temporal.notAfter },
      { variable: 'KAFKA_TLS_CA', expires: kafka.notAfter },
    ]);
  });

  it('is on /metrics as read at start: a file replaced since does not change it', async () => {
    const cert = certificate('grpc', 20);
    const registry = new Registry();
    certificateExpiryGauge(registry, { PERSONA_GRPC_TLS_CERT: cert.file });
    writeFileSync(cert.file, readFileSync(certificate('renewed', 300).file));
    expect(await registry.metrics()).toContain(
      `persona_tls_certificate_expiry_timestamp_seconds{variable="PERSONA_GRPC_TLS_CERT"} ${cert.notAfter}`,
    );
  });
});
