/**
 * Temporal as a trust boundary, the transport: the dev server speaks plaintext only, so a TLS
 * proxy (HAProxy, test/support/tlsProxy.ts) stands in front of it and requires a client
 * certificate signed by a throwaway CA. A real worker process and a real api process reach
 * Temporal only through it, configured by TEMPORAL_TLS_* alone, and an onboarding runs end to
 * end; a client without a certificate, with one another CA signed, or trusting another CA gets
 * nowhere; the API key goes on the wire as a bearer token from the client and from the worker.
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../config/env';
import { listCustomerEvents } from '../../graph';
import { connectTemporal, describeNamespace, type TemporalSettings } from '../../temporal/connection';
import { nativeConnectionOptions, temporalTransport } from '../../temporal/transport';
import { signToken } from '../support/api';
import { openTestGraph, testPayloadCodec, uniqueEmail, type TestGraph } from '../support/graph';
import { scrape } from '../support/observability';
import {
  freePort,
  startApiProcess,
  startProcess,
  startWorkerProcess,
  stopProcess,
  type RunningProcess,
} from '../support/processes';
import { makeCa, makeLeaf, startTlsProxy, type CertificateFiles, type TlsProxy } from '../support/tlsProxy';
import { taskQueuesOf } from '../../temporal/taskQueues';

const SERVER_NAME = 'temporal.persona.test';
let dir: string;
let ca: CertificateFiles;
let otherCa: CertificateFiles;
let client: CertificateFiles;
let stranger: CertificateFiles;
let proxy: TlsProxy;
let graph: TestGraph;
let tlsEnv: Record<string, string>;
const processes: RunningProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'persona-temporal-tls-'));
  ca = makeCa(dir, 'persona-test-ca');
  otherCa = makeCa(dir, 'another-ca');
  const server = makeLeaf(dir, 'temporal-server', ca, { server: SERVER_NAME });
  client = makeLeaf(dir, 'persona-client', ca, { client: true });
  stranger = makeLeaf(dir, 'stranger-client', otherCa, { client: true });
  proxy = await startTlsProxy({
    dir,
    port: await freePort(),
    target: loadSettings().TEMPORAL_ADDRESS,
    server,
    clientCa: ca.cert,
  });
  graph = openTestGraph();
  // What a deployment sets: nothing else tells the processes to use TLS.
  tlsEnv = {
    TEMPORAL_ADDRESS: proxy.address,
    TEMPORAL_TLS_CA_FILE: ca.cert,
    TEMPORAL_TLS_CERT_FILE: client.cert,
    TEMPORAL_TLS_KEY_FILE: client.key,
    TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
  };
});

afterAll(async () => {
  for (const p of processes) await stopProcess(p);
  await proxy?.stop();
  await graph?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The settings a process would load from the environment, with these changes. */
function settingsWith(change: Record<string, string | undefined>): TemporalSettings {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...tlsEnv };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return loadSettings(env);
}

/** What a client with these settings gets when it asks for the namespace: 'ok', or the error. */
async function askNamespace(settings: TemporalSettings): Promise<string> {
  const { connection } = await connectTemporal(settings, { lazy: true, callDeadlineMs: 10_000 });
  try {
    await describeNamespace(connection, settings.TEMPORAL_NAMESPACE, 10_000);
    return 'ok';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await connection.close();
  }
}

/** Handshakes the proxy refused so far (it logs each connection). */
function handshakeRefusals(): number {
  return proxy.output().match(/SSL handshake failure|SSL client certificate not trusted/g)?.length ?? 0;
}

