/**
 * `npm ci`'s last step (package.json `postinstall`): makes every npm script run a Node that
 * package.json's `engines` accepts. When the Node that ran `npm ci` is older, it installs the
 * version `.nvmrc` names from the npm registry (the `node-<platform>-<arch>` packages, the
 * official binaries) into `.tools/`, and links it as `node_modules/.bin/node`, which npm puts
 * first on every script's PATH: `npm run dev` and `npm test` then run that Node, and so does
 * everything they start. A Node that is new enough is left alone.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The Node binaries this script installs: `.nvmrc`'s version of the registry's `node-<platform>`
 * packages, each with the sha512 integrity a download must have (npm's own check trusts whatever
 * the registry's metadata says; this one does not). The registry carries Node 24 for Linux only
 * (`node-darwin-*` stop at 18). Moving `.nvmrc`: `npm view node-<platform>@<version> dist.integrity`
 * for each; deploy/image.test.ts keeps the version in step with `.nvmrc`.
 */
export const NODE_BINARIES = {
  version: '24.22.3',
  integrity: {
    'linux-x64': 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
    'linux-arm64': 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
  } as Record<string, string>,
};

/** A version's numbers: `v24.1.0` or `24.1.0`. */
export function versionOf(text: string): [number, number, number] {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`not a Node version: "${text.trim()}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** The least version `engines.node` accepts; it must read `>=X.Y.Z`, the one form this script reads. */
export function minimumOf(engines: string): [number, number, number] {
  const m = /^>=\s*(\d+\.\d+\.\d+)$/.exec(engines.trim());
  if (!m) throw new Error(`package.json engines.node must read ">=X.Y.Z", not "${engines}"`);
  return versionOf(m[1]!);
}

function atLeast(v: [number, number, number], min: [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! > min[i]!;
  return true;
}

export type NodePlan =
  | { kind: 'keep' }
  | { kind: 'install'; version: string; package: string; folder: string; integrity: string }
  | { kind: 'refuse'; reason: string };

/**
 * What to do for a Node `current` on `platform` (`process.platform-process.arch`): keep it when
 * `engines` accepts it, else install `wanted` (`.nvmrc`), which `engines` must accept too.
 */
export function planNode(current: string, engines: string, wanted: string, platform: string): NodePlan {
  const min = minimumOf(engines);
  if (atLeast(versionOf(current), min)) return { kind: 'keep' };
  const version = versionOf(wanted).join('.');
  if (!atLeast(versionOf(wanted), min))
    return { kind: 'refuse', reason: `.nvmrc names Node ${version}, which engines "${engines}" refuses` };
  const integrity = version === NODE_BINARIES.version ? NODE_BINARIES.integrity[platform] : undefined;
  if (!integrity)
    return {
      kind: 'refuse',
      reason:
        version === NODE_BINARIES.version
          ? `the npm registry has no Node ${version} binary for ${platform}: install Node ${engines} yourself`
          : `no integrity is pinned for Node ${version} (scripts/install-node.ts NODE_BINARIES): install Node ` +
            `${engines} yourself, or pin it`,
    };
  return {
    kind: 'install',
    version,
    package: `node-${platform}`,
    folder: `node-v${version}-${platform}`,
    integrity,
  };
}

/** A file's integrity as npm writes it: `sha512-<base64>`. */
export function integrityOf(file: string): string {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/**
 * Fetches `pkg@version` from the registry, refuses it unless its integrity is `integrity`, and
 * unpacks it into `dest` (its `bin/node` in there).
 */
function unpack(pkg: string, version: string, integrity: string, dest: string): void {
  // Beside `dest`, on its file system: the rename at the end cannot cross one.
  mkdirSync(path.dirname(dest), { recursive: true });
  const work = mkdtempSync(path.join(path.dirname(dest), '.unpack-'));
  try {
    // npm itself (the one running this script) fetches it, with the registry and proxy it is set up for.
    const npm = process.env.npm_execpath;
    const args = ['pack', `${pkg}@${version}`, '--pack-destination', work, '--silent'];
    const tarball = (
      npm
        ? execFileSync(process.execPath, [npm, ...args], { encoding: 'utf8' })
        : execFileSync('npm', args, { encoding: 'utf8' })
    )
      .trim()
      .split('\n')
      .pop()!;
    const got = integrityOf(path.join(work, tarball));
    if (got !== integrity)
      throw new Error(`[install-node] ${pkg}@${version} from the registry is ${got}, not the pinned ${integrity}`);
    execFileSync('tar', ['-xzf', path.join(work, tarball), '-C', work]);
    // Whole or not at all: a folder that exists is a finished install.
    renameSync(path.join(work, 'package'), dest);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function main(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
  const wanted = readFileSync(path.join(root, '.nvmrc'), 'utf8').trim();
  const plan = planNode(process.version, pkg.engines.node, wanted, `${process.platform}-${process.arch}`);
  if (plan.kind === 'keep') return;
  if (plan.kind === 'refuse') {
    console.error(`[install-node] Node ${process.version} is older than Persona needs: ${plan.reason}`);
    process.exit(1);
  }
  const folder = path.join(root, '.tools', plan.folder);
  if (!existsSync(path.join(folder, 'bin', 'node'))) {
    console.log(`[install-node] fetching ${plan.package}@${plan.version} from the npm registry`);
    unpack(plan.package, plan.version, plan.integrity, folder);
  }
  const runs = execFileSync(path.join(folder, 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
  const link = path.join(root, 'node_modules', '.bin', 'node');
  rmSync(link, { force: true });
  mkdirSync(path.dirname(link), { recursive: true });
  symlinkSync(path.relative(path.dirname(link), path.join(folder, 'bin', 'node')), link);
  console.log(
    `[install-node] Node ${process.version} is older than Persona needs (${pkg.engines.node}): ` +
      `npm scripts run Node ${runs}, from ${path.relative(root, folder)}`,
  );
}

// Plain `import.meta.url`: the Node running this may predate `import.meta.dirname`.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
