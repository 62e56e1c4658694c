import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../config/env';

function files(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full, base) : [path.relative(base, full)];
  });
}

describe('proto/generated', () => {
  it('is what `npm run proto:gen` makes from the proto today', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'proto-gen-'));
    const script = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).scripts['proto:gen'] as string;
    const args = script
      .split(' ')
      .slice(1)
      .map((a) => (a.startsWith('--outDir=') ? `--outDir=${out}` : a));
    execFileSync(path.join(repoRoot, 'node_modules', '.bin', 'proto-loader-gen-types'), args, { cwd: repoRoot });
    const committed = path.join(repoRoot, 'proto', 'generated');
    expect(files(out).sort()).toEqual(files(committed).sort());
    for (const f of files(out))
      expect(readFileSync(path.join(out, f), 'utf8'), f).toBe(readFileSync(path.join(committed, f), 'utf8'));
  });
});