describe('Temporal behind a TLS proxy that requires a client certificate', () => {
  it('runs an onboarding end to end with the api and the worker connected over mTLS', async () => {
    const taskQueue = `tls-${randomUUID()}`;
    const env = { ...tlsEnv, TEMPORAL_TASK_QUEUE: taskQueue };
    const worker = await startWorkerProcess(env);
    processes.push(worker);
    // Ready means its readiness probe (its own connection) reached the namespace through the proxy.
    const api = await startApiProcess(env);
    processes.push(api);

    const email = uniqueEmail('tls');
    const res = await fetch(`${api.url}/api/v1/onboarding?wait=true`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await signToken(graph.config.jwtSecret, 'onboarding:write identity:verify')}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        payment_method: {
          type: 'card',
          token: `tok_${randomUUID()}`,
          brand: 'visa',
          last_four: '4242',
          expiry_month: 1,
          expiry_year: 2033,
        },
        device: { fingerprint: `fp-${randomUUID()}` },
        digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
      }),
    });
    const body = (await res.json()) as { customer_id: string; outcome: string; workflow_id: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.outcome).toBe('created');

    // A client of our own over mTLS sees the run complete (the worker polled through the proxy).
    const { connection, client: temporal } = await connectTemporal(settingsWith({}), {
      payloadCodec: testPayloadCodec(graph),
    });
    try {
      const handle = temporal.workflow.getHandle(body.workflow_id);
      await handle.result();
      expect((await handle.describe()).taskQueue).toBe(taskQueuesOf(taskQueue).interactive);
    } finally {
      await connection.close();
    }
    const events = await listCustomerEvents(graph, body.customer_id);
    expect(events.filter((e) => e.type === 'CustomerOnboarded')).toHaveLength(1);

    // Both say on /metrics when the certificates they run on expire (PersonaCertificateExpiresSoon).
    const notAfter = (file: string) => Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000;
    for (const url of [worker.url, api.url]) {
      const expiry = (await scrape(url)).filter((s) => s.name === 'persona_tls_certificate_expiry_timestamp_seconds');
      expect(Object.fromEntries(expiry.map((s) => [s.labels.variable, s.value])), url).toEqual({
        TEMPORAL_TLS_CA_FILE: notAfter(tlsEnv.TEMPORAL_TLS_CA_FILE as string),
        TEMPORAL_TLS_CERT_FILE: notAfter(tlsEnv.TEMPORAL_TLS_CERT_FILE as string),
      });
    }
  });

  it('refuses a client without a client certificate, and one whose certificate another CA signed', async () => {
    expect(await askNamespace(settingsWith({}))).toBe('ok');
    expect(
      await askNamespace(settingsWith({ TEMPORAL_TLS_CERT_FILE: undefined, TEMPORAL_TLS_KEY_FILE: undefined })),
    ).toMatch(/certificate required/);
    expect(
      await askNamespace(settingsWith({ TEMPORAL_TLS_CERT_FILE: stranger.cert, TEMPORAL_TLS_KEY_FILE: stranger.key })),
    ).toMatch(/unknown ca/);
    // Nor does plaintext reach the dev server through the proxy.
    expect(
      await askNamespace(
        settingsWith({
          TEMPORAL_TLS_CA_FILE: undefined,
          TEMPORAL_TLS_CERT_FILE: undefined,
          TEMPORAL_TLS_KEY_FILE: undefined,
          TEMPORAL_TLS_SERVER_NAME: undefined,
        }),
      ),
    ).toMatch(/UNAVAILABLE/);
  });

  it('refuses the server as a client that trusts another CA, or expects another name', async () => {
    expect(await askNamespace(settingsWith({ TEMPORAL_TLS_CA_FILE: otherCa.cert }))).toMatch(
      /unable to verify the first certificate/,
    );
    expect(await askNamespace(settingsWith({ TEMPORAL_TLS_SERVER_NAME: 'other.persona.test' }))).toMatch(
      /does not match certificate's altnames/,
    );
  });

  it('keeps a worker without its client certificate from starting', async () => {
    const refusedBefore = handshakeRefusals();
    const { TEMPORAL_TLS_CERT_FILE: _cert, TEMPORAL_TLS_KEY_FILE: _key, ...withoutCertificate } = tlsEnv;
    const worker = startProcess('workers/main.ts', {
      ...withoutCertificate,
      TEMPORAL_TASK_QUEUE: `tls-${randomUUID()}`,
      PERSONA_WORKER_HTTP_PORT: String(await freePort()),
      PERSONA_WORKER_SDK_METRICS_PORT: String(await freePort()),
      PERSONA_SCHEDULES: 'skip',
      LOG_LEVEL: 'warn',
    });
    processes.push(worker);
    const code = await worker.exited;
    expect(code, worker.output()).toBe(1);
    // It got as far as Temporal (its first call failed), and the proxy refused its handshakes:
    // TLS 1.3 tells a client of the missing certificate after its side of the handshake, so the
    // core's own message may say only that the connection closed.
    expect(worker.output()).toMatch(/TransportError: Failed to call GetSystemInfo/);
    expect(handshakeRefusals()).toBeGreaterThan(refusedBefore);
  });
});

