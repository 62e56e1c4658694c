import { appendFileSync, cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildIdMismatch, importSpecifiers, recordedBuildId, workflowCodeBuildId } from './buildId';
import { repoRoot } from './env';

const copies: string[] = [];
/** A copy of the code a build id is taken from, in a folder of its own. */
function copyOfTheCode(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'persona-build-id-'));
  copies.push(dir);
  for (const folder of ['workflows', 'temporal', 'payments', 'activities', 'graph', 'config'])
    cpSync(path.join(repoRoot, folder), path.join(dir, folder), { recursive: true });
  cpSync(path.join(repoRoot, 'package.json'), path.join(dir, 'package.json'));
  // The installed packages, whose versions count.
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}
afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

describe('the default build id', () => {
  it('is the package version and a hash, the same for the same code wherever it lies', () => {
    const id = workflowCodeBuildId(repoRoot);
    expect(id).toMatch(/^\d+\.\d+\.\d+-[0-9a-f]{12}$/);
    expect(workflowCodeBuildId(copyOfTheCode())).toBe(id);
  });

  it('changes with a workflow, and with a module a workflow imports for its values', () => {
    const id = workflowCodeBuildId(repoRoot);
    const a = copyOfTheCode();
    appendFileSync(path.join(a, 'workflows', 'trustedDevice.ts'), '\n// changed\n');
    expect(workflowCodeBuildId(a)).not.toBe(id);
    const b = copyOfTheCode();
    appendFileSync(path.join(b, 'temporal', 'recovery.ts'), '\n// changed\n');
    expect(workflowCodeBuildId(b)).not.toBe(id);
  });

  it('stays when only activities or the graph change (workflows import their types alone)', () => {
    const id = workflowCodeBuildId(repoRoot);
    const c = copyOfTheCode();
    appendFileSync(path.join(c, 'activities', 'recovery.ts'), '\n// changed\n');
    writeFileSync(path.join(c, 'graph', 'unrelated.ts'), 'export const x = 1;\n');
    expect(workflowCodeBuildId(c)).toBe(id);
  });

  it('reads value imports and re-exports, not type-only ones', () => {
    const source = [
      "import { a } from './a';",
      "import type { B } from '../b';",
      'import {\n  c,\n  type C,\n} from "@scope/pkg/sub";',
      "export { d } from './d';",
      "export type { E } from './e';",
      "import './side-effect';",
    ].join('\n');
    expect(importSpecifiers(source).sort()).toEqual(['./a', './d', './side-effect', '@scope/pkg/sub']);
  });
});

describe("an image's build id", () => {
  it('is the one BUILD_ID records where there is no workflow source, and none in a checkout', () => {
    const image = mkdtempSync(path.join(tmpdir(), 'persona-image-id-'));
    writeFileSync(path.join(image, 'BUILD_ID'), '0.1.0-3990c2537885\n');
    expect(recordedBuildId(image)).toBe('0.1.0-3990c2537885');
    expect(recordedBuildId(repoRoot)).toBeUndefined();
    rmSync(image, { recursive: true, force: true });
  });

  it('refuses a worker told to poll as another build than its image holds, and nothing else', () => {
    expect(buildIdMismatch('0.1.0-aaaaaaaaaaaa', '0.1.0-3990c2537885')).toMatch(
      /^PERSONA_BUILD_ID: 0\.1\.0-aaaaaaaaaaaa is not this image's build id 0\.1\.0-3990c2537885 \(its BUILD_ID\)/,
    );
    expect(buildIdMismatch('0.1.0-3990c2537885', '0.1.0-3990c2537885')).toBeNull();
    expect(buildIdMismatch(undefined, '0.1.0-3990c2537885')).toBeNull();
    // A checkout: the deployer names versions as it likes (the versioning tests run two from one tree).
    expect(buildIdMismatch('blue', undefined)).toBeNull();
  });
});
