import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadSettings } from '../config/env';
import { describeTransport, nativeConnectionOptions, temporalTransport } from './transport';

const dir = mkdtempSync(path.join(tmpdir(), 'persona-transport-'));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** The ConfigError's issues when building the transport throws one (else fails). */
function issuesOf(env: Record<string, string>): string[] {
  try {
    temporalTransport(loadSettings(env));
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('the Temporal transport (TLS and API key of every connection)', () => {
  it('is plaintext by default, for the local dev server', () => {
    expect(temporalTransport(loadSettings({}))).toEqual({ tls: false });
    expect(nativeConnectionOptions(loadSettings({}))).toEqual({ address: '127.0.0.1:7233', tls: false });
  });

  it('carries the API key, from the variable or its file, to the client and the worker alike, over TLS', () => {
    const fromEnv = loadSettings({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_API_KEY: 'key-from-env' });
    expect(temporalTransport(fromEnv)).toEqual({ tls: {}, apiKey: 'key-from-env' });
    expect(nativeConnectionOptions(fromEnv)).toEqual({
      address: 'temporal.internal:7233',
      tls: {},
      apiKey: 'key-from-env',
    });
    const fromFile = loadSettings({ TEMPORAL_API_KEY_FILE: file('api.key', '  key-from-file\n') });
    expect(temporalTransport(fromFile)).toEqual({ tls: {}, apiKey: 'key-from-file' });
    // Plaintext only when asked for and allowed (a mesh encrypts): the key still goes.
    const meshed = loadSettings({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false', TEMPORAL_ALLOW_PLAINTEXT: 'true' });
    expect(temporalTransport(meshed)).toEqual({ tls: false, apiKey: 'k' });
    expect(describeTransport(temporalTransport(fromEnv))).toEqual({ tls: true, mtls: false, apiKey: true });
    expect(JSON.stringify(describeTransport(temporalTransport(fromEnv)))).not.toContain('key-from-env');
  });

  it('passes the server name on', () => {
    expect(temporalTransport(loadSettings({ TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' }))).toEqual({
      tls: { serverNameOverride: 'temporal.internal' },
    });
  });

  it('names the variable of a file that is missing, empty or not what it should be', () => {
    const missing = path.join(dir, 'nowhere.pem');
    expect(issuesOf({ TEMPORAL_TLS_CA_FILE: missing })).toEqual([
      expect.stringMatching(new RegExp(`^TEMPORAL_TLS_CA_FILE: cannot read ${missing} \\(ENOENT`)),
    ]);
    expect(issuesOf({ TEMPORAL_TLS_CA_FILE: file('ca.txt', 'not a certificate') })).toEqual([
      expect.stringMatching(/^TEMPORAL_TLS_CA_FILE: .*ca\.txt is not a PEM certificate/),
    ]);
    const garbled = file('garbled.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(issuesOf({ TEMPORAL_TLS_CERT_FILE: garbled, TEMPORAL_TLS_KEY_FILE: missing })).toEqual([
      expect.stringMatching(/^TEMPORAL_TLS_CERT_FILE: .*garbled\.pem is not a PEM certificate/),
    ]);
    expect(issuesOf({ TEMPORAL_API_KEY_FILE: missing })).toEqual([
      expect.stringMatching(/^TEMPORAL_API_KEY_FILE: cannot read /),
    ]);
    expect(issuesOf({ TEMPORAL_API_KEY_FILE: file('empty.key', '\n') })).toEqual([
      expect.stringMatching(/^TEMPORAL_API_KEY_FILE: .* must hold the API key alone, on one line \(it is empty\)/),
    ]);
    expect(issuesOf({ TEMPORAL_API_KEY_FILE: file('two.key', 'one\ntwo\n') })).toEqual([
      expect.stringMatching(/^TEMPORAL_API_KEY_FILE: .* must hold the API key alone, on one line$/),
    ]);
  });
});
