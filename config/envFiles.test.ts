import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, loadSettings } from './env';
import { SECRET_VARIABLES, withSecretFiles } from './envFiles';
import { newKeySpec } from './keyRing';

const dir = mkdtempSync(path.join(tmpdir(), 'persona-secrets-'));
const secretFile = (name: string, content: string): string => {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
};
const stack = () => mkdtempSync(path.join(tmpdir(), 'persona-stack-'));

describe('secrets as files', () => {
  it('reads each secret from X_FILE, less trailing whitespace, for every secret variable', () => {
    for (const name of SECRET_VARIABLES) {
      const { env, issues } = withSecretFiles({ [`${name}_FILE`]: secretFile(name, `value of ${name}\r\n \n`) });
      expect(issues).toEqual([]);
      expect(env[name]).toBe(`value of ${name}`);
    }
  });

  it('loads the api and the worker from files alone: nothing secret in the environment', () => {
    const c = loadConfig({
      PERSONA_STACK_DIR: stack(),
      NEO4J_PASSWORD_FILE: secretFile('neo4j', 'the-graphs-own-password\n'),
      PERSONA_TOKEN_KEYS_FILE: secretFile('token-keys', newKeySpec('token-1')),
      PERSONA_PAYLOAD_KEYS_FILE: secretFile('payload-keys', newKeySpec('payload-1')),
      PERSONA_JWT_SECRET_FILE: secretFile('jwt', 'j'.repeat(32)),
      PERSONA_METRICS_TOKEN_FILE: secretFile('metrics', 'a-metrics-token-of-its-own'),
    });
    expect(c.NEO4J_PASSWORD).toBe('the-graphs-own-password');
    expect(c.jwtSecret).toBe('j'.repeat(32));
    expect(c.tokenKeys.active.id).toBe('token-1');
    expect(c.payloadKeys.active.id).toBe('payload-1');
    expect(c.PERSONA_METRICS_TOKEN).toBe('a-metrics-token-of-its-own');
  });

  it("holds a file's value to the variable's own rules, production's included", () => {
    const production = { NODE_ENV: 'production', PERSONA_STACK_DIR: stack() };
    expect(() => loadSettings({ ...production, NEO4J_PASSWORD_FILE: secretFile('local', 'persona-local\n') })).toThrow(
      /NEO4J_PASSWORD: required in production/,
    );
    expect(() => loadSettings({ PERSONA_METRICS_TOKEN_FILE: secretFile('short', 'short') })).toThrow(
      /PERSONA_METRICS_TOKEN: must be at least 16 characters/,
    );
  });

  it('refuses a secret given both ways, and a file it cannot read, naming the variable', () => {
    const both = withSecretFiles({ PERSONA_JWT_SECRET: 'x', PERSONA_JWT_SECRET_FILE: secretFile('j2', 'y') });
    expect(both.issues).toEqual([
      { path: ['PERSONA_JWT_SECRET_FILE'], message: 'set PERSONA_JWT_SECRET or PERSONA_JWT_SECRET_FILE, not both' },
    ]);
    expect(() => loadSettings({ NEO4J_PASSWORD_FILE: path.join(dir, 'missing') })).toThrow(
      /NEO4J_PASSWORD_FILE: cannot read .*missing \(ENOENT\): it holds NEO4J_PASSWORD/,
    );
  });
});
