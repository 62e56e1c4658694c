/**
 * `npm ci`'s last step (package.json `postinstall`): makes every npm script run a Node that
 * package.json's `engines` accepts. When the Node that ran `npm ci` is older, it installs the
 * version `.nvmrc` names from the npm registry (the `node-<platform>-<arch>` packages, the
 * official binaries) into `.tools/`, and links it as `node_modules/.bin/node`, which npm puts
 * first on every script's PATH: `npm run dev` and `npm test` then run that Node, and so does
 * everything they start. A Node that is new enough is left alone.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The platforms the npm registry carries Node binaries for, as `node-<platform>-<arch>`. */
const PLATFORMS = new Set(['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']);

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
  | { kind: 'install'; version: string; package: string; folder: string }
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
  if (!PLATFORMS.has(platform))
    return {
      kind: 'refuse',
      reason: `the npm registry has no Node binary for ${platform}: install Node ${engines} yourself`,
    };
  return { kind: 'install', version, package: `node-${platform}`, folder: `node-v${version}-${platform}` };
}

/** Fetches `pkg@version` from the registry and unpacks it into `dest` (its `bin/node` in there). */
function unpack(pkg: string, version: string, dest: string): void {
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
    unpack(plan.package, plan.version, folder);
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