describe('the certificate files', () => {
  it('are read and checked at start, a wrong one named by its variable', () => {
    const good = temporalTransport(settingsWith({}));
    expect(good.tls && good.tls.clientCertPair?.crt.toString()).toBe(readFileSync(client.cert, 'utf8'));
    expect(good.tls && good.tls.serverRootCACertificate?.toString()).toBe(readFileSync(ca.cert, 'utf8'));
    expect(good.tls && good.tls.serverNameOverride).toBe(SERVER_NAME);
    expect(() => temporalTransport(settingsWith({ TEMPORAL_TLS_KEY_FILE: stranger.key }))).toThrow(
      /TEMPORAL_TLS_KEY_FILE: .*stranger-client\.key is not the key of the certificate in TEMPORAL_TLS_CERT_FILE/,
    );
    expect(() => temporalTransport(settingsWith({ TEMPORAL_TLS_KEY_FILE: client.cert }))).toThrow(
      /TEMPORAL_TLS_KEY_FILE: .*persona-client\.pem is not a PEM private key/,
    );
    expect(() => temporalTransport(settingsWith({ TEMPORAL_TLS_CA_FILE: client.key }))).toThrow(
      /TEMPORAL_TLS_CA_FILE: .*persona-client\.key is not a PEM certificate/,
    );
  });
});

describe('the Temporal API key', () => {
  it('goes with every call as a bearer token, from the client and from the worker', async () => {
    // A TLS server that answers every gRPC call UNIMPLEMENTED and notes who sent which header.
    const server = makeLeaf(dir, 'key-server', ca, { server: SERVER_NAME });
    const seen: { agent: string; authorization: string | undefined }[] = [];
    const fake = http2.createSecureServer({
      cert: readFileSync(server.cert),
      key: readFileSync(server.key),
      allowHTTP1: false,
    });
    fake.on('stream', (stream, headers) => {
      seen.push({ agent: String(headers['user-agent'] ?? ''), authorization: headers.authorization });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', () => resolve()));
    const keyFile = path.join(dir, 'temporal.key');
    const key = `persona-${randomUUID()}`;
    writeFileSync(keyFile, `${key}\n`);
    try {
      const settings = loadSettings({
        TEMPORAL_ADDRESS: `127.0.0.1:${(fake.address() as AddressInfo).port}`,
        TEMPORAL_API_KEY_FILE: keyFile,
        TEMPORAL_TLS_CA_FILE: ca.cert,
        TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      });
      // The client (grpc-js)…
      expect(await askNamespace(settings)).toMatch(/UNIMPLEMENTED/);
      const byClient = seen.length;
      expect(byClient).toBeGreaterThan(0);
      // …and the worker's connection (the SDK's Rust core) asks for the server's capabilities at once.
      await NativeConnection.connect(nativeConnectionOptions(settings)).then(
        (c) => c.close(),
        () => undefined,
      );
      expect(seen.length).toBeGreaterThan(byClient);
      expect(new Set(seen.map((s) => s.agent)).size, JSON.stringify(seen)).toBeGreaterThan(1);
      expect(
        seen.map((s) => s.authorization),
        JSON.stringify(seen),
      ).toEqual(seen.map(() => `Bearer ${key}`));
    } finally {
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });
});
