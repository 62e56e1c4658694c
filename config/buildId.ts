/**
 * The worker's default build id (PERSONA_BUILD_ID unset): `<package version>-<12 hex digits>`, the
 * digits a SHA-256 over the workflow code a worker bundles — every file that workflows/index.ts
 * and the workflow interceptors (workflows/interceptors.ts) reach through relative imports, by
 * path and content, and the name and installed version of every package those files import
 * (`@temporalio/workflow` among them). The same code gives the same id on any machine and in any
 * folder, whichever way the worker loads it (bundled at start or the prebuilt bundle); a change to
 * a workflow or anything it imports gives a new id, and so a new Worker Deployment version. A
 * change elsewhere (activities, the api, docs) keeps the id: activities are not pinned to a version.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The modules a worker's workflow bundle starts from, relative to the repository root. */
export const WORKFLOW_ENTRY_MODULES = ['workflows/index.ts', 'workflows/interceptors.ts'];

const SPECIFIER =
  /(?:^|[\s;}])(?:import|export)\s+(type\s)?[^'"`;]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(?\s*['"]([^'"]+)['"]/g;

/**
 * The relative and package specifiers a TypeScript module imports or re-exports for their values:
 * `import type` and `export type` are erased from the bundle, so they are left out.
 */
export function importSpecifiers(source: string): string[] {
  const found = new Set<string>();
  for (const m of source.matchAll(SPECIFIER)) if (!m[1]) found.add((m[2] ?? m[3]) as string);
  return [...found];
}

function resolveRelative(fromFile: string, specifier: string): string {
  const base = path.resolve(path.dirname(fromFile), specifier);
  const candidates = [base, `${base}.ts`, base.replace(/\.js$/, '.ts'), path.join(base, 'index.ts')];
  const hit = candidates.find((c) => c.endsWith('.ts') && existsSync(c));
  if (!hit) throw new Error(`build id: cannot resolve '${specifier}' imported by ${fromFile}`);
  return hit;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

function packageVersion(root: string, name: string): string {
  const file = path.join(root, 'node_modules', name, 'package.json');
  return existsSync(file) ? String((JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version) : 'none';
}

/**
 * Where an image built by scripts/build-image.sh records the build id of the code it was built
 * from: it carries the workflow bundles, not the workflow source the id is a hash of.
 */
export const BUILD_ID_FILE = 'BUILD_ID';

/** The build id an image recorded (`folder` holds BUILD_ID and no workflow source), else undefined. */
export function recordedBuildId(folder: string): string | undefined {
  const root = path.resolve(folder);
  const recorded = path.join(root, BUILD_ID_FILE);
  if (existsSync(path.join(root, WORKFLOW_ENTRY_MODULES[0] as string)) || !existsSync(recorded)) return undefined;
  const id = readFileSync(recorded, 'utf8').trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/.test(id)) throw new Error(`${recorded}: not a build id: '${id}'`);
  return id;
}

/**
 * Why a worker must not poll as PERSONA_BUILD_ID `set` in an image that recorded `recorded`, or
 * null: a version names its workflow code, and workflows pinned to it replay on whatever code polls
 * as it. Outside an image (no recorded id) the variable is the deployer's to choose.
 */
export function buildIdMismatch(set: string | undefined, recorded: string | undefined): string | null {
  if (!set || !recorded || set === recorded) return null;
  return (
    `PERSONA_BUILD_ID: ${set} is not this image's build id ${recorded} (its ${BUILD_ID_FILE}): workflows pinned ` +
    `to ${set} would replay on code they did not run on; set ${recorded} (the chart's worker.buildId) or leave it unset`
  );
}

/**
 * The default build id for the code under `folder` (see the module's comment), or, in an image
 * (no workflow source there), the one its build recorded.
 */
export function workflowCodeBuildId(folder: string): string {
  // Absolute, as the imports it follows resolve: a relative root would name one file two ways.
  const root = path.resolve(folder);
  // Only where there is no workflow source to hash: a stale file in a checkout changes nothing.
  const recorded = recordedBuildId(root);
  if (recorded) return recorded;
  const hash = createHash('sha256');
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = WORKFLOW_ENTRY_MODULES.map((m) => path.join(root, m));
  while (queue.length > 0) {
    const file = queue.shift() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) queue.push(resolveRelative(file, spec));
      else packages.add(packageName(spec));
    }
  }
  for (const file of [...seen].sort()) {
    hash.update(`${path.relative(root, file).split(path.sep).join('/')}\0`);
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  for (const name of [...packages].sort()) hash.update(`${name}@${packageVersion(root, name)}\0`);
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return `${version}-${hash.digest('hex').slice(0, 12)}`;
}
