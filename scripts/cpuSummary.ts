/**
 * What a CPU profile (scripts/cpu-profile.ts, or `node --cpu-prof`) says of where the time went:
 * self time per function and per package, as shares of the busy time. Used by the benchmarks that
 * profile the api they start (bench:interactions, bench:context).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config/env';

export interface SelfTime {
  name: string;
  ms: number;
  /** Of the busy time: everything sampled but `(idle)`. */
  share: number;
}

export interface ProfileSummary {
  sampledMs: number;
  idleMs: number;
  functions: SelfTime[];
  packages: SelfTime[];
}

/**
 * Self time (time in the function itself, not in what it called) per function and per package
 * (`ours` for the repo's code, `node` for Node's internals, V8's pseudo-frames as named), as
 * shares of the busy time. The profiler's own start and stop (scripts/cpu-profile.ts) are left out.
 */
export function selfTimes(file: string, top: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: {
      id: number;
      callFrame: { functionName: string; url: string; lineNumber: number };
      children?: number[];
    }[];
    samples: number[];
    timeDeltas: number[];
  };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const own = new Set<number>();
  const mark = (id: number): void => {
    own.add(id);
    for (const c of nodes.get(id)?.children ?? []) mark(c);
  };
  for (const n of profile.nodes) if (n.callFrame.url.endsWith('scripts/cpu-profile.ts')) mark(n.id);
  const fns = new Map<string, number>();
  const pkgs = new Map<string, number>();
  let sampledMs = 0;
  let idleMs = 0;
  profile.samples.forEach((id, k) => {
    const frame = nodes.get(id)?.callFrame;
    const ms = (profile.timeDeltas[k] ?? 0) / 1000;
    if (!frame || own.has(id)) return;
    sampledMs += ms;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      return;
    }
    const file = frame.url.replace(/^file:\/\//, '');
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1];
    const where = pkg
      ? file.slice(file.lastIndexOf('node_modules/') + 'node_modules/'.length)
      : file.startsWith(repoRoot)
        ? path.relative(repoRoot, file)
        : file;
    const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where}:${String(frame.lineNumber + 1)}` : ''}`;
    fns.set(name, (fns.get(name) ?? 0) + ms);
    const group = !frame.url
      ? frame.functionName || '(native)'
      : frame.url.startsWith('node:')
        ? 'node'
        : (pkg ?? 'ours');
    pkgs.set(group, (pkgs.get(group) ?? 0) + ms);
  });
  const busy = sampledMs - idleMs;
  const rank = (m: Map<string, number>): SelfTime[] =>
    [...m.entries()]
      .map(([name, ms]) => ({ name, ms, share: busy > 0 ? ms / busy : 0 }))
      .sort((x, y) => y.ms - x.ms)
      .slice(0, top);
  return { sampledMs, idleMs, functions: rank(fns), packages: rank(pkgs) };
}
